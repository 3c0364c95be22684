//! Who acts on a mailbox: one lock file per (account, mailbox) under the state directory, so
//! that processes sharing a state (a daemon and `imapsort sweep`, or two sweeps) never act on
//! one mailbox at the same time (RULES.md, "One state, several processes").
//!
//! ```text
//! STATE_DIR/locks/ACCOUNT/MAILBOX.lock      flock(2), exclusive; holds "PID\nCOMMAND\n"
//! ```
//!
//! The lock is `flock` (`std::fs::File::try_lock`): the kernel releases it when the process
//! dies, so a crash never leaves a stale lock behind, and two handles of one process exclude
//! each other too. The file is never deleted (deleting a lock file someone holds would let a
//! third process lock a new file of the same name); its content names the holder for the
//! waiting side's message and is written best-effort (a full disk must not make a lock fail).
//! Names are percent-encoded into file names; very long ones end in a hash.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::vocab::MailboxName;

/// The lock files of one state directory.
#[derive(Clone, Debug)]
pub struct Locks {
    /// `STATE_DIR/locks`.
    dir: PathBuf,
}

/// A held lock; dropping it lets go.
#[derive(Debug)]
pub struct MailboxLock {
    /// Open and locked; closing the descriptor releases the lock.
    file: File,
}

impl Drop for MailboxLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The process holding a lock, as it wrote itself into the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command line, arguments joined by spaces.
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} ({})", self.pid, self.command)
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it (`None`: it has not said who it is yet).
    #[error("{} is working on this mailbox", holder_text(.holder))]
    Busy { holder: Option<Holder> },
    /// The lock file cannot be created or opened.
    #[error("cannot open the lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn holder_text(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "another process".to_owned(),
    }
}

/// How long a waiting lock sleeps between tries, at first and at most.
const FIRST_NAP: Duration = Duration::from_millis(20);
const LONGEST_NAP: Duration = Duration::from_millis(500);

impl Locks {
    /// The locks under `state_dir`.
    pub fn new(state_dir: &Path) -> Locks {
        Locks {
            dir: state_dir.join("locks"),
        }
    }

    /// The lock file of (`account`, `mailbox`).
    pub fn path(&self, account: &str, mailbox: &MailboxName) -> PathBuf {
        self.dir
            .join(file_name(account))
            .join(format!("{}.lock", file_name(mailbox)))
    }

    /// Takes the lock now, or says who holds it.
    pub fn try_acquire(
        &self,
        account: &str,
        mailbox: &MailboxName,
    ) -> Result<MailboxLock, LockError> {
        let path = self.path(account, mailbox);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    holder: read_holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        if let Err(e) = write_holder(&mut file) {
            tracing::debug!(path = %path.display(), error = %e, "could not write the lock holder");
        }
        Ok(MailboxLock { file })
    }

    /// Takes the lock, waiting while another process holds it: at most `patience` (forever
    /// when `None`), asynchronously (a waiting lock blocks no runtime thread). `waiting` is
    /// told once, when the wait begins, who holds it.
    pub async fn acquire(
        &self,
        account: &str,
        mailbox: &MailboxName,
        patience: Option<Duration>,
        mut waiting: impl FnMut(&Option<Holder>),
    ) -> Result<MailboxLock, LockError> {
        let deadline = patience.map(|p| Instant::now() + p);
        let mut nap = FIRST_NAP;
        let mut told = false;
        loop {
            let holder = match self.try_acquire(account, mailbox) {
                Ok(lock) => return Ok(lock),
                Err(LockError::Busy { holder }) => holder,
                Err(e) => return Err(e),
            };
            if !told {
                waiting(&holder);
                told = true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(LockError::Busy { holder });
            }
            let until = deadline.map_or(now + nap, |d| d.min(now + nap));
            tokio::time::sleep_until(until).await;
            nap = (nap * 2).min(LONGEST_NAP);
        }
    }
}

/// Writes this process's pid and command line into the (locked) file.
fn write_holder(file: &mut File) -> std::io::Result<()> {
    let command: Vec<String> = std::env::args().collect();
    let text = format!("{}\n{}\n", std::process::id(), command.join(" "));
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// The holder a lock file names, if it names one.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let command = lines.next().unwrap_or("").trim().to_owned();
    Some(Holder { pid, command })
}

/// A name as a file name: letters, digits, `-`, `_` and (not first) `.` as they are, every
/// other byte as `%XX`; beyond 200 bytes, cut and followed by a hash of the whole name.
fn file_name(name: &str) -> String {
    let mut out = String::new();
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 200 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        out.truncate(180);
        out.push_str(&format!("~{hash:016x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_distinct_file_names() {
        for (name, want) in [
            ("INBOX", "INBOX"),
            ("Lists/dev.example", "Lists%2Fdev.example"),
            (".hidden", "%2Ehidden"),
            ("..", "%2E."),
            ("Grüße", "Gr%C3%BC%C3%9Fe"),
            ("a%b", "a%25b"),
        ] {
            assert_eq!(file_name(name), want, "{name}");
        }
        let long = "x/".repeat(200);
        let other = format!("{}y", "x/".repeat(199));
        assert!(file_name(&long).len() <= 200);
        assert_ne!(file_name(&long), file_name(&other));
    }

    #[test]
    fn a_held_lock_names_its_holder_and_is_free_again_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path());
        let inbox = MailboxName::inbox();
        let held = locks.try_acquire("a", &inbox).unwrap();
        match locks.try_acquire("a", &inbox) {
            Err(LockError::Busy { holder: Some(h) }) => {
                assert_eq!(h.pid, std::process::id());
                assert!(!h.command.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Another mailbox, another account: not affected.
        let _other = locks.try_acquire("a", &MailboxName::new("Lists")).unwrap();
        let _b = locks.try_acquire("b", &inbox).unwrap();
        drop(held);
        locks.try_acquire("a", &inbox).unwrap();
        assert!(locks.path("a", &inbox).ends_with("locks/a/INBOX.lock"));
    }

    #[tokio::test]
    async fn a_waiting_lock_gets_it_when_freed_and_gives_up_after_its_patience() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path());
        let inbox = MailboxName::inbox();
        let held = locks.try_acquire("a", &inbox).unwrap();
        let mut told = 0;
        let started = Instant::now();
        let err = locks
            .acquire("a", &inbox, Some(Duration::from_millis(150)), |_| told += 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, LockError::Busy { holder: Some(_) }),
            "{err:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(told, 1);
        let freeing = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(held);
        });
        locks
            .acquire("a", &inbox, Some(Duration::from_secs(10)), |_| {})
            .await
            .unwrap();
        freeing.await.unwrap();
    }
}
