//! One state, several processes (RULES.md, Command line): a daemon and manual sweeps sharing a
//! configuration never act on one mailbox at the same time. A sweep waits (up to `--wait`,
//! default 30 s) for the process working on a mailbox, then runs; one that waited in vain
//! exits 75 naming that process. The daemon holds a mailbox only while it acts on it.

use crate::support::once_util;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::once_util::{Via, at, census_now, places, shown};
use crate::support::proxy::{Direction, Fault, Proxy};

const MOVE_LISTS: &str =
    "  - { name: lists, when: { list_id: { exists: true } }, then: { move: Lists } }\n";

fn list_mail(n: usize) -> Vec<u8> {
    format!(
        "From: List <list@example.com>\r\nTo: user@example.com\r\nSubject: list {n}\r\n\
         Message-ID: <l{n}@once.test>\r\nList-Id: <l.once.test>\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBody {n}.\r\n"
    )
    .into_bytes()
}

/// The lock file of (account, mailbox) under the state directory.
fn lock_file(state: &Path, account: &str, mailbox: &str) -> PathBuf {
    state
        .join("locks")
        .join(account)
        .join(format!("{mailbox}.lock"))
}

/// Whether another process holds the lock now.
fn held(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Waits until some process holds the lock (polling every 2 ms).
fn wait_held(path: &Path, limit: Duration, log: &Path) {
    let deadline = Instant::now() + limit;
    while !held(path) {
        if Instant::now() > deadline {
            panic!(
                "{} was never held\n{}",
                path.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A daemon behind a proxy that delays every chunk, with `n` list messages to move.
struct Setup {
    d: imapsort_testkit::dovecot::Dovecot,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    proxy: Proxy,
    config: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

fn setup(n: usize, delay: Duration) -> Option<Setup> {
    let d = crate::support::dovecot::start_default()?;
    let dir = tempfile::tempdir().unwrap();
    let rt = once_util::runtime();
    let mail: Vec<Vec<u8>> = (0..n).map(list_mail).collect();
    d.seed("user", "INBOX", &mail).unwrap();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], d.imaps_port()));
    let proxy = rt.block_on(Proxy::start(target));
    proxy.set_fault(Fault::Delay(delay));
    // The daemon goes through the proxy; the sweeps go straight to the server.
    let slow = once_util::account(&d, "once", Via::Tls, "    first_start: all\n").replace(
        &format!("port: {}", d.imaps_port()),
        &format!("port: {}", proxy.port()),
    );
    let state = dir.path().join("state");
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let config = once_util::write_config(&run_dir, &state, "", &slow, MOVE_LISTS);
    let log = dir.path().join("run.log");
    Some(Setup {
        d,
        rt,
        proxy,
        config,
        state,
        log,
        dir,
    })
}

impl Setup {
    /// A configuration for the sweeps: the same state, straight to the server.
    fn sweep_config(&self) -> PathBuf {
        let direct = once_util::account(&self.d, "once", Via::Tls, "    first_start: all\n");
        once_util::write_config(self.dir.path(), &self.state, "", &direct, MOVE_LISTS)
    }

    fn wait_all_moved(&self, n: usize) {
        once_util::wait_for(
            "every message in Lists",
            Duration::from_secs(90),
            || {
                let c = census_now(&self.rt, &self.d);
                c.get("Lists").map_or(0, Vec::len) == n && c.get("INBOX").map_or(0, Vec::len) == 0
            },
            || std::fs::read_to_string(&self.log).unwrap_or_default(),
        );
        let census = census_now(&self.rt, &self.d);
        for i in 0..n {
            assert_eq!(
                places(&census, &format!("list {i}")),
                at(&[("Lists", 1)]),
                "list {i}"
            );
        }
    }
}

#[test]
fn a_sweep_waits_for_the_daemons_pass_and_then_runs() {
    let n = 200;
    let Some(s) = setup(n, Duration::from_millis(60)) else {
        return;
    };
    let mut daemon = once_util::spawn_run(&s.config, &s.log);
    wait_held(
        &lock_file(&s.state, "once", "INBOX"),
        Duration::from_secs(30),
        &s.log,
    );
    let started = Instant::now();
    let out = once_util::sweep(&s.sweep_config(), &["--wait", "60s"]);
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("process {}", daemon.id())),
        "the sweep did not say whom it waited for (waited {waited:?})\n{}",
        shown(&out)
    );
    s.wait_all_moved(n);
    assert_eq!(once_util::stop(&mut daemon), Some(0));
}

#[test]
fn a_sweep_gives_up_after_wait_with_exit_75_naming_the_daemon() {
    let n = 200;
    let Some(s) = setup(n, Duration::from_millis(60)) else {
        return;
    };
    let mut daemon = once_util::spawn_run(&s.config, &s.log);
    let lock = lock_file(&s.state, "once", "INBOX");
    wait_held(&lock, Duration::from_secs(30), &s.log);
    // The daemon is in a pass: hold its server's answers back, so it keeps the mailbox.
    s.proxy.set_fault(Fault::Stall(Direction::ToClient));
    assert!(held(&lock), "the daemon let go of INBOX before the stall");
    let started = Instant::now();
    let out = once_util::sweep(&s.sweep_config(), &["--wait", "1s"]);
    assert_eq!(out.status.code(), Some(75), "{}", shown(&out));
    assert!(started.elapsed() >= Duration::from_secs(1), "gave up early");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("process {}", daemon.id())) && err.contains("imapsort run"),
        "the holder is not named\n{}",
        shown(&out)
    );
    // Nothing was done by the sweep that gave up.
    assert_eq!(
        census_now(&s.rt, &s.d).get("INBOX").map_or(0, Vec::len)
            + census_now(&s.rt, &s.d).get("Lists").map_or(0, Vec::len),
        n
    );
    s.proxy.clear();
    let out = once_util::sweep(&s.sweep_config(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    s.wait_all_moved(n);
    assert_eq!(once_util::stop(&mut daemon), Some(0));
}

#[test]
fn two_sweeps_on_one_state_take_turns() {
    let n = 150;
    let Some(s) = setup(n, Duration::from_millis(40)) else {
        return;
    };
    // The first sweep goes through the slow proxy, the second straight to the server.
    let slow = s.config.clone();
    let fast = s.sweep_config();
    let first = std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "-c"])
        .arg(&slow)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_held(
        &lock_file(&s.state, "once", "INBOX"),
        Duration::from_secs(30),
        &s.log,
    );
    let second = once_util::sweep(&fast, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", shown(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("process {}", first.id())),
        "{}",
        shown(&second)
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", shown(&first));
    s.wait_all_moved(n);
}
