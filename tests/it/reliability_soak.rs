//! Soak: the daemon (in-process, `daemon::run_with`) sorts 2,000 messages — a backlog of
//! 1,000 present at start and 1,000 delivered while it runs — through the fault-injecting
//! proxy, which injects at least 200 faults (cuts at random byte offsets with FIN or RST,
//! cuts of every connection, refused connections, stalls, delays). Then a quiet period, and
//! the invariants of tests/it/support/workload.rs are checked with an independent connection:
//! every message exactly once where the rules say, copies exactly once, flags as the rules
//! say, nothing left behind, nothing duplicated.
//!
//! Seeded: the seed is printed; `IMAPSORT_SOAK_SEED=N` replays the same fault schedule.
//! `IMAPSORT_SOAK_MESSAGES` and `IMAPSORT_SOAK_FAULTS` make it longer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imapsort::daemon::{self, BackoffPolicy, Options, Stats};

use crate::support::proxy::{Direction, Fault, Proxy};
use crate::support::{self, workload};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The config: the account goes through the proxy (TLS end to end: the proxy sees only
/// ciphertext), INBOX is watched, sweeps every 3 s, existing mail is handled at first start.
fn write_config(
    dir: &std::path::Path,
    d: &imapsort_testkit::dovecot::Dovecot,
    port: u16,
) -> std::path::PathBuf {
    let text = format!(
        "settings:\n  state_dir: {state}\n  sweep_interval: 3s\n  idle_refresh: 5s\naccounts:\n  - name: soak\n    host: localhost\n    port: {port}\n    tls: implicit\n    ca_file: {ca}\n    username: user\n    password: pass\n    first_start: all\n{rules}",
        state = dir.join("state").display(),
        ca = d.ca_pem_path().display(),
        rules = workload::RULES,
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// One fault from the schedule; returns a description for the log. The sleeps are the
/// scenario: how long a fault lasts before it is lifted.
async fn inject_one(proxy: &Proxy) -> &'static str {
    let r = proxy.random(100);
    let short = || Duration::from_millis(100 + proxy.random(400));
    match r {
        0..=34 => {
            proxy.inject(Fault::CutRandom { max_bytes: 6000 });
            "cut at a random offset"
        }
        35..=59 => {
            proxy.cut_all().await;
            "cut every connection"
        }
        60..=69 => {
            proxy.set_fault(Fault::Refuse);
            tokio::time::sleep(short()).await;
            proxy.clear();
            "refuse connections"
        }
        70..=79 => {
            proxy.set_fault(Fault::Delay(Duration::from_millis(5 + proxy.random(30))));
            tokio::time::sleep(short()).await;
            proxy.clear();
            "delay"
        }
        80..=89 => {
            let d = if proxy.random(2) == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            proxy.inject(Fault::Stall(d));
            tokio::time::sleep(short()).await;
            proxy.clear();
            "stall, then resume"
        }
        _ => {
            proxy.inject(Fault::Stall(Direction::ToClient));
            tokio::time::sleep(short()).await;
            proxy.cut_all().await;
            proxy.clear();
            "stall, then cut"
        }
    }
}

#[test]
fn two_thousand_messages_under_two_hundred_faults_end_where_the_rules_say() {
    let total = env_or("IMAPSORT_SOAK_MESSAGES", 2000);
    let want_faults = env_or("IMAPSORT_SOAK_FAULTS", 200) as u64;
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let seed = workload::seed("IMAPSORT_SOAK_SEED");
    let dir = tempfile::tempdir().unwrap();
    let backlog = total / 2;
    workload::deliver(&d, 0..backlog);
    support::run_with_timeout(Duration::from_secs(600), async {
        let server = ([127, 0, 0, 1], d.imaps_port()).into();
        let proxy = Proxy::start_seeded(server, seed).await;
        let path = write_config(dir.path(), &d, proxy.port());
        let config = imapsort::config::load(&path).expect("valid soak config");
        let stats = Arc::new(Stats::default());
        let options = Options {
            stats: stats.clone(),
            watch_file: false,
            sighup: false,
            // Fast reconnects: the soak is about correctness under faults, not waiting.
            backoff: BackoffPolicy {
                base: Duration::from_millis(20),
                cap: Duration::from_millis(500),
                healthy_after: Duration::from_millis(300),
            },
            ..Options::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let daemon = tokio::spawn(daemon::run_with(
            path,
            config,
            async {
                let _ = stopped.await;
            },
            options,
        ));

        // Deliver the rest in batches while faults are injected.
        let started = Instant::now();
        let mut delivered = backlog;
        let mut kinds = std::collections::BTreeMap::<&str, u32>::new();
        let mut injected = 0u64;
        while delivered < total || proxy.fired() < want_faults {
            if started.elapsed() > Duration::from_secs(300) {
                panic!(
                    "the fault phase did not finish in 300 s: {delivered} delivered, {} faults fired",
                    proxy.fired()
                );
            }
            if delivered < total {
                let n = (10 + proxy.random(30) as usize).min(total - delivered);
                let (from, to) = (delivered, delivered + n);
                let dd = &d;
                tokio::task::block_in_place(|| workload::deliver(dd, from..to));
                delivered = to;
            }
            *kinds.entry(inject_one(&proxy).await).or_default() += 1;
            injected += 1;
            // The scenario's pace: faults and deliveries spread over the run.
            tokio::time::sleep(Duration::from_millis(20 + proxy.random(100))).await;
        }
        proxy.clear();
        let fault_phase = started.elapsed();
        eprintln!(
            "fault phase: {fault_phase:?}, {injected} faults injected, {} fired, {} connections accepted, kinds {kinds:?}",
            proxy.fired(),
            proxy.accepted()
        );

        // Quiet period: wait until the invariants hold (or give up and report).
        let mut observer = workload::observer(&d).await;
        let quiet = Instant::now();
        let mut last = Vec::new();
        while quiet.elapsed() < Duration::from_secs(120) {
            let census = workload::census(&mut observer).await;
            last = workload::violations(&census, total);
            if last.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!(
            "quiet period: {:?}; daemon stats: {} connections, {} failures, {} messages acted on, {} sweeps",
            quiet.elapsed(),
            Stats::get(&stats.connections),
            Stats::get(&stats.connection_failures),
            Stats::get(&stats.messages_acted),
            Stats::get(&stats.sweeps)
        );
        let _ = stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(15), daemon)
            .await
            .expect("the daemon stops within 15 s")
            .expect("daemon task");
        assert!(result.is_ok(), "{result:?}");
        assert!(
            last.is_empty(),
            "{} violations (seed {seed}), first ones:\n{}",
            last.len(),
            last.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
        );
        assert!(
            proxy.fired() >= want_faults,
            "only {} faults fired",
            proxy.fired()
        );
        assert!(
            Stats::get(&stats.connections) >= 20,
            "the faults did not force reconnections"
        );
        // A final look once the server has no session left (each ends after its last
        // command): still exactly right, no late duplicates.
        let _ = observer.logout().await;
        support::eventually("every session to end", Duration::from_secs(15), || {
            d.sessions("user").expect("doveadm who") == 0
        })
        .await;
        let mut observer = workload::observer(&d).await;
        let census = workload::census(&mut observer).await;
        let late = workload::violations(&census, total);
        assert!(late.is_empty(), "after the daemon stopped: {late:?}");
    });
}
