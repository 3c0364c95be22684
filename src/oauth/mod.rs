//! OAuth 2.0 handled by imapsort: signing in once (`imapsort login`), then keeping an
//! `auth: oauth2` account supplied with access tokens for months.
//!
//! ```text
//! http     form-encoded POSTs to the token and device endpoints (ureq + rustls, verified
//!          like IMAP: system roots, webpki fallback, the account's ca_file); OAuth replies
//! store    STATE_DIR/oauth2/ACCOUNT.json: refresh token + cached access token, mode 0600,
//!          written atomically; a lock file so two processes never refresh at once
//! tokens   the per-process cache every connection of an account shares: a cached access
//!          token until < 60 s remain, one refresh when the server refuses it, rotated refresh
//!          tokens saved before use and never sent twice, invalid_grant -> "log in again"
//! device   RFC 8628: device authorization, then polling with interval and slow_down
//! browser  RFC 8252 + RFC 7636: authorization code with PKCE S256 and state, a loopback
//!          redirect listener, or the final redirect URL pasted on stdin
//! ```
//!
//! Secrets are `SecretString`s (their `Debug` prints nothing) and are never passed to
//! `tracing`; the HTTP library's own wire logs are capped in `logging`.

pub(crate) mod browser;
pub(crate) mod device;
mod http;
pub(crate) mod store;
mod tokens;

use std::path::PathBuf;

pub use http::{Http, TokenReply};
pub use tokens::{access_token, login_changed, refused};

/// What can go wrong getting a token. Messages never contain a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The account has no usable sign-in: never logged in, the refresh token was refused
    /// (`invalid_grant`), or it may have been used already. Only `imapsort login` helps.
    #[error("account {account} must sign in again: run `imapsort login {account}` ({why})")]
    LoginNeeded {
        account: String,
        why: String,
        /// The token file; the account can go on once it changes.
        token_file: PathBuf,
        /// The token file's version when this was found (`None`: there was no file).
        stamp: Option<store::Stamp>,
        /// True for the first report of this state in this process (log it), false after.
        first: bool,
    },
    /// The endpoint could not be reached or answered something that is not OAuth.
    #[error("token endpoint {url}: {message}")]
    Endpoint {
        url: String,
        message: String,
        /// Worth trying again later (network, 5xx).
        transient: bool,
    },
    /// The endpoint answered with an OAuth error (other than `invalid_grant` on refresh).
    #[error("token endpoint {url} refused the request: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        url: String,
        error: String,
        description: Option<String>,
    },
    /// The token file or its directory could not be read or written.
    #[error("token file {}: {message}", path.display())]
    Store {
        path: PathBuf,
        message: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// `client_secret` could not be had.
    #[error("client_secret could not be had")]
    Secret(#[source] crate::config::secret::SecretError),
    /// The TLS setup for the endpoints failed (an unreadable `ca_file`).
    #[error("TLS setup for the token endpoint: {0}")]
    Tls(String),
    /// Asked for a token of an account that does not use `auth: oauth2` (a bug).
    #[error("account {0} does not use auth: oauth2")]
    NotOAuth2(String),
}

impl OAuthError {
    /// Whether retrying later, without the user doing anything, can help.
    pub fn is_transient(&self) -> bool {
        match self {
            OAuthError::Endpoint { transient, .. } => *transient,
            // A full disk or a lock held by another process passes.
            OAuthError::Store { .. } => true,
            OAuthError::LoginNeeded { .. }
            | OAuthError::Refused { .. }
            | OAuthError::Secret(_)
            | OAuthError::Tls(_)
            | OAuthError::NotOAuth2(_) => false,
        }
    }
}
