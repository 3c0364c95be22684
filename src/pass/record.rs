//! What a pass over a mailbox writes to the state database around its commands (the
//! synchronous half of [`super::sink`]): an *intent* in the journal before each copy and
//! terminal action, and after them the outcomes, the flag changes made, and the (rule,
//! message) pairs applied. A plan that failed part-way leaves its intents open: a copy may
//! have been made before a later step failed, and only [`crate::recover`] can tell.

use super::MessageResult;
use crate::execute::{Copied, Fence};
use crate::rules::{FinalKind, Plan};
use crate::state::{
    Action, Applied, Batch, JournalId, NewFence, NewJournalEntry, Outcome, StateDb, StateError,
};
use crate::vocab::{MailboxName, UidValidity};

/// How many results a sink buffers before writing them in one transaction: a sweep hands
/// over a whole pass's results at its end, and holding 100,000 copies would cost ~40 MB.
pub const RESULTS_BATCH: usize = 5_000;

/// Journal intents written and not yet finished, by UID, to finish with [`results`]. Kept as
/// a sorted list of (UID, id) pairs, 16 bytes each: a sweep holds the intents of a whole pass
/// (a map of vectors cost ~80 bytes per message).
#[derive(Clone, Debug, Default)]
pub struct Intents {
    /// Sorted by UID (stable: a message's intents keep their order).
    rows: Vec<(u32, JournalId)>,
}

impl Intents {
    pub fn new() -> Intents {
        Intents::default()
    }

    /// Adds the intents of another batch.
    pub fn extend(&mut self, other: Intents) {
        let sorted = match (self.rows.last(), other.rows.first()) {
            (Some(last), Some(first)) => last.0 <= first.0,
            _ => true,
        };
        self.rows.extend(other.rows);
        if !sorted {
            self.rows.sort_by_key(|r| r.0);
        }
    }

    /// The intents of the message `uid`.
    pub fn of(&self, uid: u32) -> impl Iterator<Item = JournalId> + '_ {
        let start = self.rows.partition_point(|r| r.0 < uid);
        self.rows[start..]
            .iter()
            .take_while(move |r| r.0 == uid)
            .map(|r| r.1)
    }

    /// Takes the intents of `uids` out (to finish them with their results).
    pub fn take(&mut self, uids: impl IntoIterator<Item = u32>) -> Intents {
        let wanted: std::collections::HashSet<u32> = uids.into_iter().collect();
        let (taken, kept) = std::mem::take(&mut self.rows)
            .into_iter()
            .partition(|r| wanted.contains(&r.0));
        self.rows = kept;
        Intents { rows: taken }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lowest and highest journal id held.
    pub fn range(&self) -> Option<(JournalId, JournalId)> {
        let min = self.rows.iter().map(|r| r.1).min()?;
        let max = self.rows.iter().map(|r| r.1).max()?;
        Some((min, max))
    }
}

/// Which account, mailbox and UIDVALIDITY the rows are about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The account's name.
    pub account: String,
    /// The mailbox the messages are in.
    pub mailbox: MailboxName,
    /// The UIDVALIDITY the UIDs belong to.
    pub uid_validity: UidValidity,
}

/// Writes the intents of the copies and terminal actions of `planned`, in one transaction.
pub fn intents(
    db: &mut StateDb,
    at: &Place,
    planned: &[MessageResult],
) -> Result<Intents, StateError> {
    let mut uids = Vec::new();
    let mut rows = Vec::new();
    for r in planned {
        for (action, dest) in risky_actions(&r.plan) {
            uids.push(r.uid.get());
            rows.push(entry(at, r, action, dest));
        }
    }
    let mut out = Intents::new();
    if rows.is_empty() {
        return Ok(out);
    }
    out.rows = uids.into_iter().zip(db.journal_intents(&rows)?).collect();
    out.rows.sort_by_key(|r| r.0);
    Ok(out)
}

/// A batch's intents (their journal ids) and the copies its commands reported.
#[derive(Clone, Debug)]
pub struct Copies {
    pub intents: (JournalId, JournalId),
    pub copied: Vec<Copied>,
}

/// Writes the batch's fences (before its copy-based commands), in one transaction.
pub fn fences(
    db: &mut StateDb,
    at: &Place,
    intents: (JournalId, JournalId),
    fences: &[Fence],
) -> Result<(), StateError> {
    let rows: Vec<NewFence<'_>> = fences
        .iter()
        .map(|f| NewFence {
            destination: &f.mailbox,
            dest_uid_validity: f.uid_validity,
            dest_uid_next: f.uid_next,
        })
        .collect();
    db.record_fences(&batch(at, intents), &rows)
}

fn batch(at: &Place, intents: (JournalId, JournalId)) -> Batch<'_> {
    Batch {
        account: &at.account,
        mailbox: &at.mailbox,
        uid_validity: at.uid_validity,
        intents,
    }
}

