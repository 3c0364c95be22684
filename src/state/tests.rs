use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::vocab::{MailboxName, UidValidity};

const A: &str = "personal";
/// INBOX, for journal entries that borrow their mailbox.
static INBOX: std::sync::LazyLock<MailboxName> = std::sync::LazyLock::new(MailboxName::inbox);

/// The rules of the journal entries.
static INVOICES: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| vec!["invoices".to_string()]);

fn inbox() -> MailboxName {
    MailboxName::inbox()
}

/// A UIDVALIDITY.
fn v(n: u32) -> UidValidity {
    UidValidity::new(n).unwrap()
}

fn db() -> StateDb {
    StateDb::open_in_memory().unwrap()
}

fn entry<'a>(uid: u32, action: Action, destination: Option<&'a str>) -> NewJournalEntry<'a> {
    NewJournalEntry {
        account: A,
        mailbox: &INBOX,
        uid_validity: v(7),
        uid,
        message_id: Some("<m@example.org>"),
        rules: &INVOICES,
        action,
        destination,
    }
}

/// A clock tests can move: milliseconds since the epoch in a shared atomic.
fn manual_clock(db: StateDb, start_ms: i64) -> (StateDb, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(start_ms));
    let read = now.clone();
    let db = db.with_clock(move || from_ms(read.load(Ordering::SeqCst)));
    (db, now)
}

#[test]
fn state_db_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<StateDb>();
}

#[test]
fn last_uid_never_moves_backwards() {
    // (sequence of set_last_uid calls, value stored after each)
    let cases: &[(&[u32], &[u32])] = &[
        (&[5], &[5]),
        (&[5, 9], &[5, 9]),
        (&[9, 5], &[9, 9]),
        (&[3, 3, 2, 10, 1], &[3, 3, 3, 10, 10]),
        (&[0], &[0]),
        (&[u32::MAX, 1], &[u32::MAX, u32::MAX]),
    ];
    for (calls, expected) in cases {
        let mut db = db();
        for (uid, want) in calls.iter().zip(*expected) {
            let got = db.set_last_uid(A, &inbox(), v(7), *uid).unwrap();
            assert_eq!(got, *want, "calls {calls:?}");
            let state = db.mailbox(A, &inbox()).unwrap().unwrap();
            assert_eq!(
                state,
                MailboxState {
                    uid_validity: v(7),
                    last_uid: *want
                }
            );
        }
    }
}

#[test]
fn unknown_mailbox_has_no_state() {
    let mut db = db();
    assert_eq!(db.mailbox(A, &inbox()).unwrap(), None);
    // Activity and errors alone do not make a mailbox "selected".
    db.touch(A, &inbox()).unwrap();
    db.record_error(A, &inbox(), "connection refused").unwrap();
    assert_eq!(db.mailbox(A, &inbox()).unwrap(), None);
    db.set_last_uid(A, &inbox(), v(3), 10).unwrap();
    assert_eq!(
        db.mailbox(A, &inbox()).unwrap(),
        Some(MailboxState {
            uid_validity: v(3),
            last_uid: 10
        })
    );
}

#[test]
fn writes_with_a_stale_uid_validity_are_refused() {
    let mut db = db();
    db.set_last_uid(A, &inbox(), v(7), 10).unwrap();
    let err = db.set_last_uid(A, &inbox(), v(8), 20).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::UidValidityMismatch { stored, given, .. }
                if stored == v(7) && given == v(8)
        ),
        "{err:?}"
    );
    let applied = [Applied {
        uid: 11,
        rule: "r",
        message_id: None,
    }];
    assert!(db.record_applied(A, &inbox(), v(8), &applied).is_err());
    assert_eq!(db.mailbox(A, &inbox()).unwrap().unwrap().last_uid, 10);
}

