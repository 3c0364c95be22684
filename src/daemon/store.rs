//! The state database as the daemon's workers share it: one [`StateDb`] behind a mutex, each
//! call run on the blocking pool (SQLite with `synchronous = FULL` fsyncs; async threads must
//! not wait for disks).

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::state::{StateDb, StateError};

/// A cheap-to-clone handle on the state database.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    /// `StateDb` is `Send` but not `Sync`: one caller at a time.
    db: Arc<Mutex<StateDb>>,
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, StateError> {
        Ok(Store {
            db: Arc::new(Mutex::new(StateDb::open(state_dir)?)),
        })
    }

    /// Run `f` with the database right here (short writes from synchronous callbacks; the
    /// WAL keeps them to one fsync per transaction).
    pub fn blocking<T>(
        &self,
        f: impl FnOnce(&mut StateDb) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut db)
    }

    /// Run `f` with the database on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut StateDb) -> Result<T, StateError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut db)
        })
        .await
        .unwrap_or_else(|join| Err(StateError::Corrupt(format!("state task failed: {join}"))))
    }
}
