//! What a pass over a mailbox writes to the state database around its commands (the
//! synchronous half of [`super::sink`]): before them, a history entry for every message
//! acted on and an *intent* in the journal (a step of that entry) before each copy and
//! terminal action; after them the outcomes, the flag changes made, the (rule, message)
//! pairs applied, and where the server says the moves and copies went (the entry's
//! placement). A plan that failed part-way leaves its intents open: a copy may have been made
//! before a later step failed, and only [`crate::recover`] can tell.

use std::collections::HashMap;

use super::MessageResult;
use crate::execute::{Copied, Fence};
use crate::rules::{FinalKind, Plan};
use crate::state::{
    Action, Applied, Batch, EntryId, JournalId, Link, NewEntry, NewFence, NewJournalEntry, Outcome,
    Placed, StateDb, StateError,
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
    /// The history entry of each message acted on, sorted by UID.
    entries: Vec<(u32, EntryId)>,
}

impl Intents {
    pub fn new() -> Intents {
        Intents::default()
    }

    /// Adds the intents of another batch.
    pub fn extend(&mut self, other: Intents) {
        append_sorted(&mut self.rows, other.rows);
        append_sorted(&mut self.entries, other.entries);
    }

    /// The history entry of the message `uid`, if one was written.
    pub fn entry_of(&self, uid: u32) -> Option<EntryId> {
        let i = self.entries.partition_point(|r| r.0 < uid);
        self.entries.get(i).filter(|r| r.0 == uid).map(|r| r.1)
    }

    /// Whether anything (an entry or an intent) was written.
    pub fn wrote(&self) -> bool {
        !self.entries.is_empty() || !self.rows.is_empty()
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
        Intents {
            rows: take_sorted(&mut self.rows, &wanted),
            entries: take_sorted(&mut self.entries, &wanted),
        }
    }

    /// The lowest and highest journal id held.
    pub fn range(&self) -> Option<(JournalId, JournalId)> {
        let min = self.rows.iter().map(|r| r.1).min()?;
        let max = self.rows.iter().map(|r| r.1).max()?;
        Some((min, max))
    }
}

/// Takes the pairs of `wanted` UIDs out of `list` (sorted by UID), in order. A sweep's
/// results come 5,000 at a time in UID order, so only the rows between the lowest and the
/// highest of them are looked at, and when they are all taken the rest is not copied (a
/// batch holds 250,000 rows).
fn take_sorted<T: Copy>(
    list: &mut Vec<(u32, T)>,
    wanted: &std::collections::HashSet<u32>,
) -> Vec<(u32, T)> {
    let (Some(&lo), Some(&hi)) = (wanted.iter().min(), wanted.iter().max()) else {
        return Vec::new();
    };
    let start = list.partition_point(|r| r.0 < lo);
    let end = list.partition_point(|r| r.0 <= hi);
    let taken: Vec<(u32, T)> = list[start..end]
        .iter()
        .filter(|r| wanted.contains(&r.0))
        .copied()
        .collect();
    if taken.len() == end - start {
        list.drain(start..end);
    } else {
        let mut i = 0;
        list.retain(|r| {
            let keep = i < start || i >= end || !wanted.contains(&r.0);
            i += 1;
            keep
        });
    }
    taken
}

