//! Connection pacing: thirty accounts on one server never have more than `max_connecting`
//! logins in flight, and after a server restart every account is back within seconds, not
//! after the backoffs the outage grew.
//!
//! The accounts reach Dovecot through a counting proxy (plaintext, so it can see the server's
//! `Logged in`); while it delays every chunk, each login takes about a second, so unpaced
//! connection attempts would pile up in it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use imapsort::daemon::BackoffPolicy;
use imapsort::daemon::metrics::Metrics;
use imapsort_testkit::dovecot::DovecotOptions;

use crate::support::harness::harness_with;
use crate::support::http::{health, http_get, poll_until, sample};
use crate::support::proxy::{Fault, Proxy};
use crate::support::run_with_timeout;

const ACCOUNTS: usize = 30;
const MAX_CONNECTING: u64 = 4;

fn user(i: usize) -> String {
    format!("u{i:02}")
}

#[test]
fn logins_are_paced_and_all_accounts_are_back_within_seconds_of_a_server_restart() {
    run_with_timeout(Duration::from_secs(300), async {
        let mut users = vec![("user".to_owned(), "pass".to_owned())];
        users.extend((0..ACCOUNTS).map(|i| (user(i), "pass".to_owned())));
        let Some(mut h) = harness_with(DovecotOptions {
            users,
            ..DovecotOptions::default()
        }) else {
            return;
        };
        let target = SocketAddr::from(([127, 0, 0, 1], h.dovecot.imap_port()));
        let proxy = Proxy::start(target).await;
        proxy.set_fault(Fault::Delay(Duration::from_millis(150)));
        let mut accounts = String::new();
        for i in 0..ACCOUNTS {
            accounts.push_str(&format!(
                "  - name: {u}\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    allow_insecure: true\n    username: {u}\n    password: pass\n",
                u = user(i),
                port = proxy.port()
            ));
        }
        let settings =
            format!("  metrics_listen: 127.0.0.1:0\n  max_connecting: {MAX_CONNECTING}\n");
        let rules =
            "  - name: lists\n    when: { list_id: { exists: true } }\n    then: { move: Lists }\n";
        h.write_config(&h.config(&accounts, rules, &settings));
        let metrics = Metrics::new();
        let m = metrics.clone();
        // The real backoff (1 s doubling to 5 min): what an outage grows.
        h.start_with(move |o| {
            o.metrics = m;
            o.backoff = BackoffPolicy::default();
        })
        .await;
        let addr = poll_until("the metrics listener", Duration::from_secs(10), || async {
            metrics.listening_on().ok_or_else(|| "not bound".to_owned())
        })
        .await;

        let started = Instant::now();
        all_connected(addr, Duration::from_secs(120)).await;
        let took = started.elapsed();
        let peak = proxy.peak_logging_in();
        assert!(peak <= MAX_CONNECTING, "{peak} logins in flight at once");
        // The slots were used, not one login at a time.
        assert!(
            peak >= MAX_CONNECTING - 1,
            "only {peak} logins in flight at once"
        );
        assert!(proxy.logins() >= ACCOUNTS as u64);
        eprintln!("{ACCOUNTS} accounts connected through a slow proxy in {took:?}, peak {peak}");

        // An outage long enough that every account has failed five times in a row: their
        // next retries are 8 to 16 s away.
        proxy.clear();
        h.dovecot.halt();
        poll_until(
            "five failures of every account",
            Duration::from_secs(90),
            || async {
                let (_, text) = http_get(addr, "/metrics").await;
                let fewest = (0..ACCOUNTS)
                    .map(|i| {
                        let series = format!(
                            r#"imapsort_errors_total{{account="{}",kind="connect"}}"#,
                            user(i)
                        );
                        sample(&text, &series).unwrap_or(0.0)
                    })
                    .fold(f64::MAX, f64::min);
                if fewest >= 5.0 {
                    Ok(())
                } else {
                    Err(format!("fewest {fewest}"))
                }
            },
        )
        .await;
        proxy.reset_peak();
        h.dovecot.resume().unwrap();
        let back = Instant::now();
        all_connected(addr, Duration::from_secs(60)).await;
        let took = back.elapsed();
        eprintln!("all {ACCOUNTS} accounts back {took:?} after the server");
        assert!(
            took < Duration::from_secs(8),
            "the accounts took {took:?} to come back: backoff, not a wake-up"
        );
        let peak = proxy.peak_logging_in();
        assert!(
            peak <= MAX_CONNECTING,
            "{peak} logins in flight after the restart"
        );
        h.stop().await;
    });
}

/// Wait until `/health` says every account is connected.
async fn all_connected(addr: SocketAddr, limit: Duration) {
    poll_until("every account connected", limit, || async {
        let (code, json) = health(addr).await;
        let down = json["accounts"]
            .as_object()
            .map(|a| a.values().filter(|v| v["connected"] != true).count());
        if code == 200 && down == Some(0) && json["accounts"].as_object().unwrap().len() == ACCOUNTS
        {
            Ok(())
        } else {
            Err(format!("{code}, {down:?} not connected"))
        }
    })
    .await;
}
