//! `imapsort log` and `imapsort undo` end to end against the private Dovecot, with the real
//! binary: the history of a sweep, taking rules' work back while the daemon runs (the server
//! ends as if those rules had never existed, and neither the daemon nor a later sweep acts on
//! the messages put back), a message the user moved away since, a second undo, `delete`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

use crate::support::dovecot as support_dovecot;
use crate::support::once_util::{self, Seen, Via, census_now, shown};

const RULES: &str = r#"
  - name: lists
    when: { subject: digest }
    then: { move: Lists }
    stop: true
  - name: later
    when: { subject: digest }
    then: { flag: "$Later" }
  - name: urgent
    when: { subject: urgent }
    then: [{ flag: "$Urgent" }, { move: Work }]
  - name: invoices
    when: { subject: invoice }
    then: { copy: Accounting }
  - name: keep
    when: { subject: keep }
    then: [{ flag: "$Keep" }, mark_read]
  - name: drop
    when: { subject: drop }
    then: delete
"#;

/// The rules a server that never had `lists`, `urgent` and `invoices` ran.
const RULES_WITHOUT: &str = r#"
  - name: later
    when: { subject: digest }
    then: { flag: "$Later" }
  - name: keep
    when: { subject: keep }
    then: [{ flag: "$Keep" }, mark_read]
  - name: drop
    when: { subject: drop }
    then: delete
"#;

/// Only `drop`.
const DROP: &str = r#"
  - name: drop
    when: { subject: drop }
    then: delete
"#;

const SUBJECTS: &[&str] = &[
    "digest 1",
    "digest 2",
    "urgent 1",
    "urgent 2",
    "invoice 1",
    "invoice 2",
    "keep 1",
    "plain 1",
];

