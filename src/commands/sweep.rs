//! `imapsort sweep`: one pass of all rules (both triggers) over the existing mail of each
//! account's mailboxes that have rules.
//!
//! Output (stdout): one line per message acted on, then a summary; `--format json` prints one
//! JSON object per line (RULES.md). Errors and warnings go to stderr through `tracing` and as
//! plain lines. Exit 0; 69 when an account's server cannot be reached or logged in to (the
//! other accounts are still swept); 78 for an invalid configuration. With `--shard I/N` only
//! the shard's accounts are swept (none at all is not an error: another instance has them).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::{OutputFormat, SweepArgs};
use crate::config::{self, Account, Config};
use crate::execute::Executor;
use crate::exit::Exit;
use crate::imap::resolve_special;
use crate::imap::{Session, SpecialUse};
use crate::rules::Plan;
use crate::rules::mailbox_eq;
mod state;

use state::StateLink;

use crate::imap::MailboxInfo;
use crate::imap::uidset::Uid;
use crate::sweep::{
    MessageResult, Scope, SweepOptions, SweepSink, SweepSummary, server_caps, sweep_mailbox,
};

/// The command from `main`: its own tokio runtime, problems to stderr.
pub fn run_blocking(args: &SweepArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(run(args, out, &mut std::io::stderr().lock())))
}

/// Runs the command. `out` gets the results, `err` the problems.
pub async fn run(args: &SweepArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let path = config::resolve_path(args.config.config.as_deref());
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return Exit::Config;
        }
    };
    for w in &config.warnings {
        let _ = writeln!(err, "{w}");
    }
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
    let config_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let now = jiff::Timestamp::now();
    let mut total = SweepSummary::default();
    let mut exit = Exit::Ok;
    let mut state = StateLink::open(&config.settings.state_dir, args.dry_run, err);
    // One write per 64 KiB rather than one per message: at 100,000 messages the per-line
    // writes woke the reader of the pipe 100,000 times.
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, out);
    let out: &mut dyn Write = &mut buffered;
    for account in accounts {
        let mut printer = Printer {
            account: &account.name,
            mailbox: String::new(),
            format: args.format,
            dry_run: args.dry_run,
            out: &mut *out,
            state: &mut state,
        };
        match sweep_account(&config, account, config_dir, args, now, &mut printer, err).await {
            Ok(summary) => total.add(&summary),
            Err(AccountError::Unavailable(summary)) => {
                total.add(&summary);
                exit = Exit::Unavailable;
            }
        }
    }
    print_summary(out, args.format, args.dry_run, &total);
    let _ = out.flush();
    exit
}

/// How sweeping an account ended badly.
enum AccountError {
    /// The server could not be reached or logged in to, or the connection broke; what was
    /// done before stands.
    Unavailable(SweepSummary),
}

/// The mailboxes of `account` that some rule applies to (its `mailboxes:`, else the watch
/// list), in a stable order; `only` narrows to one.
pub fn mailboxes_to_sweep(config: &Config, account: &Account, only: Option<&str>) -> Vec<String> {
    let mut set = BTreeSet::new();
    for rule in config.rules.rules() {
        if let Some(accounts) = &rule.accounts
            && !accounts.contains(&account.name)
        {
            continue;
        }
        for m in rule.mailboxes.as_deref().unwrap_or(&account.watch) {
            // INBOX is case-insensitive: keep one spelling.
            let m = if m.eq_ignore_ascii_case("inbox") {
                "INBOX"
            } else {
                m.as_str()
            };
            set.insert(m.to_owned());
        }
    }
    match only {
        Some(only) => set.into_iter().filter(|m| mailbox_eq(m, only)).collect(),
        None => set.into_iter().collect(),
    }
}

