//! Recovery: settling the journal intents a crash or a lost connection left open, before a
//! mailbox is acted on again, the same in the daemon and in `imapsort sweep` — always under
//! the mailbox's lock ([`crate::lock`]), so one process never settles another's intents in
//! flight. What really happened decides whether the retry may act.
//!
//! - delete: the message is gone: `done`. Still there and marked `\Deleted` (the store ran,
//!   the expunge did not): expunged by UID now, `done`. Otherwise it did not run: `failed`,
//!   and the message is handled again.
//! - move, archive, trash: gone: `done`. Still there: was its copy made? (moves to several
//!   mailboxes share one expunge, and servers without MOVE copy first, so a crash can fall
//!   between the copy and the removal of the original). Found ([`find`]): the original is
//!   marked `\Deleted` and expunged by UID now, `done`. Not found, or the batch never fenced
//!   the destination (so never sent a copy there, or moved by one atomic `UID MOVE`):
//!   `failed`, and the message is handled again.
//! - copy, the original still there: found: `done`, the rules behind it that only copy are
//!   recorded as applied, and the copy itself is recorded ([`copied_marker`]) so the retry
//!   does not copy again even when the same rule's move is still to run; not found: `failed`,
//!   and the retry copies once. The original gone: the same batch's move of it finished, and
//!   a move runs only after its message's copies succeeded: `done`; otherwise `unknown`.
//! - an intent of the mailbox's older life (UIDVALIDITY changed): `unknown`.
//!
//! Copies are found exactly, never by Message-ID alone: by the COPYUID the server reported,
//! or among the messages that arrived in the destination since the batch's fence
//! (`crate::state::Transfer`), by size, arrival time and identifying headers. A few commands
//! settle thousands of intents: a `UID SEARCH` over the intents' UIDs, a `UID FETCH` of the
//! originals still there, and per destination one `EXAMINE`, a `UID SEARCH UID <fence>:*` and
//! a `UID FETCH` of what arrived since.

pub(crate) mod find;
pub mod returned;
mod undo;
pub mod undone;

use std::collections::{HashMap, HashSet};

use crate::imap::uidset::{MAX_SET_CHARS, Uid, UidSet};
use crate::imap::{ImapError, Session};
use crate::rules::RuleSet;
use crate::rules::ast::ActionKind;
use crate::state::{
    Action, Applied, EntryId, JournalEntry, JournalId, Outcome, Placed, StateDb, StateError, Store,
    Transfer, copied_marker,
};
use crate::vocab::{MailboxName, UidValidity};
use find::Wanted;

/// A settled intent, and the (UID, rules, Message-ID) to record as applied because of it.
#[derive(Clone, Debug)]
struct Settled {
    /// The journal row settled.
    id: JournalId,
    /// What it turned out to be.
    outcome: Outcome,
    /// Rules to record as applied because the action behind them was done.
    applied: Option<(u32, Vec<String>, Option<String>)>,
    /// The history entry the intent is a step of.
    entry: Option<EntryId>,
    /// Where the copy (or the moved message) was found: its mailbox, the mailbox's
    /// UIDVALIDITY and its UID, and whether it is a copy (else the move's message).
    placed: Option<(Placed, bool)>,
    /// An undo move step: the step, and where its message went back to when known.
    returned: Option<(JournalEntry, Option<(u32, u32)>)>,
    /// A step of `imapsort undo` (its entry may be undone now).
    undo: bool,
}

/// Why recovery stopped (nothing is recorded then; the intents stay open for the next try).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("settling interrupted actions in {mailbox} failed")]
    Imap {
        mailbox: MailboxName,
        #[source]
        source: ImapError,
    },
    #[error("the state database could not be read or written")]
    State(#[source] StateError),
}

