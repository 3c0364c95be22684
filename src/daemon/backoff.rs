//! Reconnect backoff: exponential with jitter, capped, reset after a healthy period.
//!
//! A worker asks [`Backoff::failed`] for the delay before its next attempt and tells
//! [`Backoff::connected`] when a connection came up. A connection that then stayed healthy for
//! `healthy_after` resets the sequence, so a server that drops us once a day gets a 1 s retry,
//! while one that accepts and drops at once keeps climbing towards the cap.
//!
//! Time comes from `tokio::time::Instant`, so tests drive it with `tokio::time::pause()`.

use std::time::Duration;

use tokio::time::Instant;

/// The shape of a backoff sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The first delay (before jitter).
    pub base: Duration,
    /// No delay is ever longer than this.
    pub cap: Duration,
    /// A connection that lived this long counts as healthy and resets the sequence.
    pub healthy_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// Where one worker stands in its backoff sequence.
#[derive(Debug)]
pub struct Backoff {
    /// The sequence's shape.
    policy: BackoffPolicy,
    /// Failures since the last reset; the next delay is `base * 2^attempt` before jitter.
    attempt: u32,
    /// When the current connection came up, if one is up; decides whether the next failure
    /// follows a healthy period.
    connected_since: Option<Instant>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff {
            policy,
            attempt: 0,
            connected_since: None,
        }
    }

    /// A connection came up (logged in and ready): the healthy period starts now.
    pub fn connected(&mut self) {
        self.connected_since = Some(Instant::now());
    }

    /// Failures counted since the last reset (tests look).
    #[cfg(test)]
    fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Something failed: the delay to wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        self.reset_if_healthy();
        let delay = jitter(self.ceiling());
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// A failure that retrying soon cannot fix (the server refused our credentials): wait the
    /// full cap, with jitter so that many accounts do not retry in step.
    pub fn failed_permanently(&mut self) -> Duration {
        self.connected_since = None;
        self.attempt = self.attempt.saturating_add(1);
        jitter(self.policy.cap)
    }

    /// Forget the sequence (a reload changed the account, say).
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.connected_since = None;
    }

    fn reset_if_healthy(&mut self) {
        if let Some(since) = self.connected_since.take()
            && since.elapsed() >= self.policy.healthy_after
        {
            self.attempt = 0;
        }
    }

    /// The un-jittered delay for the current attempt: `base * 2^attempt`, capped.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.policy
            .base
            .checked_mul(factor)
            .unwrap_or(self.policy.cap)
            .min(self.policy.cap)
    }
}

/// "Equal jitter": somewhere in `[d/2, d]`, so the delay still grows but peers spread out.
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    let spread = d.saturating_sub(half).as_millis() as u64;
    half + Duration::from_millis(fastrand::u64(0..=spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy::default()
    }

    #[test]
    fn delays_double_within_jitter_bounds_and_stop_at_the_cap() {
        let mut b = Backoff::new(policy());
        // (attempt, expected ceiling in seconds)
        let table = [
            (0, 1),
            (1, 2),
            (2, 4),
            (3, 8),
            (4, 16),
            (5, 32),
            (6, 64),
            (7, 128),
            (8, 256),
            (9, 300),
            (10, 300),
            (40, 300),
        ];
        for (attempt, ceiling) in table {
            while b.attempt() < attempt {
                b.failed();
            }
            let d = b.failed();
            let ceiling = Duration::from_secs(ceiling);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "attempt {attempt}: {d:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff::new(policy());
            for _ in 0..6 {
                b.failed();
            }
            seen.insert(b.failed());
        }
        assert!(seen.len() > 5, "jitter produced only {} values", seen.len());
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_connection_resets_the_sequence() {
        let mut b = Backoff::new(policy());
        for _ in 0..5 {
            b.failed();
        }
        b.connected();
        tokio::time::advance(Duration::from_secs(61)).await;
        let d = b.failed();
        assert!(d <= Duration::from_secs(1), "{d:?}");
        assert_eq!(b.attempt(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_connection_keeps_climbing() {
        let mut b = Backoff::new(policy());
        for _ in 0..5 {
            b.failed();
        }
        b.connected();
        tokio::time::advance(Duration::from_secs(5)).await;
        let d = b.failed();
        assert!(d >= Duration::from_secs(16), "{d:?}");
        assert_eq!(b.attempt(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_the_delays_takes_virtual_time_only() {
        let mut b = Backoff::new(policy());
        let start = Instant::now();
        let mut total = Duration::ZERO;
        for _ in 0..12 {
            let d = b.failed();
            total += d;
            tokio::time::sleep(d).await;
        }
        assert_eq!(start.elapsed(), total);
        // 1+2+...+256 = 511 s uncapped part, then three capped delays of 150..300 s.
        assert!(total >= Duration::from_secs(255 + 450), "{total:?}");
    }

    #[test]
    fn auth_failure_waits_near_the_cap() {
        let mut b = Backoff::new(policy());
        let d = b.failed_permanently();
        assert!(d >= Duration::from_secs(150) && d <= Duration::from_secs(300));
    }
}
