//! The database schema and its migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. [`MIGRATIONS`] is append-only:
//! entry `i` takes a database from version `i` to `i + 1`. Opening a database runs the missing
//! steps in one transaction; a database written by a newer imapsort (a higher version than
//! [`CURRENT_VERSION`]) is refused rather than guessed at.

use rusqlite::Connection;

use super::StateError;

/// Each step, in order. Never edit a step that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: mailbox state, applied (rule, message) pairs, the action journal.
    r#"
    CREATE TABLE mailbox (
        account        TEXT    NOT NULL,
        mailbox        TEXT    NOT NULL,
        uid_validity   INTEGER,
        last_uid       INTEGER NOT NULL DEFAULT 0,
        last_activity  INTEGER,
        last_error     TEXT,
        last_error_at  INTEGER,
        PRIMARY KEY (account, mailbox)
    ) WITHOUT ROWID;

    CREATE TABLE applied (
        account       TEXT    NOT NULL,
        mailbox       TEXT    NOT NULL,
        uid_validity  INTEGER NOT NULL,
        uid           INTEGER NOT NULL,
        rule          TEXT    NOT NULL,
        message_id    TEXT,
        applied_at    INTEGER NOT NULL,
        PRIMARY KEY (account, mailbox, uid_validity, uid, rule)
    ) WITHOUT ROWID;
    CREATE INDEX applied_message_id ON applied (account, message_id);

    CREATE TABLE journal (
        id            INTEGER PRIMARY KEY,
        at            INTEGER NOT NULL,
        account       TEXT    NOT NULL,
        mailbox       TEXT    NOT NULL,
        uid_validity  INTEGER,
        uid           INTEGER NOT NULL,
        message_id    TEXT,
        rule          TEXT    NOT NULL,
        action        TEXT    NOT NULL,
        destination   TEXT,
        outcome       TEXT    NOT NULL CHECK (outcome IN ('intent', 'done', 'failed', 'unknown')),
        reason        TEXT,
        finished_at   INTEGER
    );
    CREATE INDEX journal_at ON journal (at);
    CREATE INDEX journal_mailbox ON journal (account, mailbox, id);
    CREATE INDEX journal_intent ON journal (account) WHERE outcome = 'intent';

    -- Human-readable views for `sqlite3`: times as UTC ISO 8601 instead of Unix milliseconds.
    CREATE VIEW mailbox_view AS
        SELECT account, mailbox, uid_validity, last_uid,
               strftime('%Y-%m-%dT%H:%M:%fZ', last_activity / 1000.0, 'unixepoch') AS last_activity,
               last_error,
               strftime('%Y-%m-%dT%H:%M:%fZ', last_error_at / 1000.0, 'unixepoch') AS last_error_at
        FROM mailbox;
    CREATE VIEW journal_view AS
        SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch') AS at,
               account, mailbox, uid_validity, uid, message_id, rule, action, destination,
               outcome, reason,
               strftime('%Y-%m-%dT%H:%M:%fZ', finished_at / 1000.0, 'unixepoch') AS finished_at
        FROM journal;
    "#,
    // 1 -> 2: INBOX has one spelling in every key (RFC 3501: the name INBOX is
    // case-insensitive). Before, the daemon keyed a mailbox by the spelling in `watch`, so
    // `inbox` and `INBOX` could both have rows; the one that got further is kept.
    r#"
    DELETE FROM mailbox WHERE upper(mailbox) = 'INBOX' AND EXISTS (
        SELECT 1 FROM mailbox o WHERE o.account = mailbox.account AND upper(o.mailbox) = 'INBOX'
        AND (o.last_uid > mailbox.last_uid
             OR (o.last_uid = mailbox.last_uid AND o.mailbox > mailbox.mailbox)));
    UPDATE mailbox SET mailbox = 'INBOX' WHERE upper(mailbox) = 'INBOX' AND mailbox <> 'INBOX';
    UPDATE OR IGNORE applied SET mailbox = 'INBOX'
        WHERE upper(mailbox) = 'INBOX' AND mailbox <> 'INBOX';
    DELETE FROM applied WHERE upper(mailbox) = 'INBOX' AND mailbox <> 'INBOX';
    UPDATE journal SET mailbox = 'INBOX' WHERE upper(mailbox) = 'INBOX' AND mailbox <> 'INBOX';
    UPDATE journal SET destination = 'INBOX'
        WHERE upper(destination) = 'INBOX' AND destination <> 'INBOX'
        AND action IN ('copy', 'move', 'archive', 'trash');
    "#,
    // 2 -> 3: the journal's rule names as a JSON array (they were joined with "," and split
    // on it, which broke names holding a comma). Old rows are split as they were read.
    r#"
    UPDATE journal SET rule = '["' || replace(replace(replace(rule, '\', '\\'), '"', '\"'),
                                               ',', '","') || '"]'
        WHERE rule NOT LIKE '[%';
    "#,
    // 3 -> 4: transfers: per batch and destination, the fence taken before the batch's first
    // copy there (UIDVALIDITY and UIDNEXT) and the COPYUID answers after (state/transfer.rs).
    r#"
    CREATE TABLE transfer (
        id                 INTEGER PRIMARY KEY,
        at                 INTEGER NOT NULL,
        account            TEXT    NOT NULL,
        mailbox            TEXT    NOT NULL,
        uid_validity       INTEGER NOT NULL,
        destination        TEXT    NOT NULL,
        first_intent       INTEGER NOT NULL,
        last_intent        INTEGER NOT NULL,
        dest_uid_validity  INTEGER,
        dest_uid_next      INTEGER,
        copied             TEXT
    );
    CREATE INDEX transfer_batch ON transfer (account, mailbox, last_intent);
    CREATE INDEX transfer_destination ON transfer (account, destination, id);
    "#,
    // 4 -> 5: the history (`imapsort log`, `imapsort undo`): one entry per message acted on,
    // with its From, Subject and plan, where the action left the message, and whether it was
    // undone; journal rows become the steps of an entry (state/history.rs). The journal's
    // rows so far become entries too, one per message and list of rules (without From and
    // Subject, which were not kept, and without the copies' UIDs).
    r#"
    CREATE TABLE history (
        id                 INTEGER PRIMARY KEY,
        at                 INTEGER NOT NULL,
        account            TEXT    NOT NULL,
        mailbox            TEXT    NOT NULL,
        uid_validity       INTEGER NOT NULL,
        uid                INTEGER NOT NULL,
        message_id         TEXT,
        from_address       TEXT,
        subject            TEXT,
        rules              TEXT    NOT NULL,
        plan               TEXT    NOT NULL,
        done               INTEGER NOT NULL DEFAULT 0,
        dest_uid_validity  INTEGER,
        dest_uid           INTEGER,
        copies             TEXT,
        undone_at          INTEGER
    );
    CREATE INDEX history_account ON history (account, id);
    CREATE INDEX history_at ON history (at);
    CREATE INDEX history_message ON history (account, mailbox, uid);

    ALTER TABLE journal ADD COLUMN entry INTEGER;
    ALTER TABLE journal ADD COLUMN signature TEXT;
    CREATE INDEX journal_entry ON journal (entry);

    INSERT INTO history (at, account, mailbox, uid_validity, uid, message_id, rules, plan, done)
    SELECT min(at), account, mailbox, uid_validity, uid, max(message_id), rule,
           json_object(
               'add_flags', json_group_array(destination) FILTER (WHERE action = 'flag'),
               'remove_flags', json_group_array(destination) FILTER (WHERE action = 'unflag'),
               'add_labels', json_group_array(destination) FILTER (WHERE action = 'label'),
               'copy', json_group_array(destination) FILTER (WHERE action = 'copy'),
               'final', json(CASE WHEN max(action IN ('move', 'archive', 'trash', 'delete'))
                   THEN json_object(
                       'action', max(CASE WHEN action IN ('move', 'archive', 'trash', 'delete')
                                     THEN action END),
                       'mailbox', max(CASE WHEN action IN ('move', 'archive', 'trash')
                                      THEN destination END))
                   END)),
           min(outcome = 'done')
    FROM journal WHERE uid_validity IS NOT NULL
    GROUP BY account, mailbox, uid_validity, uid, rule;
    UPDATE journal SET entry = (SELECT h.id FROM history h WHERE h.account = journal.account
        AND h.mailbox = journal.mailbox AND h.uid = journal.uid
        AND h.uid_validity = journal.uid_validity AND h.rules = journal.rule)
    WHERE uid_validity IS NOT NULL;

    DROP VIEW journal_view;
    CREATE VIEW journal_view AS
        SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch') AS at,
               account, mailbox, uid_validity, uid, message_id, rule, action, destination,
               outcome, reason,
               strftime('%Y-%m-%dT%H:%M:%fZ', finished_at / 1000.0, 'unixepoch') AS finished_at,
               entry
        FROM journal;
    CREATE VIEW history_view AS
        SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch') AS at,
               account, mailbox, uid_validity, uid, message_id, from_address, subject, rules,
               plan, done, dest_uid_validity, dest_uid, copies,
               strftime('%Y-%m-%dT%H:%M:%fZ', undone_at / 1000.0, 'unixepoch') AS undone_at
        FROM history;
    "#,
    // 5 -> 6: no query looks applied pairs up by Message-ID, and the index cost every sweep
    // a random-order insert per pair: at 250,000 messages a batch's result writes dirtied
    // thousands of its pages each, most of the time they took.
    r#"
    DROP INDEX IF EXISTS applied_message_id;
    "#,
];

/// The schema version this build reads and writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// The version a database is at (0 for a new, empty file).
pub fn version(conn: &Connection) -> Result<u32, StateError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(v).map_err(|_| StateError::Corrupt(format!("schema version {v}")))
}

