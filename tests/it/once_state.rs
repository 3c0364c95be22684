//! What the state database must get right for "exactly once" on everyday paths (issue 11):
//! one identity for INBOX however it is spelled (item 2), a stale applied record replaced
//! rather than kept (item 5), a sweep after a UIDVALIDITY change still recording what it does
//! (item 6), rule names with commas recognised after a crash (item 7), and recovery that looks
//! only at what arrived in a destination since the interrupted batch (item 9).

use crate::support::once_util;
use std::time::Duration;

use crate::support::once_util::cutter::{Cut, Cutter, When};
use crate::support::once_util::{Via, at, census_now, places, shown};
use imapsort::vocab::{MailboxName, UidValidity};
use imapsort_testkit::dovecot::Dovecot;

const COPY_INVOICES: &str = "  - { name: invoices, when: { subject: invoice }, then: [{ flag: \\Flagged }, { copy: Accounting }] }\n";

fn start() -> Option<(Dovecot, tempfile::TempDir)> {
    let d = crate::support::dovecot::start_default()?;
    Some((d, tempfile::tempdir().unwrap()))
}

/// The UIDVALIDITY of INBOX.
fn inbox_validity(d: &Dovecot) -> UidValidity {
    once_util::runtime().block_on(async {
        let mut s = once_util::observer(d).await;
        let v = s.select("INBOX").await.unwrap().uid_validity.unwrap();
        UidValidity::new(v).unwrap()
    })
}

