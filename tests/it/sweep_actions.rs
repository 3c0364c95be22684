//! `imapsort sweep` end to end against the private Dovecot: every action, templated dated
//! mailboxes, non-ASCII names, both hierarchy delimiters, MOVE and the COPY fallback (with and
//! without UIDPLUS), dry runs. Results are checked over an independent connection.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use imapsort::cli::OutputFormat;
use imapsort::exit::Exit;
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions, SeedMessage};

use crate::support::sweep_util::{contents, eml, mailbox_names, observer, sweep, write_config};
use crate::support::{self, sweep_util};

const LIMIT: Duration = Duration::from_secs(120);

const RULES: &str = r#"
  - name: lists
    when: { list_id: { exists: true } }
    then: { move: "Lists/{list_id}" }
  - name: boss
    when: { from: boss@work.example }
    then: { flag: \Flagged }
    stop: true
  - name: invoices
    when: { subject: { regex: '\binvoice\b' } }
    then: [{ flag: "$Invoice" }, { copy: "Accounting/{year}" }]
  - name: spam
    when: { from: "@junk.test" }
    then: trash
  - name: delete
    when: { from: delete@me.test }
    then: delete
  - name: old read mail
    when: { all: [{ older_than: 30d }, { seen: true }, { from: "@archive.test" }] }
    then: archive
  - name: dated
    when: { from: dated@archive.test }
    then: { archive: "Archive/{year}/{month}" }
  - name: reread
    when: { from: reader@x.test }
    then: mark_unread
  - name: read it
    when: { from: unread@x.test }
    then: [mark_read, { unflag: \Flagged }]
  - name: non-ascii
    when: { subject: Rechnung }
    then: { move: "Büro/Rechnungen €" }
"#;

/// A fixed arrival time: 2025-07-15 12:00 UTC.
fn july_2025() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_752_580_800)
}

