//! Connecting: TCP (timeout, keepalive), TLS (implicit or STARTTLS), the greeting, and
//! authentication.
//!
//! The client side of the IMAP state machine (RFC 3501 §3) as implemented here:
//!
//! ```text
//!   connect --greeting OK--> not authenticated --[STARTTLS]--> (TLS) --LOGIN/AUTHENTICATE--+
//!      |   --greeting PREAUTH-----------------------------------------> authenticated <----+
//!      +--greeting BYE--> closed                                           |  SELECT
//!                                                                          v
//!                                                                        selected --LOGOUT--> closed
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::ServerName;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;

use super::auth::{self, Astring};
use super::response::{capability_names, wait_tagged};
use super::session::Session;
use super::transport::{Io, Transport};
use super::{ImapError, tls};
use crate::config::{Account, AuthMechanism, Credentials, TlsMode};

/// Everything needed to reach and log in to one account's server.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The account's name: errors and logs say which account failed.
    pub account: String,
    /// DNS name or IP address; also the name the certificate must carry.
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Required for `TlsMode::None`; checked here again, not only in the config.
    pub allow_insecure: bool,
    /// An extra trust anchor (PEM).
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub auth: AuthMechanism,
    /// TCP connect plus TLS handshake plus greeting.
    pub connect_timeout: Duration,
    /// The longest wait for any one server response (or write).
    pub command_timeout: Duration,
}

/// Default connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default per-response timeout.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

impl ConnectOptions {
    /// The options for a configured account, with default timeouts.
    pub fn from_account(account: &Account) -> ConnectOptions {
        ConnectOptions {
            account: account.name.clone(),
            host: account.host.clone(),
            port: account.port,
            tls: account.tls,
            allow_insecure: account.allow_insecure,
            ca_file: account.ca_file.clone(),
            username: account.username.clone(),
            auth: account.auth,
            connect_timeout: CONNECT_TIMEOUT,
            command_timeout: COMMAND_TIMEOUT,
        }
    }
}

/// Get the account's credentials and connect: the password source resolved (off the async
/// threads: it may run a command), or for `auth: oauth2` an access token from the token cache,
/// refreshed once when the server refuses it.
pub async fn connect_account(account: &Account, config_dir: &Path) -> Result<Session, ImapError> {
    let opts = ConnectOptions::from_account(account);
    let source = match &account.credentials {
        Credentials::Secret(source) => source.clone(),
        Credentials::OAuth2(_) => {
            let token = crate::oauth::access_token(account, config_dir).await?;
            return match connect(&opts, &token.secret).await {
                Err(ImapError::Auth { .. }) if !token.fresh => {
                    tracing::debug!(account = %account.name, "the server refused the access token; refreshing it once");
                    let token = crate::oauth::refused(account, config_dir, &token).await?;
                    connect(&opts, &token.secret).await
                }
                other => other,
            };
        }
    };
    let dir = config_dir.to_path_buf();
    let name = account.name.clone();
    let secret = tokio::task::spawn_blocking(move || source.resolve(&dir))
        .await
        .map_err(|e| ImapError::Io(std::io::Error::other(e)))?
        .map_err(|source| ImapError::Secret {
            account: name,
            source,
        })?;
    connect(&opts, &secret).await
}

/// Connect, secure, greet and authenticate. `secret` is the password or OAuth access token.
pub async fn connect(opts: &ConnectOptions, secret: &SecretString) -> Result<Session, ImapError> {
    if opts.tls == TlsMode::None && !opts.allow_insecure {
        return Err(ImapError::Insecure);
    }
    let limit = opts.connect_timeout;
    let (mut transport, greeted) = match tokio::time::timeout(limit, establish(opts)).await {
        Ok(r) => r?,
        Err(_) => return Err(ImapError::Timeout(limit, "connecting")),
    };
    transport.timeout = opts.command_timeout;
    let mut session = Session::new(transport, opts.account.clone());
    session.note_greeting(&greeted.text);
    let preauth = greeted.preauth;
    if !preauth {
        session.refresh_capabilities().await?;
        authenticate(&mut session, opts, secret).await?;
    }
    session.refresh_capabilities().await?;
    tracing::debug!(account = %opts.account, host = %opts.host, "logged in");
    Ok(session)
}

/// What the server's greeting said.
struct Greeting {
    /// PREAUTH rather than OK.
    preauth: bool,
    /// Its human-readable text (`Dovecot ready.`).
    text: String,
}

