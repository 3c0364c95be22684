//! The `accounts:` section: each account with its defaults filled in, and its password source.

use std::time::Duration;

use super::diag::Diags;
use super::node::{Node, Value};
use super::password::{FileFacts, password};
use super::read::{self, MapKind};
use super::types::{Account, AuthMechanism, Credentials, FirstStart, TlsMode};
use crate::vocab::MailboxName;

const ACCOUNT_KEYS: &[&str] = &[
    "name",
    "host",
    "port",
    "tls",
    "allow_insecure",
    "ca_file",
    "username",
    "password",
    "auth",
    "watch",
    "max_connections",
    "poll_interval",
    "trash",
    "archive",
    "first_start",
    "oauth2",
];

const TLS_MODES: &[(&str, TlsMode)] = &[
    ("implicit", TlsMode::Implicit),
    ("starttls", TlsMode::StartTls),
    ("none", TlsMode::None),
];

/// `auth:` as written: a mechanism with a password source, or imapsort's own OAuth 2.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    Mechanism(AuthMechanism),
    OAuth2,
}

const AUTH_CHOICES: &[(&str, Auth)] = &[
    ("login", Auth::Mechanism(AuthMechanism::Login)),
    ("plain", Auth::Mechanism(AuthMechanism::Plain)),
    ("xoauth2", Auth::Mechanism(AuthMechanism::XOAuth2)),
    ("oauthbearer", Auth::Mechanism(AuthMechanism::OAuthBearer)),
    ("oauth2", Auth::OAuth2),
];

const FIRST_START: &[(&str, FirstStart)] = &[("new", FirstStart::New), ("all", FirstStart::All)];

/// An account name: letters, digits, `-`, `_`, `.` (ASCII), not empty.
pub(crate) fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Read `accounts:` (absent or `null`: none). Accounts with errors are left out; the second
/// list names every account the file defines, so rules naming a broken account are not
/// reported twice.
pub(crate) fn accounts(
    d: &mut Diags,
    node: Option<&Node>,
    facts: &FileFacts<'_>,
) -> (Vec<Account>, Vec<String>) {
    let Some(node) = node.filter(|n| n.value != Value::Null) else {
        return (Vec::new(), Vec::new());
    };
    let Value::Seq(items) = &node.value else {
        d.error(
            node.span,
            format!(
                "accounts: expected a list of accounts, found {}",
                read::found(node)
            ),
        );
        return (Vec::new(), Vec::new());
    };
    let mut out: Vec<Account> = Vec::new();
    let mut names: Vec<(String, crate::rules::ast::Span)> = Vec::new();
    for item in items {
        let name = account_name(item);
        d.set_account(name.clone());
        if let Some(name) = &name
            && let Some(name_node) = name_node(item)
        {
            if let Some((_, first)) = names.iter().find(|(n, _)| n == name) {
                d.error(
                    name_node.span,
                    format!(
                        "duplicate account name {name:?} (first at line {})",
                        first.line
                    ),
                );
            } else {
                names.push((name.clone(), name_node.span));
            }
        }
        let before = d.error_count();
        let account = account(d, item, facts);
        if d.error_count() == before
            && let Some(a) = account
        {
            out.push(a);
        }
    }
    d.set_account(None);
    (out, names.into_iter().map(|(n, _)| n).collect())
}

fn name_node(item: &Node) -> Option<&Node> {
    let Value::Map(entries) = &item.value else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some("name"))
        .map(|(_, v)| v)
}

