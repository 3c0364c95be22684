//! Settling journal intents that a crash or a lost connection left open, before a mailbox is
//! handled again: what really happened decides whether the retry may act.
//!
//! - A terminal action (move, archive, trash, delete) whose message is no longer in the
//!   mailbox ran: `done`. One still there did not: `failed`, and the message is handled again.
//! - A copy whose Message-ID is in the destination was made: `done`, and the rules behind it
//!   that only copy (no terminal action) are recorded as applied, so the retry does not copy
//!   again. One not found: `unknown`, and the retry copies.
//!
//! A few commands settle thousands of intents: one `UID SEARCH` over the intents' UIDs, and per
//! destination one `EXAMINE` plus one `UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`.

use std::collections::{BTreeMap, HashSet};

use crate::imap::uidset::{MAX_SET_CHARS, Uid, UidSet};
use crate::imap::{ImapError, Session};
use crate::rules::RuleSet;
use crate::rules::ast::ActionKind;
use crate::state::{Action, Applied, JournalEntry, JournalId, Outcome};

use super::pass::{Ctx, PassError, Selected};

/// A settled intent, and the (UID, rules, Message-ID) to record as applied because of it.
struct Settled {
    id: JournalId,
    outcome: Outcome,
    applied: Option<(u32, Vec<String>, Option<String>)>,
}

/// Settle this mailbox's open intents; the mailbox is selected again afterwards.
pub(crate) async fn reconcile(
    session: &mut Session,
    ctx: &Ctx<'_>,
    sel: &Selected,
) -> Result<(), PassError> {
    let account = ctx.account.name.clone();
    let intents = ctx
        .store
        .call(move |db| db.unfinished_intents(&account))
        .await?;
    let mine: Vec<JournalEntry> = intents
        .into_iter()
        .filter(|e| e.mailbox == ctx.mailbox)
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let current: UidSet = mine
        .iter()
        .filter(|e| e.uid_validity == Some(sel.uid_validity))
        .filter_map(|e| Uid::new(e.uid))
        .collect();
    let present = present_uids(session, &current).await?;
    let mut destinations: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for e in &mine {
        if e.action == Action::Copy
            && let Some(dest) = &e.destination
        {
            destinations.entry(dest.clone()).or_default();
        }
    }
    for (dest, ids) in destinations.iter_mut() {
        *ids = message_ids(session, dest).await?;
    }
    if !destinations.is_empty() {
        session.select(ctx.mailbox).await?;
    }

    let settled: Vec<Settled> = mine
        .iter()
        .map(|e| settle(e, sel, &present, &destinations, ctx.rules))
        .collect();
    let n = settled.len();
    let (account, mailbox, validity) = (
        ctx.account.name.clone(),
        ctx.mailbox.to_string(),
        sel.uid_validity,
    );
    ctx.store
        .call(move |db| {
            let tx = db.batch()?;
            for s in &settled {
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
                    tx.record_applied(&account, &mailbox, validity, &pairs)?;
                }
            }
            tx.commit()
        })
        .await?;
    tracing::info!(account = %ctx.account.name, mailbox = ctx.mailbox, intents = n, "settled actions a restart interrupted");
    Ok(())
}

/// What one intent turned out to be.
fn settle(
    e: &JournalEntry,
    sel: &Selected,
    present: &HashSet<u32>,
    destinations: &BTreeMap<String, HashSet<String>>,
    rules: &RuleSet,
) -> Settled {
    let mut s = Settled {
        id: e.id,
        outcome: Outcome::Unknown,
        applied: None,
    };
    if e.uid_validity != Some(sel.uid_validity) {
        // The mailbox was renumbered since: nothing can be told.
        return s;
    }
    if e.action != Action::Copy {
        s.outcome = if present.contains(&e.uid) {
            Outcome::Failed("interrupted before it ran; the message is handled again".into())
        } else {
            Outcome::Done
        };
        return s;
    }
    let found = match (&e.message_id, &e.destination) {
        (Some(id), Some(dest)) => destinations
            .get(dest)
            .is_some_and(|ids| ids.contains(id.trim())),
        _ => false,
    };
    if found {
        s.outcome = Outcome::Done;
        let copy_only = copy_only_rules(rules, &e.rule);
        if !copy_only.is_empty() {
            s.applied = Some((e.uid, copy_only, e.message_id.clone()));
        }
    }
    s
}

/// Of the comma-separated rules of a journal row, those that copy and have no terminal
/// action: marking them applied after a copy that did happen keeps the retry from copying
/// again, without keeping another rule's move from running.
fn copy_only_rules(rules: &RuleSet, names: &str) -> Vec<String> {
    names
        .split(',')
        .filter(|name| {
            rules.rules().any(|r| {
                r.name == *name
                    && r.then.iter().any(|a| matches!(a.kind, ActionKind::Copy(_)))
                    && !r.then.iter().any(|a| a.kind.is_terminal())
            })
        })
        .map(str::to_string)
        .collect()
}

/// Which of `uids` are still in the selected mailbox.
async fn present_uids(session: &mut Session, uids: &UidSet) -> Result<HashSet<u32>, ImapError> {
    let mut present = HashSet::new();
    for chunk in uids.chunks(MAX_SET_CHARS, u64::MAX) {
        for u in session.uid_search(&format!("UID {chunk}")).await? {
            if Uid::new(u).is_some_and(|u| chunk.contains(u)) {
                present.insert(u);
            }
        }
    }
    Ok(present)
}

/// The Message-IDs in `mailbox` (EXAMINE, so nothing changes); empty when it does not exist.
async fn message_ids(session: &mut Session, mailbox: &str) -> Result<HashSet<String>, ImapError> {
    let info = match session.examine(mailbox).await {
        Ok(info) => info,
        Err(e) if !e.is_connection_fatal() => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    if info.exists == 0 {
        return Ok(HashSet::new());
    }
    let items = session
        .uid_fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .await?;
    Ok(items
        .iter()
        .filter_map(|item| item.header().and_then(header_message_id))
        .collect())
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