/// TCP + TLS + greeting (+ STARTTLS). Returns the transport and the greeting.
async fn establish(opts: &ConnectOptions) -> Result<(Transport, Greeting), ImapError> {
    let tcp = tcp_connect(&opts.host, opts.port).await?;
    let timeout = opts.connect_timeout;
    match opts.tls {
        TlsMode::Implicit => {
            let tls = tls_handshake(Box::new(tcp), opts).await?;
            let mut t = Transport::new(tls, timeout);
            let greeted = greeting(&mut t).await?;
            Ok((t, greeted))
        }
        TlsMode::StartTls => {
            let mut t = Transport::new(Box::new(tcp), timeout);
            let greeted = greeting(&mut t).await?;
            if greeted.preauth {
                // RFC 3501: STARTTLS is only valid before authentication. A PREAUTH greeting on a
                // connection that must be encrypted cannot be trusted.
                return Err(ImapError::StartTlsUnavailable {
                    host: opts.host.clone(),
                });
            }
            let caps = capability_raw(&mut t).await?;
            if !caps.iter().any(|c| c == "STARTTLS") {
                return Err(ImapError::StartTlsUnavailable {
                    host: opts.host.clone(),
                });
            }
            let tag = t.send("STARTTLS").await?;
            wait_tagged(&mut t, &tag, "STARTTLS").await?;
            let stream = t.into_stream()?;
            let tls = tls_handshake(stream, opts).await?;
            // Not PREAUTH (refused above); its text still names the server.
            Ok((Transport::new(tls, timeout), greeted))
        }
        TlsMode::None => {
            let mut t = Transport::new(Box::new(tcp), timeout);
            let greeted = greeting(&mut t).await?;
            Ok((t, greeted))
        }
    }
}

async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ImapError> {
    let err = |source| ImapError::Connect {
        host: host.to_string(),
        port,
        source,
    };
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(err)?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                // Keepalive finds dead peers behind NATs while we IDLE for minutes.
                let ka = socket2::TcpKeepalive::new()
                    .with_time(Duration::from_secs(60))
                    .with_interval(Duration::from_secs(15));
                if let Err(e) = socket2::SockRef::from(&s).set_tcp_keepalive(&ka) {
                    tracing::debug!(error = %e, "could not enable TCP keepalive");
                }
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address for host")
    })))
}

async fn tls_handshake(
    stream: Box<dyn Io>,
    opts: &ConnectOptions,
) -> Result<Box<dyn Io>, ImapError> {
    let config: Arc<rustls::ClientConfig> = tls::client_config(opts.ca_file.as_deref())?;
    let name = ServerName::try_from(opts.host.clone())
        .map_err(|_| ImapError::TlsConfig(format!("invalid server name {:?}", opts.host)))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector.connect(name, stream).await.map_err(|source| {
        // tokio-rustls wraps the rustls error in an io::Error.
        let refused = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .and_then(|e| match e {
                rustls::Error::InvalidCertificate(c) => Some(c),
                _ => None,
            });
        match refused {
            Some(c) => ImapError::Certificate {
                host: opts.host.clone(),
                problem: tls::certificate_problem(c, &opts.host, opts.ca_file.as_deref()),
            },
            None => ImapError::Tls {
                host: opts.host.clone(),
                source,
            },
        }
    })?;
    Ok(Box::new(tls))
}

/// Read the greeting: OK (go on), PREAUTH (already authenticated), BYE (refused).
async fn greeting(t: &mut Transport) -> Result<Greeting, ImapError> {
    match t.read().await? {
        Response::Data { status, outcome } => match status {
            Status::Ok | Status::PreAuth => Ok(Greeting {
                preauth: status == Status::PreAuth,
                text: outcome.information.as_deref().unwrap_or("").to_owned(),
            }),
            Status::Bye => Err(ImapError::ConnectionLost(
                outcome.information.map(|s| s.into_owned()),
            )),
            other => Err(ImapError::Protocol(format!(
                "unexpected greeting {other:?}"
            ))),
        },
        other => Err(ImapError::Protocol(format!(
            "unexpected greeting {:?}",
            std::mem::discriminant(&other)
        ))),
    }
}

/// CAPABILITY on a bare transport (before the session exists): upper-cased names.
async fn capability_raw(t: &mut Transport) -> Result<Vec<String>, ImapError> {
    let tag = t.send("CAPABILITY").await?;
    let untagged = wait_tagged(t, &tag, "CAPABILITY").await?;
    Ok(capability_names(&untagged))
}