/// Appends `more` to `list`, kept sorted by UID (stable).
fn append_sorted<T>(list: &mut Vec<(u32, T)>, more: Vec<(u32, T)>) {
    let sorted = match (list.last(), more.first()) {
        (Some(last), Some(first)) => last.0 <= first.0,
        _ => true,
    };
    list.extend(more);
    if !sorted {
        list.sort_by_key(|r| r.0);
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

/// Writes, in one transaction, a history entry for each message of `planned` that is acted
/// on (or continues the open entry of a plan tried before), and the intents of its copies
/// and terminal action, as steps of that entry.
pub fn intents(
    db: &mut StateDb,
    at: &Place,
    planned: &[MessageResult],
) -> Result<Intents, StateError> {
    let acted: Vec<&MessageResult> = planned.iter().filter(|r| r.acted_on()).collect();
    let mut out = Intents::new();
    if acted.is_empty() {
        return Ok(out);
    }
    let tx = db.batch()?;
    let uids: Vec<u32> = acted.iter().map(|r| r.uid.get()).collect();
    // A retry of a plan that failed continues its entry; the newest one counts.
    let open: HashMap<u32, _> = tx
        .open_entries(&at.account, &at.mailbox, at.uid_validity, &uids)?
        .into_iter()
        .map(|o| (o.uid, o))
        .collect();
    for r in acted {
        let uid = r.uid.get();
        let new = NewEntry {
            account: &at.account,
            mailbox: &at.mailbox,
            uid_validity: at.uid_validity,
            uid,
            message_id: r.message_id.as_deref(),
            from: r.from.as_deref(),
            subject: r.subject.as_deref(),
            rules: &r.rules,
            plan: &r.plan,
        };
        let id = match open.get(&uid) {
            Some(o) if o.message_id == r.message_id => {
                tx.extend_entry(o.id, (&o.plan, &o.rules), &new)?;
                o.id
            }
            _ => tx.insert_entry(&new)?,
        };
        out.entries.push((uid, id));
        for (action, dest) in risky_actions(&r.plan) {
            let step = tx.journal_step(
                Link::entry(id),
                &entry(at, r, action, dest),
                &Outcome::Intent,
            )?;
            out.rows.push((uid, step));
        }
    }
    tx.commit()?;
    out.rows.sort_by_key(|r| r.0);
    out.entries.sort_by_key(|r| r.0);
    Ok(out)
}

/// A batch's intents (their journal ids) and the copies its commands reported.
#[derive(Clone, Debug)]
pub struct Copies {
    pub intents: (JournalId, JournalId),
    pub copied: Vec<Copied>,
}

/// Where the server says a batch's copies and moves went: destination -> source UID ->
/// (the destination's UIDVALIDITY, the copy's UID). One batch's worth (up to 250,000
/// messages, about 16 bytes each): the pass clears it once the batch's results are written.
#[derive(Clone, Debug, Default)]
pub struct Placements(HashMap<MailboxName, HashMap<u32, (u32, u32)>>);

impl Placements {
    /// Adds what the commands of a batch reported (COPYUID).
    pub fn add(&mut self, copied: &[Copied]) {
        for c in copied {
            let into = self
                .0
                .entry(MailboxName::new(c.mailbox.as_str()))
                .or_default();
            for &(src, dst) in &c.uids.pairs {
                into.insert(src, (c.uids.uid_validity, dst));
            }
        }
    }

    /// Where the copy of `uid` in `mailbox` is, if the server said.
    pub fn of(&self, mailbox: &str, uid: u32) -> Option<(u32, u32)> {
        self.0.get(&MailboxName::new(mailbox))?.get(&uid).copied()
    }
}

/// Writes the batch's fences (before its copy-based commands), in one transaction.
pub fn fences(
    db: &mut StateDb,
    at: &Place,
    intents: (JournalId, JournalId),
    fences: &[Fence],
) -> Result<(), StateError> {
    db.record_fences(&batch(at, intents), &fence_rows(fences))
}

/// The state's rows for `fences` (the pass's batches and undo's).
pub fn fence_rows(fences: &[Fence]) -> Vec<NewFence<'_>> {
    fences
        .iter()
        .map(|f| NewFence {
            destination: &f.mailbox,
            dest_uid_validity: f.uid_validity,
            dest_uid_next: f.uid_next,
        })
        .collect()
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
/// changes, applied pairs, the copies the batch's commands reported, and the entries done
/// and where their moves and copies went (`placed`). Failed results leave their intents
/// open and their entries not done.
pub fn results(
    db: &mut StateDb,
    at: &Place,
    results: &[MessageResult],
    intents: &Intents,
    copies: Option<&Copies>,
    placed: &Placements,
) -> Result<(), StateError> {
    let tx = db.batch()?;
    results_into(&tx, at, results, intents, copies, placed)?;
    tx.commit()
}

/// The fewest results a batch writes ahead ([`results_ahead`]). Below that the write takes
/// less than a round trip to the server, and holding the state's write lock through the
/// batch's last commands would only make other writers wait: the daemon's workers, whose
/// new-mail passes move a message or two at a time, each behind the others' servers.
pub const AHEAD_MIN: usize = 100;

/// How long a write-ahead ([`results_ahead`]) may hold the state's write lock, its own writes
/// included (checked after each 5,000 results, so it may pass this by one chunk's write,
/// ~0.1 s). Another process on the same database (the daemon, while a user runs `imapsort
/// sweep`) waits [`crate::state::BUSY_TIMEOUT`] (5 s) for the lock before its write fails;
/// this stays under that, with room for that chunk (checked when compiling). At 100,000
/// messages the writes take 1–2.3 s and the removal they wait for 2.5–3.6 s
/// (docs/BENCHMARKS.md).
pub const AHEAD_HOLD: std::time::Duration = std::time::Duration::from_secs(4);
const _: () = assert!(AHEAD_HOLD.as_millis() + 500 <= crate::state::BUSY_TIMEOUT.as_millis());

/// What a write-ahead is told once the batch's last commands ended: `None` if they did not
/// end as expected; else the COPYUID answers they brought (a closing `UID MOVE`'s), to be
/// recorded with the rest.
pub type Verdict = Option<Vec<Copied>>;

/// The results of a whole batch written while its last commands run on the server (see
/// `Executor::run_ahead`): each message's result as `expected` says, all in one transaction
/// that is committed only once `verdict` says those commands ended as expected (with the
/// placements they reported, `intents` the batch's journal ids for them). Rolled back
/// (nothing written, `Ok(false)`) when the verdict is no, when it does not come before `hold`
/// has passed since the transaction began, or when the writes alone take that long: the pass
/// then writes the results after the commands, as it would have without this.
#[allow(clippy::too_many_arguments)]
pub fn results_ahead(
    db: &mut StateDb,
    at: &Place,
    results: impl Iterator<Item = MessageResult>,
    intents: &Intents,
    copies: Option<&Copies>,
    placed: &Placements,
    verdict: &std::sync::mpsc::Receiver<Verdict>,
    hold: std::time::Duration,
) -> Result<bool, StateError> {
    let began = std::time::Instant::now();
    let tx = db.batch()?;
    let mut chunk = Vec::with_capacity(RESULTS_BATCH);
    let mut copies = copies;
    let mut results = results.peekable();
    while results.peek().is_some() {
        chunk.clear();
        chunk.extend(results.by_ref().take(RESULTS_BATCH));
        results_into(&tx, at, &chunk, intents, copies.take(), placed)?;
        if began.elapsed() >= hold {
            return Ok(false);
        }
    }
    let left = hold.saturating_sub(began.elapsed());
    match verdict.recv_timeout(left) {
        Ok(Some(later)) => {
            placed_later(&tx, at, intents, &later)?;
            tx.commit()?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The COPYUID answers of a batch's closing move, which came after its results were
/// written: the copies for recovery and undo, and each moved message's history entry's
/// placement (a move's pairs are its messages' final destinations).
fn placed_later(
    tx: &crate::state::StateTx<'_>,
    at: &Place,
    intents: &Intents,
    later: &[Copied],
) -> Result<(), StateError> {
    if later.is_empty() {
        return Ok(());
    }
    if let Some(range) = intents.range() {
        copies_into(tx, at, range, later)?;
    }
    for copied in later {
        for &(src, dst) in &copied.uids.pairs {
            if let Some(id) = intents.entry_of(src) {
                tx.entry_moved_to(id, copied.uids.uid_validity, dst)?;
            }
        }
    }
    Ok(())
}

/// Records the COPYUID answers of the batch whose intents are `intents` (for recovery and
/// undo).
fn copies_into(
    tx: &crate::state::StateTx<'_>,
    at: &Place,
    intents: (JournalId, JournalId),
    copied: &[Copied],
) -> Result<(), StateError> {
    for c in copied {
        tx.record_copies(&batch(at, intents), &c.mailbox, &c.uids)?;
    }
    Ok(())
}

/// [`results`] within a transaction of the caller's.
fn results_into(
    tx: &crate::state::StateTx<'_>,
    at: &Place,
    results: &[MessageResult],
    intents: &Intents,
    copies: Option<&Copies>,
    placed: &Placements,
) -> Result<(), StateError> {
    if let Some(c) = copies {
        copies_into(tx, at, c.intents, &c.copied)?;
    }
    // All pairs in one call: one UIDVALIDITY check for the batch rather than one per message.
    let mut pairs: Vec<Applied<'_>> = Vec::new();
    // The intents carried out, closed together (runs of consecutive ids, one statement each).
    let mut done: Vec<JournalId> = Vec::new();
    let mut finished: Vec<EntryId> = Vec::new();
    for r in results {
        let uid = r.uid.get();
        let id = intents.entry_of(uid);
        if let Some(id) = id {
            // Copies made are where the server says, whatever came of the rest of the plan.
            place(tx, id, r, placed)?;
        }
        if r.error.is_some() {
            continue;
        }
        done.extend(intents.of(uid));
        finished.extend(id);
        let link = id.map(Link::entry).unwrap_or_default();
        for (action, dest) in flag_actions(&r.plan) {
            tx.journal_step(link, &entry(at, r, action, Some(dest)), &Outcome::Done)?;
        }
        pairs.extend(r.rules.iter().map(|rule| Applied {
            uid: r.uid.get(),
            rule,
            message_id: r.message_id.as_deref(),
        }));
    }
    tx.journal_outcomes(&done, &Outcome::Done)?;
    tx.finish_entries(&finished)?;
    if !pairs.is_empty() {
        tx.record_applied(&at.account, &at.mailbox, at.uid_validity, &pairs)?;
    }
    Ok(())
}

/// Records where the server put the message's move and copies, as far as it said.
fn place(
    tx: &crate::state::StateTx<'_>,
    id: EntryId,
    r: &MessageResult,
    placed: &Placements,
) -> Result<(), StateError> {
    let uid = r.uid.get();
    if let Some(f) = &r.plan.final_action
        && f.action != FinalKind::Delete
        && let Some(mailbox) = &f.mailbox
        && let Some((v, dest)) = placed.of(mailbox, uid)
    {
        tx.entry_moved_to(id, v, dest)?;
    }
    for c in &r.plan.copy {
        if let Some((uid_validity, dest)) = placed.of(c, uid) {
            let p = Placed {
                mailbox: c.clone(),
                uid_validity,
                uid: dest,
            };
            tx.entry_copied_to(id, &p)?;
        }
    }
    Ok(())
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
pub(super) mod tests {
    use super::*;
    use crate::imap::uidset::Uid;
    use crate::state::Placed;

    /// Account `a`'s INBOX under UIDVALIDITY 7.
    pub(in crate::pass) fn inbox() -> Place {
        Place {
            account: "a".into(),
            mailbox: MailboxName::inbox(),
            uid_validity: UidValidity::new(7).unwrap(),
        }
    }

    pub(in crate::pass) fn move_to_done() -> Plan {
        Plan {
            final_action: Some(crate::rules::FinalAction {
                action: FinalKind::Move,
                mailbox: Some("Done".into()),
            }),
            ..Plan::default()
        }
    }

    pub(in crate::pass) fn result(uid: u32, plan: Plan, error: Option<&str>) -> MessageResult {
        MessageResult {
            uid: Uid::new(uid).unwrap(),
            message_id: Some(format!("<{uid}@x>")),
            from: Some("a@b.example".into()),
            subject: Some("hello".into()),
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
        let at = &inbox();
        let plan = Plan {
            copy: vec!["Accounting".into()],
            add_flags: vec!["\\Flagged".into()],
            ..Plan::default()
        };
        let batch = [result(1, plan.clone(), None), result(2, plan, Some("no"))];
        let ids = intents(&mut db, at, &batch).unwrap();
        assert_eq!((ids.of(1).count(), ids.of(2).count()), (1, 1));
        results(&mut db, at, &batch, &ids, None, &Placements::default()).unwrap();
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
        // One history entry per message: the done one done, the failed one not.
        let entries = db.history(&crate::state::Selection::default()).unwrap();
        let done: Vec<(u32, bool)> = entries.iter().map(|e| (e.uid, e.done)).collect();
        assert_eq!(done, [(2, false), (1, true)]);
        assert_eq!(entries[1].from.as_deref(), Some("a@b.example"));
        assert_eq!(entries[1].subject.as_deref(), Some("hello"));
        assert_eq!(entries[1].plan.copy, ["Accounting"]);
        // The retry of the failed one continues its entry, and its flag row is a step of it.
        let retry = [result(2, batch[1].plan.clone(), None)];
        let ids = intents(&mut db, at, &retry).unwrap();
        assert_eq!(ids.entry_of(2), Some(entries[0].id));
        results(&mut db, at, &retry, &ids, None, &Placements::default()).unwrap();
        let entries = db.history(&crate::state::Selection::default()).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].done);
        let steps = db.steps_of(&[entries[0].id]).unwrap();
        let actions: Vec<Action> = steps.iter().map(|s| s.action).collect();
        assert_eq!(actions, [Action::Copy, Action::Copy, Action::Flag]);
    }

    /// A write-ahead keeps its results only when told the removal went as expected, in time;
    /// kept, they are what `results` would have written; not kept, nothing of them is.
    #[test]
    fn a_write_ahead_is_kept_only_when_confirmed_in_time() {
        use std::time::Duration;
        let at = &inbox();
        let plan = move_to_done();
        // More than one chunk's worth, one of them failed.
        let batch: Vec<MessageResult> = (1..=RESULTS_BATCH as u32 + 3)
            .map(|u| result(u, plan.clone(), (u == 2).then_some("no")))
            .collect();
        // What the database holds: open intents, applied UIDs, entries done.
        let seen = |db: &StateDb| {
            let open = db.unfinished_intents("a").unwrap().len();
            let uids: Vec<u32> = batch.iter().map(|r| r.uid.get()).collect();
            let applied = db
                .applied_rules("a", &MailboxName::inbox(), at.uid_validity, &uids)
                .unwrap()
                .len();
            let entries = db.history(&crate::state::Selection::default()).unwrap();
            let done = entries.iter().filter(|e| e.done).count();
            (open, applied, done)
        };
        let n = batch.len();
        let mut reference = StateDb::open_in_memory().unwrap();
        let ids = intents(&mut reference, at, &batch).unwrap();
        results(
            &mut reference,
            at,
            &batch,
            &ids,
            None,
            &Placements::default(),
        )
        .unwrap();
        assert_eq!(seen(&reference), (1, n - 1, n - 1));

        let yes = || Some(Vec::new());
        for (verdict, hold, kept) in [
            (Some(yes()), Duration::from_secs(30), true),
            (Some(None), Duration::from_secs(30), false),
            // No verdict before the hold runs out.
            (None, Duration::from_millis(50), false),
            // The writes alone take longer than the hold.
            (Some(yes()), Duration::ZERO, false),
        ] {
            let mut db = StateDb::open_in_memory().unwrap();
            let ids = intents(&mut db, at, &batch).unwrap();
            let (tell, told) = std::sync::mpsc::channel();
            if let Some(v) = verdict.clone() {
                tell.send(v).unwrap();
            }
            let wrote = results_ahead(
                &mut db,
                at,
                batch.iter().cloned(),
                &ids,
                None,
                &Placements::default(),
                &told,
                hold,
            )
            .unwrap();
            assert_eq!(wrote, kept, "{verdict:?} {hold:?}");
            let expected = if kept { (1, n - 1, n - 1) } else { (n, 0, 0) };
            assert_eq!(seen(&db), expected, "{verdict:?} {hold:?}");
            // Not kept, the usual write afterwards still works.
            if !kept {
                results(&mut db, at, &batch, &ids, None, &Placements::default()).unwrap();
                assert_eq!(seen(&db), (1, n - 1, n - 1));
            }
        }
    }

    /// A closing move's COPYUID comes with the verdict, after the results were written: the
    /// moved messages' entries get their placements from it, and the copies are recorded.
    #[test]
    fn a_write_ahead_records_the_placements_its_verdict_brings() {
        use crate::imap::uidset::CopyUid;
        let at = &inbox();
        let plan = move_to_done();
        let batch: Vec<MessageResult> = (1..=3).map(|u| result(u, plan.clone(), None)).collect();
        let mut db = StateDb::open_in_memory().unwrap();
        let ids = intents(&mut db, at, &batch).unwrap();
        let (tell, told) = std::sync::mpsc::channel();
        let moved = Copied {
            mailbox: "Done".into(),
            uids: CopyUid::new(40, vec![1, 2, 3], vec![11, 12, 13]).unwrap(),
        };
        tell.send(Some(vec![moved])).unwrap();
        let none = Placements::default();
        let hold = std::time::Duration::from_secs(30);
        let results = batch.iter().cloned();
        assert!(results_ahead(&mut db, at, results, &ids, None, &none, &told, hold).unwrap());
        let mut entries = db.history(&crate::state::Selection::default()).unwrap();
        entries.sort_by_key(|e| e.uid);
        let placed: Vec<_> = entries
            .iter()
            .map(|e| (e.uid, e.done, e.moved_to))
            .collect();
        assert_eq!(
            placed,
            [
                (1, true, Some((40, 11))),
                (2, true, Some((40, 12))),
                (3, true, Some((40, 13)))
            ]
        );
        assert!(db.unfinished_intents("a").unwrap().is_empty());
    }

    /// Where the server put a message's move and copies (COPYUID) is its entry's placement;
    /// a message with nothing to do gets no entry.
    #[test]
    fn entries_record_where_the_server_put_moves_and_copies() {
        use crate::imap::uidset::CopyUid;
        use crate::rules::FinalAction;
        let mut db = StateDb::open_in_memory().unwrap();
        let at = &inbox();
        let plan = Plan {
            copy: vec!["Acc".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Archive,
                mailbox: Some("Archive/2026".into()),
            }),
            ..Plan::default()
        };
        let batch = [result(4, plan, None), result(5, Plan::default(), None)];
        let ids = intents(&mut db, at, &batch).unwrap();
        assert!(ids.entry_of(5).is_none());
        let mut placed = Placements::default();
        placed.add(&[
            Copied {
                mailbox: "Acc".into(),
                uids: CopyUid::new(31, vec![4], vec![17]).unwrap(),
            },
            Copied {
                mailbox: "Archive/2026".into(),
                uids: CopyUid::new(32, vec![4], vec![3]).unwrap(),
            },
        ]);
        results(&mut db, at, &batch, &ids, None, &placed).unwrap();
        let e = &db.history(&crate::state::Selection::default()).unwrap()[0];
        assert_eq!(e.moved_to, Some((32, 3)));
        assert_eq!(
            e.copies,
            [Placed {
                mailbox: "Acc".into(),
                uid_validity: 31,
                uid: 17
            }]
        );
    }

    #[test]
    fn intents_are_found_by_uid_in_order_and_taken_by_uid() {
        let batch = |rows: &[(u32, i64)]| Intents {
            rows: rows.iter().map(|&(u, id)| (u, JournalId(id))).collect(),
            entries: rows.iter().map(|&(u, id)| (u, EntryId(id * 10))).collect(),
        };
        let mut all = batch(&[(5, 50), (7, 70), (7, 71)]);
        // A later batch with lower UIDs (another pass over the same mailbox) still sorts in.
        all.extend(batch(&[(2, 20), (9, 90)]));
        let of = |i: &Intents, uid| i.of(uid).map(|id| id.0).collect::<Vec<_>>();
        assert_eq!(of(&all, 7), [70, 71]);
        assert_eq!(of(&all, 2), [20]);
        assert_eq!(all.entry_of(2), Some(EntryId(200)));
        assert_eq!(all.entry_of(6), None);
        assert!(of(&all, 6).is_empty());
        let taken = all.take([7, 2]);
        assert_eq!(of(&taken, 7), [70, 71]);
        assert_eq!(of(&all, 7), Vec::<i64>::new());
        assert_eq!(of(&all, 5), [50]);
        assert_eq!(of(&all, 9), [90]);
        let rest = all.take([5, 9]);
        assert_eq!(rest.entry_of(9), Some(EntryId(900)));
        assert_eq!(all.entry_of(9), None);
        assert!(of(&all, 5).is_empty() && of(&all, 9).is_empty());
        // Results in UID order take a run from the front; the rest stays in order.
        let mut all = batch(&[(1, 10), (2, 20), (2, 21), (4, 40), (6, 60)]);
        let front = all.take([1, 2, 3]);
        assert_eq!(front.rows.len(), 3);
        assert_eq!(of(&front, 2), [20, 21]);
        assert_eq!(all.rows, [(4, JournalId(40)), (6, JournalId(60))]);
        assert!(all.take([5]).rows.is_empty());
        assert_eq!(all.take(Vec::new()).rows.len(), 0);
        assert_eq!(all.rows.len(), 2);
    }
}
