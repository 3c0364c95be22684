//! Workers: one per (account, watched mailbox) holding an IDLE connection, plus one poller per
//! account for watched mailboxes beyond `max_connections` and for mailboxes only sweep rules
//! name.
//!
//! A worker's life, as a state machine:
//!
//! ```text
//!   Connecting --ok--> Selected --catch up (UID SEARCH UID last+1:*)--> Caught up
//!       ^  |                ^                                              |
//!       |  '--fail--> Backoff (1 s .. 5 min, jitter; auth: the cap)        | sweep due? sweep
//!       |                                                                  v
//!       '--- connection lost / timeout ---------------------------- IDLE (<= idle_refresh)
//!                                                  EXISTS, timeout: catch up again
//!   cancelled anywhere: abandon the batch (state not advanced), DONE, LOGOUT, end.
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, BackoffPolicy};
use super::heartbeat::{Heartbeat, Heartbeats, sleep_away};
use super::metrics::{ErrorKind, Link, Metrics};
use super::pacing::{Host, Pacer};
use super::pass::{self, PassError};
use super::store::Store;
use super::supervisor::FirstAttempt;
use super::{DaemonError, Stats};
use crate::config::{Account, Config, Settings};
use crate::imap::{IdleOutcome, ImapError, Session};
use crate::rules::RuleSet;

/// How often a worker waiting for `imapsort login` looks at the token file (one `stat`).
const LOGIN_CHECK_EVERY: Duration = Duration::from_secs(2);
/// LOGOUT at shutdown gets this long before the connection is simply dropped.
const LOGOUT_LIMIT: Duration = Duration::from_secs(2);

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
    /// How long a batch in flight may go on after cancellation.
    pub batch_grace: Duration,
    /// The state database.
    pub state: Store,
    /// `/metrics` and `/health`.
    pub metrics: Metrics,
    /// Connection attempts per host.
    pub pacer: Pacer,
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
    /// Something it cannot recover from by reconnecting (the state database failed).
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
        Stats::get(&self.connections).saturating_sub(Stats::get(&self.connections_ended))
    }
}

pub(crate) fn open_state(state_dir: &std::path::Path) -> Result<Store, DaemonError> {
    Store::open(state_dir).map_err(DaemonError::State)
}

