//! Log setup: `tracing` events to stderr (text or JSON) or, under systemd, to journald.
//!
//! The filter comes from `IMAPSORT_LOG` (`RUST_LOG` syntax: `debug`, `imapsort=debug,info`),
//! default `info`. Journald is used when `JOURNAL_STREAM` names the file stderr is connected to
//! (that is how systemd says "your stderr goes to the journal"); events then carry their fields
//! as journal fields (`IMAPSORT_ACCOUNT=personal`), so `journalctl IMAPSORT_ACCOUNT=personal`
//! works. If the journald socket cannot be opened, logs go to stderr as usual.
//!
//! Secrets: nothing is done here to scrub them; they are never logged in the first place
//! (passwords and tokens are `secrecy` values whose `Debug` prints nothing, and no code passes
//! them to `tracing`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use crate::cli::LogFormat;

/// The environment variable holding the filter directives.
pub const ENV_VAR: &str = "IMAPSORT_LOG";

/// Where [`init`] sent the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Stderr,
    Journald,
}

/// Installs the global subscriber. Call once, first thing in `main`; later calls (tests) are
/// ignored. Returns where logs go.
pub fn init(format: LogFormat) -> Destination {
    let (filter, bad_filter) = filter_from(std::env::var(ENV_VAR).ok().as_deref());
    let filter = quiet_wire(filter);
    let registry = tracing_subscriber::registry().with(filter);

    let journald = journal_stream_is_stderr()
        .then(|| {
            tracing_journald::layer()
                .map(|layer| {
                    layer
                        .with_field_prefix(Some("IMAPSORT".into()))
                        .with_syslog_identifier("imapsort".into())
                })
                .map_err(|err| {
                    eprintln!("imapsort: cannot open journald socket ({err}); logging to stderr")
                })
                .ok()
        })
        .flatten();

    let destination = if let Some(layer) = journald {
        let _ = registry.with(layer).try_init();
        Destination::Journald
    } else {
        let ansi = std::io::stderr().is_terminal();
        match format {
            LogFormat::Text => {
                let layer = tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi);
                let _ = registry.with(layer).try_init();
            }
            LogFormat::Json => {
                let layer = tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr);
                let _ = registry.with(layer).try_init();
            }
        }
        Destination::Stderr
    };
    if let Some(err) = bad_filter {
        tracing::warn!(error = %err, "ignoring invalid {ENV_VAR}; using info");
    }
    destination
}

/// The filter for the value of `IMAPSORT_LOG` (`None`: unset). An empty or invalid value
/// gives `info`, plus the parse error to report once logging is up.
fn filter_from(value: Option<&str>) -> (EnvFilter, Option<String>) {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    match value.map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, None),
        Some(Err(err)) => (EnvFilter::new("info"), Some(err.to_string())),
        None => (EnvFilter::new("info"), None),
    }
}

/// The HTTP library logs request and response bytes at `trace` (a token request holds a
/// refresh token): its modules are capped at `info`, whatever `IMAPSORT_LOG` asks for.
fn quiet_wire(filter: EnvFilter) -> EnvFilter {
    ["ureq=info", "ureq_proto=info"]
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, EnvFilter::add_directive)
}

/// True when `JOURNAL_STREAM` (`DEVICE:INODE`) names the file stderr is open on. A variable
/// inherited by a child whose stderr was redirected elsewhere does not count.
fn journal_stream_is_stderr() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(expected) = std::env::var("JOURNAL_STREAM")
        .ok()
        .and_then(|v| parse_journal_stream(&v))
    else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(meta) => (meta.dev(), meta.ino()) == expected,
        Err(_) => false,
    }
}

/// Parses `JOURNAL_STREAM`'s `DEVICE:INODE` (both decimal).
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// An error and its sources on one line, `a: b: c`, for logs and messages.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_causes() {
        let e = crate::imap::ImapError::Connect {
            host: "h".into(),
            port: 993,
            source: std::io::Error::other("refused"),
        };
        assert_eq!(chain(&e), "connection to h:993 failed: refused");
    }

    #[test]
    fn journal_stream_values() {
        let cases = [
            ("8:12345", Some((8, 12345))),
            (" 64769:2 ", Some((64769, 2))),
            ("8", None),
            ("8:", None),
            ("x:1", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_journal_stream(value), want, "{value:?}");
        }
    }

    #[test]
    fn wire_logs_stay_capped_even_at_trace() {
        let (filter, _) = filter_from(Some("trace,ureq_proto=trace"));
        let shown = quiet_wire(filter).to_string();
        assert!(shown.contains("ureq_proto=info"), "{shown}");
        assert!(!shown.contains("ureq_proto=trace"), "{shown}");
    }

    #[test]
    fn filter_values() {
        // (IMAPSORT_LOG, filter shown, is an error reported)
        let cases = [
            (None, "info", false),
            (Some(""), "info", false),
            (Some("  "), "info", false),
            (Some("debug"), "debug", false),
            (Some("imapsort=trace,warn"), "imapsort=trace,warn", false),
            (Some("imapsort=[bad"), "info", true),
        ];
        for (value, shown, error) in cases {
            let (filter, err) = filter_from(value);
            assert_eq!(filter.to_string(), shown, "{value:?}");
            assert_eq!(err.is_some(), error, "{value:?}");
        }
    }
}
