//! What taking one history entry back (`imapsort undo`) means, decided from the entry and its journal steps
//! alone (pure: no server, no database).
//!
//! An entry's plan is taken back whole (RULES.md: the flags it added are removed, those it
//! removed added again, its labels removed, its copies deleted, its message moved back), in
//! up to three kinds of [`Part`]:
//!
//! - [`Part::Move`]: the message a move, archive or trash left in another mailbox is moved
//!   back to where it was; its flags are restored there first (they travel with it);
//! - [`Part::Copy`]: each copy the plan made is deleted (that copy only);
//! - [`Part::Flags`]: without a move, the flags and labels are restored where the message is.
//!
//! Only what was carried out is taken back: for an entry whose plan failed part-way, the
//! move and the copies whose steps are done (the flags are restored in any case: restoring
//! a flag change that did not happen changes nothing). A part an earlier `imapsort undo`
//! finished (its step `done` in the journal) is not done again. `delete` cannot be undone,
//! and an entry with a step whose outcome a crash hid cannot be taken back safely either.

use crate::rules::FinalKind;
use crate::state::{Action, Entry, EntryId, JournalEntry, Outcome, StateError};
use crate::vocab::MailboxName;

/// One piece of taking an entry back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Move the message back from `from` (the plan's destination) to the entry's mailbox.
    Move { from: MailboxName },
    /// Delete the copy the plan made in `mailbox`.
    Copy { mailbox: MailboxName },
    /// Restore the flags and labels in the entry's mailbox (no move took the message away).
    Flags,
}

impl Part {
    /// The mailbox the part acts in (where the message is to be found).
    pub fn mailbox<'a>(&'a self, entry: &'a Entry) -> &'a MailboxName {
        match self {
            Part::Move { from } => from,
            Part::Copy { mailbox } => mailbox,
            Part::Flags => &entry.mailbox,
        }
    }

    /// The journal action of the part's step.
    pub fn action(&self) -> Action {
        match self {
            Part::Move { .. } => Action::UndoMove,
            Part::Copy { .. } => Action::UndoCopy,
            Part::Flags => Action::UndoFlags,
        }
    }
}

/// What is left to do to take an entry back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Every part is done (or there was nothing to take back).
    Done,
    /// These parts remain.
    Parts(Vec<Part>),
    /// It cannot be taken back; why.
    Refused(String),
}

/// Decides what is left to do for `entry`, given its journal `steps` (oldest first).
pub fn plan(entry: &Entry, steps: &[JournalEntry]) -> Plan {
    let p = &entry.plan;
    if p.final_action
        .as_ref()
        .is_some_and(|f| f.action == FinalKind::Delete)
    {
        return Plan::Refused(
            "delete cannot be undone: the message was expunged from the server".into(),
        );
    }
    // The last try of each of the rules' steps counts (a retried plan has several).
    let last = |action: Action, destination: Option<&str>| {
        steps
            .iter()
            .rfind(|s| s.action == action && same(s.destination.as_deref(), destination))
    };
    let ran = |action: Action, destination: Option<&str>| {
        entry.done || last(action, destination).is_some_and(|s| s.outcome == Outcome::Done)
    };
    let undone = |part: &Part| {
        steps.iter().any(|s| {
            s.action == part.action()
                && s.outcome == Outcome::Done
                && match part {
                    Part::Copy { mailbox } => s.mailbox == *mailbox,
                    _ => true,
                }
        })
    };
    let mut parts = Vec::new();
    let mut moved = false;
    if let Some(f) = &p.final_action
        && let Some(to) = &f.mailbox
    {
        let action = Action::from(f.action);
        if let Some(step) = last(action, Some(to))
            && !entry.done
            && matches!(step.outcome, Outcome::Intent | Outcome::Unknown)
        {
            return unknown(action, to);
        }
        if ran(action, Some(to)) {
            moved = true;
            parts.push(Part::Move {
                from: MailboxName::new(to.as_str()),
            });
        }
    }
    for c in &p.copy {
        if let Some(step) = last(Action::Copy, Some(c))
            && !entry.done
            && matches!(step.outcome, Outcome::Intent | Outcome::Unknown)
        {
            return unknown(Action::Copy, c);
        }
        if ran(Action::Copy, Some(c)) {
            parts.push(Part::Copy {
                mailbox: MailboxName::new(c.as_str()),
            });
        }
    }
    let flags = !p.add_flags.is_empty() || !p.remove_flags.is_empty() || !p.add_labels.is_empty();
    if flags && !moved {
        parts.push(Part::Flags);
    }
    parts.retain(|part| !undone(part));
    if parts.is_empty() {
        Plan::Done
    } else {
        Plan::Parts(parts)
    }
}

fn unknown(action: Action, destination: &str) -> Plan {
    Plan::Refused(format!(
        "whether its {action} to {destination} happened is not known (a crash hid the \
         server's answer); it is left alone"
    ))
}

/// Destinations compared as mailbox names (INBOX in any spelling).
fn same(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => MailboxName::new(a) == MailboxName::new(b),
        (None, None) => true,
        _ => false,
    }
}

/// The flag changes that take `plan`'s back, as `-FLAG` / `+FLAG` / `-label:L` words (the
/// journal's description of an undo step).
pub fn describe_flags(plan: &crate::rules::Plan) -> String {
    let mut words: Vec<String> = Vec::new();
    words.extend(plan.add_flags.iter().map(|f| format!("-{f}")));
    words.extend(plan.remove_flags.iter().map(|f| format!("+{f}")));
    words.extend(plan.add_labels.iter().map(|l| format!("-label:{l}")));
    words.join(" ")
}

