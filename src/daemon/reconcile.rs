//! Settling journal intents that a crash or a lost connection left open, before a mailbox is
//! handled again: what really happened decides whether the retry may act.

use crate::imap::{ImapError, Session};
use crate::rules::RuleSet;
use crate::state::{Action, Applied, JournalId, Outcome};

use super::pass::{Ctx, PassError, Selected};

/// A journal intent's outcome, and the (UID, comma-separated rules, Message-ID) to record as
/// applied because of it.
type Settled = (JournalId, Outcome, Option<(u32, String, Option<String>)>);

/// Settle journal intents a crash or a lost connection left open for this mailbox: a message
/// no longer here was moved; a copy found in its destination (by Message-ID) was made, and its
/// rules are recorded as applied so the retry does not copy again.
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
    let mine: Vec<_> = intents
        .into_iter()
        .filter(|e| e.mailbox == ctx.mailbox)
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let mut settled: Vec<Settled> = Vec::new();
    let mut copies = Vec::new();
    for e in mine {
        if e.uid_validity != Some(sel.uid_validity) {
            settled.push((e.id, Outcome::Unknown, None));
            continue;
        }
        let present = !session
            .uid_search(&format!("UID {}", e.uid))
            .await?
            .into_iter()
            .filter(|u| *u == e.uid)
            .collect::<Vec<_>>()
            .is_empty();
        match e.action {
            Action::Copy => copies.push(e),
            _ if present => settled.push((
                e.id,
                Outcome::Failed(
                    "interrupted before it ran; the message will be handled again".into(),
                ),
                None,
            )),
            _ => settled.push((e.id, Outcome::Done, None)),
        }
    }
    if !copies.is_empty() {
        for e in &copies {
            let found = match (&e.message_id, &e.destination) {
                (Some(id), Some(dest)) => copy_exists(session, dest, id).await?,
                _ => false,
            };
            if found {
                let copy_only = copy_only_rules(ctx.rules, &e.rule);
                let applied = (!copy_only.is_empty())
                    .then(|| (e.uid, copy_only.join(","), e.message_id.clone()));
                settled.push((e.id, Outcome::Done, applied));
            } else {
                settled.push((e.id, Outcome::Unknown, None));
            }
        }
        session.select(ctx.mailbox).await?;
    }
    let n = settled.len();
    let (account, mailbox, validity) = (
        ctx.account.name.clone(),
        ctx.mailbox.to_string(),
        sel.uid_validity,
    );
    ctx.store
        .call(move |db| {
            let tx = db.batch()?;
            for (id, outcome, applied) in &settled {
                tx.journal_outcome(*id, outcome)?;
                if let Some((uid, rules, message_id)) = applied {
                    let pairs: Vec<Applied<'_>> = rules
                        .split(',')
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

/// Of the comma-separated rules of a journal row, those whose actions are all repeatable or
/// copies (no terminal action): marking them applied after a copy that did happen keeps the
/// retry from copying again without keeping another rule's move from running.
fn copy_only_rules(rules: &RuleSet, names: &str) -> Vec<String> {
    names
        .split(',')
        .filter(|name| {
            rules.rules().any(|r| {
                r.name == *name
                    && r.then
                        .iter()
                        .any(|a| matches!(a.kind, crate::rules::ast::ActionKind::Copy(_)))
                    && !r.then.iter().any(|a| a.kind.is_terminal())
            })
        })
        .map(str::to_string)
        .collect()
}

/// Whether a message with this Message-ID is in `mailbox` (EXAMINE, so nothing changes).
async fn copy_exists(
    session: &mut Session,
    mailbox: &str,
    message_id: &str,
) -> Result<bool, ImapError> {
    match session.examine(mailbox).await {
        Ok(_) => {}
        Err(e) if !e.is_connection_fatal() => return Ok(false),
        Err(e) => return Err(e),
    }
    let Some(q) = crate::imap::auth::quote(message_id) else {
        return Ok(false);
    };
    Ok(!session
        .uid_search(&format!("HEADER Message-ID {q}"))
        .await?
        .is_empty())
}