#[test]
fn inbox_spelled_inbox_in_watch_is_one_state_with_the_sweep_command() {
    // Regression (item 2): the daemon keyed the state by `watch`'s spelling ("inbox"), the
    // sweep command by "INBOX"; the sweep found no applied record and copied again.
    let Some((d, dir)) = start() else { return };
    d.seed(
        "user",
        "INBOX",
        &[once_util::message(Some("i1@x"), "invoice 1")],
    )
    .unwrap();
    let account = once_util::account(
        &d,
        "once",
        Via::Tls,
        "    watch: [inbox]\n    first_start: all\n",
    );
    let config = once_util::write_config(
        dir.path(),
        &dir.path().join("state"),
        "",
        &account,
        COPY_INVOICES,
    );
    let log = dir.path().join("run.log");
    let mut daemon = once_util::spawn_run(&config, &log);
    let rt = once_util::runtime();
    once_util::wait_for(
        "the daemon's copy",
        Duration::from_secs(30),
        || places(&census_now(&rt, &d), "invoice 1").get("Accounting") == Some(&1),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    assert_eq!(once_util::stop(&mut daemon), Some(0));
    let out = once_util::sweep(&config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(
        places(&census_now(&rt, &d), "invoice 1"),
        at(&[("Accounting", 1), ("INBOX", 1)]),
        "{}",
        shown(&out)
    );
}

#[test]
fn a_stale_applied_record_is_replaced_so_the_rule_runs_once() {
    // Regression (item 5): a record of the same (UID, rule) made for another message (same
    // UIDVALIDITY: a restored backup, a server started again) does not count; the rule runs,
    // and its new record must replace the stale one, or every sweep copies again.
    let Some((d, dir)) = start() else { return };
    d.seed(
        "user",
        "INBOX",
        &[once_util::message(Some("real@x"), "invoice 1")],
    )
    .unwrap();
    let validity = inbox_validity(&d);
    let state = dir.path().join("state");
    {
        use imapsort::state::{Applied, StateDb};
        let mut db = StateDb::open(&state).unwrap();
        db.reset_mailbox("once", &MailboxName::inbox(), validity)
            .unwrap();
        db.record_applied(
            "once",
            &MailboxName::inbox(),
            validity,
            &[Applied {
                uid: 1,
                rule: "invoices",
                message_id: Some("<other@x>"),
            }],
        )
        .unwrap();
    }
    let account = once_util::account(&d, "once", Via::Tls, "");
    let config = once_util::write_config(dir.path(), &state, "", &account, COPY_INVOICES);
    for _ in 0..2 {
        let out = once_util::sweep(&config, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    }
    let rt = once_util::runtime();
    assert_eq!(
        places(&census_now(&rt, &d), "invoice 1"),
        at(&[("Accounting", 1), ("INBOX", 1)])
    );
}

#[test]
fn a_sweep_after_a_uidvalidity_change_keeps_a_state_and_copies_once() {
    // Regression (item 6): with a UIDVALIDITY other than the stored one, the sweep command ran
    // without any state, so every later sweep copied again.
    let Some((d, dir)) = start() else { return };
    d.seed(
        "user",
        "INBOX",
        &[once_util::message(Some("i1@x"), "invoice 1")],
    )
    .unwrap();
    let validity = inbox_validity(&d);
    let state = dir.path().join("state");
    {
        let mut db = imapsort::state::StateDb::open(&state).unwrap();
        let old = UidValidity::new(validity.get() + 1).unwrap();
        db.reset_mailbox("once", &MailboxName::inbox(), old)
            .unwrap();
    }
    let account = once_util::account(&d, "once", Via::Tls, "");
    let config = once_util::write_config(dir.path(), &state, "", &account, COPY_INVOICES);
    for _ in 0..3 {
        let out = once_util::sweep(&config, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    }
    let rt = once_util::runtime();
    assert_eq!(
        places(&census_now(&rt, &d), "invoice 1"),
        at(&[("Accounting", 1), ("INBOX", 1)])
    );
}

#[test]
fn a_rule_whose_name_holds_a_comma_is_recognised_after_a_crash() {
    // Regression (item 7): the journal joined rule names with "," and split them again, so
    // after a crash the rule "invoices, paper" was not recognised as applied: its flag came
    // back on a message the user had unflagged.
    let Some((d, dir)) = start() else { return };
    d.seed(
        "user",
        "INBOX",
        &[once_util::message(Some("i1@x"), "invoice 1")],
    )
    .unwrap();
    let cutter = Cutter::start(d.imap_port());
    let account = once_util::account(&d, "once", Via::Plain(cutter.port), "");
    let rules = "  - { name: \"invoices, paper\", when: { subject: invoice }, then: [{ flag: \\Flagged }, { copy: Accounting }] }\n";
    let config =
        once_util::write_config(dir.path(), &dir.path().join("state"), "", &account, rules);
    cutter.arm(Cut::new("UID COPY", 1, When::AfterAnswer));
    let first = once_util::sweep(&config, &[]);
    assert_eq!(cutter.fired(), 1, "{}", shown(&first));
    let rt = once_util::runtime();
    rt.block_on(async {
        let mut s = once_util::observer(&d).await;
        s.select("INBOX").await.unwrap();
        s.uid_store("1", "-FLAGS.SILENT (\\Flagged)").await.unwrap();
    });
    let second = once_util::sweep(&config, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", shown(&second));
    let census = census_now(&rt, &d);
    assert_eq!(
        places(&census, "invoice 1"),
        at(&[("Accounting", 1), ("INBOX", 1)])
    );
    let inbox = &census["INBOX"][0];
    assert!(
        !inbox.flags.iter().any(|f| f == "\\Flagged"),
        "the rule ran again: {inbox:?}\n{}",
        shown(&second)
    );
}

#[test]
fn recovery_never_fetches_a_whole_destination() {
    // Regression (item 9): settling an interrupted copy fetched `UID FETCH 1:*` of the whole
    // destination (slow for big mailboxes, over the response cap for huge ones).
    let Some((d, dir)) = start() else { return };
    let old: Vec<Vec<u8>> = (0..50)
        .map(|n| once_util::message(Some(&format!("old{n}@x")), &format!("old {n}")))
        .collect();
    d.seed("user", "Accounting", &old).unwrap();
    d.seed(
        "user",
        "INBOX",
        &[once_util::message(Some("i1@x"), "invoice 1")],
    )
    .unwrap();
    let cutter = Cutter::start(d.imap_port());
    let account = once_util::account(&d, "once", Via::Plain(cutter.port), "");
    let config = once_util::write_config(
        dir.path(),
        &dir.path().join("state"),
        "",
        &account,
        COPY_INVOICES,
    );
    cutter.arm(Cut::new("UID COPY", 1, When::AfterAnswer));
    let first = once_util::sweep(&config, &[]);
    assert_eq!(cutter.fired(), 1, "{}", shown(&first));
    cutter.take_log();
    let second = once_util::sweep(&config, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", shown(&second));
    let sent = cutter.take_log();
    let whole: Vec<&String> = sent
        .iter()
        .filter(|c| c.to_ascii_uppercase().contains("FETCH 1:*"))
        .collect();
    assert!(
        whole.is_empty(),
        "recovery fetched whole mailboxes: {whole:?}\nall: {sent:?}"
    );
    let rt = once_util::runtime();
    assert_eq!(
        places(&census_now(&rt, &d), "invoice 1"),
        at(&[("Accounting", 1), ("INBOX", 1)])
    );
}
