//! Taking back what rules did (`imapsort undo`), for the entries of one account, on top of
//! the same state, locks and recovery as every pass:
//!
//! ```text
//! plan     what is left to take back of each entry (crate::recover::undone): move back, delete copies,
//!          restore flags; `delete` cannot be undone
//! lock     every mailbox involved (where the messages are, where they go back to), in name
//!          order, waiting up to --wait while the daemon or a sweep works on one
//! recover  settle what an interrupted run left open there (crate::recover, undo steps too)
//! locate   EXAMINE, the UIDs the server gave (COPYUID), else one message by Message-ID;
//!          anything not exactly the message is left alone, with the reason  (locate.rs)
//! act      per mailbox: steps durable, fences durable, batched commands, outcomes  (act.rs)
//! mark     entries whose every part is done are undone; the rules behind them never act
//!          on those messages again (crate::recover::returned)
//! ```
//!
//! An entry some part of which cannot be located is left alone entirely. A message that a
//! later entry moved on (a new-mail rule moved it, then a sweep archived it) is taken back in
//! rounds, newest first, when both entries are selected: the later move is taken back first,
//! and the earlier entry then finds the message where that put it.

pub mod act;
pub mod locate;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::config::Account;
use crate::execute::Executor;
use crate::imap::{ImapError, Session};
use crate::lock::{Holder, LockError, Locks, MailboxLock};
use crate::recover::undone::{self as parts, Part};
use crate::rules::RuleSet;
use crate::state::{Entry, EntryId, JournalEntry, StateError, Store};
use crate::vocab::MailboxName;
use act::Task;
use locate::{Expect, Found, Want};

/// A part of an entry: the entry and the part's place in its list.
pub type Key = (EntryId, usize);

/// Why an account's entries could not be taken back (those taken back so far stand).
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("the server failed")]
    Imap(#[source] ImapError),
    #[error("the state database could not be read or written")]
    State(#[source] StateError),
    #[error("mailbox {mailbox}")]
    Lock {
        mailbox: MailboxName,
        #[source]
        source: LockError,
    },
}

/// What became of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub id: EntryId,
    /// Taken back now, or before.
    pub undone: bool,
    /// Why not (or, in a dry run, `None` when it would be).
    pub reason: Option<String>,
    /// It had been taken back before this run.
    pub already: bool,
}

impl Outcome {
    fn refused(id: EntryId, reason: String) -> Outcome {
        Outcome {
            id,
            undone: false,
            reason: Some(reason),
            already: false,
        }
    }
}

/// What taking back needs.
pub struct Context<'a> {
    pub account: &'a Account,
    /// Read-write, or (dry run) read-only.
    pub store: &'a Store,
    pub locks: &'a Locks,
    /// For recovery (which rules only copy).
    pub rules: &'a RuleSet,
    /// How long to wait for a mailbox another process works on.
    pub wait: Duration,
    /// Change nothing: say what would be taken back.
    pub dry_run: bool,
}

