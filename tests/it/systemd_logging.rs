//! Log output of the real binary: JSON and text on stderr, no colours when stderr is not a
//! terminal, and the journald switch that `JOURNAL_STREAM` drives (with its fallback).
//!
//! An invalid `IMAPSORT_LOG` makes imapsort log one warning, and `imapsort man` needs no
//! configuration: together they produce a known log line without any setup.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_imapsort");

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .env("IMAPSORT_LOG", "imapsort=[bad");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

#[test]
fn json_format_writes_one_json_object_per_line_to_stderr() {
    let out = run(&["--log-format", "json", "man"], &[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(event["level"], "WARN");
    assert!(
        event["message"].as_str().unwrap().contains("IMAPSORT_LOG"),
        "{event}"
    );
    assert!(
        event["error"].is_string(),
        "fields are flattened into the object: {event}"
    );
    // Logs never mix with command output.
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(".TH imapsort")
    );
}

#[test]
fn text_format_on_a_pipe_has_no_colour_codes() {
    let out = run(&["man"], &[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(stderr.contains("IMAPSORT_LOG"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape in {stderr:?}");
}

#[test]
fn a_valid_filter_is_applied() {
    // A valid filter brings no warning about itself, and `off` silences everything.
    let out = run(&["man"], &[("IMAPSORT_LOG", "off")]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn journal_stream_naming_another_file_keeps_logs_on_stderr() {
    let meta = std::fs::metadata("/dev/null").unwrap();
    let value = format!("{}:{}", meta.dev(), meta.ino());
    let out = run(&["man"], &[("JOURNAL_STREAM", &value)]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("IMAPSORT_LOG"), "{stderr}");
    assert!(!stderr.contains("journald"), "{stderr}");
}

#[test]
fn journal_stream_naming_stderr_uses_journald_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let status = Command::new(BIN)
        .arg("man")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("IMAPSORT_LOG", "imapsort=[bad")
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    assert!(status.success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        // The warning went to the journal, not to stderr.
        assert!(!stderr.contains("IMAPSORT_LOG"), "{stderr}");
    } else {
        // No journald here: one line saying so, then the logs on stderr as usual.
        assert!(stderr.contains("cannot open journald socket"), "{stderr}");
        assert!(stderr.contains("IMAPSORT_LOG"), "{stderr}");
    }
}
