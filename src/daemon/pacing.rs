//! Connection pacing per server host: at most `settings.max_connecting` connection attempts
//! (TCP + TLS + login) in flight to one host, the rest queued in arrival order; and, when a
//! host that failed accepts a connection again, every worker waiting to retry it retries now.
//!
//! Without pacing, a thousand accounts on one provider connect at once at start and again
//! after every server restart: providers throttle concurrent logins per client address, and
//! the attempts that lose time out after the full connect timeout. Without the wake-up, a
//! worker whose backoff had grown to a minute while the server was down waits that minute
//! after the server is back.
//!
//! ```text
//!   worker: slot() -> connect -> succeeded()          (a slot is one attempt in flight)
//!                           \-> failed() -> wait: its backoff delay, or until
//!                                 - another worker's connection to the host succeeds, or
//!                                 - it is this worker's turn to probe (one per PROBE_EVERY
//!                                   per host while the host is failing)
//! ```
//!
//! Hosts are told apart by the name in the configuration, case-insensitively (two names for
//! one server are paced separately). Only failures that say something about the host (it
//! could not be reached, the connection broke, a timeout) count; a refused login does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// While a host is failing, one waiting worker per this interval tries it before its backoff
/// is over, so the host's return is noticed within about this time whatever the backoffs.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// The daemon's pacing state for every host. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pacer {
    inner: Arc<PacerInner>,
}

#[derive(Debug)]
struct PacerInner {
    /// `max_connecting`.
    limit: usize,
    /// By lower-cased host name.
    hosts: Mutex<HashMap<String, Host>>,
}

/// One host's pacing; what a worker holds.
#[derive(Clone, Debug)]
pub struct Host {
    inner: Arc<HostInner>,
}

#[derive(Debug)]
struct HostInner {
    /// `max_connecting` permits; an attempt holds one from TCP connect to logged in.
    slots: Arc<Semaphore>,
    /// Bumped when a connection succeeds while the host was down: waiters retry at once.
    back: watch::Sender<u64>,
    state: Mutex<HostState>,
}

#[derive(Debug, Default)]
struct HostState {
    /// Connections up now. While one is, the host is evidently fine, and a worker's failure
    /// is its own business (its backoff applies, no probing, no wake-up).
    up: usize,
    /// `Some(when the next probe may start)` while the host is down: no connection up and an
    /// attempt failed since the last success.
    probe_at: Option<Instant>,
}

/// A connection to the host is up while this lives.
#[derive(Debug)]
pub struct Up {
    host: Host,
}

impl Drop for Up {
    fn drop(&mut self) {
        let mut st = self.host.inner.state.lock().expect("pacer lock");
        st.up = st.up.saturating_sub(1);
    }
}

