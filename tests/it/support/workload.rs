//! The workload of the soak and crash tests, and the invariants checked after them with an
//! independent connection.
//!
//! Every message has a unique Message-ID `<s{n}@soak.test>` and a class (`n % 10`) that says
//! where the rules of [`RULES`] must leave it and with which flags:
//!
//! | class | message | expected |
//! |---|---|---|
//! | 0, 1, 2 | List-Id `l{n%3}.soak` | moved to `Lists/l{k}.soak`, `$Listed` |
//! | 3 | subject "invoice" | stays in INBOX, `\Flagged`; one copy in `Accounting` |
//! | 4 | invoice on a list | moved to `Lists/...`, `\Flagged` + `$Listed`; one copy in `Accounting` |
//! | 5 | subject "[spam]" | moved to Trash |
//! | 6 | from `@noise.example` | stays in INBOX, `\Seen` |
//! | 7, 8 | plain | stays in INBOX, none of the rules' flags |
//! | 9 | `\Seen`, arrived 400 days ago | archived by the sweep rule |
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use imapsort::imap::{Session, connect};
use imapsort_testkit::dovecot::{Dovecot, SeedMessage};
use secrecy::SecretString;

/// The rule set: moves, copies, flags, trash, and an age-based sweep rule.
pub const RULES: &str = r#"rules:
  - name: invoices
    when: { subject: { contains: invoice } }
    then: [{ flag: \Flagged }, { copy: Accounting }]
  - name: lists
    when: { list_id: { exists: true } }
    then: [{ flag: $Listed }, { move: "Lists/{list_id}" }]
  - name: spam
    when: { subject: { contains: "[spam]" } }
    then: trash
  - name: noise
    when: { from: "@noise.example" }
    then: mark_read
  - name: archive old read mail
    when: { all: [{ older_than: 30d }, { seen: true }] }
    then: archive
"#;

/// Message `n` of the workload, with its flags and arrival time.
pub fn message(n: usize) -> SeedMessage {
    let class = n % 10;
    let mut headers = String::new();
    let mut subject = format!("message {n}");
    let mut from = format!("sender{n}@example.com");
    let mut flags = Vec::new();
    let mut internal_date = None;
    match class {
        0..=2 => headers.push_str(&format!("List-Id: Soak list <l{}.soak>\r\n", n % 3)),
        3 => subject.push_str(" invoice"),
        4 => {
            subject.push_str(" invoice");
            headers.push_str(&format!("List-Id: <l{}.soak>\r\n", n % 3));
        }
        5 => subject.push_str(" [spam]"),
        6 => from = format!("bot{n}@noise.example"),
        9 => {
            flags.push("\\Seen".to_string());
            internal_date = Some(SystemTime::now() - Duration::from_secs(400 * 86_400));
        }
        _ => {}
    }
    let bytes = format!(
        "From: Sender <{from}>\r\nTo: user@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <s{n}@soak.test>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n{headers}\r\n\
         Body of soak message {n}.\r\n"
    )
    .into_bytes();
    SeedMessage {
        bytes,
        flags,
        internal_date,
    }
}

/// Where message `n` must end up: (mailbox, flags it must have, flags it must not have),
/// and the mailbox of its copy, if any.
pub fn expected(
    n: usize,
) -> (
    String,
    Vec<&'static str>,
    Vec<&'static str>,
    Option<&'static str>,
) {
    let list = format!("Lists/l{}.soak", n % 3);
    match n % 10 {
        0..=2 => (list, vec!["$Listed"], vec!["\\Flagged"], None),
        3 => (
            "INBOX".into(),
            vec!["\\Flagged"],
            vec!["$Listed", "\\Seen"],
            Some("Accounting"),
        ),
        4 => (
            list,
            vec!["\\Flagged", "$Listed"],
            vec![],
            Some("Accounting"),
        ),
        5 => ("Trash".into(), vec![], vec!["$Listed", "\\Flagged"], None),
        6 => (
            "INBOX".into(),
            vec!["\\Seen"],
            vec!["$Listed", "\\Flagged"],
            None,
        ),
        7 | 8 => (
            "INBOX".into(),
            vec![],
            vec!["$Listed", "\\Flagged", "\\Seen"],
            None,
        ),
        _ => ("Archive".into(), vec!["\\Seen"], vec![], None),
    }
}

