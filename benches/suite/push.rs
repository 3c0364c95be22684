//! Push latency: APPEND on one connection -> the message lies in its destination mailbox.
//!
//! Per sample, one APPEND goes to the INBOX a sorter watches (imapsort's daemon, or
//! imapfilter's `enter_idle()` loop), where a bare IDLE client of ours waits too. The clock
//! starts at the APPEND's tagged OK. The sorter's sample ends when the moved file appears in the
//! destination maildir (polled every 0.5 ms on tmpfs: no IMAP session of ours adds load or
//! delay); the floor's sample ends when the bare IDLE client reads `* n EXISTS` for the same
//! message. Dovecot holds IDLE notifications back (500 ms after the first change it sees), so
//! the floor is up to 500 ms; the sorter can only add to it (SEARCH, FETCH, MOVE). Rounds are
//! 600 ms apart after the move, so the move's own EXPUNGE notification has gone out before the
//! next APPEND and cannot carry the next EXISTS early.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imapsort_testkit::dovecot::Dovecot;

use super::raw::Raw;

/// Latencies of one sorter and of the floor measured alongside it.
pub struct PushResult {
    pub sorter: Vec<Duration>,
    pub floor: Vec<Duration>,
}

fn files_in(dir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|s| {
            std::fs::read_dir(dir.join(s))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: Push Bench <push@bench.example>\r\nTo: me@home.example\r\nSubject: push {n}\r\n\
         Message-ID: <push{n}.{}@bench.example>\r\nDate: Thu, 26 Nov 2026 01:00:00 +0000\r\n\r\nhello {n}\r\n",
        std::process::id()
    )
    .into_bytes()
}

/// The rule the sorters run, in YAML.
pub fn imapsort_yaml(port: u16, user: &str, state_dir: &Path) -> String {
    format!(
        "settings:\n  state_dir: {}\naccounts:\n  - name: push\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    \
         allow_insecure: true\n    username: {user}\n    password: pass\n\
         rules:\n  - name: push\n    when: {{ from: push@bench.example }}\n    then: {{ move: Pushed }}\n",
        state_dir.display()
    )
}

/// The same as an imapfilter loop around `enter_idle()`.
pub fn imapfilter_lua(port: u16, user: &str) -> String {
    format!(
        "options.timeout = 600\noptions.create = true\noptions.info = false\noptions.certificates = false\n\
         options.starttls = false\n\
         a = IMAP {{ server = '127.0.0.1', port = {port}, username = '{user}', password = 'pass' }}\n\
         a.INBOX:contain_from('push@bench.example'):move_messages(a['Pushed'])\n\
         while true do\n  a.INBOX:enter_idle()\n  a.INBOX:contain_from('push@bench.example'):move_messages(a['Pushed'])\nend\n"
    )
}

/// Starts a bare IDLE client on `user`'s INBOX; each `EXISTS` it reads is sent with its time.
fn idle_floor(port: u16, user: &str) -> mpsc::Receiver<Instant> {
    let mut s = Raw::login(port, user).expect("floor login");
    s.cmd("SELECT INBOX").expect("select");
    s.start_idle().expect("idle");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(line) = s.read_line() {
            if line.contains("EXISTS") && tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until `dir` holds `count` files; when it does.
fn wait_files(dir: &Path, count: usize, limit: Duration) -> Option<Instant> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if files_in(dir) >= count {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

/// Measures `samples` pushes through `sorter` (already started, watching `user`), with the
/// floor measured on the same mailbox. The sorter is stopped at the end.
pub fn measure(d: &Dovecot, user: &str, mut sorter: Child, samples: usize) -> PushResult {
    let result = measure_running(d, user, samples);
    let _ = sorter.kill();
    let _ = sorter.wait();
    result
}

/// [`measure`] with a sorter that the caller started and stops.
pub fn measure_running(d: &Dovecot, user: &str, samples: usize) -> PushResult {
    let port = d.imap_port();
    let dest = d.mailbox_dir(user, "Pushed");
    let mut to_sorter = Raw::login(port, user).expect("login");
    let floor_rx = idle_floor(port, user);
    // Warm-up: the sorter is connected and idle once a first message has been moved.
    let mut n = 0;
    let mut in_dest = files_in(&dest);
    let ready = Instant::now();
    loop {
        to_sorter.append("INBOX", &message(n)).expect("append");
        n += 1;
        in_dest += 1;
        if wait_files(&dest, in_dest, Duration::from_secs(10)).is_some() {
            break;
        }
        in_dest = files_in(&dest);
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "the sorter never moved a pushed message"
        );
    }
    std::thread::sleep(Duration::from_millis(700));
    while floor_rx.try_recv().is_ok() {}
    let mut result = PushResult {
        sorter: Vec::new(),
        floor: Vec::new(),
    };
    for _ in 0..samples {
        to_sorter.append("INBOX", &message(n)).expect("append");
        let t_sorter = Instant::now();
        let t_floor = t_sorter;
        n += 1;
        in_dest += 1;
        // The destination is watched on its own thread, so waiting for the floor's EXISTS
        // cannot delay the sorter's sample.
        let watcher = {
            let dest = dest.clone();
            std::thread::spawn(move || wait_files(&dest, in_dest, Duration::from_secs(30)))
        };
        // When the sorter's session is notified first and moves the message before the bare
        // client's notification fires, Dovecot reports neither EXISTS nor EXPUNGE to it: no
        // floor sample for that round.
        if let Ok(seen) = floor_rx.recv_timeout(Duration::from_millis(1500)) {
            result.floor.push(seen.saturating_duration_since(t_floor));
        }
        match watcher.join().ok().flatten() {
            Some(at) => result.sorter.push(at - t_sorter),
            None => {
                eprintln!("push: a message was not moved within 30 s");
                in_dest = files_in(&dest);
            }
        }
        // Let the notifications of this round (the move's EXPUNGE) pass before the next.
        std::thread::sleep(Duration::from_millis(600));
        while floor_rx.try_recv().is_ok() {}
    }
    result
}

/// Starts `imapsort run` on a config file.
pub fn start_imapsort(bin: &str, config: &Path) -> Child {
    Command::new(bin)
        .args(["run", "-c"])
        .arg(config)
        .env("IMAPSORT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start imapsort run")
}

/// Starts imapfilter on a Lua file.
pub fn start_imapfilter(config: &Path, home: &Path) -> Child {
    Command::new("imapfilter")
        .arg("-c")
        .arg(config)
        .env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start imapfilter")
}

/// (median, p99) of a sample.
pub fn median_p99(v: &[Duration]) -> (Duration, Duration) {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let p99 = ((s.len() * 99).div_ceil(100)).saturating_sub(1);
    (s[s.len() / 2], s[p99.min(s.len() - 1)])
}