/// Writes what came of `results` in one transaction: outcomes of their `intents`, flag
/// changes, applied pairs, and the copies the batch's commands reported. Failed results
/// leave their intents open.
pub fn results(
    db: &mut StateDb,
    at: &Place,
    results: &[MessageResult],
    intents: &Intents,
    copies: Option<&Copies>,
) -> Result<(), StateError> {
    let tx = db.batch()?;
    if let Some(c) = copies {
        for copied in &c.copied {
            tx.record_copies(&batch(at, c.intents), &copied.mailbox, &copied.uids)?;
        }
    }
    // All pairs in one call: one UIDVALIDITY check for the batch rather than one per message.
    let mut pairs: Vec<Applied<'_>> = Vec::new();
    // The intents carried out, closed together (runs of consecutive ids, one statement each).
    let mut done: Vec<JournalId> = Vec::new();
    for r in results {
        if r.error.is_some() {
            continue;
        }
        done.extend(intents.of(r.uid.get()));
        for (action, dest) in flag_actions(&r.plan) {
            tx.journal_record(&entry(at, r, action, Some(dest)), &Outcome::Done)?;
        }
        pairs.extend(r.rules.iter().map(|rule| Applied {
            uid: r.uid.get(),
            rule,
            message_id: r.message_id.as_deref(),
        }));
    }
    tx.journal_outcomes(&done, &Outcome::Done)?;
    if !pairs.is_empty() {
        tx.record_applied(&at.account, &at.mailbox, at.uid_validity, &pairs)?;
    }
    tx.commit()
}

fn entry<'e>(
    at: &'e Place,
    r: &'e MessageResult,
    action: Action,
    destination: Option<&'e str>,
) -> NewJournalEntry<'e> {
    NewJournalEntry {
        account: &at.account,
        mailbox: &at.mailbox,
        uid_validity: at.uid_validity,
        uid: r.uid.get(),
        message_id: r.message_id.as_deref(),
        rules: &r.rules,
        action,
        destination,
    }
}

/// Copies and the terminal action: not safe to repeat, so journaled as intents first.
fn risky_actions(plan: &Plan) -> Vec<(Action, Option<&str>)> {
    let mut out: Vec<(Action, Option<&str>)> = plan
        .copy
        .iter()
        .map(|m| (Action::Copy, Some(m.as_str())))
        .collect();
    if let Some(f) = &plan.final_action {
        let action = match f.action {
            FinalKind::Move => Action::Move,
            FinalKind::Archive => Action::Archive,
            FinalKind::Trash => Action::Trash,
            FinalKind::Delete => Action::Delete,
        };
        out.push((action, f.mailbox.as_deref()));
    }
    out
}

/// Flag and label changes: harmless to repeat, journaled once done, one row per flag.
fn flag_actions(plan: &Plan) -> Vec<(Action, &str)> {
    let mut out = Vec::new();
    for (action, list) in [
        (Action::Flag, &plan.add_flags),
        (Action::Unflag, &plan.remove_flags),
        (Action::Label, &plan.add_labels),
    ] {
        out.extend(list.iter().map(|f| (action, f.as_str())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::uidset::Uid;

    fn result(uid: u32, plan: Plan, error: Option<&str>) -> MessageResult {
        MessageResult {
            uid: Uid::new(uid).unwrap(),
            message_id: Some(format!("<{uid}@x>")),
            gist: Default::default(),
            rules: vec!["r".into()],
            plan,
            warnings: vec![],
            done: error.is_none(),
            error: error.map(str::to_string),
        }
    }

    /// Regression: the sweep command marked the intents of a part-failed plan `failed`, so
    /// the next sweep copied again; they stay open for recovery.
    #[test]
    fn a_failed_plan_leaves_its_intents_open_and_a_done_one_closes_them() {
        let mut db = StateDb::open_in_memory().unwrap();
        db.reset_mailbox(
            "a",
            &MailboxName::from("INBOX"),
            UidValidity::new(7).unwrap(),
        )
        .unwrap();
        let at = &Place {
            account: "a".into(),
            mailbox: MailboxName::inbox(),
            uid_validity: UidValidity::new(7).unwrap(),
        };
        let plan = Plan {
            copy: vec!["Accounting".into()],
            add_flags: vec!["\\Flagged".into()],
            ..Plan::default()
        };
        let batch = [result(1, plan.clone(), None), result(2, plan, Some("no"))];
        let ids = intents(&mut db, at, &batch).unwrap();
        assert_eq!((ids.of(1).count(), ids.of(2).count()), (1, 1));
        results(&mut db, at, &batch, &ids, None).unwrap();
        let open: Vec<u32> = db
            .unfinished_intents("a")
            .unwrap()
            .iter()
            .map(|e| e.uid)
            .collect();
        assert_eq!(open, vec![2]);
        let applied = db
            .applied_rules(
                "a",
                &MailboxName::from("INBOX"),
                UidValidity::new(7).unwrap(),
                &[1, 2],
            )
            .unwrap();
        assert_eq!(applied.keys().copied().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn intents_are_found_by_uid_in_order_and_taken_by_uid() {
        let batch = |rows: &[(u32, i64)]| Intents {
            rows: rows.iter().map(|&(u, id)| (u, JournalId(id))).collect(),
        };
        let mut all = batch(&[(5, 50), (7, 70), (7, 71)]);
        // A later batch with lower UIDs (another pass over the same mailbox) still sorts in.
        all.extend(batch(&[(2, 20), (9, 90)]));
        let of = |i: &Intents, uid| i.of(uid).map(|id| id.0).collect::<Vec<_>>();
        assert_eq!(of(&all, 7), [70, 71]);
        assert_eq!(of(&all, 2), [20]);
        assert!(of(&all, 6).is_empty());
        let taken = all.take([7, 2]);
        assert_eq!(of(&taken, 7), [70, 71]);
        assert_eq!(of(&all, 7), Vec::<i64>::new());
        assert_eq!(of(&all, 5), [50]);
        assert_eq!(of(&all, 9), [90]);
        let _ = all.take([5, 9]);
        assert!(all.is_empty());
    }
}