fn seed(d: &Dovecot) {
    let m = |id: &str, headers: &[(&str, &str)], flags: &[&str], when: Option<SystemTime>| {
        SeedMessage {
            bytes: eml(id, headers, "hello"),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            internal_date: when,
        }
    };
    let msgs = vec![
        m(
            "list@t",
            &[
                ("From", "news@lists.example.org"),
                ("List-Id", "Dev <dev.example.org>"),
            ],
            &[],
            None,
        ),
        m(
            "boss@t",
            &[("From", "Boss <boss@work.example>"), ("Subject", "invoice")],
            &[],
            None,
        ),
        m(
            "invoice@t",
            &[("From", "shop@x.test"), ("Subject", "Your invoice 5")],
            &[],
            Some(july_2025()),
        ),
        m("spam@t", &[("From", "spam@junk.test")], &[], None),
        m("delete@t", &[("From", "delete@me.test")], &[], None),
        m(
            "old@t",
            &[("From", "old@archive.test")],
            &["\\Seen"],
            Some(july_2025()),
        ),
        m(
            "dated@t",
            &[("From", "dated@archive.test")],
            &[],
            Some(july_2025()),
        ),
        m("reader@t", &[("From", "reader@x.test")], &["\\Seen"], None),
        m(
            "unread@t",
            &[("From", "unread@x.test")],
            &["\\Flagged"],
            None,
        ),
        m(
            "untouched@t",
            &[("From", "nobody@untouched.test")],
            &[],
            None,
        ),
        m(
            "buero@t",
            &[("From", "b@x.test"), ("Subject", "Rechnung 7")],
            &[],
            None,
        ),
    ];
    d.seed_with("user", "INBOX", &msgs).unwrap();
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn flags(v: &[&str]) -> Vec<String> {
    let mut f = ids(v);
    f.sort();
    f
}

/// Runs the whole scenario against a server started with `opts`.
fn every_action(opts: DovecotOptions, uidplus: bool) {
    // Template values have the hierarchy delimiter replaced by `_` (RULES.md).
    let list_box = if opts.separator == '.' {
        "Lists/dev_example_org"
    } else {
        "Lists/dev.example.org"
    };
    let Some(d) = support::dovecot::start(opts) else {
        return;
    };
    seed(&d);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &d, "", RULES);
    support::run_with_timeout(LIMIT, async {
        let run = sweep(&config, false, OutputFormat::Json).await;
        assert_eq!(run.exit, Exit::Ok, "{}\n{}", run.stderr, d.log());
        let lines = run.by_message_id();
        // Every acted-on message reported as done; unchanged ones not at all.
        let acted: Vec<&String> = lines.keys().collect();
        assert_eq!(
            acted,
            [
                "<boss@t>",
                "<buero@t>",
                "<dated@t>",
                "<delete@t>",
                "<invoice@t>",
                "<list@t>",
                "<old@t>",
                "<reader@t>",
                "<spam@t>",
                "<unread@t>"
            ],
            "{}",
            run.stdout
        );
        for (id, line) in &lines {
            assert_eq!(line["done"], true, "{id}: {line}");
            assert_eq!(line["account"], "test");
            assert_eq!(line["mailbox"], "INBOX");
            assert!(line["uid"].as_u64().unwrap() > 0);
        }
        assert_eq!(lines["<list@t>"]["rules"], serde_json::json!(["lists"]));
        assert_eq!(
            lines["<list@t>"]["plan"]["final"],
            serde_json::json!({"action": "move", "mailbox": list_box})
        );
        assert_eq!(lines["<boss@t>"]["rules"], serde_json::json!(["boss"]));
        let summary = run.summary();
        // moved: list, spam, delete, old, dated, buero.
        assert_eq!(
            summary,
            serde_json::json!({"examined": 11, "matched": 10, "moved": 6, "errors": 0}),
            "{}",
            run.stdout
        );

        let mut s = observer(&d).await;
        let inbox = contents(&mut s, "INBOX").await;
        let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
        want.insert("<boss@t>".into(), flags(&["\\Flagged"]));
        want.insert("<invoice@t>".into(), flags(&["$Invoice"]));
        want.insert("<reader@t>".into(), flags(&[]));
        want.insert("<unread@t>".into(), flags(&["\\Seen"]));
        want.insert("<untouched@t>".into(), flags(&[]));
        if !uidplus {
            // Without UIDPLUS the originals stay, marked \Deleted (never a plain EXPUNGE).
            for id in [
                "<list@t>",
                "<spam@t>",
                "<delete@t>",
                "<dated@t>",
                "<buero@t>",
            ] {
                want.insert(id.into(), flags(&["\\Deleted"]));
            }
            want.insert("<old@t>".into(), flags(&["\\Deleted", "\\Seen"]));
        }
        assert_eq!(inbox, want);

        let one = |id: &str, f: &[&str]| -> BTreeMap<String, Vec<String>> {
            [(id.to_owned(), flags(f))].into_iter().collect()
        };
        assert_eq!(contents(&mut s, list_box).await, one("<list@t>", &[]));
        // The copy carries the flag stored before it.
        assert_eq!(
            contents(&mut s, "Accounting/2025").await,
            one("<invoice@t>", &["$Invoice"])
        );
        assert_eq!(contents(&mut s, "Trash").await, one("<spam@t>", &[]));
        assert_eq!(
            contents(&mut s, "Archive").await,
            one("<old@t>", &["\\Seen"])
        );
        assert_eq!(
            contents(&mut s, "Archive/2025/07").await,
            one("<dated@t>", &[])
        );
        assert_eq!(
            contents(&mut s, "Büro/Rechnungen €").await,
            one("<buero@t>", &[])
        );
        // delete leaves no copy anywhere.
        let names = mailbox_names(&mut s).await;
        for name in &names {
            if name != "INBOX" {
                assert!(
                    !contents(&mut s, name).await.contains_key("<delete@t>"),
                    "{name}"
                );
            }
        }
        // Created mailboxes (and their parents) are subscribed.
        for name in [
            "Lists",
            list_box,
            "Büro",
            "Büro/Rechnungen €",
            "Archive/2025",
        ] {
            assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
        }

        // At most once per rule and message: the user unflags the boss's message and removes
        // the invoice's keyword; a second sweep neither flags again nor copies again.
        s.select("INBOX").await.unwrap();
        s.uid_store("1:*", "-FLAGS.SILENT (\\Flagged $Invoice)")
            .await
            .unwrap();
        let again = sweep(&config, false, OutputFormat::Json).await;
        assert_eq!(again.exit, Exit::Ok, "{}", again.stderr);
        assert!(again.by_message_id().is_empty(), "{}", again.stdout);
        assert_eq!(again.summary()["moved"], 0);
        assert_eq!(contents(&mut s, "Accounting/2025").await.len(), 1);
        let inbox = contents(&mut s, "INBOX").await;
        assert_eq!(inbox["<boss@t>"], flags(&[]));
        assert_eq!(inbox["<invoice@t>"], flags(&[]));
    });
}