#[test]
fn reset_mailbox_clears_last_uid_and_applied_pairs() {
    let mut db = db();
    db.set_last_uid(A, &inbox(), v(7), 100).unwrap();
    let applied = [
        Applied {
            uid: 50,
            rule: "archive",
            message_id: Some("<a@x>"),
        },
        Applied {
            uid: 51,
            rule: "archive",
            message_id: None,
        },
    ];
    db.record_applied(A, &inbox(), v(7), &applied).unwrap();
    db.record_applied("work", &inbox(), UidValidity::new(7).unwrap(), &applied)
        .unwrap();

    db.reset_mailbox(A, &inbox(), v(8)).unwrap();
    assert_eq!(
        db.mailbox(A, &inbox()).unwrap(),
        Some(MailboxState {
            uid_validity: v(8),
            last_uid: 0
        })
    );
    assert!(
        db.applied_rules(A, &inbox(), v(7), &[50, 51])
            .unwrap()
            .is_empty()
    );
    // Another account's mailbox of the same name is untouched.
    assert_eq!(
        db.applied_rules("work", &inbox(), UidValidity::new(7).unwrap(), &[50, 51])
            .unwrap()
            .len(),
        2
    );
    // After a reset, last_uid may start low again.
    assert_eq!(db.set_last_uid(A, &inbox(), v(8), 3).unwrap(), 3);
}

#[test]
fn reset_mailbox_at_starts_past_existing_mail() {
    let mut db = db();
    db.reset_mailbox_at(A, &inbox(), v(9), 4242).unwrap();
    assert_eq!(
        db.mailbox(A, &inbox()).unwrap(),
        Some(MailboxState {
            uid_validity: v(9),
            last_uid: 4242
        })
    );
}

