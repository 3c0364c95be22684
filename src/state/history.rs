//! The history: one entry per message acted on, what `imapsort log` shows and `imapsort undo`
//! takes back.
//!
//! An entry holds where the message was when the rules acted (account, mailbox,
//! UIDVALIDITY, UID), its Message-ID, From address (lower-cased) and decoded Subject, the
//! rules, the plan (as `sweep --format json` writes it), whether the plan was carried out
//! (`done`), **where the action left the message** — the UIDVALIDITY and UID the server gave
//! the moved message and each copy (COPYUID) — and when it was undone.
//!
//! The journal's rows are the steps of an entry (`journal.entry`): the intents written
//! before the commands, the flag changes after them, and the steps of `imapsort undo`. An
//! entry is written with its intents, before any command; a plan retried after a failure
//! (the next pass, the daemon's retry) continues the same entry rather than starting
//! another, so the entry keeps the whole plan even when the retry has only what was left.

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{StateError, from_ms};
use crate::rules::Plan;
use crate::vocab::{MailboxName, UidValidity};

/// The row id of a history entry (what `imapsort log` prints and `undo --id` takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EntryId(pub i64);

/// A message acted on, as the pass describes it before its commands.
#[derive(Clone, Copy, Debug)]
pub struct NewEntry<'a> {
    pub account: &'a str,
    pub mailbox: &'a MailboxName,
    pub uid_validity: UidValidity,
    pub uid: u32,
    pub message_id: Option<&'a str>,
    /// The first From address, lower-cased.
    pub from: Option<&'a str>,
    /// The decoded Subject.
    pub subject: Option<&'a str>,
    pub rules: &'a [String],
    pub plan: &'a Plan,
}

/// Where an action left a message: a mailbox, its UIDVALIDITY and the message's UID there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    pub mailbox: String,
    pub uid_validity: u32,
    pub uid: u32,
}

/// One entry of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    /// When the rules acted (the first attempt, for a plan that was retried).
    pub at: Timestamp,
    pub account: String,
    /// Where the message was when the rules acted.
    pub mailbox: MailboxName,
    pub uid_validity: UidValidity,
    pub uid: u32,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub rules: Vec<String>,
    pub plan: Plan,
    /// The plan was carried out completely.
    pub done: bool,
    /// Where the move, archive or trash left the message (in the plan's final mailbox), when
    /// the server said (COPYUID) or recovery found it: (UIDVALIDITY, UID).
    pub moved_to: Option<(u32, u32)>,
    /// The copies made, where the server said they are.
    pub copies: Vec<Placed>,
    /// When `imapsort undo` took it back.
    pub undone_at: Option<Timestamp>,
}

impl Entry {
    /// The `copy` destinations of the plan with the UID the server gave each, when known.
    pub fn copy_placed(&self, destination: &str) -> Option<&Placed> {
        let destination = MailboxName::new(destination);
        self.copies
            .iter()
            .find(|p| MailboxName::new(p.mailbox.as_str()) == destination)
    }
}

/// Which entries `imapsort log` (and `undo --rule`, `--last`) wants, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only these accounts (`None`: all).
    pub accounts: Option<Vec<String>>,
    /// Only entries one of whose rules has this name.
    pub rule: Option<String>,
    /// Only entries from this time on.
    pub since: Option<Timestamp>,
    /// At most this many.
    pub limit: Option<u64>,
    /// Only entries done (and not failed part-way).
    pub done_only: bool,
}

