//! What `imapsort sweep` prints on stdout: a line per message acted on (text, or JSON as in
//! RULES.md), as the state database records it, and a summary line at the end. A text line
//! names the message as a person knows it, by sender and subject:
//!
//! `personal INBOX 42 Alice Example "Your invoice" [invoices] move Invoices (done)`
//!
//! JSON lines carry the Message-ID instead.

use std::io::Write;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::pass::{MessageResult, Report, Summary};
use crate::rules::Plan;
use crate::vocab::MailboxName;

/// Prints each message acted on as the pass hands it over.
pub(super) struct Printer<'a> {
    /// The account being swept.
    pub account: &'a str,
    /// The mailbox being swept (set before each pass).
    pub mailbox: MailboxName,
    pub format: OutputFormat,
    /// Text output says "dry run" instead of "done".
    pub dry_run: bool,
    pub out: &'a mut dyn Write,
}

/// One line of `--format json` (RULES.md).
#[derive(Serialize)]
struct JsonLine<'a> {
    account: &'a str,
    mailbox: &'a MailboxName,
    uid: u32,
    message_id: Option<&'a str>,
    rules: &'a [String],
    plan: &'a Plan,
    done: bool,
}

impl Report for Printer<'_> {
    fn message(&mut self, r: &MessageResult) {
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
                    r.gist,
                    r.rules.join(", "),
                    describe_plan(&r.plan),
                )
            }
        };
        let _ = writeln!(self.out, "{line}");
        for w in &r.warnings {
            tracing::warn!(account = %self.account, mailbox = %self.mailbox, uid = r.uid.get(), "{w}");
        }
    }
}

/// `flag \\Seen; copy Acc; move Lists/x`: the plan in words, in the order it is carried out.
fn describe_plan(plan: &Plan) -> String {
    let words: Vec<String> = plan.changes().iter().map(|c| c.words(false)).collect();
    words.join("; ")
}

/// `{"summary": {"examined": N, "matched": N, "moved": N, "errors": N}}`, keys in RULES.md's
/// order.
fn summary_json(s: &Summary) -> String {
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

pub(super) fn print_summary(out: &mut dyn Write, format: OutputFormat, dry_run: bool, s: &Summary) {
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
    fn summary_line_keys_in_documented_order() {
        let s = Summary {
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
