//! The malformed-mail corpus (tests/malformed/) delivered to the private Dovecot and swept by
//! the real `imapsort sweep` binary with the realistic rule set: no panic, no hang (a time
//! bound), bounded memory (`ulimit -v`), exit 0, one JSON line per message acted on and a
//! summary that counts every message; then a second sweep finds nothing left to do twice.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use imapsort_testkit::dovecot::DovecotOptions;

use crate::support::{self, corpus};

const MEMORY_KIB: u64 = 1024 * 1024;
const LIMIT: Duration = Duration::from_secs(120);

fn sweep(config: &Path, extra: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB}; exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "-c"])
        .arg(config)
        .args(["--format", "json"])
        .args(extra)
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("imapsort sweep");
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "imapsort sweep hung for {LIMIT:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

fn summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last line is not JSON ({e}): {last:?}"));
    for line in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("a line is not JSON ({e}): {line:?}"));
    }
    v["summary"].clone()
}

#[test]
fn the_malformed_corpus_swept_from_a_real_server() {
    let Some(d) = support::dovecot::start(DovecotOptions::default()) else {
        return;
    };
    let cases = corpus::all();
    // Dovecot stores what it is given; an empty file is not a message it lists.
    let messages: Vec<Vec<u8>> = cases
        .iter()
        .filter(|c| !c.bytes.is_empty())
        .map(|c| c.bytes.clone())
        .collect();
    d.seed("user", "INBOX", &messages).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rules = corpus::rules_yaml()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        // Gmail labels are an error on Dovecot: leave them out of a real sweep.
        .replace("{ label: Newsletters }, ", "");
    let config = support::dovecot::write_config(dir.path(), &d, &format!("{rules}\n"));

    let (out, took) = sweep(&config, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let s = summary(&out);
    eprintln!("first sweep in {took:?}: {s}");
    assert_eq!(
        s["examined"].as_u64(),
        Some(messages.len() as u64),
        "every message examined"
    );
    assert!(
        s["matched"].as_u64().unwrap_or(0) > 0,
        "the rules matched something"
    );
    assert_eq!(
        s["errors"].as_u64(),
        Some(0),
        "stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A second pass: what was applied is not applied again.
    let (out, took) = sweep(&config, &[]);
    assert_eq!(out.status.code(), Some(0));
    let again = summary(&out);
    eprintln!("second sweep in {took:?}: {again}");
    assert_eq!(again["errors"].as_u64(), Some(0), "{again}");
    assert_eq!(again["moved"].as_u64(), Some(0), "{again}");
    let acted: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("\"summary\""))
        .map(str::to_string)
        .collect();
    assert!(acted.is_empty(), "acted on again: {acted:?}");
}