/// Every message has a Message-ID except `plain 1`, and the two invoices share one (a
/// re-sent invoice): the copies are told apart by the server's COPYUID, not by it.
fn message(subject: &str) -> Vec<u8> {
    let id = match subject {
        "plain 1" => String::new(),
        s if s.starts_with("invoice") => "Message-ID: <invoice@history.test>\r\n".into(),
        s => format!("Message-ID: <{}@history.test>\r\n", s.replace(' ', ".")),
    };
    format!(
        "From: Sender <Sender@Example.COM>\r\nTo: user@example.com\r\nSubject: {subject}\r\n\
         {id}Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes()
}

/// `imapsort COMMAND -c config ARGS...` to completion.
fn imapsort(command: &str, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .arg(command)
        .arg("-c")
        .arg(config)
        .args(args)
        .env("IMAPSORT_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run imapsort {command}: {e}"))
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// A server (one user) with the test's messages in INBOX, and a config for it.
fn server(dir: &Path, rules: &str) -> Option<(Dovecot, std::path::PathBuf)> {
    let d = support_dovecot::start(DovecotOptions::default())?;
    let msgs: Vec<Vec<u8>> = SUBJECTS.iter().map(|s| message(s)).collect();
    d.seed("user", "INBOX", &msgs).unwrap();
    let config = once_util::write_config(
        dir,
        &dir.join("state"),
        "",
        &once_util::account(&d, "test", Via::Tls, ""),
        rules,
    );
    Some((d, config))
}

/// The census without empty mailboxes (undo leaves the destinations the rules created).
fn nonempty(census: BTreeMap<String, Vec<Seen>>) -> BTreeMap<String, Vec<Seen>> {
    census.into_iter().filter(|(_, m)| !m.is_empty()).collect()
}

/// The INBOX's last handled UID in `status --format json`.
fn last_uid(config: &Path) -> Option<u64> {
    let out = imapsort("status", config, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["accounts"][0]["mailboxes"]
        .as_array()?
        .iter()
        .find(|m| m["mailbox"] == "INBOX")?["last_uid"]
        .as_u64()
}

#[test]
fn undo_by_rule_leaves_the_server_as_if_the_rules_never_existed_while_the_daemon_runs() {
    let dir = tempfile::tempdir().unwrap();
    let Some((d, config)) = server(dir.path(), RULES) else {
        return;
    };
    let rt = once_util::runtime();
    let log_file = dir.path().join("run.log");
    let show_log = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let _daemon = once_util::spawn_run(&config, &log_file);

    let out = imapsort("sweep", &config, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let after_sweep = census_now(&rt, &d);
    assert_eq!(
        once_util::places(&after_sweep, "digest 1"),
        once_util::at(&[("Lists", 1)])
    );
    assert_eq!(
        once_util::places(&after_sweep, "invoice 2"),
        once_util::at(&[("INBOX", 1), ("Accounting", 1)])
    );

    // The history: one entry per message acted on, newest first, the documented keys.
    let out = imapsort("log", &config, &["--format", "json", "--limit", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let entries = json_lines(&out);
    // Six messages the three rules acted on, and "keep 1".
    assert_eq!(entries.len(), 7, "{}", shown(&out));
    let keys = [
        "id",
        "time",
        "account",
        "mailbox",
        "uid",
        "message_id",
        "from",
        "subject",
        "rules",
        "plan",
        "done",
        "undone",
    ];
    for e in &entries {
        let mut got: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut want = keys.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(e["account"], "test");
        assert_eq!(e["mailbox"], "INBOX");
        assert_eq!(e["from"], "sender@example.com", "lower-cased address");
        assert_eq!(e["done"], true);
        assert_eq!(e["undone"], false);
    }
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let urgent: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["rules"] == serde_json::json!(["urgent"]))
        .collect();
    assert_eq!(urgent.len(), 2);
    assert_eq!(
        urgent[0]["plan"]["add_flags"],
        serde_json::json!(["$Urgent"])
    );
    assert_eq!(urgent[0]["plan"]["final"]["action"], "move");
    assert_eq!(urgent[0]["plan"]["final"]["mailbox"], "Work");
    let out = imapsort("log", &config, &["--rule", "lists"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines()
            .all(|l| l.contains("[lists]") && l.contains("move -> Lists")),
        "{text}"
    );
    // `--shard I/N`: the account's own shard sees its entries, the other none.
    let own = imapsort::shard::Shard::of("test", 2);
    let (mine, other) = (format!("{own}/2"), format!("{}/2", 1 - own));
    let out = imapsort("log", &config, &["--format", "json", "--shard", &mine]);
    assert_eq!(json_lines(&out).len(), 7, "{}", shown(&out));
    let out = imapsort("log", &config, &["--format", "json", "--shard", &other]);
    assert_eq!(json_lines(&out).len(), 0, "{}", shown(&out));
    let out = imapsort(
        "undo",
        &config,
        &["--last", "9", "--format", "json", "--shard", &other],
    );
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(json_lines(&out).last().unwrap()["summary"]["selected"], 0);
    // `--since`: a duration (that long ago) or an RFC 3339 time.
    let out = imapsort("log", &config, &["--format", "json", "--since", "1h"]);
    assert_eq!(json_lines(&out).len(), 7, "{}", shown(&out));
    let out = imapsort(
        "log",
        &config,
        &["--format", "json", "--since", "2999-01-01T00:00:00Z"],
    );
    assert_eq!(json_lines(&out).len(), 0, "{}", shown(&out));
    let out = imapsort("log", &config, &["--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let out = imapsort("log", &config, &["--format", "json", "--account", "nobody"]);
    assert_eq!(json_lines(&out).len(), 0, "{}", shown(&out));
    let out = imapsort("log", &config, &["--limit", "1", "--format", "json"]);
    assert_eq!(json_lines(&out).len(), 1);
    assert_eq!(json_lines(&out)[0]["id"], ids[0]);

    // Take three rules' work back while the daemon runs.
    for rule in ["lists", "urgent", "invoices"] {
        let out = imapsort("undo", &config, &["--rule", rule, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "undo {rule}\n{}", shown(&out));
        let lines = json_lines(&out);
        let summary = &lines.last().unwrap()["summary"];
        assert_eq!(summary["selected"], 2, "{}", shown(&out));
        assert_eq!(summary["undone"], 2, "{}", shown(&out));
        assert_eq!(summary["failed"], 0, "{}", shown(&out));
        for l in &lines[..lines.len() - 1] {
            assert_eq!(l["undone"], true, "{l}");
            assert_eq!(l["reason"], serde_json::Value::Null, "{l}");
        }
    }

    // The daemon saw the messages put back arrive (new UIDs in INBOX) and left them alone.
    let inbox_top = rt.block_on(async {
        let mut s = once_util::observer(&d).await;
        s.examine("INBOX").await.unwrap();
        let top = s.uid_search("ALL").await.unwrap().into_iter().max();
        let _ = s.logout().await;
        top.unwrap()
    });
    once_util::wait_for(
        "the daemon to have looked at the messages put back",
        Duration::from_secs(60),
        || last_uid(&config).is_some_and(|u| u >= u64::from(inbox_top)),
        show_log,
    );
    // `later` (which `lists` stopped before) would match them now: a new-mail pass taking
    // them for new mail would flag them.
    let inbox = census_now(&rt, &d)["INBOX"].clone();
    for subject in ["digest 1", "digest 2"] {
        let m = inbox.iter().find(|m| m.subject == subject).unwrap();
        assert_eq!(m.flags, Vec::<String>::new(), "{subject}\n{}", show_log());
    }
    // A sweep treats them like any message, `lists` passed by: `later` flags them, and
    // nothing undone is done again.
    let out = imapsort("sweep", &config, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let lines = json_lines(&out);
    let summary = lines.last().unwrap()["summary"].clone();
    assert_eq!(summary["moved"], 0, "nothing re-applied\n{}", shown(&out));
    let acted: Vec<&serde_json::Value> = lines[..lines.len() - 1].iter().collect();
    assert_eq!(acted.len(), 2, "{}", shown(&out));
    assert!(
        acted
            .iter()
            .all(|l| l["rules"] == serde_json::json!(["later"])),
        "{}",
        shown(&out)
    );
    let undone = nonempty(census_now(&rt, &d));

    // A server that never had those rules, swept once.
    let dir2 = tempfile::tempdir().unwrap();
    let Some((d2, config2)) = server(dir2.path(), RULES_WITHOUT) else {
        return;
    };
    let out = imapsort("sweep", &config2, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let never = nonempty(census_now(&rt, &d2));
    assert_eq!(undone, never, "\n--- daemon log ---\n{}", show_log());

    // The history says so; a second undo changes nothing and says they were taken back.
    let out = imapsort("log", &config, &["--format", "json", "--limit", "100"]);
    let undone_entries = json_lines(&out)
        .iter()
        .filter(|e| e["undone"] == true)
        .count();
    assert_eq!(undone_entries, 6, "{}", shown(&out));
    let out = imapsort("undo", &config, &["--rule", "urgent", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let summary = json_lines(&out).last().unwrap()["summary"].clone();
    assert_eq!(summary["selected"], 2, "{}", shown(&out));
    assert_eq!(summary["undone"], 2, "{}", shown(&out));
    assert_eq!(nonempty(census_now(&rt, &d)), never);
    let status = imapsort("status", &config, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        v["accounts"][0]["history"]["logged"],
        9,
        "{}",
        shown(&status)
    );
    assert_eq!(
        v["accounts"][0]["history"]["undone"],
        6,
        "{}",
        shown(&status)
    );
}

#[test]
fn a_message_moved_away_since_and_a_delete_are_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let Some((d, config)) = server(dir.path(), RULES) else {
        return;
    };
    let rt = once_util::runtime();
    let out = imapsort("sweep", &config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    // The user moves "digest 1" on from Lists to Elsewhere.
    rt.block_on(async {
        let mut s = once_util::observer(&d).await;
        s.create("Elsewhere").await.unwrap();
        s.select("Lists").await.unwrap();
        let uids = s.uid_search("HEADER Subject \"digest 1\"").await.unwrap();
        assert_eq!(uids.len(), 1);
        s.uid_move(&uids[0].to_string(), "Elsewhere").await.unwrap();
        let _ = s.logout().await;
    });
    let before = census_now(&rt, &d);

    // A dry run says what would be taken back and changes nothing.
    let out = imapsort(
        "undo",
        &config,
        &["--rule", "urgent", "--dry-run", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{}", shown(&out));
    assert!(
        lines[..2]
            .iter()
            .all(|l| l["undone"] == false && l["reason"].is_null())
    );
    assert_eq!(lines[2]["summary"]["selected"], 2);
    assert_eq!(lines[2]["summary"]["failed"], 0);
    let text = imapsort("undo", &config, &["--rule", "urgent", "--dry-run"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("would be undone"),
        "{}",
        shown(&text)
    );
    assert_eq!(census_now(&rt, &d), before, "a dry run changes nothing");

    let out = imapsort("undo", &config, &["--rule", "lists", "--format", "json"]);
    assert_eq!(out.status.code(), Some(65), "{}", shown(&out));
    let lines = json_lines(&out);
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["selected"], 2);
    assert_eq!(summary["undone"], 1);
    assert_eq!(summary["failed"], 1);
    let failed: Vec<&serde_json::Value> = lines.iter().filter(|l| l["undone"] == false).collect();
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("no longer in Lists"), "{reason}");
    let after = census_now(&rt, &d);
    assert_eq!(
        once_util::places(&after, "digest 1"),
        once_util::at(&[("Elsewhere", 1)]),
        "left alone"
    );
    assert_eq!(
        once_util::places(&after, "digest 2"),
        once_util::at(&[("INBOX", 1)])
    );
    assert_eq!(before["Elsewhere"], after["Elsewhere"]);

    // `delete` cannot be undone: reported, exit 65, nothing changes.
    let d2 = tempfile::tempdir().unwrap();
    let config2 = once_util::write_config(
        d2.path(),
        &d2.path().join("state"),
        "",
        &once_util::account(&d, "test", Via::Tls, ""),
        DROP,
    );
    d.seed("user", "INBOX", &[message("drop 1")]).unwrap();
    let out = imapsort("sweep", &config2, &["--mailbox", "INBOX"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let out = imapsort("undo", &config2, &["--rule", "drop", "--format", "json"]);
    assert_eq!(out.status.code(), Some(65), "{}", shown(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{}", shown(&out));
    assert_eq!(lines[0]["undone"], false);
    assert!(
        lines[0]["reason"].as_str().unwrap().contains("delete"),
        "{}",
        shown(&out)
    );
}

/// Messages for the tests below: `noid` in the subject means no Message-ID.
fn seed(d: &Dovecot, subjects: &[String]) {
    let msgs: Vec<Vec<u8>> = subjects
        .iter()
        .map(|s| {
            let bytes = message(s);
            if s.contains("noid") {
                let text = String::from_utf8(bytes).unwrap();
                text.lines()
                    .filter(|l| !l.starts_with("Message-ID"))
                    .map(|l| format!("{l}\r\n"))
                    .collect::<String>()
                    .into_bytes()
            } else {
                bytes
            }
        })
        .collect();
    d.seed("user", "INBOX", &msgs).unwrap();
}

/// The census without messages marked `\Deleted` (without UIDPLUS imapsort never
/// expunges a whole mailbox, so what it moved or deleted stays marked).
fn live(census: BTreeMap<String, Vec<Seen>>) -> BTreeMap<String, Vec<Seen>> {
    census
        .into_iter()
        .map(|(m, seen)| {
            let kept = seen
                .into_iter()
                .filter(|s| !s.flags.iter().any(|f| f == "\\Deleted"))
                .collect();
            (m, kept)
        })
        .collect()
}

/// Forgets where the actions of the entries matching `filter` (SQL) left their messages,
/// as when the server's answer was lost: undo must find them by Message-ID or leave them.
fn forget_destinations(state: &Path, filter: &str) {
    let db = rusqlite::Connection::open(state.join(imapsort::state::FILE_NAME)).unwrap();
    let n = db
        .execute(
            &format!(
                "UPDATE history SET dest_uid_validity = NULL, dest_uid = NULL, copies = NULL \
                 WHERE {filter}"
            ),
            [],
        )
        .unwrap();
    assert!(n > 0, "no entry matches {filter}");
}

#[test]
fn without_uidplus_or_move_only_messages_told_apart_are_touched() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DovecotOptions {
        disable_caps: vec!["UIDPLUS".into(), "MOVE".into()],
        ..DovecotOptions::default()
    };
    let Some(d) = support_dovecot::start(opts) else {
        return;
    };
    let subjects: Vec<String> = [
        "digest 1",
        "digest noid",
        "digest noid 2",
        "invoice 1",
        "invoice 2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    seed(&d, &subjects);
    let state = dir.path().join("state");
    let config = once_util::write_config(
        dir.path(),
        &state,
        "",
        &once_util::account(&d, "test", Via::Tls, ""),
        RULES,
    );
    let rt = once_util::runtime();
    let out = imapsort("sweep", &config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let swept = live(census_now(&rt, &d));
    assert_eq!(swept["Lists"].len(), 3);
    assert_eq!(swept["Accounting"].len(), 2);

    // Without COPYUID the sweep still found where each message went (its fence and
    // signature): a message without Message-ID is taken back exactly.
    let out = imapsort(
        "undo",
        &config,
        &["--rule", "lists", "--format", "json", "--id", "2"],
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "--id with --rule is a usage error"
    );
    let ids: Vec<i64> = json_lines(&imapsort(
        "log",
        &config,
        &["--rule", "lists", "--format", "json"],
    ))
    .iter()
    .filter(|e| e["subject"] != "digest noid 2")
    .map(|e| e["id"].as_i64().unwrap())
    .collect();
    assert_eq!(ids.len(), 2);
    let id_args: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let mut args = vec!["--format", "json", "--id"];
    args.extend(id_args.iter().map(String::as_str));
    let out = imapsort("undo", &config, &args);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    // Where the history does not know the UID, the Message-ID decides, and only when it
    // names one message: not for a message without one, not for two copies sharing one.
    forget_destinations(
        &state,
        "subject = 'digest noid 2' OR subject LIKE 'invoice%'",
    );
    let out = imapsort("undo", &config, &["--rule", "lists", "--format", "json"]);
    assert_eq!(out.status.code(), Some(65), "{}", shown(&out));
    let out2 = imapsort("undo", &config, &["--rule", "invoices", "--format", "json"]);
    assert_eq!(out2.status.code(), Some(65), "{}", shown(&out2));
    let reasons: Vec<String> = json_lines(&out)
        .iter()
        .chain(json_lines(&out2).iter())
        .filter_map(|l| l["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasons.len(), 3, "{}\n{}", shown(&out), shown(&out2));
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("no Message-ID"))
            .count(),
        1,
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("2 messages in Accounting have its Message-ID"))
            .count(),
        2,
        "{reasons:?}"
    );

    let after = live(census_now(&rt, &d));
    let place = |s: &str| once_util::places(&after, s);
    assert_eq!(place("digest 1"), once_util::at(&[("INBOX", 1)]));
    assert_eq!(place("digest noid"), once_util::at(&[("INBOX", 1)]));
    assert_eq!(place("digest noid 2"), once_util::at(&[("Lists", 1)]));
    for s in ["invoice 1", "invoice 2"] {
        assert_eq!(place(s), once_util::at(&[("INBOX", 1), ("Accounting", 1)]));
    }
    // The messages moved back were recognised under their new UIDs (no COPYUID): a sweep
    // does not move them again.
    let out = imapsort("sweep", &config, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(
        json_lines(&out).last().unwrap()["summary"]["moved"],
        0,
        "{}",
        shown(&out)
    );
    let after = live(census_now(&rt, &d));
    assert_eq!(
        once_util::places(&after, "digest noid"),
        once_util::at(&[("INBOX", 1)])
    );
}

/// How many undo steps the journal holds (read beside the running undo).
fn undo_steps(state: &Path) -> i64 {
    let Ok(db) = rusqlite::Connection::open_with_flags(
        state.join(imapsort::state::FILE_NAME),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    db.query_row(
        "SELECT count(*) FROM journal WHERE action LIKE 'undo%'",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

#[test]
fn kill_9_during_an_undo_of_5000_entries_then_undo_again_loses_nothing_and_does_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let Some(d) = support_dovecot::start(DovecotOptions::default()) else {
        return;
    };
    let n = 5000;
    let subjects: Vec<String> = (0..n).map(|i| format!("digest {i}")).collect();
    seed(&d, &subjects);
    let state = dir.path().join("state");
    let config = once_util::write_config(
        dir.path(),
        &state,
        "",
        &once_util::account(&d, "test", Via::Tls, ""),
        RULES,
    );
    let rt = once_util::runtime();
    let out = imapsort("sweep", &config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(census_now(&rt, &d)["Lists"].len(), n);

    let mut undo = crate::support::Daemon::new(
        Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(["undo", "--rule", "lists", "-c"])
            .arg(&config)
            .env("IMAPSORT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Killed once messages arrive back in INBOX: in the middle of the batched moves back (or
    // just after them, before their outcomes are recorded).
    let mut watcher = rt.block_on(once_util::observer(&d));
    let mut arrived = || {
        rt.block_on(watcher.status("INBOX"))
            .ok()
            .and_then(|s| s.messages)
            .unwrap_or(0)
    };
    once_util::wait_for(
        "messages moved back into INBOX",
        Duration::from_secs(120),
        || arrived() > 0 || undo.try_wait().unwrap().is_some(),
        || format!("{} undo steps in the journal", undo_steps(&state)),
    );
    let running = undo.try_wait().unwrap().is_none();
    let _ = undo.kill();
    let _ = undo.wait();
    let (steps, back) = (undo_steps(&state), live(census_now(&rt, &d))["INBOX"].len());
    eprintln!("killed: running {running}, {steps} undo steps in the journal, {back} back in INBOX");
    assert!(
        running,
        "the undo finished before it could be killed: nothing was tested"
    );
    assert!(back > 0);

    // Before the undo runs again, a sweep of INBOX moves none of what the killed undo put
    // back there to Lists again: recovery recognises what had arrived (by the undo's fence
    // and the messages' signatures), and what arrives later still (the server finishing
    // the dead client's commands) is left for the undo to settle.
    let out = imapsort("sweep", &config, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let summary = json_lines(&out).last().unwrap()["summary"].clone();
    assert_eq!(summary["moved"], 0, "{}", shown(&out));

    let out = imapsort("undo", &config, &["--rule", "lists", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let summary = json_lines(&out).last().unwrap()["summary"].clone();
    assert_eq!(summary["selected"], n);
    assert_eq!(summary["undone"], n);
    let after = census_now(&rt, &d);
    assert!(
        after["Lists"].is_empty(),
        "{} left in Lists",
        after["Lists"].len()
    );
    let mut inbox: Vec<&str> = after["INBOX"].iter().map(|m| m.subject.as_str()).collect();
    inbox.sort_unstable();
    let mut want: Vec<&str> = subjects.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(inbox, want, "every message back in INBOX exactly once");
    // Every one recognised under its new UID: a sweep applies only `later`, moves nothing.
    let out = imapsort("sweep", &config, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let summary = json_lines(&out).last().unwrap()["summary"].clone();
    assert_eq!(summary["moved"], 0, "{}", shown(&out));
    // And a third undo changes nothing.
    let out = imapsort("undo", &config, &["--rule", "lists", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(census_now(&rt, &d)["INBOX"].len(), n);
}