impl Pacer {
    /// `limit` attempts in flight per host (at least 1).
    pub fn new(limit: u32) -> Pacer {
        Pacer {
            inner: Arc::new(PacerInner {
                limit: limit.max(1) as usize,
                hosts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The pacing of `host` (shared by every worker that connects to it).
    pub fn host(&self, host: &str) -> Host {
        let mut hosts = self.inner.hosts.lock().expect("pacer lock");
        hosts
            .entry(host.to_ascii_lowercase())
            .or_insert_with(|| Host {
                inner: Arc::new(HostInner {
                    slots: Arc::new(Semaphore::new(self.inner.limit)),
                    back: watch::channel(0).0,
                    state: Mutex::new(HostState::default()),
                }),
            })
            .clone()
    }
}

impl Host {
    /// Wait for a free attempt slot (in arrival order); hold it until logged in or failed.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Attempts in flight now, out of `limit`.
    #[cfg(test)]
    pub fn in_flight(&self, limit: u32) -> usize {
        (limit as usize).saturating_sub(self.inner.slots.available_permits())
    }

    /// A connection to the host came up; keep the guard while it is up. If the host had been
    /// down, every waiting worker is woken.
    pub fn succeeded(&self) -> Up {
        let mut st = self.inner.state.lock().expect("pacer lock");
        st.up += 1;
        if st.probe_at.take().is_some() {
            self.inner.back.send_modify(|n| *n += 1);
        }
        Up { host: self.clone() }
    }

    /// An attempt or a connection failed in a way that concerns the host (unreachable,
    /// broken, timed out). Returns what to hand to [`Host::retry_early`].
    pub fn failed(&self) -> Seen {
        let mut st = self.inner.state.lock().expect("pacer lock");
        if st.up == 0 && st.probe_at.is_none() {
            st.probe_at = Some(Instant::now() + PROBE_EVERY);
        }
        Seen(*self.inner.back.borrow())
    }

    /// Completes when the worker should retry before its own backoff is over: a connection to
    /// the host succeeded since [`Host::failed`] returned `seen`, or it is this worker's turn
    /// to probe the host while it is down. Otherwise never: race it against the backoff.
    pub async fn retry_early(&self, seen: Seen) {
        let mut back = self.inner.back.subscribe();
        loop {
            if *back.borrow_and_update() != seen.0 {
                return;
            }
            let probe_at = self.inner.state.lock().expect("pacer lock").probe_at;
            let probe = async {
                match probe_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = back.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                _ = probe => {
                    if self.claim_probe() {
                        return;
                    }
                }
            }
        }
    }

    /// Take the probe turn if it is due; the next one is [`PROBE_EVERY`] later.
    fn claim_probe(&self) -> bool {
        let mut st = self.inner.state.lock().expect("pacer lock");
        match st.probe_at {
            Some(at) if Instant::now() >= at => {
                st.probe_at = Some(Instant::now() + PROBE_EVERY);
                true
            }
            _ => false,
        }
    }
}

/// How many times the host came back, as a worker saw it when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen(u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_limit_in_flight_per_host_and_the_rest_in_order() {
        let pacer = Pacer::new(2);
        let host = pacer.host("imap.example.com");
        let same = pacer.host("IMAP.Example.COM");
        let other = pacer.host("other.example.com");
        let a = host.slot().await;
        let _b = same.slot().await;
        assert_eq!(host.in_flight(2), 2);
        // Another host has its own slots.
        let _c = other.slot().await;
        // A third attempt on the host waits until one ends.
        let third = tokio::spawn({
            let host = host.clone();
            async move { host.slot().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!third.is_finished());
        drop(a);
        let _d = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("the queued attempt starts when a slot frees")
            .unwrap();
        assert_eq!(host.in_flight(2), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_after_failures_wakes_every_waiting_worker() {
        let pacer = Pacer::new(8);
        let host = pacer.host("h");
        let seen = host.failed();
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let host = host.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = host.retry_early(seen) => "early",
                        _ = tokio::time::sleep(Duration::from_secs(300)) => "backoff",
                    }
                })
            })
            .collect();
        // Let them start waiting, but not long enough for the probe turn.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _up = host.succeeded();
        for w in waiters {
            let woke = tokio::time::timeout(Duration::from_millis(50), w)
                .await
                .expect("woken at once")
                .unwrap();
            assert_eq!(woke, "early");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn while_the_host_is_down_one_waiter_probes_per_interval() {
        let pacer = Pacer::new(8);
        let host = pacer.host("h");
        let first = host.failed();
        let start = Instant::now();
        let probes = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (host, probes) = (host.clone(), probes.clone());
            tasks.push(tokio::spawn(async move {
                // Each worker: wait for an early turn (its own backoff is long), fail again.
                let mut seen = first;
                loop {
                    tokio::select! {
                        _ = host.retry_early(seen) => {
                            probes.lock().unwrap().push(start.elapsed());
                            seen = host.failed();
                        }
                        _ = tokio::time::sleep(Duration::from_secs(300)) => return,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(
            PROBE_EVERY.as_millis() as u64 * 5 + 100,
        ))
        .await;
        let seen = probes.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            5,
            "one probe per interval, not one per worker: {seen:?}"
        );
        for (i, at) in seen.iter().enumerate() {
            let want = PROBE_EVERY * (i as u32 + 1);
            assert!(
                *at >= want && *at < want + Duration::from_millis(50),
                "{seen:?}"
            );
        }
        // The host comes back: the probe's success wakes all the others.
        let up = host.succeeded();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(probes.lock().unwrap().len(), 5 + 10);
        for t in tasks {
            t.abort();
        }
        drop(up);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_while_others_are_connected_is_the_workers_own() {
        let pacer = Pacer::new(8);
        let host = pacer.host("h");
        let _others = host.succeeded();
        let seen = host.failed();
        let early = tokio::select! {
            _ = host.retry_early(seen) => true,
            _ = tokio::time::sleep(Duration::from_secs(60)) => false,
        };
        assert!(!early, "no probing while the host holds a connection");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_just_before_waiting_is_not_missed() {
        let pacer = Pacer::new(8);
        let host = pacer.host("h");
        let seen = host.failed();
        // Another worker gets through between our failure and our wait.
        let _up = host.succeeded();
        tokio::time::timeout(Duration::from_millis(1), host.retry_early(seen))
            .await
            .expect("the success counts");
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_host_wakes_nobody() {
        let pacer = Pacer::new(8);
        let host = pacer.host("h");
        let seen = Seen(*host.inner.back.borrow());
        drop(host.succeeded());
        let early = tokio::select! {
            _ = host.retry_early(seen) => true,
            _ = tokio::time::sleep(Duration::from_secs(30)) => false,
        };
        assert!(!early, "no failure, no probe, no wake-up");
    }
}
