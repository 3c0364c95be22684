//! The action journal: one row per action on one message, written as an *intent* before a
//! non-idempotent command (COPY, MOVE, EXPUNGE) and finished with its outcome afterwards.
//!
//! A crash between the two leaves the row at `intent`; before the mailbox is acted on again,
//! `crate::recover` reads [`StateDb::open_intents`](super::StateDb::open_intents), checks the
//! server (for a copy: is it above the batch's fence in the destination, see
//! `super::transfer`) and records `done`, `failed` or `unknown`.

use jiff::Timestamp;
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::history::{EntryId, decode_rules, encode_rules};
use super::{StateError, from_ms, opt_ts, ts};
use crate::vocab::{MailboxName, UidValidity};

/// The row id of a journal entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JournalId(pub i64);

/// What was (to be) done to a message, in the words of the rule language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Flag,
    Unflag,
    Label,
    Copy,
    Move,
    Archive,
    Trash,
    Delete,
    /// `imapsort undo`: a message a move, archive or trash left somewhere, moved back to the
    /// mailbox it came from.
    UndoMove,
    /// `imapsort undo`: a copy a rule made, deleted (`\Deleted` and `UID EXPUNGE`).
    UndoCopy,
    /// `imapsort undo`: flags a plan added removed, those it removed added again, labels it
    /// added removed (on a message no move took elsewhere).
    UndoFlags,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Flag => "flag",
            Action::Unflag => "unflag",
            Action::Label => "label",
            Action::Copy => "copy",
            Action::Move => "move",
            Action::Archive => "archive",
            Action::Trash => "trash",
            Action::Delete => "delete",
            Action::UndoMove => "undo_move",
            Action::UndoCopy => "undo_copy",
            Action::UndoFlags => "undo_flags",
        }
    }

    /// Whether the action is `imapsort undo` taking a rule's work back.
    pub fn is_undo(self) -> bool {
        matches!(
            self,
            Action::UndoMove | Action::UndoCopy | Action::UndoFlags
        )
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Action::Flag,
            Action::Unflag,
            Action::Label,
            Action::Copy,
            Action::Move,
            Action::Archive,
            Action::Trash,
            Action::Delete,
            Action::UndoMove,
            Action::UndoCopy,
            Action::UndoFlags,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

impl From<crate::rules::plan::FinalKind> for Action {
    fn from(kind: crate::rules::plan::FinalKind) -> Self {
        use crate::rules::plan::FinalKind;
        match kind {
            FinalKind::Move => Action::Move,
            FinalKind::Archive => Action::Archive,
            FinalKind::Trash => Action::Trash,
            FinalKind::Delete => Action::Delete,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an action ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    /// Written before the command; not known to have run yet.
    Intent,
    /// The server confirmed it.
    Done,
    /// The server refused it, or it could not be sent; the reason says why.
    Failed(String),
    /// A crash or lost connection hid the result and recovery could not tell.
    Unknown,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Intent => "intent",
            Outcome::Done => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Unknown => "unknown",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Failed(reason) => Some(reason),
            _ => None,
        }
    }

    fn from_columns(outcome: &str, reason: Option<String>) -> Option<Self> {
        Some(match outcome {
            "intent" => Outcome::Intent,
            "done" => Outcome::Done,
            "failed" => Outcome::Failed(reason.unwrap_or_default()),
            "unknown" => Outcome::Unknown,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Failed(reason) => write!(f, "failed: {reason}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// An action about to be taken (or just taken), as the caller describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewJournalEntry<'a> {
    /// The account's configured name.
    pub account: &'a str,
    /// Where the message is when the action starts.
    pub mailbox: &'a MailboxName,
    /// Ties `uid` to one life of the mailbox; recovery ignores UIDs of an older one.
    pub uid_validity: UidValidity,
    /// The message's UID in `mailbox`.
    pub uid: u32,
    /// As written, for people and for recognising the message after it moved.
    pub message_id: Option<&'a str>,
    /// The rules the action came from (a name may hold any character, commas too).
    pub rules: &'a [String],
    /// What is done.
    pub action: Action,
    /// The mailbox for copy / move / archive / trash; the flag or label for flag / unflag / label.
    pub destination: Option<&'a str>,
}

/// What ties a journal row to the rest: the history entry it is a step of, and for an undo
/// move the moved message's signature (size, arrival time, identifying headers), by which its
/// put-back copy is recognised when a crash hid the server's answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link<'a> {
    pub entry: Option<EntryId>,
    pub signature: Option<&'a str>,
}

impl Link<'_> {
    /// A step of `entry`.
    pub fn entry(entry: EntryId) -> Link<'static> {
        Link {
            entry: Some(entry),
            signature: None,
        }
    }
}

/// One row of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    /// Names the row for [`journal_outcome`](super::StateTx::journal_outcome).
    pub id: JournalId,
    /// When the intent (or the finished action) was written.
    #[serde(serialize_with = "ts")]
    pub at: Timestamp,
    /// As in [`NewJournalEntry`].
    pub account: String,
    /// As in [`NewJournalEntry`].
    pub mailbox: MailboxName,
    /// `None` only for rows written without one (never by this version).
    pub uid_validity: Option<UidValidity>,
    /// As in [`NewJournalEntry`].
    pub uid: u32,
    /// As in [`NewJournalEntry`].
    pub message_id: Option<String>,
    /// As in [`NewJournalEntry`].
    pub rules: Vec<String>,
    /// As in [`NewJournalEntry`].
    pub action: Action,
    /// As in [`NewJournalEntry`].
    pub destination: Option<String>,
    /// How it ended, or `Intent` while that is not known.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// When the outcome was recorded; `None` while it is an intent.
    #[serde(serialize_with = "opt_ts")]
    pub finished_at: Option<Timestamp>,
    /// The history entry this row is a step of (`None` for rows of older versions).
    pub entry: Option<EntryId>,
    /// See [`Link::signature`].
    #[serde(skip)]
    pub signature: Option<String>,
}

pub(super) const SELECT_COLUMNS: &str = "id, at, account, mailbox, uid_validity, uid, message_id, \
     rule, action, destination, outcome, reason, finished_at, entry, signature";

impl JournalEntry {
    /// Reads a row selected with [`SELECT_COLUMNS`].
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Result<Self, StateError>> {
        let action: String = row.get(8)?;
        let outcome: String = row.get(10)?;
        let Some(action) = Action::parse(&action) else {
            return Ok(Err(StateError::Corrupt(format!(
                "journal action {action:?}"
            ))));
        };
        let Some(outcome) = Outcome::from_columns(&outcome, row.get(11)?) else {
            return Ok(Err(StateError::Corrupt(format!(
                "journal outcome {outcome:?}"
            ))));
        };
        Ok(Ok(JournalEntry {
            id: JournalId(row.get(0)?),
            at: from_ms(row.get(1)?),
            account: row.get(2)?,
            mailbox: MailboxName::new(row.get::<_, String>(3)?),
            uid_validity: row.get::<_, Option<u32>>(4)?.and_then(UidValidity::new),
            uid: row.get(5)?,
            message_id: row.get(6)?,
            rules: decode_rules(&row.get::<_, String>(7)?),
            action,
            destination: row.get(9)?,
            outcome,
            finished_at: row.get::<_, Option<i64>>(12)?.map(from_ms),
            entry: row.get::<_, Option<i64>>(13)?.map(EntryId),
            signature: row.get(14)?,
        }))
    }
}

/// Inserts one row with the given outcome; `finished_at` is set unless it is an intent.
pub(super) fn insert(
    conn: &Connection,
    now: i64,
    entry: &NewJournalEntry<'_>,
    outcome: &Outcome,
    link: Link<'_>,
) -> Result<JournalId, StateError> {
    let finished = (*outcome != Outcome::Intent).then_some(now);
    let mut stmt = conn.prepare_cached(
        "INSERT INTO journal (at, account, mailbox, uid_validity, uid, message_id, rule, action, \
         destination, outcome, reason, finished_at, entry, signature) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    stmt.execute(params![
        now,
        entry.account,
        entry.mailbox.as_str(),
        entry.uid_validity.get(),
        entry.uid,
        entry.message_id,
        encode_rules(entry.rules),
        entry.action.as_str(),
        entry.destination,
        outcome.as_str(),
        outcome.reason(),
        finished,
        link.entry.map(|e| e.0),
        link.signature,
    ])?;
    Ok(JournalId(conn.last_insert_rowid()))
}

