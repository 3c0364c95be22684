//! Hot reload of a running daemon: edit in place, replace by rename, Kubernetes-style symlink
//! swap, the reload trigger (SIGHUP's path); a valid change reaches the next message without
//! reconnecting; an invalid one is logged with its place and changes nothing; accounts added
//! and removed start and stop, and a restarted account starts with a clean health.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use imapsort::daemon::Health;

use crate::support::harness::{Harness, RULES, get, harness, mail, write_private};
use crate::support::run_with_timeout_logged;

const URGENT: &str = r#"
  - name: urgent
    when: { subject: urgent }
    then: { move: Urgent }
"#;

/// Start a daemon on the default rules and wait for its connection.
async fn running(h: &mut Harness) -> u64 {
    h.write_config(&h.default_config());
    h.start().await;
    h.wait_selected().await;
    get(&h.stats().connections)
}

/// The new rules reach the next message, over the same connection.
async fn urgent_mail_is_sorted_without_reconnecting(h: &mut Harness, connections: u64) {
    h.wait_until("a reload", Duration::from_secs(10), |s| {
        get(&s.reloads_applied) >= 1
    })
    .await;
    h.deliver("INBOX", &[mail(1, "urgent: call me", None)]);
    h.wait_count("Urgent", 1, Duration::from_secs(20)).await;
    assert_eq!(
        get(&h.stats().connections),
        connections,
        "a rules change reconnected"
    );
    h.stop().await;
}

#[test]
fn editing_the_file_in_place_applies_to_the_next_message_without_reconnecting() {
    run_with_timeout_logged(Duration::from_secs(60), "info", |_logs| async move {
        let Some(mut h) = harness() else { return };
        let connections = running(&mut h).await;
        let text = h.config(
            &h.account("test", "pass", ""),
            &format!("{RULES}{URGENT}"),
            "",
        );
        // Truncate and write the same inode, as `echo >>` or a plain editor save does.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&h.config_path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        drop(f);
        urgent_mail_is_sorted_without_reconnecting(&mut h, connections).await;
    });
}

#[test]
fn replacing_the_file_by_rename_is_picked_up() {
    run_with_timeout_logged(Duration::from_secs(60), "info", |_logs| async move {
        let Some(mut h) = harness() else { return };
        let connections = running(&mut h).await;
        let text = h.config(
            &h.account("test", "pass", ""),
            &format!("{RULES}{URGENT}"),
            "",
        );
        let tmp = h.dir.path().join(".config.yaml.tmp");
        write_private(&tmp, &text);
        std::fs::rename(&tmp, &h.config_path).unwrap();
        urgent_mail_is_sorted_without_reconnecting(&mut h, connections).await;
    });
}

#[test]
fn a_kubernetes_style_symlink_swap_is_picked_up() {
    run_with_timeout_logged(Duration::from_secs(60), "info", |_logs| async move {
        let Some(mut h) = harness() else { return };
        // config.yaml -> ..data/config.yaml, ..data -> v1 (what a ConfigMap volume looks like).
        let base = h.dir.path().to_path_buf();
        let v1 = base.join("v1");
        let v2 = base.join("v2");
        std::fs::create_dir(&v1).unwrap();
        std::fs::create_dir(&v2).unwrap();
        write_private(&v1.join("config.yaml"), &h.default_config());
        let with_urgent = h.config(
            &h.account("test", "pass", ""),
            &format!("{RULES}{URGENT}"),
            "",
        );
        write_private(&v2.join("config.yaml"), &with_urgent);
        std::os::unix::fs::symlink("v1", base.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/config.yaml", &h.config_path).unwrap();
        h.start().await;
        h.wait_selected().await;
        let connections = get(&h.stats().connections);
        std::os::unix::fs::symlink("v2", base.join("..data_tmp")).unwrap();
        std::fs::rename(base.join("..data_tmp"), base.join("..data")).unwrap();
        urgent_mail_is_sorted_without_reconnecting(&mut h, connections).await;
    });
}

#[test]
fn the_reload_trigger_reloads_like_sighup() {
    run_with_timeout_logged(Duration::from_secs(60), "info", |_logs| async move {
        let Some(mut h) = harness() else { return };
        h.write_config(&h.default_config());
        // No file watch: only the trigger can make the daemon see the change.
        h.start_with(|o| o.watch_file = false).await;
        h.wait_selected().await;
        let connections = get(&h.stats().connections);
        h.write_config(&h.config(
            &h.account("test", "pass", ""),
            &format!("{RULES}{URGENT}"),
            "",
        ));
        h.running.as_ref().unwrap().reload.send(()).await.unwrap();
        urgent_mail_is_sorted_without_reconnecting(&mut h, connections).await;
    });
}

#[test]
fn an_invalid_change_keeps_the_old_rules_and_logs_the_error_with_its_place() {
    run_with_timeout_logged(Duration::from_secs(60), "info", |logs| async move {
        let Some(mut h) = harness() else { return };
        running(&mut h).await;
        let broken = RULES.replace(
            "then: { move: Invoices }",
            "then: { move: Invoices }\n    bogus_key: 1",
        );
        h.write_config(&h.config(&h.account("test", "pass", ""), &broken, ""));
        h.wait_until("a rejected reload", Duration::from_secs(10), |s| {
            get(&s.reloads_rejected) >= 1
        })
        .await;
        let place = format!("{}:", h.config_path.display());
        let line = logs
            .text()
            .lines()
            .find(|l| l.contains(&place) && l.contains("bogus_key"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no error line naming {place}LINE:COLUMN and the key"));
        let rest = &line[line.find(&place).unwrap() + place.len()..];
        let mut parts = rest.splitn(3, ':');
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok(),
            "no line number in {line:?}"
        );
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok(),
            "no column in {line:?}"
        );
        // A file caught half-written (empty: no accounts) must not stop every account.
        h.write_config("");
        h.wait_until("the empty file's rejection", Duration::from_secs(10), |s| {
            get(&s.reloads_rejected) >= 2
        })
        .await;
        // The old rules still sort.
        h.deliver("INBOX", &[mail(1, "hello", Some("dev.example.org"))]);
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(20))
            .await;
        assert_eq!(get(&h.stats().reloads_applied), 0);
        h.stop().await;
    });
}

