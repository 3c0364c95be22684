//! The state database as a pass uses it, in the daemon and in `imapsort sweep` alike: one
//! [`StateDb`] behind a mutex, opened on first use, every call on tokio's blocking pool
//! (SQLite with `synchronous = FULL` fsyncs; runtime threads must not wait for disks).
//!
//! Opening is retried at the next call when it failed: a database that cannot be created on
//! a full disk today can be once there is room. Read-only stores (`sweep --dry-run`) never
//! create, migrate or write anything.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{FILE_NAME, Retention, StateDb, StateError};

/// A cheap-to-clone handle on the state database of one state directory.
#[derive(Clone, Debug)]
pub struct Store {
    /// Shared by every clone: one connection per process and directory.
    inner: Arc<Inner>,
}

/// A call to the database under way ([`Store::begin`]).
#[derive(Debug)]
pub struct Begun<T>(tokio::task::JoinHandle<Result<T, StateError>>);

impl<T: Send + 'static> Begun<T> {
    /// A value that needs no database, in the same shape (a dry run journals nothing).
    pub fn ready(value: T) -> Begun<T> {
        Begun(tokio::task::spawn_blocking(move || Ok(value)))
    }

    /// Whether the call has ended ([`wait`](Self::wait) then returns at once).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Its result.
    pub async fn wait(self) -> Result<T, StateError> {
        self.0
            .await
            .unwrap_or_else(|join| Err(StateError::Corrupt(format!("state task failed: {join}"))))
    }
}

#[derive(Debug)]
struct Inner {
    /// The state directory.
    dir: PathBuf,
    /// Opened with [`StateDb::open_read_only`]: nothing is created or written.
    read_only: bool,
    /// `StateDb` is `Send` but not `Sync`: one caller at a time. `None` until opened.
    db: Mutex<Option<StateDb>>,
    /// A read-only connection for [`Store::read`], opened once the database exists.
    reader: Mutex<Option<StateDb>>,
    /// How long the history is kept (`settings.history`), for the database when it opens.
    retention: Mutex<Retention>,
}

impl Store {
    /// The database in `dir`, opened (created, migrated) at its first use.
    pub fn new(dir: &Path) -> Store {
        Store::with_mode(dir, false)
    }

    /// The database in `dir` for reading only; calls fail with [`StateError::NoDatabase`]
    /// while there is none.
    pub fn read_only(dir: &Path) -> Store {
        Store::with_mode(dir, true)
    }

    fn with_mode(dir: &Path, read_only: bool) -> Store {
        Store {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                read_only,
                db: Mutex::new(None),
                reader: Mutex::new(None),
                retention: Mutex::new(Retention::default()),
            }),
        }
    }

    /// Keeps the history for `history` (`settings.history`): from the next prune on, and
    /// when the database is opened.
    pub fn keep_history(self, history: std::time::Duration) -> Store {
        self.set_history(history);
        self
    }

    /// [`keep_history`](Self::keep_history) on a shared store (a reload changed the setting).
    pub fn set_history(&self, history: std::time::Duration) {
        let retention = Retention { max_age: history };
        *self
            .inner
            .retention
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = retention;
        if let Some(db) = self
            .inner
            .db
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            db.set_retention(retention);
        }
    }

    /// The database file, for messages (`state_dir/state.sqlite3`).
    pub fn file(&self) -> PathBuf {
        self.inner.dir.join(FILE_NAME)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether this store only reads.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Run `f` with the database right here, on the calling thread (synchronous callers).
    pub fn blocking<T>(
        &self,
        f: impl FnOnce(&mut StateDb) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        self.inner.with(f)
    }

    /// Run `f` with the database on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut StateDb) -> Result<T, StateError> + Send + 'static,
    {
        self.begin(f).wait().await
    }

    /// Run `f`, which only reads, on a connection of its own (a second one, read-only), so it
    /// does not wait while a write of [`begin`](Self::begin) runs: a pass looks up the rules
    /// applied to the next chunk of messages while the previous chunks' intents are written.
    /// It sees what was committed. Until the database exists, and for a read-only store, `f`
    /// runs on the main connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut StateDb) -> Result<T, StateError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.read(f))
            .await
            .unwrap_or_else(|join| Err(StateError::Corrupt(format!("state task failed: {join}"))))
    }

    /// Like [`call`](Self::call), but `f` starts on the blocking pool now, before the result
    /// is awaited, so the caller can do other work meanwhile (a pass evaluates the next
    /// messages while SQLite writes the intents of the last ones). `f` runs to its end even if
    /// the handle is dropped.
    pub fn begin<T, F>(&self, f: F) -> Begun<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut StateDb) -> Result<T, StateError> + Send + 'static,
    {
        let inner = self.inner.clone();
        Begun(tokio::task::spawn_blocking(move || inner.with(f)))
    }
}

