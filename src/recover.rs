//! Recovery: settling the journal intents a crash or a lost connection left open, before a
//! mailbox is acted on again, the same in the daemon and in `imapsort sweep` — always under
//! the mailbox's lock ([`crate::lock`]), so one process never settles another's intents in
//! flight. What really happened decides whether the retry may act.
//!
//! - A terminal action (move, archive, trash, delete) whose message is no longer in the
//!   mailbox ran: `done`.
//! - A move whose original is still there but whose copy is in the destination (the same
//!   Message-ID *and* the same RFC822.SIZE) was interrupted between its `UID COPY` and the
//!   removal of the original (moves to several mailboxes share one expunge, and servers
//!   without MOVE copy first): the original is marked `\Deleted` and expunged by UID now, and
//!   the intent is `done`. A delete whose original is already marked `\Deleted` is finished the
//!   same way.
//! - Any other terminal action whose message is still there did not run: `failed`, and the
//!   message is handled again. (A message without a Message-ID is always moved by one atomic
//!   `UID MOVE`, see `execute::Program::atomic`, so it never needs finding.)
//! - A copy whose Message-ID is in the destination was made: `done`, and the rules behind it
//!   that only copy (no terminal action) are recorded as applied, and the copy itself is
//!   recorded ([`copied_marker`]), so the retry does not copy again even when the same rule's
//!   move is still to run. One not found: `unknown`, and the retry copies.
//!
//! A few commands settle thousands of intents: one `UID SEARCH` over the intents' UIDs, and per
//! destination one `EXAMINE` plus one
//! `UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::imap::uidset::{MAX_SET_CHARS, Uid, UidSet};
use crate::imap::{ImapError, Session};
use crate::rules::RuleSet;
use crate::rules::ast::ActionKind;
use crate::state::{
    Action, Applied, JournalEntry, JournalId, Outcome, StateDb, StateError, Store, copied_marker,
};
use crate::vocab::{MailboxName, UidValidity};

/// A settled intent, and the (UID, rules, Message-ID) to record as applied because of it.
#[derive(Clone, Debug)]
struct Settled {
    /// The journal row settled.
    id: JournalId,
    /// What it turned out to be.
    outcome: Outcome,
    /// Rules to record as applied because the copy behind them was made.
    applied: Option<(u32, Vec<String>, Option<String>)>,
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
    let (name, key) = (account.to_owned(), mailbox.clone());
    let open = store
        .call(move |db| db.open_intents(&name, &key))
        .await
        .map_err(RecoverError::State)?;
    if open.is_empty() {
        return Ok(0);
    }
    let settled = settle_intents(session, mailbox, uid_validity, &open, rules)
        .await
        .map_err(|source| RecoverError::Imap {
            mailbox: mailbox.clone(),
            source,
        })?;
    let n = settled.len();
    let (name, key) = (account.to_owned(), mailbox.clone());
    store
        .call(move |db| record(db, &name, &key, uid_validity, &settled))
        .await
        .map_err(RecoverError::State)?;
    tracing::info!(account, mailbox = %mailbox, intents = n, "settled actions an interrupted run left open");
    Ok(n)
}

/// What a destination holds, for finding copies: Message-ID -> the sizes of the messages
/// carrying it.
type Held = HashMap<String, Vec<u32>>;