/// Marks undone those of `ids` whose every part is done, and the rules behind them undone
/// for their messages where no move took them away (a message moved back got its records
/// when it arrived). Returns them.
pub fn mark(tx: &crate::state::StateTx<'_>, ids: &[EntryId]) -> Result<Vec<EntryId>, StateError> {
    let entries = tx.entries(ids)?;
    let steps = tx.steps_of(ids)?;
    let mut done = Vec::new();
    for e in &entries {
        let own: Vec<JournalEntry> = steps
            .iter()
            .filter(|s| s.entry == Some(e.id))
            .cloned()
            .collect();
        if plan(e, &own) != Plan::Done {
            continue;
        }
        let moved = own
            .iter()
            .any(|s| s.action == crate::state::Action::UndoMove);
        if !moved {
            super::returned::mark_undone_in_place(tx, e)?;
        }
        done.push(e.id);
    }
    tx.mark_undone(&done)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{FinalAction, Plan as RulePlan};
    use crate::state::{EntryId, JournalId};
    use crate::vocab::UidValidity;

    fn entry(plan: RulePlan, done: bool) -> Entry {
        Entry {
            id: EntryId(1),
            at: jiff::Timestamp::UNIX_EPOCH,
            account: "a".into(),
            mailbox: MailboxName::inbox(),
            uid_validity: UidValidity::new(7).unwrap(),
            uid: 5,
            message_id: None,
            from: None,
            subject: None,
            rules: vec!["r".into()],
            plan,
            done,
            moved_to: None,
            copies: vec![],
            undone_at: None,
        }
    }

    fn step(action: Action, mailbox: &str, dest: Option<&str>, outcome: Outcome) -> JournalEntry {
        JournalEntry {
            id: JournalId(1),
            at: jiff::Timestamp::UNIX_EPOCH,
            account: "a".into(),
            mailbox: MailboxName::new(mailbox),
            uid_validity: UidValidity::new(7),
            uid: 5,
            message_id: None,
            rules: vec!["r".into()],
            action,
            destination: dest.map(str::to_owned),
            outcome,
            finished_at: None,
            entry: Some(EntryId(1)),
            signature: None,
        }
    }

    fn flag_copy_move() -> RulePlan {
        RulePlan {
            add_flags: vec!["$Invoice".into()],
            copy: vec!["Acc".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Archive,
                mailbox: Some("Archive".into()),
            }),
            ..RulePlan::default()
        }
    }

    fn moved_from(m: &str) -> Part {
        Part::Move {
            from: MailboxName::new(m),
        }
    }

    fn copy_in(m: &str) -> Part {
        Part::Copy {
            mailbox: MailboxName::new(m),
        }
    }

    #[test]
    fn a_done_entry_is_taken_back_whole_and_flags_travel_with_a_move() {
        assert_eq!(
            plan(&entry(flag_copy_move(), true), &[]),
            Plan::Parts(vec![moved_from("Archive"), copy_in("Acc")])
        );
        let flags = RulePlan {
            remove_flags: vec!["\\Seen".into()],
            ..RulePlan::default()
        };
        assert_eq!(
            plan(&entry(flags, true), &[]),
            Plan::Parts(vec![Part::Flags])
        );
    }

    #[test]
    fn delete_is_refused() {
        let p = RulePlan {
            copy: vec!["Acc".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Delete,
                mailbox: None,
            }),
            ..RulePlan::default()
        };
        assert!(matches!(plan(&entry(p, true), &[]), Plan::Refused(r) if r.contains("delete")));
    }

    #[test]
    fn a_part_failed_entry_takes_back_only_what_ran() {
        let e = entry(flag_copy_move(), false);
        // The copy ran, the move was refused: the copy goes, and the flags are restored
        // where the message still is.
        let steps = [
            step(Action::Copy, "INBOX", Some("Acc"), Outcome::Done),
            step(
                Action::Archive,
                "INBOX",
                Some("Archive"),
                Outcome::Failed("NO".into()),
            ),
        ];
        assert_eq!(
            plan(&e, &steps),
            Plan::Parts(vec![copy_in("Acc"), Part::Flags])
        );
        // A step a crash left undecided: left alone.
        let steps = [step(Action::Copy, "INBOX", Some("Acc"), Outcome::Unknown)];
        assert!(matches!(plan(&e, &steps), Plan::Refused(_)));
    }

    #[test]
    fn parts_an_earlier_undo_finished_are_not_done_again() {
        let e = entry(flag_copy_move(), true);
        let steps = [
            step(Action::Archive, "INBOX", Some("Archive"), Outcome::Done),
            step(Action::UndoMove, "Archive", Some("INBOX"), Outcome::Done),
            step(Action::UndoCopy, "Acc", None, Outcome::Intent),
        ];
        assert_eq!(plan(&e, &steps), Plan::Parts(vec![copy_in("Acc")]));
        let mut steps = steps.to_vec();
        steps.push(step(Action::UndoCopy, "Acc", None, Outcome::Done));
        assert_eq!(plan(&e, &steps), Plan::Done);
    }

    #[test]
    fn flag_changes_in_words() {
        let p = RulePlan {
            add_flags: vec!["$Urgent".into()],
            remove_flags: vec!["\\Seen".into()],
            add_labels: vec!["Work".into()],
            ..RulePlan::default()
        };
        assert_eq!(describe_flags(&p), "-$Urgent +\\Seen -label:Work");
    }
}
