//! The state must be writable before the server is changed (RULES.md, Command line): on a
//! full disk under the state directory, `imapsort sweep` changes nothing and exits 74 naming
//! the state file (`--dry-run` still works); the daemon acts on nothing, stays up, and once
//! there is space again finishes the work exactly once.
//!
//! The state directory lives on a small tmpfs the test mounts (root only; CI runs as root,
//! and there these tests never skip); a drop guard unmounts it.

use crate::support::once_util;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::once_util::{Via, at, census_now, places, shown};

const RULES: &str = "  - { name: invoices, when: { subject: invoice }, then: [{ flag: \\Flagged }, { copy: Accounting }] }\n  \
    - { name: lists, when: { list_id: { exists: true } }, then: { move: Lists } }\n";

/// A tmpfs of `size` mounted at `path`, unmounted on drop.
struct Mount {
    path: PathBuf,
}

impl Mount {
    /// `None` (skipped loudly) when not root outside CI; in CI a failure to mount panics.
    fn tmpfs(path: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status();
        match status {
            Ok(s) if s.success() => Some(Mount {
                path: path.to_owned(),
            }),
            other => {
                if std::env::var_os("CI").is_some() {
                    panic!("cannot mount a tmpfs ({other:?}); CI runs the tests as root");
                }
                eprintln!("SKIPPED: cannot mount a tmpfs (not root?): {other:?}");
                None
            }
        }
    }

