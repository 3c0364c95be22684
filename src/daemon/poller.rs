//! The account's poller: watched mailboxes beyond `max_connections` (STATUS, then acting on
//! the mailbox where UIDNEXT moved), and mailboxes that only sweep rules name. It holds a
//! connection only while it has such work; a reload that gives it work wakes it.

use std::time::Duration;

use tokio::time::Instant;

use super::heartbeat::sleep_away;
use super::mailbox::{self, Work};
use super::metrics::ErrorKind;
use super::status::Stats;
use super::task::{Failed, Served, Task};
use crate::imap::Session;
use crate::logging::chain;
use crate::vocab::MailboxName;

/// Mailboxes the poller looks after now: the polled watched ones, plus those that only
/// sweep rules name (read from the live rules, so a reload can add one).
fn mailboxes(task: &Task, polled: &[MailboxName]) -> (Vec<MailboxName>, Vec<MailboxName>) {
    let live = task.live();
    let sweep_only = mailbox::sweep_only_mailboxes(&live.rules, &task.account);
    (polled.to_vec(), sweep_only)
}

/// Whether the poller has anything to do now.
pub(super) fn has_work(task: &Task, polled: &[MailboxName]) -> bool {
    let (p, s) = mailboxes(task, polled);
    !p.is_empty() || !s.is_empty()
}

/// An idle poller waits for a reload that gives it work. Returns false when cancelled.
pub(super) async fn wait_for_work(task: &Task, polled: &[MailboxName]) -> bool {
    let mut live = task.shared.live.clone();
    loop {
        tokio::select! {
            _ = task.token.cancelled() => return false,
            changed = live.changed() => {
                if changed.is_err() {
                    return false;
                }
                if has_work(task, polled) {
                    return true;
                }
            }
            _ = sleep_away(&task.hb, Duration::from_secs(3600)) => {}
        }
    }
}

/// Poller: every `poll_interval`, STATUS each polled mailbox and act where UIDNEXT moved;
/// sweep the sweep-only mailboxes when due.
pub(super) async fn serve(
    task: &mut Task,
    session: &mut Session,
    polled: &[MailboxName],
) -> Served {
    let mut conn = match mailbox::Conn::new(session, &task.account).await {
        Ok(c) => c,
        Err(e) => return Served::Lost(e),
    };
    let mut next_sweep = Instant::now();
    loop {
        task.hb.beat();
        if task.token.is_cancelled() {
            return Served::Cancelled;
        }
        let live = task.live();
        let (polled, sweep_only) = mailboxes(task, polled);
        if polled.is_empty() && sweep_only.is_empty() {
            return Served::NoWork;
        }
        // When the state database failed, everything is tried again after this.
        let mut retry_at: Option<Instant> = None;
        for mailbox in &polled {
            let work = Work {
                probe: task.degraded(),
                ..Work::default()
            };
            let polled = {
                let ctx = task.ctx(&live, mailbox);
                tokio::select! {
                    _ = task.token.cancelled() => return Served::Abandoned,
                    r = mailbox::poll(session, &mut conn, &ctx, work) => r,
                }
            };
            match polled {
                Ok(()) => task.acted(),
                Err(mailbox::MailboxError::Imap(e)) if !e.is_connection_fatal() => {
                    let text = chain(&e);
                    task.link.error(ErrorKind::Command, &text);
                    tracing::warn!(account = task.name(), mailbox = %mailbox, error = %text, "cannot poll mailbox");
                }
                Err(e) => match task.failed(mailbox, e) {
                    Failed::Retry(d) => retry_at = Some(Instant::now() + d),
                    Failed::Stop(served) => return served,
                },
            }
        }
        if Instant::now() >= next_sweep && retry_at.is_none() {
            for mailbox in polled.iter().chain(&sweep_only) {
                if !mailbox::has_sweep_rules(&live.rules, &task.account, mailbox) {
                    continue;
                }
                if sweep_only.contains(mailbox) {
                    // A destination no rule has filled yet (Newsletters before the first
                    // newsletter) has nothing to sweep.
                    match session.exists(mailbox).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::debug!(account = task.name(), mailbox = %mailbox, "sweep skipped: the mailbox does not exist yet");
                            continue;
                        }
                        Err(e) => return Served::Lost(e),
                    }
                }
                let work = Work {
                    new_mail: false,
                    sweep: true,
                    probe: task.degraded(),
                };
                let swept = {
                    let ctx = task.ctx(&live, mailbox);
                    let mut sel = None;
                    tokio::select! {
                        _ = task.token.cancelled() => return Served::Abandoned,
                        r = mailbox::act(session, &mut conn, &ctx, &mut sel, work) => r,
                    }
                };
                match swept {
                    Ok(_) => {
                        task.acted();
                        Stats::bump(&task.shared.stats.sweeps);
                    }
                    Err(mailbox::MailboxError::Imap(e)) if !e.is_connection_fatal() => {
                        let text = chain(&e);
                        task.link.error(ErrorKind::Command, &text);
                        tracing::warn!(account = task.name(), mailbox = %mailbox, error = %text, "cannot sweep mailbox");
                    }
                    Err(e) => match task.failed(mailbox, e) {
                        Failed::Retry(d) => {
                            retry_at = Some(Instant::now() + d);
                            break;
                        }
                        Failed::Stop(served) => return served,
                    },
                }
            }
            if retry_at.is_none() {
                next_sweep = Instant::now() + live.settings.sweep_interval;
            }
        }
        if let Some(at) = retry_at {
            // Nothing can be done before the retry, a due sweep included (it waits for it,
            // rather than making the wait zero long and the poller try again at once).
            next_sweep = next_sweep.max(at);
        }
        let mut wake = if polled.is_empty() {
            next_sweep
        } else {
            next_sweep.min(Instant::now() + task.account.poll_interval)
        };
        if let Some(at) = retry_at {
            wake = wake.min(at);
        }
        task.sleep_until(wake).await;
        if task.token.is_cancelled() {
            return Served::Cancelled;
        }
        if let Err(e) = session.noop().await {
            return Served::Lost(e);
        }
    }
}
