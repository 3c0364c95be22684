//! The `settings:` section and the default places of files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, MapKind};
use super::types::{ListenAddr, Settings};

const SETTINGS_KEYS: &[&str] = &[
    "state_dir",
    "sweep_interval",
    "idle_refresh",
    "metrics_listen",
    "max_connecting",
];

/// Connection attempts in flight per server host when `max_connecting` is not given.
pub const DEFAULT_MAX_CONNECTING: u32 = 8;

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
        metrics_listen: None,
        max_connecting: DEFAULT_MAX_CONNECTING,
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
    if let Some(n) = f.get_some("metrics_listen") {
        out.metrics_listen = listen_addr(d, n);
    }
    if let Some(n) = f.get("max_connecting")
        && let Some(v) = read::integer(d, n, "max_connecting", 1, 1000)
    {
        out.max_connecting = v as u32;
    }
    out
}

/// `metrics_listen`: `HOST:PORT`, reported at its place when it is anything else.
fn listen_addr(d: &mut Diags, node: &Node) -> Option<ListenAddr> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        _ => {
            let hint = match node.value {
                Value::Int(_) | Value::UInt(_) => format!(
                    " (a port alone is not enough: write 127.0.0.1:{0} for this machine only, 0.0.0.0:{0} for every interface)",
                    node.scalar_text().unwrap_or_default()
                ),
                _ => String::new(),
            };
            d.error(
                node.span,
                format!(
                    "metrics_listen: expected HOST:PORT, found {}{hint}",
                    read::found(node)
                ),
            );
            return None;
        }
    };
    match parse_listen_addr(&text) {
        Ok(addr) => Some(addr),
        Err(why) => {
            d.error(
                node.span,
                format!(
                    "metrics_listen: {why} in {text:?} (expected HOST:PORT, e.g. 127.0.0.1:9898)"
                ),
            );
            None
        }
    }
}

/// `HOST:PORT` with HOST an IPv4 address, a bracketed IPv6 address or a DNS name; the error
/// says what is wrong.
pub fn parse_listen_addr(text: &str) -> Result<ListenAddr, String> {
    if text.contains("://") || text.contains('/') {
        return Err("no scheme or path: only the host and the port".into());
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        let port = after
            .strip_prefix(':')
            .ok_or("the port is missing after the IPv6 address")?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        (v6, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or("the port is missing")?;
        if host.contains(':') {
            return Err("an IPv6 address must be written in brackets ([::1]:9898)".into());
        }
        check_host(host)?;
        (host, port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the port {port:?} is not a number"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("the port {port} is above 65535"))?;
    Ok(ListenAddr {
        host: host.to_owned(),
        port,
    })
}

/// An IPv4 address or a DNS name (letters, digits and `-` in dot-separated labels).
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err(
            "the host is missing (0.0.0.0 listens on every interface, 127.0.0.1 on this machine only)"
                .into(),
        );
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<std::net::Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| format!("{host:?} is not an IPv4 address"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    Ok(())
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
    fn listen_addresses_parse() {
        for (text, host, port) in [
            ("127.0.0.1:9898", "127.0.0.1", 9898),
            ("0.0.0.0:0", "0.0.0.0", 0),
            ("localhost:80", "localhost", 80),
            (
                "metrics.internal-1.example:65535",
                "metrics.internal-1.example",
                65535,
            ),
            ("[::1]:9898", "::1", 9898),
            ("[::]:1", "::", 1),
        ] {
            let addr = parse_listen_addr(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((addr.host.as_str(), addr.port), (host, port), "{text}");
            assert_eq!(addr.to_string(), text);
        }
    }

    #[test]
    fn bad_listen_addresses_say_what_is_wrong() {
        for (text, says) in [
            ("9898", "port is missing"),
            (":9898", "host is missing"),
            ("127.0.0.1:", "not a number"),
            ("127.0.0.1:http", "not a number"),
            ("127.0.0.1:65536", "above 65535"),
            ("127.0.0.1:-1", "not a number"),
            ("999.1.1.1:80", "not an IPv4 address"),
            ("::1:9898", "in brackets"),
            ("[::1]9898", "port is missing"),
            ("[::1:9898", "closing ]"),
            ("[zz]:9898", "not an IPv6 address"),
            ("my host:9898", "not a host name"),
            ("-bad.example:9898", "not a host name"),
            ("http://localhost:9898", "no scheme"),
            ("localhost:9898/metrics", "no scheme"),
        ] {
            let err = parse_listen_addr(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
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
