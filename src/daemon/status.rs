//! What the daemon tells the outside about itself: counters ([`Stats`]) and, per account,
//! whether it can do its work ([`Health`], for `/health`'s `degraded`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters that tests and `STATUS=` lines read. Every field only grows.
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful logins, over all workers (a rules-only reload must not move it).
    pub connections: AtomicU64,
    /// Mailboxes a worker opened and recovered for the first time on its connection (from
    /// then on, new mail in them is handled whatever `first_start` says).
    pub mailboxes_selected: AtomicU64,
    /// Connection attempts that failed (unreachable, refused login).
    pub connection_failures: AtomicU64,
    /// Connections that came up and later ended (lost, or closed at shutdown).
    pub connections_ended: AtomicU64,
    /// Messages some rule acted on.
    pub messages_acted: AtomicU64,
    /// Reloads that produced a valid configuration (changed or not).
    pub reloads_applied: AtomicU64,
    /// Reloads refused because the new file was invalid.
    pub reloads_rejected: AtomicU64,
    /// Sweep passes completed.
    pub sweeps: AtomicU64,
    /// Mailboxes whose state was reset because UIDVALIDITY changed.
    pub uidvalidity_resets: AtomicU64,
    /// Times acting on a mailbox stopped because the state database could not be written.
    pub state_failures: AtomicU64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections up now (logins minus losses, never negative).
    pub(crate) fn connected(&self) -> u64 {
        Stats::get(&self.connections).saturating_sub(Stats::get(&self.connections_ended))
    }
}

/// Accounts that cannot do their work now, and why: for `/health` (`degraded`) and tests.
/// An account is degraded while the state database cannot be written: it then acts on
/// nothing (RULES.md: the state must be writable before the server is changed) and retries
/// with backoff.
#[derive(Debug, Default)]
pub struct Health {
    /// Account name -> why it is degraded.
    degraded: Mutex<BTreeMap<String, String>>,
}

impl Health {
    pub fn is_degraded(&self, account: &str) -> bool {
        self.lock().contains_key(account)
    }

    /// Marks `account` degraded; returns whether it was not already.
    pub(crate) fn set_degraded(&self, account: &str, why: String) -> bool {
        self.lock().insert(account.to_owned(), why).is_none()
    }

    /// `account` works again; returns whether it was degraded.
    pub(crate) fn recovered(&self, account: &str) -> bool {
        self.lock().remove(account).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.degraded.lock().unwrap_or_else(|p| p.into_inner())
    }
}
