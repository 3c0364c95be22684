//! `imapsort status`: what the state database knows, per account and mailbox.
//!
//! Reads the database read-only (the daemon may be running, possibly as another user) from the
//! configured `state_dir`. Accounts in the configuration without state yet are listed as such;
//! accounts in the database but no longer in the configuration are marked. With `--shard I/N`
//! only the shard's accounts are shown, whether configured or remembered.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::{OutputFormat, ShardArg, StatusArgs};
use crate::config;
use crate::exit::Exit;
use crate::state::{AccountStatus, JournalEntry, MailboxStatus, StateDb, StatusReport};

/// How many journal rows to show per mailbox.
pub const RECENT_ACTIONS: usize = 10;

/// `--format json`: one document.
#[derive(Debug, Serialize)]
struct StatusOutput<'a> {
    /// Where the database was looked for (from the configuration).
    state_dir: &'a Path,
    /// The database file, `null` when there is none yet.
    database: Option<&'a Path>,
    /// Configured accounts first, in configuration order, then the rest.
    accounts: Vec<AccountOutput>,
}

#[derive(Debug, Serialize)]
struct AccountOutput {
    /// The account's name.
    account: String,
    /// False for an account the database remembers but the configuration no longer has.
    configured: bool,
    /// Empty when the database knows nothing of the account yet.
    mailboxes: Vec<MailboxStatus>,
}

/// Loads the configuration (for `state_dir` and the account names) and prints the status.
/// Exit 0, or 78 when the configuration is invalid (its errors go to stderr).
pub fn run(args: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let path = config::resolve_path(args.config.config.as_deref());
    let config = match config::load(&path) {
        Ok(config) => config,
        Err(err) => {
            for d in err.diagnostics() {
                eprintln!("{d}");
            }
            return Ok(Exit::Config);
        }
    };
    let names: Vec<String> = config
        .accounts
        .iter()
        .map(|a| a.name.clone())
        .filter(|name| args.shard.keeps(name))
        .collect();
    print_status(
        &config.settings.state_dir,
        &names,
        &args.shard,
        args.format,
        out,
    )?;
    Ok(Exit::Ok)
}