/// Takes back the entries `ids` (all of `ctx.account`), reporting one [`Outcome`] per id in
/// the order given. `waiting` is told who holds a mailbox it waits for.
pub async fn take_back(
    session: &mut Session,
    ctx: &Context<'_>,
    ids: &[EntryId],
    mut waiting: impl FnMut(&MailboxName, &Option<Holder>),
) -> Result<Vec<Outcome>, UndoError> {
    let (entries, _) = read(ctx.store, ids).await?;
    let mut involved: BTreeSet<MailboxName> = BTreeSet::new();
    for e in entries.values().filter(|e| e.undone_at.is_none()) {
        involved.insert(e.mailbox.clone());
        if let Some(to) = e
            .plan
            .final_action
            .as_ref()
            .and_then(|f| f.mailbox.as_ref())
        {
            involved.insert(MailboxName::new(to.as_str()));
        }
        involved.extend(e.plan.copy.iter().map(|c| MailboxName::new(c.as_str())));
    }
    let mut _held: Vec<MailboxLock> = Vec::new();
    if !ctx.dry_run {
        for m in &involved {
            let lock = ctx
                .locks
                .acquire(&ctx.account.name, m, Some(ctx.wait), |h| waiting(m, h))
                .await
                .map_err(|source| UndoError::Lock {
                    mailbox: m.clone(),
                    source,
                })?;
            _held.push(lock);
        }
        for m in &involved {
            recover(session, ctx, m).await?;
        }
    }
    // Read again: recovery may have settled steps.
    let (entries, steps) = read(ctx.store, ids).await?;
    let mut outcomes: HashMap<EntryId, Outcome> = HashMap::new();
    let mut pending: Vec<(Entry, Vec<Part>)> = Vec::new();
    for id in ids {
        let Some(e) = entries.get(id) else {
            outcomes.insert(
                *id,
                Outcome::refused(*id, "no such entry in the history".into()),
            );
            continue;
        };
        if e.undone_at.is_some() {
            outcomes.insert(
                *id,
                Outcome {
                    id: *id,
                    undone: true,
                    reason: None,
                    already: true,
                },
            );
            continue;
        }
        let own: Vec<JournalEntry> = steps.get(id).cloned().unwrap_or_default();
        match parts::plan(e, &own) {
            parts::Plan::Refused(why) => {
                outcomes.insert(*id, Outcome::refused(*id, why));
            }
            parts::Plan::Done => pending.push((e.clone(), Vec::new())),
            parts::Plan::Parts(p) => pending.push((e.clone(), p)),
        }
    }
    let mut executor = Executor::new(crate::pass::target::server_caps(session));
    let mut moved_on: HashMap<Place, Expect> = HashMap::new();
    let mut finished: Vec<EntryId> = Vec::new();
    while !pending.is_empty() {
        let (now, later) = next_round(pending);
        pending = later;
        let round = Round {
            ctx,
            moved_on: &moved_on,
        };
        let (results, returned) = round.run(session, &mut executor, &now).await?;
        for (e, parts) in &now {
            let failure = (0..parts.len())
                .filter_map(|i| results.get(&(e.id, i)))
                .find_map(|r| r.as_ref().err().cloned());
            let outcome = match failure {
                Some(why) => Outcome::refused(e.id, why),
                None => {
                    finished.push(e.id);
                    Outcome {
                        id: e.id,
                        undone: !ctx.dry_run,
                        reason: None,
                        already: false,
                    }
                }
            };
            outcomes.insert(e.id, outcome);
        }
        moved_on.extend(returned);
    }
    if !ctx.dry_run && !finished.is_empty() {
        ctx.store
            .call(move |db| {
                let tx = db.batch()?;
                parts::mark(&tx, &finished)?;
                tx.commit()
            })
            .await
            .map_err(UndoError::State)?;
    }
    Ok(ids
        .iter()
        .map(|id| {
            outcomes
                .remove(id)
                .unwrap_or_else(|| Outcome::refused(*id, "listed twice".into()))
        })
        .collect())
}

/// Entries and their journal steps.
type Read = (HashMap<EntryId, Entry>, HashMap<EntryId, Vec<JournalEntry>>);

async fn read(store: &Store, ids: &[EntryId]) -> Result<Read, UndoError> {
    let ids = ids.to_vec();
    store
        .call(move |db| {
            let entries = db.entries(&ids)?;
            let steps = db.steps_of(&ids)?;
            Ok((entries, steps))
        })
        .await
        .map(|(entries, steps)| {
            let mut by_entry: HashMap<EntryId, Vec<JournalEntry>> = HashMap::new();
            for s in steps {
                if let Some(e) = s.entry {
                    by_entry.entry(e).or_default().push(s);
                }
            }
            (entries.into_iter().map(|e| (e.id, e)).collect(), by_entry)
        })
        .map_err(UndoError::State)
}

/// Settles what an interrupted run left open in `mailbox` (if it exists).
async fn recover(
    session: &mut Session,
    ctx: &Context<'_>,
    mailbox: &MailboxName,
) -> Result<(), UndoError> {
    let info = match session.select(mailbox).await {
        Ok(info) => info,
        Err(e) if e.is_connection_fatal() => return Err(UndoError::Imap(e)),
        Err(_) => return Ok(()),
    };
    let Some(validity) = info.uid_validity.and_then(crate::vocab::UidValidity::new) else {
        return Ok(());
    };
    crate::recover::recover(
        session,
        ctx.store,
        &ctx.account.name,
        mailbox,
        validity,
        ctx.rules,
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        crate::recover::RecoverError::Imap { source, .. } => UndoError::Imap(source),
        crate::recover::RecoverError::State(e) => UndoError::State(e),
    })
}

/// Where a message is: mailbox, UIDVALIDITY, UID.
type Place = (MailboxName, u32, u32);

/// An entry with what is left to take back of it.
type Pending = (Entry, Vec<Part>);

/// Splits the entries into those taken back now and those waiting for another (a message an
/// entry still to be taken back moved on from where this one left it).
fn next_round(pending: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let sources: HashMap<Place, EntryId> = pending
        .iter()
        .filter(|(_, parts)| parts.iter().any(|p| matches!(p, Part::Move { .. })))
        .map(|(e, _)| ((e.mailbox.clone(), e.uid_validity.get(), e.uid), e.id))
        .collect();
    let waits = |e: &Entry, parts: &[Part]| {
        parts.iter().any(|p| {
            place_of(e, p).is_some_and(|at| sources.get(&at).is_some_and(|other| *other != e.id))
        })
    };
    let (later, now): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(e, p)| waits(e, p));
    if now.is_empty() {
        // A cycle cannot happen (UIDs are not reused); should it, take them all.
        return (later, Vec::new());
    }
    (now, later)
}