const COLUMNS: &str = "id, at, account, mailbox, uid_validity, uid, message_id, from_address, \
     subject, rules, plan, done, dest_uid_validity, dest_uid, copies, undone_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Entry, StateError>> {
    let plan: String = r.get(10)?;
    let Ok(plan) = serde_json::from_str::<Plan>(&plan) else {
        return Ok(Err(StateError::Corrupt(format!("history plan {plan:?}"))));
    };
    let Some(uid_validity) = UidValidity::new(r.get(4)?) else {
        return Ok(Err(StateError::Corrupt("history UIDVALIDITY 0".into())));
    };
    let rules: String = r.get(9)?;
    let copies: Option<String> = r.get(14)?;
    let moved_to = match (r.get::<_, Option<u32>>(12)?, r.get::<_, Option<u32>>(13)?) {
        (Some(v), Some(u)) => Some((v, u)),
        _ => None,
    };
    Ok(Ok(Entry {
        id: EntryId(r.get(0)?),
        at: from_ms(r.get(1)?),
        account: r.get(2)?,
        mailbox: MailboxName::new(r.get::<_, String>(3)?),
        uid_validity,
        uid: r.get(5)?,
        message_id: r.get(6)?,
        from: r.get(7)?,
        subject: r.get(8)?,
        rules: decode_rules(&rules),
        plan,
        done: r.get(11)?,
        moved_to,
        copies: copies
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default(),
        undone_at: r.get::<_, Option<i64>>(15)?.map(from_ms),
    }))
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<Result<Entry, StateError>>>,
) -> Result<Vec<Entry>, StateError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

/// The entries `sel` asks for, newest first.
pub(super) fn select(conn: &Connection, sel: &Selection) -> Result<Vec<Entry>, StateError> {
    let mut sql = format!("SELECT {COLUMNS} FROM history WHERE 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(accounts) = &sel.accounts {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(" AND account IN (");
        sql.push_str(&vec!["?"; accounts.len()].join(","));
        sql.push(')');
        args.extend(accounts.iter().map(|a| Value::Text(a.clone())));
    }
    if let Some(rule) = &sel.rule {
        sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(history.rules) WHERE value = ?)");
        args.push(Value::Text(rule.clone()));
    }
    if let Some(since) = sel.since {
        sql.push_str(" AND at >= ?");
        args.push(Value::Integer(since.as_millisecond()));
    }
    if sel.done_only {
        sql.push_str(" AND done");
    }
    sql.push_str(" ORDER BY id DESC");
    if let Some(limit) = sel.limit {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), from_row)?;
    collect(rows)
}

/// The entries with these ids (those that exist), in the order given.
pub(super) fn by_ids(conn: &Connection, ids: &[EntryId]) -> Result<Vec<Entry>, StateError> {
    let mut out = Vec::with_capacity(ids.len());
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM history WHERE id = ?1"))?;
    for id in ids {
        if let Some(e) = stmt.query_row([id.0], from_row).optional()? {
            out.push(e?);
        }
    }
    Ok(out)
}

/// An entry not done yet, which a retried plan of its message continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenEntry {
    pub uid: u32,
    pub message_id: Option<String>,
    pub id: EntryId,
    pub plan: Plan,
    pub rules: Vec<String>,
}

/// The entries of `mailbox` not done yet for the given UIDs, oldest first.
pub(super) fn open_of(
    conn: &Connection,
    account: &str,
    mailbox: &MailboxName,
    uid_validity: UidValidity,
    uids: &[u32],
) -> Result<Vec<OpenEntry>, StateError> {
    const CHUNK: usize = 500;
    let mut out = Vec::new();
    for chunk in uids.chunks(CHUNK) {
        let sql = open_of_sql(chunk.len());
        let mut args = vec![
            Value::Text(account.to_owned()),
            Value::Text(mailbox.to_string()),
        ];
        args.extend(chunk.iter().map(|&u| Value::Integer(u.into())));
        args.push(Value::Integer(uid_validity.get().into()));
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let plan: String = r.get(3)?;
            let rules: String = r.get(4)?;
            let (Ok(plan), Ok(rules)) = (
                serde_json::from_str::<Plan>(&plan),
                serde_json::from_str::<Vec<String>>(&rules),
            ) else {
                continue;
            };
            out.push(OpenEntry {
                uid: r.get(0)?,
                message_id: r.get(1)?,
                id: EntryId(r.get(2)?),
                plan,
                rules,
            });
        }
    }
    out.sort_by_key(|o| o.id);
    Ok(out)
}

