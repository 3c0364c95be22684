//! The daemon: `imapsort run`.
//!
//! ```text
//! run(config_path, config, shutdown)
//!  ├─ Supervisor            owns the running Config, the live rules (watch channel), one
//!  │   │                    AccountHandle per account, reload, readiness and the watchdog
//!  │   ├─ account "a"       CancellationToken (child of the root) + TaskTracker
//!  │   │   ├─ mailbox worker INBOX      connect -> [lock, open, recover, act, unlock] -> IDLE
//!  │   │   ├─ mailbox worker Lists      (one per watched mailbox up to max_connections)
//!  │   │   └─ poller                    mailboxes beyond the cap, sweep-only mailboxes
//!  │   └─ account "b" ...
//!  ├─ ConfigWatcher         file events of the config's directory -> reload
//!  ├─ SIGHUP / Options::reload_trigger -> reload
//!  └─ http::serve           /metrics and /health, when settings.metrics_listen is set
//! ```
//!
//! The rooms, each importing only from those below it:
//!
//! ```text
//! supervisor   accounts, reload, readiness, watchdog, the listener -> worker, task, ready, http
//! worker       one connection: connect (paced), IDLE, backoff     -> poller, task, mailbox, pacing
//! poller       polled and sweep-only mailboxes                    -> task, mailbox
//! task         what every worker shares (Live, Shared, Served, WorkerKind, WorkerExit),
//!              the account's health while the state cannot be written
//!                                                                 -> mailbox, metrics, pacing
//! mailbox      acting on one mailbox under its lock: pass, recover, lock -> metrics
//! options      how the daemon is started (Options, DaemonError)   -> metrics, http
//! http         /metrics and /health                               -> metrics, status
//! metrics      the Prometheus series, each worker's Link, /health's report -> status
//! pacing, ready, status, heartbeat, backoff, notify, systemd, reload, shutdown: leaves
//! ```
//!
//! Workers connect through `pacing` (at most `max_connecting` attempts in flight per host;
//! a host that comes back wakes the workers waiting to retry it) and report to
//! [`metrics::Metrics`] through a per-worker [`metrics::Link`].
//!
//! Workers reconnect by themselves with [`backoff::Backoff`]; a worker task that ends anyway
//! says why (`WorkerExit`) and its supervising loop restarts it unless the account is being
//! stopped. A mailbox is locked only while a worker acts on it, never while it IDLEs, so a
//! manual `imapsort sweep` can run beside the daemon. When the state database cannot be
//! written the account is [`Health`]-degraded: it acts on nothing and retries with backoff,
//! on the same connection. Shutdown cancels the root token: workers abandon what they are
//! doing without advancing state past unfinished messages, leave IDLE, log out, and the
//! tracker is awaited (bounded) before the state database is closed.

pub mod backoff;
pub mod heartbeat;
pub mod http;
mod mailbox;
pub mod metrics;
pub mod notify;
mod options;
mod pacing;
mod poller;
mod ready;
pub mod reload;
pub mod shutdown;
mod status;
mod supervisor;
mod systemd;
mod task;
mod worker;

use std::future::Future;
use std::path::PathBuf;

use crate::config::Config;

pub use backoff::BackoffPolicy;
pub use options::{DaemonError, Options};
pub use status::{Health, Stats};

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
