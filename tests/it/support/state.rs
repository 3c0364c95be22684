//! The daemon's state database, read from the side while a daemon (in-process or the real
//! binary) writes it: what tests await instead of sleeping. Read-only connections, opened per
//! question, so a test never holds a lock the daemon waits for.

use std::collections::HashSet;
use std::path::Path;

use imapsort::state::StateDb;

fn open(state_dir: &Path) -> Option<StateDb> {
    StateDb::open_read_only(state_dir).expect("read the state database")
}

/// Whether the daemon has selected `mailbox` once and fixed where its new mail starts: mail
/// delivered from now on is new to it, whatever `first_start` says.
pub fn knows(state_dir: &Path, account: &str, mailbox: &str) -> bool {
    open(state_dir).is_some_and(|db| db.mailbox(account, mailbox).unwrap().is_some())
}

/// Journal entries of `account` whose outcome is not written yet (actions under way, or left
/// by a crash for the next start to settle).
pub fn open_intents(state_dir: &Path, account: &str) -> usize {
    open(state_dir).map_or(0, |db| db.unfinished_intents(account).unwrap().len())
}

/// The rules the daemon has recorded as applied to `uid` in `mailbox` (under the mailbox's
/// current UIDVALIDITY): once recorded, a rule is never carried out on that message again.
pub fn applied(state_dir: &Path, account: &str, mailbox: &str, uid: u32) -> HashSet<String> {
    let Some(db) = open(state_dir) else {
        return HashSet::new();
    };
    let Some(state) = db.mailbox(account, mailbox).unwrap() else {
        return HashSet::new();
    };
    db.applied_rules(account, mailbox, state.uid_validity, &[uid])
        .unwrap()
        .remove(&uid)
        .unwrap_or_default()
}