/// Settle `intents` (open, of the selected `mailbox`, whose UIDVALIDITY is `uid_validity`)
/// against the server; `mailbox` is selected again afterwards when other mailboxes were
/// examined. Moves and deletes found half done are finished here (their originals marked
/// `\Deleted` and expunged by UID), so the outcome can say `done`. Nothing is written to the
/// database: hand the result to [`record`].
async fn settle_intents(
    session: &mut Session,
    mailbox: &MailboxName,
    uid_validity: UidValidity,
    intents: &[JournalEntry],
    rules: &RuleSet,
) -> Result<Vec<Settled>, ImapError> {
    if intents.is_empty() {
        return Ok(Vec::new());
    }
    let current: Vec<&JournalEntry> = intents
        .iter()
        .filter(|e| e.uid_validity == Some(uid_validity))
        .collect();
    let all: UidSet = current.iter().filter_map(|e| Uid::new(e.uid)).collect();
    let present = search_within(session, &all, "").await?;
    // Moves still in the source: their copy may exist. Deletes still there: marked already?
    let half_moves: UidSet = current
        .iter()
        .filter(|e| is_move(e.action) && present.contains(&e.uid) && e.message_id.is_some())
        .filter_map(|e| Uid::new(e.uid))
        .collect();
    let half_deletes: UidSet = current
        .iter()
        .filter(|e| e.action == Action::Delete && present.contains(&e.uid))
        .filter_map(|e| Uid::new(e.uid))
        .collect();
    let marked = search_within(session, &half_deletes, " DELETED").await?;
    let sizes = sizes(session, &half_moves).await?;

    let mut destinations: BTreeMap<String, Held> = BTreeMap::new();
    for e in &current {
        let wanted = e.action == Action::Copy
            || (is_move(e.action) && Uid::new(e.uid).is_some_and(|u| half_moves.contains(u)));
        if wanted && let Some(dest) = &e.destination {
            destinations.entry(dest.clone()).or_default();
        }
    }
    for (dest, held) in destinations.iter_mut() {
        *held = message_ids(session, dest).await?;
    }
    if !destinations.is_empty() {
        session.select(mailbox).await?;
    }
    let found = Found {
        present: &present,
        marked: &marked,
        sizes: &sizes,
        destinations: &destinations,
    };
    let settled: Vec<Settled> = intents
        .iter()
        .map(|e| settle(e, uid_validity, &found, rules))
        .collect();
    // Finish what was found half done: the copy exists (or the delete was marked), so the
    // original goes, by UID, as the interrupted pass would have done.
    let finish: UidSet = intents
        .iter()
        .zip(&settled)
        .filter(|(e, s)| {
            e.action != Action::Copy && present.contains(&e.uid) && s.outcome == Outcome::Done
        })
        .filter_map(|(e, _)| Uid::new(e.uid))
        .collect();
    if !finish.is_empty() {
        tracing::info!(
            mailbox = %mailbox,
            uids = %finish,
            "finishing moves and deletes an interrupted pass left half done"
        );
        remove(session, &finish).await?;
    }
    Ok(settled)
}

fn is_move(action: Action) -> bool {
    matches!(action, Action::Move | Action::Archive | Action::Trash)
}

/// What the server was found to hold.
struct Found<'a> {
    /// Intents' UIDs still in the source mailbox.
    present: &'a HashSet<u32>,
    /// Of the deletes' UIDs still there, those already marked `\Deleted`.
    marked: &'a HashSet<u32>,
    /// RFC822.SIZE of the half-done moves' originals.
    sizes: &'a HashMap<u32, u32>,
    /// Per destination, the Message-IDs (and sizes) it holds.
    destinations: &'a BTreeMap<String, Held>,
}

