//! Shared helpers for integration tests. Each test file does `mod support;` and uses what it
//! needs; not every file uses every helper.
#![allow(dead_code)]

pub mod dovecot;
pub mod peer;

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
