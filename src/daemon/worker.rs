//! Workers: one per (account, watched mailbox) holding an IDLE connection, plus one poller per
//! account (`super::poller`) for watched mailboxes beyond `max_connections` and for mailboxes
//! only sweep rules name.
//!
//! A worker's life, as a state machine:
//!
//! ```text
//!   Connecting --ok--> Acting: lock, open, recover, catch up (UID SEARCH UID last+1:*),
//!       ^  |                   sweep when due, unlock                       |
//!       |  '--fail--> Backoff (1 s .. 5 min, jitter; auth: the cap)        v
//!       '--- connection lost / timeout ---------------------------- IDLE (<= idle_refresh)
//!                                      EXISTS, timeout, retry due: act again
//!   state database not writable: degraded, act on nothing, IDLE until the retry (backoff)
//!   cancelled anywhere: abandon the batch (state not advanced), DONE, LOGOUT, end.
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::heartbeat::{beating, sleep_away};
use super::mailbox::{self, Work};
use super::metrics::{ErrorKind, Link};
use super::pacing::Host;
use super::ready::FirstAttempt;
use super::status::Stats;
use super::task::{Failed, Served, Shared, Task, WorkerExit, WorkerKind};
use crate::config::Account;
use crate::imap::{IdleOutcome, ImapError, Session};
use crate::logging::chain;
use crate::vocab::MailboxName;

/// How often a worker waiting for `imapsort login` looks at the token file (one `stat`).
const LOGIN_CHECK_EVERY: Duration = Duration::from_secs(2);
/// LOGOUT at shutdown gets this long before the connection is simply dropped.
const LOGOUT_LIMIT: Duration = Duration::from_secs(2);

/// One worker's context, for the length of its task.
pub(crate) struct Worker {
    /// The account, shared handles, token and heartbeat.
    task: Task,
    /// Its job.
    kind: WorkerKind,
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
    /// The pacing of the account's server: attempt slots, and the wake-up when it is back.
    host: Host,
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
        backoff: Backoff::new(shared.backoff),
        host,
        task: Task::new(account, shared, token, hb, link),
        kind,
        last_error: None,
        announce: false,
        connected_before: false,
        first,
    };
    w.run().await
}

impl Worker {
    fn name(&self) -> &str {
        self.task.name()
    }

    /// The worker's mailbox label for logs.
    fn label(&self) -> String {
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
        let text = chain(error);
        self.task.link.error(ErrorKind::Auth, &text);
        self.last_error = Some(text);
        self.announce = true;
        while !crate::oauth::login_changed(oauth) {
            tokio::select! {
                _ = self.task.token.cancelled() => return false,
                _ = sleep_away(&self.task.hb, LOGIN_CHECK_EVERY) => {}
            }
        }
        tracing::info!(account = self.name(), worker = %self.label(), "the token file changed; connecting");
        true
    }

