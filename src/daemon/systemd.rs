//! The daemon's side of the service manager protocol, on top of [`super::notify`]: readiness,
//! status, reload bracketing, stopping, and a watchdog pinged only while every worker is alive.

use std::time::Duration;

use super::heartbeat::Heartbeats;
use super::notify;

/// What the supervisor tells systemd (every call is a no-op without `NOTIFY_SOCKET`).
#[derive(Clone, Debug)]
pub(crate) struct Notifier {
    /// `WATCHDOG_USEC` for our PID, if the watchdog is on.
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        Notifier {
            watchdog: notify::watchdog_interval(),
        }
    }

    /// The watchdog interval, when systemd asked for pings.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    pub fn ready(&self) {
        notify::ready();
    }

    pub fn status(&self, text: &str) {
        notify::status(text);
    }

    pub fn reloading(&self) {
        notify::reloading();
    }

    pub fn stopping(&self) {
        notify::stopping();
    }

    /// Ping the watchdog if every worker beat within `max_age`; otherwise say who is stuck
    /// and let the watchdog fire.
    pub fn watchdog_tick(&self, heartbeats: &Heartbeats, max_age: Duration) -> bool {
        let stale = heartbeats.stale(max_age);
        if stale.is_empty() {
            notify::watchdog();
            true
        } else {
            tracing::error!(workers = ?stale, "workers stopped making progress; not pinging the watchdog");
            false
        }
    }
}