/// Settles the open intents of `mailbox` (selected, its UIDVALIDITY `uid_validity`) and
/// records what they turned out to be; the mailbox is selected again afterwards. Returns
/// how many were settled.
pub async fn recover(
    session: &mut Session,
    store: &Store,
    account: &str,
    mailbox: &MailboxName,
    uid_validity: UidValidity,
    rules: &RuleSet,
) -> Result<usize, RecoverError> {
    // Messages an interrupted undo moved back here are recognised before anything else.
    undo::returns_into(session, store, account, mailbox, uid_validity).await?;
    let (name, key) = (account.to_owned(), mailbox.clone());
    let open = store
        .call(move |db| db.open_intents(&name, &key))
        .await
        .map_err(RecoverError::State)?;
    let Some(first) = open.iter().map(|e| e.id).min() else {
        return Ok(0);
    };
    let (name, key) = (account.to_owned(), mailbox.clone());
    let (transfers, known) = store
        .call(move |db| {
            let transfers = db.transfers(&name, &key, first)?;
            let known = known_copies(db, &name, &transfers)?;
            Ok((transfers, known))
        })
        .await
        .map_err(RecoverError::State)?;
    let imap = |source| RecoverError::Imap {
        mailbox: mailbox.clone(),
        source,
    };
    let ctx = Ctx {
        mailbox,
        uid_validity,
        transfers: &transfers,
        known: &known,
        rules,
    };
    let (settled, finish) = settle(session, &ctx, &open).await.map_err(imap)?;
    if !finish.is_empty() {
        // Finishing changes the server: only with a state that takes writes.
        let (name, key) = (account.to_owned(), mailbox.clone());
        store
            .call(move |db| db.touch(&name, &key))
            .await
            .map_err(RecoverError::State)?;
        tracing::info!(
            account = %account,
            mailbox = %mailbox,
            uids = %finish,
            "finishing moves and deletes an interrupted pass left half done"
        );
        remove(session, &finish).await.map_err(imap)?;
    }
    let n = settled.len();
    let (name, key) = (account.to_owned(), mailbox.clone());
    store
        .call(move |db| record(db, &name, &key, uid_validity, &settled))
        .await
        .map_err(RecoverError::State)?;
    tracing::info!(account = %account, mailbox = %mailbox, intents = n, "settled actions an interrupted run left open");
    Ok(n)
}

/// Per destination, copies batches reported there: (the destination's UIDVALIDITY, UID).
type Known = HashMap<MailboxName, Vec<(Option<u32>, u32)>>;

/// Per destination fenced by `transfers`, the copies every batch since reported there, from
/// any source mailbox: they are not the copies looked for.
fn known_copies(db: &StateDb, account: &str, transfers: &[Transfer]) -> Result<Known, StateError> {
    let mut since: HashMap<&MailboxName, i64> = HashMap::new();
    for t in transfers.iter().filter(|t| t.dest_uid_next.is_some()) {
        let e = since.entry(&t.destination).or_insert(t.id);
        *e = (*e).min(t.id);
    }
    let mut out = HashMap::new();
    for (destination, from) in since {
        let rows = db.transfers_into(account, destination, from)?;
        let copies: Vec<(Option<u32>, u32)> = rows
            .iter()
            .flat_map(|t| t.copied.iter().map(|(_, d)| (t.dest_uid_validity, *d)))
            .collect();
        out.insert(destination.clone(), copies);
    }
    Ok(out)
}

/// What settling needs to know besides the intents.
struct Ctx<'a> {
    mailbox: &'a MailboxName,
    uid_validity: UidValidity,
    /// The transfers of the intents' batches.
    transfers: &'a [Transfer],
    /// Copies other batches reported, per destination.
    known: &'a Known,
    rules: &'a RuleSet,
}

impl Ctx<'_> {
    /// The batch's transfer row for `destination` that covers intent `id`: its fence when it
    /// has one, else a row with only the copies a `UID MOVE` reported.
    fn transfer(&self, id: JournalId, destination: &str) -> Option<&Transfer> {
        let destination = MailboxName::new(destination);
        let covering: Vec<&Transfer> = self
            .transfers
            .iter()
            .filter(|t| t.destination == destination && t.first_intent <= id && id <= t.last_intent)
            .collect();
        covering
            .iter()
            .find(|t| t.dest_uid_next.is_some())
            .or_else(|| covering.first())
            .copied()
    }
}