#[test]
fn adding_an_account_starts_it_and_removing_it_stops_it() {
    run_with_timeout_logged(Duration::from_secs(90), "info", |_logs| async move {
        let Some(mut h) = harness() else { return };
        let connections = running(&mut h).await;
        h.deliver("Other", &[mail(1, "plain", None)]);
        let two = format!(
            "{}{}",
            h.account("test", "pass", ""),
            h.account("other", "pass", "    watch: [Other]\n")
        );
        h.write_config(&h.config(&two, RULES, ""));
        h.wait_until("the new account's mailbox", Duration::from_secs(15), |s| {
            get(&s.mailboxes_selected) >= 2
        })
        .await;
        h.deliver("Other", &[mail(2, "to other", Some("other.example"))]);
        h.wait_count("Lists/other.example", 1, Duration::from_secs(20))
            .await;
        // The unchanged account kept its connection: only one new login.
        assert_eq!(get(&h.stats().connections), connections + 1);

        let ended = get(&h.stats().connections_ended);
        h.write_config(&h.default_config());
        // A reload counts as applied once the removed account's workers have stopped.
        h.wait_until("the second reload", Duration::from_secs(15), |s| {
            get(&s.reloads_applied) >= 2
        })
        .await;
        assert_eq!(
            get(&h.stats().connections_ended),
            ended + 1,
            "the removed account's connection did not end (or the kept one did)"
        );
        // Mail for both: the remaining account sorts its own; once it has, the removed one
        // (had it still been watching, with the same push from the server) would have too.
        h.deliver("Other", &[mail(3, "after removal", Some("other.example"))]);
        h.deliver("INBOX", &[mail(4, "hello", Some("dev.example.org"))]);
        h.wait_count("Lists/dev.example.org", 1, Duration::from_secs(20))
            .await;
        assert_eq!(
            h.count("Lists/other.example").await,
            1,
            "a removed account still sorts"
        );
        h.stop().await;
    });
}

/// Regression: an account degraded by a state database it could not write, changed by a
/// reload just as the state became writable again, stayed degraded (on `/health`) for good:
/// its new workers never failed, so none of them cleared the mark the stopped ones had set.
#[test]
fn a_degraded_account_restarted_by_a_reload_is_not_degraded_for_good() {
    run_with_timeout_logged(Duration::from_secs(90), "info", |_logs| async move {
        let Some(mut h) = harness() else { return };
        // A file where the state directory should be: nothing can be written under it.
        let state = h.dir.path().join("state");
        std::fs::write(&state, b"not a directory").unwrap();
        h.write_config(&h.default_config());
        let health = Arc::new(Health::default());
        let observed = health.clone();
        h.start_with(move |o| {
            o.health = observed;
            // The old workers' next try is a minute away: only the new ones can clear it.
            o.backoff.base = Duration::from_secs(60);
            o.backoff.cap = Duration::from_secs(60);
        })
        .await;
        until("the account degraded", Duration::from_secs(20), || {
            health.is_degraded("test")
        })
        .await;

        std::fs::remove_file(&state).unwrap();
        let changed = h.account("test", "pass", "    poll_interval: 3m\n");
        h.write_config(&h.config(&changed, RULES, ""));
        h.wait_until("the new workers' mailbox", Duration::from_secs(20), |s| {
            get(&s.mailboxes_selected) >= 1
        })
        .await;
        until("the mark cleared", Duration::from_secs(10), || {
            !health.is_degraded("test")
        })
        .await;
        h.stop().await;
    });
}

/// Polls `cond` every 50 ms; panics naming `what` after `limit`.
async fn until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
