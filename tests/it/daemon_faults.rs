//! The daemon when things break: the server restarts, a connection is cut mid-IDLE, a
//! mailbox is renumbered (UIDVALIDITY), shutdown lands in the middle of a large batch, and the
//! state database cannot be written.

use std::time::Duration;

use crate::support::harness::{get, harness, mail};
use crate::support::proxy;
use crate::support::{self, harness};
use crate::support::{run_with_timeout, run_with_timeout_logged};

#[test]
fn dovecot_restarted_under_a_running_daemon_reconnects_and_catches_up() {
    run_with_timeout(Duration::from_secs(90), async {
        let Some(mut h) = harness() else { return };
        h.write_config(&h.default_config());
        h.start().await;
        h.wait_selected().await;
        let before = get(&h.stats().connections);
        tokio::task::block_in_place(|| h.dovecot.restart().expect("restart dovecot"));
        // Delivered while the daemon is still finding its way back.
        h.deliver(
            "INBOX",
            &[mail(1, "after restart", Some("dev.example.org"))],
        );
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(30))
            .await;
        assert!(
            get(&h.stats().connections) > before,
            "no reconnection counted"
        );
        h.stop().await;
    });
}

#[test]
fn a_connection_cut_mid_idle_is_rebuilt_and_mail_is_caught_up() {
    // The session layer says when the server has accepted IDLE ("idling", at trace).
    let filter = "info,imapsort::imap::idle=trace";
    run_with_timeout_logged(Duration::from_secs(60), filter, |logs| async move {
        let Some(mut h) = harness() else { return };
        let server: std::net::SocketAddr = ([127, 0, 0, 1], h.dovecot.imaps_port()).into();
        let proxy = proxy::Proxy::start(server).await;
        h.port = proxy.addr.port();
        h.write_config(&h.default_config());
        h.start().await;
        h.wait_selected().await;
        // Once the worker is in IDLE, cut it.
        logs.wait_for("the worker in IDLE", Duration::from_secs(10), |t| {
            t.contains("idling")
        })
        .await;
        proxy.cut_all().await;
        h.deliver(
            "INBOX",
            &[mail(1, "during the cut", Some("dev.example.org"))],
        );
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(30))
            .await;
        assert!(proxy.accepted() >= 2, "the daemon did not reconnect");
        assert!(get(&h.stats().connections) >= 2);
        h.stop().await;
    });
}

#[test]
fn a_uidvalidity_change_resets_the_mailbox_state_without_a_crash() {
    run_with_timeout(Duration::from_secs(90), async {
        let Some(mut h) = harness() else { return };
        let account = h.account("test", "pass", "    watch: [INBOX, Work]\n");
        h.write_config(&h.config(&account, harness::RULES, "  idle_refresh: 1s\n"));
        h.deliver("Work", &[mail(1, "plain", None)]);
        h.start().await;
        h.wait_until("two selected mailboxes", Duration::from_secs(10), |s| {
            get(&s.mailboxes_selected) >= 2
        })
        .await;
        h.deliver("Work", &[mail(2, "first life", Some("one.example"))]);
        h.wait_count("Lists/one.example", 1, Duration::from_secs(20))
            .await;
        // Renumber: delete and recreate the mailbox.
        let mut c = h.client().await;
        c.delete_mailbox("Work").await.unwrap();
        c.create("Work").await.unwrap();
        let _ = c.logout().await;
        h.wait_until("a UIDVALIDITY reset", Duration::from_secs(30), |s| {
            get(&s.uidvalidity_resets) >= 1
        })
        .await;
        h.deliver("Work", &[mail(3, "second life", Some("two.example"))]);
        h.wait_count("Lists/two.example", 1, Duration::from_secs(20))
            .await;
        h.stop().await;
    });
}