/// Decides every intent against the server (see the module doc), and says which originals
/// to remove to finish the moves and deletes found half done. Nothing is written to the
/// database: hand the result to [`record`].
async fn settle(
    session: &mut Session,
    ctx: &Ctx<'_>,
    intents: &[JournalEntry],
) -> Result<(Vec<Settled>, UidSet), ImapError> {
    let current: Vec<&JournalEntry> = intents
        .iter()
        .filter(|e| e.uid_validity == Some(ctx.uid_validity))
        .collect();
    let all: UidSet = current.iter().filter_map(|e| Uid::new(e.uid)).collect();
    let present = search_within(session, &all, "").await?;
    let deletes: UidSet = current
        .iter()
        .filter(|e| matches!(e.action, Action::Delete | Action::UndoCopy))
        .filter(|e| present.contains(&e.uid))
        .filter_map(|e| Uid::new(e.uid))
        .collect();
    let marked = search_within(session, &deletes, " DELETED").await?;

    // The copies to look for: of originals still there, into destinations their batch
    // fenced (or whose copies the server reported).
    let mut wanted: Vec<Wanted<'_>> = Vec::new();
    let mut wanted_of: HashMap<JournalId, usize> = HashMap::new();
    for e in &current {
        let copying = e.action == Action::Copy || is_move(e.action);
        let (true, true, Some(dest)) = (copying, present.contains(&e.uid), &e.destination) else {
            continue;
        };
        let Some(t) = ctx.transfer(e.id, dest) else {
            continue;
        };
        if t.dest_uid_next.is_none() && t.copied.iter().all(|(s, _)| *s != e.uid) {
            continue;
        }
        wanted_of.insert(e.id, wanted.len());
        wanted.push(Wanted {
            uid: e.uid,
            destination: MailboxName::new(dest.as_str()),
            transfer: t,
            is_copy: e.action == Action::Copy,
        });
    }
    let found = find::copies(session, ctx.mailbox, &wanted, ctx.known).await?;
    // Messages undo moved back: found where they went back to.
    let returned = undo::returned(session, ctx, &current).await?;
    let copy_of = |e: &JournalEntry| wanted_of.get(&e.id).and_then(|i| found.get(i)).copied();
    let copied = |e: &JournalEntry| match e.action {
        Action::UndoMove => returned.contains_key(&e.id),
        _ => copy_of(e).is_some(),
    };
    // Moves of the batch whose originals are gone finished, so their copies had succeeded.
    let moved_away: HashSet<u32> = current
        .iter()
        .filter(|e| is_move(e.action) && !present.contains(&e.uid))
        .map(|e| e.uid)
        .collect();

    let settled: Vec<Settled> = intents
        .iter()
        .map(|e| {
            if e.uid_validity != Some(ctx.uid_validity) {
                // The mailbox was renumbered since: nothing can be told.
                return unknown(e);
            }
            let here = present.contains(&e.uid);
            let mut s = decide(
                e,
                here,
                copied(e),
                marked.contains(&e.uid),
                &moved_away,
                ctx.rules,
            );
            if s.outcome == Outcome::Done
                && let (Some((Some(uid_validity), uid)), Some(dest)) = (copy_of(e), &e.destination)
            {
                let placed = Placed {
                    mailbox: dest.clone(),
                    uid_validity,
                    uid,
                };
                s.placed = Some((placed, e.action == Action::Copy));
            }
            if e.action == Action::UndoMove {
                s.placed = None;
                let back = returned.get(&e.id).copied();
                s.returned = Some(((*e).clone(), back.filter(|_| s.outcome == Outcome::Done)));
            }
            s
        })
        .collect();
    // What was found half done is finished: the copy exists (or the delete was marked), so
    // the original goes, by UID, as the interrupted pass would have done.
    let finish: UidSet = intents
        .iter()
        .zip(&settled)
        .filter(|(e, s)| {
            e.action != Action::Copy && present.contains(&e.uid) && s.outcome == Outcome::Done
        })
        .filter_map(|(e, _)| Uid::new(e.uid))
        .collect();
    Ok((settled, finish))
}

fn unknown(e: &JournalEntry) -> Settled {
    Settled {
        id: e.id,
        outcome: Outcome::Unknown,
        applied: None,
        entry: e.entry,
        placed: None,
        returned: None,
        undo: e.action.is_undo(),
    }
}

/// What one intent of the current life turned out to be.
fn decide(
    e: &JournalEntry,
    here: bool,
    copied: bool,
    marked: bool,
    moved_away: &HashSet<u32>,
    rules: &RuleSet,
) -> Settled {
    let not_run =
        || Outcome::Failed("interrupted before it ran; the message is handled again".into());
    let mut s = unknown(e);
    match e.action {
        Action::Copy if here => {
            if copied {
                s.outcome = Outcome::Done;
                let mut applied = copy_only_rules(rules, &e.rules);
                // A rule that also moves is not applied yet; the copy is, and the retry's
                // plan must drop it.
                if let Some(dest) = &e.destination {
                    applied.push(copied_marker(dest));
                }
                s.applied = Some((e.uid, applied, e.message_id.clone()));
            } else {
                s.outcome = not_run();
            }
        }
        Action::Copy if moved_away.contains(&e.uid) => s.outcome = Outcome::Done,
        Action::Copy => {}
        // imapsort undo's steps: done when their message is gone (or its copy found where it
        // went back to); otherwise the next undo does them again.
        Action::UndoFlags => {
            s.outcome =
                Outcome::Failed("interrupted; imapsort undo restores the flags again".into())
        }
        Action::UndoCopy | Action::UndoMove if !here || copied || marked => {
            s.outcome = Outcome::Done
        }
        Action::UndoCopy | Action::UndoMove => {
            s.outcome =
                Outcome::Failed("interrupted before it ran; imapsort undo does it again".into())
        }
        _ if !here => s.outcome = Outcome::Done,
        Action::Delete if marked => {
            s.outcome = Outcome::Done;
            s.applied = Some((e.uid, e.rules.clone(), e.message_id.clone()));
        }
        _ if is_move(e.action) && copied => {
            s.outcome = Outcome::Done;
            s.applied = Some((e.uid, e.rules.clone(), e.message_id.clone()));
        }
        _ => s.outcome = not_run(),
    }
    s
}

