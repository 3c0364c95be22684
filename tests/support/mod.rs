//! Shared helpers for integration tests. Each test file does `mod support;` and uses what it
//! needs; not every file uses every helper.
//!
//! - `dovecot::start(opts)` / `start_default()`: a private Dovecot, or `None` (skipped loudly)
//!   when it is not installed outside CI; `connect_opts`, `message`, `write_config`.
//! - `peer::start(script)`: a scripted IMAP server speaking a C:/S: transcript.
//! - `proxy::Proxy::start(target)`: a fault-injecting TCP proxy (cut after N bytes, stall,
//!   delay, seeded random cuts, refusals) with a runtime handle.
//! - `run_with_timeout(limit, async { .. })`: every socket test runs under a hard timeout.
//! - `spawn_run(config, log)`: the real `imapsort run` binary, its log lines (info) into `log`.
#![allow(dead_code)]

pub mod dovecot;
pub mod login;
pub mod oauth_server;
pub mod peer;
pub mod proxy;

use std::future::Future;
use std::time::Duration;

/// Run an async test body on a fresh runtime under a hard timeout (every socket test has one).
pub fn run_with_timeout<F: Future<Output = ()>>(limit: Duration, body: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        if tokio::time::timeout(limit, body).await.is_err() {
            panic!("test exceeded its hard timeout of {limit:?}");
        }
    });
}

/// Starts the real `imapsort run -c config`, outside systemd, logging at `info` into `log`.
pub fn spawn_run(config: &std::path::Path, log: std::fs::File) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["run", "-c"])
        .arg(config)
        .env("IMAPSORT_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start imapsort run")
}