/// Write what [`settle_intents`] found, in one transaction.
fn record(
    db: &mut StateDb,
    account: &str,
    mailbox: &MailboxName,
    uid_validity: UidValidity,
    settled: &[Settled],
) -> Result<(), StateError> {
    let tx = db.batch()?;
    for s in settled {
        tx.journal_outcome(s.id, &s.outcome)?;
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
    tx.commit()
}

/// What one intent turned out to be.
fn settle(
    e: &JournalEntry,
    uid_validity: UidValidity,
    found: &Found<'_>,
    rules: &RuleSet,
) -> Settled {
    let mut s = Settled {
        id: e.id,
        outcome: Outcome::Unknown,
        applied: None,
    };
    if e.uid_validity != Some(uid_validity) {
        // The mailbox was renumbered since: nothing can be told.
        return s;
    }
    let held = |size: Option<u32>| match (&e.message_id, &e.destination) {
        (Some(id), Some(dest)) => found
            .destinations
            .get(dest)
            .and_then(|ids| ids.get(id.trim()))
            .is_some_and(|sizes| size.is_none_or(|n| sizes.contains(&n))),
        _ => false,
    };
    if e.action != Action::Copy {
        let gone = !found.present.contains(&e.uid);
        // A move copied but not yet removed: the same Message-ID and size in the destination.
        let copied = is_move(e.action)
            && found
                .sizes
                .get(&e.uid)
                .is_some_and(|&size| held(Some(size)));
        let marked = e.action == Action::Delete && found.marked.contains(&e.uid);
        s.outcome = if gone || copied || marked {
            Outcome::Done
        } else {
            Outcome::Failed("interrupted before it ran; the message is handled again".into())
        };
        if copied || marked {
            s.applied = Some((e.uid, e.rules.clone(), e.message_id.clone()));
        }
        return s;
    }
    if held(None) {
        s.outcome = Outcome::Done;
        let mut applied = copy_only_rules(rules, &e.rules);
        // A rule that also moves is not applied yet; the copy is, and the retry's plan
        // must drop it.
        if let Some(dest) = &e.destination {
            applied.push(copied_marker(dest));
        }
        s.applied = Some((e.uid, applied, e.message_id.clone()));
    }
    s
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

/// RFC822.SIZE of `uids` in the selected mailbox.
async fn sizes(session: &mut Session, uids: &UidSet) -> Result<HashMap<u32, u32>, ImapError> {
    let mut out = HashMap::new();
    for chunk in uids.chunks(MAX_SET_CHARS, u64::MAX) {
        for item in session
            .uid_fetch(&chunk.to_string(), "(UID RFC822.SIZE)")
            .await?
        {
            if let (Some(uid), Some(size)) = (item.uid(), item.size())
                && Uid::new(uid).is_some_and(|u| chunk.contains(u))
            {
                out.insert(uid, size);
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

/// The Message-IDs in `mailbox` with their sizes (EXAMINE, so nothing changes); empty when it
/// does not exist.
async fn message_ids(session: &mut Session, mailbox: &str) -> Result<Held, ImapError> {
    let info = match session.examine(mailbox).await {
        Ok(info) => info,
        Err(e) if !e.is_connection_fatal() => return Ok(Held::new()),
        Err(e) => return Err(e),
    };
    let mut held = Held::new();
    if info.exists == 0 {
        return Ok(held);
    }
    let items = session
        .uid_fetch(
            "1:*",
            "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
        )
        .await?;
    for item in &items {
        if let Some(id) = item.header().and_then(header_message_id) {
            let sizes = held.entry(id).or_default();
            sizes.extend(item.size());
        }
    }
    Ok(held)
}

/// The Message-ID field's value, unfolded and trimmed.
fn header_message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut value: Option<String> = None;
    for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line.trim()),
            Some(_) => break,
            None => {
                if let Some((name, rest)) = line.split_once(':')
                    && name.trim().eq_ignore_ascii_case("message-id")
                {
                    value = Some(rest.trim().to_string());
                }
            }
        }
    }
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_headers_are_read_folded_or_not() {
        let table: &[(&str, Option<&str>)] = &[
            ("Message-ID: <a@b>\r\n\r\n", Some("<a@b>")),
            ("message-id:   <a@b>  \r\n", Some("<a@b>")),
            ("Message-Id:\r\n <folded@x>\r\n\r\n", Some("<folded@x>")),
            ("Subject: hi\r\n\r\n", None),
            ("Message-ID:\r\n\r\n", None),
        ];
        for (header, want) in table {
            assert_eq!(
                header_message_id(header.as_bytes()).as_deref(),
                *want,
                "{header:?}"
            );
        }
    }
}
