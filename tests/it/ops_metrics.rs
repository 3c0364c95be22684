//! `/metrics` and `/health` of a running daemon: counters move as mail is sorted, a reload is
//! counted and drops a removed rule's series, and `/health` follows the server going away
//! and coming back.

use std::time::Duration;

use imapsort::daemon::metrics::Metrics;

use crate::support::harness::{RULES, harness, mail};
use crate::support::http::wait_with_timeout;
use crate::support::http::{health, http_get, poll_until, sample};
use crate::support::run_with_timeout;

/// `metrics_listen` on a free loopback port (the daemon says which).
const SETTINGS: &str = "  metrics_listen: 127.0.0.1:0\n";

#[test]
fn counters_move_as_mail_is_sorted_and_health_follows_the_server() {
    run_with_timeout(Duration::from_secs(180), async {
        let Some(mut h) = harness() else { return };
        h.write_config(&h.config(&h.account("test", "pass", ""), RULES, SETTINGS));
        let metrics = Metrics::new();
        let m = metrics.clone();
        h.start_with(move |o| o.metrics = m).await;
        let addr = poll_until("the metrics listener", Duration::from_secs(10), || async {
            metrics.listening_on().ok_or_else(|| "not bound".to_owned())
        })
        .await;
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

        // Connected: 200 and ok.
        let first = poll_until("/health 200", Duration::from_secs(20), || async {
            match health(addr).await {
                (200, json) => Ok(json),
                (code, json) => Err(format!("{code} {json}")),
            }
        })
        .await;
        assert_eq!(first["status"], "ok", "{first}");
        assert_eq!(first["accounts"]["test"]["connected"], true, "{first}");
        assert!(first["accounts"]["test"]["last_error"].is_null(), "{first}");
        let success = first["accounts"]["test"]["last_success"].as_str().unwrap();
        success
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{success}: {e}"));
        h.wait_selected().await;

        // Two list mails, an invoice, one that no rule matches.
        h.deliver(
            "INBOX",
            &[
                mail(1, "hello", Some("dev.example.org")),
                mail(2, "again", Some("dev.example.org")),
                mail(3, "your invoice", None),
                mail(4, "just saying hi", None),
            ],
        );
        h.wait_count("Lists/dev.example.org", 2, Duration::from_secs(30))
            .await;
        h.wait_count("Invoices", 1, Duration::from_secs(30)).await;
        let text = poll_until(
            "four messages processed",
            Duration::from_secs(10),
            || async {
                let (_, text) = http_get(addr, "/metrics").await;
                let n = sample(
                    &text,
                    r#"imapsort_messages_processed_total{account="test",trigger="new"}"#,
                );
                if n == Some(4.0) {
                    Ok(text)
                } else {
                    Err(format!("{n:?}"))
                }
            },
        )
        .await;
        let get = |series: &str| {
            sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
        };
        assert_eq!(
            get(r#"imapsort_rule_matches_total{account="test",rule="lists"}"#),
            2.0
        );
        assert_eq!(
            get(r#"imapsort_rule_matches_total{account="test",rule="invoices"}"#),
            1.0
        );
        assert_eq!(
            get(r#"imapsort_actions_total{account="test",action="move"}"#),
            3.0
        );
        assert_eq!(
            get(r#"imapsort_actions_total{account="test",action="copy"}"#),
            0.0
        );
        assert_eq!(
            get(r#"imapsort_messages_processed_total{account="test",trigger="sweep"}"#),
            0.0
        );
        assert_eq!(get(r#"imapsort_connections{account="test"}"#), 1.0);
        assert_eq!(get(r#"imapsort_account_connected{account="test"}"#), 1.0);
        assert_eq!(
            get(r#"imapsort_errors_total{account="test",kind="connect"}"#),
            0.0
        );
        assert_eq!(
            get(&format!(
                r#"imapsort_build_info{{version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )),
            1.0
        );
        // The moves came from the IDLE push: observed, once per message carried out at most.
        let pushes = get("imapsort_push_latency_seconds_count");
        assert!(
            (1.0..=3.0).contains(&pushes),
            "{pushes} push latencies\n{text}"
        );
        assert_eq!(
            get(r#"imapsort_push_latency_seconds_bucket{le="+Inf"}"#),
            pushes
        );
        let mean = get("imapsort_push_latency_seconds_sum") / pushes;
        assert!(mean > 0.0 && mean < 10.0, "mean push latency {mean} s");

        // A broken file is counted as a failed reload; one without the invoices rule as a
        // good one, and the removed rule's series is gone.
        let running = h.running.as_ref().unwrap();
        std::fs::write(&h.config_path, "rules: [").unwrap();
        running.reload.send(()).await.unwrap();
        poll_until("a failed reload", Duration::from_secs(10), || async {
            let (_, t) = http_get(addr, "/metrics").await;
            let n = sample(&t, r#"imapsort_config_reloads_total{result="error"}"#);
            if n == Some(1.0) {
                Ok(())
            } else {
                Err(format!("{n:?}"))
            }
        })
        .await;
        let lists_only = "  - name: lists\n    when: { list_id: { exists: true } }\n    then: { move: \"Lists/{list_id}\" }\n";
        h.write_config(&h.config(&h.account("test", "pass", ""), lists_only, SETTINGS));
        let running = h.running.as_ref().unwrap();
        running.reload.send(()).await.unwrap();
        let text = poll_until("a good reload", Duration::from_secs(10), || async {
            let (_, t) = http_get(addr, "/metrics").await;
            let n = sample(&t, r#"imapsort_config_reloads_total{result="ok"}"#);
            if n == Some(1.0) {
                Ok(t)
            } else {
                Err(format!("{n:?}"))
            }
        })
        .await;
        assert!(!text.contains(r#"rule="invoices""#), "{text}");
        assert!(
            text.contains(r#"imapsort_rule_matches_total{account="test",rule="lists"} 2"#),
            "{text}"
        );

        // The server goes away: 503, degraded, the error named; it comes back: 200.
        h.dovecot.halt();
        let down = poll_until("/health 503", Duration::from_secs(30), || async {
            match health(addr).await {
                (503, json) => Ok(json),
                (code, json) => Err(format!("{code} {json}")),
            }
        })
        .await;
        assert_eq!(down["status"], "degraded", "{down}");
        assert_eq!(down["accounts"]["test"]["connected"], false, "{down}");
        assert!(down["accounts"]["test"]["last_error"].is_string(), "{down}");
        let (_, text) = http_get(addr, "/metrics").await;
        assert_eq!(
            sample(&text, r#"imapsort_account_connected{account="test"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, r#"imapsort_connections{account="test"}"#),
            Some(0.0)
        );
        assert!(
            sample(
                &text,
                r#"imapsort_errors_total{account="test",kind="connect"}"#
            ) >= Some(1.0),
            "{text}"
        );
        h.dovecot.resume().unwrap();
        let up = poll_until("/health 200 again", Duration::from_secs(30), || async {
            match health(addr).await {
                (200, json) => Ok(json),
                (code, json) => Err(format!("{code} {json}")),
            }
        })
        .await;
        assert_eq!(up["status"], "ok", "{up}");
        h.stop().await;
    });
}

#[test]
fn run_exits_71_naming_the_address_when_the_metrics_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = dir.path().join("config.yaml");
    let write = |listen: &str| {
        crate::support::harness::write_private(
            &config,
            &format!(
                "settings:\n  state_dir: {state}\n  metrics_listen: {listen}\naccounts:\n  - name: a\n    host: 127.0.0.1\n    port: 1\n    username: u\n    password: p\n",
                state = dir.path().join("state").display()
            ),
        )
    };
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"));
        cmd.args(["run", "-c"])
            .arg(&config)
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("IMAPSORT_METRICS_LISTEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(v) = env {
            cmd.env("IMAPSORT_METRICS_LISTEN", v);
        }
        wait_with_timeout(cmd.spawn().unwrap(), Duration::from_secs(30))
    };
    let taken_addr = format!("127.0.0.1:{port}");
    // The setting, --metrics-listen over a free setting, and its environment variable.
    write(&taken_addr);
    let from_setting = run(&[], None);
    write("127.0.0.1:0");
    let from_flag = run(&["--metrics-listen", &taken_addr], None);
    let from_env = run(&[], Some(&taken_addr));
    for (what, out) in [
        ("setting", from_setting),
        ("flag", from_flag),
        ("environment", from_env),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(71), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot listen on {taken_addr}")),
            "{what}: {stderr}"
        );
    }
    let junk = run(&["--metrics-listen", "9898"], None);
    let stderr = String::from_utf8_lossy(&junk.stderr);
    assert_eq!(junk.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HOST:PORT"), "{stderr}");
    drop(taken);
}
