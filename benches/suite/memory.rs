//! Resident memory of `imapsort run`: with one account, and with many accounts on the same
//! server (one IDLE connection each), measured once every connection is up and idle.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imapsort_testkit::dovecot::Dovecot;

use super::mailstore::proc_status_kb;

/// What one daemon run showed.
pub struct Rss {
    /// Accounts in the configuration.
    pub accounts: usize,
    /// VmRSS once all connections were idle, KiB.
    pub rss_kb: u64,
    /// VmHWM at that point, KiB.
    pub peak_kb: u64,
    /// How long until every connection was up.
    pub startup: Duration,
}

/// Established IPv4 connections to `port` (client side: remote port = `port`).
fn connections_to(port: u16) -> usize {
    let want = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&want) && f[3] == "01"
        })
        .count()
}

fn config(d: &Dovecot, users: &[String], state_dir: &Path) -> String {
    let mut y = format!(
        "settings:\n  state_dir: {}\naccounts:\n",
        state_dir.display()
    );
    for u in users {
        y.push_str(&format!(
            "  - name: {u}\n    host: 127.0.0.1\n    port: {}\n    tls: none\n    allow_insecure: true\n    username: {u}\n    password: pass\n",
            d.imap_port()
        ));
    }
    y.push_str(
        "rules:\n  - name: github\n    when: { from: notifications@github.example }\n    then: { move: Dev/GitHub }\n",
    );
    y
}

/// Runs the daemon over `users` (their INBOXes must exist) until every connection is idle.
pub fn measure(bin: &str, d: &Dovecot, users: &[String], dir: &Path) -> Rss {
    let state = dir.join(format!("mem-state-{}", users.len()));
    let cfg = dir.join(format!("mem-{}.yaml", users.len()));
    std::fs::write(&cfg, config(d, users, &state)).expect("write config");
    let before = connections_to(d.imap_port());
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["run", "-c"])
        .arg(&cfg)
        .env("IMAPSORT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start imapsort run");
    let pid = child.id();
    while connections_to(d.imap_port()) < before + users.len() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {} of {} connections came up",
            connections_to(d.imap_port()) - before,
            users.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let startup = start.elapsed();
    // Catch-up, then IDLE: give every worker time to settle.
    std::thread::sleep(Duration::from_secs(3));
    let rss_kb = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
    let peak_kb = proc_status_kb(pid, "VmHWM:").unwrap_or(0);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let waited = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if waited.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Rss {
        accounts: users.len(),
        rss_kb,
        peak_kb,
        startup,
    }
}
