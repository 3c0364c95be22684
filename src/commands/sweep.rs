//! `imapsort sweep`: one pass of all rules (both triggers) over the existing mail of each
//! account's mailboxes that have rules.
//!
//! Per mailbox, as the daemon does it: take the mailbox's lock (waiting up to `--wait` while
//! the daemon or another sweep works on it), open it (SELECT, its state row), settle the
//! intents an interrupted run left open (`crate::recover`), run the pass with the state sink,
//! let go.
//!
//! Output (stdout): one line per message acted on, then a summary; `--format json` prints one
//! JSON object per line (RULES.md). Errors and warnings go to stderr through `tracing` and as
//! plain lines. Exit codes, the most serious first:
//!
//! - 74: the state database cannot be written (checked before anything is sent; a write that
//!   fails later stops the sweep at once): the server is not changed (`--dry-run` only reads);
//! - 69: an account's server cannot be reached or logged in to, or the connection broke (the
//!   other accounts are still swept);
//! - 75: another process worked on a mailbox for longer than `--wait` (the other mailboxes
//!   are still swept);
//! - 78: an invalid configuration; 0 otherwise.
//!
//! With `--shard I/N` only the shard's accounts are swept (none at all is not an error:
//! another instance has them).

mod output;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use crate::cli::{OutputFormat, SweepArgs};
use crate::commands::{Warnings, load_config};
use crate::config::{Account, Config};
use crate::execute::Executor;
use crate::exit::Exit;
use crate::imap::resolve_special;
use crate::imap::{Session, SpecialUse};
use crate::lock::{LockError, Locks};
use crate::logging::chain;
use crate::pass::open::OpenError;
use crate::pass::record::Place;
use crate::pass::sink::Sink;
use crate::pass::target::server_caps;
use crate::pass::{PassError, PassOptions, Scope, Summary};
use crate::recover::RecoverError;
use crate::state::{StateError, Store};
use crate::vocab::MailboxName;
use output::{Printer, print_summary};

/// The command from `main`: its own tokio runtime, problems to stderr (not locked for the
/// whole run: the state database's thread logs there too).
pub fn run_blocking(args: &SweepArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(run(args, out, &mut std::io::stderr())))
}

/// Runs the command. `out` gets the results, `err` the problems.
pub async fn run(args: &SweepArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let config = match load_config(&args.config, Warnings::Print, err) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let path = config.path.clone();
    let accounts: Vec<&Account> = match &args.account {
        Some(name) => match config.account(name) {
            Some(a) if args.shard.keeps(name) => vec![a],
            Some(_) => {
                // Only reachable with --shard: without it every account is kept.
                let shard = args.shard.shard.unwrap_or_default();
                let _ = writeln!(
                    err,
                    "imapsort: account {name:?} belongs to shard {}/{}, not to {shard}",
                    crate::shard::Shard::of(name, shard.count()),
                    shard.count()
                );
                return Exit::Usage;
            }
            None => {
                let _ = writeln!(
                    err,
                    "imapsort: no account named {name:?} in {}",
                    path.display()
                );
                return Exit::Usage;
            }
        },
        None => config
            .accounts
            .iter()
            .filter(|a| args.shard.keeps(&a.name))
            .collect(),
    };
    if config.accounts.is_empty() {
        let _ = writeln!(err, "imapsort: {}: no accounts to sweep", path.display());
        return Exit::Config;
    }
    let Some(store) = open_state(&config, args.dry_run, err).await else {
        return Exit::IoErr;
    };
    let config_dir = crate::config::dir_of(&path);
    let mut sweep = Sweep {
        config: &config,
        args,
        config_dir,
        now: jiff::Timestamp::now(),
        store,
        locks: Locks::new(&config.settings.state_dir),
        total: Summary::default(),
        exit: Exit::Ok,
        err,
    };
    // One write per 64 KiB rather than one per message: at 100,000 messages the per-line
    // writes woke the reader of the pipe 100,000 times.
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, out);
    for account in accounts {
        let mut printer = Printer {
            account: &account.name,
            mailbox: MailboxName::inbox(),
            format: args.format,
            dry_run: args.dry_run,
            out: &mut buffered,
        };
        sweep.account(account, &mut printer).await;
        if sweep.exit == Exit::IoErr {
            break;
        }
    }
    print_summary(&mut buffered, args.format, args.dry_run, &sweep.total);
    let _ = buffered.flush();
    sweep.exit
}

