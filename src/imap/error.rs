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
    /// The server's certificate was refused: `problem` says what is wrong with it and what to
    /// do (an unknown CA, a name mismatch naming both names, an expiry date).
    #[error("the certificate of {host} was refused: {problem}")]
    Certificate { host: String, problem: String },
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
    /// An `auth: oauth2` account's access token could not be had.
    #[error(transparent)]
    /// Boxed: the OAuth error is large, and every `Result` of the IMAP layer carries this type.
    OAuth(Box<crate::oauth::OAuthError>),
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
    Name(#[from] super::name::NameError),
    /// A mailbox name from the server that is not modified UTF-7.
    #[error(transparent)]
    Utf7(#[from] super::name::Utf7Error),
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

impl From<crate::oauth::OAuthError> for ImapError {
    fn from(e: crate::oauth::OAuthError) -> ImapError {
        ImapError::OAuth(Box::new(e))
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
            ImapError::OAuth(e) => e.is_transient(),
            // The connection broke during the handshake (a server restarting resets it): not a
            // TLS problem, and the next attempt may well succeed.
            ImapError::Tls { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
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
                | ImapError::Certificate { .. }
        )
    }

    /// The OAuth 2.0 error that says the account must sign in again (`imapsort login`).
    pub fn login_needed(&self) -> Option<&crate::oauth::OAuthError> {
        match self {
            ImapError::OAuth(e) if matches!(**e, crate::oauth::OAuthError::LoginNeeded { .. }) => {
                Some(e)
            }
            _ => None,
        }
    }

    /// Whether logging in failed: the server refused the credentials, or the password or
    /// token could not be had. (Not a TLS failure, a refused connection or a NO to a command.)
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, ImapError::Auth { .. } | ImapError::Secret { .. })
    }

    /// Whether a secure connection could not be set up: a refused certificate, a failed
    /// handshake, a TLS configuration error, STARTTLS not offered, or plaintext refused.
    pub fn is_tls_failure(&self) -> bool {
        if let ImapError::Tls { .. } = self {
            // A handshake cut short by the network is a connection problem, not a TLS one.
            return !self.is_transient();
        }
        matches!(
            self,
            ImapError::Certificate { .. }
                | ImapError::TlsConfig(_)
                | ImapError::StartTlsUnavailable { .. }
                | ImapError::Insecure
        )
    }

    /// What a failed connection attempt was, in the words of the one line that reports it.
    pub fn connect_failure(&self) -> &'static str {
        if self.is_auth_failure() {
            "cannot log in"
        } else if self.is_tls_failure() {
            "cannot connect securely"
        } else {
            "cannot connect"
        }
    }

    /// Whether a COPY or MOVE was refused because the destination mailbox does not exist:
    /// `[TRYCREATE]` (RFC 3501 §6.4.7), `[NONEXISTENT]` (RFC 5530), or a NO to COPY/MOVE without
    /// a code whose text says so (servers that predate the codes). The same for the STATUS
    /// that fences a copy destination: Dovecot answers it `NO Mailbox doesn't exist: NAME`,
    /// without a code.
    pub fn is_missing_mailbox(&self) -> bool {
        let ImapError::No {
            command,
            text,
            code,
        } = self
        else {
            return false;
        };
        if matches!(code.as_deref(), Some("TRYCREATE" | "NONEXISTENT")) {
            return true;
        }
        let to_mailbox = matches!(
            command.as_str(),
            "UID COPY" | "UID MOVE" | "COPY" | "MOVE" | "STATUS"
        );
        let text = text.to_ascii_lowercase();
        to_mailbox
            && code.is_none()
            && [
                "doesn't exist",
                "does not exist",
                "no such mailbox",
                "mailbox not found",
                "unknown mailbox",
            ]
            .iter()
            .any(|s| text.contains(s))
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
            // Regression: a Dovecot restarting reset the handshake of the first reconnect, and
            // the account waited out a permanent error's backoff (minutes) instead of retrying.
            (
                ImapError::Tls {
                    host: "h".into(),
                    source: std::io::ErrorKind::ConnectionReset.into(),
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
    fn missing_mailbox_classification() {
        let no = |command: &str, code: Option<&str>, text: &str| ImapError::No {
            command: command.into(),
            text: text.into(),
            code: code.map(String::from),
        };
        for (err, missing) in [
            (
                no("UID MOVE", Some("TRYCREATE"), "Mailbox doesn't exist: X"),
                true,
            ),
            (no("UID COPY", Some("NONEXISTENT"), "No such folder"), true),
            (no("UID COPY", None, "Mailbox does not exist"), true),
            (no("UID MOVE", None, "No such mailbox"), true),
            (no("STATUS", None, "Mailbox doesn't exist: Receipts"), true),
            (
                no("UID COPY", Some("OVERQUOTA"), "Mailbox does not exist?"),
                false,
            ),
            (no("UID COPY", None, "Quota exceeded"), false),
            (no("UID STORE", None, "Mailbox doesn't exist"), false),
            (ImapError::ConnectionLost(None), false),
        ] {
            assert_eq!(err.is_missing_mailbox(), missing, "{err:?}");
        }
    }

    #[test]
    fn connect_failures_say_what_kind_they_are() {
        let secret = || crate::config::secret::SecretError::NoProgram;
        for (err, auth, tls, words) in [
            (
                ImapError::Auth {
                    account: "a".into(),
                    reason: None,
                },
                true,
                false,
                "cannot log in",
            ),
            (
                ImapError::Secret {
                    account: "a".into(),
                    source: secret(),
                },
                true,
                false,
                "cannot log in",
            ),
            (
                ImapError::Certificate {
                    host: "h".into(),
                    problem: "p".into(),
                },
                false,
                true,
                "cannot connect securely",
            ),
            (
                ImapError::TlsConfig("ca_file x: missing".into()),
                false,
                true,
                "cannot connect securely",
            ),
            (ImapError::Insecure, false, true, "cannot connect securely"),
            (
                ImapError::Timeout(Duration::from_secs(1), "connecting"),
                false,
                false,
                "cannot connect",
            ),
            (
                ImapError::Unsupported("LOGIN"),
                false,
                false,
                "cannot connect",
            ),
        ] {
            assert_eq!(err.is_auth_failure(), auth, "{err:?}");
            assert_eq!(err.is_tls_failure(), tls, "{err:?}");
            assert_eq!(err.connect_failure(), words, "{err:?}");
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
