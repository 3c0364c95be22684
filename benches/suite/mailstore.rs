//! Mail on the private Dovecot: a template user seeded once per size (maildir files, indexed by
//! a SELECT), copied file for file (`cp -a`, index and UID list included) to a fresh user before
//! every timed run, so every tool starts from the same mailbox with the same UIDs. And what a run
//! left behind, to check that the tools did the same thing.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use imapsort_testkit::dovecot::Dovecot;

use super::corpus::Message;
use super::raw::Raw;

/// A user's home directory (the passwd-file's `home=.../home/%u`).
pub fn home(d: &Dovecot, user: &str) -> PathBuf {
    d.dir().join("home").join(user)
}

/// Writes `mail` into `user`'s INBOX as a delivery agent would: one file per message, named like
/// Dovecot's LDA names them (`time.MusecPpid...I<inode>_n.host,S=size`), arrival time as mtime;
/// then a SELECT so Dovecot indexes it.
///
/// Not `Dovecot::seed_with`: its file names share one long prefix, and Dovecot 2.3's maildir
/// file-name hash collides on such names, which makes every MOVE and expunge on a large maildir
/// cost hundreds of milliseconds; real mailboxes do not look like that.
pub fn seed(d: &Dovecot, user: &str, mail: &[Message]) {
    let mut deliver = Deliver::new(d, user);
    for (n, m) in mail.iter().enumerate() {
        deliver.one(n, m);
    }
    deliver.index();
}

/// One user's INBOX being written as a delivery agent would (see [`seed`]).
pub struct Deliver {
    root: PathBuf,
    uid: u32,
    gid: u32,
    rng: fastrand::Rng,
    port: u16,
    user: String,
}

impl Deliver {
    pub fn new(d: &Dovecot, user: &str) -> Deliver {
        d.seed_with(user, "INBOX", &[]).expect("create the maildir");
        let root = d.mailbox_dir(user, "INBOX");
        let meta = std::fs::metadata(&root).expect("maildir");
        Deliver {
            uid: meta.uid(),
            gid: meta.gid(),
            root,
            rng: fastrand::Rng::with_seed(11),
            port: d.imap_port(),
            user: user.to_owned(),
        }
    }

    /// Delivers message number `n`.
    pub fn one(&mut self, n: usize, m: &Message) {
        let secs = m
            .received
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let base = format!(
            "{secs}.M{}P{}V000000000000FD01I{:08X}_{n}.mail.example.org,S={}",
            self.rng.u32(0..1_000_000),
            self.rng.u32(100..100_000),
            1_000_000 + n,
            m.bytes.len()
        );
        let tmp = self.root.join("tmp").join(&base);
        std::fs::write(&tmp, &m.bytes).expect("write message");
        std::os::unix::fs::chown(&tmp, Some(self.uid), Some(self.gid)).expect("chown");
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(m.received))
            .expect("set mtime");
        let dest = if m.seen {
            self.root.join("cur").join(format!("{base}:2,S"))
        } else {
            self.root.join("new").join(base)
        };
        std::fs::rename(&tmp, dest).expect("deliver");
    }

    /// A SELECT, so Dovecot indexes what was delivered.
    pub fn index(self) {
        let mut s = Raw::login(self.port, &self.user).expect("login");
        s.cmd("SELECT INBOX").expect("select");
        let _ = s.cmd("LOGOUT");
    }
}

/// A fresh copy of `from`'s mail as `to`'s (replacing whatever `to` had).
pub fn clone_user(d: &Dovecot, from: &str, to: &str) {
    remove_user(d, to);
    let status = Command::new("cp")
        .arg("-a")
        .arg(home(d, from))
        .arg(home(d, to))
        .status()
        .expect("cp");
    assert!(status.success(), "cp -a failed");
}

