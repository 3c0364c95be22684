//! The `settings:` section and the default places of files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, MapKind};
use super::types::Settings;

const SETTINGS_KEYS: &[&str] = &["state_dir", "sweep_interval", "idle_refresh", "history"];

/// `history` when the file does not say: 90 days of what was done.
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(90 * 24 * 3600);

/// Below this, `history` is most likely a slip (`90m` for `90d`): `check` warns.
const SHORT_HISTORY: Duration = Duration::from_secs(24 * 3600);

/// RFC 2177: clients should re-issue IDLE at least every 29 minutes.
const IDLE_LIMIT: Duration = Duration::from_secs(29 * 60);

/// Read `settings:` (absent or `null`: all defaults). `config_dir` anchors a relative
/// `state_dir`; `env` reads the environment (injected for tests).
pub(crate) fn settings(
    d: &mut Diags,
    node: Option<&Node>,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Settings {
    let mut out = Settings {
        state_dir: default_state_dir(env),
        sweep_interval: Duration::from_secs(3600),
        idle_refresh: Duration::from_secs(600),
        history: DEFAULT_HISTORY,
    };
    let Some(node) = node.filter(|n| n.value != Value::Null) else {
        return out;
    };
    let kind = MapKind {
        noun: "key",
        context: " in settings",
        allowed: SETTINGS_KEYS,
        quiet: &[],
    };
    let Some(f) = read::fields(d, node, "settings", &kind) else {
        return out;
    };
    if let Some(n) = f.get("state_dir")
        && let Some(s) = read::text(d, n, "state_dir")
    {
        out.state_dir = expand_path(&s, config_dir, env);
    }
    if let Some(n) = f.get("sweep_interval")
        && let Some(v) = read::duration(d, n, "sweep_interval")
    {
        out.sweep_interval = v;
    }
    if let Some(n) = f.get("idle_refresh")
        && let Some(v) = read::duration(d, n, "idle_refresh")
    {
        if v >= IDLE_LIMIT {
            d.warning(
                n.span,
                "idle_refresh: servers may drop an IDLE after 30 minutes (RFC 2177 asks for less than 29m); NATs often sooner",
            );
        }
        out.idle_refresh = v;
    }
    if let Some(n) = f.get("history")
        && let Some(v) = read::duration(d, n, "history")
    {
        if v < SHORT_HISTORY {
            d.warning(
                n.span,
                "history: less than a day of what was done is kept; `imapsort log` and `imapsort undo` see only that far back",
            );
        }
        out.history = v;
    }
    out
}

/// A path as written in the configuration: `~/x` is taken in `$HOME`; a relative path is
/// taken beside the configuration file (under systemd the working directory is `/`).
pub(crate) fn expand_path(
    s: &str,
    config_dir: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/")
        && let Some(home) = non_empty(env("HOME"))
    {
        return PathBuf::from(home).join(rest);
    }
    let p = PathBuf::from(s);
    if p.is_absolute() {
        p
    } else {
        config_dir.join(p)
    }
}

fn non_empty(v: Option<OsString>) -> Option<OsString> {
    v.filter(|s| !s.is_empty())
}

/// `$STATE_DIRECTORY` (systemd `StateDirectory=`; the first of a `:` list), else
/// `$XDG_STATE_HOME/imapsort`, else `~/.local/state/imapsort`, else (no `$HOME`)
/// `/var/lib/imapsort`.
pub fn default_state_dir(env: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    if let Some(dirs) = non_empty(env("STATE_DIRECTORY")) {
        let dirs = dirs.to_string_lossy().into_owned();
        let first = dirs.split(':').next().unwrap_or_default();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    if let Some(x) = non_empty(env("XDG_STATE_HOME")) {
        return PathBuf::from(x).join("imapsort");
    }
    if let Some(home) = non_empty(env("HOME")) {
        return PathBuf::from(home).join(".local/state/imapsort");
    }
    PathBuf::from("/var/lib/imapsort")
}

/// `$IMAPSORT_CONFIG`, else `$XDG_CONFIG_HOME/imapsort/config.yaml`, else
/// `/etc/imapsort/config.yaml`.
pub fn default_config_path(env: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    if let Some(p) = non_empty(env("IMAPSORT_CONFIG")) {
        return PathBuf::from(p);
    }
    if let Some(x) = non_empty(env("XDG_CONFIG_HOME")) {
        return PathBuf::from(x).join("imapsort/config.yaml");
    }
    PathBuf::from("/etc/imapsort/config.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn state_dir_defaults() {
        let cases: [(&'static [(&str, &str)], &str); 6] = [
            (
                &[
                    ("STATE_DIRECTORY", "/var/lib/imapsort"),
                    ("XDG_STATE_HOME", "/x"),
                    ("HOME", "/h"),
                ],
                "/var/lib/imapsort",
            ),
            (&[("STATE_DIRECTORY", "/a:/b")], "/a"),
            (
                &[
                    ("STATE_DIRECTORY", ""),
                    ("XDG_STATE_HOME", "/x"),
                    ("HOME", "/h"),
                ],
                "/x/imapsort",
            ),
            (&[("HOME", "/h")], "/h/.local/state/imapsort"),
            (
                &[("XDG_STATE_HOME", ""), ("HOME", "/h")],
                "/h/.local/state/imapsort",
            ),
            (&[], "/var/lib/imapsort"),
        ];
        for (vars, want) in cases {
            assert_eq!(
                default_state_dir(&env_of(vars)),
                PathBuf::from(want),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn config_path_defaults() {
        let cases: [(&'static [(&str, &str)], &str); 4] = [
            (
                &[("IMAPSORT_CONFIG", "/c.yaml"), ("XDG_CONFIG_HOME", "/x")],
                "/c.yaml",
            ),
            (
                &[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")],
                "/x/imapsort/config.yaml",
            ),
            (
                &[("IMAPSORT_CONFIG", ""), ("HOME", "/h")],
                "/etc/imapsort/config.yaml",
            ),
            (&[], "/etc/imapsort/config.yaml"),
        ];
        for (vars, want) in cases {
            assert_eq!(
                default_config_path(&env_of(vars)),
                PathBuf::from(want),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn state_dir_paths_expand() {
        let env = env_of(&[("HOME", "/h")]);
        let dir = Path::new("/etc/imapsort");
        for (written, want) in [
            ("~/state", "/h/state"),
            ("/var/x", "/var/x"),
            ("state", "/etc/imapsort/state"),
        ] {
            assert_eq!(expand_path(written, dir, &env), PathBuf::from(want));
        }
    }
}