/// Load and compile the configuration file; every error as one printable line.
pub(crate) fn load_config(path: &std::path::Path) -> Result<Config, Vec<String>> {
    crate::config::load(path).map_err(|e| e.diagnostics().iter().map(|d| d.to_string()).collect())
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

/// One worker's context, for the length of its task.
pub(crate) struct Worker {
    /// The account it serves (a changed account gets new workers).
    pub account: Arc<Account>,
    /// Its job.
    pub kind: WorkerKind,
    /// What all workers share.
    pub shared: Shared,
    /// Cancelled at shutdown or when the account is stopped.
    pub token: CancellationToken,
    /// Alive-signal for the watchdog.
    pub hb: Heartbeat,
    /// Reconnect delays.
    backoff: Backoff,
    /// The last connection error logged, to log a repeated one once, not at every try.
    last_error: Option<String>,
    /// An error was logged at `warn`/`error`: say so at `info` when a connection is back.
    announce: bool,
    /// A connection came up before (later ones are logged at `debug` unless `announce`).
    connected_before: bool,
    /// Reported once the first connection attempt finished (READY=1 waits for it).
    first: Option<FirstAttempt>,
    /// This worker's metrics and its part of the account's health.
    pub link: Arc<Link>,
    /// The pacing of the account's server.
    host: Host,
}

/// Why serving a connection stopped.
pub(super) enum Served {
    /// Cancelled: log out and end.
    Cancelled,
    /// The connection is unusable (or a command failed in a way a new connection may fix).
    Lost(ImapError),
    /// The state database failed: end the worker; the supervisor restarts it.
    State(String),
    /// A poller whose work a reload took away: log out and wait without a connection.
    NoWork,
    /// Cancelled in the middle of a command: the connection is in an unknown state, so it is
    /// dropped without LOGOUT.
    Abandoned,
}

impl From<PassError> for Served {
    fn from(e: PassError) -> Served {
        match e {
            PassError::Imap(e) => Served::Lost(e),
            PassError::State(e) => Served::State(chain(&e)),
            PassError::Cancelled => Served::Abandoned,
        }
    }
}

pub(crate) async fn run(
    account: Arc<Account>,
    kind: WorkerKind,
    shared: Shared,
    token: CancellationToken,
    first: Option<FirstAttempt>,
    link: Arc<Link>,
) -> WorkerExit {
    let hb = shared
        .heartbeats
        .register(format!("{}/{}", account.name, kind));
    let host = shared.pacer.host(&account.host);
    let mut w = Worker {
        link,
        host,
        backoff: Backoff::new(shared.backoff),
        account,
        kind,
        shared,
        token,
        hb,
        last_error: None,
        announce: false,
        connected_before: false,
        first,
    };
    w.run().await
}

impl Worker {
    pub(super) fn name(&self) -> &str {
        &self.account.name
    }

    /// The worker's mailbox label for logs.
    pub(super) fn label(&self) -> String {
        self.kind.to_string()
    }

    /// An `auth: oauth2` account must sign in again (`imapsort login`): say so once per
    /// account, stop trying the token endpoint, and go on when the token file changes. False
    /// when cancelled.
    async fn wait_for_login(&mut self, error: &ImapError) -> bool {
        let Some(oauth) = error.login_needed() else {
            return true;
        };
        if let crate::oauth::OAuthError::LoginNeeded { first: true, .. } = oauth {
            tracing::error!(account = self.name(), error = %oauth, "stopped until the account signs in again");
        } else {
            tracing::debug!(account = self.name(), worker = %self.label(), "waiting for imapsort login");
        }
        self.last_error = Some(chain(error));
        self.announce = true;
        while !crate::oauth::login_changed(oauth) {
            tokio::select! {
                _ = self.token.cancelled() => return false,
                _ = sleep_away(&self.hb, LOGIN_CHECK_EVERY) => {}
            }
        }
        tracing::info!(account = self.name(), worker = %self.label(), "the token file changed; connecting");
        true
    }

    async fn run(&mut self) -> WorkerExit {
        loop {
            if self.token.is_cancelled() {
                return WorkerExit::Cancelled;
            }
            // A poller with nothing to do holds no connection.
            if let WorkerKind::Poller(_) = &self.kind
                && !self.poller_has_work()
            {
                self.first_done();
                self.link.idle();
                match self.wait_for_poller_work().await {
                    true => {
                        self.link.connecting();
                        continue;
                    }
                    false => return WorkerExit::Cancelled,
                }
            }
            let connected = tokio::select! {
                _ = self.token.cancelled() => return WorkerExit::Cancelled,
                r = async {
                    // One of the host's `max_connecting` attempt slots, from TCP connect to
                    // logged in; queued in arrival order when all are taken.
                    let _slot = self.host.slot().await;
                    crate::imap::connect_account(&self.account, &self.shared.config_dir).await
                } => r,
            };
            self.hb.beat();
            // Set when the failure concerns the host: a success elsewhere ends the wait.
            let mut host_seen = None;
            let delay = match connected {
                Ok(mut session) => {
                    let up = self.host.succeeded();
                    self.link.up();
                    Stats::bump(&self.shared.stats.connections);
                    self.backoff.connected();
                    if std::mem::take(&mut self.announce) {
                        tracing::info!(account = self.name(), worker = %self.label(), "connected again");
                    } else if !self.connected_before {
                        tracing::info!(account = self.name(), worker = %self.label(), "connected");
                    } else {
                        tracing::debug!(account = self.name(), worker = %self.label(), "connected");
                    }
                    self.connected_before = true;
                    self.first_done();
                    let served = match self.kind.clone() {
                        WorkerKind::Idle(mailbox) => self.serve_idle(&mut session, &mailbox).await,
                        WorkerKind::Poller(polled) => {
                            self.serve_poller(&mut session, &polled).await
                        }
                    };
                    Stats::bump(&self.shared.stats.connections_ended);
                    // The connection is over: a failure below then speaks for the host.
                    drop(up);
                    match served {
                        Served::Cancelled => {
                            let _ = tokio::time::timeout(LOGOUT_LIMIT, session.logout()).await;
                            tracing::debug!(account = self.name(), worker = %self.label(), "logged out");
                            return WorkerExit::Cancelled;
                        }
                        Served::Abandoned => {
                            tracing::debug!(account = self.name(), worker = %self.label(), "batch abandoned at shutdown; connection dropped");
                            return WorkerExit::Cancelled;
                        }
                        Served::NoWork => {
                            let _ = tokio::time::timeout(LOGOUT_LIMIT, session.logout()).await;
                            continue;
                        }
                        Served::State(why) => {
                            self.link.error(ErrorKind::State, &why);
                            self.link.state_failing(true);
                            let _ = tokio::time::timeout(LOGOUT_LIMIT, session.logout()).await;
                            return WorkerExit::Failed(why);
                        }
                        Served::Lost(error) => {
                            let delay = self.backoff.failed();
                            let text = chain(&error);
                            self.link.connecting();
                            if error.is_connection_fatal() {
                                self.link.error(ErrorKind::Connect, &text);
                            } else {
                                self.link.error(ErrorKind::Command, &text);
                            }
                            if error.is_connection_fatal() && error.is_transient() {
                                host_seen = Some(self.host.failed());
                            }
                            let what = if error.is_connection_fatal() {
                                "connection lost"
                            } else {
                                // SELECT refused (the mailbox is missing), a command failed.
                                "mailbox unavailable; reconnecting later"
                            };
                            if self.last_error.as_deref() != Some(text.as_str()) {
                                self.announce = true;
                                tracing::warn!(account = self.name(), worker = %self.label(), error = %text, retry_in = ?delay, "{what}");
                            } else {
                                tracing::debug!(account = self.name(), worker = %self.label(), error = %text, retry_in = ?delay, "{what}");
                            }
                            self.last_error = Some(text);
                            let _ = tokio::time::timeout(LOGOUT_LIMIT, session.logout()).await;
                            delay
                        }
                    }
                }
                Err(error) if error.login_needed().is_some() => {
                    Stats::bump(&self.shared.stats.connection_failures);
                    self.first_done();
                    match self.wait_for_login(&error).await {
                        true => continue,
                        false => return WorkerExit::Cancelled,
                    }
                }
                Err(error) => {
                    Stats::bump(&self.shared.stats.connection_failures);
                    self.first_done();
                    let auth = matches!(
                        error,
                        ImapError::Auth { .. } | ImapError::Secret { .. } | ImapError::Insecure
                    ) || !error.is_transient();
                    let delay = if auth {
                        self.backoff.failed_permanently()
                    } else {
                        self.backoff.failed()
                    };
                    let text = chain(&error);
                    let kind = match error {
                        ImapError::Auth { .. } | ImapError::Secret { .. } => ErrorKind::Auth,
                        _ => ErrorKind::Connect,
                    };
                    self.link.error(kind, &text);
                    if error.is_transient() {
                        host_seen = Some(self.host.failed());
                    }
                    if self.last_error.as_deref() != Some(text.as_str()) {
                        self.announce = true;
                        if auth {
                            tracing::error!(account = self.name(), worker = %self.label(), error = %text, retry_in = ?delay, "{}", error.connect_failure());
                        } else {
                            tracing::warn!(account = self.name(), worker = %self.label(), error = %text, retry_in = ?delay, "cannot connect");
                        }
                        self.last_error = Some(text);
                    } else {
                        tracing::debug!(account = self.name(), worker = %self.label(), error = %text, retry_in = ?delay, "still cannot connect");
                    }
                    delay
                }
            };
            let host = self.host.clone();
            let early = async {
                match host_seen {
                    Some(seen) => host.retry_early(seen).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.token.cancelled() => return WorkerExit::Cancelled,
                _ = sleep_away(&self.hb, delay) => {}
                _ = early => {
                    tracing::debug!(account = self.name(), worker = %self.label(), host = %self.account.host, "the server is back (or it is this worker's turn to try it); retrying now");
                }
            }
        }
    }

    pub(super) fn first_done(&mut self) {
        if let Some(mut f) = self.first.take() {
            f.done();
        }
    }

    pub(super) fn live(&self) -> Arc<Live> {
        self.shared.live.borrow().clone()
    }

    /// IDLE worker: select, catch up, sweep when due, IDLE; repeat until cancelled or lost.
    async fn serve_idle(&mut self, session: &mut Session, mailbox: &str) -> Served {
        // A new connection's catch-up is not push latency, whatever woke the last one.
        self.link.pass_done();
        let mut conn = match pass::Conn::new(session, &self.account).await {
            Ok(c) => c,
            Err(e) => return Served::Lost(e),
        };
        let mut next_sweep = Instant::now();
        let mut retry = Backoff::new(self.shared.backoff);
        let mut retry_at: Option<Instant>;
        let mut sel = {
            let live = self.live();
            match pass::select(session, &self.pass_ctx(&live, mailbox)).await {
                Ok(sel) => sel,
                Err(e) => return e.into(),
            }
        };
        // Set when a pass failed part-way: its intents are open and must be reconciled (by
        // a SELECT) before the messages are handled again, or a copy made before the
        // failure would be made twice.
        let mut reconcile_first = false;
        loop {
            self.hb.beat();
            if self.token.is_cancelled() {
                return Served::Cancelled;
            }
            let live = self.live();
            let ctx = self.pass_ctx(&live, mailbox);
            if std::mem::take(&mut reconcile_first) {
                let fresh = match pass::select(session, &ctx).await {
                    Ok(fresh) => fresh,
                    Err(e) => return e.into(),
                };
                // Failed attempts count on across the reselect (same numbering), so that a
                // message that keeps failing is given up in the end.
                let attempts = std::mem::take(&mut sel.attempts);
                let same = fresh.uid_validity == sel.uid_validity;
                sel = fresh;
                if same {
                    sel.attempts = attempts;
                }
            }
            // New mail: every round, whatever woke us (EXISTS is only a hint). The pass
            // SELECTs again, so mail that arrived before it is in its search.
            match pass::new_mail(session, &mut conn, &ctx, &mut sel).await {
                Ok(outcome) => {
                    self.link.success();
                    self.link.state_failing(false);
                    if outcome.failed > 0 {
                        reconcile_first = true;
                        let d = retry.failed();
                        retry_at = Some(Instant::now() + d);
                        tracing::warn!(account = self.name(), mailbox, failed = outcome.failed, retry_in = ?d, "some messages could not be handled; retrying later");
                    } else {
                        retry.reset();
                        retry_at = None;
                    }
                    if outcome.more {
                        // Mail arrived or was handled: look again at once.
                        continue;
                    }
                }
                Err(e) => return e.into(),
            }
            if Instant::now() >= next_sweep {
                if pass::has_sweep_rules(&live.rules, &self.account, mailbox) {
                    // A sweep can fail part-way too: reconcile before the next pass.
                    reconcile_first = true;
                    if let Err(e) = pass::sweep(session, &mut conn, &ctx, &sel).await {
                        return e.into();
                    }
                    Stats::bump(&self.shared.stats.sweeps);
                }
                next_sweep = Instant::now() + live.settings.sweep_interval;
            }
            // The passes after an EXISTS are over: later results are not push latency.
            self.link.pass_done();
            // Wait: IDLE if the server has it, else poll.
            let mut wake = next_sweep.min(Instant::now() + live.settings.idle_refresh);
            if let Some(at) = retry_at {
                wake = wake.min(at);
            }
            let outcome = if session.has_capability("IDLE") {
                self.idle_until(session, wake).await
            } else {
                let poll = Instant::now() + self.account.poll_interval;
                self.sleep_until(wake.min(poll)).await;
                if self.token.is_cancelled() {
                    Ok(IdleOutcome::Cancelled)
                } else {
                    session.noop().await.map(|_| IdleOutcome::Timeout)
                }
            };
            match outcome {
                Ok(IdleOutcome::Cancelled) => return Served::Cancelled,
                Ok(IdleOutcome::NewData) => self.link.exists_seen(),
                Ok(IdleOutcome::Timeout) => {}
                Err(e) => return Served::Lost(e),
            }
        }
    }

    /// IDLE until `wake` (at most). The worker is away meanwhile: no wake-ups to beat (the
    /// imap layer re-checks cancellation).
    async fn idle_until(
        &self,
        session: &mut Session,
        wake: Instant,
    ) -> Result<IdleOutcome, ImapError> {
        let timeout = wake.saturating_duration_since(Instant::now());
        self.hb.away_for(timeout);
        let r = session
            .idle(timeout.max(Duration::from_millis(10)), &self.token)
            .await;
        self.hb.beat();
        r
    }

    pub(super) async fn sleep_until(&self, until: Instant) {
        let d = until.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = self.token.cancelled() => {}
            _ = sleep_away(&self.hb, d) => {}
        }
    }

    pub(super) fn pass_ctx<'a>(&'a self, live: &'a Live, mailbox: &'a str) -> pass::Ctx<'a> {
        pass::Ctx {
            account: &self.account,
            mailbox,
            rules: &live.rules,
            store: &self.shared.state,
            stats: &self.shared.stats,
            token: &self.token,
            grace: self.shared.batch_grace,
            hb: &self.hb,
            link: &self.link,
        }
    }
}
