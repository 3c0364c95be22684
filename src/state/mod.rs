//! The state database: what imapsort remembers between runs.
//!
//! One SQLite file, `state_dir/state.sqlite3`, in WAL mode so `imapsort status` (and `sqlite3`)
//! can read while the daemon writes. It holds, per (account, mailbox), the UIDVALIDITY and the
//! last handled UID; the (rule, message) pairs already applied, so a sweep never applies a rule
//! twice; and the action journal (see [`JournalEntry`]). Times are stored as Unix milliseconds
//! (UTC); the views `mailbox_view` and `journal_view` show them as ISO 8601 for people.
//!
//! The API is synchronous. [`StateDb`] is `Send` (not `Sync`): async callers keep it behind a
//! mutex and call it from `spawn_blocking`. Each write method is one transaction; a batch of
//! writes that belong together (the results of one 500-message batch) goes through
//! [`StateDb::batch`], one transaction and so one fsync.
//!
//! Durability: `synchronous = FULL`, so a committed intent survives a power cut, not only a
//! crash of the process: the journal is only useful if it is on disk before the COPY is sent.

mod history;
mod journal;
mod report;
mod schema;
mod store;
mod transfer;
mod tx;

pub use history::{Entry, EntryId, NewEntry, OpenEntry, Placed, Selection};
pub use journal::{Action, JournalEntry, JournalId, Link, NewJournalEntry, Outcome};
pub use report::{AccountStatus, LastError, MailboxStatus, StatusReport};
pub use schema::CURRENT_VERSION as SCHEMA_VERSION;
pub use store::{Begun, Store};
pub use transfer::{Batch, NewFence, Transfer};
pub use tx::StateTx;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::vocab::{MailboxName, UidValidity};

/// The database file's name inside `state_dir`.
pub const FILE_NAME: &str = "state.sqlite3";

/// Errors of the state database. Messages never contain secrets (nothing secret is stored).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open state database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "state database schema version {found} is newer than this imapsort supports ({supported}); \
         upgrade imapsort"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error(
        "state database schema version {found} is older than this imapsort reads ({supported}); \
         start the daemon once to migrate it"
    )]
    SchemaTooOld { found: u32, supported: u32 },
    #[error(
        "UIDVALIDITY of {account}/{mailbox} is {stored} in the state database, not {given}; \
         reset the mailbox first"
    )]
    UidValidityMismatch {
        account: String,
        mailbox: String,
        stored: UidValidity,
        given: UidValidity,
    },
    #[error("there is no state database at {path} yet")]
    NoDatabase { path: PathBuf },
    #[error("no journal entry with id {0}")]
    NoSuchJournalEntry(i64),
    #[error("state database holds an unexpected value: {0}")]
    Corrupt(String),
}

impl StateError {
    /// True for errors that may go away on retry (another process holding the write lock).
    pub fn is_transient(&self) -> bool {
        let sqlite = match self {
            StateError::Sqlite(e) | StateError::Open { source: e, .. } => e,
            _ => return false,
        };
        matches!(
            sqlite.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// What the database knows of one mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxState {
    /// UIDs below are only meaningful while the server reports this UIDVALIDITY.
    pub uid_validity: UidValidity,
    /// Every message with a UID up to this one has been handled (0: none yet).
    pub last_uid: u32,
}

/// One (rule, message) pair to remember as applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied<'a> {
    /// The message, in the mailbox and UIDVALIDITY the call names.
    pub uid: u32,
    /// The rule's `name`.
    pub rule: &'a str,
    /// Kept so a message can be recognised after it moved (its UID changes, this does not).
    pub message_id: Option<&'a str>,
}

/// The `applied` row's `rule` that records a copy to `destination` as made for the message,
/// when the rule behind it could not be recorded as applied (its terminal action is still to
/// run): a retry's plan drops that copy. Starts with a control character, so no rule's name
/// (one line of YAML text) is mistaken for it.
pub fn copied_marker(destination: &str) -> String {
    format!("\u{1}copied {destination}")
}

/// The `applied` row's `rule` that marks a message `imapsort undo` put back into the mailbox
/// it came from (under a new UID): the daemon's new-mail pass leaves it alone, since it is
/// not new mail. Starts with a control character, like [`copied_marker`].
pub const RETURNED: &str = "\u{1}returned";

/// How much of the history (and the journal of its steps) to keep: `settings.history`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Entries and journal rows older than this are deleted (never an open one).
    pub max_age: Duration,
}