/// Records how an intent ended. An unknown id is an error: the caller holds ids it was given.
pub(super) fn set_outcome(
    conn: &Connection,
    now: i64,
    id: JournalId,
    outcome: &Outcome,
) -> Result<(), StateError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE journal SET outcome = ?2, reason = ?3, finished_at = ?4 WHERE id = ?1",
    )?;
    let finished = (*outcome != Outcome::Intent).then_some(now);
    let n = stmt.execute(params![id.0, outcome.as_str(), outcome.reason(), finished])?;
    if n == 0 {
        return Err(StateError::NoSuchJournalEntry(id.0));
    }
    Ok(())
}

/// Records how the intents with ids `first..=last` ended; every id of the range must exist.
pub(super) fn set_outcomes(
    conn: &Connection,
    now: i64,
    (first, last): (i64, i64),
    outcome: &Outcome,
) -> Result<(), StateError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE journal SET outcome = ?3, reason = ?4, finished_at = ?5 \
         WHERE id BETWEEN ?1 AND ?2",
    )?;
    let finished = (*outcome != Outcome::Intent).then_some(now);
    let n = stmt.execute(params![
        first,
        last,
        outcome.as_str(),
        outcome.reason(),
        finished
    ])?;
    if i64::try_from(n).ok() != Some(last - first + 1) {
        return Err(StateError::NoSuchJournalEntry(first));
    }
    Ok(())
}

