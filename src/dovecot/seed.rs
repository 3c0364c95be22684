//! Seeding mail: maildir files written straight into a mailbox (`tmp/` + rename into `new/` or
//! `cur/`), owned by the mail user. 10,000 messages take about a second on tmpfs.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::Dovecot;

/// A message to seed with its flags and arrival time.
#[derive(Clone, Debug, Default)]
pub struct SeedMessage {
    /// The raw message (CRLF or LF line ends).
    pub bytes: Vec<u8>,
    /// System flags only (`\Seen`, `\Flagged`, `\Answered`, `\Draft`, `\Deleted`).
    pub flags: Vec<String>,
    /// INTERNALDATE (the file's mtime); `None`: now.
    pub internal_date: Option<SystemTime>,
}

impl Dovecot {
    /// Write messages into a mailbox's `new/` (via `tmp/` + rename), creating the mailbox.
    pub fn seed(&self, user: &str, mailbox: &str, messages: &[Vec<u8>]) -> io::Result<()> {
        let msgs: Vec<SeedMessage> = messages
            .iter()
            .map(|b| SeedMessage {
                bytes: b.clone(),
                ..SeedMessage::default()
            })
            .collect();
        self.seed_with(user, mailbox, &msgs)
    }

    /// Like [`seed`](Self::seed), with flags (into `cur/`) and arrival times.
    pub fn seed_with(&self, user: &str, mailbox: &str, messages: &[SeedMessage]) -> io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = self.create_mailbox_dirs(user, mailbox)?;
        let pid = std::process::id();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let (uid, gid) = self.mail_owner;
        for msg in messages {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let base = format!("{now}.M{n}P{pid}.imapsort");
            let tmp = dir.join("tmp").join(&base);
            std::fs::write(&tmp, &msg.bytes)?;
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
            if let Some(when) = msg.internal_date {
                std::fs::File::options()
                    .write(true)
                    .open(&tmp)?
                    .set_modified(when)?;
            }
            let info = maildir_info(&msg.flags)?;
            let dest = if msg.flags.is_empty() {
                dir.join("new").join(&base)
            } else {
                dir.join("cur").join(format!("{base}:2,{info}"))
            };
            std::fs::rename(&tmp, &dest)?;
        }
        Ok(())
    }

    fn create_mailbox_dirs(&self, user: &str, mailbox: &str) -> io::Result<PathBuf> {
        let dir = self.mailbox_dir(user, mailbox);
        let (uid, gid) = self.mail_owner;
        let home = self.dir.path().join("home").join(user);
        // Create every level so each is owned by the mail user, not root.
        let mut todo = vec![];
        let mut p = dir.clone();
        while p != home.parent().unwrap_or(&home) && !p.exists() {
            todo.push(p.clone());
            match p.parent() {
                Some(parent) => p = parent.to_path_buf(),
                None => break,
            }
        }
        for p in todo.iter().rev() {
            std::fs::create_dir(p)?;
            std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
        }
        for sub in ["cur", "new", "tmp"] {
            let p = dir.join(sub);
            if !p.exists() {
                std::fs::create_dir(&p)?;
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))?;
            }
        }
        Ok(dir)
    }
}

/// Maildir info letters for system flags, in ASCII order as the spec requires.
fn maildir_info(flags: &[String]) -> io::Result<String> {
    let mut letters = Vec::new();
    for f in flags {
        let l = match f.to_ascii_lowercase().as_str() {
            "\\draft" => 'D',
            "\\flagged" => 'F',
            "\\answered" => 'R',
            "\\seen" => 'S',
            "\\deleted" => 'T',
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("only system flags can be seeded, not {other:?}"),
                ));
            }
        };
        letters.push(l);
    }
    letters.sort_unstable();
    letters.dedup();
    Ok(letters.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_info_sorts_and_rejects_keywords() {
        for (flags, want) in [
            (vec!["\\Seen", "\\Flagged"], Some("FS")),
            (vec!["\\Answered", "\\Draft", "\\Seen"], Some("DRS")),
            (vec![], Some("")),
            (vec!["work"], None),
        ] {
            let flags: Vec<String> = flags.into_iter().map(String::from).collect();
            assert_eq!(maildir_info(&flags).ok().as_deref(), want, "{flags:?}");
        }
    }
}
