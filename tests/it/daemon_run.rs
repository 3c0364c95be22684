//! The daemon against a private Dovecot: push sorting, bursts, restarts of the daemon,
//! `first_start`, sweeps, and an account with a wrong password beside a good one.

use std::time::{Duration, SystemTime};

use imapsort_testkit::dovecot::SeedMessage;

use crate::support::harness::{RULES, get, harness, harness_with, mail};
use crate::support::run_with_timeout;

#[test]
fn a_delivered_message_is_moved_by_the_running_daemon() {
    run_with_timeout(Duration::from_secs(60), async {
        let Some(mut h) = harness() else { return };
        h.write_config(&h.default_config());
        h.start().await;
        h.wait_selected().await;
        h.deliver("INBOX", &[mail(1, "hello", Some("dev.example.org"))]);
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(20))
            .await;
        assert_eq!(h.count("INBOX").await, 0);
        assert!(h.stop().await < Duration::from_secs(5));
    });
}

#[test]
fn a_burst_of_500_messages_all_end_where_the_rules_say_and_none_twice() {
    run_with_timeout(Duration::from_secs(120), async {
        let Some(mut h) = harness() else { return };
        h.write_config(&h.default_config());
        h.start().await;
        h.wait_selected().await;
        let mut burst = Vec::new();
        for n in 0..500 {
            burst.push(match n % 5 {
                0 | 1 => mail(
                    n,
                    "chat",
                    Some(if n % 2 == 0 { "a.example" } else { "b.example" }),
                ),
                2 => mail(n, "your invoice", None),
                _ => mail(n, "personal", None),
            });
        }
        h.deliver("INBOX", &burst);
        h.wait_count("Invoices", 100, Duration::from_secs(60)).await;
        h.wait_count("Lists/a.example", 100, Duration::from_secs(30))
            .await;
        h.wait_count("Lists/b.example", 100, Duration::from_secs(30))
            .await;
        h.wait_count("INBOX", 200, Duration::from_secs(30)).await;
        // Nothing acted on twice: exactly the 300 moved messages were logged as sorted.
        assert_eq!(get(&h.stats().messages_acted), 300);
        h.stop().await;
    });
}

#[test]
fn mail_arriving_while_stopped_is_handled_at_next_start_but_mail_from_before_the_first_start_is_not()
 {
    run_with_timeout(Duration::from_secs(90), async {
        let Some(mut h) = harness() else { return };
        h.write_config(&h.default_config());
        // Before the very first start: left alone with first_start: new.
        h.deliver(
            "INBOX",
            &[
                mail(1, "old", Some("old.example")),
                mail(2, "old", Some("old.example")),
            ],
        );
        h.start().await;
        h.wait_selected().await;
        h.deliver("INBOX", &[mail(3, "new", Some("new.example"))]);
        h.wait_count("Lists/new.example", 1, Duration::from_secs(20))
            .await;
        h.stop().await;

        h.deliver(
            "INBOX",
            &[
                mail(4, "while stopped", Some("new.example")),
                mail(5, "while stopped", Some("new.example")),
            ],
        );
        h.start().await;
        h.wait_count("Lists/new.example", 3, Duration::from_secs(20))
            .await;
        assert_eq!(h.count("Lists/old.example").await, 0);
        assert_eq!(h.count("INBOX").await, 2);
        h.stop().await;
    });
}

#[test]
fn first_start_all_handles_existing_mail() {
    run_with_timeout(Duration::from_secs(60), async {
        let Some(mut h) = harness() else { return };
        let account = h.account("test", "pass", "    first_start: all\n");
        h.write_config(&h.config(&account, RULES, ""));
        h.deliver(
            "INBOX",
            &[mail(1, "old", Some("old.example")), mail(2, "plain", None)],
        );
        h.start().await;
        h.wait_count("Lists/old.example", 1, Duration::from_secs(20))
            .await;
        assert_eq!(h.count("INBOX").await, 1);
        h.stop().await;
    });
}