async fn sweep_account(
    config: &Config,
    account: &Account,
    config_dir: &Path,
    args: &SweepArgs,
    now: jiff::Timestamp,
    printer: &mut Printer<'_>,
    err: &mut dyn Write,
) -> Result<SweepSummary, AccountError> {
    let mut summary = SweepSummary::default();
    let mailboxes = mailboxes_to_sweep(config, account, args.mailbox.as_deref());
    if mailboxes.is_empty() {
        tracing::info!(account = %account.name, "no rules apply to this account's mailboxes");
        return Ok(summary);
    }
    let mut session = match crate::imap::connect_account(account, config_dir).await {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                err,
                "imapsort: account {}: server unavailable: {}",
                account.name,
                chain(&e)
            );
            return Err(AccountError::Unavailable(summary));
        }
    };
    let (trash, archive) = match special_mailboxes(&mut session, account, &config.rules).await {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(
                err,
                "imapsort: account {}: listing mailboxes failed: {}",
                account.name,
                chain(&e)
            );
            return Err(AccountError::Unavailable(summary));
        }
    };
    let mut executor = Executor::new(server_caps(&session));
    let mut broken = false;
    for mailbox in &mailboxes {
        let opts = SweepOptions {
            account: &account.name,
            mailbox,
            watch: &account.watch,
            trigger: None,
            trash: &trash,
            archive: &archive,
            now,
            scope: Scope::All,
            dry_run: args.dry_run,
        };
        printer.mailbox = mailbox.clone();
        printer.state.start(&account.name, mailbox);
        let result = match printer.state.reconcile(&mut session, &config.rules).await {
            Ok(()) => {
                sweep_mailbox(&mut session, &config.rules, &opts, &mut executor, printer).await
            }
            Err(source) => Err(crate::sweep::SweepError::Select {
                mailbox: mailbox.clone(),
                source,
            }),
        };
        printer.state.flush();
        match result {
            Ok(s) => summary.add(&s),
            Err(e) if e.imap().is_connection_fatal() => {
                let _ = writeln!(err, "imapsort: account {}: {}", account.name, chain(&e));
                broken = true;
                break;
            }
            Err(e) => {
                // A mailbox that does not exist (or cannot be read) does not stop the others.
                let _ = writeln!(err, "imapsort: account {}: {}", account.name, chain(&e));
                summary.errors += 1;
            }
        }
    }
    if !broken {
        let _ = session.logout().await;
        Ok(summary)
    } else {
        Err(AccountError::Unavailable(summary))
    }
}

/// The mailboxes `trash` and `archive` resolve to: configured, else SPECIAL-USE, else the
/// plain default.
/// The server is asked (LIST) only when some rule trashes or archives without naming a mailbox.
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

/// An error with its causes, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Prints each message acted on as it comes.
struct Printer<'a> {
    /// The account being swept.
    account: &'a str,
    /// The mailbox being swept (set before each pass).
    mailbox: String,
    format: OutputFormat,
    /// Text output says "would" instead of reporting success.
    dry_run: bool,
    out: &'a mut dyn Write,
    /// Applied rules, the journal.
    state: &'a mut StateLink,
}

/// One line of `--format json` (RULES.md).
#[derive(Serialize)]
struct JsonLine<'a> {
    account: &'a str,
    mailbox: &'a str,
    uid: u32,
    message_id: Option<&'a str>,
    rules: &'a [String],
    plan: &'a Plan,
    done: bool,
}

impl SweepSink for Printer<'_> {
    fn selected(&mut self, info: &MailboxInfo) {
        self.state.selected(info);
    }

    fn applied_to(
        &mut self,
        messages: &[(Uid, Option<&str>)],
    ) -> std::collections::HashMap<Uid, std::collections::HashSet<String>> {
        self.state.applied(messages)
    }

    fn before_execute(&mut self, planned: &[MessageResult]) {
        // What the previous batch did is shown before the next batch's commands go out.
        let _ = self.out.flush();
        self.state.before_execute(planned);
    }

    fn message(&mut self, r: &MessageResult) {
        self.state.message(r);
        if !r.acted_on() {
            return;
        }
        let line = match self.format {
            OutputFormat::Json => serde_json::to_string(&JsonLine {
                account: self.account,
                mailbox: &self.mailbox,
                uid: r.uid.get(),
                message_id: r.message_id.as_deref(),
                rules: &r.rules,
                plan: &r.plan,
                done: r.done,
            })
            .unwrap_or_default(),
            OutputFormat::Text => {
                let status = match (&r.error, self.dry_run) {
                    (Some(e), _) => format!("FAILED: {e}"),
                    (None, true) => "dry run".to_owned(),
                    (None, false) => "done".to_owned(),
                };
                format!(
                    "{} {} {} {} [{}] {} ({status})",
                    self.account,
                    self.mailbox,
                    r.uid,
                    r.message_id.as_deref().unwrap_or("-"),
                    r.rules.join(", "),
                    describe_plan(&r.plan),
                )
            }
        };
        let _ = writeln!(self.out, "{line}");
        for w in &r.warnings {
            tracing::warn!(account = self.account, mailbox = %self.mailbox, uid = r.uid.get(), "{w}");
        }
    }
}

