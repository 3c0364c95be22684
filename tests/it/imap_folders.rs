//! `imapsort folders` end to end: the binary against a seeded private Dovecot.

use std::process::Command;

use imapsort_testkit::dovecot::{DovecotOptions, SeedMessage};

use crate::support;

fn imapsort() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imapsort"))
}

/// Run with a hard timeout (the binary has its own, this guards the test).
fn output(cmd: &mut Command) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("imapsort folders exceeded its hard timeout");
        }
    }
}

#[test]
fn folders_lists_mailboxes_special_use_and_counts() {
    for sep in ['/', '.'] {
        let Some(d) = support::dovecot::start(DovecotOptions {
            separator: sep,
            ..DovecotOptions::default()
        }) else {
            return;
        };
        let msgs = |n: usize| -> Vec<Vec<u8>> {
            (0..n).map(|i| support::dovecot::message(i, "x")).collect()
        };
        d.seed("user", "INBOX", &msgs(3)).unwrap();
        d.seed_with(
            "user",
            "INBOX",
            &[SeedMessage {
                bytes: support::dovecot::message(9, "read"),
                flags: vec!["\\Seen".into()],
                internal_date: None,
            }],
        )
        .unwrap();
        d.seed("user", "Lists/Rüst", &msgs(2)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = support::dovecot::write_config(dir.path(), &d, "");

        let out = output(imapsort().args(["folders", "-c"]).arg(&config));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{sep}: {stdout}\n{stderr}");
        let line = |name: &str| {
            stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert!(stdout.starts_with("test (localhost)"), "{stdout}");
        assert_eq!(line("INBOX"), ["INBOX", "4", "3"], "{stdout}");
        assert_eq!(line("Lists/Rüst"), ["Lists/Rüst", "2", "2"], "{stdout}");
        assert_eq!(line("Trash"), ["Trash", "\\Trash", "0", "0"], "{stdout}");
        assert_eq!(
            line("Archive"),
            ["Archive", "\\Archive", "0", "0"],
            "{stdout}"
        );
        assert!(
            stdout.contains("trash: Trash  archive: Archive"),
            "{stdout}"
        );
        // INBOX is listed first.
        assert!(
            stdout
                .lines()
                .nth(2)
                .unwrap()
                .trim_start()
                .starts_with("INBOX"),
            "{stdout}"
        );
    }
}

#[test]
fn folders_exits_69_naming_the_account_when_login_fails() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = support::dovecot::write_config(dir.path(), &d, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("password: pass", "password: Wr0ngPass");
    std::fs::write(&config, text).unwrap();
    let out = output(imapsort().args(["folders", "-c"]).arg(&config));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("account test"), "{stderr}");
    assert!(stderr.contains("rejected"), "{stderr}");
    assert!(!stderr.contains("Wr0ngPass"), "{stderr}");
}

#[test]
fn folders_exits_69_when_the_server_is_unreachable() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = support::dovecot::write_config(dir.path(), &d, "");
    d.stop();
    let out = output(
        imapsort()
            .args(["folders", "-c"])
            .arg(&config)
            .args(["--account", "test"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("account test"), "{stderr}");
}

#[test]
fn folders_exits_78_for_an_invalid_config_and_2_for_an_unknown_account() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "accounts:\n  - name: x\n    hots: typo\n").unwrap();
    let out = output(imapsort().args(["folders", "-c"]).arg(&bad));
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "accounts:\n  - name: x\n    host: 127.0.0.1\n    username: u\n    password: { env: NOPE }\n",
    )
    .unwrap();
    let out = output(
        imapsort()
            .args(["folders", "-c"])
            .arg(&good)
            .args(["--account", "other"]),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
