//! The state database across a process that dies without warning (`abort`, as a crash or a
//! SIGKILL would): committed batches survive whole, the batch in flight leaves no trace, and
//! an intent written before the "command" is there for reconciliation.
//!
//! The dying side is this test binary re-run as a child (`--exact state_crash::crash_child`) with the
//! state directory in its environment.

use std::process::Command;

use imapsort::state::{Action, Applied, NewJournalEntry, Outcome, StateDb};

const CHILD_DIR: &str = "IMAPSORT_CRASH_TEST_DIR";

fn entry(uid: u32) -> NewJournalEntry<'static> {
    NewJournalEntry {
        account: "personal",
        mailbox: "INBOX",
        uid_validity: 9,
        uid,
        message_id: Some("<crash@example.org>"),
        rule: "lists",
        action: Action::Move,
        destination: Some("Lists/x"),
    }
}

/// Runs only as the child: one committed batch (UIDs 1-500 handled), then the intent for the
/// next batch's MOVE, then a second batch that is in flight when the process aborts.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let mut db = StateDb::open(std::path::Path::new(&dir)).unwrap();

    let rules: Vec<Applied<'_>> = (1..=500)
        .map(|uid| Applied {
            uid,
            rule: "lists",
            message_id: None,
        })
        .collect();
    let tx = db.batch().unwrap();
    tx.reset_mailbox("personal", "INBOX", 9).unwrap();
    let ids = tx
        .journal_intents(&(1..=500).map(entry).collect::<Vec<_>>())
        .unwrap();
    tx.journal_outcomes(&ids, &Outcome::Done).unwrap();
    tx.record_applied("personal", "INBOX", 9, &rules).unwrap();
    tx.set_last_uid("personal", "INBOX", 9, 500).unwrap();
    tx.commit().unwrap();

    // The intent is committed before the MOVE would be sent...
    db.journal_intent(&entry(501)).unwrap();
    // ...and the crash comes while the outcome's batch is still open.
    let tx = db.batch().unwrap();
    tx.set_last_uid("personal", "INBOX", 9, 501).unwrap();
    tx.record_applied(
        "personal",
        "INBOX",
        9,
        &[Applied {
            uid: 501,
            rule: "lists",
            message_id: None,
        }],
    )
    .unwrap();
    std::process::abort();
}

#[test]
fn a_crash_keeps_committed_batches_and_the_intent_and_drops_the_open_batch() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .arg("--exact")
        .arg(crate::support::child_test(module_path!(), "crash_child"))
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");

    let db = StateDb::open(dir.path()).unwrap();
    let state = db.mailbox("personal", "INBOX").unwrap().unwrap();
    assert_eq!((state.uid_validity, state.last_uid), (9, 500));
    let applied = db
        .applied_rules("personal", "INBOX", 9, &[1, 250, 500, 501])
        .unwrap();
    let mut uids: Vec<u32> = applied.keys().copied().collect();
    uids.sort();
    assert_eq!(uids, [1, 250, 500]);
    let open = db.unfinished_intents("personal").unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].uid, 501);
    assert_eq!(open[0].message_id.as_deref(), Some("<crash@example.org>"));
    assert_eq!(open[0].destination.as_deref(), Some("Lists/x"));
    let report = db.status(1000).unwrap();
    assert_eq!(report.accounts[0].mailboxes[0].recent_actions.len(), 501);
}
