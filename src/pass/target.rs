//! The executor's commands on a real session: `crate::execute::ImapTarget` for
//! [`Session`], and the capabilities that change how plans are carried out.

use crate::execute::{ImapTarget, ServerCaps};
use crate::imap::uidset::{CopyUid, UidSet};
use crate::imap::{ImapError, Session};

/// Capabilities that change how plans are carried out.
pub fn server_caps(session: &Session) -> ServerCaps {
    ServerCaps {
        move_: session.has_capability("MOVE"),
        uidplus: session.has_capability("UIDPLUS"),
        gmail: session.is_gmail(),
    }
}

/// A flag or keyword that can go into a STORE list: `\Word` or an atom.
fn valid_flag(flag: &str) -> bool {
    let word = flag.strip_prefix('\\').unwrap_or(flag);
    !word.is_empty()
        && word.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// One carried-out command's time in the debug log (`sweep command`), so that a slow batch
/// says which command and which destination its time went to. Commands run one at a time, so
/// this is the server's time for it plus a loopback round trip.
fn log_command(command: &str, mailbox: &str, uids: &UidSet, started: std::time::Instant) {
    tracing::debug!(
        command,
        mailbox,
        uids = uids.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep command"
    );
}

/// A command over a UID set, for [`send_lines`].
#[derive(Clone, Copy)]
enum SetCommand<'a> {
    /// `UID STORE set <query>`.
    Store(&'a str),
    Copy(&'a str),
    Move(&'a str),
    Expunge,
}

impl SetCommand<'_> {
    fn name(self) -> &'static str {
        match self {
            SetCommand::Store(_) => "UID STORE",
            SetCommand::Copy(_) => "UID COPY",
            SetCommand::Move(_) => "UID MOVE",
            SetCommand::Expunge => "UID EXPUNGE",
        }
    }
}

/// One command line over `uids`, timed in the debug log; COPYUID for copies and moves.
async fn send_line(
    session: &mut Session,
    command: SetCommand<'_>,
    uids: &UidSet,
    set: &str,
) -> Result<Option<CopyUid>, ImapError> {
    let started = std::time::Instant::now();
    let (result, mailbox) = match command {
        SetCommand::Store(query) => (session.uid_store(set, query).await.map(|()| None), ""),
        SetCommand::Copy(mailbox) => (session.uid_copy(set, mailbox).await, mailbox),
        SetCommand::Move(mailbox) => (session.uid_move(set, mailbox).await, mailbox),
        SetCommand::Expunge => (Session::uid_expunge(session, set).await.map(|()| None), ""),
    };
    log_command(command.name(), mailbox, uids, started);
    result
}

/// `command` over `uids` as the executor cut it (one line). When the server answers `BAD` to a
/// line longer than the standard budget — an administrator lowered Dovecot's
/// `imap_max_line_length` — the session keeps to the standard budget from then on and this set
/// goes again in lines of that size (`BAD` means the server did nothing), their COPYUID
/// answers joined.
async fn send_lines(
    session: &mut Session,
    command: SetCommand<'_>,
    uids: &UidSet,
) -> Result<Option<CopyUid>, ImapError> {
    let set = uids.to_string();
    match send_line(session, command, uids, &set).await {
        Err(ImapError::Bad { .. }) if session.line_refused(set.len()) => {
            let mut joined: Option<CopyUid> = None;
            for line in uids.chunks(session.set_chars(), u64::MAX) {
                let copied = send_line(session, command, &line, &line.to_string()).await?;
                joined = match (joined, copied) {
                    (Some(mut all), Some(more)) if all.uid_validity == more.uid_validity => {
                        all.pairs.extend(more.pairs);
                        Some(all)
                    }
                    (all, more) => all.or(more),
                };
            }
            Ok(joined)
        }
        other => other,
    }
}

impl ImapTarget for Session {
    type Error = ImapError;

    async fn store_flags(
        &mut self,
        uids: &UidSet,
        add: bool,
        flags: &[String],
    ) -> Result<(), ImapError> {
        if !flags.iter().all(|f| valid_flag(f)) {
            return Err(ImapError::InvalidArgument("flag"));
        }
        let sign = if add { '+' } else { '-' };
        let query = format!("{sign}FLAGS.SILENT ({})", flags.join(" "));
        send_lines(self, SetCommand::Store(&query), uids)
            .await
            .map(|_| ())
    }

    async fn add_labels(&mut self, uids: &UidSet, labels: &[String]) -> Result<(), ImapError> {
        self.uid_gmail_labels(&uids.to_string(), true, labels).await
    }

    async fn remove_labels(&mut self, uids: &UidSet, labels: &[String]) -> Result<(), ImapError> {
        self.uid_gmail_labels(&uids.to_string(), false, labels)
            .await
    }

    async fn copy(&mut self, uids: &UidSet, mailbox: &str) -> Result<Option<CopyUid>, ImapError> {
        send_lines(self, SetCommand::Copy(mailbox), uids).await
    }

    async fn mv(&mut self, uids: &UidSet, mailbox: &str) -> Result<Option<CopyUid>, ImapError> {
        send_lines(self, SetCommand::Move(mailbox), uids).await
    }

    async fn uid_expunge(&mut self, uids: &UidSet) -> Result<(), ImapError> {
        send_lines(self, SetCommand::Expunge, uids)
            .await
            .map(|_| ())
    }

    async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<bool, ImapError> {
        Session::ensure_mailbox(self, mailbox).await
    }

    async fn uid_next(&mut self, mailbox: &str) -> Result<(Option<u32>, Option<u32>), ImapError> {
        let status = self.status(mailbox).await?;
        Ok((status.uid_validity, status.uid_next))
    }

    fn set_chars(&self) -> usize {
        Session::set_chars(self)
    }

    fn is_connection_lost(err: &ImapError) -> bool {
        err.is_connection_fatal()
    }

    fn is_missing_mailbox(err: &ImapError) -> bool {
        err.is_missing_mailbox()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_that_would_break_the_command_are_refused() {
        for (flag, ok) in [
            ("\\Seen", true),
            ("$Invoice", true),
            ("work", true),
            ("two words", false),
            ("a)b", false),
            ("\\", false),
            ("", false),
            ("x\r\ny", false),
        ] {
            assert_eq!(valid_flag(flag), ok, "{flag:?}");
        }
    }
}
