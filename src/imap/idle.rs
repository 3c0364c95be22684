//! IDLE (RFC 2177), written against the pitfalls async-imap's own IDLE has: a NO to IDLE is an
//! error (not a hang), EOF or BYE while idling is a lost connection (not a "manual interrupt"),
//! and DONE is answered under a timeout.

use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, Response, Status};
use tokio_util::sync::CancellationToken;

use super::ImapError;
use super::response::response_code;
use super::session::Session;

/// Why [`Session::idle`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleOutcome {
    /// EXISTS/RECENT arrived (or had arrived before IDLE): search for new UIDs.
    NewData,
    /// `timeout` passed (re-issue IDLE; RFC 2177 says before 29 minutes).
    Timeout,
    /// The token was cancelled (shutdown, reload, sweep tick).
    Cancelled,
}

impl Session {
    /// IDLE on the selected mailbox until new data, `timeout`, or `cancel`. Always ends the
    /// IDLE with DONE and reads the tagged OK before returning, so the session stays usable.
    pub async fn idle(
        &mut self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<IdleOutcome, ImapError> {
        self.ensure_usable()?;
        let result = self.idle_inner(timeout, cancel).await;
        result.map_err(|e| self.poison(e))
    }

    async fn idle_inner(
        &mut self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<IdleOutcome, ImapError> {
        if !self.has_capability("IDLE") {
            return Err(ImapError::Unsupported("IDLE"));
        }
        if self.take_new_data() {
            return Ok(IdleOutcome::NewData);
        }
        if cancel.is_cancelled() {
            return Ok(IdleOutcome::Cancelled);
        }
        let account = self.account().to_string();
        let t = self.transport_mut();
        let tag = t.send("IDLE").await?;
        let mut early_news = false;
        // Wait for "+ idling" under the command timeout: a server that answers NO/BAD ends here.
        loop {
            match self.transport_mut().read().await? {
                Response::Continue(_) => break,
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if done.0 == tag => {
                    let text = outcome.information.as_deref().unwrap_or("").to_string();
                    let code = response_code(outcome.code.as_ref(), outcome.information.as_deref());
                    return Err(match status {
                        Status::No => ImapError::No {
                            command: "IDLE".into(),
                            text,
                            code,
                        },
                        _ => ImapError::Bad {
                            command: "IDLE".into(),
                            text,
                        },
                    });
                }
                other => {
                    // Data that arrives before "+ idling" still counts; DONE must wait for the
                    // continuation, so keep reading.
                    early_news |= is_news(&other);
                    self.push_unsolicited(&other);
                }
            }
        }
        if early_news {
            return self.finish_idle(&tag, IdleOutcome::NewData).await;
        }
        tracing::trace!(account = %account, "idling");
        let deadline = tokio::time::Instant::now() + timeout;
        let outcome = loop {
            let t = self.transport_mut();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break IdleOutcome::Cancelled,
                _ = tokio::time::sleep_until(deadline) => break IdleOutcome::Timeout,
                r = t.read_untimed() => {
                    let resp = r?;
                    if let Response::Done { tag: done, status, outcome } = &resp
                        && done.0 == tag
                    {
                        // The server ended IDLE on its own.
                        if *status == Status::Ok {
                            return Ok(IdleOutcome::Timeout);
                        }
                        return Err(ImapError::No {
                            command: "IDLE".into(),
                            text: outcome.information.as_deref().unwrap_or("").to_string(),
                            code: None,
                        });
                    }
                    if let Response::Data { status: Status::Bye, outcome } = &resp {
                        // The connection is going away; report it now rather than on EOF.
                        return Err(ImapError::ConnectionLost(
                            outcome.information.as_deref().map(str::to_string),
                        ));
                    }
                    let news = is_news(&resp);
                    self.push_unsolicited(&resp);
                    if news {
                        break IdleOutcome::NewData;
                    }
                }
            }
        };
        self.finish_idle(&tag, outcome).await
    }

    /// Send DONE and read up to the IDLE's tagged response (under the command timeout).
    async fn finish_idle(
        &mut self,
        tag: &str,
        outcome: IdleOutcome,
    ) -> Result<IdleOutcome, ImapError> {
        let t = self.transport_mut();
        t.write_line(b"DONE").await?;
        let mut outcome = outcome;
        loop {
            let resp = self.transport_mut().read().await?;
            match &resp {
                Response::Done {
                    tag: done,
                    status,
                    outcome: o,
                } if done.0 == tag => {
                    if *status != Status::Ok {
                        return Err(ImapError::No {
                            command: "IDLE".into(),
                            text: o.information.as_deref().unwrap_or("").to_string(),
                            code: None,
                        });
                    }
                    break;
                }
                other => {
                    if is_news(other) && outcome != IdleOutcome::Cancelled {
                        outcome = IdleOutcome::NewData;
                    }
                    self.push_unsolicited(other);
                }
            }
        }
        if outcome == IdleOutcome::NewData {
            // Consumed: the caller is told now.
            self.take_new_data();
        }
        Ok(outcome)
    }
}

fn is_news(r: &Response<'_>) -> bool {
    match r {
        Response::MailboxData(MailboxDatum::Exists(_)) => true,
        Response::MailboxData(MailboxDatum::Recent(n)) => *n > 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers run sessions inside `tokio::spawn`: the futures must be `Send`.
    #[allow(dead_code)]
    fn session_futures_are_send(s: &mut Session, c: &CancellationToken) {
        fn is_send<T: Send>(_: T) {}
        is_send(s.idle(Duration::ZERO, c));
    }

    #[allow(dead_code)]
    fn session_is_send(s: Session) {
        fn is_send<T: Send>(_: T) {}
        is_send(s);
    }

    #[test]
    fn news_is_exists_or_nonzero_recent() {
        for (resp, want) in [
            (Response::MailboxData(MailboxDatum::Exists(3)), true),
            (Response::MailboxData(MailboxDatum::Recent(1)), true),
            (Response::MailboxData(MailboxDatum::Recent(0)), false),
            (Response::Expunge(2), false),
        ] {
            assert_eq!(is_news(&resp), want, "{resp:?}");
        }
    }
}
