//! Hot reload: notice that the configuration file changed, and say what a new version changes.
//!
//! The watcher follows the file's DIRECTORY, not the file: editors save by writing a new file
//! and renaming it over the old one (the old inode, and a watch on it, are gone), and Kubernetes
//! swaps a `..data` symlink beside the file. Events are filtered by name, debounced, and the
//! file's content hash decides whether anything really changed. When the configuration file is
//! itself a symlink, the directory of its target is watched too.
//!
//! Loading and applying are the supervisor's job; this module only signals and diffs.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use crate::config::{Account, Config};

/// How long the file must be quiet before a change counts.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Why the watcher could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path} for changes")]
pub struct WatchError {
    pub path: PathBuf,
    #[source]
    pub source: notify::Error,
}

/// Keeps the file watch alive; dropping it stops the watch.
pub struct ConfigWatcher {
    /// The debouncer owns the OS watch and its thread.
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigWatcher")
    }
}

impl ConfigWatcher {
    /// Watch `config_path`; a `()` arrives on `tx` after each debounced burst of events that may
    /// concern the file (the receiver compares content hashes before reloading).
    pub fn start(config_path: &Path, tx: mpsc::Sender<()>) -> Result<ConfigWatcher, WatchError> {
        let watched = watched_dirs(config_path);
        let names = relevant_names(config_path);
        let is_symlink = config_path
            .symlink_metadata()
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                let relevant = is_symlink
                    || events
                        .iter()
                        .flat_map(|e| e.paths.iter())
                        .any(|p| p.file_name().is_some_and(|n| names.contains(n)));
                if relevant {
                    // A full channel already holds a pending reload; that one will read the file.
                    let _ = tx.try_send(());
                }
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!(%error, "configuration file watch reported an error");
                }
            }
        };
        let mut debouncer =
            new_debouncer(DEBOUNCE, None, handler).map_err(|source| WatchError {
                path: config_path.to_path_buf(),
                source,
            })?;
        for dir in &watched {
            debouncer
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError {
                    path: dir.clone(),
                    source,
                })?;
            tracing::debug!(dir = %dir.display(), "watching for configuration changes");
        }
        Ok(ConfigWatcher {
            _debouncer: debouncer,
        })
    }
}

/// The directory of the file as named, plus that of its final target when it is a symlink
/// pointing elsewhere.
fn watched_dirs(config_path: &Path) -> Vec<PathBuf> {
    let dir_of = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = vec![dir_of(config_path)];
    if let Ok(target) = std::fs::canonicalize(config_path) {
        let target_dir = dir_of(&target);
        let same = std::fs::canonicalize(&dirs[0]).is_ok_and(|d| d == target_dir);
        if !same {
            dirs.push(target_dir);
        }
    }
    dirs
}

/// File names whose events may concern the configuration: its own name and its target's.
fn relevant_names(config_path: &Path) -> BTreeSet<std::ffi::OsString> {
    let mut names = BTreeSet::new();
    if let Some(n) = config_path.file_name() {
        names.insert(n.to_os_string());
    }
    if let Ok(target) = std::fs::canonicalize(config_path)
        && let Some(n) = target.file_name()
    {
        names.insert(n.to_os_string());
    }
    names
}

/// A content hash, to skip reloads when an event did not change the bytes (touch, chmod, an
/// editor's backup file, a symlink swap to identical content).
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// What a new configuration changes, compared with the running one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub rules_added: Vec<String>,
    pub rules_removed: Vec<String>,
    /// Same name, different content (position in the file does not count; order does).
    pub rules_changed: Vec<String>,
    /// The rule order changed while the names stayed.
    pub rules_reordered: bool,
    pub accounts_added: Vec<String>,
    pub accounts_removed: Vec<String>,
    pub accounts_changed: Vec<String>,
    /// `sweep_interval` / `idle_refresh` changed: applied live.
    pub settings_changed: Vec<&'static str>,
    /// `state_dir`, `metrics_listen` or `max_connecting` changed: takes effect only after a
    /// restart of the daemon.
    pub needs_restart: Vec<&'static str>,
}

impl ConfigDiff {
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        let mut d = ConfigDiff::default();
        let old_rules: Vec<(String, String)> = old
            .rules
            .rules()
            .map(|r| (r.name.clone(), without_spans(r)))
            .collect();
        let new_rules: Vec<(String, String)> = new
            .rules
            .rules()
            .map(|r| (r.name.clone(), without_spans(r)))
            .collect();
        for (name, text) in &new_rules {
            match old_rules.iter().find(|(n, _)| n == name) {
                None => d.rules_added.push(name.clone()),
                Some((_, old_text)) if old_text != text => d.rules_changed.push(name.clone()),
                Some(_) => {}
            }
        }
        for (name, _) in &old_rules {
            if !new_rules.iter().any(|(n, _)| n == name) {
                d.rules_removed.push(name.clone());
            }
        }
        let kept = |rules: &[(String, String)], other: &[(String, String)]| -> Vec<String> {
            rules
                .iter()
                .filter(|(n, _)| other.iter().any(|(o, _)| o == n))
                .map(|(n, _)| n.clone())
                .collect()
        };
        d.rules_reordered = kept(&old_rules, &new_rules) != kept(&new_rules, &old_rules);

