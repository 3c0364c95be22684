//! Operations at scale, against a real Dovecot started by the tests: `/metrics` and `/health`,
//! connection pacing and recovery after a server restart, `--shard` with several instances,
//! and the deployment examples under `deploy/` (the units and the Debian package are checked
//! in tests/systemd_units.rs).
//!
//! One test binary for all of it (linking is the slow part on a small machine).

#[path = "../support/harness.rs"]
mod harness;
#[path = "../support/mod.rs"]
mod support;

mod deploy;
mod metrics;
mod pacing;
mod shards;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request with `Connection: close`: (status code, body). Panics on anything
/// that is not an HTTP response within 10 s.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        text
    };
    let text = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("no HTTP answer within 10 s");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (code, body.to_owned())
}

/// `/health` as JSON, with its status code.
pub async fn health(addr: SocketAddr) -> (u16, serde_json::Value) {
    let (code, body) = http_get(addr, "/health").await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (code, json)
}

/// The value of one sample of a `/metrics` text (`name{labels}` exactly as exposed).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

/// Poll `check` every 50 ms until it returns `Ok`; after `limit`, panic with `what` and the
/// last `Err` (what was seen instead).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