/// Brings the database to [`CURRENT_VERSION`], in one transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StateError> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(StateError::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    if found == CURRENT_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Re-read inside the write lock: another process may have migrated meanwhile.
    let found = version(&tx)?;
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tracing::info!(from = step, to = step + 1, "state database schema migrated");
    }
    tx.pragma_update(None, "user_version", CURRENT_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_from_empty_reaches_current_version_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(version(&conn).unwrap(), 0);
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
        for table in [
            "mailbox",
            "applied",
            "journal",
            "transfer",
            "history",
            "mailbox_view",
            "journal_view",
            "history_view",
        ] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "{table} missing");
        }
    }

    #[test]
    fn inbox_rows_of_any_spelling_become_one_inbox() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO mailbox (account, mailbox, uid_validity, last_uid) VALUES
                 ('a', 'inbox', 7, 40), ('a', 'INBOX', 7, 12), ('b', 'Inbox', 3, 5),
                 ('b', 'Lists', 3, 9);
             INSERT INTO applied VALUES ('a', 'inbox', 7, 1, 'r', NULL, 0),
                 ('a', 'INBOX', 7, 1, 'r', NULL, 0), ('a', 'inbox', 7, 2, 'r', NULL, 0);
             INSERT INTO journal (at, account, mailbox, uid_validity, uid, rule, action,
                 destination, outcome) VALUES (0, 'a', 'iNbOx', 7, 1, 'r', 'move', 'inbox', 'done');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(
            rows("SELECT account || ' ' || mailbox || ' ' || last_uid FROM mailbox ORDER BY 1"),
            ["a INBOX 40", "b INBOX 5", "b Lists 9"]
        );
        assert_eq!(
            rows("SELECT mailbox || ' ' || uid FROM applied ORDER BY 1"),
            ["INBOX 1", "INBOX 2"]
        );
        assert_eq!(
            rows("SELECT mailbox || ' ' || destination FROM journal"),
            ["INBOX INBOX"]
        );
    }

    #[test]
    fn comma_joined_rule_names_become_json_lists() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            r#"INSERT INTO journal (at, account, mailbox, uid, rule, action, outcome) VALUES
                 (0, 'a', 'INBOX', 1, 'lists,invoices', 'move', 'done'),
                 (0, 'a', 'INBOX', 2, 'say "hi" \ bye', 'copy', 'intent');"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT rule FROM journal ORDER BY uid")
            .unwrap();
        let rules: Vec<Vec<String>> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|t| serde_json::from_str(&t.unwrap()).unwrap())
            .collect();
        assert_eq!(
            rules,
            [vec!["lists", "invoices"], vec![r#"say "hi" \ bye"#]]
        );
    }

    /// A database of version 4 keeps what its journal says as history entries: one per
    /// message and list of rules, with the plan its rows describe.
    #[test]
    fn the_journal_so_far_becomes_history_entries() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..4] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute_batch(
            r#"INSERT INTO journal (at, account, mailbox, uid_validity, uid, message_id, rule,
                   action, destination, outcome) VALUES
                 (10, 'a', 'INBOX', 7, 1, '<1@x>', '["invoices"]', 'copy', 'Accounting', 'done'),
                 (11, 'a', 'INBOX', 7, 1, '<1@x>', '["invoices"]', 'flag', '$Invoice', 'done'),
                 (12, 'a', 'INBOX', 7, 2, NULL, '["lists"]', 'move', 'Lists/x', 'done'),
                 (13, 'a', 'INBOX', 7, 3, '<3@x>', '["spam"]', 'trash', 'Trash', 'intent');"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT uid, at, rules, plan, done FROM history ORDER BY uid")
            .unwrap();
        let rows: Vec<(u32, i64, String, serde_json::Value, bool)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    serde_json::from_str(&r.get::<_, String>(3)?).unwrap(),
                    r.get(4)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].0, rows[0].1, rows[0].2.as_str()),
            (1, 10, r#"["invoices"]"#)
        );
        assert_eq!(
            rows[0].3,
            serde_json::json!({"add_flags": ["$Invoice"], "remove_flags": [], "add_labels": [],
                               "copy": ["Accounting"], "final": null})
        );
        assert!(rows[0].4);
        assert_eq!(
            rows[1].3["final"],
            serde_json::json!({"action": "move", "mailbox": "Lists/x"})
        );
        assert_eq!(rows[2].3["final"]["action"], "trash");
        assert!(!rows[2].4, "an open intent is not done");
        let plan: crate::rules::Plan = serde_json::from_value(rows[1].3.clone()).unwrap();
        assert_eq!(
            plan.final_action.unwrap().mailbox.as_deref(),
            Some("Lists/x")
        );
        let linked: i64 = conn
            .query_row(
                "SELECT count(*) FROM journal j JOIN history h ON h.id = j.entry \
                 WHERE h.uid = j.uid",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(linked, 4, "every journal row is a step of its entry");
    }

    /// Version 6 drops the applied pairs' Message-ID index; the pairs stay, and the lookups
    /// sweeps make still go by the primary key.
    #[test]
    fn the_unused_message_id_index_goes_and_the_pairs_stay() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..5] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch("INSERT INTO applied VALUES ('a', 'INBOX', 7, 1, 'r', '<1@x>', 10);")
            .unwrap();
        let index = |conn: &Connection| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'applied_message_id'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(index(&conn), 1);
        migrate(&mut conn).unwrap();
        assert_eq!(index(&conn), 0);
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT rule FROM applied WHERE account = 'a' \
                 AND mailbox = 'INBOX' AND uid_validity = 7 AND uid = 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("PRIMARY KEY"), "{plan}");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM applied", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, StateError::SchemaTooNew { found, .. } if found == CURRENT_VERSION + 1)
        );
    }
}