fn is_move(action: Action) -> bool {
    matches!(action, Action::Move | Action::Archive | Action::Trash)
}

/// Write what [`settle`] found, in one transaction.
fn record(
    db: &mut StateDb,
    account: &str,
    mailbox: &MailboxName,
    uid_validity: UidValidity,
    settled: &[Settled],
) -> Result<(), StateError> {
    let tx = db.batch()?;
    let mut entries: Vec<EntryId> = Vec::new();
    let mut undone_entries: Vec<EntryId> = Vec::new();
    for s in settled {
        tx.journal_outcome(s.id, &s.outcome)?;
        if let Some((step, back)) = &s.returned {
            undo::record_returned(&tx, step, *back)?;
        }
        if s.undo
            && let Some(entry) = s.entry
        {
            undone_entries.push(entry);
        }
        if let Some(entry) = s.entry {
            entries.push(entry);
            match &s.placed {
                Some((p, true)) => tx.entry_copied_to(entry, p)?,
                Some((p, false)) => tx.entry_moved_to(entry, p.uid_validity, p.uid)?,
                None => {}
            }
        }
        if let Some((uid, rules, message_id)) = &s.applied {
            let pairs: Vec<Applied<'_>> = rules
                .iter()
                .map(|rule| Applied {
                    uid: *uid,
                    rule,
                    message_id: message_id.as_deref(),
                })
                .collect();
            tx.record_applied(account, mailbox, uid_validity, &pairs)?;
        }
    }
    // An entry whose every step turned out done was carried out completely.
    entries.sort_unstable();
    entries.dedup();
    tx.finish_entries_if_complete(&entries)?;
    // Entries whose undo steps all turned out done are undone.
    undone_entries.sort_unstable();
    undone_entries.dedup();
    undone::mark(&tx, &undone_entries)?;
    tx.commit()
}

/// Of the rules of a journal row, those that copy and have no terminal action: marking them
/// applied after a copy that did happen keeps the retry from copying again, without keeping
/// another rule's move from running.
fn copy_only_rules(rules: &RuleSet, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            rules.rules().any(|r| {
                &r.name == *name
                    && r.then.iter().any(|a| matches!(a.kind, ActionKind::Copy(_)))
                    && !r.then.iter().any(|a| a.kind.is_terminal())
            })
        })
        .cloned()
        .collect()
}

/// Which of `uids` are in the selected mailbox and match `keys` (empty, or ` DELETED`).
async fn search_within(
    session: &mut Session,
    uids: &UidSet,
    keys: &str,
) -> Result<HashSet<u32>, ImapError> {
    let mut out = HashSet::new();
    for chunk in uids.chunks(MAX_SET_CHARS, u64::MAX) {
        for u in session.uid_search(&format!("UID {chunk}{keys}")).await? {
            if Uid::new(u).is_some_and(|u| chunk.contains(u)) {
                out.insert(u);
            }
        }
    }
    Ok(out)
}

/// Marks `uids` `\Deleted` and expunges exactly them (without UIDPLUS they stay marked, as
/// in [`crate::execute`]).
async fn remove(session: &mut Session, uids: &UidSet) -> Result<(), ImapError> {
    let uidplus = session.has_capability("UIDPLUS");
    for chunk in uids.chunks(MAX_SET_CHARS, u64::MAX) {
        let line = chunk.to_string();
        session
            .uid_store(&line, "+FLAGS.SILENT (\\Deleted)")
            .await?;
        if uidplus {
            session.uid_expunge(&line).await?;
        }
    }
    Ok(())
}