        for acc in &new.accounts {
            match old.account(&acc.name) {
                None => d.accounts_added.push(acc.name.clone()),
                Some(old_acc) if !same_account(old_acc, acc) => {
                    d.accounts_changed.push(acc.name.clone())
                }
                Some(_) => {}
            }
        }
        for acc in &old.accounts {
            if new.account(&acc.name).is_none() {
                d.accounts_removed.push(acc.name.clone());
            }
        }

        if old.settings.sweep_interval != new.settings.sweep_interval {
            d.settings_changed.push("sweep_interval");
        }
        if old.settings.idle_refresh != new.settings.idle_refresh {
            d.settings_changed.push("idle_refresh");
        }
        if old.settings.state_dir != new.settings.state_dir {
            d.needs_restart.push("state_dir");
        }
        if old.settings.metrics_listen != new.settings.metrics_listen {
            d.needs_restart.push("metrics_listen");
        }
        if old.settings.max_connecting != new.settings.max_connecting {
            d.needs_restart.push("max_connecting");
        }
        d
    }

    /// True when the new configuration behaves exactly like the old one.
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }

    /// Accounts whose workers must be stopped (removed or changed).
    pub fn accounts_to_stop(&self) -> impl Iterator<Item = &String> {
        self.accounts_removed.iter().chain(&self.accounts_changed)
    }

    /// Accounts whose workers must be started (added or changed).
    pub fn accounts_to_start(&self) -> impl Iterator<Item = &String> {
        self.accounts_added.iter().chain(&self.accounts_changed)
    }
}

/// Accounts are equal when everything but their place in the file is.
fn same_account(a: &Account, b: &Account) -> bool {
    let mut a = a.clone();
    a.span = b.span;
    a == *b
}

/// A rule's content with every `Span { .. }` blanked, so moving a rule down the file or
/// editing the rule above it does not count as a change.
fn without_spans(rule: &crate::rules::ast::Rule) -> String {
    blank_spans(&format!("{rule:?}"))
}

fn blank_spans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("Span {") {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_tells_bytes_apart() {
        assert_eq!(content_hash(b"rules: []"), content_hash(b"rules: []"));
        assert_ne!(content_hash(b"rules: []"), content_hash(b"rules: [ ]"));
    }

    #[test]
    fn relevant_names_include_the_file_and_its_symlink_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        std::fs::write(&real, "x").unwrap();
        let link = dir.path().join("config.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let names = relevant_names(&link);
        assert!(names.contains(std::ffi::OsStr::new("config.yaml")));
        assert!(names.contains(std::ffi::OsStr::new("real.yaml")));
    }

    #[test]
    fn watched_dirs_add_the_target_directory_of_a_symlink() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let real = b.path().join("config.yaml");
        std::fs::write(&real, "x").unwrap();
        let link = a.path().join("config.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dirs = watched_dirs(&link);
        assert_eq!(dirs.len(), 2);
        assert_eq!(dirs[0], a.path());
        assert_eq!(dirs[1], std::fs::canonicalize(b.path()).unwrap());
        // A plain file is watched through its own directory only.
        assert_eq!(watched_dirs(&real).len(), 1);
    }

    #[test]
    fn span_blanking_removes_every_span() {
        let s = "Rule { span: Span { line: 3, column: 5 }, when: Condition { span: Span { line: 4, \
                 column: 9 }, kind: True } }";
        let moved = s
            .replace("line: 3", "line: 30")
            .replace("line: 4", "line: 31");
        assert_eq!(blank_spans(s), blank_spans(&moved));
        assert!(!blank_spans(s).contains("line"));
        assert_ne!(blank_spans(s), blank_spans(&s.replace("True", "False")));
    }

    #[tokio::test]
    async fn replacing_the_file_by_rename_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "a").unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let _w = ConfigWatcher::start(&path, tx).unwrap();
        let tmp = dir.path().join(".config.yaml.swp");
        std::fs::write(&tmp, "b").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no event within 5 s")
            .unwrap();
    }

    #[tokio::test]
    async fn unrelated_files_in_the_directory_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "a").unwrap();
        let (tx, mut rx) = mpsc::channel(1);
        let _w = ConfigWatcher::start(&path, tx).unwrap();
        std::fs::write(dir.path().join("other.txt"), "b").unwrap();
        let got = tokio::time::timeout(DEBOUNCE * 4, rx.recv()).await;
        assert!(got.is_err(), "an unrelated file triggered a reload");
    }
}
