//! The most natural thing a user does while setting rules up: `imapsort run` is sorting while
//! they run `imapsort sweep` again and again on the same configuration and state, and mail
//! keeps arriving. Nothing may be duplicated or lost (issue 11): at the end every original is
//! exactly once where the rules put it, and every copy exactly once — with `watch: [INBOX]`
//! and with `watch: [inbox]` (one mailbox, one state). And a sweep of a big backlog whose
//! results are written while its move runs, beside the daemon writing the same state.

use crate::support::once_util;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::once_util::{Seen, Via, census_now, shown};

const RULES: &str = "  - { name: invoices, when: { subject: invoice }, then: [{ flag: \\Flagged }, { copy: Accounting }] }\n  \
    - { name: lists, when: { list_id: { exists: true } }, then: [{ flag: $Listed }, { move: \"Lists/{list_id}\" }] }\n  \
    - { name: spam, when: { subject: \"[spam]\" }, then: trash }\n  \
    - { name: sweep read, when: { all: [{ seen: true }, { subject: old }] }, on: sweep, then: { move: Old } }\n";

/// Message `n`: its class (`n % 5`) says where it must end.
fn message(n: usize) -> imapsort_testkit::dovecot::SeedMessage {
    let (subject, extra, flags) = match n % 5 {
        0 => (format!("invoice {n}"), String::new(), vec![]),
        1 => (
            format!("post {n}"),
            format!("List-Id: <l{}.once.test>\r\n", n % 2),
            vec![],
        ),
        2 => (format!("[spam] {n}"), String::new(), vec![]),
        3 => (
            format!("old {n}"),
            String::new(),
            vec!["\\Seen".to_string()],
        ),
        _ => (format!("plain {n}"), String::new(), vec![]),
    };
    let bytes = format!(
        "From: S <s{n}@example.com>\r\nTo: user@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <c{n}@once.test>\r\n{extra}Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBody {n}.\r\n"
    )
    .into_bytes();
    imapsort_testkit::dovecot::SeedMessage {
        bytes,
        flags,
        internal_date: None,
    }
}

/// Where message `n` must be: (mailbox, count) pairs.
fn expected(n: usize) -> BTreeMap<String, usize> {
    let list = format!("Lists/l{}.once.test", n % 2);
    let v: Vec<(&str, usize)> = match n % 5 {
        0 => vec![("INBOX", 1), ("Accounting", 1)],
        1 => vec![(list.as_str(), 1)],
        2 => vec![("Trash", 1)],
        3 => vec![("Old", 1)],
        _ => vec![("INBOX", 1)],
    };
    once_util::at(&v)
}

fn subject(n: usize) -> String {
    match n % 5 {
        0 => format!("invoice {n}"),
        1 => format!("post {n}"),
        2 => format!("[spam] {n}"),
        3 => format!("old {n}"),
        _ => format!("plain {n}"),
    }
}

/// `dir/config.yaml`: one account of `d` over TLS watching `watch` (first start: all), a
/// sweep every 2 s, state in `dir/state`, `rules`.
fn write_config(
    d: &imapsort_testkit::dovecot::Dovecot,
    dir: &std::path::Path,
    watch: &str,
    rules: &str,
) -> std::path::PathBuf {
    let account = once_util::account(
        d,
        "once",
        Via::Tls,
        &format!("    watch: [{watch}]\n    first_start: all\n"),
    );
    once_util::write_config(
        dir,
        &dir.join("state"),
        "  sweep_interval: 2s\n",
        &account,
        rules,
    )
}

fn daemon_and_sweeps(watch: &str) {
    let Some(d) = crate::support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&d, dir.path(), watch, RULES);
    let log = dir.path().join("run.log");
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let batch = 60;
    let rounds = 6;
    d.seed_with(
        "user",
        "INBOX",
        &(0..batch).map(message).collect::<Vec<_>>(),
    )
    .unwrap();
    let mut daemon = once_util::spawn_run(&config, &log);
    let mut sweeps = Vec::new();
    for round in 1..rounds {
        let from = round * batch;
        d.seed_with(
            "user",
            "INBOX",
            &(from..from + batch).map(message).collect::<Vec<_>>(),
        )
        .unwrap();
        let out = once_util::sweep(&config, &[]);
        assert_eq!(out.status.code(), Some(0), "sweep {round}\n{}", shown(&out));
        sweeps.push(out);
    }
    let total = rounds * batch;
    let rt = once_util::runtime();
    settled(|| misplaced(&census_now(&rt, &d), total), show_log);
    assert_eq!(once_util::stop(&mut daemon), Some(0), "{}", show_log());
}

/// The messages `0..total` that are not exactly where [`expected`] says.
fn misplaced(census: &BTreeMap<String, Vec<Seen>>, total: usize) -> Vec<String> {
    (0..total)
        .filter_map(|n| {
            let got = once_util::places(census, &subject(n));
            (got != expected(n)).then(|| format!("{}: {got:?}", subject(n)))
        })
        .collect()
}