#[test]
fn shutdown_during_a_large_batch_then_restart_finishes_with_nothing_lost_or_duplicated() {
    run_with_timeout(Duration::from_secs(240), async {
        let Some(mut h) = harness() else { return };
        const N: u32 = 4000;
        let rules = r#"
  - name: keep a copy
    when: { list_id: { exists: true } }
    then: [{ flag: $Listed }, { copy: Backup }]
  - name: lists
    when: { list_id: { exists: true } }
    then: { move: "Lists/{list_id}" }
"#;
        let account = h.account("test", "pass", "    first_start: all\n");
        h.write_config(&h.config(&account, rules, ""));
        let burst: Vec<Vec<u8>> = (0..N as usize)
            .map(|n| mail(n, "bulk", Some("bulk.example")))
            .collect();
        h.deliver("INBOX", &burst);
        // Stop after a growing delay, with no grace for the batch in flight, until a start
        // finishes the work: every stop lands somewhere else in fetch, copy, move, record.
        let mut interrupted = 0;
        let mut delay = Duration::from_millis(50);
        for _ in 0..40 {
            h.start_with(|o| o.batch_grace = Duration::ZERO).await;
            // The sleep is the scenario: the daemon works for `delay`, then is stopped.
            tokio::time::sleep(delay).await;
            let took = h.stop().await;
            assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
            let (moved, left, copies) = settled_counts(&h).await;
            eprintln!("after {delay:?}: {moved} moved, {left} left, {copies} copies");
            assert_eq!(moved + left, N, "messages lost or duplicated at shutdown");
            assert!(copies <= N, "{copies} copies of {N} messages");
            if left == 0 {
                break;
            }
            let state = imapsort::state::StateDb::open_read_only(&h.dir.path().join("state"))
                .unwrap()
                .expect("state database");
            if !state.unfinished_intents("test").unwrap().is_empty() {
                interrupted += 1;
            }
            delay += Duration::from_millis(60);
        }
        assert!(interrupted > 0, "no stop landed inside the batch");
        // One more run settles whatever the last stop left; once everything is filed, stop
        // it, so that the counts below are final.
        h.start().await;
        h.wait_count("Lists/bulk.example", N, Duration::from_secs(90))
            .await;
        h.stop().await;
        let (moved, left, copies) = settled_counts(&h).await;
        assert_eq!((moved, left), (N, 0));
        assert_eq!(copies, N, "a copy was made twice or not at all");
    });
}

/// (in Lists, in INBOX, in Backup) once the server has finished what an abandoned connection
/// left it doing: no session of the user is left (a session ends after its last command).
async fn settled_counts(h: &harness::Harness) -> (u32, u32, u32) {
    let d = &h.dovecot;
    support::eventually(
        "the abandoned sessions to end",
        Duration::from_secs(30),
        || d.sessions("user").expect("doveadm who") == 0,
    )
    .await;
    (
        h.count("Lists/bulk.example").await,
        h.count("INBOX").await,
        h.count("Backup").await,
    )
}

#[test]
fn a_message_whose_plan_keeps_failing_is_retried_then_given_up_without_blocking_later_mail() {
    run_with_timeout(Duration::from_secs(90), async {
        let Some(mut h) = harness() else { return };
        // `label` needs Gmail's X-GM-EXT-1; Dovecot refuses it, every time.
        let rules = r#"
  - name: label it
    when: { subject: labelme }
    then: { label: Important }
"#;
        let rules = format!("{rules}{}", harness::RULES);
        h.write_config(&h.config(&h.account("test", "pass", ""), &rules, ""));
        h.start().await;
        h.wait_selected().await;
        h.deliver("INBOX", &[mail(1, "labelme", None)]);
        h.deliver("INBOX", &[mail(2, "later", Some("dev.example.org"))]);
        // Later mail is sorted while the failing message is being retried.
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(20))
            .await;
        // While it is retried, last_uid stays below the failing message (UID 1); once given
        // up, last_uid moves past it.
        let state_dir = h.dir.path().join("state");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let db = imapsort::state::StateDb::open_read_only(&state_dir)
                .unwrap()
                .expect("state database");
            let last = db
                .mailbox("test", &imapsort::vocab::MailboxName::inbox())
                .unwrap()
                .map_or(0, |m| m.last_uid);
            if last >= 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "last_uid stuck at {last}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            h.count("INBOX").await,
            1,
            "the failing message stays in INBOX"
        );
        h.stop().await;
    });
}

/// Regression: a worker whose state database could not be written tried again at once, over
/// and over (a SELECT, a lock attempt and an IDLE every few milliseconds, on the IDLE worker
/// and the poller alike), instead of after its backoff: the sweep due since the start made
/// its wait zero long. RULES.md: the daemon "retries with backoff without acting".
#[test]
fn an_unwritable_state_is_retried_after_the_backoff_not_in_a_loop() {
    run_with_timeout(Duration::from_secs(60), async {
        let Some(mut h) = harness() else { return };
        // A file where the state directory should be: nothing can be written under it.
        std::fs::write(h.dir.path().join("state"), b"not a directory").unwrap();
        h.deliver("Other", &[mail(1, "polled", None)]);
        // INBOX on an IDLE connection, Other polled.
        let account = h.account(
            "test",
            "pass",
            "    watch: [INBOX, Other]\n    max_connections: 1\n",
        );
        h.write_config(&h.config(&account, harness::RULES, ""));
        h.start_with(|o| {
            o.backoff.base = Duration::from_secs(60);
            o.backoff.cap = Duration::from_secs(60);
        })
        .await;
        h.wait_until("both workers failing", Duration::from_secs(20), |s| {
            get(&s.state_failures) >= 2
        })
        .await;
        let failures = get(&h.stats().state_failures);
        // The retries are a minute away: a window of 3 s sees none of them.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            get(&h.stats().state_failures),
            failures,
            "tried again before the backoff was over"
        );
        h.stop().await;
    });
}
