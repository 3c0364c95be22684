//! One module per subcommand. Each takes its parsed arguments and writers, and returns the
//! process exit code; only `main` turns that into a process exit.
//!
//! Every command that needs the configuration loads it through `load_config`, so an invalid
//! file is reported the same way everywhere. `check` is the exception that proves it: its
//! output *is* the report, so it prints the same lines to stdout with a summary.

pub mod check;
pub mod completions;
pub mod folders;
pub mod log;
pub mod login;
pub mod man;
pub mod run;
pub mod status;
pub mod sweep;
pub mod test;
pub mod undo;

use std::io::Write;

use crate::cli::ConfigArg;
use crate::config::{self, Config};
use crate::exit::Exit;

/// Where the warnings of a valid configuration go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Warnings {
    /// To the command's error stream, one per line, as `check` prints them.
    Print,
    /// To the log (the daemon: its stderr may carry JSON log lines, and reloads log theirs).
    Log,
}

/// The configuration named by `-c` (or the default path), or `Err(Exit::Config)` after every
/// error and warning of the file went to `err`, one per line, as `check` prints them
/// (`FILE:LINE:COLUMN: error: ...`; `FILE: error: cannot read the file: ...`).
pub(crate) fn load_config(
    arg: &ConfigArg,
    warnings: Warnings,
    err: &mut dyn Write,
) -> Result<Config, Exit> {
    let path = config::resolve_path(arg.config.as_deref());
    // Failing to write to stderr leaves nobody to tell; the exit code still says it.
    match config::load(&path) {
        Ok(config) => {
            for w in &config.warnings {
                match warnings {
                    Warnings::Print => {
                        let _ = writeln!(err, "{w}");
                    }
                    Warnings::Log => tracing::warn!("{w}"),
                }
            }
            Ok(config)
        }
        Err(e) => {
            for d in e.diagnostics() {
                let _ = writeln!(err, "{d}");
            }
            Err(Exit::Config)
        }
    }
}

/// What `sweep` and `undo` print while another process holds a mailbox they need:
/// `mailbox Work: waiting for process 812 (imapsort run), which is working on it (up to 30s)`.
pub(crate) fn waiting_line(
    mailbox: &dyn std::fmt::Display,
    holder: &Option<crate::lock::Holder>,
    wait: std::time::Duration,
) -> String {
    let who = holder
        .as_ref()
        .map_or_else(|| "another process".into(), ToString::to_string);
    format!("mailbox {mailbox}: waiting for {who}, which is working on it (up to {wait:?})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(path: &std::path::Path) -> ConfigArg {
        ConfigArg {
            config: Some(path.to_path_buf()),
        }
    }

    #[test]
    fn an_invalid_file_is_reported_as_check_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "accounts: []\nrules:\n  - nme: x\n").unwrap();
        let mut err = Vec::new();
        let exit = load_config(&arg(&path), Warnings::Print, &mut err).unwrap_err();
        assert_eq!(exit, Exit::Config);
        let text = String::from_utf8(err).unwrap();
        let want: Vec<String> = config::load(&path)
            .unwrap_err()
            .diagnostics()
            .iter()
            .map(|d| format!("{d}\n"))
            .collect();
        assert_eq!(text, want.concat());
        assert!(
            text.starts_with(&format!("{}:3:", path.display())),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.yaml");
        let mut err = Vec::new();
        let exit = load_config(&arg(&path), Warnings::Print, &mut err).unwrap_err();
        assert_eq!(exit, Exit::Config);
        let text = String::from_utf8(err).unwrap();
        assert!(
            text.starts_with(&format!(
                "{}: error: cannot read the file: ",
                path.display()
            )),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn the_warnings_of_a_valid_file_are_printed_and_it_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "rules:\n  - name: a\n    when: true\n    then: delete\n",
        )
        .unwrap();
        let mut err = Vec::new();
        let config = load_config(&arg(&path), Warnings::Print, &mut err).unwrap();
        let text = String::from_utf8(err).unwrap();
        assert_eq!(config.warnings.len(), 1);
        assert_eq!(text, format!("{}\n", config.warnings[0]));
        assert!(text.contains(": warning: rule \"a\": delete"), "{text}");
    }
}