/// The state database: writable (checked now, with a write that reaches the disk) unless a
/// dry run, which reads what it can and goes on without it when it cannot. `None`: not
/// writable, said on `err`; nothing may be done.
async fn open_state(config: &Config, dry_run: bool, err: &mut dyn Write) -> Option<Option<Store>> {
    let dir = &config.settings.state_dir;
    if dry_run {
        let store = Store::read_only(dir);
        return Some(match store.call(|db| db.status(0).map(|_| ())).await {
            Ok(()) => Some(store),
            Err(StateError::NoDatabase { .. }) => None,
            Err(e) => {
                let _ = writeln!(
                    err,
                    "imapsort: warning: the state database {} cannot be read ({}); the dry run \
                     shows what the rules would do as if nothing had been done before",
                    store.file().display(),
                    chain(&e)
                );
                None
            }
        });
    }
    let store = Store::new(dir).keep_history(config.settings.history);
    match store.call(|db| db.check_writable()).await {
        Ok(()) => Some(Some(store)),
        Err(e) => {
            not_writable(err, &store, &e);
            None
        }
    }
}

fn not_writable(err: &mut dyn Write, store: &Store, e: &dyn std::error::Error) {
    let _ = writeln!(
        err,
        "imapsort: the state database {} cannot be written ({}); nothing was changed on the \
         server from here on (--dry-run still shows what the rules would do)",
        store.file().display(),
        chain(e)
    );
}

/// One run of the command across accounts.
struct Sweep<'a> {
    config: &'a Config,
    args: &'a SweepArgs,
    config_dir: &'a Path,
    /// Age conditions are measured from here, for every account.
    now: jiff::Timestamp,
    /// `None`: a dry run without a (readable) database.
    store: Option<Store>,
    locks: Locks,
    total: Summary,
    /// The most serious outcome so far (see the module doc).
    exit: Exit,
    err: &'a mut dyn Write,
}

/// How one mailbox went.
enum Swept {
    Done,
    /// Not swept (missing, or refused); the others go on.
    Skipped,
    /// Another process holds it beyond `--wait`.
    Busy,
    /// The connection is gone: the account's other mailboxes cannot go on.
    Lost,
    /// The state cannot be written: nothing more anywhere.
    StateFailed,
}

