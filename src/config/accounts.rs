//! The `accounts:` section: each account with its defaults filled in, and its password source.

use std::path::PathBuf;
use std::time::Duration;

use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, MapKind};
use super::types::{Account, AuthMechanism, Credentials, FirstStart, SecretSource, TlsMode};

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

const PASSWORD_KEYS: &[&str] = &["command", "env", "file"];

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

/// What the loader knows about the file itself: for warnings about secrets, and to resolve
/// the paths written in it.
pub(crate) struct FileFacts<'e> {
    /// The file's permission bits; `None` when not read from a file (`load_str`).
    pub mode: Option<u32>,
    /// Where relative paths are resolved: `ca_file`, and `file:` passwords (without
    /// `$CREDENTIALS_DIRECTORY`).
    pub config_dir: PathBuf,
    /// `settings.state_dir`: OAuth 2.0 token files live in its `oauth2/` directory.
    pub state_dir: PathBuf,
    /// The environment (`$HOME` for `~/` paths), injected for tests.
    pub env: &'e dyn Fn(&str) -> Option<std::ffi::OsString>,
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
        Some(n) => read::strings(d, n, "watch"),
        None => Some(vec!["INBOX".to_owned()]),
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

/// `password:` (or `client_secret:`, named by `what`) as a literal string or a map with exactly
/// one of `command`, `env`, `file`. Messages never quote a literal value.
pub(crate) fn password(
    d: &mut Diags,
    node: &Node,
    facts: &FileFacts<'_>,
    what: &str,
) -> Option<SecretSource> {
    let source = password_source(d, node, what)?;
    match &source {
        SecretSource::Literal(_) => {
            if let Some(mode) = facts.mode.filter(|m| m & 0o044 != 0) {
                d.warning(
                    node.span,
                    format!(
                        "the {} is written in the file, which group or others can read (mode {:03o}); chmod 600 the file, or use command, env or file",
                        if what == "password" { "password" } else { what },
                        mode & 0o777
                    ),
                );
            }
        }
        SecretSource::File(path) => {
            let path = super::secret::resolve_file_path(path, &facts.config_dir);
            if let Some(mode) = file_mode(&path).filter(|m| m & 0o004 != 0) {
                d.warning(
                    node.span,
                    format!(
                        "{what} file {} is readable by others (mode {:03o}); chmod o-r it",
                        path.display(),
                        mode & 0o777
                    ),
                );
            }
        }
        SecretSource::Command(_) | SecretSource::Env(_) => {}
    }
    Some(source)
}

/// A file's permission bits, if it exists.
pub(crate) fn file_mode(path: &std::path::Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).ok().map(|m| m.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn password_source(d: &mut Diags, node: &Node, what: &str) -> Option<SecretSource> {
    match &node.value {
        Value::Str(s) if s.is_empty() => {
            d.error(node.span, format!("{what}: must not be empty"));
            None
        }
        Value::Str(s) => Some(SecretSource::Literal(s.clone())),
        Value::Map(entries) => {
            // An unknown key here may be the password itself (`password: {hunter2}`): report
            // it without repeating it, and read only the known keys.
            let mut known = Vec::new();
            for (k, v) in entries {
                if k.as_str().is_some_and(|k| PASSWORD_KEYS.contains(&k)) {
                    known.push((k.clone(), v.clone()));
                } else {
                    // A key close to a known one is a typo, not a secret: naming the known
                    // key shows nothing of it.
                    let hint = k
                        .as_str()
                        .and_then(|k| read::suggest(k, PASSWORD_KEYS))
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    d.error(
                        k.span,
                        format!(
                            "{what}: unknown key (not shown, in case it is the secret{hint}); allowed: command, env, file"
                        ),
                    );
                }
            }
            let known = Node {
                span: node.span,
                value: Value::Map(known),
            };
            let kind = MapKind {
                noun: "key",
                context: "",
                allowed: PASSWORD_KEYS,
                quiet: &[],
            };
            let f = read::fields(d, &known, what, &kind)?;
            if f.entries.len() != 1 {
                let present: Vec<&str> = f.entries.iter().map(|(k, _, _)| *k).collect();
                let found = if present.is_empty() {
                    "none".to_owned()
                } else {
                    present.join(" and ")
                };
                // A map of only unknown keys was reported already; "none" would repeat it.
                if !(present.is_empty() && has_any_key(node)) {
                    d.error(
                        node.span,
                        format!("{what}: give exactly one of command, env, file; found {found}"),
                    );
                }
                return None;
            }
            let (key, _, value) = f.entries[0];
            match key {
                "command" => command(d, value, what).map(SecretSource::Command),
                "env" => read::text(d, value, &format!("{what} env")).map(SecretSource::Env),
                _ => read::text(d, value, &format!("{what} file"))
                    .map(|p| SecretSource::File(PathBuf::from(p))),
            }
        }
        other => {
            d.error(
                node.span,
                format!(
                    "{what}: expected a string or a map with command, env or file, found {}{}",
                    other.kind(),
                    if matches!(other, Value::Seq(_) | Value::Map(_) | Value::Null) {
                        String::new()
                    } else {
                        format!(" (put a literal {what} in quotes)")
                    }
                ),
            );
            None
        }
    }
}

fn has_any_key(node: &Node) -> bool {
    matches!(&node.value, Value::Map(e) if !e.is_empty())
}

/// `command:` is an argv list, run without a shell.
fn command(d: &mut Diags, node: &Node, what: &str) -> Option<Vec<String>> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.span,
            format!(
                "{what} command: expected a list (program and arguments, no shell), as in [pass, show, mail/personal]; found {}",
                node.value.kind()
            ),
        );
        return None;
    };
    if items.is_empty() {
        d.error(
            node.span,
            format!("{what} command: the list is empty; name the program and its arguments"),
        );
        return None;
    }
    let mut argv = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match &item.value {
            Value::Str(s) if i == 0 && s.is_empty() => {
                d.error(
                    item.span,
                    format!("{what} command: the program name is empty"),
                );
                return None;
            }
            Value::Str(s) => argv.push(s.clone()),
            Value::Int(_) | Value::UInt(_) => argv.push(item.scalar_text()?),
            other => {
                d.error(
                    item.span,
                    format!("{what} command: expected a string, found {}", other.kind()),
                );
                return None;
            }
        }
    }
    Some(argv)
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
