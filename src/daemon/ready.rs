//! Readiness: `READY=1` waits until every worker's first connection attempt has finished
//! (one that failed counts: the daemon is up, retrying).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Counts workers whose first connection attempt is still running; READY=1 waits for zero.
#[derive(Debug, Default)]
pub(crate) struct FirstAttempts {
    /// Workers still on their first attempt.
    pending: AtomicUsize,
    /// Woken at every decrement.
    pub(crate) changed: Notify,
}

/// Given to one worker; reports its first attempt finished (on [`FirstAttempt::done`] or drop).
#[derive(Debug)]
pub(crate) struct FirstAttempt {
    /// `None` once reported.
    counter: Option<Arc<FirstAttempts>>,
}

impl FirstAttempts {
    pub(crate) fn guard(self: &Arc<Self>) -> FirstAttempt {
        self.pending.fetch_add(1, Ordering::SeqCst);
        FirstAttempt {
            counter: Some(self.clone()),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

impl FirstAttempt {
    pub fn done(&mut self) {
        if let Some(c) = self.counter.take() {
            c.pending.fetch_sub(1, Ordering::SeqCst);
            c.changed.notify_waiters();
        }
    }
}

impl Drop for FirstAttempt {
    fn drop(&mut self) {
        self.done();
    }
}
