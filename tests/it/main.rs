//! imapsort's integration tests, one test binary (linking some thirty binaries separately took
//! most of a test run on two cores). Each module is one concern; `support` holds what they
//! share. Run a part of it with a module path: `cargo test --test it daemon_run::` or
//! `cargo test --test it reliability_`.
//!
//! Tests share this process and run in parallel, so none may change process-wide state: no
//! `std::env::set_var`, no `set_current_dir`, no global `tracing` subscriber (capture logs with
//! `support::run_with_timeout_logged`), no signals to ourselves. A test that needs such a
//! thing re-runs this binary as a child for one test with the environment it needs
//! (`state_crash`, `systemd_notify`; see `support::child_test`), or runs the imapsort binary.
//! New test files go here as a module, not beside this directory (each file directly under
//! `tests/` becomes a binary of its own).

mod support;

// The configuration: errors with their place, `check`, the example rules.
mod config_check_cli;
mod config_errors;
mod example;
mod golden;
mod rules_props;

// The shape of the source: the map in src/lib.rs, no import circles.
mod layout;

// The IMAP layer against Dovecot and scripted peers.
mod imap_connect;
mod imap_folders;
mod imap_mailboxes;
mod imap_peer;
mod imap_session;

// Sweeps.
mod sweep_actions;
mod sweep_dovecot_cache;
mod sweep_equivalence;
mod sweep_gmail;
mod sweep_long_lines;
mod sweep_pipelined;
mod sweep_write_ahead;

// History and undo: `imapsort log`, `imapsort undo`.
mod history_undo;

// The daemon: runs, reload, faults.
mod daemon_faults;
mod daemon_run;
mod reload_config;

// Exactly once in real use: locks between processes, a full disk, crash identity, state keys.
mod once_concurrent;
mod once_disk;
mod once_identity;
mod once_lock;
mod once_state;

// Operations at scale: /metrics and /health, connection pacing and recovery after a server
// restart, --shard with three instances, the deployment examples under deploy/.
mod ops_deploy;
mod ops_metrics;
mod ops_pacing;
mod ops_shards;

// OAuth 2.0: `imapsort login`, and tokens checked by Dovecot's oauth2 passdb.
mod oauth_daemon;
mod oauth_login;

// The state database and `status`.
mod state_crash;
mod state_status_cli;

// Reliability: crashes, soak, hostile servers, malformed mail, fuzz smoke, the fault proxy.
mod reliability_crash;
mod reliability_fuzz_smoke;
mod reliability_hostile_server;
mod reliability_malformed;
mod reliability_malformed_sweep;
mod reliability_proxy;
mod reliability_server_trouble;
mod reliability_soak;

// Secrets and hostile configuration.
mod security_config;
mod security_secrets;

// systemd: units, notify, logging.
mod systemd_logging;
mod systemd_notify;
mod systemd_units;
