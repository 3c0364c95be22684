//! Workers: one per (account, watched mailbox) holding an IDLE connection, plus one poller per
//! account. (The IMAP loop lands here as the imap, execute and state layers land.)

#![allow(dead_code)] // Until the IMAP loop lands.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backoff::BackoffPolicy;
use super::heartbeat::{Heartbeats, sleep_beating};
use super::supervisor::FirstAttempt;
use super::{DaemonError, Stats};
use crate::config::{Account, Config, Diagnostic, Settings};
use crate::rules::RuleSet;

/// How often a waiting worker beats.
pub(crate) const BEAT_EVERY: Duration = Duration::from_secs(5);

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
    /// For the watchdog.
    pub heartbeats: Heartbeats,
    /// Reconnect backoff shape.
    pub backoff: BackoffPolicy,
    /// The state database location.
    pub state: PathBuf,
}

/// What a worker does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WorkerKind {
    /// Hold an IDLE connection on this mailbox.
    Idle(String),
    /// Poll these watched mailboxes (beyond `max_connections`), and sweep mailboxes that only
    /// sweep rules name.
    Poller(Vec<String>),
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
    /// Something it cannot recover from by reconnecting.
    Failed(String),
    /// A bug.
    Panicked(String),
}

impl std::fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerExit::Cancelled => f.write_str("cancelled"),
            WorkerExit::Failed(why) => write!(f, "failed: {why}"),
            WorkerExit::Panicked(why) => write!(f, "panicked: {why}"),
        }
    }
}

impl Stats {
    /// Connections up now (logins minus losses, never negative).
    pub(crate) fn connected(&self) -> u64 {
        Stats::get(&self.connections).saturating_sub(Stats::get(&self.connection_failures))
    }
}

pub(crate) fn open_state(state_dir: &Path) -> Result<PathBuf, DaemonError> {
    Ok(state_dir.join("state.sqlite3"))
}

/// Load and compile the configuration file; every error as one printable line.
pub(crate) fn load_config(_path: &Path) -> Result<Config, Vec<String>> {
    Err(vec!["configuration loading is not available yet".into()])
}

pub(crate) fn describe_diagnostic(d: &Diagnostic) -> String {
    match d.span {
        Some(s) => format!(
            "{}:{}:{}: {}",
            d.file.display(),
            s.line,
            s.column,
            d.message
        ),
        None => format!("{}: {}", d.file.display(), d.message),
    }
}

/// An error and its sources, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub(crate) async fn run(
    account: Arc<Account>,
    kind: WorkerKind,
    shared: Shared,
    token: CancellationToken,
    mut first: Option<FirstAttempt>,
) -> WorkerExit {
    let hb = shared
        .heartbeats
        .register(format!("{}/{}", account.name, kind));
    if let Some(f) = first.as_mut() {
        f.done();
    }
    loop {
        tokio::select! {
            _ = token.cancelled() => return WorkerExit::Cancelled,
            _ = sleep_beating(&hb, Duration::from_secs(60), BEAT_EVERY) => {}
        }
    }
}
