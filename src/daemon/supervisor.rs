//! The supervisor: owns the running configuration and one set of workers per account; applies
//! reloads; reports readiness, status and watchdog pings; shuts everything down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::Backoff;
use super::heartbeat::Heartbeats;
use super::metrics::Link;
use super::options::{DaemonError, Options};
use super::pacing::Pacer;
use super::ready::{FirstAttempt, FirstAttempts};
use super::reload::{ConfigDiff, ConfigWatcher, content_hash};
use super::status::Stats;
use super::systemd::Notifier;
use super::task::{Live, Shared, WorkerExit, WorkerKind};
use super::worker;
use crate::config::{Account, Config};
use crate::lock::Locks;
use crate::state::Store;
use crate::vocab::MailboxName;

/// How often `STATUS=` is refreshed when nothing else happens.
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// A worker that has not beaten for this long (or the watchdog interval, if longer) is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(120);

/// The running daemon.
pub(crate) struct Supervisor {
    /// The configuration file, as named on the command line (re-read on reload).
    config_path: PathBuf,
    /// The configuration in force.
    config: Config,
    /// Hash of the bytes `config` was loaded from; unchanged bytes skip a file-event reload.
    config_hash: Option<u64>,
    /// Rules and live settings, read by every worker at its next batch.
    live: watch::Sender<Arc<Live>>,
    /// Parent of every account's token: cancelled at shutdown.
    root: CancellationToken,
    /// Every task the daemon spawned; awaited at shutdown.
    tracker: TaskTracker,
    /// Per account: its token and tasks, so one account can be stopped alone.
    accounts: BTreeMap<String, AccountHandle>,
    /// What workers share.
    shared: Shared,
    /// Readiness: workers whose first connection attempt has not finished yet.
    pending_first: Arc<FirstAttempts>,
    /// READY=1, STATUS=, WATCHDOG=1 ...
    notifier: Notifier,
    /// Embedding knobs (reload trigger, grace period).
    options: Options,
}

/// One account's running workers.
struct AccountHandle {
    /// Cancelling it stops only this account's workers.
    token: CancellationToken,
    /// This account's tasks, awaited before a changed account is started again.
    tracker: TaskTracker,
}

