//! A batch whose moves go to several mailboxes ends with one shared `\Deleted` + `UID
//! EXPUNGE`, one with a single destination with its `UID MOVE`; its results are written while
//! those run and committed on their tagged OK (docs/sweep.md, step 6). Against a real
//! Dovecot: the write-ahead is what records the results, and what it records is complete —
//! every entry done and placed, every pair applied, no intent left open — so a second sweep
//! finds nothing to do. And a connection cut at those last commands (before the server sees
//! them, or after it ran them and before its answer arrives) rolls the write back: the next
//! sweep settles the batch, every message ends where its rule sends it, once.

use imapsort::state::{Selection, StateDb};
use imapsort::vocab::{MailboxName, UidValidity};

use imapsort_testkit::dovecot::Dovecot;

use crate::support::once_util::cutter::{Cut, Cutter, When};
use crate::support::once_util::{self, Via, shown};
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

/// One destination: a quarter of the messages (from `a@x.test`) to A, by one `UID MOVE`.
const RULE_A: &str = "  - { name: a, when: { from: a@x.test }, then: { move: A } }\n";

/// The state after a batch of `moved` moves was recorded: every entry done, no intent left
/// open; with `whole` (recorded by the sweep that moved them, not settled by recovery, which
/// has no rule pairs to keep for messages that left), where the server put each message and
/// every rule applied.
fn assert_recorded(state: &std::path::Path, moved: usize, whole: bool) {
    let db = StateDb::open(state).unwrap();
    assert!(db.unfinished_intents("test").unwrap().is_empty());
    let entries = db.history(&Selection::default()).unwrap();
    assert_eq!(entries.len(), moved);
    for e in &entries {
        assert!(e.done, "{e:?}");
        if whole {
            assert!(
                e.moved_to.is_some(),
                "where the server put it (COPYUID): {e:?}"
            );
        }
    }
    if !whole {
        return;
    }
    let uid_validity = UidValidity::new(entries[0].uid_validity.get()).unwrap();
    let uids: Vec<u32> = entries.iter().map(|e| e.uid).collect();
    let applied = db
        .applied_rules("test", &MailboxName::inbox(), uid_validity, &uids)
        .unwrap();
    assert_eq!(applied.len(), moved);
}

/// How many messages each of INBOX, A and C holds.
fn counts(d: &Dovecot) -> (u32, u32, u32) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut s = sweep_util::observer(d).await;
        let i = s.examine("INBOX").await.unwrap().exists;
        let a = s.examine("A").await.map(|m| m.exists).unwrap_or(0);
        let c = s.examine("C").await.map(|m| m.exists).unwrap_or(0);
        (i, a, c)
    })
}

/// Sweeps `rules` over the seeded INBOX: recorded ahead, complete; a second sweep repeats
/// nothing.
fn written_ahead(rules: &str, last_command: &str, moved: usize) {
    let Some(d) = support::dovecot::start(Default::default()) else {
        return;
    };
    sweep_util::seed_a_c(&d, MESSAGES, "ahead.test");
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_util::write_config(dir.path(), &d, "", rules);

    let (out, log) = sweep_util::sweep_logged(&config);
    assert_eq!(recorded_ahead(&log), ["ahead=true"], "{log}");
    assert!(
        log.contains(&format!("command=\"{last_command}\"")),
        "{log}"
    );
    let done = out.lines().filter(|l| l.contains("\"done\":true")).count();
    assert_eq!(done, moved, "{out}");
    let state = dir.path().join("state");
    assert_recorded(&state, moved, true);

    // Nothing left to do, nothing done twice.
    let (out, log) = sweep_util::sweep_logged(&config);
    assert!(recorded_ahead(&log).is_empty(), "{log}");
    assert!(!out.contains("\"done\":true"), "{out}");
    let db = StateDb::open(&state).unwrap();
    assert_eq!(db.history(&Selection::default()).unwrap().len(), moved);
}

#[test]
fn results_written_during_the_shared_expunge_are_complete_and_kept() {
    written_ahead(sweep_util::RULES_A_C, "UID EXPUNGE", MESSAGES / 2);
}

#[test]
fn results_written_during_a_closing_move_are_complete_and_kept() {
    written_ahead(RULE_A, "UID MOVE", MESSAGES / 4);
}

/// The connection cut at a batch's last command while its results are being written ahead:
/// the first sweep keeps nothing of the write-ahead; the second settles the batch; every
/// message is where its rule sends it, once; a third sweep changes nothing.
#[test]
fn a_cut_during_the_last_commands_rolls_the_write_ahead_back_and_nothing_is_lost() {
    let cases = [
        (RULE_A, "UID MOVE", When::Before, (300, 100, 0)),
        (RULE_A, "UID MOVE", When::AfterAnswer, (300, 100, 0)),
        (
            sweep_util::RULES_A_C,
            "UID EXPUNGE",
            When::AfterAnswer,
            (200, 100, 100),
        ),
    ];
    for (rules, command, when, want) in cases {
        let label = format!("{command} {when:?}");
        let Some(d) = support::dovecot::start(Default::default()) else {
            return;
        };
        sweep_util::seed_a_c(&d, MESSAGES, "cut.test");
        let cutter = Cutter::start(d.imap_port());
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let account = once_util::account(&d, "test", Via::Plain(cutter.port), "");
        let config = once_util::write_config(dir.path(), &state, "", &account, rules);

        cutter.arm(Cut::new(command, 1, when));
        let first = std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(["sweep", "-c"])
            .arg(&config)
            .env("IMAPSORT_LOG", "imapsort=debug")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&first.stderr);
        assert_eq!(cutter.fired(), 1, "{label}: no cut\n{log}");
        assert!(
            !recorded_ahead(&log).contains(&"ahead=true"),
            "{label}: kept a write-ahead across a cut\n{log}"
        );
        cutter.disarm();

        let second = once_util::sweep(&config, &[]);
        assert_eq!(second.status.code(), Some(0), "{label}\n{}", shown(&second));
        assert_eq!(
            counts(&d),
            want,
            "{label}: (INBOX, A, C)\n{}",
            shown(&second)
        );
        assert_recorded(&state, want.1 as usize + want.2 as usize, false);

        let third = once_util::sweep(&config, &[]);
        assert_eq!(third.status.code(), Some(0), "{label}\n{}", shown(&third));
        assert_eq!(counts(&d), want, "{label}: a third sweep changed something");
    }
}
