//! Recovery of `imapsort undo`'s steps. Copies deleted and flags restored settle like the
//! rules' own steps (`super::decide`); a message moved back needs its new UID, for the
//! records that keep it from being taken for new mail (`super::returned`):
//!
//! - in the mailbox it was moved back *from* (the step's mailbox, selected): the server's
//!   COPYUID if the batch recorded it, else the message found above the step's fence in the
//!   mailbox it went back to, by the signature the step keeps ([`returned`]);
//! - in the mailbox it went back *to* ([`returns_into`]): before that mailbox is acted on
//!   (the daemon's new-mail pass), the same search, so a message put back by an undo that
//!   crashed is recognised there even before anyone works on the mailbox it came from. The
//!   step itself is settled by the mailbox it came from.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::returned::{self as putback, Returning};
use super::{Ctx, RecoverError};
use crate::imap::{ImapError, Session};
use crate::state::{Action, JournalEntry, JournalId, StateError, Store, Transfer};
use crate::vocab::{MailboxName, UidValidity};

/// For the undo move steps among `intents` (of the selected mailbox, `ctx.mailbox`), where
/// their messages went back to, when known: step -> (UIDVALIDITY, UID). The mailbox is
/// selected again on return.
pub(super) async fn returned(
    session: &mut Session,
    ctx: &Ctx<'_>,
    intents: &[&JournalEntry],
) -> Result<HashMap<JournalId, (u32, u32)>, ImapError> {
    let mut by_destination: BTreeMap<MailboxName, Vec<&JournalEntry>> = BTreeMap::new();
    for e in intents.iter().filter(|e| e.action == Action::UndoMove) {
        if let Some(to) = putback::destination(e) {
            by_destination.entry(to).or_default().push(e);
        }
    }
    let mut out = HashMap::new();
    if by_destination.is_empty() {
        return Ok(out);
    }
    for (to, steps) in by_destination {
        let info = match session.examine(&to).await {
            Ok(info) => info,
            Err(e) if !e.is_connection_fatal() => continue,
            Err(e) => return Err(e),
        };
        let found = search(
            session,
            info.uid_validity,
            &steps,
            |id| ctx.transfer(id, &to),
            ctx.known.get(&to),
        )
        .await?;
        if let Some(v) = info.uid_validity {
            out.extend(found.into_iter().map(|(step, uid)| (step, (v, uid))));
        }
    }
    session.select(ctx.mailbox).await?;
    Ok(out)
}

/// In the selected mailbox (UIDVALIDITY `validity`), the messages the undo move `steps` put
/// back: the copies their batches reported, else found by signature above the fence.
async fn search<'t>(
    session: &mut Session,
    validity: Option<u32>,
    steps: &[&JournalEntry],
    transfer: impl Fn(JournalId) -> Option<&'t Transfer>,
    known: Option<&Vec<(Option<u32>, u32)>>,
) -> Result<HashMap<JournalId, u32>, ImapError> {
    let mut found = HashMap::new();
    let mut returning = Vec::new();
    let mut reported = HashSet::new();
    for e in steps {
        let Some(t) = transfer(e.id) else { continue };
        let same_life = t.dest_uid_validity.is_none() || t.dest_uid_validity == validity;
        if let Some(&(_, copy)) = t.copied.iter().find(|(s, _)| *s == e.uid)
            && same_life
        {
            reported.insert(copy);
            found.insert(e.id, copy);
            continue;
        }
        let (Some(digest), Some(fence)) = (&e.signature, t.dest_uid_next) else {
            continue;
        };
        returning.push(Returning {
            step: e.id,
            digest: digest.clone(),
            fence,
            fence_validity: t.dest_uid_validity,
        });
    }
    // What the server reported is still to be there.
    if !reported.is_empty() {
        let uids = reported
            .iter()
            .filter_map(|u| crate::imap::uidset::Uid::new(*u))
            .collect();
        let present = crate::recover::find::search_within(session, &uids).await?;
        found.retain(|_, uid| present.contains(uid));
    }
    if !returning.is_empty() {
        let mut taken: HashSet<u32> = known
            .into_iter()
            .flatten()
            .filter(|(v, _)| v.is_none() || *v == validity)
            .map(|(_, u)| *u)
            .collect();
        taken.extend(found.values().copied());
        found.extend(putback::identify(session, validity, &returning, &taken).await?);
    }
    Ok(found)
}

