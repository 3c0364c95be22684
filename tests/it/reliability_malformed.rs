//! The malformed-mail corpus (`tests/malformed/`: broken MIME boundaries, invalid charsets,
//! NULs, bare CR, 1 MiB header lines, 10,000 headers, multiparts nested 500 and 5,000 deep,
//! truncated base64, 8-bit junk in headers) through the rules engine in-process and through
//! the `imapsort test` binary: every message parses and evaluates, without a panic, within a
//! time bound, and the binary exits 0 with sane JSON under a memory limit. (The same corpus
//! through a real sweep against Dovecot is in tests/it/reliability_malformed_sweep.rs.)

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imapsort::rules::ast::Trigger;
use imapsort::rules::{EvalContext, MessageFacts, MessageView, RuleSet};

use crate::support::corpus;

/// Per message, for parse + evaluation under both triggers, in a debug build on a shared
/// machine; a real problem (quadratic blow-up, a loop) overshoots it by orders of magnitude.
const PER_MESSAGE: Duration = Duration::from_secs(20);

fn rules() -> Arc<RuleSet> {
    imapsort::config::load_str(corpus::rules_yaml(), Path::new("rules.yaml"))
        .expect("the corpus rule set is valid")
        .rules
}

/// Parse and evaluate on a thread with a big stack (the engine must not need it, but a
/// stack overflow would abort the whole test binary instead of failing this case) and a
/// deadline.
fn evaluate_bounded(rules: Arc<RuleSet>, case: &corpus::Case) -> Result<Duration, String> {
    let bytes = case.bytes.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::Builder::new()
        .name(case.name.clone())
        .spawn(move || {
            let result = std::panic::catch_unwind(move || {
                let facts = MessageFacts {
                    flags: vec!["\\Seen".into(), "work".into()],
                    size: bytes.len() as u64,
                    received: Some("2025-01-02T03:04:05+01:00[+01:00]".parse().unwrap()),
                };
                let view = MessageView::parse(&bytes, facts);
                let watch = vec!["INBOX".to_owned()];
                let mut plans = Vec::new();
                for trigger in [None, Some(Trigger::New), Some(Trigger::Sweep)] {
                    let ctx = EvalContext {
                        account: Some("test"),
                        mailbox: "INBOX",
                        watch: &watch,
                        trigger,
                        now: "2026-03-10T12:00:00Z".parse().unwrap(),
                        trash: "Trash",
                        archive: "Archive",
                        delimiter: Some('/'),
                        applied: None,
                    };
                    plans.push(rules.evaluate(&view, &ctx));
                }
                plans
            });
            let _ = tx.send(result.map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }));
        })
        .expect("spawn");
    match rx.recv_timeout(PER_MESSAGE) {
        Ok(Ok(evaluations)) => {
            for ev in evaluations {
                let names = ev.plan.copy.iter().chain(
                    ev.plan
                        .final_action
                        .iter()
                        .filter_map(|f| f.mailbox.as_ref()),
                );
                for name in names {
                    if name.chars().any(char::is_control) {
                        return Err(format!("control character in mailbox name {name:?}"));
                    }
                }
            }
            Ok(started.elapsed())
        }
        Ok(Err(panic)) => Err(format!("panicked: {panic}")),
        Err(_) => Err(format!("no result within {PER_MESSAGE:?}")),
    }
}

#[test]
fn every_corpus_message_parses_and_evaluates_in_bounded_time() {
    let rules = rules();
    let mut failures = Vec::new();
    let cases = corpus::all();
    assert!(
        cases.len() >= 15,
        "the corpus shrank: {} cases",
        cases.len()
    );
    for case in &cases {
        match evaluate_bounded(rules.clone(), case) {
            Ok(took) => eprintln!("{:<40} {:>9} bytes {took:?}", case.name, case.bytes.len()),
            Err(why) => failures.push(format!("{}: {why}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_realistic_message_matches_what_a_reader_expects() {
    // The corpus is only useful if the rule set really exercises the engine: the one
    // well-formed message must match the rules it was written for.
    let rules = rules();
    let case = corpus::committed()
        .into_iter()
        .find(|c| c.name == "realistic-invoice.eml")
        .unwrap();
    let view = MessageView::parse(
        &case.bytes,
        MessageFacts {
            flags: vec![],
            size: case.bytes.len() as u64,
            received: Some("2026-03-02T10:00:00+01:00[+01:00]".parse().unwrap()),
        },
    );
    let watch = vec!["INBOX".to_owned()];
    let ctx = EvalContext {
        account: Some("test"),
        mailbox: "INBOX",
        watch: &watch,
        trigger: Some(Trigger::New),
        now: "2026-03-10T12:00:00Z".parse().unwrap(),
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('/'),
        applied: None,
    };
    let ev = rules.evaluate(&view, &ctx);
    let matched: Vec<&str> = ev.matched.iter().map(|m| m.rule.as_str()).collect();
    assert_eq!(matched, ["mailing lists"], "{ev:?}");
    let f = ev.plan.final_action.expect("moved");
    assert_eq!(f.mailbox.as_deref(), Some("Lists/billing.example.net"));
    assert_eq!(ev.plan.add_flags, ["$List"]);
}

/// Virtual memory allowed to one `imapsort test` process (`ulimit -v`, KiB). The biggest
/// corpus message is under 3 MiB; a parser that copied it per header or per nesting level
/// would blow through this.
const BINARY_MEMORY_KIB: u64 = 512 * 1024;

/// Per message through the binary (debug build, shared machine).
const BINARY_PER_MESSAGE: Duration = Duration::from_secs(30);

#[test]
fn every_corpus_message_through_imapsort_test_exits_0_with_sane_json() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, corpus::rules_yaml()).unwrap();
    let mut failures = Vec::new();
    for case in corpus::all() {
        let file = dir.path().join(&case.name);
        std::fs::write(&file, &case.bytes).unwrap();
        let started = Instant::now();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v {BINARY_MEMORY_KIB}; exec \"$@\""))
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_imapsort"))
            .args(["test", "-c"])
            .arg(&rules)
            .args(["--format", "json"])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run imapsort test");
        // Poll rather than block, so a hang is killed at the bound instead of hanging CI.
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > BINARY_PER_MESSAGE {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Some(status) = status else {
            failures.push(format!(
                "{}: no exit within {BINARY_PER_MESSAGE:?}",
                case.name
            ));
            continue;
        };
        if !status.success() {
            failures.push(format!("{}: {status}; stderr: {stderr}", case.name));
            continue;
        }
        if stderr.contains("panicked") {
            failures.push(format!("{}: a panic on stderr: {stderr}", case.name));
        }
        let json: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: stdout is not JSON ({e})", case.name));
                continue;
            }
        };
        let messages = json["messages"].as_array().cloned().unwrap_or_default();
        let sane = messages.len() == 1
            && messages[0]["file"].as_str() == Some(file.to_str().unwrap())
            && messages[0]["plan"].is_object()
            && messages[0]["matched"].is_array()
            && messages[0]["warnings"].is_array();
        if !sane {
            failures.push(format!("{}: unexpected JSON {json}", case.name));
        }
        eprintln!("{:<40} {:?}", case.name, started.elapsed());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
