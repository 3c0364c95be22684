//! `--shard I/N`: three `imapsort run` processes share one configuration file, each with its
//! own state directory, over one Dovecot: every account is handled by exactly one of them
//! (a copy rule would copy twice otherwise), and each reports only its own accounts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use imapsort::shard::Shard;
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

use crate::support::http::wait_with_timeout;
use crate::support::http::{health, poll_until};
use crate::support::run_with_timeout;

const BIN: &str = env!("CARGO_BIN_EXE_imapsort");
const SHARDS: u64 = 3;
const ACCOUNTS: usize = 9;

fn name(i: usize) -> String {
    format!("acct-{i}")
}

fn report(n: usize, user: &str) -> Vec<u8> {
    format!(
        "From: Reports <reports@example.com>\r\nTo: {user}@example.com\r\nSubject: report {n}\r\n\
         Message-ID: <report{n}.{user}@example.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nreport {n}\r\n"
    )
    .into_bytes()
}

/// One instance: its process, its state directory and its log file.
struct Instance {
    child: crate::support::Daemon,
    state: PathBuf,
    log: PathBuf,
}

impl Instance {
    fn start(config: &Path, dir: &Path, index: u64) -> Instance {
        let state = dir.join(format!("state-{index}"));
        let log = dir.join(format!("run-{index}.log"));
        let child = Command::new(BIN)
            .args(["run", "-c"])
            .arg(config)
            .arg("--shard")
            .arg(format!("{index}/{SHARDS}"))
            // No state_dir in the file: each instance's comes from its environment, as under
            // systemd (StateDirectory=) or in a StatefulSet (a volume per pod).
            .env("STATE_DIRECTORY", &state)
            .env("IMAPSORT_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Instance {
            child: crate::support::Daemon::new(child),
            state,
            log,
        }
    }

    /// The metrics address from the `serving /metrics and /health` log line.
    fn metrics_addr(&self) -> Result<SocketAddr, String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("serving /metrics and /health"))
            .find_map(|l| {
                l.split("address=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .ok_or(log)
    }

    /// SIGTERM; the exit status.
    fn stop(self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let out = wait_with_timeout(self.child.into_inner(), Duration::from_secs(15));
        (
            out.status.code(),
            std::fs::read_to_string(&self.log).unwrap_or_default(),
        )
    }
}

fn status(config: &Path, state: &Path, shard: Option<u64>) -> serde_json::Value {
    let mut cmd = Command::new(BIN);
    cmd.args(["status", "--format", "json", "-c"])
        .arg(config)
        .env("STATE_DIRECTORY", state);
    if let Some(i) = shard {
        cmd.arg("--shard").arg(format!("{i}/{SHARDS}"));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Accounts `status` lists, with whether the database has state for them.
fn listed(json: &serde_json::Value) -> Vec<(String, bool)> {
    json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account"].as_str().unwrap().to_owned(),
                !a["mailboxes"].as_array().unwrap().is_empty(),
            )
        })
        .collect()
}

