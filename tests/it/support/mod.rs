//! Helpers shared by the integration tests; each test module takes what it needs.
//!
//! - `dovecot::start(opts)` / `start_default()`: a private Dovecot (imapsort-testkit), or `None`
//!   (skipped loudly) when it is not installed outside CI; `connect_opts`, `message`,
//!   `write_config`.
//! - `harness`: the real daemon in-process against a private Dovecot (config, start, stop,
//!   deliver, count, wait for its counters).
//! - `peer::start(script)`: a scripted IMAP server speaking a C:/S: transcript.
//! - `proxy::Proxy::start(target)`: a fault-injecting TCP proxy (cut after N bytes, stall,
//!   delay, seeded random cuts, refusals) with a runtime handle.
//! - `http`: `/metrics` and `/health` of a running daemon, `poll_until` an async check passes,
//!   a child process awaited with a limit.
//! - `state`: the daemon's state database read from the side (what a test awaits).
//! - `sweep_util`: the sweep command in-process, mailbox contents over a second connection.
//! - `workload`: the soak and crash tests' messages and the invariants checked after them.
//! - `corpus`: the malformed-mail corpus (committed cases in tests/malformed/, large ones made
//!   here).
//! - `run_with_timeout(limit, async { .. })`: every socket test runs under a hard timeout;
//!   `run_with_timeout_logged` also hands the body what the code under test logged;
//!   `eventually(what, limit, cond)` awaits a condition (tests await, never sleep to sync).
//! - `spawn_run(config, log)`: the real `imapsort run` binary, its log lines (info) into `log`,
//!   as a `Daemon` that is killed when dropped.
//! - `child_test(module_path!(), "name")`: the name to re-run one test of this binary as a child.

pub mod corpus;
pub mod dovecot;
pub mod harness;
pub mod http;
pub mod login;
pub mod oauth_server;
pub mod once_util;
pub mod peer;
pub mod proxy;
pub mod state;
pub mod sweep_util;
pub mod workload;

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Run an async test body on a fresh runtime under a hard timeout (every socket test has one).
pub fn run_with_timeout<F: Future<Output = ()>>(limit: Duration, body: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    block_on_with_timeout(&rt, limit, body);
}

fn block_on_with_timeout<F: Future<Output = ()>>(
    rt: &tokio::runtime::Runtime,
    limit: Duration,
    body: F,
) {
    rt.block_on(async {
        if tokio::time::timeout(limit, body).await.is_err() {
            panic!("test exceeded its hard timeout of {limit:?}");
        }
    });
}

/// What the code under test logged (text format), as a test reads it.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Wait until `cond` holds for the text logged so far; panics after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, cond: impl Fn(&str) -> bool) {
        eventually(what, limit, || cond(&self.text())).await;
    }
}

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        // Through the test harness's capture: shown when the test fails.
        eprint!("{}", String::from_utf8_lossy(b));
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// The log dispatcher of a runtime thread started by [`run_with_timeout_logged`].
    static THREAD_LOGS: RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { RefCell::new(None) };
}

/// [`run_with_timeout`], and every event that `filter` (`IMAPSORT_LOG` syntax: `info`,
/// `info,imapsort::imap::idle=trace`) lets through on the runtime's threads goes to the
/// [`Logs`] handed to `body`. The subscriber is each thread's default, never the process's:
/// tests in this binary run side by side and must not see each other's lines.
pub fn run_with_timeout_logged<F, Fut>(limit: Duration, filter: &str, body: F)
where
    F: FnOnce(Logs) -> Fut,
    Fut: Future<Output = ()>,
{
    keep_callsites_asking_every_dispatcher();
    let logs = Logs::default();
    let writer = logs.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .finish(),
    );
    let on_start = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&on_start);
            THREAD_LOGS.with(|g| *g.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| THREAD_LOGS.with(|g| drop(g.borrow_mut().take())))
        .build()
        .expect("tokio runtime");
    let _here = tracing::dispatcher::set_default(&dispatch);
    block_on_with_timeout(&rt, limit, body(logs));
}

/// tracing-core decides once per callsite whether anyone listens. While a single dispatcher is
/// registered it asks only the default of the thread that logs there first, and that can be
/// another test's thread, with no subscriber: the callsite would stay silent for every test.
/// A second registered dispatcher, alive as long as the process, makes it ask every
/// registered one, so each test's own dispatcher is heard.
fn keep_callsites_asking_every_dispatcher() {
    static ANCHOR: OnceLock<tracing::Dispatch> = OnceLock::new();
    ANCHOR.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

/// Poll `cond` every 20 ms until it holds; panics naming `what` after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The name under which `cargo test` knows test `name` of the module `module` (pass
/// `module_path!()`), for re-running this binary as a child with `--exact`.
pub fn child_test(module: &str, name: &str) -> String {
    let module = module.split_once("::").map_or("", |(_crate, m)| m);
    format!("{module}::{name}")
}

/// Starts the real `imapsort run -c config`, outside systemd, its log lines (info) appended
/// to `log`.
pub fn spawn_run(config: &std::path::Path, log: &std::path::Path) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the daemon's log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["run", "-c"])
        .arg(config)
        .env("IMAPSORT_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start imapsort run");
    Daemon::new(child)
}

/// A child process (a daemon, a long command) that is killed and reaped when dropped, so a
/// test that fails or panics half-way leaves nothing running behind it. Derefs to the
/// `Child` for everything else (`stop`, `kill`, `wait`, `id`).
pub struct Daemon(Option<std::process::Child>);

impl Daemon {
    pub fn new(child: std::process::Child) -> Daemon {
        Daemon(Some(child))
    }

    /// The child itself, no longer killed on drop (to wait for its output).
    pub fn into_inner(mut self) -> std::process::Child {
        self.0
            .take()
            .expect("a Daemon holds its child until into_inner")
    }
}

impl std::ops::Deref for Daemon {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.0
            .as_ref()
            .expect("a Daemon holds its child until into_inner")
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0
            .as_mut()
            .expect("a Daemon holds its child until into_inner")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0
            && child.try_wait().ok().flatten().is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
