//! The demo end to end, as `scripts/demo` runs it: the real imapsort against the private
//! Dovecot, one aligned line per message acted on, a summary after Ctrl-C, a clean exit.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The imapsort binary of this workspace's build (`cargo test --workspace` builds it).
fn imapsort() -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    Some(deps.parent()?.join("imapsort")).filter(|p| p.is_file())
}

#[test]
fn the_demo_tells_what_imapsort_did_and_stops_cleanly_on_ctrl_c() {
    let ci = std::env::var_os("CI").is_some();
    if !imapsort_testkit::dovecot::Dovecot::available() {
        assert!(!ci, "dovecot is not installed, and CI is set");
        eprintln!("SKIPPED: dovecot is not installed");
        return;
    }
    let Some(imapsort) = imapsort() else {
        assert!(!ci, "the imapsort binary was not built beside this test");
        eprintln!("SKIPPED: build imapsort first (cargo build --bin imapsort)");
        return;
    };
    let mut demo = Command::new(env!("CARGO_BIN_EXE_imapsort-demo"))
        .arg("--imapsort")
        .arg(&imapsort)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = demo.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    // The catch-up of the INBOX: enough lines to see every column at work.
    while seen
        .iter()
        .filter(|l: &&String| l.contains("  -> Lists/"))
        .count()
        < 3
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no sorted lines within 90 s:\n{}", seen.join("\n")),
        }
    }
    let interrupt = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    seen.extend(rx.iter());
    let status = demo.wait().unwrap();
    let text = seen.join("\n");
    assert!(status.success(), "{status}\n{text}");

    let header = seen
        .iter()
        .find(|l| l.starts_with("TIME"))
        .expect("a header line");
    let columns = ["FROM", "SUBJECT", "RULE", "WHERE IT WENT"].map(|c| header.find(c).unwrap());
    let sorted: Vec<&String> = seen.iter().filter(|l| l.contains("  -> ")).collect();
    for line in &sorted {
        // Aligned: every column starts where its title does, after two spaces.
        let chars: Vec<char> = line.chars().collect();
        for at in columns {
            assert_eq!(
                chars[at - 2..at],
                [' ', ' '],
                "{line:?} is not aligned with\n{header:?}"
            );
            assert_ne!(chars[at], ' ', "{line:?} is not aligned with\n{header:?}");
        }
        assert!(
            line.chars().count() <= 100,
            "wider than the terminal: {line}"
        );
    }
    // Sender and subject come from the demo's own letters, not Message-IDs.
    assert!(
        sorted.iter().all(|l| !l.contains("@imapsort.example")),
        "{text}"
    );
    assert!(
        sorted
            .iter()
            .any(|l| l.contains("mailing lists") && l.contains("[")),
        "{text}"
    );
    assert!(text.contains("imapsort's rules acted on"), "{text}");
    assert!(
        text.contains("by rule") && text.contains("into mailbox"),
        "{text}"
    );
    assert!(text.contains("Stopping the mail server"), "{text}");
    // Without -v, imapsort's own info lines stay hidden.
    assert!(!text.contains("imapsort INFO"), "{text}");
}
