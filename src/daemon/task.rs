//! What every worker shares and works with, below the worker and the poller that use it: the
//! live rules and settings, the state and lock handles, the worker's identity, why serving a
//! connection stopped, and the account's health while the state database cannot be written.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, BackoffPolicy};
use super::heartbeat::{Heartbeat, Heartbeats, sleep_away};
use super::mailbox::{Ctx, MailboxError};
use super::metrics::{ErrorKind, Link, Metrics};
use super::pacing::Pacer;
use super::status::{Health, Stats};
use crate::config::{Account, Settings};
use crate::imap::ImapError;
use crate::lock::Locks;
use crate::logging::chain;
use crate::rules::RuleSet;
use crate::state::Store;
use crate::vocab::MailboxName;

/// What a reload can change without restarting workers.
#[derive(Debug)]
pub(crate) struct Live {
    /// The compiled rules; a worker takes a snapshot at the start of each batch.
    pub rules: Arc<RuleSet>,
    /// `sweep_interval` and `idle_refresh` are read from here at each use.
    pub settings: Settings,
}

/// What every worker shares.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    /// Relative `password: { file: }` paths are resolved against it.
    pub config_dir: PathBuf,
    /// The rules and live settings in force.
    pub live: watch::Receiver<Arc<Live>>,
    /// Counters for tests and STATUS=.
    pub stats: Arc<Stats>,
    /// Which accounts cannot work now (the state database is not writable).
    pub health: Arc<Health>,
    /// For the watchdog.
    pub heartbeats: Heartbeats,
    /// Reconnect backoff shape.
    pub backoff: BackoffPolicy,
    /// How long a batch in flight may go on after cancellation.
    pub batch_grace: Duration,
    /// The state database.
    pub state: Store,
    /// Who acts on which mailbox, between the processes sharing the state directory.
    pub locks: Locks,
    /// `/metrics` and `/health`.
    pub metrics: Metrics,
    /// Connection attempts per host.
    pub pacer: Pacer,
}

/// What a worker does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WorkerKind {
    /// Hold an IDLE connection on this mailbox.
    Idle(MailboxName),
    /// Poll these watched mailboxes (beyond `max_connections`), and sweep mailboxes that only
    /// sweep rules name.
    Poller(Vec<MailboxName>),
}

impl std::fmt::Display for WorkerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerKind::Idle(m) => write!(f, "idle {m}"),
            WorkerKind::Poller(_) => f.write_str("poller"),
        }
    }
}

/// Why a worker task ended.
#[derive(Debug)]
pub(crate) enum WorkerExit {
    /// Its token was cancelled: shutdown, or its account was stopped or changed.
    Cancelled,
    /// A bug.
    Panicked(String),
}

impl std::fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerExit::Cancelled => f.write_str("cancelled"),
            WorkerExit::Panicked(why) => write!(f, "panicked: {why}"),
        }
    }
}

/// Why serving a connection stopped.
pub(crate) enum Served {
    /// Cancelled: log out and end.
    Cancelled,
    /// The connection is unusable (or a command failed in a way a new connection may fix).
    Lost(ImapError),
    /// A poller whose work a reload took away: log out and wait without a connection.
    NoWork,
    /// Cancelled in the middle of a command: the connection is in an unknown state, so it is
    /// dropped without LOGOUT.
    Abandoned,
}

/// One worker's identity and shared handles, for the length of its task.
pub(crate) struct Task {
    /// The account it serves (a changed account gets new workers).
    pub account: Arc<Account>,
    /// What all workers share.
    pub shared: Shared,
    /// Cancelled at shutdown or when the account is stopped.
    pub token: CancellationToken,
    /// Alive-signal for the watchdog.
    pub hb: Heartbeat,
    /// This worker's metrics and its part of the account's connection state.
    pub link: Arc<Link>,
    /// Retries while the state database cannot be written.
    state_backoff: Backoff,
    /// The state database failed and has not taken a write since.
    degraded: bool,
}

/// What to do after acting on a mailbox failed.
pub(crate) enum Failed {
    /// The state database cannot be written: act on nothing, try again after this long
    /// (on the same connection).
    Retry(Duration),
    /// End serving this connection.
    Stop(Served),
}

impl Task {
    pub fn new(
        account: Arc<Account>,
        shared: Shared,
        token: CancellationToken,
        hb: Heartbeat,
        link: Arc<Link>,
    ) -> Task {
        Task {
            state_backoff: Backoff::new(shared.backoff),
            account,
            shared,
            token,
            hb,
            link,
            degraded: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.account.name
    }

    pub fn live(&self) -> Arc<Live> {
        self.shared.live.borrow().clone()
    }

    /// Whether the next attempt must write to the state database before anything else.
    pub fn degraded(&self) -> bool {
        self.degraded
    }

    /// What acting on a mailbox needs, for `mailbox` under the `live` rules.
    pub fn ctx<'a>(&'a self, live: &'a Live, mailbox: &'a MailboxName) -> Ctx<'a> {
        Ctx {
            account: &self.account,
            mailbox,
            rules: &live.rules,
            store: &self.shared.state,
            locks: &self.shared.locks,
            stats: &self.shared.stats,
            token: &self.token,
            grace: self.shared.batch_grace,
            hb: &self.hb,
            link: &self.link,
        }
    }

    /// Acting on `mailbox` worked (`last_success`); the state database takes writes again.
    pub fn acted(&mut self) {
        self.link.success();
        if std::mem::take(&mut self.degraded) {
            self.state_backoff.reset();
            self.shared.health.recovered(&self.account.name);
            tracing::info!(
                account = self.name(),
                "the state database is writable again; acting on mail again"
            );
        }
    }

    /// Acting on `mailbox` failed: what to do now. A state database that cannot be written
    /// degrades the account (logged once per episode) and is tried again with backoff.
    pub fn failed(&mut self, mailbox: &MailboxName, e: MailboxError) -> Failed {
        match e {
            e @ (MailboxError::State { .. } | MailboxError::Lock(_)) => {
                let delay = self.state_backoff.failed();
                let why = chain(&e);
                Stats::bump(&self.shared.stats.state_failures);
                self.link.error(ErrorKind::State, &why);
                self.degraded = true;
                if self
                    .shared
                    .health
                    .set_degraded(&self.account.name, why.clone())
                {
                    tracing::error!(account = self.name(), mailbox = %mailbox, error = %why, retry_in = ?delay, "the state database is not writable: acting on nothing until it is");
                } else {
                    tracing::debug!(account = self.name(), mailbox = %mailbox, error = %why, retry_in = ?delay, "the state database is still not writable");
                }
                Failed::Retry(delay)
            }
            MailboxError::Imap(e) => Failed::Stop(Served::Lost(e)),
            MailboxError::Cancelled => Failed::Stop(Served::Abandoned),
            e @ MailboxError::NoUidValidity(_) => {
                Failed::Stop(Served::Lost(ImapError::Protocol(e.to_string())))
            }
        }
    }

    /// Sleeps until `until` (or cancellation), away meanwhile (no wake-ups to beat).
    pub async fn sleep_until(&self, until: Instant) {
        let d = until.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = self.token.cancelled() => {}
            _ = sleep_away(&self.hb, d) => {}
        }
    }
}
