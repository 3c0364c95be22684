//! Scenario 9: the history (docs/history.md).
//!
//! - `imapsort log --limit 100000` on a state database holding 1,000,000 history entries
//!   (written straight into a database the binary created, over 4 accounts and 11 days), as
//!   JSON and as text, and for one account (target: under 1 s);
//! - `imapsort undo --rule` of 10,000 moves on loopback Dovecot: 10,000 messages swept into
//!   one mailbox by one rule, then taken back (target: under 5 s). The server's result is
//!   checked: every message back in INBOX, none left behind. Each run moves and takes back
//!   10,000 new messages (one put back is never moved by the undone rule again).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

use super::{median, secs};

pub struct Results {
    pub entries: u64,
    pub db_mb: u64,
    pub log_json: Vec<Duration>,
    pub log_text: Vec<Duration>,
    pub log_account: Vec<Duration>,
    pub moves: usize,
    pub sweep: Duration,
    pub undo: Vec<Duration>,
    pub back: usize,
}

const ENTRIES: u64 = 1_000_000;
const MOVES: usize = 10_000;
const RUNS: usize = 3;

fn config(dir: &Path, state: &Path, port: u16, ca: &Path) -> std::path::PathBuf {
    let text = format!(
        "settings:\n  state_dir: {}\naccounts:\n  - name: a0\n    host: localhost\n    port: {port}\n    \
         ca_file: {}\n    username: u\n    password: pass\nrules:\n  - name: lists\n    when: {{ subject: bench }}\n    then: {{ move: Lists }}\n",
        state.display(),
        ca.display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn timed(bin: &str, args: &[&str]) -> Duration {
    let t = Instant::now();
    let status = Command::new(bin)
        .args(args)
        .env("IMAPSORT_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("run imapsort");
    let took = t.elapsed();
    assert!(
        matches!(status.code(), Some(0)),
        "imapsort {args:?}: {status}"
    );
    took
}

/// A state database of `ENTRIES` history entries, made by the binary (the schema) and filled
/// with SQL.
fn fill(bin: &str, config: &Path, state: &Path) -> u64 {
    // Any command that opens the state read-write creates it: an undo of nothing.
    let _ = Command::new(bin)
        .args(["undo", "--id", "0", "-c"])
        .arg(config)
        .env("IMAPSORT_LOG", "error")
        .stdout(Stdio::null())
        .status();
    let db = rusqlite::Connection::open(state.join("state.sqlite3")).expect("open state");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    db.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ENTRIES})
         INSERT INTO history (at, account, mailbox, uid_validity, uid, message_id, from_address,
                              subject, rules, plan, done)
         SELECT {now} - ({ENTRIES} - i) * 1000, 'a' || (i % 4), 'INBOX', 1, i,
                '<' || i || '@bench.example>', 'sender' || (i % 500) || '@lists.example',
                'Weekly digest number ' || i, '[\"lists\"]',
                '{{\"add_flags\":[],\"remove_flags\":[],\"add_labels\":[],\"copy\":[],\"final\":{{\"action\":\"move\",\"mailbox\":\"Lists\"}}}}',
                1
         FROM n;
         COMMIT;"
    ))
    .expect("fill the history");
    drop(db);
    std::fs::metadata(state.join("state.sqlite3"))
        .map(|m| m.len() >> 20)
        .unwrap_or(0)
}