#[test]
fn sweep_rules_run_at_start_and_every_interval_and_never_reapply_to_a_message() {
    run_with_timeout(Duration::from_secs(90), async {
        let Some(mut h) = harness() else { return };
        let rules = r#"
  - name: flag old mail
    when: { older_than: 7d }
    then: { flag: \Flagged }
"#;
        h.write_config(&h.config(
            &h.account("test", "pass", ""),
            rules,
            "  sweep_interval: 1s\n",
        ));
        let ten_days_ago = SystemTime::now() - Duration::from_secs(10 * 86400);
        let old: Vec<SeedMessage> = (0..3)
            .map(|n| SeedMessage {
                bytes: mail(n, "old", None),
                flags: vec!["\\Seen".into()],
                internal_date: Some(ten_days_ago),
            })
            .collect();
        h.dovecot.seed_with("user", "INBOX", &old).unwrap();
        h.deliver("INBOX", &[mail(9, "recent", None)]);
        h.start().await;
        let mut c = h.client().await;
        let flagged = |uids: Vec<u32>| uids.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            c.select("INBOX").await.unwrap();
            let n = flagged(c.uid_search("FLAGGED").await.unwrap());
            if n == 3 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {n} of 3 old messages flagged"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The user unflags one; later sweeps must not flag it again.
        let first = c.uid_search("FLAGGED").await.unwrap()[0];
        c.uid_store(&first.to_string(), "-FLAGS.SILENT (\\Flagged)")
            .await
            .unwrap();
        let sweeps = get(&h.stats().sweeps);
        h.wait_until("two more sweeps", Duration::from_secs(20), |s| {
            get(&s.sweeps) >= sweeps + 2
        })
        .await;
        c.select("INBOX").await.unwrap();
        assert_eq!(c.uid_search("FLAGGED").await.unwrap().len(), 2);
        // The recent message was never flagged.
        assert_eq!(c.uid_search("UNFLAGGED").await.unwrap().len(), 2);
        let _ = c.logout().await;
        h.stop().await;
    });
}

#[test]
fn an_account_with_a_wrong_password_does_not_keep_the_other_from_sorting() {
    run_with_timeout(Duration::from_secs(60), async {
        let Some(mut h) = harness() else { return };
        let accounts = format!(
            "{}{}",
            h.account("bad", "wrong-password", ""),
            h.account("good", "pass", "")
        );
        h.write_config(&h.config(&accounts, RULES, ""));
        h.start().await;
        h.wait_until("the good account's mailbox", Duration::from_secs(10), |s| {
            get(&s.mailboxes_selected) >= 1
        })
        .await;
        h.deliver("INBOX", &[mail(1, "hello", Some("dev.example.org"))]);
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(20))
            .await;
        assert!(
            get(&h.stats().connection_failures) >= 1,
            "the bad login was not counted"
        );
        h.stop().await;
    });
}

#[test]
fn watched_mailboxes_beyond_max_connections_are_polled() {
    run_with_timeout(Duration::from_secs(60), async {
        let Some(mut h) = harness() else { return };
        h.deliver("Second", &[mail(1, "plain", None)]);
        let account = h.account(
            "test",
            "pass",
            "    watch: [INBOX, Second]\n    max_connections: 1\n    poll_interval: 1s\n",
        );
        h.write_config(&h.config(&account, RULES, ""));
        h.start().await;
        h.wait_until("two selected mailboxes", Duration::from_secs(10), |s| {
            get(&s.mailboxes_selected) >= 2
        })
        .await;
        h.deliver("Second", &[mail(2, "polled", Some("polled.example"))]);
        h.wait_count("Lists/polled.example", 1, Duration::from_secs(20))
            .await;
        // IDLE on INBOX plus one poller: never a third connection.
        assert_eq!(get(&h.stats().connections), 2);
        h.stop().await;
    });
}

#[test]
fn a_server_without_idle_is_polled() {
    run_with_timeout(Duration::from_secs(60), async {
        let opts = imapsort_testkit::dovecot::DovecotOptions {
            disable_caps: vec!["IDLE".into()],
            ..Default::default()
        };
        let Some(mut h) = harness_with(opts) else {
            return;
        };
        let account = h.account("test", "pass", "    poll_interval: 1s\n");
        h.write_config(&h.config(&account, RULES, ""));
        h.start().await;
        h.wait_selected().await;
        h.deliver("INBOX", &[mail(1, "hello", Some("dev.example.org"))]);
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(20))
            .await;
        h.stop().await;
    });
}

