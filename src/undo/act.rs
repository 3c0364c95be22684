//! Taking back the parts found in one mailbox, exactly once: the undo's steps are written
//! to the journal (intents, each a step of its entry) and the fences of the mailboxes
//! messages go back to are made durable before any command; then one program of batched
//! commands (`crate::execute`): `UID STORE` per flag set (flags a plan added removed, those
//! it removed added), `-X-GM-LABELS`, `UID MOVE` back per mailbox (or `UID COPY`, `\Deleted`
//! and `UID EXPUNGE` without MOVE), `\Deleted` and `UID EXPUNGE` of copies; then the
//! outcomes, with where the server says each message went back to (COPYUID) and what the
//! state must know of it there (`crate::recover::returned`).
//!
//! A step that fails keeps its intent open: the next process to work on the mailbox settles
//! it (`crate::recover`), and the next `imapsort undo` does what is left.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tracing::Instrument;

use super::{Key, UndoError};
use crate::execute::{Executor, Fence, Program, Step};
use crate::imap::Session;
use crate::imap::uidset::{Uid, UidSet};
use crate::pass::record::fence_rows;
use crate::recover::returned::{self as putback, Returning};
use crate::recover::undone::{Part, describe_flags};
use crate::state::{Batch, Entry, JournalId, Link, NewJournalEntry, Outcome, StateError, Store};
use crate::vocab::{MailboxName, UidValidity};

/// One part to take back, found where it is to be taken back.
#[derive(Clone, Debug)]
pub struct Task {
    pub key: Key,
    pub entry: Entry,
    pub part: Part,
    /// Its UID in the mailbox acted in.
    pub uid: u32,
    /// Its signature (kept in the step of a move back).
    pub digest: String,
}

/// What came of one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    /// `Err(reason)` when a command failed (its intent stays open).
    pub done: Result<(), String>,
    /// For a move back: the mailbox's UIDVALIDITY and the message's new UID there, when
    /// known.
    pub returned: Option<(u32, u32)>,
}

