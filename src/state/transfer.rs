//! Transfers: what one batch sent into one destination, for exact crash identity (and for
//! undo, which must delete or move back exactly the copy a rule made).
//!
//! Before a batch's first copy-based command (a `copy`, a move that goes as `UID COPY` plus an
//! expunge), a row records the destination's *fence*: its UIDVALIDITY and UIDNEXT at that
//! moment, and the journal ids of the batch's intents. Every copy the batch makes there gets a
//! UID at or above the fence, so after a crash recovery looks only at what arrived since (never
//! at messages that were already there, such as an earlier copy of the same message). After
//! the commands, the server's COPYUID answers (source UID -> the copy's UID) are added to the
//! row with the batch's results; a `UID MOVE` (atomic, no fence needed) gets a row for them
//! alone.
//!
//! A batch with intents but no fence row for a destination never sent a copy there: the row
//! is durable before the command.

use rusqlite::{Connection, OptionalExtension, params};

use super::StateError;
use super::journal::JournalId;
use crate::imap::uidset::CopyUid;
use crate::vocab::{MailboxName, UidValidity};

/// One destination of one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub id: i64,
    pub destination: MailboxName,
    /// The journal ids of the batch's intents (every destination of the batch).
    pub first_intent: JournalId,
    pub last_intent: JournalId,
    /// The destination's UIDVALIDITY at the fence (`None`: created by the batch, or a row
    /// without a fence that COPYUID did not fill).
    pub dest_uid_validity: Option<u32>,
    /// The destination's UIDNEXT just before the batch's first copy there; `None`: no fence
    /// (only `UID MOVE`s went there).
    pub dest_uid_next: Option<u32>,
    /// (source UID, the copy's UID) the server reported, in order.
    pub copied: Vec<(u32, u32)>,
}

/// A batch's fence for one destination, as the caller took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewFence<'a> {
    pub destination: &'a str,
    pub dest_uid_validity: Option<u32>,
    pub dest_uid_next: u32,
}

/// Which batch a row belongs to: the source and the range of its intents' ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch<'a> {
    pub account: &'a str,
    pub mailbox: &'a MailboxName,
    pub uid_validity: UidValidity,
    pub intents: (JournalId, JournalId),
}

pub(super) const SELECT: &str = "SELECT id, destination, first_intent, last_intent, \
     dest_uid_validity, dest_uid_next, copied FROM transfer";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Transfer> {
    let copied: Option<String> = r.get(6)?;
    Ok(Transfer {
        id: r.get(0)?,
        destination: MailboxName::new(r.get::<_, String>(1)?),
        first_intent: JournalId(r.get(2)?),
        last_intent: JournalId(r.get(3)?),
        dest_uid_validity: r.get(4)?,
        dest_uid_next: r.get(5)?,
        copied: copied
            .as_deref()
            .map(CopyUid::decode_pairs)
            .unwrap_or_default(),
    })
}

/// Writes the fences of a batch (one row per destination).
pub(super) fn insert_fences(
    conn: &Connection,
    now: i64,
    batch: &Batch<'_>,
    fences: &[NewFence<'_>],
) -> Result<(), StateError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO transfer (at, account, mailbox, uid_validity, destination, first_intent, \
         last_intent, dest_uid_validity, dest_uid_next) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for f in fences {
        stmt.execute(params![
            now,
            batch.account,
            batch.mailbox.as_str(),
            batch.uid_validity.get(),
            MailboxName::new(f.destination).as_str(),
            batch.intents.0.0,
            batch.intents.1.0,
            f.dest_uid_validity,
            f.dest_uid_next,
        ])?;
    }
    Ok(())
}

/// Adds a command's COPYUID to its batch's row for `destination` (a row of its own when the
/// batch fenced nothing there: a `UID MOVE`).
pub(super) fn add_copies(
    conn: &Connection,
    now: i64,
    batch: &Batch<'_>,
    destination: &str,
    copies: &CopyUid,
) -> Result<(), StateError> {
    let destination = MailboxName::new(destination);
    let text = copies.encode_pairs();
    let row: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM transfer WHERE account = ?1 AND mailbox = ?2 AND destination = ?3 \
             AND first_intent = ?4 AND last_intent = ?5 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(
            params![
                batch.account,
                batch.mailbox.as_str(),
                destination.as_str(),
                batch.intents.0.0,
                batch.intents.1.0
            ],
            |r| r.get(0),
        )
        .optional()?;
    match row {
        Some(id) => {
            conn.prepare_cached(
                "UPDATE transfer SET copied = CASE WHEN copied IS NULL THEN ?2 \
                 ELSE copied || ',' || ?2 END, \
                 dest_uid_validity = coalesce(dest_uid_validity, ?3) WHERE id = ?1",
            )?
            .execute(params![id, text, copies.uid_validity])?;
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO transfer (at, account, mailbox, uid_validity, destination, \
                 first_intent, last_intent, dest_uid_validity, copied) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                now,
                batch.account,
                batch.mailbox.as_str(),
                batch.uid_validity.get(),
                destination.as_str(),
                batch.intents.0.0,
                batch.intents.1.0,
                copies.uid_validity,
                text,
            ])?;
        }
    }
    Ok(())
}

/// Rows read with [`SELECT`] and the given conditions.
pub(super) fn query(
    conn: &Connection,
    sql_where: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Transfer>, StateError> {
    let sql = format!("{SELECT} WHERE {sql_where} ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
