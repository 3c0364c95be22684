//! Running the real daemon in-process against a private Dovecot: configuration files, start
//! and stop, delivering mail, and looking at where it ended up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use imapsort::daemon::{self, DaemonError, Options, Stats};
use imapsort::imap::{ConnectOptions, Session};
use imapsort_testkit::dovecot::Dovecot;
use secrecy::SecretString;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A daemon started by [`Harness::start`].
pub struct Running {
    /// The daemon's counters.
    pub stats: Arc<Stats>,
    /// Completing it is the daemon's SIGTERM.
    shutdown: oneshot::Sender<()>,
    /// Each send is a SIGHUP.
    pub reload: mpsc::Sender<()>,
    /// The daemon task.
    handle: JoinHandle<Result<(), DaemonError>>,
}

/// A private Dovecot, a directory for the configuration and the state, and a daemon.
pub struct Harness {
    pub dovecot: Dovecot,
    /// Holds `config.yaml` and `state/`.
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// The port the daemon's account uses (the server's, or a proxy's in front of it).
    pub port: u16,
    pub running: Option<Running>,
}

/// Start Dovecot; `None` when it is not installed outside CI (the test then skips loudly).
pub fn harness() -> Option<Harness> {
    harness_with(imapsort_testkit::dovecot::DovecotOptions::default())
}

/// [`harness`] with a differently configured server.
pub fn harness_with(opts: imapsort_testkit::dovecot::DovecotOptions) -> Option<Harness> {
    let dovecot = crate::support::dovecot::start(opts)?;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.yaml");
    let port = dovecot.imaps_port();
    Some(Harness {
        dovecot,
        dir,
        config_path,
        port,
        running: None,
    })
}

/// Rules used by most tests: lists by List-Id, invoices, and a flag for a VIP.
pub const RULES: &str = r#"
  - name: lists
    when: { list_id: { exists: true } }
    then: { move: "Lists/{list_id}" }
  - name: invoices
    when: { subject: invoice }
    then: { move: Invoices }
"#;

impl Harness {
    /// One account block for this server.
    pub fn account(&self, name: &str, password: &str, extra: &str) -> String {
        format!(
            "  - name: {name}\n    host: 127.0.0.1\n    port: {port}\n    tls: implicit\n    \
             ca_file: {ca}\n    username: user\n    password: {password}\n{extra}",
            port = self.port,
            ca = self.dovecot.ca_pem_path().display(),
        )
    }

    /// A whole configuration: settings, the given account blocks, rules.
    pub fn config(&self, accounts: &str, rules: &str, settings: &str) -> String {
        format!(
            "settings:\n  state_dir: {state}\n{settings}accounts:\n{accounts}rules:\n{rules}",
            state = self.dir.path().join("state").display(),
        )
    }

    /// The usual configuration: one account `test`, [`RULES`].
    pub fn default_config(&self) -> String {
        self.config(&self.account("test", "pass", ""), RULES, "")
    }

    pub fn write_config(&self, text: &str) {
        write_private(&self.config_path, text);
    }

    /// Start the daemon on the file as it is now.
    pub async fn start(&mut self) {
        self.start_with(|_| {}).await
    }

    pub async fn start_with(&mut self, tweak: impl FnOnce(&mut Options)) {
        assert!(self.running.is_none(), "daemon already running");
        let config = imapsort::config::load(&self.config_path)
            .unwrap_or_else(|e| panic!("test configuration invalid:\n{e}"));
        let stats = Arc::new(Stats::default());
        let (reload, reload_rx) = mpsc::channel(4);
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let mut options = Options {
            reload_trigger: Some(reload_rx),
            stats: stats.clone(),
            sighup: false,
            ..Options::default()
        };
        options.backoff.base = Duration::from_millis(200);
        options.backoff.cap = Duration::from_secs(2);
        tweak(&mut options);
        let path = self.config_path.clone();
        let handle = tokio::spawn(daemon::run_with(
            path,
            config,
            async {
                let _ = shutdown_rx.await;
            },
            options,
        ));
        self.running = Some(Running {
            stats,
            shutdown,
            reload,
            handle,
        });
    }

    pub fn stats(&self) -> &Stats {
        &self.running.as_ref().expect("daemon running").stats
    }

    /// Stop the daemon and check it returned Ok within 5 s.
    pub async fn stop(&mut self) -> Duration {
        let r = self.running.take().expect("daemon running");
        let started = std::time::Instant::now();
        let _ = r.shutdown.send(());
        let out = tokio::time::timeout(Duration::from_secs(5), r.handle)
            .await
            .expect("daemon did not stop within 5 s")
            .expect("daemon task panicked");
        out.expect("daemon returned an error");
        started.elapsed()
    }

    /// A test client on the server itself (never through a proxy).
    pub async fn client(&self) -> Session {
        let opts = ConnectOptions {
            account: "client".into(),
            host: "127.0.0.1".into(),
            port: self.dovecot.imaps_port(),
            tls: imapsort::config::TlsMode::Implicit,
            allow_insecure: false,
            ca_file: Some(self.dovecot.ca_pem_path()),
            username: "user".into(),
            auth: imapsort::config::AuthMechanism::Login,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(10),
        };
        imapsort::imap::connect(&opts, &SecretString::from("pass".to_string()))
            .await
            .expect("test client login")
    }

    /// Messages in `mailbox` now (0 when it does not exist).
    pub async fn count(&self, mailbox: &str) -> u32 {
        let mut s = self.client().await;
        let n = match s.status(mailbox).await {
            Ok(st) => st.messages.unwrap_or(0),
            Err(_) => 0,
        };
        let _ = s.logout().await;
        n
    }

    /// Deliver messages into `mailbox` the way a local delivery agent does.
    pub fn deliver(&self, mailbox: &str, messages: &[Vec<u8>]) {
        self.dovecot.seed("user", mailbox, messages).unwrap();
    }

    /// Wait until `mailbox` holds `n` messages; panics with the counts after `limit`.
    pub async fn wait_count(&self, mailbox: &str, n: u32, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.count(mailbox).await;
            if got == n {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{mailbox} holds {got} messages, expected {n} (after {limit:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until `cond` holds.
    /// Wait until a worker has selected its mailbox: mail delivered after this counts as new.
    pub async fn wait_selected(&self) {
        self.wait_until("a selected mailbox", Duration::from_secs(10), |s| {
            get(&s.mailboxes_selected) >= 1
        })
        .await;
    }

    pub async fn wait_until(&self, what: &str, limit: Duration, cond: impl Fn(&Stats) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !cond(self.stats()) {
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Write a file readable only by us (a literal password is in it).
pub fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A message to the user; `list` adds a List-Id header.
pub fn mail(n: usize, subject: &str, list: Option<&str>) -> Vec<u8> {
    let list = list
        .map(|l| format!("List-Id: Discussion <{l}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Sender {n} <sender{n}@example.com>\r\nTo: user@example.com\r\n\
         Subject: {subject}\r\nMessage-ID: <m{n}.{subject_id}@example.com>\r\n{list}\
         Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBody of message {n}.\r\n",
        subject_id = subject.len()
    )
    .into_bytes()
}

/// Current value of a counter.
pub fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(std::sync::atomic::Ordering::SeqCst)
}
