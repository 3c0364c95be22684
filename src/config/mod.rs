//! The configuration file: YAML -> spanned node tree -> validated [`Config`].
//!
//! Raw then validated: [`node`] parses the YAML into a tree in which every key and value knows
//! its line and column; the section readers ([`settings`], [`accounts`], [`rules`] with
//! [`conditions`], whose matchers [`address`] and [`text`] read) turn it into typed values,
//! reporting every problem they meet and going on, so that all errors of a file are reported at
//! once; [`lint`] adds warnings; finally the rules engine compiles the rule AST (invalid
//! regexes, unknown template variables).

pub(crate) mod accounts;
pub(crate) mod address;
pub(crate) mod conditions;
mod diag;
pub(crate) mod lint;
pub mod node;
pub mod oauth2;
pub(crate) mod read;
pub(crate) mod rules;
pub mod secret;
pub(crate) mod settings;
pub(crate) mod text;
pub mod types;
pub mod units;

pub use diag::{Diagnostic, Severity};
pub use settings::parse_listen_addr;
pub use types::{
    Account, AuthMechanism, Config, Credentials, FirstStart, ListenAddr, OAuth2, Provider,
    SecretSource, Settings, TlsMode,
};

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use diag::Diags;
use node::{Node, Value};
use read::MapKind;

use crate::rules::RuleSet;

const TOP_KEYS: &[&str] = &["settings", "accounts", "rules"];

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: error: cannot read the file: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file has errors; `diagnostics` holds every error and warning, sorted by place.
    #[error("{}", render(diagnostics))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl LoadError {
    /// Every error and warning, sorted by place; an unreadable file is one error without a
    /// place.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            LoadError::Unreadable { path, source } => vec![Diagnostic {
                severity: Severity::Error,
                file: path.clone(),
                span: None,
                rule: None,
                account: None,
                message: format!("cannot read the file: {source}"),
            }],
            LoadError::Invalid { diagnostics, .. } => diagnostics.clone(),
        }
    }

    /// The file this is about.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Unreadable { path, .. } | LoadError::Invalid { path, .. } => path,
        }
    }
}

/// Read, validate and compile the configuration file at `path`. Warnings land in
/// [`Config::warnings`]; any error fails the whole file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let unreadable = |source| LoadError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let mode = accounts::file_mode(path);
    load_with(&text, path, mode, &|k| std::env::var_os(k))
}

/// Validate and compile configuration text as if read from `path` (which names it in messages
/// and anchors relative paths). No file-permission warnings: there is no file to look at.
pub fn load_str(text: &str, path: &Path) -> Result<Config, LoadError> {
    load_with(text, path, None, &|k| std::env::var_os(k))
}

/// The configuration file to use when `-c` is not given: `$IMAPSORT_CONFIG`, else
/// `$XDG_CONFIG_HOME/imapsort/config.yaml`, else `/etc/imapsort/config.yaml`.
pub fn default_path() -> PathBuf {
    settings::default_config_path(&|k| std::env::var_os(k))
}

/// `-c FILE` if given, else [`default_path`].
pub fn resolve_path(given: Option<&Path>) -> PathBuf {
    given.map_or_else(default_path, Path::to_path_buf)
}

fn load_with(
    text: &str,
    path: &Path,
    mode: Option<u32>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, LoadError> {
    let mut d = Diags::new(path);
    let config_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let root = match node::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let span = e
                .span
                .unwrap_or(crate::rules::ast::Span { line: 1, column: 1 });
            d.error(span, format!("invalid YAML: {}", strip_place(&e.message)));
            return Err(invalid(path, d));
        }
    };
    let empty = Node {
        span: root.span,
        value: Value::Map(Vec::new()),
    };
    let root = if root.value == Value::Null {
        &empty
    } else {
        &root
    };
    let top = if matches!(root.value, Value::Map(_)) {
        read::fields(
            &mut d,
            root,
            "the configuration",
            &MapKind {
                noun: "key",
                context: " at the top level",
                allowed: TOP_KEYS,
                quiet: &[],
            },
        )
    } else {
        d.error(
            root.span,
            format!(
                "expected a map with settings, accounts and rules, found {}",
                root.value.kind()
            ),
        );
        None
    };
    let get = |k: &str| top.as_ref().and_then(|f| f.get(k));

    let settings = settings::settings(&mut d, get("settings"), &config_dir, env);
    let facts = accounts::FileFacts {
        mode,
        config_dir,
        state_dir: settings.state_dir.clone(),
        env,
    };
    let (accounts, account_names) = accounts::accounts(&mut d, get("accounts"), &facts);
    let rules = rules::rules(&mut d, get("rules"), &account_names);
    lint::move_loops(&mut d, &rules, &accounts);

    let rule_set = match RuleSet::compile(rules) {
        Ok(set) => Some(set),
        Err(errors) => {
            for e in errors {
                d.push_for_rule(Severity::Error, e.span, &e.rule, e.message);
            }
            None
        }
    };
    match rule_set {
        Some(rule_set) if d.error_count() == 0 => Ok(Config {
            path: path.to_path_buf(),
            settings,
            accounts,
            rules: Arc::new(rule_set),
            warnings: d.into_sorted(),
        }),
        _ => Err(invalid(path, d)),
    }
}

fn invalid(path: &Path, d: Diags) -> LoadError {
    LoadError::Invalid {
        path: path.to_path_buf(),
        diagnostics: d.into_sorted(),
    }
}

/// The parser ends its messages with " at line L, column C"; ours says that up front.
fn strip_place(message: &str) -> &str {
    if message.starts_with("multiple YAML documents") {
        return "the file holds more than one YAML document (a second ---); keep everything in one";
    }
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(", column ") => &message[..i],
        _ => message,
    }
}

#[cfg(test)]
mod tests;