impl Inner {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut StateDb) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut slot = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(self.open()?);
        }
        let db = slot.as_mut().expect("opened above");
        f(db)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut StateDb) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        if self.read_only {
            return self.with(f);
        }
        let mut slot = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            // Only once the writer made the database (created, migrated): a reader cannot.
            // A writer busy now has opened it (or is opening it: then the reader's schema
            // check fails, and this read goes through the writer).
            let opened = match self.db.try_lock() {
                Ok(db) => db.is_some(),
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().is_some(),
                Err(std::sync::TryLockError::WouldBlock) => true,
            };
            if opened {
                *slot = StateDb::open_reader(&self.dir).ok().flatten();
            }
        }
        match slot.as_mut() {
            Some(db) => f(db),
            None => {
                drop(slot);
                self.with(f)
            }
        }
    }

    fn open(&self) -> Result<StateDb, StateError> {
        if !self.read_only {
            let retention = *self.retention.lock().unwrap_or_else(|p| p.into_inner());
            return StateDb::open_with(&self.dir, retention);
        }
        StateDb::open_read_only(&self.dir)?.ok_or_else(|| StateError::NoDatabase {
            path: self.dir.join(FILE_NAME),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_opens_at_first_use_and_again_after_a_failed_open() {
        let parent = tempfile::tempdir().unwrap();
        // A file where the state directory should be: opening fails.
        let dir = parent.path().join("state");
        std::fs::write(&dir, b"in the way").unwrap();
        let store = Store::new(&dir);
        assert!(store.blocking(|db| db.status(1)).is_err());
        std::fs::remove_file(&dir).unwrap();
        let report = store.blocking(|db| db.status(1)).unwrap();
        assert!(report.accounts.is_empty());
        assert!(store.file().ends_with("state/state.sqlite3"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_does_not_wait_for_a_write_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        // Before the database exists, a read opens it through the writer.
        let report = store.read(|db| db.status(1)).await.unwrap();
        assert!(report.accounts.is_empty());
        // A write that holds the writer's connection until the test lets it go.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let write = store.begin(move |db| {
            wait.recv().ok();
            db.touch("acct", &crate::vocab::MailboxName::new("INBOX"))
        });
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            store.read(|db| db.status(1)),
        )
        .await
        .expect("the read waited for the write")
        .unwrap();
        assert!(read.accounts.is_empty(), "the write is not committed yet");
        release.send(()).unwrap();
        write.wait().await.unwrap();
        // Committed writes are seen by the reader.
        let after = store.read(|db| db.status(1)).await.unwrap();
        assert_eq!(after.accounts.len(), 1, "{after:?}");
    }

    #[test]
    fn a_read_only_store_without_a_database_says_so_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::read_only(dir.path());
        let err = store.blocking(|db| db.status(1)).unwrap_err();
        assert!(matches!(err, StateError::NoDatabase { .. }), "{err:?}");
        assert!(!store.file().exists());
    }
}