/// Before `mailbox` (selected, UIDVALIDITY `validity`) is acted on: messages an interrupted
/// undo moved back into it from elsewhere are recognised, and recorded (not new mail, the
/// undone rules passed by, the others' records carried over). Their steps are left for the
/// mailbox they came from to settle.
pub(super) async fn returns_into(
    session: &mut Session,
    store: &Store,
    account: &str,
    mailbox: &MailboxName,
    validity: UidValidity,
) -> Result<usize, RecoverError> {
    let (name, key) = (account.to_owned(), mailbox.clone());
    let state = |e| RecoverError::State(e);
    let steps = store
        .call(move |db| db.open_intents_into(&name, &key, Action::UndoMove))
        .await
        .map_err(state)?;
    let steps: Vec<JournalEntry> = steps
        .into_iter()
        .filter(|s| s.mailbox != *mailbox)
        .collect();
    if steps.is_empty() {
        return Ok(0);
    }
    let (name, wanted) = (account.to_owned(), steps.clone());
    let transfers: Vec<(MailboxName, Transfer)> = store
        .call(move |db| {
            let mut out = Vec::new();
            let mut sources: BTreeMap<MailboxName, JournalId> = BTreeMap::new();
            for s in &wanted {
                let e = sources.entry(s.mailbox.clone()).or_insert(s.id);
                *e = (*e).min(s.id);
            }
            for (source, first) in sources {
                let rows = db.transfers(&name, &source, first)?;
                out.extend(rows.into_iter().map(|t| (source.clone(), t)));
            }
            Ok::<_, StateError>(out)
        })
        .await
        .map_err(state)?;
    // The fence row of the step's batch for this mailbox.
    let into = |id: JournalId, source: &MailboxName| {
        transfers
            .iter()
            .find(|(from, t)| {
                from == source
                    && t.destination == *mailbox
                    && t.first_intent <= id
                    && id <= t.last_intent
                    && t.dest_uid_next.is_some()
            })
            .map(|(_, t)| t)
    };
    let refs: Vec<&JournalEntry> = steps.iter().collect();
    let by_id: HashMap<JournalId, &JournalEntry> = steps.iter().map(|s| (s.id, s)).collect();
    let found = search(
        session,
        Some(validity.get()),
        &refs,
        |id| by_id.get(&id).and_then(|s| into(id, &s.mailbox)),
        None,
    )
    .await
    .map_err(|source| RecoverError::Imap {
        mailbox: mailbox.clone(),
        source,
    })?;
    if found.is_empty() {
        return Ok(0);
    }
    let n = found.len();
    let records: Vec<(JournalEntry, u32, (JournalId, JournalId))> = steps
        .iter()
        .filter_map(|s| {
            let uid = found.get(&s.id)?;
            let t = into(s.id, &s.mailbox)?;
            Some((s.clone(), *uid, (t.first_intent, t.last_intent)))
        })
        .collect();
    let name = account.to_owned();
    store
        .call(move |db| {
            let tx = db.batch()?;
            for (step, uid, batch) in &records {
                let Some(entry) = step.entry.and_then(|id| tx.entries(&[id]).ok()?.pop()) else {
                    continue;
                };
                putback::record(&tx, &entry, validity, *uid)?;
                // Known now: the mailbox it came from settles its step by this answer.
                if let Some(source_validity) = step.uid_validity {
                    let batch = crate::state::Batch {
                        account: &name,
                        mailbox: &step.mailbox,
                        uid_validity: source_validity,
                        intents: *batch,
                    };
                    let copy = crate::imap::uidset::CopyUid {
                        uid_validity: validity.get(),
                        pairs: vec![(step.uid, *uid)],
                    };
                    tx.record_copies(&batch, &entry.mailbox, &copy)?;
                }
            }
            tx.commit()
        })
        .await
        .map_err(state)?;
    tracing::info!(account, mailbox = %mailbox, messages = n, "recognised messages an interrupted undo moved back");
    Ok(n)
}

/// What an undo move step's settlement records: the message moved back is recorded where it
/// went, when its UID is known.
pub(super) fn record_returned(
    tx: &crate::state::StateTx<'_>,
    step: &JournalEntry,
    returned: Option<(u32, u32)>,
) -> Result<(), StateError> {
    let (Some((v, uid)), Some(entry)) = (returned, step.entry) else {
        return Ok(());
    };
    let (Some(v), Some(entry)) = (UidValidity::new(v), tx.entries(&[entry])?.pop()) else {
        return Ok(());
    };
    putback::record(tx, &entry, v, uid).map(|_| ())
}
