//! Telling systemd how the daemon is doing (`sd_notify(3)`), for `Type=notify` units.
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is unset (not started by systemd, or a
//! `Type=` that does not listen), and never fails the caller: a notification that cannot be
//! sent is logged at `warn` and dropped, because the daemon's work matters more than its report.
//!
//! The life cycle the daemon follows:
//! - [`ready`] once every worker has started (the unit becomes `active`);
//! - on SIGHUP or a config change: [`reloading`], then [`ready`] again when the new config is
//!   in place or was rejected (systemd keeps the unit in `reloading` until then);
//! - [`status`] with a one-line summary whenever it changes (`systemctl status` shows it);
//! - [`watchdog`] at half of [`watchdog_interval`], from the supervisor loop (so a hung
//!   supervisor gets restarted);
//! - [`stopping`] when SIGTERM arrives.
//!
//! `RELOADING=1` is sent with `MONOTONIC_USEC`: systemd ≥ 253 requires it for
//! `Type=notify-reload` and older versions ignore it, so one message fits both.

use std::time::Duration;

use sd_notify::NotifyState;

/// The service is up: `READY=1`.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A reload has started: `RELOADING=1` and `MONOTONIC_USEC=`. Follow with [`ready`].
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Shutdown has started: `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// A free-form one-line status: `STATUS=...`. Line breaks are replaced by spaces (a newline
/// would end the assignment early).
pub fn status(text: &str) {
    let line = text.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&line)]);
}

/// Keep-alive for `WatchdogSec=`: `WATCHDOG=1`.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The watchdog timeout systemd enforces (`WATCHDOG_USEC`), if it is enabled for this process
/// (`WATCHDOG_PID` unset or ours). Ping at half this interval.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    match pid.map(|p| p.trim().parse::<u32>()) {
        None => {}
        Some(Ok(pid)) if pid == our_pid => {}
        Some(_) => return None,
    }
    Some(Duration::from_micros(usec))
}

fn send(states: &[NotifyState<'_>]) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = if socket.as_encoded_bytes().starts_with(b"@") {
        send_abstract(&socket, states)
    } else {
        sd_notify::notify(false, states)
    };
    if let Err(err) = result {
        tracing::warn!(error = %err, "cannot notify systemd");
    }
}

/// `sd-notify` connects to paths only; an `@name` socket is in Linux's abstract namespace.
fn send_abstract(socket: &std::ffi::OsStr, states: &[NotifyState<'_>]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let name = &socket.as_encoded_bytes()[1..];
    let addr = SocketAddr::from_abstract_name(name)?;
    let message: String = states.iter().map(|s| format!("{s}\n")).collect();
    UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_values() {
        let s = Duration::from_secs;
        // (WATCHDOG_USEC, WATCHDOG_PID, result), our pid being 100
        let cases = [
            (None, None, None),
            (Some("30000000"), None, Some(s(30))),
            (Some("30000000"), Some("100"), Some(s(30))),
            (Some("30000000"), Some("101"), None),
            (Some("30000000"), Some("x"), None),
            (Some("0"), None, None),
            (Some("soon"), None, None),
            (None, Some("100"), None),
            (Some("1500"), None, Some(Duration::from_micros(1500))),
        ];
        for (usec, pid, want) in cases {
            assert_eq!(
                watchdog_interval_from(usec, pid, 100),
                want,
                "{usec:?} {pid:?}"
            );
        }
    }
}