/// Waits until `wrong` finds nothing (at most 90 s), and 3 s more, when a late duplicate
/// would show: `wrong` must still find nothing.
fn settled(wrong: impl Fn() -> Vec<String>, log: impl Fn() -> String) {
    once_util::wait_for(
        "every message where the rules put it",
        Duration::from_secs(90),
        || wrong().is_empty(),
        || {
            let w = wrong();
            format!(
                "{} wrong, first: {:?}\n--- log ---\n{}",
                w.len(),
                &w[..w.len().min(10)],
                log()
            )
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let w = wrong();
    assert!(
        w.is_empty(),
        "{} wrong: {:?}",
        w.len(),
        &w[..w.len().min(20)]
    );
}

#[test]
fn a_daemon_and_repeated_sweeps_while_mail_arrives_sort_everything_exactly_once() {
    daemon_and_sweeps("INBOX");
}

#[test]
fn the_same_with_inbox_spelled_in_lower_case_in_watch() {
    daemon_and_sweeps("inbox");
}

/// A sweep's results are written while its closing `UID MOVE` runs (a batch of 100 messages
/// or more holds the state's write lock through that round trip), in the same state database
/// as a daemon that sorts the new mail arriving meanwhile: the daemon's writes wait for the
/// lock (at most the write-ahead's 4 s bound, within SQLite's 5 s busy timeout), nothing
/// fails, and every message of both ends exactly once where the rules put it. (With SQLite's
/// busy timeout cut to 10 ms, the daemon's writes during the move fail, "database is locked",
/// and this test fails in about half the runs.)
#[test]
fn a_sweep_writing_ahead_beside_a_daemon_writing_the_same_state_loses_and_repeats_nothing() {
    let Some(d) = crate::support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Backlog is not watched and has no sweep rule: only `imapsort sweep` acts on it.
    let rules = format!(
        "{RULES}  - {{ name: backlog, mailboxes: [Backlog], on: new, when: {{ subject: backlog }}, \
         then: {{ move: Done }} }}\n"
    );
    let config = write_config(&d, dir.path(), "INBOX", &rules);
    let backlog = 4000;
    let seeded: Vec<_> = (0..backlog)
        .map(|n| imapsort_testkit::dovecot::SeedMessage {
            bytes: once_util::message(Some(&format!("b{n}@once.test")), &format!("backlog {n}")),
            flags: vec![],
            internal_date: None,
        })
        .collect();
    d.seed_with("user", "Backlog", &seeded).unwrap();
    let log = dir.path().join("run.log");
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let batch = 20;
    let mut total = batch;
    d.seed_with(
        "user",
        "INBOX",
        &(0..total).map(message).collect::<Vec<_>>(),
    )
    .unwrap();
    let mut daemon = once_util::spawn_run(&config, &log);
    once_util::wait_for(
        "the daemon sorting INBOX",
        Duration::from_secs(30),
        || show_log().contains("sorted"),
        show_log,
    );
    let sweep = std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "--mailbox", "Backlog", "-c"])
        .arg(&config)
        .env("IMAPSORT_LOG", "info,imapsort::pass=debug")
        .env_remove("JOURNAL_STREAM")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // New mail for the daemon, 20 messages at a time, until the sweep is over.
    let done = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let out = sweep.wait_with_output().unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            out
        });
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let mail: Vec<_> = (total..total + batch).map(message).collect();
            d.seed_with("user", "INBOX", &mail).unwrap();
            total += batch;
            std::thread::sleep(Duration::from_millis(50));
        }
        waiter.join().unwrap()
    });
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("sweep recorded") && l.contains("ahead=true")),
        "the sweep's results were not written ahead\n{}",
        shown(&out)
    );
    let rt = once_util::runtime();
    let want: Vec<String> = {
        let mut v: Vec<String> = (0..backlog).map(|n| format!("backlog {n}")).collect();
        v.sort();
        v
    };
    let wrong = || -> Vec<String> {
        let census = census_now(&rt, &d);
        let mut wrong = misplaced(&census, total);
        let done: Vec<&str> = census
            .get("Done")
            .map(|s| s.iter().map(|m| m.subject.as_str()).collect())
            .unwrap_or_default();
        if done != want {
            wrong.push(format!(
                "Done holds {} messages, not the {backlog} backlog ones",
                done.len()
            ));
        }
        if census.get("Backlog").is_some_and(|s| !s.is_empty()) {
            wrong.push("Backlog is not empty".into());
        }
        wrong
    };
    settled(wrong, show_log);
    let daemon_log = show_log();
    assert!(
        !daemon_log.contains("locked") && !daemon_log.contains("ERROR"),
        "{daemon_log}"
    );
    assert_eq!(once_util::stop(&mut daemon), Some(0), "{daemon_log}");
}