/// Like [`clone_user`], but the message files are hard links to `from`'s, not copies: a
/// million-message INBOX is about 5.7 GB of tmpfs (RAM), and a second full copy would take as
/// much again. Safe for maildir: Dovecot never writes into a delivered message file (a flag
/// change renames it, a move links it elsewhere and unlinks it), so what `to`'s run does leaves
/// `from`'s files as they were. Everything else (the index, cache and log files Dovecot does
/// write in place, the UID list) is copied.
pub fn link_user(d: &Dovecot, from: &str, to: &str) {
    remove_user(d, to);
    let status = Command::new("cp")
        .arg("-a")
        .arg("--link")
        .arg(home(d, from))
        .arg(home(d, to))
        .status()
        .expect("cp");
    assert!(status.success(), "cp -a --link failed");
    unlink_metadata(&home(d, from), &home(d, to));
}

/// Replaces every hard-linked file under `to` outside a maildir's `cur`, `new` and `tmp` by a
/// copy of its twin under `from`.
fn unlink_metadata(from: &std::path::Path, to: &std::path::Path) {
    let in_maildir = |p: &std::path::Path| {
        matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("cur" | "new" | "tmp")
        )
    };
    for entry in std::fs::read_dir(to).expect("read_dir").flatten() {
        let path = entry.path();
        let ty = entry.file_type().expect("file type");
        if ty.is_dir() {
            if !in_maildir(&path) {
                unlink_metadata(&from.join(entry.file_name()), &path);
            }
        } else if ty.is_file() {
            let status = Command::new("cp")
                .arg("-a")
                .arg("--remove-destination")
                .arg(from.join(entry.file_name()))
                .arg(&path)
                .status()
                .expect("cp");
            assert!(status.success(), "cp -a --remove-destination failed");
        }
    }
}

pub fn remove_user(d: &Dovecot, user: &str) {
    let _ = std::fs::remove_dir_all(home(d, user));
}

/// Mailbox -> (messages, flagged): what a run left behind.
pub type Outcome = BTreeMap<String, (usize, usize)>;

pub fn outcome(d: &Dovecot, user: &str) -> Outcome {
    let mut s = Raw::login(d.imap_port(), user).expect("login");
    let mut out = BTreeMap::new();
    for line in s.cmd("LIST \"\" \"*\"").expect("list") {
        let Some(rest) = line.strip_prefix("* LIST (") else {
            continue;
        };
        let (attrs, tail) = rest.split_once(')').unwrap_or_default();
        if attrs.contains("\\Noselect") || attrs.contains("\\NonExistent") {
            continue;
        }
        // ` "/" NAME` with NAME an atom or a quoted string.
        let name = tail
            .trim()
            .split_once(' ')
            .map(|x| x.1)
            .unwrap_or_default()
            .trim();
        let name = name.trim_matches('"').to_owned();
        s.cmd(&format!("EXAMINE \"{name}\"")).expect("examine");
        let all = s.search("UNDELETED").expect("search").len();
        let flagged = s.search("UNDELETED FLAGGED").expect("search").len();
        if all > 0 {
            out.insert(name, (all, flagged));
        }
    }
    let _ = s.cmd("LOGOUT");
    out
}

/// Messages moved out of INBOX, by the outcome.
pub fn moved(o: &Outcome) -> usize {
    o.iter()
        .filter(|(k, _)| k.as_str() != "INBOX")
        .map(|(_, v)| v.0)
        .sum()
}

/// Where two outcomes differ, for the report.
pub fn diff(a: &Outcome, b: &Outcome) -> String {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} vs {:?}", a.get(k), b.get(k)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs a command to its end; wall time and its peak RSS (VmHWM, sampled every millisecond
/// while it runs) in KiB.
pub fn run_measured(cmd: &mut Command) -> (Duration, u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let start = std::time::Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = proc_status_kb(pid, "VmHWM:") {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().expect("wait");
    let took = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    assert!(status.success(), "{cmd:?} failed: {stderr}");
    (took, peak.load(Ordering::Relaxed))
}

/// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
