//! Scenario 7: one `imapsort run` holding 1,000 accounts (one IDLE connection each, implicit
//! TLS) on one Dovecot: the time until all are connected, RSS, push latency over the server's
//! own IDLE floor on one of them, CPU while idle, and the time until all are back after a
//! Dovecot restart.
//!
//! Dovecot gets its own instance here (it is restarted), with process and client limits for
//! that many sessions, and `fs.inotify.max_user_instances` is raised (Dovecot takes one inotify
//! instance per IDLE session; past the limit it polls every 30 s and pushes look 30 s late).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

use super::daemon::{Daemon, p50_p99_ms, raise_inotify, restore_inotify, write_private};
use super::push;

/// What one run showed.
pub struct Scale {
    pub accounts: usize,
    pub connected_after: Duration,
    pub rss_kb: u64,
    pub idle_cpu: f64,
    pub idle_window: Duration,
    /// (median, p99) in ms of the sorter, and of the floor.
    pub push: ((f64, f64), (f64, f64)),
    pub push_samples: usize,
    pub back_after: Duration,
}

fn user(i: usize) -> String {
    format!("s{i:04}")
}

fn config(d: &Dovecot, accounts: usize, state: &Path) -> String {
    let mut y = format!(
        "settings:\n  state_dir: {}\n  metrics_listen: 127.0.0.1:0\naccounts:\n",
        state.display()
    );
    for i in 0..accounts {
        let _ = write!(
            y,
            "  - name: {u}\n    host: 127.0.0.1\n    port: {port}\n    ca_file: {ca}\n    username: {u}\n    password: pass\n    trash: Trash\n    archive: Archive\n",
            u = user(i),
            port = d.imaps_port(),
            ca = d.ca_pem_path().display()
        );
    }
    y.push_str(
        "rules:\n  - name: push\n    when: { from: push@bench.example }\n    then: { move: Pushed }\n",
    );
    y
}

pub fn run(bin: &str, dir: &Path, accounts: usize, push_samples: usize, idle: Duration) -> Scale {
    let want = 2 * accounts as u64 + 256;
    let old_inotify = raise_inotify(want);
    let mut users: Vec<(String, String)> = vec![("user".into(), "pass".into())];
    users.extend((0..accounts).map(|i| (user(i), "pass".to_owned())));
    let n = accounts + 100;
    let mut d = Dovecot::start(DovecotOptions {
        users,
        extra_conf: format!(
            "default_process_limit = {n}\ndefault_client_limit = {c}\nservice anvil {{\n  client_limit = {c}\n}}\n\
             service imap {{\n  process_limit = {n}\n}}\nservice imap-login {{\n  process_limit = {n}\n}}\n",
            c = 4 * accounts + 1000
        ),
        ..DovecotOptions::default()
    })
    .expect("start dovecot for the scale scenario");
    let state = dir.join("scale-state");
    let _ = std::fs::remove_dir_all(&state);
    let cfg = dir.join("scale.yaml");
    write_private(&cfg, &config(&d, accounts, &state));

    let started = Instant::now();
    let daemon = Daemon::start(bin, &cfg, &dir.join("scale.log"), Duration::from_secs(30));
    daemon.wait_all_connected(Duration::from_secs(600));
    let connected_after = started.elapsed();
    eprintln!("  scale: {accounts} accounts connected after {connected_after:?}");
    // Catch-up and the first sweep are over; every worker is in IDLE.
    std::thread::sleep(Duration::from_secs(3));
    let rss_kb = daemon.rss_kb();
    let idle_cpu = daemon.cpu_share(idle);
    eprintln!(
        "  scale: RSS {:.1} MB, idle CPU {:.2} % of a core",
        rss_kb as f64 / 1024.0,
        idle_cpu * 100.0
    );

    let p = push::measure_running(&d, &user(0), push_samples);
    let push = (p50_p99_ms(&p.sorter), p50_p99_ms(&p.floor));
    eprintln!("  scale: push (ms) sorter {:?}, floor {:?}", push.0, push.1);

    d.restart().expect("restart dovecot");
    let back_after = daemon.wait_all_connected(Duration::from_secs(600));
    eprintln!("  scale: all back {back_after:?} after the restart");
    daemon.stop();
    // Kept for a look at what happened (connects, errors, the restart).
    let _ = std::fs::copy(dir.join("scale.log"), "target/bench-scale.log");
    let _ = std::fs::copy(
        d.dir().join("dovecot.log"),
        "target/bench-scale-dovecot.log",
    );
    drop(d);
    restore_inotify(old_inotify, want);
    Scale {
        accounts,
        connected_after,
        rss_kb,
        idle_cpu,
        idle_window: idle,
        push,
        push_samples: p.sorter.len(),
        back_after,
    }
}

pub fn table(report: &mut String, s: &Scale) {
    let ((om, op), (fm, fp)) = s.push;
    let _ = writeln!(
        report,
        "### 7. {} accounts on one Dovecot (one IDLE connection each, implicit TLS, max_connecting 8)\n\n\
         | measure | result | target |\n|---|---|---|\n\
         | all connected after start | {:.1} s | ≤ 30 s |\n\
         | RSS | {:.1} MB ({:.0} KB per account) | |\n\
         | CPU while idle ({} s) | {:.2} % of a core | < 1 % |\n\
         | push latency p50 / p99 ({} samples) | {:.1} / {:.1} ms | |\n\
         | the server's IDLE floor p50 / p99 | {:.1} / {:.1} ms | |\n\
         | above the floor, p50 / p99 | {:.1} / {:.1} ms | p99 ≤ 20 ms |\n\
         | all back after a Dovecot restart | {:.1} s | ≤ 30 s |\n",
        s.accounts,
        s.connected_after.as_secs_f64(),
        s.rss_kb as f64 / 1024.0,
        s.rss_kb as f64 * 1.024 / s.accounts as f64,
        s.idle_window.as_secs(),
        s.idle_cpu * 100.0,
        s.push_samples,
        om,
        op,
        fm,
        fp,
        om - fm,
        op - fp,
        s.back_after.as_secs_f64(),
    );
}