/// Prints the status of `state_dir` for the `configured` account names; accounts the database
/// remembers are left out when `shard` does not keep them.
pub fn print_status(
    state_dir: &Path,
    configured: &[String],
    shard: &ShardArg,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let db = StateDb::open_read_only(state_dir)
        .with_context(|| format!("cannot read the state database in {}", state_dir.display()))?;
    let report = match &db {
        Some(db) => db
            .status(RECENT_ACTIONS)
            .context("cannot read the state database")?,
        None => StatusReport::default(),
    };
    let mut accounts = merge(report, configured);
    accounts.retain(|a| shard.keeps(&a.account));
    match format {
        OutputFormat::Json => {
            let doc = StatusOutput {
                state_dir,
                database: db.as_ref().and_then(|db| db.path()),
                accounts,
            };
            serde_json::to_writer(&mut *out, &doc)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            if db.is_none() {
                writeln!(
                    out,
                    "no state yet ({} has no database)",
                    state_dir.display()
                )?;
            } else {
                write_text(&accounts, out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The database's accounts plus configured accounts it does not know yet, configured first in
/// configuration order, then the rest by name.
fn merge(report: StatusReport, configured: &[String]) -> Vec<AccountOutput> {
    let mut known: Vec<AccountStatus> = report.accounts;
    let mut out: Vec<AccountOutput> = configured
        .iter()
        .map(|name| {
            let mailboxes = known
                .iter()
                .position(|a| &a.account == name)
                .map(|i| known.remove(i).mailboxes)
                .unwrap_or_default();
            AccountOutput {
                account: name.clone(),
                configured: true,
                mailboxes,
            }
        })
        .collect();
    out.extend(known.into_iter().map(|a| AccountOutput {
        account: a.account,
        configured: false,
        mailboxes: a.mailboxes,
    }));
    out
}

fn write_text(accounts: &[AccountOutput], out: &mut dyn Write) -> std::io::Result<()> {
    if accounts.is_empty() {
        writeln!(out, "no state yet (no accounts)")?;
    }
    for account in accounts {
        let note = if account.configured {
            ""
        } else {
            " (not in the configuration)"
        };
        writeln!(out, "account {}{note}", account.account)?;
        if account.mailboxes.is_empty() {
            writeln!(out, "  no state yet")?;
        }
        for mailbox in &account.mailboxes {
            write_mailbox(mailbox, out)?;
        }
    }
    Ok(())
}

fn write_mailbox(m: &MailboxStatus, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "  mailbox {}", m.mailbox)?;
    match (m.last_uid, m.uid_validity) {
        (Some(uid), Some(validity)) => {
            writeln!(out, "    last UID       {uid} (UIDVALIDITY {validity})")?
        }
        _ => writeln!(out, "    last UID       none (not selected yet)")?,
    }
    let activity = m.last_activity.map_or_else(|| "never".to_owned(), time);
    writeln!(out, "    last activity  {activity}")?;
    match &m.last_error {
        Some(e) => writeln!(
            out,
            "    last error     {}  {}",
            time(e.at),
            one_line(&e.text)
        )?,
        None => writeln!(out, "    last error     none")?,
    }
    if m.unfinished > 0 {
        writeln!(
            out,
            "    unfinished     {} action(s) of unknown result; checked on the next start",
            m.unfinished
        )?;
    }
    if m.recent_actions.is_empty() {
        writeln!(out, "    recent actions none")?;
    } else {
        writeln!(out, "    recent actions")?;
        for entry in &m.recent_actions {
            writeln!(out, "      {}", action_line(entry))?;
        }
    }
    Ok(())
}

/// `2026-11-26T00:03:20Z  uid 4242  move Lists/dev  [mailing lists]  done`
fn action_line(e: &JournalEntry) -> String {
    let mut line = format!("{}  uid {}  {}", time(e.at), e.uid, e.action);
    if let Some(dest) = &e.destination {
        line.push(' ');
        line.push_str(dest);
    }
    line.push_str(&format!(
        "  [{}]  {}",
        e.rules.join(", "),
        one_line(&e.outcome.to_string())
    ));
    line
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Action, NewJournalEntry, Outcome};
    use crate::vocab::{MailboxName, UidValidity};

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn render(dir: &Path, configured: &[&str], format: OutputFormat) -> String {
        let mut out = Vec::new();
        print_status(
            dir,
            &names(configured),
            &ShardArg::default(),
            format,
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_shard_shows_only_its_accounts_configured_or_remembered() {
        use crate::shard::Shard;
        let dir = tempfile::tempdir().unwrap();
        {
            let mut db = StateDb::open(dir.path()).unwrap();
            for account in ["a", "b", "c", "d", "e", "f"] {
                db.touch(account, &crate::vocab::MailboxName::inbox())
                    .unwrap();
            }
        }
        for index in 0..2 {
            let shard = ShardArg {
                shard: Shard::new(index, 2),
            };
            let mut out = Vec::new();
            // "a", "b" and "c" configured; "d", "e" and "f" only remembered.
            print_status(
                dir.path(),
                &names(&["a", "b", "c"]),
                &shard,
                OutputFormat::Json,
                &mut out,
            )
            .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let shown: Vec<&str> = json["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["account"].as_str().unwrap())
                .collect();
            let want: Vec<&str> = ["a", "b", "c", "d", "e", "f"]
                .into_iter()
                .filter(|n| Shard::of(n, 2) == index)
                .collect();
            assert_eq!(shown, want, "shard {index}/2");
        }
    }

    #[test]
    fn a_state_dir_without_a_database_says_no_state_yet() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(dir.path(), &["personal"], OutputFormat::Text);
        assert!(text.starts_with("no state yet"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&render(dir.path(), &["personal"], OutputFormat::Json)).unwrap();
        assert_eq!(json["database"], serde_json::Value::Null);
        assert_eq!(json["accounts"][0]["account"], "personal");
        assert_eq!(json["accounts"][0]["mailboxes"], serde_json::json!([]));
        // Reading created nothing.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn text_and_json_show_uid_activity_error_and_actions() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut db = StateDb::open(dir.path()).unwrap();
            db.set_last_uid(
                "personal",
                &MailboxName::from("INBOX"),
                UidValidity::new(5).unwrap(),
                4242,
            )
            .unwrap();
            db.record_error(
                "personal",
                &MailboxName::from("INBOX"),
                "connection reset\nby peer",
            )
            .unwrap();
            db.journal_record(
                &NewJournalEntry {
                    account: "personal",
                    mailbox: &MailboxName::from("INBOX"),
                    uid_validity: UidValidity::new(5).unwrap(),
                    uid: 4242,
                    message_id: Some("<a@b>"),
                    rules: &["mailing lists".to_string()],
                    action: Action::Move,
                    destination: Some("Lists/dev"),
                },
                &Outcome::Done,
            )
            .unwrap();
            db.touch("old", &MailboxName::from("INBOX")).unwrap();
        }
        let text = render(dir.path(), &["personal", "work"], OutputFormat::Text);
        let expected_lines = [
            "account personal",
            "  mailbox INBOX",
            "    last UID       4242 (UIDVALIDITY 5)",
            "account work",
            "  no state yet",
            "account old (not in the configuration)",
        ];
        for line in expected_lines {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(text.contains("connection reset by peer"), "{text}");
        assert!(
            text.contains("uid 4242  move Lists/dev  [mailing lists]  done"),
            "{text}"
        );

        let json: serde_json::Value = serde_json::from_str(&render(
            dir.path(),
            &["personal", "work"],
            OutputFormat::Json,
        ))
        .unwrap();
        let accounts = json["accounts"].as_array().unwrap();
        let summary: Vec<(&str, bool)> = accounts
            .iter()
            .map(|a| {
                (
                    a["account"].as_str().unwrap(),
                    a["configured"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("personal", true), ("work", true), ("old", false)]
        );
        let inbox = &accounts[0]["mailboxes"][0];
        assert_eq!(inbox["last_uid"], 4242);
        assert_eq!(inbox["recent_actions"][0]["destination"], "Lists/dev");
        assert_eq!(inbox["recent_actions"][0]["outcome"], "done");
        assert!(
            json["database"]
                .as_str()
                .unwrap()
                .ends_with("state.sqlite3")
        );
    }
}
