//! The validated configuration: what the rest of imapsort reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::rules::RuleSet;
use crate::rules::ast::Span;
use crate::vocab::MailboxName;

/// A loaded, validated and compiled configuration file.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (as given), for messages and reloads.
    pub path: PathBuf,
    pub settings: Settings,
    pub accounts: Vec<Account>,
    /// Compiled once; shared by every worker and swapped whole on reload.
    pub rules: Arc<RuleSet>,
    /// Warnings found while loading (the errors make loading fail instead).
    pub warnings: Vec<super::Diagnostic>,
}

impl Config {
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

/// The `settings:` section, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Where `state.sqlite3` lives.
    pub state_dir: PathBuf,
    pub sweep_interval: Duration,
    pub idle_refresh: Duration,
    /// Where the daemon serves `/metrics` and `/health`; `None`: not at all (the default).
    pub metrics_listen: Option<ListenAddr>,
    /// Connection attempts (TCP + TLS + login) in flight at once per server host. Default 8.
    pub max_connecting: u32,
}

/// A validated `HOST:PORT` to listen on: an IPv4 address, a bracketed IPv6 address or a host
/// name, and a port (0: any free port, which the daemon logs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// As written, without the brackets of an IPv6 address.
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connect, then STARTTLS; refused if the server does not offer it.
    StartTls,
    /// No TLS at all; only with `allow_insecure: true`.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMechanism {
    Login,
    Plain,
    XOAuth2,
    OAuthBearer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FirstStart {
    /// Only mail arriving from the first start on.
    New,
    /// Existing mail too.
    All,
}

/// Where a password or OAuth token comes from. Resolved only when a command needs it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// argv, no shell; stdout less one trailing newline.
    Command(Vec<String>),
    Env(String),
    /// Relative paths are taken relative to `$CREDENTIALS_DIRECTORY` when it is set, else the
    /// config file's directory.
    File(PathBuf),
    /// Written in the config file. `Debug` never shows it.
    Literal(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Command(argv) => f.debug_tuple("Command").field(argv).finish(),
            SecretSource::Env(var) => f.debug_tuple("Env").field(var).finish(),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
            SecretSource::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}

/// How an account proves who it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Credentials {
    /// `password:`: a password (LOGIN, PLAIN) or, with `auth: xoauth2` / `oauthbearer`, an
    /// access token a helper program provides.
    Secret(SecretSource),
    /// `auth: oauth2`: imapsort signs in (`imapsort login`) and refreshes tokens itself.
    OAuth2(Box<OAuth2>),
}

impl Credentials {
    /// The imapsort-managed OAuth 2.0 settings, if the account uses them.
    pub fn oauth2(&self) -> Option<&OAuth2> {
        match self {
            Credentials::OAuth2(o) => Some(o),
            Credentials::Secret(_) => None,
        }
    }
}

/// Who issues the tokens of an `auth: oauth2` account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Microsoft Entra ID (Outlook.com, Microsoft 365): device and browser login.
    Microsoft,
    /// Google (Gmail, Workspace): browser login only (its device flow refuses the mail scope).
    Google,
    /// Any RFC 6749 server; every URL is given.
    Custom,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Microsoft => "microsoft",
            Provider::Google => "google",
            Provider::Custom => "custom",
        }
    }
}

/// The `oauth2:` block of an account, provider defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OAuth2 {
    pub provider: Provider,
    /// The application's registration, brought by the user.
    pub client_id: String,
    /// Sent in the body of token requests when given (confidential or Google desktop clients).
    pub client_secret: Option<SecretSource>,
    /// Requested at login; empty means no `scope` parameter.
    pub scopes: Vec<String>,
    /// Where codes and refresh tokens are exchanged (RFC 6749 §3.2).
    pub token_url: String,
    /// The RFC 8628 device authorization endpoint; `None`: no device login.
    pub device_url: Option<String>,
    /// The authorization endpoint for the browser login; `None`: no browser login.
    pub authorize_url: Option<String>,
    /// Extra query parameters for the authorization request (Google: `access_type=offline`).
    pub authorize_params: Vec<(String, String)>,
    /// `STATE_DIR/oauth2/ACCOUNT.json`: the refresh token and the cached access token.
    pub token_file: PathBuf,
    /// Where `provider:` is written (the `oauth2:` block when it is missing), for errors that
    /// `imapsort login` finds (a login method the provider lacks).
    pub span: Span,
}

/// One entry of `accounts:`, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Account {
    /// Unique; letters, digits, `-`, `_`, `.`.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Required (true) for `tls: none`.
    pub allow_insecure: bool,
    /// An extra trust anchor, added to the system roots.
    pub ca_file: Option<PathBuf>,
    pub username: String,
    /// A password or token source, or imapsort's own OAuth 2.0 sign-in.
    pub credentials: Credentials,
    /// The mechanism on the wire. With `auth: oauth2` it is `oauth2.mechanism` (XOAUTH2 or
    /// OAUTHBEARER).
    pub auth: AuthMechanism,
    /// Mailboxes pushed with IDLE (UTF-8, `/`-separated). Default `[INBOX]`.
    pub watch: Vec<MailboxName>,
    /// IDLE connections for this account; watched mailboxes beyond it are polled. Default 4.
    pub max_connections: u32,
    /// For servers without IDLE and mailboxes beyond the cap. Default 2m.
    pub poll_interval: Duration,
    /// `None`: SPECIAL-USE `\Trash`, else "Trash".
    pub trash: Option<String>,
    /// `None`: SPECIAL-USE `\Archive`, else "Archive".
    pub archive: Option<String>,
    pub first_start: FirstStart,
    /// Where the account's map starts in the file.
    pub span: Span,
}