/// [`open_of`]'s query for `n` UIDs. Sorted by the caller: with `ORDER BY id` SQLite walks
/// the account's whole history in id order (`history_account`) instead of looking the UIDs
/// up (`history_message`), and every journal write of a sweep paid for every entry ever
/// written (0.45 s per 500 UIDs at a million entries).
fn open_of_sql(n: usize) -> String {
    let marks = vec!["?"; n].join(",");
    format!(
        "SELECT uid, message_id, id, plan, rules FROM history WHERE account = ? \
         AND mailbox = ? AND uid IN ({marks}) AND uid_validity = ? AND NOT done \
         AND undone_at IS NULL"
    )
}

/// The history's `rules` column and the journal's `rule` column: the rule names as a JSON array (`["a, b","c"]`), so that no character a
/// name may hold can split it.
pub(super) fn encode_rules(rules: &[String]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads the `rule` column (a JSON array; any other text is one name).
pub(super) fn decode_rules(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|_| vec![text.to_owned()])
}

/// Writes a new entry (not done yet).
pub(super) fn insert(conn: &Connection, now: i64, e: &NewEntry<'_>) -> Result<EntryId, StateError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO history (at, account, mailbox, uid_validity, uid, message_id, from_address, \
         subject, rules, plan) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    stmt.execute(params![
        now,
        e.account,
        e.mailbox.as_str(),
        e.uid_validity.get(),
        e.uid,
        e.message_id,
        e.from,
        e.subject,
        encode_rules(e.rules),
        plan_json(e.plan),
    ])?;
    Ok(EntryId(conn.last_insert_rowid()))
}

/// The plan as the history stores it (and `sweep --format json` prints it).
pub(super) fn plan_json(plan: &Plan) -> String {
    serde_json::to_string(plan).unwrap_or_else(|_| "{}".to_owned())
}

/// A retry of an entry's plan: the entry keeps everything the first attempt wanted and gains
/// what the retry adds (its From and Subject too, if it had none).
pub(super) fn extend(
    conn: &Connection,
    id: EntryId,
    old: (&Plan, &[String]),
    new: &NewEntry<'_>,
) -> Result<(), StateError> {
    let plan = union(old.0, new.plan);
    let mut rules = old.1.to_vec();
    for r in new.rules {
        if !rules.contains(r) {
            rules.push(r.clone());
        }
    }
    conn.prepare_cached(
        "UPDATE history SET plan = ?2, rules = ?3, from_address = coalesce(from_address, ?4), \
         subject = coalesce(subject, ?5) WHERE id = ?1",
    )?
    .execute(params![
        id.0,
        plan_json(&plan),
        encode_rules(&rules),
        new.from,
        new.subject
    ])?;
    Ok(())
}

/// Everything either plan does; the later final action when both have one.
fn union(old: &Plan, new: &Plan) -> Plan {
    let mut out = old.clone();
    let add = |list: &mut Vec<String>, more: &[String]| {
        for m in more {
            if !list.contains(m) {
                list.push(m.clone());
            }
        }
    };
    add(&mut out.add_flags, &new.add_flags);
    add(&mut out.remove_flags, &new.remove_flags);
    add(&mut out.add_labels, &new.add_labels);
    add(&mut out.copy, &new.copy);
    if new.final_action.is_some() {
        out.final_action = new.final_action.clone();
    }
    out
}

/// Marks entries done (their plans carried out completely).
pub(super) fn finish(conn: &Connection, ids: &[EntryId]) -> Result<(), StateError> {
    let mut stmt = conn.prepare_cached("UPDATE history SET done = 1 WHERE id BETWEEN ?1 AND ?2")?;
    for (first, last) in super::id_runs(ids.iter().map(|id| id.0)) {
        stmt.execute([first, last])?;
    }
    Ok(())
}

