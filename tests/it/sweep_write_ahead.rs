//! A batch whose moves go to several mailboxes ends with one shared `\Deleted` + `UID
//! EXPUNGE`; its results are written while those run and committed on their tagged OK
//! (docs/sweep.md, step 6). Against a real Dovecot: the write-ahead is what records the
//! results, and what it records is complete — every entry done and placed, every pair
//! applied, no intent left open — so a second sweep finds nothing to do.

use imapsort::state::{Selection, StateDb};
use imapsort::vocab::{MailboxName, UidValidity};

use crate::support::{self, sweep_util};

/// Messages in INBOX: a quarter to A, a quarter to C, the rest stay.
const MESSAGES: usize = 400;

/// The `sweep recorded` line's `ahead` field.
fn recorded_ahead(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("sweep recorded"))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("ahead=")))
        .collect()
}

#[test]
fn results_written_during_the_shared_expunge_are_complete_and_kept() {
    let Some(d) = support::dovecot::start(Default::default()) else {
        return;
    };
    sweep_util::seed_a_c(&d, MESSAGES, "ahead.test");
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_util::write_config(dir.path(), &d, "", sweep_util::RULES_A_C);

    let (out, log) = sweep_util::sweep_logged(&config);
    assert_eq!(recorded_ahead(&log), ["ahead=true"], "{log}");
    assert!(log.contains("command=\"UID EXPUNGE\""), "{log}");
    let moved = MESSAGES / 2;
    let done = out.lines().filter(|l| l.contains("\"done\":true")).count();
    assert_eq!(done, moved, "{out}");

    let state = dir.path().join("state");
    let db = StateDb::open(&state).unwrap();
    assert!(db.unfinished_intents("test").unwrap().is_empty());
    let entries = db.history(&Selection::default()).unwrap();
    assert_eq!(entries.len(), moved);
    for e in &entries {
        assert!(e.done, "{e:?}");
        assert!(
            e.moved_to.is_some(),
            "where the server put it (COPYUID): {e:?}"
        );
    }
    let uid_validity = UidValidity::new(entries[0].uid_validity.get()).unwrap();
    let uids: Vec<u32> = entries.iter().map(|e| e.uid).collect();
    let applied = db
        .applied_rules("test", &MailboxName::inbox(), uid_validity, &uids)
        .unwrap();
    assert_eq!(applied.len(), moved);
    drop(db);

    // Nothing left to do, nothing done twice.
    let (out, log) = sweep_util::sweep_logged(&config);
    assert!(recorded_ahead(&log).is_empty(), "{log}");
    assert!(!out.contains("\"done\":true"), "{out}");
    let db = StateDb::open(&state).unwrap();
    assert_eq!(db.history(&Selection::default()).unwrap().len(), moved);
}
