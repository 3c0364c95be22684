//! `imapsort test`: evaluate the rules against message files, without a server.
//!
//! Per message: the arrival time is `--received`, else the Date header's time (with its
//! offset), else now; the size is the file's length; flags come from `--flags`. Without
//! `--trigger`, rules of both triggers are evaluated, as in a sweep.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::{OutputFormat, TestArgs, TriggerArg};
use crate::commands::{Warnings, load_config};
use crate::exit::Exit;
use crate::rules::ast::Trigger;
use crate::rules::{EvalContext, Evaluation, FinalKind, Gist, MessageFacts, MessageView, Plan};
use crate::vocab::MailboxName;

/// One message's result, in the shape of RULES.md's `test --format json`.
#[derive(Serialize)]
struct MessageOut<'a> {
    /// The path as given on the command line.
    file: String,
    message_id: Option<&'a str>,
    matched: Vec<&'a str>,
    plan: &'a Plan,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct Document<'a> {
    messages: Vec<MessageOut<'a>>,
}

/// Parse `--received` (RFC 3339), keeping the offset it was written with.
pub fn parse_received(text: &str) -> Result<jiff::Zoned, String> {
    let ts: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|e| format!("--received {text:?} is not an RFC 3339 time: {e}"))?;
    let pieces = jiff::fmt::temporal::Pieces::parse(text.trim())
        .map_err(|e| format!("--received {text:?} is not an RFC 3339 time: {e}"))?;
    let offset = match pieces.offset() {
        Some(jiff::fmt::temporal::PiecesOffset::Numeric(n)) => n.offset(),
        _ => jiff::tz::Offset::UTC,
    };
    Ok(ts.to_zoned(jiff::tz::TimeZone::fixed(offset)))
}

/// Run `imapsort test`; diagnostics go to `err`, results to `out`.
pub fn run(args: &TestArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Exit> {
    let config = match load_config(&args.config, Warnings::Print, err) {
        Ok(c) => c,
        Err(exit) => return Ok(exit),
    };
    let path = &config.path;
    let account = match &args.account {
        Some(name) => match config.account(name) {
            Some(a) => Some(a),
            None => {
                writeln!(
                    err,
                    "imapsort: no account named {name:?} in {}",
                    path.display()
                )?;
                return Ok(Exit::Usage);
            }
        },
        None => config.accounts.first(),
    };
    let received = match args.received.as_deref().map(parse_received).transpose() {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "imapsort: {e}")?;
            return Ok(Exit::Usage);
        }
    };

    // Read every message first: an unreadable one fails the run before any output.
    let mut messages: Vec<(&PathBuf, Vec<u8>)> = Vec::with_capacity(args.messages.len());
    let mut unreadable = false;
    for file in &args.messages {
        match std::fs::read(file) {
            Ok(bytes) => messages.push((file, bytes)),
            Err(e) => {
                writeln!(
                    err,
                    "imapsort: cannot read message file {}: {e}",
                    file.display()
                )?;
                unreadable = true;
            }
        }
    }
    if unreadable {
        return Ok(Exit::NoInput);
    }

    let watch = account.map_or_else(|| vec![MailboxName::inbox()], |a| a.watch.clone());
    let trash = account
        .and_then(|a| a.trash.clone())
        .unwrap_or_else(|| "Trash".into());
    let archive = account
        .and_then(|a| a.archive.clone())
        .unwrap_or_else(|| "Archive".into());
    let flags: Vec<String> = args
        .flags
        .iter()
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    let now = jiff::Timestamp::now();
    let ctx = EvalContext {
        account: account.map(|a| a.name.as_str()),
        mailbox: &args.mailbox,
        watch: &watch,
        trigger: args.trigger.map(|t| match t {
            TriggerArg::New => Trigger::New,
            TriggerArg::Sweep => Trigger::Sweep,
        }),
        now,
        trash: &trash,
        archive: &archive,
        delimiter: None,
        applied: None,
    };

    let mut results: Vec<(String, MessageView, Evaluation)> = Vec::with_capacity(messages.len());
    for (file, bytes) in &messages {
        let facts = MessageFacts {
            flags: flags.clone(),
            size: bytes.len() as u64,
            received: received.clone(),
        };
        let mut view = MessageView::parse(bytes, facts);
        if view.received().is_none() {
            let arrival = view
                .date()
                .cloned()
                .unwrap_or_else(|| now.to_zoned(jiff::tz::TimeZone::system()));
            view.set_received(Some(arrival));
        }
        let evaluation = config.rules.evaluate(&view, &ctx);
        results.push((file.display().to_string(), view, evaluation));
    }

    match args.format {
        OutputFormat::Json => {
            let doc = Document {
                messages: results
                    .iter()
                    .map(|(file, view, ev)| MessageOut {
                        file: file.clone(),
                        message_id: view.message_id(),
                        matched: ev.matched.iter().map(|m| m.rule.as_str()).collect(),
                        plan: &ev.plan,
                        warnings: &ev.warnings,
                    })
                    .collect(),
            };
            serde_json::to_writer(&mut *out, &doc).context("writing the JSON document")?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            for (i, (file, view, ev)) in results.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                write_text(out, file, view, ev, &args.mailbox)?;
            }
        }
    }
    Ok(Exit::Ok)
}

/// The human-readable report of one message: what matched and why, warnings, the plan.
fn write_text(
    out: &mut dyn Write,
    file: &str,
    view: &MessageView,
    ev: &Evaluation,
    mailbox: &str,
) -> std::io::Result<()> {
    writeln!(out, "{file} {}", Gist::of(view))?;
    if ev.matched.is_empty() {
        writeln!(out, "  no rule matched")?;
    }
    for m in &ev.matched {
        writeln!(out, "  matched {:?}: {}", m.rule, m.because)?;
    }
    for w in &ev.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    let plan = &ev.plan;
    let list = |v: &[String]| v.join(", ");
    if !plan.add_flags.is_empty() {
        writeln!(out, "  add flags:    {}", list(&plan.add_flags))?;
    }
    if !plan.remove_flags.is_empty() {
        writeln!(out, "  remove flags: {}", list(&plan.remove_flags))?;
    }
    if !plan.add_labels.is_empty() {
        writeln!(out, "  add labels:   {}", list(&plan.add_labels))?;
    }
    for c in &plan.copy {
        writeln!(out, "  copy to:      {c}")?;
    }
    match &plan.final_action {
        None => writeln!(out, "  stays in:     {mailbox}")?,
        Some(f) => {
            let to = f.mailbox.as_deref().unwrap_or_default();
            match f.action {
                FinalKind::Move => writeln!(out, "  move to:      {to}")?,
                FinalKind::Archive => writeln!(out, "  archive to:   {to}")?,
                FinalKind::Trash => writeln!(out, "  trash to:     {to}")?,
                FinalKind::Delete => writeln!(out, "  delete (expunge)")?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_keeps_its_offset() {
        let cases = [
            ("2026-03-01T23:30:00+05:30", 19800, 1),
            ("2026-03-01T23:30:00Z", 0, 1),
            ("2026-03-01T23:30:00-08:00", -28800, 1),
        ];
        for (text, offset, day) in cases {
            let z = parse_received(text).expect(text);
            assert_eq!(z.offset().seconds(), offset, "{text}");
            assert_eq!(z.day(), day, "{text}");
        }
        assert!(parse_received("yesterday").is_err());
    }
}