#[test]
fn every_action_with_move_and_slash_delimiter() {
    every_action(DovecotOptions::default(), true);
}

#[test]
fn every_action_with_copy_fallback_and_dot_delimiter() {
    every_action(
        DovecotOptions {
            separator: '.',
            disable_caps: vec!["MOVE".into()],
            ..DovecotOptions::default()
        },
        true,
    );
}

#[test]
fn without_uidplus_originals_stay_marked_deleted() {
    every_action(
        DovecotOptions {
            disable_caps: vec!["MOVE".into(), "UIDPLUS".into()],
            ..DovecotOptions::default()
        },
        false,
    );
}

#[test]
fn dry_run_changes_nothing() {
    let Some(d) = support::dovecot::start(DovecotOptions::default()) else {
        return;
    };
    seed(&d);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &d, "", RULES);
    support::run_with_timeout(LIMIT, async {
        let mut s = observer(&d).await;
        let before_names = mailbox_names(&mut s).await;
        let before = contents(&mut s, "INBOX").await;

        let run = sweep(&config, true, OutputFormat::Json).await;
        assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
        let lines = run.by_message_id();
        assert_eq!(lines.len(), 10, "{}", run.stdout);
        assert!(lines.values().all(|l| l["done"] == false), "{}", run.stdout);
        assert_eq!(
            run.summary(),
            serde_json::json!({"examined": 11, "matched": 10, "moved": 6, "errors": 0})
        );

        assert_eq!(mailbox_names(&mut s).await, before_names);
        assert_eq!(contents(&mut s, "INBOX").await, before);

        // Text output: one line per message acted on, then the summary.
        let text = sweep(&config, true, OutputFormat::Text).await;
        let lines: Vec<&str> = text.stdout.lines().collect();
        assert_eq!(lines.len(), 11, "{}", text.stdout);
        assert!(
            lines[..10].iter().all(|l| l.starts_with("test INBOX ")),
            "{}",
            text.stdout
        );
        // Each message named by sender (the name, else the address) and subject.
        assert!(
            lines.contains(&"test INBOX 2 Boss \"invoice\" [boss] flag \\Flagged (dry run)"),
            "{}",
            text.stdout
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("test INBOX 4 spam@junk.test (no subject) [spam] trash")),
            "{}",
            text.stdout
        );
        assert!(
            lines[10].starts_with("examined 11, matched 10, moved 6, errors 0"),
            "{}",
            text.stdout
        );
        assert_eq!(contents(&mut s, "INBOX").await, before);
    });
}

#[test]
fn unreachable_server_exits_69_naming_the_account() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "settings:\n  state_dir: {state}\naccounts:\n  - name: far-away\n    host: 127.0.0.1\n    port: {port}\n    \
             username: u\n    password: x\n\
             rules:\n  - name: r\n    when: true\n    then: mark_read\n",
            state = dir.path().join("state").display()
        ),
    )
    .unwrap();
    support::run_with_timeout(LIMIT, async {
        let run = sweep(&config, false, OutputFormat::Json).await;
        assert_eq!(run.exit, Exit::Unavailable, "{}", run.stderr);
        assert!(run.stderr.contains("far-away"), "{}", run.stderr);
        assert_eq!(
            run.summary(),
            serde_json::json!({"examined": 0, "matched": 0, "moved": 0, "errors": 0})
        );
    });
}

#[test]
fn invalid_config_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "rules:\n  - name: r\n    when: { frm: x }\n    then: trash\n",
    )
    .unwrap();
    support::run_with_timeout(LIMIT, async {
        let run = sweep(&config, false, OutputFormat::Text).await;
        assert_eq!(run.exit, Exit::Config, "{}", run.stderr);
        assert!(run.stdout.is_empty());
    });
}