    async fn run(&mut self) -> WorkerExit {
        loop {
            if self.task.token.is_cancelled() {
                return WorkerExit::Cancelled;
            }
            // A poller with nothing to do holds no connection.
            if let WorkerKind::Poller(polled) = self.kind.clone()
                && !super::poller::has_work(&self.task, &polled)
            {
                self.first_done();
                self.task.link.idle();
                match super::poller::wait_for_work(&self.task, &polled).await {
                    true => {
                        self.task.link.connecting();
                        continue;
                    }
                    false => return WorkerExit::Cancelled,
                }
            }
            let connected = tokio::select! {
                _ = self.task.token.cancelled() => return WorkerExit::Cancelled,
                r = async {
                    // One of the host's `max_connecting` attempt slots, from TCP connect to
                    // logged in; queued in arrival order when all are taken. The queue can be
                    // long (a thousand accounts, a host that does not answer): it beats.
                    let _slot = beating(&self.task.hb, self.host.slot()).await;
                    crate::imap::connect_account(&self.task.account, &self.task.shared.config_dir).await
                } => r,
            };
            self.task.hb.beat();
            // Set when the failure concerns the host: a success elsewhere ends the wait.
            let mut host_seen = None;
            let delay = match connected {
                Ok(mut session) => {
                    let up = self.host.succeeded();
                    self.task.link.up();
                    Stats::bump(&self.task.shared.stats.connections);
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
                            super::poller::serve(&mut self.task, &mut session, &polled).await
                        }
                    };
                    Stats::bump(&self.task.shared.stats.connections_ended);
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
                        Served::Lost(error) => {
                            let delay = self.backoff.failed();
                            let text = chain(&error);
                            self.task.link.connecting();
                            if error.is_connection_fatal() {
                                self.task.link.error(ErrorKind::Connect, &text);
                            } else {
                                self.task.link.error(ErrorKind::Command, &text);
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
                    Stats::bump(&self.task.shared.stats.connection_failures);
                    self.first_done();
                    match self.wait_for_login(&error).await {
                        true => continue,
                        false => return WorkerExit::Cancelled,
                    }
                }
                Err(error) => {
                    Stats::bump(&self.task.shared.stats.connection_failures);
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
                    self.task.link.error(kind, &text);
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
                _ = self.task.token.cancelled() => return WorkerExit::Cancelled,
                _ = sleep_away(&self.task.hb, delay) => {}
                _ = early => {
                    tracing::debug!(account = self.name(), worker = %self.label(), host = %self.task.account.host, "the server is back (or it is this worker's turn to try it); retrying now");
                }
            }
        }
    }

    fn first_done(&mut self) {
        if let Some(mut f) = self.first.take() {
            f.done();
        }
    }

    /// IDLE worker: act on the mailbox (new mail, a sweep when due), IDLE; repeat until
    /// cancelled or lost. The mailbox is locked only while the worker acts on it.
    async fn serve_idle(&mut self, session: &mut Session, mailbox: &MailboxName) -> Served {
        // A new connection's catch-up is not push latency, whatever woke the last one.
        self.task.link.pass_done();
        let mut conn = match mailbox::Conn::new(session, &self.task.account).await {
            Ok(c) => c,
            Err(e) => return Served::Lost(e),
        };
        let mut next_sweep = Instant::now();
        let mut retry = Backoff::new(self.task.shared.backoff);
        let mut retry_at: Option<Instant>;
        // What the worker knows of the mailbox from one time it acts on it to the next.
        let mut sel = None;
        loop {
            self.task.hb.beat();
            if self.task.token.is_cancelled() {
                return Served::Cancelled;
            }
            let live = self.task.live();
            let due = Instant::now() >= next_sweep;
            let sweep_due =
                due && mailbox::has_sweep_rules(&live.rules, &self.task.account, mailbox);
            let work = Work {
                // New mail: every round, whatever woke us (EXISTS is only a hint). The pass
                // SELECTs again, so mail that arrived before it is in its search.
                new_mail: true,
                sweep: sweep_due,
                probe: self.task.degraded(),
            };
            let ctx = self.task.ctx(&live, mailbox);
            let acted = mailbox::act(session, &mut conn, &ctx, &mut sel, work).await;
            match acted {
                Ok(acted) => {
                    self.task.acted();
                    if sweep_due {
                        Stats::bump(&self.task.shared.stats.sweeps);
                    }
                    if due {
                        next_sweep = Instant::now() + live.settings.sweep_interval;
                    }
                    if acted.failed > 0 {
                        let d = retry.failed();
                        retry_at = Some(Instant::now() + d);
                        tracing::warn!(account = self.name(), mailbox = %mailbox, failed = acted.failed, retry_in = ?d, "some messages could not be handled; retrying later");
                    } else {
                        retry.reset();
                        retry_at = None;
                    }
                    if acted.more {
                        // Mail arrived or was handled: look again at once.
                        continue;
                    }
                }
                Err(e) => match self.task.failed(mailbox, e) {
                    Failed::Retry(d) => {
                        let at = Instant::now() + d;
                        retry_at = Some(at);
                        // Nothing can be done before the retry, a due sweep included: without
                        // this, a sweep due since the start made the wait below zero long and
                        // the worker tried again at once, over and over.
                        next_sweep = next_sweep.max(at);
                        // IDLE needs the mailbox selected, also when nothing was done.
                        if session.selected() != Some(mailbox.as_str())
                            && let Err(e) = session.select(mailbox).await
                        {
                            return Served::Lost(e);
                        }
                    }
                    Failed::Stop(served) => return served,
                },
            }
            // The passes after an EXISTS are over: later results are not push latency.
            self.task.link.pass_done();
            // Wait: IDLE if the server has it, else poll.
            let mut wake = next_sweep.min(Instant::now() + live.settings.idle_refresh);
            if let Some(at) = retry_at {
                wake = wake.min(at);
            }
            let outcome = if session.has_capability("IDLE") {
                self.idle_until(session, wake).await
            } else {
                let poll = Instant::now() + self.task.account.poll_interval;
                self.task.sleep_until(wake.min(poll)).await;
                if self.task.token.is_cancelled() {
                    Ok(IdleOutcome::Cancelled)
                } else {
                    session.noop().await.map(|_| IdleOutcome::Timeout)
                }
            };
            match outcome {
                Ok(IdleOutcome::Cancelled) => return Served::Cancelled,
                Ok(IdleOutcome::NewData) => self.task.link.exists_seen(),
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
        self.task.hb.away_for(timeout);
        let r = session
            .idle(timeout.max(Duration::from_millis(10)), &self.task.token)
            .await;
        self.task.hb.beat();
        r
    }
}