#[test]
fn the_binary_tells_systemd_ready_reloading_watchdog_stopping_and_exits_0_on_sigterm() {
    run_with_timeout(Duration::from_secs(60), async {
        let Some(h) = harness() else { return };
        h.write_config(&h.default_config());
        let socket_path = h.dir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut child = KillOnDrop(
            std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
                .args(["run", "-c"])
                .arg(&h.config_path)
                .env("NOTIFY_SOCKET", &socket_path)
                .env("WATCHDOG_USEC", "1000000")
                .env("IMAPSORT_LOG", "info")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !seen.contains("READY=1") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no READY=1; got {seen:?}"
            );
            drain(&socket, &mut seen);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        h.deliver("INBOX", &[mail(1, "hello", Some("dev.example.org"))]);
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(20))
            .await;
        // SIGHUP reloads, bracketed by RELOADING=1 and READY=1.
        let hup = std::process::Command::new("kill")
            .args(["-HUP", &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(hup.success());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !(seen.contains("RELOADING=1")
            && seen.contains("WATCHDOG=1")
            && seen.matches("READY=1").count() >= 2)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no RELOADING=1, READY=1 after it, or WATCHDOG=1; got {seen:?}"
            );
            drain(&socket, &mut seen);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let stopping = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                stopping.elapsed() < Duration::from_secs(5),
                "no exit within 5 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(status.code(), Some(0));
        drain(&socket, &mut seen);
        assert!(seen.contains("STATUS="), "{seen:?}");
        assert!(seen.contains("STOPPING=1"), "{seen:?}");
    });
}

#[test]
fn an_invalid_configuration_at_start_exits_78() {
    run_with_timeout(Duration::from_secs(30), async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            "accounts: []\nrules:\n  - name: x\n    when: { nonsense: 1 }\n    then: trash\n",
        )
        .unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(["run", "-c"])
            .arg(&path)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(78));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{}:4:", path.display())),
            "{stderr}"
        );
    });
}

fn drain(socket: &std::os::unix::net::UnixDatagram, into: &mut String) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        into.push_str(&String::from_utf8_lossy(&buf[..n]));
        into.push('\n');
    }
}

/// A child process that is killed if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A destination the user deletes, or renames, in their mail client while the daemon runs:
/// mail arriving afterwards is sorted into the mailbox created again, not refused with
/// "Mailbox doesn't exist" until a restart.
#[test]
fn a_destination_deleted_or_renamed_by_another_client_is_created_again() {
    run_with_timeout(Duration::from_secs(90), async {
        let Some(mut h) = harness() else { return };
        h.write_config(&h.default_config());
        h.start().await;
        h.wait_selected().await;
        h.deliver("INBOX", &[mail(1, "invoice 1", None)]);
        h.wait_count("Invoices", 1, Duration::from_secs(20)).await;

        // Another client deletes the destination.
        let mut other = h.client().await;
        other.delete_mailbox("Invoices").await.unwrap();
        assert!(!other.exists("Invoices").await.unwrap());
        h.deliver("INBOX", &[mail(2, "invoice 2", None)]);
        h.wait_count("Invoices", 1, Duration::from_secs(20)).await;
        assert_eq!(h.count("INBOX").await, 0, "sorted, not left in INBOX");

        // Another client renames it.
        other
            .run_command("RENAME \"Invoices\" \"Paid\"")
            .await
            .unwrap();
        h.deliver("INBOX", &[mail(3, "invoice 3", None)]);
        h.wait_count("Invoices", 1, Duration::from_secs(20)).await;
        assert_eq!(
            h.count("Paid").await,
            1,
            "the renamed mailbox keeps its message"
        );
        assert_eq!(h.count("INBOX").await, 0);
        let _ = other.logout().await;
        h.stop().await;
    });
}

/// The same for a `copy` destination, which is fenced (its UIDNEXT read with STATUS) before
/// every batch that copies into it: the fence of a deleted destination failed, so every later
/// copy into it was refused unsent ("the destination could not be prepared") and the message
/// given up, on that connection for good.
#[test]
fn a_copy_destination_deleted_by_another_client_is_created_again() {
    run_with_timeout(Duration::from_secs(90), async {
        let Some(mut h) = harness() else { return };
        let rules =
            "  - { name: receipts, when: { subject: receipt }, then: { copy: Receipts } }\n";
        h.write_config(&h.config(&h.account("test", "pass", ""), rules, ""));
        h.start().await;
        h.wait_selected().await;
        h.deliver("INBOX", &[mail(1, "receipt 1", None)]);
        h.wait_count("Receipts", 1, Duration::from_secs(20)).await;

        let mut other = h.client().await;
        other.delete_mailbox("Receipts").await.unwrap();
        assert!(!other.exists("Receipts").await.unwrap());
        h.deliver("INBOX", &[mail(2, "receipt 2", None)]);
        h.wait_count("Receipts", 1, Duration::from_secs(20)).await;
        assert_eq!(h.count("INBOX").await, 2, "a copy leaves the original");
        let _ = other.logout().await;
        h.stop().await;
    });
}
