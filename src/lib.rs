//! imapsort: sort IMAP mail on the server, the moment it arrives, by YAML rules.
//!
//! docs/architecture.md tells the same story at more length: the way of one message.
//!
//! # The map
//!
//! Each room, what it owns, and (->) the rooms it imports (`vocab`, IMAP's words, left out:
//! any room may use it). A room imports only rooms listed below it, so there are no circles
//! (tests/it/layout.rs keeps it so); `rules` and `vocab` import no tokio and do no I/O.
//!
//! ```text
//! main.rs    parses the command line, sets up logging, runs one command, exits with its code
//! commands   one module per subcommand, each returning an `exit::Exit`; `load_config` is the
//!            one way a command loads the configuration or reports it (exit 78)
//!                                                             -> every room below
//! daemon     `imapsort run`: supervisor (per-account workers, backoff, reload), a worker per
//!            watched mailbox (lock -> open -> recover -> pass -> unlock -> IDLE), a poller,
//!            connection pacing per host, systemd notify and watchdog, /metrics and /health
//!                   -> logging, pass, recover, execute, state, lock, imap, oauth, config,
//!                      shard, rules
//! undo       `imapsort undo`: a rule's work taken back exactly once (move back, delete the
//!            copies, restore flags), on the pass's journal, locks and recovery
//!                   -> pass, recover, execute, state, lock, imap, config, rules
//! logging    tracing setup: IMAPSORT_LOG filter, text or JSON on stderr, journald under
//!            systemd; `chain`, the one error-chain formatter (`a: b: c`)         -> cli
//! cli        clap definitions; their doc comments are the --help text and the man page
//!                                                                     -> config, shard
//! pass       one pass of the rules over one mailbox, the same for the daemon and `sweep`:
//!            open (SELECT + the mailbox's state row), search, pipelined fetch, evaluate,
//!            execute, and its one state sink (intents before the commands, results after);
//!            a MessageResult per message to a Report the caller prints or counts
//!                                                   -> execute, state, imap, config, rules
//! recover    settles the journal intents an interrupted run left open, under the lock
//!                                                                -> state, imap, rules
//! execute    the plans of a batch -> few commands (STORE per flag set, COPY / MOVE per
//!            destination, one shared EXPUNGE); `group` is pure, `run` sends through a target
//!                                                                       -> imap, rules
//! state      the SQLite state database: per mailbox UIDVALIDITY + last handled UID, applied
//!            (rule, message) pairs, the action journal, the history (`imapsort log`); Store
//!            runs it on the blocking pool
//!                                                                       -> imap, rules
//! lock       one flock(2) file per (account, mailbox): processes sharing a state take turns
//! imap       our own IMAP session over imap-proto's parser (async-imap is used only for that
//!            re-export): connect (TCP, TLS, STARTTLS, keepalive, timeouts), LOGIN and SASL,
//!            every tagged status checked, LIST/STATUS/CREATE, mailbox names (delimiter,
//!            modified UTF-7, SPECIAL-USE), UID sets, FETCH of only what the rules need,
//!            SEARCH push-down, IDLE                       -> oauth, trust, config, rules
//! oauth      OAuth 2.0: login (device code, browser + PKCE), the token file, cached access
//!            tokens, refresh with rotation, "log in again" on invalid_grant
//!                                                                      -> trust, config
//! trust      the certificates every TLS connection trusts: system roots, a `ca_file`
//! config     YAML -> spanned node tree -> validated Config (settings, accounts) + rule AST,
//!            every error with FILE:LINE:COLUMN, did-you-mean; durations, sizes; secrets
//!            (resolved on demand, never logged)                              -> rules
//! shard      `--shard I/N`: FNV-1a 64 of the account name modulo N picks an instance's accounts
//! rules      PURE: ast (the language as written), RuleSet (compiled, indexed), MessageView
//!            (decoded headers, addresses, List-Id, flags, size, dates, body, attachments),
//!            evaluate(view, ctx) -> Evaluation { matched, plan, warnings }; templates;
//!            needs() (what to fetch); Gist (sender and subject for text output)
//! vocab      IMAP words as types: MailboxName (INBOX canonical), UidValidity
//! exit       the process exit codes (sysexits)
//! ```
//!
//! The way of a new message: `config::load` -> `daemon` starts a worker per watched mailbox ->
//! the worker takes the mailbox's `lock`, `pass::open` SELECTs it and reads its state row,
//! `recover` settles what an earlier run left open -> the pass runs `UID SEARCH UID
//! <last+1>:*`, fetches what `RuleSet::needs` asks for, builds a `rules::MessageView` and calls
//! `RuleSet::evaluate` -> the plans' intents go to the `state` journal, `execute` sends the
//! grouped commands, the results are recorded and last_uid advances -> the lock is let go and
//! the worker IDLEs. `imapsort sweep` runs the same pass over the whole mailbox.

#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod execute;
pub mod exit;
pub mod imap;
pub(crate) mod lock;
pub mod logging;
pub(crate) mod oauth;
pub mod pass;
pub(crate) mod recover;
pub mod rules;
pub mod shard;
pub mod state;
mod trust;
pub mod undo;
pub mod vocab;