impl Sweep<'_> {
    /// Raise the exit code to `e` if it is more serious than the one so far.
    fn worse(&mut self, e: Exit) {
        self.exit = self.exit.worse(e);
    }

    fn say(&mut self, account: &str, what: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.err, "imapsort: account {account}: {what}");
    }

    async fn account(&mut self, account: &Account, printer: &mut Printer<'_>) {
        let mailboxes = mailboxes_to_sweep(self.config, account, self.args.mailbox.as_ref());
        if mailboxes.is_empty() {
            tracing::info!(account = %account.name, "no rules apply to this account's mailboxes");
            return;
        }
        let mut session = match crate::imap::connect_account(account, self.config_dir).await {
            Ok(s) => s,
            Err(e) => {
                self.say(
                    &account.name,
                    format_args!("server unavailable: {}", chain(&e)),
                );
                self.worse(Exit::Unavailable);
                return;
            }
        };
        let (trash, archive) =
            match special_mailboxes(&mut session, account, &self.config.rules).await {
                Ok(t) => t,
                Err(e) => {
                    self.say(
                        &account.name,
                        format_args!("listing mailboxes failed: {}", chain(&e)),
                    );
                    self.worse(Exit::Unavailable);
                    return;
                }
            };
        let mut executor = Executor::new(server_caps(&session));
        for mailbox in &mailboxes {
            printer.mailbox = mailbox.clone();
            let at = Mailbox {
                account,
                mailbox,
                trash: &trash,
                archive: &archive,
            };
            match self
                .mailbox(&mut session, &mut executor, &at, printer)
                .await
            {
                Swept::Done | Swept::Skipped => {}
                Swept::Busy => self.worse(Exit::TempFail),
                Swept::Lost => {
                    self.worse(Exit::Unavailable);
                    return;
                }
                Swept::StateFailed => {
                    self.worse(Exit::IoErr);
                    return;
                }
            }
        }
        let _ = session.logout().await;
    }

    /// One mailbox under its lock: open, recover, pass.
    async fn mailbox(
        &mut self,
        session: &mut Session,
        executor: &mut Executor,
        at: &Mailbox<'_>,
        printer: &mut Printer<'_>,
    ) -> Swept {
        let (account, mailbox) = (&at.account.name, at.mailbox);
        let wait = self.args.wait;
        let mut told = Vec::new();
        let lock = self
            .locks
            .acquire(account, mailbox, Some(wait), |holder| {
                told.push(super::waiting_line(mailbox, holder, wait));
            })
            .await;
        for line in told {
            self.say(account, format_args!("{line}"));
        }
        let _lock = match lock {
            Ok(lock) => lock,
            Err(e @ LockError::Busy { .. }) => {
                self.say(
                    account,
                    format_args!("mailbox {mailbox}: {e}; gave up after {wait:?}"),
                );
                return Swept::Busy;
            }
            Err(e) => {
                if self.args.dry_run {
                    // A dry run changes nothing, so it needs no lock; say why it has none.
                    tracing::warn!(account = %account, mailbox = %mailbox, error = %chain(&e), "dry run without the mailbox's lock");
                    return self.pass(session, executor, at, printer).await;
                }
                self.say(account, format_args!("mailbox {mailbox}: {}", chain(&e)));
                return Swept::StateFailed;
            }
        };
        self.pass(session, executor, at, printer).await
    }

    /// Open, recover, and run the pass over a mailbox whose lock is held.
    async fn pass(
        &mut self,
        session: &mut Session,
        executor: &mut Executor,
        at: &Mailbox<'_>,
        printer: &mut Printer<'_>,
    ) -> Swept {
        let (account, mailbox) = (at.account, at.mailbox);
        let dry_run = self.args.dry_run;
        let place_of = |uid_validity| Place {
            account: account.name.clone(),
            mailbox: mailbox.clone(),
            uid_validity,
        };
        let opened = if dry_run {
            crate::pass::open::look(session, self.store.as_ref(), &account.name, mailbox)
                .await
                .map(|(info, validity)| (info, validity.map(place_of)))
        } else {
            let store = self.store.as_ref().expect("a store unless a dry run");
            crate::pass::open::open(session, store, account, mailbox)
                .await
                .map(|o| (o.info, Some(place_of(o.uid_validity))))
        };
        let (info, place) = match opened {
            Ok(place) => place,
            Err(OpenError::State(e)) => return self.state_failed(&e),
            Err(e @ OpenError::Imap { .. }) => {
                let lost =
                    matches!(&e, OpenError::Imap { source, .. } if source.is_connection_fatal());
                self.say(&account.name, format_args!("{}", chain(&e)));
                self.total.errors += 1;
                return if lost { Swept::Lost } else { Swept::Skipped };
            }
            Err(e @ OpenError::NoUidValidity(_)) => {
                self.say(&account.name, format_args!("{}", chain(&e)));
                self.total.errors += 1;
                return Swept::Skipped;
            }
        };
        if !dry_run && let (Some(store), Some(place)) = (&self.store, &place) {
            let recovered = crate::recover::recover(
                session,
                store,
                &account.name,
                mailbox,
                place.uid_validity,
                &self.config.rules,
            )
            .await;
            match recovered {
                Ok(_) => {}
                Err(RecoverError::State(e)) => return self.state_failed(&e),
                Err(e @ RecoverError::Imap { .. }) => {
                    self.say(&account.name, format_args!("{}", chain(&e)));
                    self.total.errors += 1;
                    return Swept::Lost;
                }
            }
        }
        let opts = PassOptions {
            account: &account.name,
            mailbox,
            watch: &account.watch,
            trigger: None,
            trash: at.trash,
            archive: at.archive,
            now: self.now,
            scope: Scope::All,
            dry_run,
            selected: Some(&info),
            gists: self.args.format == OutputFormat::Text,
        };
        let mut sink = Sink::new(self.store.clone(), place, dry_run);
        let result = crate::pass::run(
            session,
            &self.config.rules,
            &opts,
            executor,
            &mut sink,
            printer,
        )
        .await;
        let _ = printer.out.flush();
        match result {
            Ok(summary) => {
                self.total.add(&summary);
                Swept::Done
            }
            Err(PassError::State { source, .. }) => self.state_failed(&source),
            Err(e) => {
                let lost = e.imap().is_none_or(|i| i.is_connection_fatal());
                self.say(&account.name, format_args!("{}", chain(&e)));
                self.total.errors += 1;
                if lost { Swept::Lost } else { Swept::Skipped }
            }
        }
    }

    fn state_failed(&mut self, e: &StateError) -> Swept {
        if let Some(store) = &self.store {
            let store = store.clone();
            not_writable(self.err, &store, e);
        }
        Swept::StateFailed
    }
}