    /// Fills the filesystem with one file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        // The last partial writes too.
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn mail() -> Vec<Vec<u8>> {
    let list = "From: L <l@example.com>\r\nTo: user@example.com\r\nSubject: list 1\r\n\
                Message-ID: <l1@once.test>\r\nList-Id: <l.once.test>\r\n\
                Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBody.\r\n";
    vec![
        once_util::message(Some("i1@once.test"), "invoice 1"),
        once_util::message(None, "invoice 2"),
        list.as_bytes().to_vec(),
    ]
}

fn untouched(census: &std::collections::BTreeMap<String, Vec<once_util::Seen>>) -> bool {
    census.get("INBOX").map(Vec::len) == Some(3)
        && census["INBOX"].iter().all(|m| m.flags.is_empty())
        && census.get("Accounting").is_none_or(Vec::is_empty)
        && census.get("Lists").is_none_or(Vec::is_empty)
}

fn done_once(census: &std::collections::BTreeMap<String, Vec<once_util::Seen>>) {
    assert_eq!(
        places(census, "invoice 1"),
        at(&[("Accounting", 1), ("INBOX", 1)])
    );
    assert_eq!(
        places(census, "invoice 2"),
        at(&[("Accounting", 1), ("INBOX", 1)])
    );
    assert_eq!(places(census, "list 1"), at(&[("Lists", 1)]));
    assert!(
        census["INBOX"].iter().all(|m| m.flags == ["\\Flagged"]),
        "{census:?}"
    );
}

#[test]
fn a_sweep_on_a_full_disk_changes_nothing_and_exits_74() {
    let Some(d) = crate::support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(&dir.path().join("fs"), "1m") else {
        return;
    };
    let state = mount.path.join("state");
    let account = once_util::account(&d, "once", Via::Tls, "");
    let config = once_util::write_config(dir.path(), &state, "", &account, RULES);
    // The database exists (a first sweep with nothing to do), then the disk fills up.
    let out = once_util::sweep(&config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    mount.fill();
    d.seed("user", "INBOX", &mail()).unwrap();
    let rt = once_util::runtime();

    let out = once_util::sweep(&config, &[]);
    assert_eq!(out.status.code(), Some(74), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state.sqlite3"),
        "the state file is not named\n{}",
        shown(&out)
    );
    assert!(
        untouched(&census_now(&rt, &d)),
        "the server was changed\n{}",
        shown(&out)
    );

    let dry = once_util::sweep(&config, &["--dry-run", "--format", "json"]);
    assert_eq!(dry.status.code(), Some(0), "{}", shown(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("\"matched\":3"),
        "{}",
        shown(&dry)
    );
    assert!(untouched(&census_now(&rt, &d)));

    mount.free();
    let out = once_util::sweep(&config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    done_once(&census_now(&rt, &d));
    let again = once_util::sweep(&config, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", shown(&again));
    done_once(&census_now(&rt, &d));
}

#[test]
fn a_sweep_with_a_fresh_state_directory_on_a_full_disk_exits_74() {
    let Some(d) = crate::support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(&dir.path().join("fs"), "1m") else {
        return;
    };
    mount.fill();
    d.seed("user", "INBOX", &mail()).unwrap();
    let account = once_util::account(&d, "once", Via::Tls, "");
    let config =
        once_util::write_config(dir.path(), &mount.path.join("state"), "", &account, RULES);
    let out = once_util::sweep(&config, &[]);
    assert_eq!(out.status.code(), Some(74), "{}", shown(&out));
    assert!(
        untouched(&census_now(&once_util::runtime(), &d)),
        "{}",
        shown(&out)
    );
}

/// The metrics address from the daemon's `serving /metrics and /health` log line.
fn metrics_addr(log: &str) -> Option<std::net::SocketAddr> {
    log.lines()
        .filter(|l| l.contains("serving /metrics and /health"))
        .find_map(|l| {
            l.split("address=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

/// `/health` (code, JSON) and `errors_total{kind="state"}` of the account `once`.
fn observed(
    rt: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> (u16, serde_json::Value, f64) {
    use crate::support::http::{health, http_get, sample};
    rt.block_on(async {
        let (code, json) = health(addr).await;
        let (_, text) = http_get(addr, "/metrics").await;
        let state = sample(
            &text,
            r#"imapsort_errors_total{account="once",kind="state"}"#,
        )
        .unwrap_or_else(|| panic!("no state errors series in\n{text}"));
        (code, json, state)
    })
}

/// The daemon, started on a full disk or running when it fills, acts on nothing and stays
/// up, and says so on `/health` (degraded, still connected) and in `errors_total{kind="state"}`;
/// when space is back it finishes exactly once and `/health` is ok again.
fn daemon_waits_for_space(fill_before_start: bool) {
    let Some(d) = crate::support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(&dir.path().join("fs"), "1m") else {
        return;
    };
    let state = mount.path.join("state");
    let account = once_util::account(&d, "once", Via::Tls, "");
    let settings = "  metrics_listen: 127.0.0.1:0\n";
    let config = once_util::write_config(dir.path(), &state, settings, &account, RULES);
    let log = dir.path().join("run.log");
    let out = once_util::sweep(&config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let rt = once_util::runtime();
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
    if fill_before_start {
        mount.fill();
    }
    let mut daemon = once_util::spawn_run(&config, &log);
    if !fill_before_start {
        once_util::wait_for(
            "the daemon's IDLE",
            Duration::from_secs(30),
            || show_log().contains("connected"),
            show_log,
        );
        std::thread::sleep(Duration::from_millis(500));
        mount.fill();
    }
    d.seed("user", "INBOX", &mail()).unwrap();
    once_util::wait_for(
        "the daemon to say the state is not writable",
        Duration::from_secs(30),
        || show_log().contains("state database is not writable"),
        show_log,
    );
    let addr =
        metrics_addr(&show_log()).unwrap_or_else(|| panic!("no metrics address\n{}", show_log()));
    // Connected, so HTTP 200; degraded, with the failure counted and named.
    let mut seen = None;
    once_util::wait_for(
        "/health to say degraded while connected",
        Duration::from_secs(30),
        || {
            let now = observed(&rt, addr);
            let ok = now.0 == 200 && now.1["status"] == "degraded" && now.2 >= 1.0;
            seen = Some(now);
            ok
        },
        show_log,
    );
    let (_, json, _) = seen.unwrap();
    assert_eq!(json["accounts"]["once"]["connected"], true, "{json}");
    assert!(
        json["accounts"]["once"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not writable")),
        "{json}"
    );
    // A few more seconds: still nothing done, still running.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        untouched(&census_now(&rt, &d)),
        "the daemon acted\n{}",
        show_log()
    );
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon exited\n{}",
        show_log()
    );

    mount.free();
    once_util::wait_for(
        "the work done",
        Duration::from_secs(60),
        || {
            let c = census_now(&rt, &d);
            c.get("Lists").is_some_and(|l| l.len() == 1)
                && c.get("Accounting").is_some_and(|a| a.len() == 2)
        },
        show_log,
    );
    once_util::wait_for(
        "/health to say ok again",
        Duration::from_secs(30),
        || {
            let (code, json, _) = observed(&rt, addr);
            code == 200 && json["status"] == "ok"
        },
        show_log,
    );
    std::thread::sleep(Duration::from_secs(2));
    done_once(&census_now(&rt, &d));
    assert_eq!(once_util::stop(&mut daemon), Some(0), "{}", show_log());
}

#[test]
fn the_daemon_started_on_a_full_disk_acts_on_nothing_until_there_is_space() {
    daemon_waits_for_space(true);
}

#[test]
fn the_daemon_acts_on_nothing_while_the_disk_is_full_and_finishes_once_after() {
    daemon_waits_for_space(false);
}
