//! `imapsort undo`: takes back what rules did, entry by entry of the history (`crate::undo`
//! does the work; this is the command around it).
//!
//! Entries are chosen by `--id`, by `--rule [--since]` or as the `--last N`, within
//! `--account` when given; each account's entries are taken back over one connection, under
//! the same per-mailbox locks as `sweep` (waiting up to `--wait`).
//!
//! Output (stdout): one line per entry, then a summary; `--format json` prints
//! `{"id","undone","reason"}` per entry and `{"summary": {"selected","undone","failed"}}`
//! (RULES.md, "History and undo"). Exit codes, the most serious first: 74 the state cannot be
//! written (nothing is changed), 69 a server could not be reached or the connection broke, 75
//! a mailbox stayed busy beyond `--wait`, 65 some entries could not be taken back, 78 an
//! invalid configuration, 0 otherwise (everything taken back, now or before).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::{OutputFormat, UndoArgs};
use crate::config::{self, Account, Config};
use crate::exit::Exit;
use crate::lock::{LockError, Locks};
use crate::logging::chain;
use crate::state::{EntryId, Selection, StateError, Store};
use crate::undo::{Context, Outcome, UndoError, take_back};

/// The command from `main`, on its own tokio runtime.
pub fn run_blocking(args: &UndoArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(run(args, out, &mut std::io::stderr())))
}

/// One line of `--format json`.
#[derive(Serialize)]
struct JsonLine<'a> {
    id: i64,
    undone: bool,
    reason: Option<&'a str>,
}

#[derive(Serialize, Default, Clone, Copy)]
struct Summary {
    selected: usize,
    undone: usize,
    failed: usize,
}

/// Runs the command. `out` gets the results, `err` the problems.
pub async fn run(args: &UndoArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let path = config::resolve_path(args.config.config.as_deref());
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return Exit::Config;
        }
    };
    if let Some(name) = &args.account
        && config.account(name).is_none()
    {
        let _ = writeln!(
            err,
            "imapsort: no account named {name:?} in {}",
            path.display()
        );
        return Exit::Usage;
    }
    let dir = &config.settings.state_dir;
    let store = if args.dry_run {
        Store::read_only(dir)
    } else {
        let store = Store::new(dir).keep_history(config.settings.history);
        if let Err(e) = store.call(|db| db.check_writable()).await {
            let _ = writeln!(
                err,
                "imapsort: the state database {} cannot be written ({}); nothing was changed \
                 on the server",
                store.file().display(),
                chain(&e)
            );
            return Exit::IoErr;
        }
        store
    };
    let chosen = match choose(&store, args).await {
        Ok(c) => c,
        Err(StateError::NoDatabase { .. }) => Vec::new(),
        Err(e) => {
            let _ = writeln!(
                err,
                "imapsort: the history in {} cannot be read: {}",
                store.file().display(),
                chain(&e)
            );
            return Exit::IoErr;
        }
    };
    let config_dir = config::dir_of(&path);
    let mut run = Run {
        config: &config,
        args,
        config_dir,
        store: &store,
        locks: Locks::new(dir),
        exit: Exit::Ok,
        err,
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (account, ids) in chosen {
        outcomes.extend(run.account(&account, &ids).await);
    }
    let exit = run.exit;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let summary = print(&outcomes, args, &mut out);
    let _ = out.flush();
    if exit != Exit::Ok {
        return exit;
    }
    if summary.failed > 0 {
        Exit::DataErr
    } else {
        Exit::Ok
    }
}

/// The entries chosen, per account (in the order asked: `--id` as given, else newest first).
async fn choose(store: &Store, args: &UndoArgs) -> Result<Vec<(String, Vec<EntryId>)>, StateError> {
    let account = args.account.clone();
    let ids = args.id.clone();
    let selection = Selection {
        accounts: account.clone().map(|a| vec![a]),
        rule: args.rule.clone(),
        since: args.since.map(|w| w.resolve(jiff::Timestamp::now())),
        limit: args.last,
        done_only: false,
    };
    let shard = args.shard;
    let entries = store
        .call(move |db| {
            if ids.is_empty() {
                let mut selection = selection;
                selection.accounts = super::log::in_shard(db, selection.accounts, &shard)?;
                db.history(&selection)
            } else {
                let wanted: Vec<EntryId> = ids.iter().copied().map(EntryId).collect();
                db.entries(&wanted)
            }
        })
        .await?;
    let mut by_account: BTreeMap<String, Vec<EntryId>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for e in entries {
        if account.as_ref().is_some_and(|a| *a != e.account) || !args.shard.keeps(&e.account) {
            continue;
        }
        if !by_account.contains_key(&e.account) {
            order.push(e.account.clone());
        }
        by_account.entry(e.account).or_default().push(e.id);
    }
    let mut chosen: Vec<(String, Vec<EntryId>)> = order
        .into_iter()
        .map(|a| {
            let ids = by_account.remove(&a).unwrap_or_default();
            (a, ids)
        })
        .collect();
    // Ids asked for that are not in the history (or not of --account): reported as such.
    let known: std::collections::HashSet<i64> = chosen
        .iter()
        .flat_map(|(_, ids)| ids.iter().map(|i| i.0))
        .collect();
    let missing: Vec<EntryId> = args
        .id
        .iter()
        .filter(|i| !known.contains(i))
        .map(|i| EntryId(*i))
        .collect();
    if !missing.is_empty() {
        chosen.push((String::new(), missing));
    }
    Ok(chosen)
}

