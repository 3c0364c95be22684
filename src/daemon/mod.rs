//! The daemon: `imapsort run`.
//!
//! ```text
//! run(config_path, config, shutdown)
//!  ├─ Supervisor            owns the running Config, the live rules (watch channel), one
//!  │   │                    AccountHandle per account, reload, readiness and the watchdog
//!  │   ├─ account "a"       CancellationToken (child of the root) + TaskTracker
//!  │   │   ├─ mailbox worker INBOX      connect -> select -> catch up -> IDLE -> ...
//!  │   │   ├─ mailbox worker Lists      (one per watched mailbox up to max_connections)
//!  │   │   └─ poller                    mailboxes beyond the cap, sweep-only mailboxes
//!  │   └─ account "b" ...
//!  ├─ ConfigWatcher         file events of the config's directory -> reload
//!  ├─ SIGHUP / Options::reload_trigger -> reload
//!  └─ http::serve           /metrics and /health, when settings.metrics_listen is set
//! ```
//!
//! Workers connect through [`pacing`] (at most `max_connecting` attempts in flight per host;
//! a host that comes back wakes the workers waiting to retry it) and report to
//! [`metrics::Metrics`] through a per-worker [`metrics::Link`].
//!
//! Workers reconnect by themselves with [`backoff::Backoff`]; a worker task that ends anyway
//! says why ([`worker::WorkerExit`]) and its supervising loop restarts it unless the account
//! is being stopped. Shutdown cancels the root token: workers abandon what they are doing
//! without advancing state past unfinished messages, leave IDLE, log out, and the tracker is
//! awaited (bounded) before the state database is closed.

pub mod backoff;
pub mod heartbeat;
pub mod http;
pub mod metrics;
pub mod notify;
mod pacing;
mod pass;
mod poller;
mod reconcile;
pub mod reload;
pub mod shutdown;
mod sink;
mod store;
mod supervisor;
mod systemd;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Config;

pub use backoff::BackoffPolicy;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the state database")]
    State(#[source] crate::state::StateError),
    #[error("cannot listen for signals")]
    Signals(#[source] std::io::Error),
    /// `settings.metrics_listen` could not be bound (in use, not an address of this host).
    #[error(transparent)]
    MetricsListen(#[from] http::BindError),
}

/// Counters that tests and `STATUS=` lines read. Every field only grows.
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful logins, over all workers (a rules-only reload must not move it).
    pub connections: AtomicU64,
    /// Mailboxes selected and reconciled with the state database (from then on, new mail in
    /// them is handled whatever `first_start` says).
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
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Knobs for embedding the daemon (the integration tests); `run` uses the defaults.
pub struct Options {
    /// Every `()` received triggers a reload, exactly like SIGHUP.
    pub reload_trigger: Option<mpsc::Receiver<()>>,
    /// Shared counters; keep a clone to observe the daemon.
    pub stats: Arc<Stats>,
    /// The Prometheus series and the health of `/metrics` and `/health`; keep a clone to
    /// observe them (also when `metrics_listen` is off).
    pub metrics: metrics::Metrics,
    /// Watch the configuration file for changes.
    pub watch_file: bool,
    /// Reload on SIGHUP.
    pub sighup: bool,
    /// Reconnect backoff.
    pub backoff: BackoffPolicy,
    /// How long shutdown waits for workers before abandoning them.
    pub shutdown_grace: Duration,
    /// How long a batch in flight may go on after shutdown began.
    pub batch_grace: Duration,
    /// `--shard I/N`: only the accounts of this shard are started, at start and on reload.
    pub shard: Option<crate::shard::Shard>,
    /// `--metrics-listen`: replaces `settings.metrics_listen` of every version of the file.
    pub metrics_listen: Option<crate::config::ListenAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reload_trigger: None,
            stats: Arc::new(Stats::default()),
            metrics: metrics::Metrics::new(),
            watch_file: true,
            sighup: true,
            backoff: BackoffPolicy::default(),
            shutdown_grace: Duration::from_secs(4),
            batch_grace: Duration::from_millis(2500),
            shard: None,
            metrics_listen: None,
        }
    }
}

/// Run the daemon until `shutdown` completes. `initial` was loaded from `config_path` (the
/// command reports its errors and exits 78 before calling this); later versions of the file
/// are loaded here on change or SIGHUP.
pub async fn run(
    config_path: PathBuf,
    initial: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    run_with(config_path, initial, shutdown, Options::default()).await
}

/// [`run`] with [`Options`].
pub async fn run_with(
    config_path: PathBuf,
    initial: Config,
    shutdown: impl Future<Output = ()>,
    options: Options,
) -> Result<(), DaemonError> {
    supervisor::Supervisor::start(config_path, initial, options)
        .await?
        .run(shutdown)
        .await
}
