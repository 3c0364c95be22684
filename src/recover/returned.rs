//! Messages `imapsort undo` moves back (its undo move steps): recognising them in the mailbox they came back to,
//! and what the state says of them there.
//!
//! A message moved back arrives under a new UID. The server names it (COPYUID); when that
//! answer is missing (a server without UIDPLUS, or a crash that lost it), it is found among
//! what arrived in the mailbox since the undo's *fence* (its UIDNEXT, taken and made durable
//! before the move), by the signature kept in the undo step (size, arrival time, Message-ID,
//! Date, From, To, Subject: the same as recovery uses for copies, `crate::recover::find`).
//!
//! Once its UID is known, the state records for it ([`record`]):
//! - [`RETURNED`]: the daemon's new-mail pass leaves it alone (it is not new mail);
//! - the rules whose work was undone, marked undone ([`undone_marker`]): never applied to it
//!   again, and passed by in evaluation as if they did not exist;
//! - the rules applied to it before (under its old UID): carried over, so that nothing they
//!   did is repeated.

use std::collections::{HashMap, HashSet};

use crate::imap::uidset::Uid;
use crate::imap::{ImapError, Session};
use crate::recover::find;
use crate::rules::undone_marker;
use crate::state::{Applied, Entry, JournalId, RETURNED, StateError, StateTx};
use crate::vocab::{MailboxName, UidValidity};

/// A message moved back into the selected mailbox whose new UID is to be found.
#[derive(Clone, Debug)]
pub struct Returning {
    /// The undo step (journal row) that moved it.
    pub step: JournalId,
    /// Its signature, as the step keeps it.
    pub digest: String,
    /// The mailbox's UIDNEXT before the move (under `fence_validity`, when known): it
    /// arrived at or above it.
    pub fence: u32,
    pub fence_validity: Option<u32>,
}

/// For each of `returning`, the UID of the message moved back, when it is found among what
/// arrived in the *selected* mailbox (UIDVALIDITY `validity`) since its fence. `taken` are
/// UIDs known to be other messages (put back by other steps). Each message found answers
/// for one step only.
pub async fn identify(
    session: &mut Session,
    validity: Option<u32>,
    returning: &[Returning],
    taken: &HashSet<u32>,
) -> Result<HashMap<JournalId, u32>, ImapError> {
    let mut found = HashMap::new();
    let fences: Vec<u32> = returning
        .iter()
        .map(|r| match r.fence_validity {
            // The mailbox was recreated since the fence: everything in it came after.
            Some(v) if Some(v) != validity => 1,
            _ => r.fence,
        })
        .collect();
    let Some(lowest) = fences.iter().copied().min() else {
        return Ok(found);
    };
    let arrived: crate::imap::uidset::UidSet = session
        .uid_search(&format!("UID {lowest}:*"))
        .await?
        .into_iter()
        .filter(|u| *u >= lowest && !taken.contains(u))
        .filter_map(Uid::new)
        .collect();
    if arrived.is_empty() {
        return Ok(found);
    }
    let digests = find::digests(session, &arrived, Some(lowest)).await?;
    let mut by_digest: HashMap<&str, Vec<u32>> = HashMap::new();
    for (uid, d) in &digests {
        by_digest.entry(d.as_str()).or_default().push(*uid);
    }
    for uids in by_digest.values_mut() {
        uids.sort_unstable();
    }
    let mut claimed: HashSet<u32> = HashSet::new();
    for (r, fence) in returning.iter().zip(fences) {
        let Some(uids) = by_digest.get(r.digest.as_str()) else {
            continue;
        };
        if let Some(&uid) = uids.iter().find(|u| **u >= fence && !claimed.contains(*u)) {
            claimed.insert(uid);
            found.insert(r.step, uid);
        }
    }
    Ok(found)
}

/// Records what the state must know of `entry`'s message, moved back into its mailbox
/// (`entry.mailbox`, now under UIDVALIDITY `validity`) as `uid` (see the module doc).
/// Nothing is recorded when the state keeps that mailbox under another UIDVALIDITY (the
/// mailbox was recreated and nobody opened it since: its records would be wiped anyway).
pub fn record(
    tx: &StateTx<'_>,
    entry: &Entry,
    validity: UidValidity,
    uid: u32,
) -> Result<bool, StateError> {
    let (account, mailbox) = (entry.account.as_str(), &entry.mailbox);
    if tx
        .mailbox_validity(account, mailbox)?
        .is_some_and(|v| v != validity)
    {
        tracing::warn!(account, mailbox = %mailbox, uid, "moved back into a mailbox the state does not know under its UIDVALIDITY; its records are not kept");
        return Ok(false);
    }
    let mut rules: Vec<String> = if validity == entry.uid_validity {
        tx.applied_of(
            account,
            mailbox,
            entry.uid_validity,
            entry.uid,
            entry.message_id.as_deref(),
        )?
    } else {
        Vec::new()
    };
    rules.extend(entry.rules.iter().cloned());
    rules.extend(entry.rules.iter().map(|r| undone_marker(r)));
    rules.push(RETURNED.to_owned());
    rules.sort();
    rules.dedup();
    let pairs: Vec<Applied<'_>> = rules
        .iter()
        .map(|rule| Applied {
            uid,
            rule,
            message_id: entry.message_id.as_deref(),
        })
        .collect();
    tx.record_applied(account, mailbox, validity, &pairs)?;
    Ok(true)
}

/// Marks the rules of `entry` undone for its message where it still is (an entry without a
/// move: flags restored, copies deleted), so they are never applied to it again.
pub fn mark_undone_in_place(tx: &StateTx<'_>, entry: &Entry) -> Result<(), StateError> {
    let (account, mailbox) = (entry.account.as_str(), &entry.mailbox);
    if tx
        .mailbox_validity(account, mailbox)?
        .is_some_and(|v| v != entry.uid_validity)
    {
        return Ok(());
    }
    let markers: Vec<String> = entry.rules.iter().map(|r| undone_marker(r)).collect();
    let pairs: Vec<Applied<'_>> = markers
        .iter()
        .chain(entry.rules.iter())
        .map(|rule| Applied {
            uid: entry.uid,
            rule,
            message_id: entry.message_id.as_deref(),
        })
        .collect();
    tx.record_applied(account, mailbox, entry.uid_validity, &pairs)
}

/// The mailbox an undo move step brings its message back to.
pub fn destination(step: &crate::state::JournalEntry) -> Option<MailboxName> {
    step.destination.as_deref().map(MailboxName::new)
}
