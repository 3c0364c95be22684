//! The daemon's use of the service manager's notify socket: readiness, status, reload
//! bracketing, stopping, and the watchdog (pinged only while every worker is alive).

use std::time::Duration;

use sd_notify::NotifyState;

use super::heartbeat::Heartbeats;

/// Sends notifications when `NOTIFY_SOCKET` is set; does nothing otherwise.
#[derive(Clone, Debug)]
pub(crate) struct Notifier {
    /// `NOTIFY_SOCKET` was set at start.
    enabled: bool,
    /// `WATCHDOG_USEC` (for our PID), if the watchdog is on.
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let mut usec = 0;
        let watchdog = (enabled && sd_notify::watchdog_enabled(false, &mut usec))
            .then(|| Duration::from_micros(usec));
        Notifier { enabled, watchdog }
    }

    /// The watchdog interval, when systemd asked for pings.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if self.enabled
            && let Err(error) = sd_notify::notify(false, states)
        {
            tracing::debug!(%error, "sd_notify failed");
        }
    }

    pub fn ready(&self) {
        self.send(&[NotifyState::Ready]);
    }

    pub fn status(&self, text: &str) {
        self.send(&[NotifyState::Status(text)]);
    }

    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// Ping the watchdog if every worker beat within `max_age`; otherwise say who is stuck
    /// (once per call) and let the watchdog fire.
    pub fn watchdog_tick(&self, heartbeats: &Heartbeats, max_age: Duration) -> bool {
        let stale = heartbeats.stale(max_age);
        if stale.is_empty() {
            self.send(&[NotifyState::Watchdog]);
            true
        } else {
            tracing::error!(workers = ?stale, "workers stopped making progress; not pinging the watchdog");
            false
        }
    }
}
