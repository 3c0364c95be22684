//! `imapsort log`: what was done to which message, newest first, from the history in the state
//! database (read-only, like `status`: the daemon may be running, possibly as another user).
//!
//! `--format json` prints one object per entry and line (RULES.md, "History and undo"):
//! `{"id","time","account","mailbox","uid","message_id","from","subject","rules","plan",
//! "done","undone"}`. Text prints one aligned line per entry:
//!
//! ```text
//!  12  2026-11-26T10:03:20Z  personal  [mailing lists]  move -> Lists/dev  news@lists.example  Weekly digest  (undone)
//! ```
//!
//! Exit 0, or 78 when the configuration is invalid.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use crate::cli::{LogArgs, OutputFormat};
use crate::config;
use crate::exit::Exit;
use crate::rules::Plan;
use crate::shard::ShardArg;
use crate::state::{Entry, Selection, StateDb, StateError};
use crate::vocab::MailboxName;

/// One line of `--format json`, keys in RULES.md's order.
#[derive(Serialize)]
struct JsonLine<'a> {
    id: i64,
    time: String,
    account: &'a str,
    mailbox: &'a MailboxName,
    uid: u32,
    message_id: Option<&'a str>,
    from: Option<&'a str>,
    subject: Option<&'a str>,
    rules: &'a [String],
    plan: &'a Plan,
    done: bool,
    undone: bool,
}

/// Loads the configuration (for `state_dir`) and prints the entries asked for.
pub fn run(args: &LogArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
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
    let now = jiff::Timestamp::now();
    let selection = Selection {
        accounts: args.account.clone().map(|a| vec![a]),
        rule: args.rule.clone(),
        since: args.since.map(|w| w.resolve(now)),
        limit: Some(args.limit),
        done_only: false,
    };
    let state_dir = &config.settings.state_dir;
    let db = StateDb::open_read_only(state_dir)
        .with_context(|| format!("cannot read the state database in {}", state_dir.display()))?;
    let entries = match &db {
        Some(db) => {
            let mut selection = selection;
            selection.accounts = in_shard(db, selection.accounts, &args.shard)?;
            db.history(&selection).context("cannot read the history")?
        }
        None => Vec::new(),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    print(&entries, args.format, &mut out)?;
    out.flush()?;
    if entries.is_empty() && args.format == OutputFormat::Text {
        eprintln!("imapsort: nothing in the history matches");
    }
    Ok(Exit::Ok)
}

/// The accounts to look at: `accounts` (`None`: all), narrowed to those of `shard` when it
/// is given (accounts the history knows, configured or not).
pub fn in_shard(
    db: &StateDb,
    accounts: Option<Vec<String>>,
    shard: &ShardArg,
) -> Result<Option<Vec<String>>, StateError> {
    if shard.shard.is_none() {
        return Ok(accounts);
    }
    let known: Vec<String> = match accounts {
        Some(list) => list,
        None => db
            .history_counts()?
            .into_iter()
            .map(|(name, _, _)| name)
            .collect(),
    };
    Ok(Some(known.into_iter().filter(|a| shard.keeps(a)).collect()))
}

/// Prints `entries` (newest first) in `format`.
pub fn print(entries: &[Entry], format: OutputFormat, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            for e in entries {
                serde_json::to_writer(&mut *out, &json_line(e))?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        OutputFormat::Text => write_text(entries, out),
    }
}

fn json_line(e: &Entry) -> JsonLine<'_> {
    JsonLine {
        id: e.id.0,
        time: e.at.to_string(),
        account: &e.account,
        mailbox: &e.mailbox,
        uid: e.uid,
        message_id: e.message_id.as_deref(),
        from: e.from.as_deref(),
        subject: e.subject.as_deref(),
        rules: &e.rules,
        plan: &e.plan,
        done: e.done,
        undone: e.undone_at.is_some(),
    }
}

/// Columns that are padded to their widest value (capped, so one long rule list does not
/// push every line far to the right).
const ALIGNED: usize = 6;
const WIDEST: usize = 40;