impl Default for Retention {
    /// `settings.history`'s default: 90 days.
    fn default() -> Self {
        Retention {
            max_age: crate::config::DEFAULT_HISTORY,
        }
    }
}

/// How often writes prune the journal (once a day).
const PRUNE_EVERY_MS: i64 = 24 * 3600 * 1000;

/// The source of "now"; replaceable so tests can age the journal.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// An open state database.
pub struct StateDb {
    /// The SQLite connection; `Send`, so the whole handle may move between threads.
    conn: Connection,
    /// Where the file is (`None` in memory), for messages.
    path: Option<PathBuf>,
    /// Gives the time stamps written to every row.
    clock: Clock,
    /// When the journal was last pruned (Unix ms); writes prune again once a day has passed.
    last_prune: i64,
    /// How long the history is kept (`settings.history`).
    retention: Retention,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("path", &self.path).finish()
    }
}

/// How long a write waits for another connection's (another process's) write lock before
/// it fails with "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The open intents of one mailbox (`?1` account, `?2` mailbox), oldest first. The partial
/// index of open intents, named: SQLite would rather walk every journal row of the mailbox in
/// id order (`journal_mailbox`, a million rows after a million-message sweep) for the
/// `ORDER BY`.
const OPEN_INTENTS_OF_MAILBOX: &str = "FROM journal INDEXED BY journal_intent \
    WHERE account = ?1 AND outcome = 'intent' AND mailbox = ?2 ORDER BY id";

/// The open intents of an account (`?1`), oldest first.
const UNFINISHED_INTENTS: &str =
    "FROM journal WHERE account = ?1 AND outcome = 'intent' ORDER BY id";

/// The open intents of an account (`?1`) into a destination (`?2`) by one action (`?3`),
/// oldest first: asked before every pass (`Sink::returning`).
const OPEN_INTENTS_INTO: &str = "FROM journal WHERE account = ?1 AND outcome = 'intent' \
    AND destination = ?2 AND action = ?3 ORDER BY id";