pub fn run(bin: &str, dir: &Path) -> Results {
    let d = Dovecot::start(DovecotOptions {
        users: vec![("u".into(), "pass".into())],
        ..DovecotOptions::default()
    })
    .expect("start dovecot");

    // log: a separate state directory with the million entries.
    let log_dir = dir.join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log_state = log_dir.join("state");
    let log_config = config(&log_dir, &log_state, d.imaps_port(), &d.ca_pem_path());
    let t = Instant::now();
    let db_mb = fill(bin, &log_config, &log_state);
    eprintln!(
        "history: {ENTRIES} entries ({db_mb} MB) in {}",
        secs(t.elapsed())
    );
    let c = log_config.to_str().unwrap();
    let mut log_json = Vec::new();
    let mut log_text = Vec::new();
    let mut log_account = Vec::new();
    for _ in 0..RUNS {
        log_json.push(timed(
            bin,
            &["log", "-c", c, "--limit", "100000", "--format", "json"],
        ));
        log_text.push(timed(bin, &["log", "-c", c, "--limit", "100000"]));
        log_account.push(timed(
            bin,
            &[
                "log",
                "-c",
                c,
                "--limit",
                "100000",
                "--account",
                "a1",
                "--since",
                "30d",
            ],
        ));
    }
    eprintln!(
        "history: log json {}, text {}, one account {}",
        secs(median(&log_json)),
        secs(median(&log_text)),
        secs(median(&log_account))
    );
    let _ = std::fs::remove_dir_all(&log_dir);

    // undo: MOVES messages swept into Lists by one rule, then taken back, RUNS times.
    let undo_dir = dir.join("undo");
    std::fs::create_dir_all(&undo_dir).unwrap();
    let undo_state = undo_dir.join("state");
    let undo_config = config(&undo_dir, &undo_state, d.imaps_port(), &d.ca_pem_path());
    let c = undo_config.to_str().unwrap();
    let mail: Vec<Vec<u8>> = (0..MOVES)
        .map(|i| {
            format!(
                "From: Sender <sender{}@lists.example>\r\nTo: u@example.com\r\nSubject: bench {i}\r\n\
                 Message-ID: <{i}@undo.bench>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n\
                 Body {i}.\r\n",
                i % 50
            )
            .into_bytes()
        })
        .collect();
    let mut undo = Vec::new();
    let mut sweep = Duration::ZERO;
    for run in 0..RUNS {
        // Fresh messages each run: those put back before are never moved by `lists` again.
        let batch: Vec<Vec<u8>> = mail
            .iter()
            .map(|m| {
                String::from_utf8_lossy(m)
                    .replace("@undo.bench>", &format!(".{run}@undo.bench>"))
                    .into_bytes()
            })
            .collect();
        d.seed("u", "INBOX", &batch).expect("seed");
        let took = timed(bin, &["sweep", "-c", c]);
        if run == 0 {
            sweep = took;
        }
        undo.push(timed(bin, &["undo", "-c", c, "--rule", "lists"]));
        eprintln!(
            "history: undo of {MOVES} moves, run {run}: {}",
            secs(undo[run])
        );
    }
    let back = inbox_count(&d);
    let _ = std::fs::remove_dir_all(&undo_dir);
    Results {
        entries: ENTRIES,
        db_mb,
        log_json,
        log_text,
        log_account,
        moves: MOVES,
        sweep,
        undo,
        back,
    }
}

/// Messages in INBOX (maildir `cur` + `new`), and none left in Lists.
fn inbox_count(d: &Dovecot) -> usize {
    let count = |dir: std::path::PathBuf| {
        ["cur", "new"]
            .iter()
            .map(|s| std::fs::read_dir(dir.join(s)).map_or(0, |r| r.count()))
            .sum::<usize>()
    };
    let lists = count(d.mailbox_dir("u", "Lists"));
    assert_eq!(lists, 0, "messages left in Lists after undo");
    count(d.mailbox_dir("u", "INBOX"))
}

pub fn table(report: &mut String, r: &Results) {
    let _ = writeln!(
        report,
        "### 9. History: `imapsort log` and `imapsort undo` (medians of {RUNS})\n\n\
         | measure | result | target |\n|---|---|---|\n\
         | `log --limit 100000 --format json`, {} entries ({} MB database) | {} | < 1 s |\n\
         | `log --limit 100000` (text, aligned) | {} | < 1 s |\n\
         | `log --limit 100000 --account a1 --since 30d` | {} | < 1 s |\n\
         | `undo --rule` of {} moves (sweep that moved them: {}) | {} | < 5 s |\n\
         | messages back in INBOX after the runs | {} of {} | all |\n\n\
         Each undo run takes back {} new moves; the entries earlier runs took back are selected too \
         and answered as already undone.\n",
        r.entries,
        r.db_mb,
        secs(median(&r.log_json)),
        secs(median(&r.log_text)),
        secs(median(&r.log_account)),
        r.moves,
        secs(r.sweep),
        secs(median(&r.undo)),
        r.back,
        r.moves * RUNS,
        r.moves,
    );
}
