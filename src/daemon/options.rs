//! How the daemon is started: its embedding knobs and what can stop it from starting.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::backoff::BackoffPolicy;
use super::metrics::Metrics;
use super::status::{Health, Stats};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen for signals")]
    Signals(#[source] std::io::Error),
    /// `settings.metrics_listen` could not be bound (in use, not an address of this host).
    #[error(transparent)]
    MetricsListen(#[from] super::http::BindError),
}

/// Knobs for embedding the daemon (the integration tests); `run` uses the defaults.
pub struct Options {
    /// Every `()` received triggers a reload, exactly like SIGHUP.
    pub reload_trigger: Option<mpsc::Receiver<()>>,
    /// Shared counters; keep a clone to observe the daemon.
    pub stats: Arc<Stats>,
    /// Per-account health (degraded while the state database cannot be written); keep a
    /// clone to observe it. `/health` reports `degraded` from it.
    pub health: Arc<Health>,
    /// The Prometheus series and the connection state of `/metrics` and `/health`; keep a
    /// clone to observe them (also when `metrics_listen` is off).
    pub metrics: Metrics,
    /// Watch the configuration file for changes.
    pub watch_file: bool,
    /// Reload on SIGHUP.
    pub sighup: bool,
    /// Reconnect backoff (and the retries while the state database cannot be written).
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
            health: Arc::new(Health::default()),
            metrics: Metrics::new(),
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