/// Every mailbox the workload can touch.
pub fn mailboxes() -> Vec<String> {
    let mut v: Vec<String> = ["INBOX", "Accounting", "Trash", "Archive"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend((0..3).map(|k| format!("Lists/l{k}.soak")));
    v
}

/// Seed messages `range` into INBOX (maildir delivery: Dovecot sees them as new mail).
pub fn deliver(d: &Dovecot, range: std::ops::Range<usize>) {
    let batch: Vec<SeedMessage> = range.map(message).collect();
    d.seed_with("user", "INBOX", &batch).expect("seed");
}

/// A direct session to the private Dovecot (not through any proxy).
pub async fn observer(d: &Dovecot) -> Session {
    connect(
        &crate::support::dovecot::connect_opts(d, "user"),
        &SecretString::from("pass".to_string()),
    )
    .await
    .expect("observer login")
}

/// Message-ID number -> every (mailbox, flags) instance, over all workload mailboxes.
pub async fn census(s: &mut Session) -> BTreeMap<usize, Vec<(String, Vec<String>)>> {
    let mut out: BTreeMap<usize, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for mailbox in mailboxes() {
        if !s.exists(&mailbox).await.expect("list") {
            continue;
        }
        let info = s.examine(&mailbox).await.expect("examine");
        if info.exists == 0 {
            continue;
        }
        let items = s
            .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            .await
            .expect("fetch");
        for item in items {
            let header = String::from_utf8_lossy(item.header().unwrap_or_default()).to_string();
            let n = header
                .split("<s")
                .nth(1)
                .and_then(|rest| rest.split('@').next())
                .and_then(|num| num.parse::<usize>().ok())
                .unwrap_or(usize::MAX);
            out.entry(n)
                .or_default()
                .push((mailbox.clone(), item.flags().unwrap_or_default()));
        }
    }
    out
}

/// Every violation of the invariants for messages `0..total` (empty: all hold).
pub fn violations(
    census: &BTreeMap<usize, Vec<(String, Vec<String>)>>,
    total: usize,
) -> Vec<String> {
    let mut bad = Vec::new();
    if let Some(strays) = census.get(&usize::MAX) {
        bad.push(format!(
            "{} messages that are not the workload's",
            strays.len()
        ));
    }
    for n in 0..total {
        let (home, must, must_not, copy) = expected(n);
        let empty = Vec::new();
        let found = census.get(&n).unwrap_or(&empty);
        let originals: Vec<&(String, Vec<String>)> = found
            .iter()
            .filter(|(m, _)| Some(m.as_str()) != copy)
            .collect();
        let copies = found.len() - originals.len();
        if originals.len() != 1 || originals[0].0 != home {
            bad.push(format!(
                "s{n}: expected once in {home}, found in {:?}",
                found.iter().map(|(m, _)| m).collect::<Vec<_>>()
            ));
            continue;
        }
        let flags = &originals[0].1;
        for f in must {
            if !flags.iter().any(|x| x.eq_ignore_ascii_case(f)) {
                bad.push(format!("s{n} in {home}: missing {f} (has {flags:?})"));
            }
        }
        for f in must_not.iter().chain(&["\\Deleted"]) {
            if flags.iter().any(|x| x.eq_ignore_ascii_case(f)) {
                bad.push(format!("s{n} in {home}: has {f}"));
            }
        }
        let want_copies = usize::from(copy.is_some());
        if copies != want_copies {
            bad.push(format!(
                "s{n}: {copies} copies in {copy:?}, expected {want_copies}"
            ));
        }
    }
    bad
}

/// The seed for a randomized test: `$name` from the environment to replay one, else fresh.
/// Printed either way.
pub fn seed(name: &str) -> u64 {
    let seed = std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed: {seed} (replay with {name}={seed})");
    seed
}