#[test]
fn applied_rules_groups_by_uid() {
    let mut db = db();
    db.set_last_uid(A, &inbox(), v(7), 0).unwrap();
    let applied = [
        Applied {
            uid: 1,
            rule: "a",
            message_id: None,
        },
        Applied {
            uid: 1,
            rule: "b",
            message_id: None,
        },
        Applied {
            uid: 1,
            rule: "a",
            message_id: None,
        }, // a repeat is ignored
        Applied {
            uid: 2,
            rule: "b",
            message_id: Some("<2@x>"),
        },
    ];
    db.record_applied(A, &inbox(), v(7), &applied).unwrap();
    // (uids asked for, expected (uid, rules) pairs)
    type Expected = &'static [(u32, &'static [&'static str])];
    let cases: &[(&[u32], Expected)] = &[
        (&[], &[]),
        (&[3], &[]),
        (&[1], &[(1, &["a", "b"])]),
        (&[1, 2, 3], &[(1, &["a", "b"]), (2, &["b"])]),
    ];
    for (uids, expected) in cases {
        let got = db.applied_rules(A, &inbox(), v(7), uids).unwrap();
        let want: HashMap<u32, HashSet<String>> = expected
            .iter()
            .map(|(uid, rules)| (*uid, rules.iter().map(|r| r.to_string()).collect()))
            .collect();
        assert_eq!(got, want, "uids {uids:?}");
    }
    // Another UIDVALIDITY sees nothing.
    assert!(
        db.applied_rules(A, &inbox(), v(8), &[1, 2])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn applied_rules_to_counts_only_records_of_the_same_message_id() {
    let mut db = db();
    db.set_last_uid(A, &inbox(), v(7), 0).unwrap();
    let applied = [
        Applied {
            uid: 1,
            rule: "a",
            message_id: Some("<one@x>"),
        },
        Applied {
            uid: 2,
            rule: "b",
            message_id: None,
        },
    ];
    db.record_applied(A, &inbox(), v(7), &applied).unwrap();
    // (uid, Message-ID asked for, rules expected)
    let cases: &[(u32, Option<&str>, &[&str])] = &[
        (1, Some("<one@x>"), &["a"]),
        (1, Some("<other@x>"), &[]),
        (1, None, &[]),
        (2, None, &["b"]),
        (2, Some("<two@x>"), &[]),
        (3, None, &[]),
    ];
    for (uid, id, rules) in cases {
        let got = db
            .applied_rules_to(A, &inbox(), v(7), &[(*uid, *id)])
            .unwrap();
        let want: HashSet<String> = rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            got.get(uid).cloned().unwrap_or_default(),
            want,
            "{uid} {id:?}"
        );
    }
}

#[test]
fn applied_rules_handles_more_uids_than_one_statement_holds() {
    let mut db = db();
    db.set_last_uid(A, &inbox(), v(7), 0).unwrap();
    let names: Vec<String> = (0..1500).map(|i| format!("r{i}")).collect();
    let applied: Vec<Applied<'_>> = (0..1500u32)
        .map(|uid| Applied {
            uid: uid + 1,
            rule: &names[uid as usize],
            message_id: None,
        })
        .collect();
    db.record_applied(A, &inbox(), v(7), &applied).unwrap();
    let uids: Vec<u32> = (1..=2000).collect();
    let got = db.applied_rules(A, &inbox(), v(7), &uids).unwrap();
    assert_eq!(got.len(), 1500);
    assert!(got[&1200].contains("r1199"));
}

#[test]
fn forget_applied_except_keeps_present_messages() {
    let mut db = db();
    db.set_last_uid(A, &inbox(), v(7), 0).unwrap();
    let applied: Vec<Applied<'_>> = (1..=5)
        .map(|uid| Applied {
            uid,
            rule: "r",
            message_id: None,
        })
        .collect();
    db.record_applied(A, &inbox(), v(7), &applied).unwrap();
    assert_eq!(
        db.forget_applied_except(A, &inbox(), v(7), &[2, 4, 9])
            .unwrap(),
        3
    );
    let left = db
        .applied_rules(A, &inbox(), v(7), &[1, 2, 3, 4, 5])
        .unwrap();
    let mut uids: Vec<u32> = left.keys().copied().collect();
    uids.sort();
    assert_eq!(uids, [2, 4]);
}

#[test]
fn intents_stay_unfinished_until_an_outcome_is_recorded() {
    let mut db = db();
    let copy = db
        .journal_intent(&entry(5, Action::Copy, Some("Accounting/2026")))
        .unwrap();
    let moves = db
        .journal_intents(&[
            entry(6, Action::Move, Some("Lists/x")),
            entry(7, Action::Move, Some("Lists/x")),
        ])
        .unwrap();
    db.journal_record(&entry(8, Action::Flag, Some("$Invoice")), &Outcome::Done)
        .unwrap();
    let other = NewJournalEntry {
        account: "work",
        ..entry(1, Action::Trash, Some("Trash"))
    };
    db.journal_intent(&other).unwrap();

    let open = db.unfinished_intents(A).unwrap();
    let ids: Vec<JournalId> = open.iter().map(|e| e.id).collect();
    assert_eq!(ids, [copy, moves[0], moves[1]]);
    assert_eq!(open[0].destination.as_deref(), Some("Accounting/2026"));
    assert_eq!(open[0].message_id.as_deref(), Some("<m@example.org>"));
    assert_eq!(open[0].uid_validity, Some(v(7)));
    assert_eq!(open[0].outcome, Outcome::Intent);
    assert_eq!(open[0].finished_at, None);

    db.journal_outcome(copy, &Outcome::Done).unwrap();
    db.journal_outcomes(&moves, &Outcome::Failed("NO quota exceeded".into()))
        .unwrap();
    assert!(db.unfinished_intents(A).unwrap().is_empty());
    assert_eq!(db.unfinished_intents("work").unwrap().len(), 1);

    let err = db
        .journal_outcome(JournalId(9999), &Outcome::Unknown)
        .unwrap_err();
    assert!(matches!(err, StateError::NoSuchJournalEntry(9999)));
}

#[test]
fn outcomes_of_runs_of_consecutive_intents_close_exactly_those() {
    let mut db = db();
    let ids = db
        .journal_intents(
            &(1..=6)
                .map(|u| entry(u, Action::Move, Some("X")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    // 1..3 a run, 5 alone, 6 with 5: two runs and nothing else.
    let chosen = [ids[2], ids[0], ids[1], ids[5], ids[4]];
    db.journal_outcomes(&chosen, &Outcome::Done).unwrap();
    let open: Vec<u32> = db
        .unfinished_intents(A)
        .unwrap()
        .iter()
        .map(|e| e.uid)
        .collect();
    assert_eq!(open, [4]);
    // A range reaching past the last row is an error, not a silent partial update.
    let past = [JournalId(ids[5].0 + 1), JournalId(ids[5].0 + 2)];
    let err = db.journal_outcomes(&past, &Outcome::Done).unwrap_err();
    assert!(matches!(err, StateError::NoSuchJournalEntry(_)), "{err:?}");
}

#[test]
fn a_dropped_batch_writes_nothing_and_a_committed_one_everything() {
    let mut db = db();
    {
        let tx = db.batch().unwrap();
        tx.set_last_uid(A, &inbox(), v(7), 10).unwrap();
        tx.journal_intent(&entry(10, Action::Copy, Some("X")))
            .unwrap();
        // dropped: rolled back
    }
    assert_eq!(db.mailbox(A, &inbox()).unwrap(), None);
    assert!(db.unfinished_intents(A).unwrap().is_empty());

    let tx = db.batch().unwrap();
    let id = tx
        .journal_intent(&entry(10, Action::Copy, Some("X")))
        .unwrap();
    tx.journal_outcome(id, &Outcome::Done).unwrap();
    tx.record_applied(
        A,
        &inbox(),
        UidValidity::new(7).unwrap(),
        &[Applied {
            uid: 10,
            rule: "r",
            message_id: None,
        }],
    )
    .unwrap();
    tx.set_last_uid(A, &inbox(), v(7), 10).unwrap();
    tx.commit().unwrap();
    assert_eq!(db.mailbox(A, &inbox()).unwrap().unwrap().last_uid, 10);
    assert_eq!(db.applied_rules(A, &inbox(), v(7), &[10]).unwrap().len(), 1);
}

/// `history: 30d`.
fn thirty_days() -> Retention {
    Retention {
        max_age: std::time::Duration::from_secs(30 * 24 * 3600),
    }
}

#[test]
fn the_default_history_is_ninety_days() {
    assert_eq!(
        Retention::default().max_age,
        std::time::Duration::from_secs(90 * 24 * 3600)
    );
}

#[test]
fn prune_drops_rows_older_than_the_history_setting() {
    const DAY: i64 = 24 * 3600 * 1000;
    let start = 1_800_000_000_000;
    let (mut db, now) = manual_clock(db(), start);
    for uid in 1..=10 {
        db.journal_record(&entry(uid, Action::Flag, Some("\\Seen")), &Outcome::Done)
            .unwrap();
    }
    now.store(start + 20 * DAY, Ordering::SeqCst);
    for uid in 11..=15 {
        db.journal_record(&entry(uid, Action::Flag, Some("\\Seen")), &Outcome::Done)
            .unwrap();
    }
    // (days after start, rows left)
    let cases = [(25, 15), (31, 5), (60, 0)];
    for (days, left) in cases {
        now.store(start + days * DAY, Ordering::SeqCst);
        db.prune(thirty_days()).unwrap();
        let report = db.status(100).unwrap();
        let n: usize = report
            .accounts
            .iter()
            .flat_map(|a| &a.mailboxes)
            .map(|m| m.recent_actions.len())
            .sum();
        assert_eq!(n, left, "after {days} days");
    }
}

/// Regression (issue 11, item 5): a record of the same (UID, rule) made for another message
/// (a restored backup, a server started again under the same UIDVALIDITY) does not count,
/// so the rule runs; its new record must replace the stale one, or the rule runs on every
/// sweep.
#[test]
fn a_new_applied_record_replaces_a_stale_one_of_another_message() {
    let mut db = db();
    db.reset_mailbox(A, &inbox(), v(7)).unwrap();
    let record = |db: &mut StateDb, id: &'static str| {
        let pairs = [Applied {
            uid: 1,
            rule: "invoices",
            message_id: Some(id),
        }];
        db.record_applied(A, &inbox(), v(7), &pairs).unwrap();
    };
    record(&mut db, "<old@x>");
    let new = [(1, Some("<new@x>"))];
    assert!(
        db.applied_rules_to(A, &inbox(), v(7), &new)
            .unwrap()
            .is_empty()
    );
    record(&mut db, "<new@x>");
    let got = db.applied_rules_to(A, &inbox(), v(7), &new).unwrap();
    assert_eq!(got.get(&1).map(|r| r.len()), Some(1), "{got:?}");
}

/// Regression (issue 11, item 4): pruning deleted open intents, so recovery lost what a
/// crash left undecided (a copy made twice), and closing a pruned intent failed its batch.
#[test]
fn prune_keeps_open_intents_however_old() {
    const DAY: i64 = 24 * 3600 * 1000;
    let start = 1_800_000_000_000;
    let (mut db, now) = manual_clock(db(), start);
    let open = db
        .journal_intent(&entry(1, Action::Copy, Some("Accounting")))
        .unwrap();
    for uid in 2..=6 {
        db.journal_record(&entry(uid, Action::Flag, Some("\\Seen")), &Outcome::Done)
            .unwrap();
    }
    now.store(start + 90 * DAY, Ordering::SeqCst);
    for retention in [thirty_days(), Retention::default()] {
        db.prune(retention).unwrap();
        let left: Vec<u32> = db
            .unfinished_intents(A)
            .unwrap()
            .iter()
            .map(|e| e.uid)
            .collect();
        assert_eq!(left, [1], "{retention:?}");
    }
    db.journal_outcome(open, &Outcome::Done).unwrap();
}

#[test]
fn writes_prune_the_journal_once_a_day() {
    const DAY: i64 = 24 * 3600 * 1000;
    let start = 1_800_000_000_000;
    let (mut db, now) = manual_clock(db(), start);
    db.set_retention(thirty_days());
    db.journal_record(&entry(1, Action::Flag, None), &Outcome::Done)
        .unwrap();
    let count = |db: &StateDb| {
        db.status(1000).unwrap().accounts[0].mailboxes[0]
            .recent_actions
            .len()
    };
    // 31 days later the first row is past retention; the next write prunes it.
    now.store(start + 31 * DAY, Ordering::SeqCst);
    db.journal_record(&entry(2, Action::Flag, None), &Outcome::Done)
        .unwrap();
    assert_eq!(count(&db), 1);
    // An explicit prune at T2 keeps row 2 (29 days 23 hours old)...
    const HOUR: i64 = DAY / 24;
    let t2 = start + 31 * DAY + 30 * DAY - HOUR;
    now.store(t2, Ordering::SeqCst);
    db.prune(thirty_days()).unwrap();
    assert_eq!(count(&db), 1);
    // ...two hours later row 2 is past retention, but less than a day has passed since the
    // last prune: a write leaves it.
    now.store(t2 + 2 * HOUR, Ordering::SeqCst);
    db.journal_record(&entry(3, Action::Flag, None), &Outcome::Done)
        .unwrap();
    assert_eq!(count(&db), 2);
    // A day after the last prune, the next write prunes it.
    now.store(t2 + DAY, Ordering::SeqCst);
    db.journal_record(&entry(4, Action::Flag, None), &Outcome::Done)
        .unwrap();
    assert_eq!(count(&db), 2);
    let uids: Vec<u32> = db.status(10).unwrap().accounts[0].mailboxes[0]
        .recent_actions
        .iter()
        .map(|e| e.uid)
        .collect();
    assert_eq!(uids, [4, 3]);
}

#[test]
fn status_reports_each_mailbox_with_its_newest_actions() {
    let (mut db, now) = manual_clock(db(), 1_800_000_000_000);
    db.set_last_uid(A, &inbox(), v(7), 42).unwrap();
    db.record_error(A, &inbox(), "BYE server shutting down")
        .unwrap();
    db.touch("work", &MailboxName::from("Lists")).unwrap();
    for uid in 1..=5 {
        now.fetch_add(1000, Ordering::SeqCst);
        db.journal_record(&entry(uid, Action::Move, Some("Lists/x")), &Outcome::Done)
            .unwrap();
    }
    db.journal_intent(&entry(6, Action::Copy, Some("Y")))
        .unwrap();

    let report = db.status(3).unwrap();
    let names: Vec<&str> = report.accounts.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(names, ["personal", "work"]);
    let inbox = &report.accounts[0].mailboxes[0];
    assert_eq!(inbox.mailbox, "INBOX");
    assert_eq!(inbox.last_uid, Some(42));
    assert_eq!(inbox.uid_validity, Some(7));
    assert_eq!(inbox.unfinished, 1);
    assert_eq!(
        inbox.last_error.as_ref().unwrap().text,
        "BYE server shutting down"
    );
    let uids: Vec<u32> = inbox.recent_actions.iter().map(|e| e.uid).collect();
    assert_eq!(uids, [6, 5, 4], "newest first, at most 3");
    let lists = &report.accounts[1].mailboxes[0];
    assert_eq!(
        (lists.last_uid, lists.last_activity.is_some()),
        (None, true)
    );

    let json = serde_json::to_value(&report).unwrap();
    let action = &json["accounts"][0]["mailboxes"][0]["recent_actions"][1];
    assert_eq!(action["action"], "move");
    assert_eq!(action["outcome"], "done");
    assert_eq!(action["at"], "2027-01-15T08:00:05Z");
}

#[test]
fn the_database_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("nested/state");
    {
        let mut db = StateDb::open(&state_dir).unwrap();
        db.set_last_uid(A, &inbox(), v(7), 99).unwrap();
        db.record_applied(
            A,
            &inbox(),
            UidValidity::new(7).unwrap(),
            &[Applied {
                uid: 98,
                rule: "r",
                message_id: None,
            }],
        )
        .unwrap();
        db.journal_intent(&entry(99, Action::Copy, Some("X")))
            .unwrap();
    }
    let mut db = StateDb::open(&state_dir).unwrap();
    assert_eq!(
        db.mailbox(A, &inbox()).unwrap(),
        Some(MailboxState {
            uid_validity: v(7),
            last_uid: 99
        })
    );
    assert_eq!(db.set_last_uid(A, &inbox(), v(7), 50).unwrap(), 99);
    assert_eq!(db.applied_rules(A, &inbox(), v(7), &[98]).unwrap().len(), 1);
    assert_eq!(db.unfinished_intents(A).unwrap().len(), 1);
}

#[test]
fn open_creates_a_private_directory_and_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("imapsort");
    let db = StateDb::open(&state_dir).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state_dir), 0o700);
    assert_eq!(mode(db.path().unwrap()), 0o600);
    assert_eq!(db.path().unwrap(), state_dir.join(FILE_NAME));
}