fn count(d: &Dovecot, user: &str, mailbox: &str) -> usize {
    let dir = d.mailbox_dir(user, mailbox);
    ["new", "cur"]
        .iter()
        .map(|s| {
            std::fs::read_dir(dir.join(s))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn three_instances_split_the_accounts_and_sort_each_message_once() {
    run_with_timeout(Duration::from_secs(180), async {
        let users: Vec<(String, String)> = std::iter::once(("user".into(), "pass".into()))
            .chain((0..ACCOUNTS).map(|i| (name(i), "pass".to_owned())))
            .collect();
        let Some(d) = crate::support::dovecot::start(DovecotOptions {
            users,
            ..DovecotOptions::default()
        }) else {
            return;
        };
        let shard_of: Vec<u64> = (0..ACCOUNTS).map(|i| Shard::of(&name(i), SHARDS)).collect();
        for s in 0..SHARDS {
            assert!(
                shard_of.contains(&s),
                "the test's account names leave shard {s} empty: {shard_of:?}"
            );
        }
        for i in 0..ACCOUNTS {
            d.seed(
                &name(i),
                "INBOX",
                &[report(1, &name(i)), report(2, &name(i))],
            )
            .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("settings:\n  metrics_listen: 127.0.0.1:0\naccounts:\n");
        for i in 0..ACCOUNTS {
            text.push_str(&format!(
                "  - name: {n}\n    host: 127.0.0.1\n    port: {port}\n    ca_file: {ca}\n    username: {n}\n    password: pass\n    first_start: all\n",
                n = name(i),
                port = d.imaps_port(),
                ca = d.ca_pem_path().display()
            ));
        }
        text.push_str(
            "rules:\n  - name: reports\n    when: { subject: report }\n    then: [{ copy: Copies }, { move: Reports }]\n",
        );
        let config = dir.path().join("config.yaml");
        crate::support::harness::write_private(&config, &text);

        let instances: Vec<Instance> = (0..SHARDS)
            .map(|i| Instance::start(&config, dir.path(), i))
            .collect();
        let mut addrs = Vec::new();
        for inst in &instances {
            let addr = poll_until(
                "the metrics address in the log",
                Duration::from_secs(20),
                || async { inst.metrics_addr() },
            )
            .await;
            addrs.push(addr);
        }
        // Each instance reports exactly its shard's accounts, all connected.
        for (index, addr) in addrs.iter().enumerate() {
            let json = poll_until(
                "every account of the shard connected",
                Duration::from_secs(30),
                || async {
                    match health(*addr).await {
                        (200, json) => Ok(json),
                        (code, json) => Err(format!("{code} {json}")),
                    }
                },
            )
            .await;
            let mut reported: Vec<String> = json["accounts"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            reported.sort();
            let want: Vec<String> = (0..ACCOUNTS)
                .filter(|&i| shard_of[i] == index as u64)
                .map(name)
                .collect();
            assert_eq!(reported, want, "instance {index}");
        }
        // The mail that was there, and mail that arrives now: sorted once each.
        for i in 0..ACCOUNTS {
            d.seed(&name(i), "INBOX", &[report(3, &name(i))]).unwrap();
        }
        poll_until("every message moved", Duration::from_secs(60), || async {
            let left: Vec<(String, usize, usize)> = (0..ACCOUNTS)
                .map(|i| {
                    (
                        name(i),
                        count(&d, &name(i), "INBOX"),
                        count(&d, &name(i), "Reports"),
                    )
                })
                .filter(|(_, inbox, reports)| *inbox != 0 || *reports != 3)
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        })
        .await;
        for i in 0..ACCOUNTS {
            assert_eq!(
                count(&d, &name(i), "Copies"),
                3,
                "{}: copied twice?",
                name(i)
            );
        }

        let stopped: Vec<(Option<i32>, String, PathBuf)> = instances
            .into_iter()
            .map(|inst| {
                let state = inst.state.clone();
                let (code, log) = inst.stop();
                (code, log, state)
            })
            .collect();
        for (index, (code, log, state)) in stopped.iter().enumerate() {
            assert_eq!(*code, Some(0), "instance {index}:\n{log}");
            // Its log names only its own accounts.
            for (i, shard) in shard_of.iter().enumerate() {
                let mentioned = log.contains(&format!("account={}", name(i)));
                assert_eq!(
                    mentioned,
                    *shard == index as u64,
                    "instance {index} and {}:\n{log}",
                    name(i)
                );
            }
            // Its state database knows only its own accounts; `status --shard` lists only
            // those, and without --shard the others are configured but have no state.
            let mine: Vec<(String, bool)> = (0..ACCOUNTS)
                .filter(|&i| shard_of[i] == index as u64)
                .map(|i| (name(i), true))
                .collect();
            assert_eq!(listed(&status(&config, state, Some(index as u64))), mine);
            let all: Vec<(String, bool)> = (0..ACCOUNTS)
                .map(|i| (name(i), shard_of[i] == index as u64))
                .collect();
            assert_eq!(listed(&status(&config, state, None)), all);
        }
    });
}

#[test]
fn a_shard_that_is_not_i_of_n_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    crate::support::harness::write_private(
        &config,
        "accounts:\n  - { name: a, host: 127.0.0.1, port: 1, username: u, password: p }\n",
    );
    for (command, shard) in [
        ("run", "3/3"),
        ("run", "0/0"),
        ("status", "x"),
        ("status", "1/2/3"),
        ("sweep", "1/-3"),
    ] {
        let out = Command::new(BIN)
            .args([command, "--shard", shard, "-c"])
            .arg(&config)
            .env("STATE_DIRECTORY", dir.path().join("state"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command} --shard {shard}: {stderr}"
        );
        assert!(stderr.contains("--shard"), "{stderr}");
    }
    // An account of another shard named with --account: a usage error too, before any
    // connection is tried.
    let other = (Shard::of("a", 2) + 1) % 2;
    let out = Command::new(BIN)
        .args([
            "sweep",
            "--account",
            "a",
            "--shard",
            &format!("{other}/2"),
            "-c",
        ])
        .arg(&config)
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("belongs to shard"), "{stderr}");
}

#[test]
fn an_empty_shard_sweeps_nothing_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // Port 1 on loopback: a sweep that tried to connect would fail (69).
    crate::support::harness::write_private(
        &config,
        "accounts:\n  - { name: a, host: 127.0.0.1, port: 1, tls: none, allow_insecure: true, username: u, password: p }\nrules:\n  - { name: r, when: true, then: mark_read }\n",
    );
    let other = (Shard::of("a", 2) + 1) % 2;
    let out = Command::new(BIN)
        .args([
            "sweep",
            "--format",
            "json",
            "--shard",
            &format!("{other}/2"),
            "-c",
        ])
        .arg(&config)
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["examined"], 0, "{stdout}");
    // The shard that has the account does try it.
    let out = Command::new(BIN)
        .args(["sweep", "--shard", &format!("{}/2", 1 - other), "-c"])
        .arg(&config)
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