async fn authenticate(
    session: &mut Session,
    opts: &ConnectOptions,
    secret: &SecretString,
) -> Result<(), ImapError> {
    let user = &opts.username;
    let result = match opts.auth {
        AuthMechanism::Login => {
            if session.has_capability("LOGINDISABLED") {
                return Err(ImapError::Unsupported(
                    "LOGIN (the server says LOGINDISABLED)",
                ));
            }
            login(session, user, secret.expose_secret()).await
        }
        AuthMechanism::Plain => {
            let ir = auth::plain(user, secret.expose_secret());
            sasl(session, "PLAIN", ir.as_bytes(), b"").await
        }
        AuthMechanism::XOAuth2 => {
            let ir = auth::xoauth2(user, secret.expose_secret());
            // On failure Google sends a JSON challenge and expects an empty response.
            sasl(session, "XOAUTH2", ir.as_bytes(), b"").await
        }
        AuthMechanism::OAuthBearer => {
            let ir = auth::oauthbearer(user, &opts.host, opts.port, secret.expose_secret());
            // RFC 7628 §3.2.3: after an error challenge the client sends a dummy ^A.
            sasl(session, "OAUTHBEARER", ir.as_bytes(), b"\x01").await
        }
    };
    match result {
        Ok(()) => Ok(()),
        // `NO [UNAVAILABLE]` (RFC 5530; Dovecot's "Temporary authentication failure" when its
        // auth service is overloaded, as after a restart) says come back later, not that the
        // credentials are wrong: keep it a transient NO, not a refused login.
        Err(e @ ImapError::No { .. }) if e.is_transient() => Err(e),
        Err(ImapError::No { text, .. }) | Err(ImapError::Bad { text, .. }) => {
            Err(ImapError::Auth {
                account: opts.account.clone(),
                reason: Some(text).filter(|t| !t.is_empty()),
            })
        }
        Err(e) => Err(e),
    }
}

/// `LOGIN user pass`, with literals for arguments that cannot be quoted.
async fn login(session: &mut Session, user: &str, password: &str) -> Result<(), ImapError> {
    let t = session.transport_mut();
    let tag = t.tag();
    let mut pending = format!("{tag} LOGIN");
    for arg in [user, password] {
        match auth::astring(arg) {
            Astring::Quoted(q) => {
                pending.push(' ');
                pending.push_str(&q);
            }
            Astring::Literal(bytes) => {
                pending.push_str(&format!(" {{{}}}", bytes.len()));
                t.write_line(pending.as_bytes()).await?;
                match t.read().await? {
                    Response::Continue(_) => {}
                    Response::Done { outcome, .. } => {
                        return Err(ImapError::No {
                            command: "LOGIN".into(),
                            text: outcome.information.as_deref().unwrap_or("").to_string(),
                            code: None,
                        });
                    }
                    _ => return Err(ImapError::Protocol("expected a continuation".into())),
                }
                // The literal's bytes, then the rest of the command line continues.
                t.write_raw(&bytes).await?;
                pending = String::new();
            }
        }
    }
    t.write_line(pending.as_bytes()).await?;
    wait_tagged(t, &tag, "LOGIN").await.map(|_| ())
}

/// `AUTHENTICATE MECH`, then the initial response on the continuation; after a second
/// (error) challenge, send `after_error` and let the tagged NO come.
async fn sasl(
    session: &mut Session,
    mechanism: &str,
    initial: &[u8],
    after_error: &[u8],
) -> Result<(), ImapError> {
    let t = session.transport_mut();
    let tag = t.send(&format!("AUTHENTICATE {mechanism}")).await?;
    let mut sent_initial = false;
    loop {
        match t.read().await? {
            Response::Continue(_) => {
                let reply = if sent_initial { after_error } else { initial };
                sent_initial = true;
                let line = B64.encode(reply);
                t.write_line(line.as_bytes()).await?;
            }
            Response::Done {
                tag: done_tag,
                status,
                outcome,
            } if done_tag.0 == tag => {
                let text = outcome.information.as_deref().unwrap_or("").to_string();
                return match status {
                    Status::Ok => Ok(()),
                    Status::No => Err(ImapError::No {
                        command: "AUTHENTICATE".into(),
                        text,
                        code: None,
                    }),
                    _ => Err(ImapError::Bad {
                        command: "AUTHENTICATE".into(),
                        text,
                    }),
                };
            }
            _ => {}
        }
    }
}