/// Where the history says the part's message is, when it knows the UID.
fn place_of(e: &Entry, part: &Part) -> Option<Place> {
    match part {
        Part::Move { from } => e.moved_to.map(|(v, u)| (from.clone(), v, u)),
        Part::Copy { mailbox } => e
            .copy_placed(mailbox)
            .map(|p| (mailbox.clone(), p.uid_validity, p.uid)),
        Part::Flags => Some((e.mailbox.clone(), e.uid_validity.get(), e.uid)),
    }
}

/// One round: locate every part of its entries, then act per mailbox.
struct Round<'r, 'c> {
    ctx: &'r Context<'c>,
    /// Messages earlier rounds moved back: where they are now.
    moved_on: &'r HashMap<Place, Expect>,
}

/// Per part: done, or why not.
type Results = HashMap<Key, Result<(), String>>;

impl Round<'_, '_> {
    async fn run(
        &self,
        session: &mut Session,
        executor: &mut Executor,
        entries: &[(Entry, Vec<Part>)],
    ) -> Result<(Results, HashMap<Place, Expect>), UndoError> {
        let mut wants = Vec::new();
        for (e, parts) in entries {
            for (i, part) in parts.iter().enumerate() {
                let expect = self.expect(e, part).await?;
                wants.push(Want {
                    key: (e.id, i),
                    mailbox: part.mailbox(e).clone(),
                    expect,
                    message_id: e.message_id.clone(),
                });
            }
        }
        let found = locate::locate(session, &wants)
            .await
            .map_err(UndoError::Imap)?;
        let mut results: Results = HashMap::new();
        let mut tasks: HashMap<(MailboxName, u32), Vec<Task>> = HashMap::new();
        for (e, parts) in entries {
            // An entry is taken back whole or left alone.
            let why = (0..parts.len())
                .filter_map(|i| found.get(&(e.id, i)))
                .find_map(|f| f.as_ref().err().cloned());
            if let Some(why) = why {
                results.insert((e.id, 0), Err(why));
                continue;
            }
            for (i, part) in parts.iter().enumerate() {
                let Some(Ok(Found {
                    uid_validity,
                    uid,
                    digest,
                })) = found.get(&(e.id, i))
                else {
                    continue;
                };
                if self.ctx.dry_run {
                    results.insert((e.id, i), Ok(()));
                    continue;
                }
                tasks
                    .entry((part.mailbox(e).clone(), *uid_validity))
                    .or_default()
                    .push(Task {
                        key: (e.id, i),
                        entry: e.clone(),
                        part: part.clone(),
                        uid: *uid,
                        digest: digest.clone(),
                    });
            }
        }
        let mut returned = HashMap::new();
        let mut order: Vec<(MailboxName, u32)> = tasks.keys().cloned().collect();
        order.sort();
        for key in order {
            let list = tasks.remove(&key).unwrap_or_default();
            let (mailbox, validity) = key;
            let done = act::run(
                session,
                executor,
                self.ctx.store,
                &mailbox,
                validity,
                list.clone(),
            )
            .await?;
            for t in &list {
                let Some(r) = done.get(&t.key) else { continue };
                if let (Ok(()), Some((v, uid))) = (&r.done, r.returned) {
                    let from = (
                        t.entry.mailbox.clone(),
                        t.entry.uid_validity.get(),
                        t.entry.uid,
                    );
                    returned.insert(
                        from,
                        Expect::Uid {
                            uid_validity: v,
                            uid,
                        },
                    );
                }
                results.insert(t.key, r.done.clone());
            }
        }
        Ok((results, returned))
    }

    /// Where the part's message is expected: where an earlier round moved it back to, the
    /// UID the server gave, or (unknown) a search by Message-ID above the action's fence.
    async fn expect(&self, e: &Entry, part: &Part) -> Result<Expect, UndoError> {
        if let Some(at) = place_of(e, part) {
            return Ok(self.moved_on.get(&at).copied().unwrap_or(Expect::Uid {
                uid_validity: at.1,
                uid: at.2,
            }));
        }
        let (action, to) = match part {
            Part::Move { from } => (
                e.plan
                    .final_action
                    .as_ref()
                    .map(|f| crate::state::Action::from(f.action))
                    .unwrap_or(crate::state::Action::Move),
                from.clone(),
            ),
            Part::Copy { mailbox } => (crate::state::Action::Copy, mailbox.clone()),
            Part::Flags => unreachable!("the place of a flags part is always known"),
        };
        let (id, account) = (e.id, e.account.clone());
        let fence = self
            .ctx
            .store
            .call(move |db| db.fence_of(&account, id, action, &to))
            .await
            .map_err(UndoError::State)?;
        Ok(Expect::Search { fence })
    }
}