#[test]
fn an_unknown_account_option_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "accounts:\n  - name: real\n    host: 127.0.0.1\n    username: u\n    password: p\n\
         rules:\n  - name: r\n    when: true\n    then: trash\n",
    )
    .unwrap();
    support::run_with_timeout(LIMIT, async {
        let run =
            sweep_util::sweep_with(&config, false, OutputFormat::Text, Some("other"), None).await;
        assert_eq!(run.exit, Exit::Usage, "{}", run.stderr);
        assert!(
            run.stderr.contains("no account named \"other\""),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    });
}

#[test]
fn mailbox_option_narrows_the_sweep() {
    let Some(d) = support::dovecot::start(DovecotOptions::default()) else {
        return;
    };
    d.seed(
        "user",
        "INBOX",
        &[eml("a@t", &[("From", "x@junk.test")], "a")],
    )
    .unwrap();
    d.seed(
        "user",
        "Other",
        &[eml("b@t", &[("From", "x@junk.test")], "b")],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: spam\n    when: { from: \"@junk.test\" }\n    then: trash\n    \
                 mailboxes: [INBOX, Other]\n";
    let config = write_config(dir.path(), &d, "", rules);
    support::run_with_timeout(LIMIT, async {
        let run =
            sweep_util::sweep_with(&config, false, OutputFormat::Json, None, Some("Other")).await;
        assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
        assert_eq!(run.summary()["moved"], 1);
        let mut s = observer(&d).await;
        assert_eq!(contents(&mut s, "INBOX").await.len(), 1);
        assert!(contents(&mut s, "Other").await.is_empty());
        assert!(contents(&mut s, "Trash").await.contains_key("<b@t>"));
    });
}

/// Another client changing flags in the same mailbox while a sweep fetches: Dovecot reports
/// each change as `* n FETCH (FLAGS (...))` in the middle of the sweep's own UID FETCH answers.
/// Every message is still evaluated exactly once, with its own headers, and nothing else is.
#[test]
fn another_client_changing_flags_during_a_sweep_evaluates_each_message_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const N: usize = 3000;
    let Some(d) = support::dovecot::start(DovecotOptions::default()) else {
        return;
    };
    let messages: Vec<Vec<u8>> = (0..N)
        .map(|n| {
            let subject = format!("s{n}");
            eml(
                &format!("m{n}@t"),
                &[("From", "a@b.example"), ("Subject", &subject)],
                "hi",
            )
        })
        .collect();
    d.seed("user", "INBOX", &messages).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
  - name: every message
    when: { subject: { prefix: s } }
    then: { flag: "$Swept" }
  - name: no subject
    when: { not: { subject: { exists: true } } }
    then: { flag: "$Empty" }
"#;
    let config = write_config(dir.path(), &d, "", rules);
    support::run_with_timeout(LIMIT, async {
        let mut other = observer(&d).await;
        other.select("INBOX").await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stores = Arc::new(AtomicU64::new(0));
        let toggler = tokio::spawn({
            let (stop, stores) = (stop.clone(), stores.clone());
            async move {
                let mut i = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let sign = if (i / N).is_multiple_of(2) { '+' } else { '-' };
                    let uid = (i * 7919) % N + 1;
                    other
                        .uid_store(&uid.to_string(), &format!("{sign}FLAGS (\\Flagged)"))
                        .await
                        .unwrap();
                    stores.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
                other
            }
        });
        // The other client is at work before the sweep starts.
        while stores.load(Ordering::SeqCst) < 20 {
            tokio::task::yield_now().await;
        }
        let run = sweep(&config, true, OutputFormat::Json).await;
        let during = stores.load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        let _ = toggler.await.unwrap().logout().await;
        assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
        assert!(
            during > 20,
            "the other client changed flags during the sweep"
        );
        assert_eq!(run.summary()["examined"], N);
        let lines: Vec<serde_json::Value> = run
            .json()
            .into_iter()
            .filter(|v| v.get("summary").is_none())
            .collect();
        assert_eq!(lines.len(), N, "one line per message, none twice");
        let by_id = run.by_message_id();
        assert_eq!(by_id.len(), N, "every message by its own Message-ID");
        for n in 0..N {
            let line = &by_id[&format!("<m{n}@t>")];
            assert_eq!(
                line["rules"],
                serde_json::json!(["every message"]),
                "{line}"
            );
        }
    });
}