impl Supervisor {
    pub async fn start(
        config_path: PathBuf,
        mut config: Config,
        options: Options,
    ) -> Result<Supervisor, DaemonError> {
        command_line(&mut config, &options);
        let state_dir = config.settings.state_dir.clone();
        // First, so that a port in use stops the daemon before it connects to anything.
        let listener = match &config.settings.metrics_listen {
            Some(addr) => Some(super::http::bind(addr).await?),
            None => None,
        };
        let config_hash = std::fs::read(&config_path).ok().map(|b| content_hash(&b));
        let (live, live_rx) = watch::channel(Arc::new(Live {
            rules: config.rules.clone(),
            settings: config.settings.clone(),
        }));
        let shared = Shared {
            config_dir: config_dir(&config_path),
            live: live_rx,
            stats: options.stats.clone(),
            heartbeats: Heartbeats::new(),
            backoff: options.backoff,
            batch_grace: options.batch_grace,
            // Opened at first use and again after a failure: a state directory that cannot be
            // written now degrades the accounts (they act on nothing) instead of stopping the
            // daemon.
            state: Store::new(&state_dir),
            locks: Locks::new(&state_dir),
            health: options.health.clone(),
            metrics: options.metrics.clone(),
            pacer: Pacer::new(config.settings.max_connecting),
        };
        shared.metrics.set_accounts(
            config.accounts.iter().map(|a| a.name.as_str()),
            config.rules.rules().map(|r| r.name.as_str()),
        );
        let mut sup = Supervisor {
            config_path,
            config,
            config_hash,
            live,
            root: CancellationToken::new(),
            tracker: TaskTracker::new(),
            accounts: BTreeMap::new(),
            shared,
            pending_first: Arc::new(FirstAttempts::default()),
            notifier: Notifier::from_env(),
            options,
        };
        tracing::info!(
            config = %sup.config_path.display(),
            shard = %sup.options.shard.map(|s| s.to_string()).unwrap_or_else(|| "all".into()),
            accounts = sup.config.accounts.len(),
            rules = sup.config.rules.rules().count(),
            "imapsort daemon starting"
        );
        if let Some(listener) = listener {
            if let Some(addr) = super::http::local_addr(&listener) {
                sup.shared.metrics.set_listening(addr);
                tracing::info!(address = %addr, "serving /metrics and /health");
            }
            let (metrics, health) = (sup.shared.metrics.clone(), sup.shared.health.clone());
            sup.tracker.spawn(super::http::serve(
                listener,
                metrics,
                health,
                sup.root.clone(),
            ));
        }
        for account in sup.config.accounts.clone() {
            sup.start_account(&account);
        }
        Ok(sup)
    }

    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        let (file_tx, mut file_rx) = mpsc::channel::<()>(1);
        let _watcher = if self.options.watch_file {
            match ConfigWatcher::start(&self.config_path, file_tx) {
                Ok(w) => Some(w),
                Err(error) => {
                    tracing::warn!(error = %crate::logging::chain(&error), "configuration changes will not be noticed; SIGHUP still reloads");
                    None
                }
            }
        } else {
            None
        };
        let mut sighup = if self.options.sighup {
            Some(
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                    .map_err(DaemonError::Signals)?,
            )
        } else {
            None
        };
        let mut trigger = self.options.reload_trigger.take();
        let watchdog_every = self.notifier.watchdog_interval().map(|w| w / 2);
        let mut watchdog =
            tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
        let mut status = tokio::time::interval(STATUS_EVERY);
        let mut ready = false;
        tokio::pin!(shutdown);