#[test]
fn read_only_open_sees_the_data_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(StateDb::open_read_only(dir.path()).unwrap().is_none());
    {
        let mut db = StateDb::open(dir.path()).unwrap();
        db.set_last_uid(A, &inbox(), v(7), 12).unwrap();
    }
    let before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let db = StateDb::open_read_only(dir.path()).unwrap().unwrap();
    assert_eq!(db.mailbox(A, &inbox()).unwrap().unwrap().last_uid, 12);
    drop(db);
    let after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn read_only_open_sees_uncheckpointed_writes_of_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = StateDb::open(dir.path()).unwrap();
    daemon.set_last_uid(A, &inbox(), v(7), 31).unwrap();
    let reader = StateDb::open_read_only(dir.path()).unwrap().unwrap();
    assert_eq!(reader.mailbox(A, &inbox()).unwrap().unwrap().last_uid, 31);
    daemon.set_last_uid(A, &inbox(), v(7), 32).unwrap();
    assert_eq!(reader.mailbox(A, &inbox()).unwrap().unwrap().last_uid, 32);
}

#[test]
fn uri_path_escapes_uri_syntax() {
    let cases = [
        (
            "/var/lib/imapsort/state.sqlite3",
            "/var/lib/imapsort/state.sqlite3",
        ),
        ("/tmp/a?b#c/s", "/tmp/a%3Fb%23c/s"),
        ("/tmp/100%/s", "/tmp/100%25/s"),
        ("/tmp/my dir/s", "/tmp/my%20dir/s"),
        ("/tmp/é", "/tmp/%C3%A9"),
    ];
    for (path, want) in cases {
        assert_eq!(uri_path(Path::new(path)), want);
    }
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), b"this is not SQLite, just text").unwrap();
    let err = StateDb::open(dir.path()).unwrap_err();
    match &err {
        StateError::Open { path, .. } => assert_eq!(path, &dir.path().join(FILE_NAME)),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("state.sqlite3"), "{err}");
}

