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
            "mailbox_view",
            "journal_view",
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
