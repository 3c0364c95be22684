//! A secret as the file writes it (`password:`, `client_secret:`): a literal string, or a map
//! with exactly one of `command`, `env`, `file`; and the facts about the file that make a
//! literal secret in it a warning. Accounts and their `oauth2:` blocks both read secrets, so
//! this sits below both.

use std::path::PathBuf;

use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, MapKind};
use super::types::SecretSource;

const PASSWORD_KEYS: &[&str] = &["command", "env", "file"];

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