        let pending_first = self.pending_first.clone();
        loop {
            // Registered before the check, so a worker finishing in between is not missed.
            let first_changed = pending_first.changed.notified();
            tokio::pin!(first_changed);
            first_changed.as_mut().enable();
            if !ready && pending_first.pending() == 0 {
                ready = true;
                self.notifier.ready();
                tracing::info!("ready: every account's first connection attempt has finished");
                self.send_status();
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = &mut first_changed, if !ready => {}
                Some(()) = file_rx.recv() => self.reload(false).await,
                Some(()) = recv_signal(&mut sighup) => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    self.reload(true).await
                }
                Some(()) = recv_opt(&mut trigger) => self.reload(true).await,
                _ = watchdog.tick(), if watchdog_every.is_some() => {
                    let max_age = STUCK_AFTER.max(self.notifier.watchdog_interval().unwrap_or_default());
                    self.notifier.watchdog_tick(&self.shared.heartbeats, max_age);
                }
                _ = status.tick() => self.send_status(),
            }
        }
        self.shutdown().await;
        Ok(())
    }

    async fn shutdown(self) {
        self.notifier.stopping();
        self.notifier.status("stopping");
        self.root.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.options.shutdown_grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.tracker.len(),
                "workers did not finish in time; abandoning them"
            );
        }
        drop(self.shared);
        tracing::info!("imapsort daemon stopped");
    }

    fn send_status(&self) {
        let connected = self.shared.stats.connected();
        let acted = Stats::get(&self.shared.stats.messages_acted);
        self.notifier.status(&format!(
            "{} account(s), {connected} connection(s) up; {acted} message(s) sorted",
            self.accounts.len()
        ));
    }

    /// Start every worker of `account`: one per watched mailbox up to `max_connections`
    /// (IDLE), and one poller for the rest and for mailboxes only sweep rules name.
    fn start_account(&mut self, account: &Account) {
        let token = self.root.child_token();
        let tracker = TaskTracker::new();
        let cap = (account.max_connections.max(1)) as usize;
        // One worker per mailbox even if the list names one twice (`INBOX` and `inbox`):
        // two workers on one mailbox would race for the same messages.
        let mut watched: Vec<&MailboxName> = Vec::new();
        for m in &account.watch {
            if !watched.contains(&m) {
                watched.push(m);
            }
        }
        let idle: Vec<MailboxName> = watched.iter().take(cap).map(|m| (*m).clone()).collect();
        let polled: Vec<MailboxName> = watched.iter().skip(cap).map(|m| (*m).clone()).collect();
        tracing::info!(account = %account.name, ?idle, ?polled, "starting account");
        let mut kinds: Vec<WorkerKind> = idle.into_iter().map(WorkerKind::Idle).collect();
        kinds.push(WorkerKind::Poller(polled));
        for kind in kinds {
            let first = self.pending_first.guard();
            // Made here, before the task starts, so the account counts as not connected
            // from the start.
            let link = Arc::new(self.shared.metrics.link(&account.name));
            let fut = supervise(
                Arc::new(account.clone()),
                kind,
                self.shared.clone(),
                token.clone(),
                first,
                link,
            );
            self.tracker.spawn(tracker.track_future(fut));
        }
        tracker.close();
        self.accounts
            .insert(account.name.clone(), AccountHandle { token, tracker });
    }

    /// Stop an account's workers and wait (bounded) until they have let go of its mailboxes,
    /// so that a restarted account never has two workers on one mailbox.
    async fn stop_account(&mut self, name: &str) {
        if let Some(h) = self.accounts.remove(name) {
            h.token.cancel();
            if tokio::time::timeout(self.options.shutdown_grace, h.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    account = name,
                    "workers of the account did not stop in time"
                );
            }
            // Its workers are gone, and with them what they knew of the state database: new
            // ones (a changed account) find out again, and say so if it is still not writable.
            self.shared.health.recovered(name);
            tracing::info!(account = name, "stopped account");
        }
    }

    /// Load the file again and apply it; on any error keep running on the old configuration.
    async fn reload(&mut self, forced: bool) {
        let path = self.config_path.clone();
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "cannot read the configuration; keeping the old one");
                Stats::bump(&self.shared.stats.reloads_rejected);
                self.shared.metrics.reload(false);
                return;
            }
        };
        let hash = content_hash(&bytes);
        if !forced && Some(hash) == self.config_hash {
            tracing::debug!("configuration file touched but unchanged");
            return;
        }
        self.config_hash = Some(hash);
        self.notifier.reloading();
        let loaded = tokio::task::spawn_blocking(move || load_config(&path)).await;
        let new = match loaded {
            Ok(Ok(config)) => config,
            Ok(Err(errors)) => {
                for e in &errors {
                    tracing::error!("{e}");
                }
                tracing::error!(
                    errors = errors.len(),
                    "the new configuration is invalid; still running on the old one"
                );
                Stats::bump(&self.shared.stats.reloads_rejected);
                self.shared.metrics.reload(false);
                self.notifier.ready();
                return;
            }
            Err(join) => {
                tracing::error!(error = %join, "loading the configuration failed");
                Stats::bump(&self.shared.stats.reloads_rejected);
                self.shared.metrics.reload(false);
                self.notifier.ready();
                return;
            }
        };
        if new.accounts.is_empty() {
            // Also what a half-written file can look like: never stop every account for it.
            tracing::error!(
                file = %self.config_path.display(),
                "the new configuration has no accounts (`imapsort run` needs at least one); still running on the old one"
            );
            Stats::bump(&self.shared.stats.reloads_rejected);
            self.shared.metrics.reload(false);
            self.notifier.ready();
            return;
        }
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        let mut new = new;
        command_line(&mut new, &self.options);
        let diff = ConfigDiff::between(&self.config, &new);
        self.apply(new, &diff).await;
        Stats::bump(&self.shared.stats.reloads_applied);
        self.shared.metrics.reload(true);
        self.notifier.ready();
        self.send_status();
    }

    async fn apply(&mut self, new: Config, diff: &ConfigDiff) {
        // Rules and live settings first: workers pick them up at their next batch.
        self.live.send_replace(Arc::new(Live {
            rules: new.rules.clone(),
            settings: new.settings.clone(),
        }));
        let to_stop: Vec<String> = diff.accounts_to_stop().cloned().collect();
        for name in &to_stop {
            self.stop_account(name).await;
        }
        // After the stopped workers let go, before new ones start: removed accounts and
        // rules lose their series, added accounts get theirs.
        self.shared.metrics.set_accounts(
            new.accounts.iter().map(|a| a.name.as_str()),
            new.rules.rules().map(|r| r.name.as_str()),
        );
        for name in diff.accounts_to_start() {
            if let Some(account) = new.account(name) {
                self.start_account(&account.clone());
            }
        }
        for setting in &diff.needs_restart {
            tracing::warn!(
                setting,
                "this setting changed but takes effect only when imapsort is restarted"
            );
        }
        let restarted: Vec<&String> = diff
            .accounts_added
            .iter()
            .chain(&diff.accounts_changed)
            .collect();
        if diff.is_empty() {
            tracing::info!("configuration reloaded: nothing changed");
        } else {
            tracing::info!(
                rules_added = ?diff.rules_added,
                rules_removed = ?diff.rules_removed,
                rules_changed = ?diff.rules_changed,
                rules_reordered = diff.rules_reordered,
                accounts_started = ?restarted,
                accounts_stopped = ?diff.accounts_removed,
                settings_changed = ?diff.settings_changed,
                "configuration reloaded"
            );
        }
        // Keep the account's place-independent identity current for the next diff.
        self.config = new;
    }
}

