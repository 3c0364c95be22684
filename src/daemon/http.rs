//! The daemon's HTTP endpoint (`settings.metrics_listen`): `GET /metrics` in the Prometheus
//! text format and `GET /health` as JSON, HTTP/1.1 with hyper on the daemon's runtime.
//!
//! Nothing here changes anything: every request only reads [`Metrics`] and the daemon's
//! [`Health`]. Connections are few
//! (a scraper, a probe), so each gets its own task; a header that takes longer than
//! [`HEADER_TIMEOUT`] to arrive closes the connection, and at most [`MAX_CONNECTIONS`] are
//! served at once (the rest wait in the listen queue).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::status::Health;
use crate::config::ListenAddr;

/// A client must send its request head within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Why the endpoint could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for /metrics and /health (settings.metrics_listen)")]
pub struct BindError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

/// Bind `addr` (before anything else starts, so a port in use stops the daemon at once).
pub async fn bind(addr: &ListenAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind((addr.host.as_str(), addr.port))
        .await
        .map_err(|source| BindError {
            addr: addr.to_string(),
            source,
        })
}

/// Serve until `token` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    state: Arc<Health>,
    token: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = token.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(error) => {
                    // Out of file descriptors, say: try again shortly rather than spin.
                    tracing::warn!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (metrics, state) = (metrics.clone(), state.clone());
        let token = token.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let (metrics, state) = (metrics.clone(), state.clone());
                async move { Ok::<_, Infallible>(respond(&req, &metrics, &state)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(error) = r {
                        tracing::debug!(%peer, %error, "metrics endpoint: connection ended");
                    }
                }
                _ = token.cancelled() => {}
            }
        });
    }
}

/// The answer to one request.
fn respond(req: &Request<Incoming>, metrics: &Metrics, state: &Health) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".into(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            metrics.encode(),
        ),
        "/health" => {
            let health = metrics.health(state);
            let status = if health.all_connected() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let mut body = serde_json::to_string(&health).expect("health is plain data");
            body.push('\n');
            reply(status, "application/json", body)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics or /health\n".into(),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The address a listener got (the port is the kernel's choice for port 0).
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// One request with `Connection: close`; (status code, headers, body).
    fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, head.to_owned(), body.to_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_metrics_and_health_and_nothing_else() {
        let metrics = Metrics::new();
        metrics.set_accounts(["a", "b"], ["r"]);
        let listener = bind(&ListenAddr {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .await
        .unwrap();
        let addr = local_addr(&listener).unwrap();
        let token = CancellationToken::new();
        let state = Arc::new(Health::default());
        let server = tokio::spawn(serve(
            listener,
            metrics.clone(),
            state.clone(),
            token.clone(),
        ));
        let a = metrics.link("a");
        let b = metrics.link("b");
        a.up();
        let (code, head, body) = tokio::task::spawn_blocking(move || get(addr, "GET", "/health"))
            .await
            .unwrap();
        assert_eq!(code, 503, "{head}\n{body}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "degraded");
        assert_eq!(json["accounts"]["a"]["connected"], true);
        assert_eq!(json["accounts"]["b"]["connected"], false);
        b.up();
        let (code, _, body) = tokio::task::spawn_blocking(move || get(addr, "GET", "/health"))
            .await
            .unwrap();
        assert_eq!(code, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "ok");
        // Connected but the state database is not writable: still 200 (every account is
        // connected), and degraded.
        state.set_degraded("b", "disk full".into());
        let (code, _, body) = tokio::task::spawn_blocking(move || get(addr, "GET", "/health"))
            .await
            .unwrap();
        assert_eq!(code, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "degraded", "{body}");
        state.recovered("b");
        let (code, head, body) = tokio::task::spawn_blocking(move || get(addr, "GET", "/metrics"))
            .await
            .unwrap();
        assert_eq!(code, 200);
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        assert!(
            body.contains("imapsort_connections{account=\"a\"} 1"),
            "{body}"
        );
        let (code, _, _) = tokio::task::spawn_blocking(move || get(addr, "GET", "/"))
            .await
            .unwrap();
        assert_eq!(code, 404);
        let (code, head, _) = tokio::task::spawn_blocking(move || get(addr, "POST", "/metrics"))
            .await
            .unwrap();
        assert_eq!(code, 405);
        assert!(
            head.to_ascii_lowercase().contains("allow: get, head"),
            "{head}"
        );
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops when cancelled")
            .unwrap();
    }

    #[tokio::test]
    async fn a_port_in_use_is_a_bind_error_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = bind(&ListenAddr {
            host: "127.0.0.1".into(),
            port,
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("cannot listen on 127.0.0.1:{port}")),
            "{err}"
        );
    }
}