/// Takes back `tasks` (all in `mailbox`, whose UIDVALIDITY the caller found them under).
pub async fn run(
    session: &mut Session,
    executor: &mut Executor,
    store: &Store,
    mailbox: &MailboxName,
    validity: u32,
    tasks: Vec<Task>,
) -> Result<HashMap<Key, TaskResult>, UndoError> {
    let mut results = HashMap::new();
    let info = session.select(mailbox).await.map_err(UndoError::Imap)?;
    let Some(uid_validity) =
        UidValidity::new(validity).filter(|_| info.uid_validity == Some(validity))
    else {
        for t in &tasks {
            let why = format!("{mailbox} was recreated meanwhile: left alone");
            results.insert(t.key, failed(why));
        }
        return Ok(results);
    };
    let account = tasks[0].entry.account.clone();

    // The steps, durable before anything changes.
    let steps = {
        let (tasks, mailbox, account) = (tasks.clone(), mailbox.clone(), account.clone());
        store
            .call(move |db| {
                let tx = db.batch()?;
                let mut ids = Vec::with_capacity(tasks.len());
                for t in &tasks {
                    ids.push(intent(&tx, &account, &mailbox, uid_validity, t)?);
                }
                tx.commit()?;
                Ok(ids)
            })
            .await
            .map_err(UndoError::State)?
    };
    let range = (
        *steps.iter().min().expect("tasks are not empty"),
        *steps.iter().max().expect("tasks are not empty"),
    );
    let program = program(&tasks, executor.caps().gmail);

    // Every mailbox messages go back to is fenced: after a crash, or without COPYUID, a
    // message moved back is found among what arrived there since.
    let span = tracing::warn_span!("undo", account = %account, mailbox = %mailbox);
    let mut fences = executor
        .prepare(session, &program)
        .instrument(span.clone())
        .await;
    let back_to: BTreeSet<&MailboxName> = tasks
        .iter()
        .filter(|t| matches!(t.part, Part::Move { .. }))
        .map(|t| &t.entry.mailbox)
        .collect();
    for to in back_to {
        if fences
            .iter()
            .any(|f| MailboxName::new(f.mailbox.as_str()) == *to)
        {
            continue;
        }
        let created = session.ensure_mailbox(to).await.map_err(UndoError::Imap)?;
        let fence = if created {
            Fence {
                mailbox: to.to_string(),
                uid_validity: None,
                uid_next: 1,
            }
        } else {
            let status = session.status(to).await.map_err(UndoError::Imap)?;
            Fence {
                mailbox: to.to_string(),
                uid_validity: status.uid_validity,
                uid_next: status.uid_next.unwrap_or(1),
            }
        };
        fences.push(fence);
    }
    {
        let (fences, mailbox, account) = (fences.clone(), mailbox.clone(), account.clone());
        store
            .call(move |db| {
                let rows = fence_rows(&fences);
                let batch = Batch {
                    account: &account,
                    mailbox: &mailbox,
                    uid_validity,
                    intents: range,
                };
                db.record_fences(&batch, &rows)
            })
            .await
            .map_err(UndoError::State)?;
    }

    let run = executor
        .run_within(session, &program, None)
        .instrument(span)
        .await;
    let errors: HashMap<Uid, String> = run
        .outcomes
        .iter()
        .filter_map(|o| o.error.clone().map(|e| (o.uid, e)))
        .collect();
    for o in &run.outcomes {
        for w in &o.warnings {
            tracing::warn!(account = %account, mailbox = %mailbox, uid = o.uid.get(), "{w}");
        }
    }
    let returned_to = |t: &Task| -> Option<(u32, u32)> {
        run.copied
            .iter()
            .filter(|c| MailboxName::new(c.mailbox.as_str()) == t.entry.mailbox)
            .find_map(|c| c.uids.dest_of(t.uid).map(|d| (c.uids.uid_validity, d)))
    };
    for t in &tasks {
        let done = match Uid::new(t.uid).and_then(|u| errors.get(&u)) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        let returned = match (&done, &t.part) {
            (Ok(()), Part::Move { .. }) => returned_to(t),
            _ => None,
        };
        results.insert(t.key, TaskResult { done, returned });
    }

    // The outcomes, the COPYUID answers and what the state keeps of the messages moved back.
    {
        let tasks = tasks.clone();
        let results = results.clone();
        let copied = run.copied.clone();
        let (mailbox, account, steps) = (mailbox.clone(), account.clone(), steps.clone());
        store
            .call(move |db| {
                let tx = db.batch()?;
                let batch = Batch {
                    account: &account,
                    mailbox: &mailbox,
                    uid_validity,
                    intents: range,
                };
                for c in &copied {
                    tx.record_copies(&batch, &c.mailbox, &c.uids)?;
                }
                for (t, step) in tasks.iter().zip(&steps) {
                    let r = &results[&t.key];
                    if r.done.is_err() {
                        continue;
                    }
                    tx.journal_outcome(*step, &Outcome::Done)?;
                    if let Some((v, uid)) = r.returned
                        && let Some(v) = UidValidity::new(v)
                    {
                        putback::record(&tx, &t.entry, v, uid)?;
                    }
                }
                tx.commit()
            })
            .await
            .map_err(UndoError::State)?;
    }

    // Moved back without a COPYUID (a server without UIDPLUS): found by signature.
    let unknown: Vec<(&Task, JournalId)> = tasks
        .iter()
        .zip(steps.iter().copied())
        .filter(|(t, _)| {
            matches!(t.part, Part::Move { .. })
                && results[&t.key].done.is_ok()
                && results[&t.key].returned.is_none()
        })
        .collect();
    let mut by_destination: BTreeMap<&MailboxName, Vec<(&Task, JournalId)>> = BTreeMap::new();
    for (t, step) in unknown {
        by_destination
            .entry(&t.entry.mailbox)
            .or_default()
            .push((t, step));
    }
    for (to, moved) in by_destination {
        let Some(fence) = fences
            .iter()
            .find(|f| MailboxName::new(f.mailbox.as_str()) == *to)
        else {
            continue;
        };
        let info = session.examine(to).await.map_err(UndoError::Imap)?;
        let returning: Vec<Returning> = moved
            .iter()
            .map(|(t, step)| Returning {
                step: *step,
                digest: t.digest.clone(),
                fence: fence.uid_next,
                fence_validity: fence.uid_validity,
            })
            .collect();
        let found = putback::identify(session, info.uid_validity, &returning, &HashSet::new())
            .await
            .map_err(UndoError::Imap)?;
        let Some(v) = info.uid_validity.and_then(UidValidity::new) else {
            continue;
        };
        let mut records: Vec<(Entry, u32)> = Vec::new();
        for (t, step) in &moved {
            match found.get(step) {
                Some(&uid) => {
                    if let Some(r) = results.get_mut(&t.key) {
                        r.returned = Some((v.get(), uid));
                    }
                    records.push((t.entry.clone(), uid));
                }
                None => tracing::warn!(
                    account = %account,
                    mailbox = %to,
                    entry = t.entry.id.0,
                    "moved back, but the server did not say under which UID and it was not recognised: the daemon may take it for new mail"
                ),
            }
        }
        store
            .call(move |db| {
                let tx = db.batch()?;
                for (entry, uid) in &records {
                    putback::record(&tx, entry, v, *uid)?;
                }
                tx.commit()
            })
            .await
            .map_err(UndoError::State)?;
    }
    if !session.is_usable() {
        return Err(UndoError::Imap(crate::imap::ImapError::ConnectionLost(
            Some("while taking actions back".into()),
        )));
    }
    Ok(results)
}

