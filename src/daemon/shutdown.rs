//! The shutdown signal of `imapsort run`: SIGTERM (systemd, `kill`) or SIGINT (Ctrl-C).

use tokio::signal::unix::{SignalKind, signal as unix_signal};

/// Completes at the first SIGTERM or SIGINT. The handlers are installed when this is called
/// (not when the future is first polled), so a signal that arrives during start-up is not lost.
pub fn signal() -> std::io::Result<impl Future<Output = ()>> {
    let mut term = unix_signal(SignalKind::terminate())?;
    let mut int = unix_signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = %name, "shutting down");
    })
}
