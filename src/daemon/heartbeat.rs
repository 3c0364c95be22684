//! Worker heartbeats, for the systemd watchdog.
//!
//! Every worker holds a [`Heartbeat`] and beats whenever it makes progress. Before it waits (in
//! IDLE, in a backoff sleep) it says how long with [`Heartbeat::away_for`] and counts as fresh
//! until then, without waking up to beat: ten thousand idle connections cost no timer wake-ups.
//! A wait whose length nobody knows (a mailbox lock another process holds, for as long as its
//! sweep takes) beats every [`BEAT_EVERY`] instead; such waits are rare.
//! The watchdog pings systemd only while every registered worker beat recently (or is within
//! its announced wait): a worker stuck somewhere, or not back from a wait, stops the pings, and
//! systemd restarts the service. A worker that ends drops its heartbeat, which unregisters it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How often a worker beats while it waits for something of unknown length (a mailbox that
/// another process holds).
pub(crate) const BEAT_EVERY: Duration = Duration::from_secs(5);

/// The set of live workers and their last beat.
#[derive(Clone, Debug)]
pub struct Heartbeats {
    /// Shared with every [`Heartbeat`]; keyed by a registration number.
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// When the registry was made; beats are stored as milliseconds since then.
    epoch: Instant,
    /// Registration number -> (worker name, last beat in ms since `epoch`).
    workers: Mutex<HashMap<u64, (String, Arc<AtomicU64>)>>,
    /// The next registration number.
    next: AtomicU64,
}

/// One worker's handle; beating is a single atomic store.
#[derive(Debug)]
pub struct Heartbeat {
    /// For unregistering on drop.
    registry: Arc<Inner>,
    /// This worker's registration number.
    id: u64,
    /// Milliseconds since the registry's epoch of the last beat.
    last: Arc<AtomicU64>,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats::new()
    }
}

impl Heartbeats {
    pub fn new() -> Heartbeats {
        Heartbeats {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                workers: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
            }),
        }
    }

    /// Register a worker; it counts as having just beaten.
    pub fn register(&self, name: impl Into<String>) -> Heartbeat {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let last = Arc::new(AtomicU64::new(self.inner.now_ms()));
        self.inner
            .workers
            .lock()
            .expect("heartbeat registry poisoned")
            .insert(id, (name.into(), last.clone()));
        Heartbeat {
            registry: self.inner.clone(),
            id,
            last,
        }
    }

    /// Names of workers that have not beaten within `max_age`. Empty means all are alive.
    pub fn stale(&self, max_age: Duration) -> Vec<String> {
        let now = self.inner.now_ms();
        let max = max_age.as_millis() as u64;
        let workers = self
            .inner
            .workers
            .lock()
            .expect("heartbeat registry poisoned");
        let mut stale: Vec<String> = workers
            .values()
            .filter(|(_, last)| now.saturating_sub(last.load(Ordering::Relaxed)) > max)
            .map(|(name, _)| name.clone())
            .collect();
        stale.sort();
        stale
    }

    /// How many workers are registered.
    pub fn len(&self) -> usize {
        self.inner
            .workers
            .lock()
            .expect("heartbeat registry poisoned")
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Heartbeat {
    /// "I am making progress."
    pub fn beat(&self) {
        self.last.store(self.registry.now_ms(), Ordering::Relaxed);
    }

    /// "I am waiting for up to `d`, and will beat when it is over": fresh until then (plus the
    /// watchdog's allowance), without beating meanwhile.
    pub fn away_for(&self, d: Duration) {
        let until = self
            .registry
            .now_ms()
            .saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64);
        self.last.store(until, Ordering::Relaxed);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Ok(mut workers) = self.registry.workers.lock() {
            workers.remove(&self.id);
        }
    }
}

/// Sleep for `d`, away (a waiting worker is alive) but not woken until the end. Cut short (a
/// `select!` that took another branch), the worker is back at once: it beats then too, so an
/// announced hour of waiting does not cover what it does next.
pub async fn sleep_away(hb: &Heartbeat, d: Duration) {
    hb.away_for(d);
    let _back = Back(hb);
    tokio::time::sleep(d).await;
}