fn write_text(entries: &[Entry], out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<[String; ALIGNED + 2]> = entries.iter().map(text_columns).collect();
    let mut widths = [0usize; ALIGNED];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count().min(WIDEST));
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if cell.is_empty() && i >= ALIGNED {
                continue;
            }
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths
                .get(i)
                .map_or(0, |w| w.saturating_sub(cell.chars().count()));
            if i == 0 {
                // The id, right-aligned.
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// id, time, account, [rules], what was done, From, Subject, status.
fn text_columns(e: &Entry) -> [String; ALIGNED + 2] {
    let status = if e.undone_at.is_some() {
        "(undone)"
    } else if !e.done {
        "(not done)"
    } else {
        ""
    };
    [
        e.id.0.to_string(),
        e.at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        e.account.clone(),
        format!("[{}]", e.rules.join(", ")),
        what_was_done(&e.plan),
        one_line(e.from.as_deref().unwrap_or("-")),
        e.subject
            .as_deref()
            .map_or_else(|| "-".to_owned(), |s| format!("{:?}", one_line(s))),
        status.to_owned(),
    ]
}

/// `flag $Urgent, copy -> Accounting, move -> Lists/x`: the plan in words, in the order it
/// is carried out.
pub fn what_was_done(plan: &Plan) -> String {
    let words: Vec<String> = plan.changes().iter().map(|c| c.words(true)).collect();
    words.join(", ")
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{FinalAction, FinalKind};
    use crate::state::EntryId;
    use crate::vocab::UidValidity;

    fn entry(id: i64, rules: &[&str], plan: Plan) -> Entry {
        Entry {
            id: EntryId(id),
            at: "2026-11-26T10:03:20Z".parse().unwrap(),
            account: "personal".into(),
            mailbox: MailboxName::inbox(),
            uid_validity: UidValidity::new(7).unwrap(),
            uid: 42,
            message_id: Some("<a@b>".into()),
            from: Some("news@lists.example".into()),
            subject: Some("Weekly\tdigest".into()),
            rules: rules.iter().map(|r| r.to_string()).collect(),
            plan,
            done: true,
            moved_to: None,
            copies: vec![],
            undone_at: None,
        }
    }

    fn moving(to: &str) -> Plan {
        Plan {
            final_action: Some(FinalAction {
                action: FinalKind::Move,
                mailbox: Some(to.into()),
            }),
            ..Plan::default()
        }
    }

    #[test]
    fn json_lines_have_exactly_the_documented_keys_in_order() {
        let mut out = Vec::new();
        print(
            &[entry(12, &["lists"], moving("Lists/x"))],
            OutputFormat::Json,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        let mut keys: Vec<&str> = v.keys().map(String::as_str).collect();
        let documented = [
            "id",
            "time",
            "account",
            "mailbox",
            "uid",
            "message_id",
            "from",
            "subject",
            "rules",
            "plan",
            "done",
            "undone",
        ];
        // In the documented order on the line (the parsed map sorts them).
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        assert!(documented.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        keys.sort_unstable();
        let mut want = documented.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v["time"], "2026-11-26T10:03:20Z");
        assert_eq!(v["plan"]["final"]["action"], "move");
        assert_eq!(v["plan"]["add_flags"], serde_json::json!([]));
        assert_eq!(v["undone"], false);
    }

    #[test]
    fn text_lines_are_aligned_and_say_what_was_done() {
        let mut flagged = entry(
            9,
            &["invoices"],
            Plan {
                add_flags: vec!["$Urgent".into()],
                copy: vec!["Accounting".into()],
                ..Plan::default()
            },
        );
        flagged.undone_at = Some("2026-11-27T00:00:00Z".parse().unwrap());
        flagged.subject = None;
        let mut failed = entry(10, &["lists", "x"], moving("Lists/x"));
        failed.done = false;
        let mut out = Vec::new();
        print(
            &[entry(112, &["lists"], moving("Lists/x")), failed, flagged],
            OutputFormat::Text,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "112  2026-11-26T10:03:20Z  personal  [lists]     move -> Lists/x                   news@lists.example  \"Weekly digest\"",
                " 10  2026-11-26T10:03:20Z  personal  [lists, x]  move -> Lists/x                   news@lists.example  \"Weekly digest\"  (not done)",
                "  9  2026-11-26T10:03:20Z  personal  [invoices]  flag $Urgent, copy -> Accounting  news@lists.example  -  (undone)",
            ]
        );
    }
}
