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
        let started = std::time::Instant::now();
        let result = self.uid_store(&uids.to_string(), &query).await;
        log_command("UID STORE", "", uids, started);
        result
    }

    async fn add_labels(&mut self, uids: &UidSet, labels: &[String]) -> Result<(), ImapError> {
        self.uid_gmail_labels(&uids.to_string(), true, labels).await
    }

    async fn remove_labels(&mut self, uids: &UidSet, labels: &[String]) -> Result<(), ImapError> {
        self.uid_gmail_labels(&uids.to_string(), false, labels)
            .await
    }

    async fn copy(&mut self, uids: &UidSet, mailbox: &str) -> Result<Option<CopyUid>, ImapError> {
        let started = std::time::Instant::now();
        let result = self.uid_copy(&uids.to_string(), mailbox).await;
        log_command("UID COPY", mailbox, uids, started);
        result
    }

    async fn mv(&mut self, uids: &UidSet, mailbox: &str) -> Result<Option<CopyUid>, ImapError> {
        let started = std::time::Instant::now();
        let result = self.uid_move(&uids.to_string(), mailbox).await;
        log_command("UID MOVE", mailbox, uids, started);
        result
    }

    async fn uid_expunge(&mut self, uids: &UidSet) -> Result<(), ImapError> {
        let started = std::time::Instant::now();
        let result = Session::uid_expunge(self, &uids.to_string()).await;
        log_command("UID EXPUNGE", "", uids, started);
        result
    }

    async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<bool, ImapError> {
        Session::ensure_mailbox(self, mailbox).await
    }

    async fn uid_next(&mut self, mailbox: &str) -> Result<(Option<u32>, Option<u32>), ImapError> {
        let status = self.status(mailbox).await?;
        Ok((status.uid_validity, status.uid_next))
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