impl StateDb {
    /// Opens (creating if needed) `dir/state.sqlite3`; creates `dir` with mode 0700, migrates
    /// the schema and prunes the history with the default [`Retention`].
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        StateDb::open_with(dir, Retention::default())
    }

    /// [`open`](Self::open), keeping the history as long as `retention` says.
    pub fn open_with(dir: &Path, retention: Retention) -> Result<Self, StateError> {
        create_private_dir(dir)?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        if !existed {
            restrict_file(&path)?;
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL persists in the file; the rest are per-connection.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode = %mode, "state database not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        schema::migrate(&mut conn)?;
        let mut db = StateDb {
            conn,
            path: Some(path),
            clock: Arc::new(Timestamp::now),
            last_prune: 0,
            retention,
        };
        db.prune(retention)?;
        tracing::debug!(path = %dir.display(), "state database open");
        Ok(db)
    }

    /// Opens `dir/state.sqlite3` for reading only (`imapsort status`), without creating,
    /// migrating or writing anything: the daemon, possibly another user, owns the file.
    /// `Ok(None)` when there is no database yet.
    pub fn open_read_only(dir: &Path) -> Result<Option<Self>, StateError> {
        // Without a -wal file the database is complete in the main file; `immutable` then keeps
        // SQLite from creating -wal/-shm files owned by us, which the daemon could not open.
        let wal = dir.join(format!("{FILE_NAME}-wal"));
        Self::open_ro(dir, !wal.exists())
    }

    /// A second, read-only connection to a database this process has open for writing
    /// (`Store::read`): in WAL mode its reads do not wait for the writer's transactions, and
    /// see what was committed. `Ok(None)` when there is no database yet.
    pub fn open_reader(dir: &Path) -> Result<Option<Self>, StateError> {
        Self::open_ro(dir, false)
    }

    fn open_ro(dir: &Path, immutable: bool) -> Result<Option<Self>, StateError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        let uri = format!(
            "file:{}?mode=ro{}",
            uri_path(&path),
            if immutable { "&immutable=1" } else { "" }
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(&uri, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let found = schema::version(&conn)?;
        let supported = schema::CURRENT_VERSION;
        if found > supported {
            return Err(StateError::SchemaTooNew { found, supported });
        }
        if found < supported {
            return Err(StateError::SchemaTooOld { found, supported });
        }
        Ok(Some(StateDb {
            conn,
            path: Some(path),
            clock: Arc::new(Timestamp::now),
            last_prune: i64::MAX, // never writes
            retention: Retention::default(),
        }))
    }

    /// A fresh database in memory, for tests and `--dry-run`.
    pub fn open_in_memory() -> Result<Self, StateError> {
        let mut conn = Connection::open_in_memory()?;
        schema::migrate(&mut conn)?;
        Ok(StateDb {
            conn,
            path: None,
            clock: Arc::new(Timestamp::now),
            last_prune: 0,
            retention: Retention::default(),
        })
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self.last_prune = self.last_prune.min((self.clock)().as_millisecond());
        self
    }

    /// Keeps the history as long as `retention` says from now on (a reload changed
    /// `settings.history`).
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Starts a batch: every write through it commits together (or not at all, if it is
    /// dropped without [`StateTx::commit`]).
    pub fn batch(&mut self) -> Result<StateTx<'_>, StateError> {
        let now = (self.clock)().as_millisecond();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(StateTx { tx, now })
    }

    /// Runs one write in its own transaction; once a day, prunes the journal afterwards, so a
    /// daemon running for months keeps it bounded without having to remember to.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&StateTx<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let tx = self.batch()?;
        let out = f(&tx)?;
        let now = tx.now;
        tx.commit()?;
        if now.saturating_sub(self.last_prune) >= PRUNE_EVERY_MS {
            self.prune(self.retention)?;
        }
        Ok(out)
    }

    // ---- reads ----

    /// The mailbox's UIDVALIDITY and last handled UID; `None` if it was never selected.
    pub fn mailbox(
        &self,
        account: &str,
        mailbox: &MailboxName,
    ) -> Result<Option<MailboxState>, StateError> {
        let row = self
            .conn
            .query_row(
                "SELECT uid_validity, last_uid FROM mailbox WHERE account = ?1 AND mailbox = ?2",
                params![account, mailbox.as_str()],
                |r| Ok((r.get::<_, Option<u32>>(0)?, r.get::<_, u32>(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(validity, last_uid)| {
            validity
                .and_then(UidValidity::new)
                .map(|uid_validity| MailboxState {
                    uid_validity,
                    last_uid,
                })
        }))
    }

    /// For each of `uids`, the names of the rules already applied to it (UIDs with none are
    /// absent from the map), whatever message each record was made for.
    pub fn applied_rules(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        uids: &[u32],
    ) -> Result<HashMap<u32, HashSet<String>>, StateError> {
        let mut out: HashMap<u32, HashSet<String>> = HashMap::new();
        for (uid, rule, _) in self.applied_rows(account, mailbox, uid_validity, uids)? {
            out.entry(uid).or_default().insert(rule);
        }
        Ok(out)
    }

    /// For each (UID, Message-ID) of `messages`, the rules already applied to it — only
    /// records made for the same Message-ID count (absent: none). UIDs alone could mislead:
    /// two servers (a test server started again, a restored backup) can give the same
    /// account and mailbox the same UIDVALIDITY.
    pub fn applied_rules_to(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        messages: &[(u32, Option<&str>)],
    ) -> Result<HashMap<u32, HashSet<String>>, StateError> {
        let uids: Vec<u32> = messages.iter().map(|(u, _)| *u).collect();
        let ids: HashMap<u32, Option<&str>> = messages.iter().copied().collect();
        let mut out: HashMap<u32, HashSet<String>> = HashMap::new();
        for (uid, rule, id) in self.applied_rows(account, mailbox, uid_validity, &uids)? {
            if ids.get(&uid).is_some_and(|given| *given == id.as_deref()) {
                out.entry(uid).or_default().insert(rule);
            }
        }
        Ok(out)
    }

    /// The applied rows (UID, rule, Message-ID) of `uids`.
    fn applied_rows(
        &self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        uids: &[u32],
    ) -> Result<Vec<(u32, String, Option<String>)>, StateError> {
        // Bounded chunks keep each statement under SQLite's parameter limit.
        const CHUNK: usize = 500;
        let mut out = Vec::new();
        for chunk in uids.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT uid, rule, message_id FROM applied WHERE account = ? AND mailbox = ? \
                 AND uid_validity = ? AND uid IN ({marks})"
            );
            let mut values = vec![
                Value::Text(account.to_owned()),
                Value::Text(mailbox.to_string()),
                Value::Integer(uid_validity.get().into()),
            ];
            values.extend(chunk.iter().map(|&u| Value::Integer(u.into())));
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Journal rows of `account` in `mailbox` still at `intent`: commands that may or may not
    /// have run before a crash. Oldest first.
    pub fn open_intents(
        &self,
        account: &str,
        mailbox: &MailboxName,
    ) -> Result<Vec<JournalEntry>, StateError> {
        let sql = format!(
            "SELECT {} {OPEN_INTENTS_OF_MAILBOX}",
            journal::SELECT_COLUMNS
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![account, mailbox.as_str()], JournalEntry::from_row)?;
        journal::collect(rows)
    }

    /// The transfers of `account`'s `mailbox` whose batches wrote intents with ids from
    /// `first_intent` on: the fences and copies of the batches open intents belong to.
    pub fn transfers(
        &self,
        account: &str,
        mailbox: &MailboxName,
        first_intent: JournalId,
    ) -> Result<Vec<Transfer>, StateError> {
        transfer::query(
            &self.conn,
            "account = ?1 AND mailbox = ?2 AND last_intent >= ?3",
            params![account, mailbox.as_str(), first_intent.0],
        )
    }

    /// Every transfer of `account` into `destination` from row `from_id` on (any source
    /// mailbox): the copies already known there, which recovery must not take for others.
    pub fn transfers_into(
        &self,
        account: &str,
        destination: &MailboxName,
        from_id: i64,
    ) -> Result<Vec<Transfer>, StateError> {
        transfer::query(
            &self.conn,
            "account = ?1 AND destination = ?2 AND id >= ?3",
            params![account, destination.as_str(), from_id],
        )
    }

    /// Journal rows of `account` still at `intent`: commands that may or may not have run
    /// before a crash. Oldest first.
    pub fn unfinished_intents(&self, account: &str) -> Result<Vec<JournalEntry>, StateError> {
        let sql = format!("SELECT {} {UNFINISHED_INTENTS}", journal::SELECT_COLUMNS);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([account], JournalEntry::from_row)?;
        journal::collect(rows)
    }

    /// Everything `imapsort status` shows, with up to `recent` journal rows per mailbox.
    pub fn status(&self, recent: usize) -> Result<StatusReport, StateError> {
        report::build(&self.conn, recent)
    }

    /// History entries as `imapsort log` asks for them, newest first.
    pub fn history(&self, selection: &Selection) -> Result<Vec<Entry>, StateError> {
        history::select(&self.conn, selection)
    }

    /// The history entries with these ids (those that exist), in the order given.
    pub fn entries(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StateError> {
        history::by_ids(&self.conn, ids)
    }

    /// Per account: (account, entries kept, entries undone), sorted by account.
    pub fn history_counts(&self) -> Result<Vec<(String, u64, u64)>, StateError> {
        history::counts(&self.conn)
    }

    /// The journal rows of these entries (their steps), oldest first per entry.
    pub fn steps_of(&self, entries: &[EntryId]) -> Result<Vec<JournalEntry>, StateError> {
        steps_of(&self.conn, entries)
    }

    /// The fence of the batch whose step of `entry` (its last `action` to `destination`) went
    /// to `destination`: the destination's (UIDVALIDITY, UIDNEXT) before the batch's first
    /// copy there, when the batch took one.
    pub fn fence_of(
        &self,
        account: &str,
        entry: EntryId,
        action: Action,
        destination: &MailboxName,
    ) -> Result<Option<(Option<u32>, u32)>, StateError> {
        let step: Option<(i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT id, mailbox FROM journal WHERE entry = ?1 AND action = ?2 \
                 AND destination = ?3 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(
                params![entry.0, action.as_str(), destination.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((step, mailbox)) = step else {
            return Ok(None);
        };
        let rows = transfer::query(
            &self.conn,
            "account = ?1 AND mailbox = ?2 AND destination = ?3 AND first_intent <= ?4 \
             AND last_intent >= ?4 AND dest_uid_next IS NOT NULL",
            params![account, mailbox, destination.as_str(), step],
        )?;
        Ok(rows
            .first()
            .and_then(|t| t.dest_uid_next.map(|n| (t.dest_uid_validity, n))))
    }

    /// Open intents of `account` whose destination is `mailbox` and whose action is `action`
    /// (an undo move whose message is to come back into `mailbox`), oldest first.
    pub fn open_intents_into(
        &self,
        account: &str,
        mailbox: &MailboxName,
        action: Action,
    ) -> Result<Vec<JournalEntry>, StateError> {
        let sql = format!("SELECT {} {OPEN_INTENTS_INTO}", journal::SELECT_COLUMNS);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![account, mailbox.as_str(), action.as_str()],
            JournalEntry::from_row,
        )?;
        journal::collect(rows)
    }

    // ---- writes, each its own transaction (see StateTx for the batched forms) ----

    /// See [`StateTx::reset_mailbox`].
    pub fn reset_mailbox(
        &mut self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
    ) -> Result<(), StateError> {
        self.write(|tx| tx.reset_mailbox_at(account, mailbox, uid_validity, 0))
    }

    /// See [`StateTx::reset_mailbox_at`].
    pub fn reset_mailbox_at(
        &mut self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        last_uid: u32,
    ) -> Result<(), StateError> {
        self.write(|tx| tx.reset_mailbox_at(account, mailbox, uid_validity, last_uid))
    }

    /// See [`StateTx::set_last_uid`].
    pub fn set_last_uid(
        &mut self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        uid: u32,
    ) -> Result<u32, StateError> {
        self.write(|tx| tx.set_last_uid(account, mailbox, uid_validity, uid))
    }

    /// See [`StateTx::record_applied`].
    pub fn record_applied(
        &mut self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        applied: &[Applied<'_>],
    ) -> Result<(), StateError> {
        self.write(|tx| tx.record_applied(account, mailbox, uid_validity, applied))
    }

    /// See [`StateTx::forget_applied_except`].
    pub fn forget_applied_except(
        &mut self,
        account: &str,
        mailbox: &MailboxName,
        uid_validity: UidValidity,
        present: &[u32],
    ) -> Result<usize, StateError> {
        self.write(|tx| tx.forget_applied_except(account, mailbox, uid_validity, present))
    }

    /// See [`StateTx::record_fences`].
    pub fn record_fences(
        &mut self,
        batch: &Batch<'_>,
        fences: &[NewFence<'_>],
    ) -> Result<(), StateError> {
        self.write(|tx| tx.record_fences(batch, fences))
    }

    /// See [`StateTx::journal_intent`].
    pub fn journal_intent(&mut self, entry: &NewJournalEntry<'_>) -> Result<JournalId, StateError> {
        self.write(|tx| tx.journal_intent(entry))
    }

    /// See [`StateTx::journal_intents`].
    pub fn journal_intents(
        &mut self,
        entries: &[NewJournalEntry<'_>],
    ) -> Result<Vec<JournalId>, StateError> {
        self.write(|tx| tx.journal_intents(entries))
    }

    /// See [`StateTx::journal_record`].
    pub fn journal_record(
        &mut self,
        entry: &NewJournalEntry<'_>,
        outcome: &Outcome,
    ) -> Result<JournalId, StateError> {
        self.write(|tx| tx.journal_record(entry, outcome))
    }

    /// See [`StateTx::journal_outcome`].
    pub fn journal_outcome(&mut self, id: JournalId, outcome: &Outcome) -> Result<(), StateError> {
        self.write(|tx| tx.journal_outcome(id, outcome))
    }

    /// See [`StateTx::journal_outcomes`].
    pub fn journal_outcomes(
        &mut self,
        ids: &[JournalId],
        outcome: &Outcome,
    ) -> Result<(), StateError> {
        self.write(|tx| tx.journal_outcomes(ids, outcome))
    }

    /// See [`StateTx::record_error`].
    pub fn record_error(
        &mut self,
        account: &str,
        mailbox: &MailboxName,
        text: &str,
    ) -> Result<(), StateError> {
        self.write(|tx| tx.record_error(account, mailbox, text))
    }

    /// See [`StateTx::touch`].
    pub fn touch(&mut self, account: &str, mailbox: &MailboxName) -> Result<(), StateError> {
        self.write(|tx| tx.touch(account, mailbox))
    }

    /// A write that reaches the disk, to learn before acting whether the database can be
    /// written at all (a full disk, a read-only file system, a damaged file): the schema
    /// version, written again as it is, in a transaction of its own.
    pub fn check_writable(&mut self) -> Result<(), StateError> {
        let tx = self.batch()?;
        tx.tx
            .pragma_update(None, "user_version", schema::CURRENT_VERSION)?;
        tx.commit()
    }

    /// Deletes history entries and finished journal rows older than `retention` (an entry
    /// with an open intent stays, and so do open intents, whatever their age); returns how
    /// many rows went. [`StateDb::open`] does this once; writes do it again once a day.
    pub fn prune(&mut self, retention: Retention) -> Result<usize, StateError> {
        let cutoff = (self.clock)().as_millisecond()
            - i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let tx = self.batch()?;
        let now = tx.now;
        // Open intents are never pruned: they are what recovery still has to settle; nor is
        // an entry one of whose steps is open.
        let entries = tx.tx.execute(
            "DELETE FROM history WHERE at < ?1 AND NOT EXISTS (SELECT 1 FROM journal j \
             WHERE j.entry = history.id AND j.outcome = 'intent')",
            [cutoff],
        )?;
        let rows = tx.tx.execute(
            "DELETE FROM journal WHERE at < ?1 AND outcome <> 'intent'",
            [cutoff],
        )?;
        // A batch's transfers go with its intents: once none of them is open, by age.
        tx.tx.execute(
            "DELETE FROM transfer WHERE at < ?1 AND NOT EXISTS (SELECT 1 FROM journal j \
             WHERE j.outcome = 'intent' AND j.id BETWEEN transfer.first_intent \
             AND transfer.last_intent)",
            [cutoff],
        )?;
        tx.commit()?;
        self.last_prune = now;
        if entries + rows > 0 {
            tracing::info!(entries, journal_rows = rows, "pruned old history");
        }
        Ok(entries + rows)
    }
}

/// The journal rows of `entries`, oldest first per entry.
fn steps_of(conn: &Connection, entries: &[EntryId]) -> Result<Vec<JournalEntry>, StateError> {
    let sql = format!(
        "SELECT {} FROM journal WHERE entry = ?1 ORDER BY id",
        journal::SELECT_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = Vec::new();
    for e in entries {
        let rows = stmt.query_map([e.0], JournalEntry::from_row)?;
        out.extend(journal::collect(rows)?);
    }
    Ok(out)
}

/// Creates `dir` (and parents) with mode 0700; an existing directory is left as it is.
fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::CreateDir {
            path: dir.to_owned(),
            source,
        })
}

/// A new database file is readable by its owner only (the -wal/-shm files inherit this).
fn restrict_file(path: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        StateError::CreateDir {
            path: path.to_owned(),
            source,
        }
    })
}

/// Percent-encodes the characters that would end or confuse the path part of a SQLite URI.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b'%' | b'?' | b'#' | b'&' | b'=' | b'+' | b' ' => out.push_str(&format!("%{b:02X}")),
            b if b.is_ascii_graphic() => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(crate) fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Serializes a time stamp as RFC 3339 (jiff's serde support is not enabled).
pub(crate) fn ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

pub(crate) fn opt_ts<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// Row ids as runs of consecutive ids `(first, last)`, ascending, duplicates dropped: a batch's
/// rows were written together, so a few `WHERE id BETWEEN` statements update tens of thousands
/// of them instead of one statement each.
fn id_runs(ids: impl Iterator<Item = i64>) -> Vec<(i64, i64)> {
    let mut sorted: Vec<i64> = ids.collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for id in sorted {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

#[cfg(test)]
mod tests;