/// Run one worker; restart it (with backoff) when it ends for any reason but cancellation.
async fn supervise(
    account: Arc<Account>,
    kind: WorkerKind,
    shared: Shared,
    token: CancellationToken,
    first: FirstAttempt,
    link: Arc<Link>,
) {
    let mut backoff = Backoff::new(shared.backoff);
    let mut first = Some(first);
    loop {
        let task = tokio::spawn(worker::run(
            account.clone(),
            kind.clone(),
            shared.clone(),
            token.clone(),
            first.take(),
            link.clone(),
        ));
        let exit = match task.await {
            Ok(exit) => exit,
            Err(e) if e.is_panic() => WorkerExit::Panicked(panic_message(e.into_panic())),
            Err(_) => WorkerExit::Cancelled,
        };
        if matches!(exit, WorkerExit::Cancelled) || token.is_cancelled() {
            return;
        }
        let delay = backoff.failed();
        link.connecting();
        tracing::error!(account = %account.name, worker = %kind, reason = %exit, retry_in = ?delay, "worker ended; restarting it");
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

async fn recv_signal(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(r: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match r {
        Some(r) => match r.recv().await {
            Some(()) => Some(()),
            None => {
                // The embedder dropped its sender: stop polling this branch.
                std::future::pending::<()>().await;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// Load and compile the configuration file; every error as one printable line.
fn load_config(path: &Path) -> Result<Config, Vec<String>> {
    crate::config::load(path).map_err(|e| e.diagnostics().iter().map(|d| d.to_string()).collect())
}

/// What the command line says over the file, for the first version and every reload: drop
/// the accounts another shard handles (they are neither connected to nor reported), and put
/// `--metrics-listen` in place of `settings.metrics_listen`.
fn command_line(config: &mut Config, options: &Options) {
    if let Some(shard) = options.shard {
        config.accounts.retain(|a| shard.contains(&a.name));
    }
    if let Some(addr) = &options.metrics_listen {
        config.settings.metrics_listen = Some(addr.clone());
    }
}

fn config_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
