//! imapsort: sort IMAP mail on the server, the moment it arrives, by YAML rules.
//!
//! # The map
//!
//! ```text
//! cli        clap definitions; doc comments are the --help text
//! config     YAML -> spanned node tree -> validated Config (settings, accounts) + rule AST,
//!            every error with FILE:LINE:COLUMN; durations, sizes; secrets (resolved on demand)
//! rules      PURE (no tokio, no I/O): ast (the language as written), RuleSet (compiled),
//!            MessageView (decoded headers, addresses, list-id, flags, size, dates),
//!            evaluate(view, ctx) -> Evaluation { matched, plan, warnings }; templates
//! imap       connect (TCP, TLS, STARTTLS, keepalive, timeouts), auth, a session wrapper over
//!            async-imap that checks every tagged status, mailbox names (delimiter, modified
//!            UTF-7, SPECIAL-USE), UID sets, fetch of only what the rules need, SEARCH push-down
//! execute    the plans of a batch -> few commands: STORE per flag set, COPY / MOVE per
//!            destination, UID EXPUNGE fallback
//! state      the SQLite state database: per-mailbox UIDVALIDITY + last handled UID, applied
//!            (rule, message) pairs, the action journal; Store (lazy, on the blocking pool)
//! lock       one lock file per (account, mailbox): processes sharing a state take turns
//! pass       one pass over one mailbox, for `imapsort sweep` and the daemon alike: open
//!            (state row), the pass, its one state sink (intents before, results after)
//! recover    settles the journal intents an interrupted run left open, under the lock
//! daemon     supervisor (per-account workers, backoff), worker (lock -> open -> recover ->
//!            evaluate -> execute -> persist -> unlock -> IDLE), reload, systemd notify,
//!            connection pacing per host, /metrics and /health (metrics, http)
//! oauth      OAuth 2.0 handled by imapsort: login (device, browser + PKCE), the token file,
//!            cached access tokens, refresh with rotation, "log in again" on invalid_grant
//! commands   one module per subcommand; each returns an exit code
//! logging    tracing setup: IMAPSORT_LOG filter, text or JSON on stderr, journald under systemd
//! shard      `--shard I/N`: FNV-1a 64 of the account name modulo N picks an instance's accounts
//! vocab      IMAP words as types, no I/O: MailboxName (INBOX canonical), UidValidity
//! ```
//!
//! Data flow for new mail: `config::load` -> `daemon` starts workers -> a worker selects its
//! mailbox and runs `UID SEARCH UID <last+1>:*` -> `imap` fetches what `RuleSet::needs` asks for
//! -> `rules::MessageView` -> `RuleSet::evaluate` -> `execute` -> `state` records and advances.

#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod execute;
pub mod exit;
pub mod imap;
pub mod lock;
pub mod logging;
pub mod oauth;
pub mod pass;
pub mod recover;
pub mod rules;
pub mod shard;
pub mod state;
pub mod vocab;
