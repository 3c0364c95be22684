//! `imapsort run`: the daemon, until SIGTERM or SIGINT.

use std::time::Duration;

use crate::cli::RunArgs;
use crate::config;
use crate::daemon;
use crate::exit::Exit;

/// How long abandoned tasks get after the daemon returned, before the process exits anyway.
const RUNTIME_GRACE: Duration = Duration::from_millis(500);

/// Exit 0 after SIGTERM/SIGINT, 78 when the configuration is invalid at start, 71 when
/// `settings.metrics_listen` cannot be bound. With
/// `--shard I/N` only that shard's accounts are run; a shard without accounts runs idle (the
/// file may gain some on reload), but a file without any account is still refused.
pub fn run(args: &RunArgs) -> anyhow::Result<Exit> {
    let path = config::resolve_path(args.config.config.as_deref());
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(err) => {
            for d in err.diagnostics() {
                eprintln!("{d}");
            }
            return Ok(Exit::Config);
        }
    };
    if config.accounts.is_empty() {
        eprintln!(
            "{}: error: no accounts: `imapsort run` needs at least one",
            path.display()
        );
        return Ok(Exit::Config);
    }
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("imapsort")
        .build()?;
    let result = runtime.block_on(async {
        let shutdown = daemon::shutdown::signal()?;
        let options = daemon::Options {
            shard: args.shard.shard,
            metrics_listen: args.metrics_listen.clone(),
            ..daemon::Options::default()
        };
        match daemon::run_with(path, config, shutdown, options).await {
            Ok(()) => anyhow::Ok(Exit::Ok),
            Err(daemon::DaemonError::MetricsListen(e)) => {
                eprintln!("imapsort: {:#}", anyhow::Error::from(e));
                Ok(Exit::OsErr)
            }
            Err(e) => Err(e.into()),
        }
    });
    runtime.shutdown_timeout(RUNTIME_GRACE);
    result
}
