//! A scripted IMAP peer: a fake server on 127.0.0.1:0 that follows a C:/S: transcript exactly.
//!
//! ```text
//! S: * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready
//! C: A1 CAPABILITY
//! S: * CAPABILITY IMAP4rev1
//! S: A1 OK done
//! ```
//!
//! Lines are taken without leading whitespace (trailing spaces are kept: `S: + ` sends `+ `).
//! In `S:` lines, `{CRLF}` stands for a line break inside one write (to send two responses in
//! one TCP segment). `C:` lines must match what the client sends (exactly; `*` at the end matches any rest of the
//! line). `S:` lines are sent with CRLF. `S! close` closes the connection; `S! stall` stops
//! answering (keeps the socket open) until the client goes away. A mismatch is reported as the
//! peer's result, so the test sees what the client actually sent.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running scripted peer.
pub struct Peer {
    pub port: u16,
    /// The transcript outcome: Ok, or the first mismatch.
    pub done: JoinHandle<Result<(), String>>,
}

/// Serve one connection in plaintext.
pub async fn start(script: &str) -> Peer {
    start_inner(script.to_string(), None).await
}

/// Serve one connection in plaintext; the script is made once the port is known (for
/// transcripts that contain the port, like OAUTHBEARER's).
pub async fn start_with(script: impl FnOnce(u16) -> String) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    serve(listener, script(port), None)
}

/// Serve one connection over TLS with a certificate for `names`; returns the CA PEM path's
/// contents too (so the client can trust it).
pub async fn start_tls(script: &str, names: &[&str]) -> (Peer, String) {
    let (ca, cert, key) = imapsort_testkit::dovecot::make_ca_and_leaf(names).unwrap();
    let acceptor = tls_acceptor(&cert, &key);
    (start_inner(script.to_string(), Some(acceptor)).await, ca)
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn start_inner(script: String, tls: Option<tokio_rustls::TlsAcceptor>) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, script, tls)
}

fn serve(listener: TcpListener, script: String, tls: Option<tokio_rustls::TlsAcceptor>) -> Peer {
    let port = listener.local_addr().unwrap().port();
    let done = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        match tls {
            Some(acceptor) => match acceptor.accept(tcp).await {
                Ok(s) => play(s, &script).await,
                Err(e) => Err(format!("TLS accept failed: {e}")),
            },
            None => play(tcp, &script).await,
        }
    });
    Peer { port, done }
}

async fn play<S: AsyncRead + AsyncWrite + Unpin>(stream: S, script: &str) -> Result<(), String> {
    let (r, mut w) = tokio::io::split(stream);
    let mut reader = BufReader::new(r);
    for line in script
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.trim().is_empty())
    {
        if let Some(s) = line.strip_prefix("S: ") {
            let s = s.replace("{CRLF}", "\r\n");
            w.write_all(s.as_bytes()).await.map_err(|e| e.to_string())?;
            w.write_all(b"\r\n").await.map_err(|e| e.to_string())?;
            w.flush().await.map_err(|e| e.to_string())?;
        } else if let Some(expected) = line.strip_prefix("C: ") {
            let mut got = String::new();
            let n = reader
                .read_line(&mut got)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("client closed; expected {expected:?}"));
            }
            let got = got.trim_end_matches(['\r', '\n']);
            let ok = match expected.strip_suffix('*') {
                Some(prefix) => got.starts_with(prefix),
                None => got == expected,
            };
            if !ok {
                return Err(format!("expected C: {expected:?}, got {got:?}"));
            }
        } else if line == "S! close" {
            let _ = w.shutdown().await;
            return Ok(());
        } else if line == "S! stall" {
            let mut sink = String::new();
            while reader
                .read_line(&mut sink)
                .await
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                sink.clear();
            }
            return Ok(());
        } else {
            return Err(format!("bad script line {line:?}"));
        }
    }
    Ok(())
}