/// Await `fut`, beating every [`BEAT_EVERY`] meanwhile: for a wait whose length nobody knows
/// (a mailbox another process holds, a queue of connection attempts to a host that does not
/// answer), so the watchdog does not take the waiting worker for a stuck one.
pub async fn beating<T>(hb: &Heartbeat, fut: impl Future<Output = T>) -> T {
    tokio::pin!(fut);
    let mut beat = tokio::time::interval(BEAT_EVERY);
    loop {
        tokio::select! {
            r = &mut fut => {
                hb.beat();
                return r;
            }
            _ = beat.tick() => hb.beat(),
        }
    }
}

/// Beats when dropped: the end of a wait, however it ended.
struct Back<'a>(&'a Heartbeat);

impl Drop for Back<'_> {
    fn drop(&mut self) {
        self.0.beat();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_worker_is_stale_and_a_beating_one_is_not() {
        let hbs = Heartbeats::new();
        let a = hbs.register("a");
        let _b = hbs.register("b");
        tokio::time::advance(Duration::from_secs(20)).await;
        a.beat();
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(hbs.stale(Duration::from_secs(30)), vec!["b".to_string()]);
        assert!(hbs.stale(Duration::from_secs(40)).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_a_heartbeat_unregisters_it() {
        let hbs = Heartbeats::new();
        let a = hbs.register("a");
        assert_eq!(hbs.len(), 1);
        drop(a);
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(hbs.is_empty());
        assert!(hbs.stale(Duration::from_secs(1)).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_away_is_fresh_until_its_wait_is_over_and_stale_when_not_back() {
        let hbs = Heartbeats::new();
        let a = hbs.register("a");
        a.away_for(Duration::from_secs(600));
        tokio::time::advance(Duration::from_secs(590)).await;
        assert!(
            hbs.stale(Duration::from_secs(6)).is_empty(),
            "within its wait"
        );
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(
            hbs.stale(Duration::from_secs(30)).is_empty(),
            "within the allowance"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(hbs.stale(Duration::from_secs(30)), vec!["a".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_away_keeps_the_worker_fresh_and_beats_at_the_end() {
        let hbs = Heartbeats::new();
        let a = hbs.register("a");
        sleep_away(&a, Duration::from_secs(300)).await;
        assert!(hbs.stale(Duration::from_secs(6)).is_empty());
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(hbs.stale(Duration::from_secs(6)), vec!["a".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_of_unknown_length_keeps_the_worker_fresh() {
        let hbs = Heartbeats::new();
        let a = hbs.register("a");
        let waited = beating(&a, async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            7
        })
        .await;
        assert_eq!(waited, 7);
        // Time passes in the wait without anyone else beating; `beating` kept it fresh.
        assert!(hbs.stale(BEAT_EVERY + Duration::from_secs(1)).is_empty());
        let stuck = hbs.register("stuck");
        let watch = async {
            tokio::time::sleep(Duration::from_secs(300)).await;
            hbs.stale(BEAT_EVERY + Duration::from_secs(1))
        };
        let (stale, ()) = tokio::join!(
            watch,
            beating(&a, tokio::time::sleep(Duration::from_secs(600)))
        );
        assert_eq!(stale, vec!["stuck".to_string()], "a beats in its wait");
        drop(stuck);
    }

    /// A wait cut short must not leave the worker covered for the rest of its announced
    /// wait: what it does next is watched again.
    #[tokio::test(start_paused = true)]
    async fn a_wait_cut_short_ends_the_cover() {
        let hbs = Heartbeats::new();
        let a = hbs.register("a");
        tokio::select! {
            _ = sleep_away(&a, Duration::from_secs(3600)) => unreachable!(),
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(hbs.stale(Duration::from_secs(30)), vec!["a".to_string()]);
    }
}