struct Run<'a> {
    config: &'a Config,
    args: &'a UndoArgs,
    config_dir: &'a Path,
    store: &'a Store,
    locks: Locks,
    exit: Exit,
    err: &'a mut dyn Write,
}

impl Run<'_> {
    fn worse(&mut self, e: Exit) {
        self.exit = self.exit.worse(e);
    }

    /// Takes back `ids`, all of `account` (empty: ids not in the history).
    async fn account(&mut self, account: &str, ids: &[EntryId]) -> Vec<Outcome> {
        let refuse = |why: &str| {
            ids.iter()
                .map(|id| Outcome {
                    id: *id,
                    undone: false,
                    reason: Some(why.to_owned()),
                    already: false,
                })
                .collect::<Vec<_>>()
        };
        if account.is_empty() {
            return refuse("no such entry in the history (of the accounts asked for)");
        }
        let Some(acct): Option<&Account> = self.config.account(account) else {
            return refuse(&format!(
                "account {account:?} is no longer in the configuration"
            ));
        };
        let mut session = match crate::imap::connect_account(acct, self.config_dir).await {
            Ok(s) => s,
            Err(e) => {
                let why = format!("server unavailable: {}", chain(&e));
                let _ = writeln!(self.err, "imapsort: account {account}: {why}");
                self.worse(Exit::Unavailable);
                return refuse(&why);
            }
        };
        let ctx = Context {
            account: acct,
            store: self.store,
            locks: &self.locks,
            rules: &self.config.rules,
            wait: self.args.wait,
            dry_run: self.args.dry_run,
        };
        let wait = self.args.wait;
        let mut told: Vec<String> = Vec::new();
        let result = take_back(&mut session, &ctx, ids, |mailbox, holder| {
            told.push(super::waiting_line(mailbox, holder, wait));
        })
        .await;
        for line in told {
            let _ = writeln!(self.err, "imapsort: account {account}: {line}");
        }
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(e) => {
                let code = match &e {
                    UndoError::Imap(_) => Exit::Unavailable,
                    UndoError::State(_) => Exit::IoErr,
                    UndoError::Lock {
                        source: LockError::Busy { .. },
                        ..
                    } => Exit::TempFail,
                    UndoError::Lock { .. } => Exit::IoErr,
                };
                let why = chain(&e).to_string();
                let _ = writeln!(self.err, "imapsort: account {account}: {why}");
                self.worse(code);
                // What is not known to be taken back is reported as not (the next undo finds
                // out and finishes it).
                let done = self
                    .store
                    .call({
                        let ids = ids.to_vec();
                        move |db| db.entries(&ids)
                    })
                    .await
                    .unwrap_or_default();
                return ids
                    .iter()
                    .map(|id| {
                        let undone = done.iter().any(|e| e.id == *id && e.undone_at.is_some());
                        Outcome {
                            id: *id,
                            undone,
                            reason: (!undone).then(|| why.clone()),
                            already: false,
                        }
                    })
                    .collect();
            }
        };
        let _ = session.logout().await;
        outcomes
    }
}

/// Prints the outcomes and the summary; returns the summary.
fn print(outcomes: &[Outcome], args: &UndoArgs, out: &mut dyn Write) -> Summary {
    let mut summary = Summary {
        selected: outcomes.len(),
        ..Summary::default()
    };
    for o in outcomes {
        if o.undone {
            summary.undone += 1;
        } else if o.reason.is_some() {
            summary.failed += 1;
        }
    }
    match args.format {
        OutputFormat::Json => {
            for o in outcomes {
                let line = JsonLine {
                    id: o.id.0,
                    undone: o.undone,
                    reason: o.reason.as_deref(),
                };
                let _ = serde_json::to_writer(&mut *out, &line);
                let _ = out.write_all(b"\n");
            }
            let _ = serde_json::to_writer(&mut *out, &serde_json::json!({ "summary": summary }));
            let _ = out.write_all(b"\n");
        }
        OutputFormat::Text => {
            let width = outcomes
                .iter()
                .map(|o| o.id.0.to_string().len())
                .max()
                .unwrap_or(1);
            for o in outcomes {
                let what = match (&o.reason, o.undone, o.already) {
                    (Some(why), _, _) => format!("not undone: {why}"),
                    (None, true, true) => "already undone".to_owned(),
                    (None, true, false) => "undone".to_owned(),
                    (None, false, _) => "would be undone (dry run)".to_owned(),
                };
                let _ = writeln!(out, "{:>width$}  {what}", o.id.0);
            }
            let _ = writeln!(
                out,
                "{} selected, {} undone, {} could not be undone{}",
                summary.selected,
                summary.undone,
                summary.failed,
                if args.dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            );
        }
    }
    summary
}
