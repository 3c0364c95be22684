//! What `imapsort status` shows: per account and mailbox, what the database knows.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rusqlite::Connection;
use serde::Serialize;

use super::journal::{self, JournalEntry};
use super::{StateError, from_ms, opt_ts, ts};

/// Everything the state database knows, by account then mailbox (both sorted by name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    /// Every account the database knows, sorted by name.
    pub accounts: Vec<AccountStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    /// The account's `name` in the configuration.
    pub account: String,
    /// Its mailboxes with any state, sorted by name.
    pub mailboxes: Vec<MailboxStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MailboxStatus {
    /// UTF-8, `/`-separated, as in the configuration.
    pub mailbox: String,
    /// `None` until the mailbox was first selected.
    pub uid_validity: Option<u32>,
    /// `None` until the mailbox was first selected; 0 before any message was handled.
    pub last_uid: Option<u32>,
    /// When its worker last did something; `None` if never.
    #[serde(serialize_with = "opt_ts")]
    pub last_activity: Option<Timestamp>,
    /// The latest error, kept until the next one so a past problem stays visible.
    pub last_error: Option<LastError>,
    /// Intents never finished (a crash or lost connection); settled before the mailbox is
    /// acted on again.
    pub unfinished: u64,
    /// The newest journal rows of this mailbox, newest first.
    pub recent_actions: Vec<JournalEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// When it happened.
    #[serde(serialize_with = "ts")]
    pub at: Timestamp,
    /// What went wrong (never holds secrets).
    pub text: String,
}

type Key = (String, String);

pub(super) fn build(conn: &Connection, recent: usize) -> Result<StatusReport, StateError> {
    let mut boxes: BTreeMap<Key, MailboxStatus> = BTreeMap::new();
    let empty = |mailbox: &str| MailboxStatus {
        mailbox: mailbox.to_owned(),
        uid_validity: None,
        last_uid: None,
        last_activity: None,
        last_error: None,
        unfinished: 0,
        recent_actions: Vec::new(),
    };

    let mut stmt = conn.prepare(
        "SELECT account, mailbox, uid_validity, last_uid, last_activity, last_error, \
         last_error_at FROM mailbox",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (account, mailbox): (String, String) = (r.get(0)?, r.get(1)?);
        let uid_validity: Option<u32> = r.get(2)?;
        let text: Option<String> = r.get(5)?;
        let at: Option<i64> = r.get(6)?;
        let status = MailboxStatus {
            uid_validity,
            last_uid: uid_validity.map(|_| r.get(3)).transpose()?,
            last_activity: r.get::<_, Option<i64>>(4)?.map(from_ms),
            last_error: text.zip(at).map(|(text, at)| LastError {
                at: from_ms(at),
                text,
            }),
            ..empty(&mailbox)
        };
        boxes.insert((account, mailbox), status);
    }

    let mut stmt = conn.prepare(
        "SELECT account, mailbox, count(*) FROM journal WHERE outcome = 'intent' \
         GROUP BY account, mailbox",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (account, mailbox): (String, String) = (r.get(0)?, r.get(1)?);
        let n: i64 = r.get(2)?;
        boxes
            .entry((account, mailbox.clone()))
            .or_insert_with(|| empty(&mailbox))
            .unfinished = u64::try_from(n).unwrap_or(0);
    }

    if recent > 0 {
        let sql = format!(
            "SELECT {cols} FROM (SELECT *, row_number() OVER \
             (PARTITION BY account, mailbox ORDER BY id DESC) AS rn FROM journal) \
             WHERE rn <= ?1 ORDER BY account, mailbox, id DESC",
            cols = journal::SELECT_COLUMNS
        );
        let mut stmt = conn.prepare(&sql)?;
        let limit = i64::try_from(recent).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], JournalEntry::from_row)?;
        for entry in journal::collect(rows)? {
            let key = (entry.account.clone(), entry.mailbox.to_string());
            boxes
                .entry(key)
                .or_insert_with(|| empty(&entry.mailbox))
                .recent_actions
                .push(entry);
        }
    }

    let mut accounts: Vec<AccountStatus> = Vec::new();
    for ((account, _), status) in boxes {
        match accounts.last_mut() {
            Some(last) if last.account == account => last.mailboxes.push(status),
            _ => accounts.push(AccountStatus {
                account,
                mailboxes: vec![status],
            }),
        }
    }
    Ok(StatusReport { accounts })
}
