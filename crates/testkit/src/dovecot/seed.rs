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
    ///
    /// Files are named as Dovecot's LDA names them, each with its own time and counter
    /// ([`file_name`]): Dovecot's maildir code slows down badly (hundreds of milliseconds per
    /// MOVE on a 10,000-message mailbox) on names that share one long prefix. The names'
    /// times increase in the order given, so UIDs follow that order.
    pub fn seed_with(&self, user: &str, mailbox: &str, messages: &[SeedMessage]) -> io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = self.create_mailbox_dirs(user, mailbox)?;
        let pid = std::process::id();
        let (uid, gid) = self.mail_owner;
        for msg in messages {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let base = file_name(next_name_time(), pid, n, msg.bytes.len());
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

/// Microseconds between the name times of two seeded files: odd and not a divisor of a
/// second, so the `M<usecs>` parts of consecutive names differ in every digit position.
const NAME_STEP_US: u64 = 1_013;

/// The time (microseconds since the epoch) for the next file name: now, but always past the
/// previous name's, so names (and hence UIDs) follow the order of seeding within a process.
fn next_name_time() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + NAME_STEP_US);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => prev = seen,
        }
    }
}

/// An LDA-style maildir base name, `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>`.
fn file_name(time_us: u64, pid: u32, n: u64, size: usize) -> String {
    let (secs, usecs) = (time_us / 1_000_000, time_us % 1_000_000);
    format!("{secs}.M{usecs}P{pid}Q{n}.imapsort,S={size}")
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

    /// Regression: every seeded file had the same `<secs>.M` prefix, which made each MOVE on
    /// a 10,000-message mailbox cost about 0.3 s in Dovecot.
    #[test]
    fn seeded_names_have_distinct_increasing_times_and_counters() {
        let names: Vec<(u64, u64, String)> = (0..2_000u64)
            .map(|n| {
                let t = next_name_time();
                (t / 1_000_000, t % 1_000_000, file_name(t, 42, n, 10))
            })
            .collect();
        for pair in names.windows(2) {
            let ((s0, u0, a), (s1, u1, b)) = (&pair[0], &pair[1]);
            assert!((s0, u0) < (s1, u1), "{a} then {b}");
            assert_ne!(u0, u1, "{a} and {b} share their usecs");
        }
        let secs: std::collections::HashSet<u64> = names.iter().map(|(s, ..)| *s).collect();
        assert!(secs.len() > 1, "all 2,000 names in one second");
        let (s, u, name) = &names[0];
        assert!(
            name.starts_with(&format!("{s}.M{u}P42Q0.")) && name.ends_with(",S=10"),
            "{name}"
        );
    }

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