/// Collects rows, turning a corrupt row into an error.
pub(super) fn collect(
    rows: impl Iterator<Item = rusqlite::Result<Result<JournalEntry, StateError>>>,
) -> Result<Vec<JournalEntry>, StateError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_column_text() {
        for action in [
            Action::Flag,
            Action::Unflag,
            Action::Label,
            Action::Copy,
            Action::Move,
            Action::Archive,
            Action::Trash,
            Action::Delete,
            Action::UndoMove,
            Action::UndoCopy,
            Action::UndoFlags,
        ] {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("shred"), None);
    }

    #[test]
    fn outcomes_round_trip_through_their_columns() {
        let cases = [
            Outcome::Intent,
            Outcome::Done,
            Outcome::Failed("NO [TRYCREATE] no such mailbox".into()),
            Outcome::Unknown,
        ];
        for outcome in cases {
            let back = Outcome::from_columns(outcome.as_str(), outcome.reason().map(String::from));
            assert_eq!(back, Some(outcome));
        }
        assert_eq!(Outcome::from_columns("maybe", None), None);
    }

    /// Regression (issue 11, item 7): names were joined with "," and split again, so a rule
    /// named "a, b" came back as two rules no one had.
    #[test]
    fn rule_names_round_trip_whatever_they_hold() {
        for names in [
            vec!["invoices, paper".to_string()],
            vec!["a".into(), "b,c".into(), "say \"hi\"".into(), "[x]".into()],
            vec![],
        ] {
            assert_eq!(decode_rules(&encode_rules(&names)), names);
        }
        assert_eq!(decode_rules("legacy"), ["legacy"]);
    }

    #[test]
    fn outcome_serializes_as_outcome_and_reason_fields() {
        let json = serde_json::to_value(Outcome::Failed("quota".into())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"outcome": "failed", "reason": "quota"})
        );
        let json = serde_json::to_value(Outcome::Done).unwrap();
        assert_eq!(json, serde_json::json!({"outcome": "done"}));
    }
}