/// `flag \Seen; copy Acc; move Lists/x` — the plan in words, in the order it is carried out.
pub fn describe_plan(plan: &Plan) -> String {
    let mut parts = Vec::new();
    if !plan.add_flags.is_empty() {
        parts.push(format!("flag {}", plan.add_flags.join(" ")));
    }
    if !plan.remove_flags.is_empty() {
        parts.push(format!("unflag {}", plan.remove_flags.join(" ")));
    }
    if !plan.add_labels.is_empty() {
        parts.push(format!("label {}", plan.add_labels.join(" ")));
    }
    for c in &plan.copy {
        parts.push(format!("copy {c}"));
    }
    if let Some(f) = &plan.final_action {
        let verb = serde_json::to_value(f.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match &f.mailbox {
            Some(m) => parts.push(format!("{verb} {m}")),
            None => parts.push(verb),
        }
    }
    parts.join("; ")
}

/// `{"summary": {"examined": N, "matched": N, "moved": N, "errors": N}}`, keys in RULES.md's
/// order.
fn summary_json(s: &SweepSummary) -> String {
    #[derive(Serialize)]
    struct Counts {
        examined: u64,
        matched: u64,
        moved: u64,
        errors: u64,
    }
    #[derive(Serialize)]
    struct Line {
        summary: Counts,
    }
    serde_json::to_string(&Line {
        summary: Counts {
            examined: s.examined,
            matched: s.matched,
            moved: s.moved,
            errors: s.errors,
        },
    })
    .unwrap_or_default()
}

fn print_summary(out: &mut dyn Write, format: OutputFormat, dry_run: bool, s: &SweepSummary) {
    let line = match format {
        OutputFormat::Json => summary_json(s),
        OutputFormat::Text => format!(
            "examined {}, matched {}, moved {}, errors {}{}",
            s.examined,
            s.matched,
            s.moved,
            s.errors,
            if dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        ),
    };
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{FinalAction, FinalKind};

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
            assert_eq!(
                mailboxes_to_sweep(&config, account, *only),
                *want,
                "{} {only:?}",
                account.name
            );
        }
    }

    #[test]
    fn summary_line_keys_in_documented_order() {
        let s = SweepSummary {
            examined: 10,
            matched: 3,
            moved: 2,
            errors: 1,
            highest_uid: None,
        };
        assert_eq!(
            summary_json(&s),
            r#"{"summary":{"examined":10,"matched":3,"moved":2,"errors":1}}"#
        );
    }

    #[test]
    fn plans_read_in_execution_order() {
        let plan = Plan {
            add_flags: vec!["\\Seen".into(), "$Invoice".into()],
            remove_flags: vec!["\\Flagged".into()],
            add_labels: vec![],
            copy: vec!["Accounting/2026".into()],
            final_action: Some(FinalAction {
                action: FinalKind::Archive,
                mailbox: Some("Archive".into()),
            }),
        };
        assert_eq!(
            describe_plan(&plan),
            "flag \\Seen $Invoice; unflag \\Flagged; copy Accounting/2026; archive Archive"
        );
        let delete = Plan {
            final_action: Some(FinalAction {
                action: FinalKind::Delete,
                mailbox: None,
            }),
            ..Plan::default()
        };
        assert_eq!(describe_plan(&delete), "delete");
    }
}