/// The account's name if it is a usable string, to name it in messages.
fn account_name(item: &Node) -> Option<String> {
    name_node(item)
        .and_then(Node::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn account(d: &mut Diags, node: &Node, facts: &FileFacts<'_>) -> Option<Account> {
    let kind = MapKind {
        noun: "key",
        context: " in an account",
        allowed: ACCOUNT_KEYS,
        quiet: &[],
    };
    let f = read::fields(d, node, "account", &kind)?;

    let name = f
        .require(d, "name", "every account needs a unique name")
        .and_then(|n| {
            let s = read::text(d, n, "name")?;
            if !valid_account_name(&s) {
                d.error(
                    n.span,
                    format!(
                        "account name {s:?} may hold only letters, digits, \"-\", \"_\" and \".\""
                    ),
                );
                return None;
            }
            Some(s)
        });
    let host = f
        .require(d, "host", "the IMAP server's host name")
        .and_then(|n| read::text(d, n, "host"));
    let username = f
        .require(d, "username", "the login name")
        .and_then(|n| read::text(d, n, "username"));

    let tls = match f.get("tls") {
        Some(n) => read::choice(d, n, "tls", TLS_MODES),
        None => Some(TlsMode::Implicit),
    };
    let allow_insecure = match f.get("allow_insecure") {
        Some(n) => read::boolean(d, n, "allow_insecure").unwrap_or(false),
        None => false,
    };
    if tls == Some(TlsMode::None) && !allow_insecure {
        let at = f.get("tls").map_or(f.span, |n| n.span);
        d.error(
            at,
            "tls: none sends the password in clear text; add allow_insecure: true to allow it",
        );
    }
    let port = match f.get("port") {
        Some(n) => read::integer(d, n, "port", 1, 65535).map(|p| p as u16),
        None => match tls {
            Some(TlsMode::Implicit) | None => Some(993),
            Some(_) => Some(143),
        },
    };
    let ca_file = f
        .get_some("ca_file")
        .and_then(|n| read::text(d, n, "ca_file"))
        .map(|s| super::settings::expand_path(&s, &facts.config_dir, facts.env));
    let auth = match f.get("auth") {
        Some(n) => read::choice(d, n, "auth", AUTH_CHOICES),
        None => Some(Auth::Mechanism(AuthMechanism::Login)),
    };
    let credentials = match auth {
        Some(Auth::OAuth2) => {
            if let Some(n) = f.get("password") {
                d.error(
                    n.span,
                    "password: not used with auth: oauth2 (imapsort gets the access token itself; a client secret goes in oauth2: client_secret)",
                );
            }
            let auth_span = f.get("auth").map_or(f.span, |n| n.span);
            match f.get("oauth2") {
                Some(n) => super::oauth2::oauth2(d, n, facts, name.as_deref()),
                None => {
                    d.error(
                        auth_span,
                        "auth: oauth2 needs an oauth2: block with at least provider and client_id",
                    );
                    None
                }
            }
            .map(|(o, mechanism)| (Credentials::OAuth2(Box::new(o)), mechanism))
        }
        other => {
            if let Some(n) = f.get("oauth2") {
                let found = f.get("auth").and_then(Node::as_str).unwrap_or("login");
                d.error(
                    n.span,
                    format!("oauth2: used only with auth: oauth2 (this account has auth: {found}); set auth: oauth2 or remove the block"),
                );
            }
            f.require(
                d,
                "password",
                "a password source: { command: [...] }, { env: VAR }, { file: PATH } or a string",
            )
            .and_then(|n| password(d, n, facts, "password"))
            .zip(other)
            .map(|(p, a)| {
                let Auth::Mechanism(m) = a else {
                    unreachable!("oauth2 is the other arm")
                };
                (Credentials::Secret(p), m)
            })
        }
    };
    let watch = match f.get("watch") {
        Some(n) => {
            read::strings(d, n, "watch").map(|v| v.into_iter().map(MailboxName::new).collect())
        }
        None => Some(vec![MailboxName::inbox()]),
    };
    let max_connections = match f.get("max_connections") {
        Some(n) => read::integer(d, n, "max_connections", 1, 1000).map(|v| v as u32),
        None => Some(4),
    };
    let poll_interval = match f.get("poll_interval") {
        Some(n) => read::duration(d, n, "poll_interval"),
        None => Some(Duration::from_secs(120)),
    };
    let trash = f.get_some("trash").and_then(|n| read::text(d, n, "trash"));
    let archive = f
        .get_some("archive")
        .and_then(|n| read::text(d, n, "archive"));
    let first_start = match f.get("first_start") {
        Some(n) => read::choice(d, n, "first_start", FIRST_START),
        None => Some(FirstStart::New),
    };

    let (credentials, auth_mechanism) = credentials?;
    Some(Account {
        name: name?,
        host: host?,
        port: port?,
        tls: tls?,
        allow_insecure,
        ca_file,
        username: username?,
        credentials,
        auth: auth_mechanism,
        watch: watch?,
        max_connections: max_connections?,
        poll_interval: poll_interval?,
        trash,
        archive,
        first_start: first_start?,
        span: node.span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for (name, ok) in [
            ("personal", true),
            ("work-2.old_x", true),
            ("A9", true),
            ("", false),
            ("my account", false),
            ("a/b", false),
            ("ä", false),
            ("a:b", false),
        ] {
            assert_eq!(valid_account_name(name), ok, "{name:?}");
        }
    }
}
