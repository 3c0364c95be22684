//! The most natural thing a user does while setting rules up: `imapsort run` is sorting while
//! they run `imapsort sweep` again and again on the same configuration and state, and mail
//! keeps arriving. Nothing may be duplicated or lost (issue 11): at the end every original is
//! exactly once where the rules put it, and every copy exactly once — with `watch: [INBOX]`
//! and with `watch: [inbox]` (one mailbox, one state).

use crate::support::once_util;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::once_util::{Via, census_now, shown};

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

fn daemon_and_sweeps(watch: &str) {
    let Some(d) = crate::support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let account = once_util::account(
        &d,
        "once",
        Via::Tls,
        &format!("    watch: [{watch}]\n    first_start: all\n"),
    );
    let config = once_util::write_config(
        dir.path(),
        &dir.path().join("state"),
        "  sweep_interval: 2s\n",
        &account,
        RULES,
    );
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
    let wrong = || -> Vec<String> {
        let census = census_now(&rt, &d);
        (0..total)
            .filter_map(|n| {
                let got = once_util::places(&census, &subject(n));
                (got != expected(n)).then(|| format!("{}: {got:?}", subject(n)))
            })
            .collect()
    };
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
                show_log()
            )
        },
    );
    // A little longer: a late duplicate would show now.
    std::thread::sleep(Duration::from_secs(3));
    let wrong = wrong();
    assert!(
        wrong.is_empty(),
        "{} wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
    assert_eq!(once_util::stop(&mut daemon), Some(0), "{}", show_log());
}

#[test]
fn a_daemon_and_repeated_sweeps_while_mail_arrives_sort_everything_exactly_once() {
    daemon_and_sweeps("INBOX");
}

#[test]
fn the_same_with_inbox_spelled_in_lower_case_in_watch() {
    daemon_and_sweeps("inbox");
}
