//! The one error type of the IMAP layer.

use std::time::Duration;

/// Everything that can go wrong talking to an IMAP server. Messages never contain a password
/// or token; `is_transient` tells a caller whether reconnecting and retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// DNS, TCP connect, read or write failed.
    #[error("connection to {host}:{port} failed")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// An established connection broke (read/write error).
    #[error("i/o error on the IMAP connection")]
    Io(#[source] std::io::Error),
    /// The server closed the connection (EOF or an untagged BYE).
    #[error("the server closed the connection{}", fmt_reason(.0))]
    ConnectionLost(Option<String>),
    /// No answer within the limit.
    #[error("timed out after {0:?} waiting for the server ({1})")]
    Timeout(Duration, &'static str),
    /// TLS handshake or certificate verification failed.
    #[error("TLS with {host} failed")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS setup itself is wrong (unreadable `ca_file`, no roots, bad host name).
    #[error("TLS setup: {0}")]
    TlsConfig(String),
    /// `tls: starttls` but the server does not offer it: refusing (possible downgrade attack).
    #[error("{host} does not offer STARTTLS; refusing to continue without TLS")]
    StartTlsUnavailable { host: String },
    /// A plaintext connection without `allow_insecure: true`.
    #[error("refusing an unencrypted connection without allow_insecure: true")]
    Insecure,
    /// The server rejected the credentials.
    #[error("login to account {account} was rejected{}", fmt_reason(.reason))]
    Auth {
        account: String,
        reason: Option<String>,
    },
    /// The password or token could not be obtained.
    #[error("could not get the secret of account {account}")]
    Secret {
        account: String,
        #[source]
        source: crate::config::secret::SecretError,
    },
    /// The server answered NO to a command.
    #[error("server said NO to {command}: {text}")]
    No {
        command: String,
        text: String,
        /// The response code (`OVERQUOTA`, `TRYCREATE`, `ALREADYEXISTS` ...), upper-cased.
        code: Option<String>,
    },
    /// The server answered BAD to a command (our bug or a server quirk).
    #[error("server said BAD to {command}: {text}")]
    Bad { command: String, text: String },
    /// Bytes that do not parse as IMAP.
    #[error("unparsable server response: {0}")]
    Protocol(String),
    /// The server lacks something the operation needs.
    #[error("the server does not support {0}")]
    Unsupported(&'static str),
    /// A mailbox name that cannot be put on the wire.
    #[error(transparent)]
    Name(#[from] super::mailbox::NameError),
    /// A mailbox name from the server that is not modified UTF-7.
    #[error(transparent)]
    Utf7(#[from] super::mailbox::Utf7Error),
    /// An argument with CR/LF or NUL, which would inject a command.
    #[error("invalid argument for {0}: contains CR, LF or NUL")]
    InvalidArgument(&'static str),
}

fn fmt_reason(reason: &Option<String>) -> String {
    match reason {
        Some(r) if !r.is_empty() => format!(": {r}"),
        _ => String::new(),
    }
}

impl ImapError {
    /// Whether reconnecting and trying again later can help (network, timeouts, BYE).
    /// Authentication, TLS verification and per-command NO/BAD are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Connect { .. }
            | ImapError::Io(_)
            | ImapError::ConnectionLost(_)
            | ImapError::Timeout(..) => true,
            // The connection broke during the handshake (a server restarting resets it); a
            // certificate or protocol problem is not transient (rustls reports InvalidData).
            ImapError::Tls { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::TimedOut
            ),
            // [UNAVAILABLE] / [INUSE] (RFC 5530) are the server telling us to come back later.
            ImapError::No { code, .. } => {
                matches!(code.as_deref(), Some("UNAVAILABLE" | "INUSE" | "LIMIT"))
            }
            _ => false,
        }
    }

    /// Whether the connection is unusable after this error (drop it, reconnect).
    pub fn is_connection_fatal(&self) -> bool {
        matches!(
            self,
            ImapError::Connect { .. }
                | ImapError::Io(_)
                | ImapError::ConnectionLost(_)
                | ImapError::Timeout(..)
                | ImapError::Protocol(_)
                | ImapError::Tls { .. }
        )
    }

    /// The response code of a NO, upper-cased (`TRYCREATE`, `ALREADYEXISTS` ...).
    pub fn no_code(&self) -> Option<&str> {
        match self {
            ImapError::No { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        let io = || std::io::Error::other("x");
        let no = |code: Option<&str>| ImapError::No {
            command: "UID STORE".into(),
            text: "t".into(),
            code: code.map(String::from),
        };
        for (err, transient) in [
            (ImapError::Io(io()), true),
            (ImapError::ConnectionLost(Some("bye".into())), true),
            (ImapError::Timeout(Duration::from_secs(1), "greeting"), true),
            (
                ImapError::Auth {
                    account: "a".into(),
                    reason: None,
                },
                false,
            ),
            (
                ImapError::Tls {
                    host: "h".into(),
                    source: io(),
                },
                false,
            ),
            // A certificate rustls refused (tokio-rustls reports it as InvalidData).
            (
                ImapError::Tls {
                    host: "h".into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, "UnknownIssuer"),
                },
                false,
            ),
            // The server reset the connection in the middle of the handshake (restarting):
            // regression, a Dovecot restart under 1,000 accounts left 8 of them waiting the
            // full 5-minute "cannot log in" backoff.
            (
                ImapError::Tls {
                    host: "h".into(),
                    source: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
                },
                true,
            ),
            (
                ImapError::Tls {
                    host: "h".into(),
                    source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                },
                true,
            ),
            (no(None), false),
            (no(Some("UNAVAILABLE")), true),
            (ImapError::Insecure, false),
        ] {
            assert_eq!(err.is_transient(), transient, "{err:?}");
        }
    }

    #[test]
    fn auth_error_names_account() {
        let e = ImapError::Auth {
            account: "personal".into(),
            reason: Some("Authentication failed.".into()),
        };
        assert_eq!(
            e.to_string(),
            "login to account personal was rejected: Authentication failed."
        );
    }
}