/// Records where the entry's move left the message.
pub(super) fn moved_to(
    conn: &Connection,
    id: EntryId,
    uid_validity: u32,
    uid: u32,
) -> Result<(), StateError> {
    conn.prepare_cached("UPDATE history SET dest_uid_validity = ?2, dest_uid = ?3 WHERE id = ?1")?
        .execute(params![id.0, uid_validity, uid])?;
    Ok(())
}

/// Records where one of the entry's copies is (replacing what was known of that mailbox).
pub(super) fn copied_to(conn: &Connection, id: EntryId, placed: &Placed) -> Result<(), StateError> {
    let old: Option<Option<String>> = conn
        .prepare_cached("SELECT copies FROM history WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?;
    let Some(old) = old else {
        return Ok(());
    };
    let mut copies: Vec<Placed> = old
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let key = MailboxName::new(placed.mailbox.as_str());
    copies.retain(|p| MailboxName::new(p.mailbox.as_str()) != key);
    copies.push(placed.clone());
    let text = serde_json::to_string(&copies).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached("UPDATE history SET copies = ?2 WHERE id = ?1")?
        .execute(params![id.0, text])?;
    Ok(())
}

/// Marks entries undone (every step of taking them back is done).
pub(super) fn undone(conn: &Connection, now: i64, ids: &[EntryId]) -> Result<(), StateError> {
    let mut stmt = conn
        .prepare_cached("UPDATE history SET undone_at = ?2 WHERE id = ?1 AND undone_at IS NULL")?;
    for id in ids {
        stmt.execute(params![id.0, now])?;
    }
    Ok(())
}

/// Per account: entries kept, and of those undone.
pub(super) fn counts(conn: &Connection) -> Result<Vec<(String, u64, u64)>, StateError> {
    let mut stmt = conn.prepare(
        "SELECT account, count(*), count(undone_at) FROM history GROUP BY account ORDER BY account",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?.max(0) as u64,
            r.get::<_, i64>(2)?.max(0) as u64,
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{FinalAction, FinalKind};
    use crate::state::{Action, JournalId, Link, NewJournalEntry, Outcome, Retention, StateDb};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    const DAY: i64 = 24 * 3600 * 1000;
    const START: i64 = 1_800_000_000_000;

    fn clocked() -> (StateDb, Arc<AtomicI64>) {
        let now = Arc::new(AtomicI64::new(START));
        let read = now.clone();
        let db = StateDb::open_in_memory()
            .unwrap()
            .with_clock(move || from_ms(read.load(Ordering::SeqCst)));
        (db, now)
    }

    /// Without statistics (imapsort never runs `ANALYZE`) SQLite must still look the UIDs up
    /// rather than walk the account's history; a walk cost 0.45 s per 500 UIDs at a million
    /// entries.
    #[test]
    fn open_entries_are_looked_up_by_uid() {
        let (db, _) = clocked();
        let mut args: Vec<Value> = vec![Value::Text("a".into()), Value::Text("INBOX".into())];
        args.extend((1..=3).map(Value::Integer));
        args.push(Value::Integer(7));
        let plan: String = db
            .conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN {}", open_of_sql(3)),
                rusqlite::params_from_iter(args),
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("history_message"), "{plan}");
    }

    fn moving(to: &str) -> Plan {
        Plan {
            add_flags: vec!["$Seen".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Move,
                mailbox: Some(to.into()),
            }),
            ..Plan::default()
        }
    }

    /// Writes an entry for `uid` in INBOX of `account`, by `rule`, with `plan`.
    fn add(db: &mut StateDb, account: &str, uid: u32, rule: &str, plan: &Plan) -> EntryId {
        let inbox = MailboxName::inbox();
        let rules = vec![rule.to_owned()];
        let tx = db.batch().unwrap();
        let id = tx
            .insert_entry(&NewEntry {
                account,
                mailbox: &inbox,
                uid_validity: UidValidity::new(7).unwrap(),
                uid,
                message_id: Some("<m@x>"),
                from: Some("a@b.example"),
                subject: Some("Grüße"),
                rules: &rules,
                plan,
            })
            .unwrap();
        tx.commit().unwrap();
        id
    }

    fn ids(entries: &[Entry]) -> Vec<i64> {
        entries.iter().map(|e| e.id.0).collect()
    }

    #[test]
    fn entries_come_back_as_written_newest_first_and_filtered() {
        let (mut db, now) = clocked();
        let a = add(&mut db, "personal", 1, "lists", &moving("Lists/x"));
        now.store(START + DAY, Ordering::SeqCst);
        let b = add(&mut db, "work", 2, "invoices, paper", &moving("Acc"));
        now.store(START + 2 * DAY, Ordering::SeqCst);
        let c = add(&mut db, "personal", 3, "invoices, paper", &Plan::default());
        let all = db.history(&Selection::default()).unwrap();
        assert_eq!(ids(&all), [c.0, b.0, a.0]);
        let first = &all[2];
        assert_eq!(first.plan, moving("Lists/x"));
        assert_eq!(first.rules, ["lists"]);
        assert_eq!(first.from.as_deref(), Some("a@b.example"));
        assert_eq!(first.subject.as_deref(), Some("Grüße"));
        assert_eq!(first.at.as_millisecond(), START);
        assert!(!first.done && first.undone_at.is_none() && first.moved_to.is_none());

        let sel = |f: &dyn Fn(&mut Selection)| {
            let mut s = Selection::default();
            f(&mut s);
            ids(&db.history(&s).unwrap())
        };
        assert_eq!(
            sel(&|s| s.accounts = Some(vec!["personal".into()])),
            [c.0, a.0]
        );
        // A rule name holding a comma is one name.
        assert_eq!(
            sel(&|s| s.rule = Some("invoices, paper".into())),
            [c.0, b.0]
        );
        assert_eq!(
            sel(&|s| s.rule = Some("invoices".into())),
            Vec::<i64>::new()
        );
        assert_eq!(sel(&|s| s.since = Some(from_ms(START + DAY))), [c.0, b.0]);
        assert_eq!(sel(&|s| s.limit = Some(1)), [c.0]);
        assert_eq!(sel(&|s| s.accounts = Some(vec![])), Vec::<i64>::new());
    }

    #[test]
    fn an_entry_is_finished_placed_and_undone() {
        let (mut db, _) = clocked();
        let plan = Plan {
            copy: vec!["Acc".into()],
            ..moving("Lists/x")
        };
        let id = add(&mut db, "personal", 1, "r", &plan);
        let tx = db.batch().unwrap();
        tx.finish_entries(&[id]).unwrap();
        tx.entry_moved_to(id, 9, 41).unwrap();
        let placed = |uid| Placed {
            mailbox: "Acc".into(),
            uid_validity: 3,
            uid,
        };
        tx.entry_copied_to(id, &placed(5)).unwrap();
        tx.entry_copied_to(id, &placed(6)).unwrap();
        tx.commit().unwrap();
        let e = &db.entries(&[id, EntryId(999)]).unwrap()[0];
        assert!(e.done);
        assert_eq!(e.moved_to, Some((9, 41)));
        assert_eq!(
            e.copies,
            [placed(6)],
            "one copy per mailbox, the latest word"
        );
        assert_eq!(e.copy_placed("Acc"), Some(&placed(6)));
        assert_eq!(db.history_counts().unwrap(), [("personal".into(), 1, 0)]);
        let tx = db.batch().unwrap();
        tx.mark_undone(&[id]).unwrap();
        tx.commit().unwrap();
        assert!(db.entries(&[id]).unwrap()[0].undone_at.is_some());
        assert_eq!(db.history_counts().unwrap(), [("personal".into(), 1, 1)]);
    }

    #[test]
    fn a_retry_continues_the_open_entry_of_its_message() {
        let (mut db, _) = clocked();
        let id = add(&mut db, "personal", 1, "r", &moving("Lists/x"));
        let inbox = MailboxName::inbox();
        let v = UidValidity::new(7).unwrap();
        let tx = db.batch().unwrap();
        let open = tx.open_entries("personal", &inbox, v, &[1, 2]).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].uid, open[0].id), (1, id));
        let retry = Plan {
            add_flags: vec![],
            ..moving("Lists/x")
        };
        let rules = vec!["r".to_string(), "s".to_string()];
        tx.extend_entry(
            id,
            (&open[0].plan, &open[0].rules),
            &NewEntry {
                account: "personal",
                mailbox: &inbox,
                uid_validity: v,
                uid: 1,
                message_id: Some("<m@x>"),
                from: None,
                subject: None,
                rules: &rules,
                plan: &retry,
            },
        )
        .unwrap();
        tx.finish_entries(&[id]).unwrap();
        assert!(
            tx.open_entries("personal", &inbox, v, &[1])
                .unwrap()
                .is_empty()
        );
        tx.commit().unwrap();
        let e = &db.entries(&[id]).unwrap()[0];
        assert_eq!(
            e.plan,
            moving("Lists/x"),
            "the first attempt's flag is kept"
        );
        assert_eq!(e.rules, ["r", "s"]);
        assert_eq!(e.from.as_deref(), Some("a@b.example"));
    }

    /// `history` prunes entries by age, never one with an open step.
    #[test]
    fn pruning_by_history_never_removes_an_open_entry() {
        let (mut db, now) = clocked();
        let old_done = add(&mut db, "personal", 1, "r", &moving("X"));
        let old_open = add(&mut db, "personal", 2, "r", &moving("X"));
        let inbox = MailboxName::inbox();
        let rules = vec!["r".to_string()];
        let tx = db.batch().unwrap();
        let step = |uid| NewJournalEntry {
            account: "personal",
            mailbox: &inbox,
            uid_validity: UidValidity::new(7).unwrap(),
            uid,
            message_id: None,
            rules: &rules,
            action: Action::Move,
            destination: Some("X"),
        };
        tx.journal_step(Link::entry(old_done), &step(1), &Outcome::Done)
            .unwrap();
        let open: JournalId = tx
            .journal_step(Link::entry(old_open), &step(2), &Outcome::Intent)
            .unwrap();
        tx.commit().unwrap();
        now.store(START + 10 * DAY, Ordering::SeqCst);
        let fresh = add(&mut db, "personal", 3, "r", &moving("X"));
        now.store(START + 8 * DAY + 10 * DAY, Ordering::SeqCst);
        let week = Retention {
            max_age: std::time::Duration::from_secs(9 * 24 * 3600),
        };
        db.prune(week).unwrap();
        let left = ids(&db.history(&Selection::default()).unwrap());
        assert_eq!(left, [fresh.0, old_open.0]);
        assert_eq!(db.steps_of(&[old_open]).unwrap()[0].id, open);
        assert!(db.steps_of(&[old_done]).unwrap().is_empty());
        // Settled, it goes at the next prune.
        db.journal_outcome(open, &Outcome::Done).unwrap();
        db.prune(week).unwrap();
        assert_eq!(ids(&db.history(&Selection::default()).unwrap()), [fresh.0]);
    }

    #[test]
    fn a_retry_keeps_the_whole_plan() {
        let first = Plan {
            add_flags: vec!["\\Flagged".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Move,
                mailbox: Some("A".into()),
            }),
            ..Plan::default()
        };
        // The flag is there now, so the retry plans only the move.
        let retry = Plan {
            final_action: first.final_action.clone(),
            copy: vec!["C".into()],
            ..Plan::default()
        };
        let both = union(&first, &retry);
        assert_eq!(both.add_flags, ["\\Flagged"]);
        assert_eq!(both.copy, ["C"]);
        assert_eq!(both.final_action, first.final_action);
    }
}