/// Where a mailbox pass happens.
struct Mailbox<'a> {
    account: &'a Account,
    mailbox: &'a MailboxName,
    /// Resolved trash and archive mailboxes of the account.
    trash: &'a str,
    archive: &'a str,
}

/// The mailboxes of `account` that some rule applies to (its `mailboxes:`, else the watch
/// list), in a stable order; `only` narrows to one.
pub fn mailboxes_to_sweep(
    config: &Config,
    account: &Account,
    only: Option<&MailboxName>,
) -> Vec<MailboxName> {
    let mut set = BTreeSet::new();
    for rule in config.rules.rules() {
        if let Some(accounts) = &rule.accounts
            && !accounts.contains(&account.name)
        {
            continue;
        }
        for m in rule.mailboxes.as_deref().unwrap_or(&account.watch) {
            set.insert(m.clone());
        }
    }
    match only {
        Some(only) => set.into_iter().filter(|m| m == only).collect(),
        None => set.into_iter().collect(),
    }
}

/// The mailboxes `trash` and `archive` resolve to: configured, else SPECIAL-USE, else the
/// plain default. The server is asked (LIST) only when some rule trashes or archives without
/// naming a mailbox.
async fn special_mailboxes(
    session: &mut Session,
    account: &Account,
    rules: &crate::rules::RuleSet,
) -> Result<(String, String), crate::imap::ImapError> {
    use crate::rules::ast::ActionKind;
    let needs_trash = account.trash.is_none();
    let needs_archive = account.archive.is_none();
    let asked = rules.rules().flat_map(|r| &r.then).any(|a| match a.kind {
        ActionKind::Trash => needs_trash,
        ActionKind::Archive(None) => needs_archive,
        _ => false,
    });
    let entries = if asked {
        session.list().await?
    } else {
        Vec::new()
    };
    Ok((
        resolve_special(
            account.trash.as_deref(),
            &entries,
            SpecialUse::Trash,
            "Trash",
        ),
        resolve_special(
            account.archive.as_deref(),
            &entries,
            SpecialUse::Archive,
            "Archive",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_with_rules_per_account() {
        let yaml = r#"
accounts:
  - { name: a, host: h, username: u, password: p, watch: [INBOX, Lists] }
  - { name: b, host: h, username: u, password: p }
rules:
  - { name: all, when: true, then: mark_read }
  - { name: only-b, when: true, then: mark_read, accounts: [b], mailboxes: [Archive/2025, inbox] }
  - { name: sent, when: true, then: mark_read, mailboxes: [Sent] }
"#;
        let config = crate::config::load_str(yaml, Path::new("/tmp/c.yaml")).unwrap();
        let a = config.account("a").unwrap();
        let b = config.account("b").unwrap();
        let cases: &[(&Account, Option<&str>, &[&str])] = &[
            (a, None, &["INBOX", "Lists", "Sent"]),
            (b, None, &["Archive/2025", "INBOX", "Sent"]),
            (b, Some("Inbox"), &["INBOX"]),
            (a, Some("Nowhere"), &[]),
        ];
        for (account, only, want) in cases {
            let only = only.map(MailboxName::new);
            let want: Vec<MailboxName> = want.iter().map(|m| MailboxName::new(*m)).collect();
            assert_eq!(
                mailboxes_to_sweep(&config, account, only.as_ref()),
                want,
                "{} {only:?}",
                account.name
            );
        }
    }
}
