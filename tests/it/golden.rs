//! Golden tests of the rules engine through `imapsort test --format json`.
//!
//! Each case in `tests/golden/` is `NAME.yaml` (the configuration), `NAME.eml` (the message),
//! optionally `NAME.args` (more command-line arguments, one per line) and the expectation:
//! `NAME.json` (the JSON document, exit 0) or `NAME.err` (stderr, exit 78). On a mismatch the
//! actual output is written beside the fixture as `NAME.actual.json` / `NAME.actual.err`, so
//! the difference is one `diff` away.

use std::path::{Path, PathBuf};

use clap::Parser;
use imapsort::cli::{Cli, Command};
use imapsort::exit::Exit;

const DIR: &str = "tests/golden";

struct Outcome {
    exit: Exit,
    stdout: String,
    stderr: String,
}

fn run_test_command(args: &[String]) -> Outcome {
    let mut argv = vec!["imapsort".to_owned(), "test".to_owned()];
    argv.extend(args.iter().cloned());
    let cli = Cli::try_parse_from(&argv).expect("arguments parse");
    let Command::Test(test_args) = cli.command else {
        panic!("not a test command");
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = imapsort::commands::test::run(&test_args, &mut out, &mut err).expect("test runs");
    Outcome {
        exit,
        stdout: String::from_utf8(out).expect("utf-8 stdout"),
        stderr: String::from_utf8(err).expect("utf-8 stderr"),
    }
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .expect("golden dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".yaml").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn path(name: &str, ext: &str) -> PathBuf {
    Path::new(DIR).join(format!("{name}.{ext}"))
}

/// Compare, writing `NAME.actual.EXT` on mismatch; returns a failure description.
fn compare(name: &str, ext: &str, actual: &str) -> Option<String> {
    let expected_path = path(name, ext);
    let actual_path = path(name, &format!("actual.{ext}"));
    let expected = std::fs::read_to_string(&expected_path).ok();
    if expected.as_deref() == Some(actual) {
        let _ = std::fs::remove_file(&actual_path);
        return None;
    }
    std::fs::write(&actual_path, actual).expect("write actual");
    Some(format!(
        "{name}: output differs: diff {} {}",
        expected_path.display(),
        actual_path.display()
    ))
}

fn pretty(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).expect("stdout is JSON");
    serde_json::to_string_pretty(&value).expect("pretty") + "\n"
}

#[test]
fn golden_corpus() {
    let mut failures = Vec::new();
    let names = cases();
    assert!(names.len() >= 20, "the corpus went missing: {names:?}");
    for name in &names {
        let mut args = vec![
            "-c".to_owned(),
            path(name, "yaml").display().to_string(),
            "--format".to_owned(),
            "json".to_owned(),
        ];
        if let Ok(extra) = std::fs::read_to_string(path(name, "args")) {
            args.extend(extra.lines().filter(|l| !l.is_empty()).map(str::to_owned));
        }
        args.push(path(name, "eml").display().to_string());
        let outcome = run_test_command(&args);
        if path(name, "err").exists() {
            if outcome.exit != Exit::Config {
                failures.push(format!("{name}: exit {:?}, want Config", outcome.exit));
            }
            failures.extend(compare(name, "err", &outcome.stderr));
            continue;
        }
        if outcome.exit != Exit::Ok {
            failures.push(format!(
                "{name}: exit {:?}: {}",
                outcome.exit, outcome.stderr
            ));
            continue;
        }
        // Exactly one JSON document on one line, keys in the documented order.
        if outcome.stdout.trim_end().lines().count() != 1 {
            failures.push(format!("{name}: stdout is not one line"));
        }
        let order = [
            "{\"messages\":[{\"file\":",
            "\"message_id\":",
            "\"matched\":",
            "\"plan\":{\"add_flags\":",
            "\"remove_flags\":",
            "\"add_labels\":",
            "\"copy\":",
            "\"final\":",
            "\"warnings\":",
        ];
        let mut at = 0;
        for key in order {
            match outcome.stdout[at..].find(key) {
                Some(i) => at += i + key.len(),
                None => failures.push(format!("{name}: {key} missing or out of order")),
            }
        }
        failures.extend(compare(name, "json", &pretty(&outcome.stdout)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A Subject of 1 MiB (generated, not committed): decoded, matched, no quadratic blow-up.
#[test]
fn one_mebibyte_subject() {
    let dir = tempfile::tempdir().expect("tempdir");
    let eml = dir.path().join("huge.eml");
    let mut subject = String::with_capacity(1 << 20);
    while subject.len() < (1 << 20) {
        subject.push_str("lorem ipsum dolor sit amet ");
    }
    subject.push_str("NEEDLE");
    let raw = format!(
        "From: a@example.org\r\nSubject: {subject}\r\nMessage-ID: <huge@example.org>\r\n\r\nbody\r\n"
    );
    std::fs::write(&eml, raw).expect("write eml");
    let yaml = dir.path().join("rules.yaml");
    std::fs::write(
        &yaml,
        "rules:\n  - name: needle\n    when: { subject: { suffix: needle } }\n    then: { flag: found }\n\
         \x20 - name: regex\n    when: { subject: { regex: 'amet\\s+NEEDLE$' } }\n    then: { flag: regex }\n",
    )
    .expect("write yaml");
    let start = std::time::Instant::now();
    let outcome = run_test_command(&[
        "-c".into(),
        yaml.display().to_string(),
        "--format".into(),
        "json".into(),
        eml.display().to_string(),
    ]);
    assert_eq!(outcome.exit, Exit::Ok, "{}", outcome.stderr);
    let doc: serde_json::Value = serde_json::from_str(&outcome.stdout).expect("json");
    let message = &doc["messages"][0];
    assert_eq!(message["matched"], serde_json::json!(["needle", "regex"]));
    assert_eq!(
        message["plan"]["add_flags"],
        serde_json::json!(["found", "regex"])
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

/// Exit 66 names the file that could not be read, and prints no results.
#[test]
fn unreadable_message_exits_66() {
    let outcome = run_test_command(&[
        "-c".into(),
        path("list_move", "yaml").display().to_string(),
        path("list_move", "eml").display().to_string(),
        "tests/golden/does-not-exist.eml".into(),
    ]);
    assert_eq!(outcome.exit, Exit::NoInput);
    assert!(
        outcome.stderr.contains("tests/golden/does-not-exist.eml"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stdout.is_empty());
}

/// Exit 78 with the diagnostics on stderr when the configuration is invalid.
#[test]
fn invalid_config_exits_78() {
    let outcome = run_test_command(&[
        "-c".into(),
        "tests/golden/does-not-exist.yaml".into(),
        path("list_move", "eml").display().to_string(),
    ]);
    assert_eq!(outcome.exit, Exit::Config);
    assert!(
        outcome.stderr.contains("does-not-exist.yaml"),
        "{}",
        outcome.stderr
    );
}

/// The text format explains every match with the condition that held, and the plan.
#[test]
fn text_output_explains() {
    let outcome = run_test_command(&[
        "-c".into(),
        path("address_matchers", "yaml").display().to_string(),
        path("address_matchers", "eml").display().to_string(),
        path("missing_variable", "eml").display().to_string(),
    ]);
    assert_eq!(outcome.exit, Exit::Ok, "{}", outcome.stderr);
    let text = &outcome.stdout;
    assert!(
        text.contains("tests/golden/address_matchers.eml Alice A. \"addresses\"\n"),
        "{text}"
    );
    assert!(
        text.contains("matched \"domain subdomain\": from is in domain \"example.com\""),
        "{text}"
    );
    assert!(text.contains("add flags:"), "{text}");
    assert!(text.contains("no rule matched"), "{text}");
    assert!(text.contains("stays in:     INBOX"), "{text}");
}

/// Through the real binary: the exit codes reach the process, JSON goes to stdout.
#[test]
fn binary_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_imapsort");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env_remove("IMAPSORT_CONFIG")
            .output()
            .expect("run imapsort")
    };
    let ok = run(&[
        "test",
        "-c",
        "tests/golden/list_move.yaml",
        "--format",
        "json",
        "tests/golden/list_move.eml",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("json on stdout");
    assert_eq!(
        doc["messages"][0]["plan"]["final"],
        serde_json::json!({"action": "move", "mailbox": "Lists/dev.lists.example.org"})
    );
    let missing = run(&["test", "-c", "tests/golden/list_move.yaml", "missing.eml"]);
    assert_eq!(missing.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing.eml"));
    let invalid = run(&[
        "test",
        "-c",
        "tests/golden/error_regex.yaml",
        "tests/golden/list_move.eml",
    ]);
    assert_eq!(invalid.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("invalid regex"));
}