fn failed(why: String) -> TaskResult {
    TaskResult {
        done: Err(why),
        returned: None,
    }
}

/// The journal step (an intent) of one task.
fn intent(
    tx: &crate::state::StateTx<'_>,
    account: &str,
    mailbox: &MailboxName,
    uid_validity: UidValidity,
    t: &Task,
) -> Result<JournalId, StateError> {
    let described;
    let destination = match &t.part {
        Part::Move { .. } => Some(t.entry.mailbox.as_str()),
        Part::Copy { .. } => None,
        Part::Flags => {
            described = describe_flags(&t.entry.plan);
            Some(described.as_str())
        }
    };
    let link = Link {
        entry: Some(t.entry.id),
        signature: matches!(t.part, Part::Move { .. }).then_some(t.digest.as_str()),
    };
    tx.journal_step(
        link,
        &NewJournalEntry {
            account,
            mailbox,
            uid_validity,
            uid: t.uid,
            message_id: t.entry.message_id.as_deref(),
            rules: &t.entry.rules,
            action: t.part.action(),
            destination,
        },
        &Outcome::Intent,
    )
}

/// The commands that take `tasks` back, batched: flags first (they travel with a message
/// moved back), then the moves back, then the copies' deletion. Labels are taken back on
/// Gmail only (elsewhere a plan's labels were refused and never added).
pub fn program(tasks: &[Task], gmail: bool) -> Program {
    let mut remove: BTreeMap<Vec<String>, UidSet> = BTreeMap::new();
    let mut add: BTreeMap<Vec<String>, UidSet> = BTreeMap::new();
    let mut unlabel: BTreeMap<Vec<String>, UidSet> = BTreeMap::new();
    let mut back: BTreeMap<&MailboxName, UidSet> = BTreeMap::new();
    let mut deletes = UidSet::new();
    for t in tasks {
        let Some(uid) = Uid::new(t.uid) else { continue };
        let plan = &t.entry.plan;
        match &t.part {
            Part::Move { .. } | Part::Flags => {
                let group = |map: &mut BTreeMap<Vec<String>, UidSet>, list: &[String]| {
                    if !list.is_empty() {
                        let mut key = list.to_vec();
                        key.sort();
                        key.dedup();
                        map.entry(key).or_default().insert(uid);
                    }
                };
                group(&mut remove, &plan.add_flags);
                group(&mut add, &plan.remove_flags);
                if gmail {
                    group(&mut unlabel, &plan.add_labels);
                }
                if matches!(t.part, Part::Move { .. }) {
                    back.entry(&t.entry.mailbox).or_default().insert(uid);
                }
            }
            Part::Copy { .. } => deletes.insert(uid),
        }
    }
    let mut steps = Vec::new();
    steps.extend(remove.into_iter().map(|(flags, uids)| Step::Flags {
        uids,
        add: false,
        flags,
    }));
    steps.extend(add.into_iter().map(|(flags, uids)| Step::Flags {
        uids,
        add: true,
        flags,
    }));
    steps.extend(
        unlabel
            .into_iter()
            .map(|(labels, uids)| Step::Unlabel { uids, labels }),
    );
    steps.extend(back.into_iter().map(|(to, uids)| Step::Move {
        uids,
        mailbox: to.to_string(),
    }));
    if !deletes.is_empty() {
        steps.push(Step::Delete { uids: deletes });
    }
    Program {
        steps,
        refused: Vec::new(),
        atomic: UidSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{FinalAction, FinalKind, Plan};
    use crate::state::EntryId;

    fn task(id: i64, uid: u32, part: Part, plan: Plan) -> Task {
        Task {
            key: (EntryId(id), 0),
            entry: Entry {
                id: EntryId(id),
                at: jiff::Timestamp::UNIX_EPOCH,
                account: "a".into(),
                mailbox: MailboxName::inbox(),
                uid_validity: UidValidity::new(7).unwrap(),
                uid: 100 + uid,
                message_id: None,
                from: None,
                subject: None,
                rules: vec!["r".into()],
                plan,
                done: true,
                moved_to: None,
                copies: vec![],
                undone_at: None,
            },
            part,
            uid,
            digest: String::new(),
        }
    }

    fn show(p: &Program) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| match s {
                Step::Flags { uids, add, flags } => {
                    format!(
                        "{}FLAGS {uids} {}",
                        if *add { "+" } else { "-" },
                        flags.join(" ")
                    )
                }
                Step::Labels { uids, labels } => format!("+LABELS {uids} {}", labels.join(" ")),
                Step::Unlabel { uids, labels } => format!("-LABELS {uids} {}", labels.join(" ")),
                Step::Copy { uids, mailbox } => format!("COPY {uids} {mailbox}"),
                Step::Move { uids, mailbox } => format!("MOVE {uids} {mailbox}"),
                Step::Delete { uids } => format!("DELETE {uids}"),
            })
            .collect()
    }

    #[test]
    fn one_command_per_flag_set_and_mailbox_flags_before_moves_copies_deleted_last() {
        let moved = Plan {
            add_flags: vec!["$Urgent".into()],
            remove_flags: vec!["\\Seen".into()],
            add_labels: vec!["Work".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Move,
                mailbox: Some("Work".into()),
            }),
            ..Plan::default()
        };
        let from_work = || Part::Move {
            from: MailboxName::new("Work"),
        };
        let tasks = [
            task(1, 5, from_work(), moved.clone()),
            task(2, 6, from_work(), moved.clone()),
            task(
                3,
                9,
                Part::Copy {
                    mailbox: MailboxName::new("Work"),
                },
                Plan::default(),
            ),
        ];
        assert_eq!(
            show(&program(&tasks, true)),
            [
                "-FLAGS 5:6 $Urgent",
                "+FLAGS 5:6 \\Seen",
                "-LABELS 5:6 Work",
                "MOVE 5:6 INBOX",
                "DELETE 9",
            ]
        );
        // Labels are taken back on Gmail only (elsewhere they were never added).
        assert!(
            !show(&program(&tasks, false))
                .iter()
                .any(|s| s.contains("LABELS"))
        );
    }
}