#[test]
fn two_writers_on_one_file_take_turns_instead_of_failing() {
    // `imapsort sweep` may run while the daemon writes to the same database.
    let dir = tempfile::tempdir().unwrap();
    StateDb::open(dir.path()).unwrap();
    let writers: Vec<_> = ["daemon", "sweep"]
        .into_iter()
        .map(|account| {
            let path = dir.path().to_owned();
            std::thread::spawn(move || {
                let mut db = StateDb::open(&path).unwrap();
                for uid in 1..=100 {
                    let tx = db.batch().unwrap();
                    tx.journal_intent(&NewJournalEntry {
                        account,
                        ..entry(uid, Action::Copy, None)
                    })
                    .unwrap();
                    tx.set_last_uid(account, &inbox(), UidValidity::new(7).unwrap(), uid)
                        .unwrap();
                    tx.commit().unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let db = StateDb::open(dir.path()).unwrap();
    for account in ["daemon", "sweep"] {
        assert_eq!(
            db.mailbox(account, &inbox()).unwrap().unwrap().last_uid,
            100
        );
        assert_eq!(db.unfinished_intents(account).unwrap().len(), 100);
    }
}

#[test]
fn row_ids_are_grouped_in_runs_of_consecutive_ids() {
    let ids = [9, 3, 4, 5, 4, 12, 11, 1].into_iter();
    assert_eq!(super::id_runs(ids), vec![(1, 1), (3, 5), (9, 9), (11, 12)]);
    assert!(super::id_runs(std::iter::empty()).is_empty());
}

/// The journal's queries for open intents use the partial index of open intents: the
/// journal keeps every step (a million rows after a million-message sweep) and only a
/// handful are open. `Sink::returning` runs one of them before every pass, the daemon's
/// new-mail passes too.
#[test]
fn open_intent_queries_use_the_index_of_open_intents() {
    let db = db();
    for from in [
        OPEN_INTENTS_OF_MAILBOX,
        UNFINISHED_INTENTS,
        OPEN_INTENTS_INTO,
    ] {
        let mut stmt = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN SELECT id {from}"))
            .unwrap();
        let args = vec!["x"; stmt.parameter_count()];
        let plan = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ");
        assert!(plan.contains("journal_intent"), "{from}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{from}: {plan}");
    }
}
