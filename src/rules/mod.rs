//! The rules engine. PURE: no tokio, no async-imap, no I/O.
//!
//! [`RuleSet::compile`] turns the rule AST ([`ast`]) into matchers, reporting every invalid
//! regex and template at once. A [`MessageView`] is one message decoded once (headers
//! unfolded and RFC 2047-decoded, addresses, List-Id, flags, size, dates, attachments, body);
//! [`RuleSet::evaluate`] tries the rules in order against it and returns an [`Evaluation`]:
//! which rules matched and why, the [`Plan`] (only real changes) and warnings.
//! [`RuleSet::needs`] tells the IMAP layer what to fetch.

pub mod ast;
mod cond;
mod eval;
mod gist;
mod guard;
mod index;
mod matcher;
pub(crate) mod plan;
mod subject_set;
mod template;
mod view;

use std::collections::{BTreeSet, HashSet};

pub use cond::has_age_condition;
pub use gist::Gist;
pub use plan::{Change, FinalAction, FinalKind, Plan};
pub use view::{Attachment, MessageFacts, MessageView};

use crate::vocab::MailboxName;
use ast::{ActionKind, Trigger};
use cond::{Cond, CondError};
use index::RuleIndex;
use subject_set::SubjectSets;
use template::Template;

/// A compiled rule set: the rules as written plus their matchers, in file order.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// As written: other layers (SEARCH push-down, `check`) read these.
    rules: Vec<ast::Rule>,
    /// Parallel to `rules`.
    compiled: Vec<CompiledRule>,
    /// Rules guarded by exact addresses, domains or List-Ids, found by lookup.
    index: RuleIndex,
    /// Every Subject regex in one search per message, when there are several.
    subject_sets: Option<SubjectSets>,
}

/// One rule, ready to evaluate.
#[derive(Debug)]
struct CompiledRule {
    when: Cond,
    actions: Vec<CompiledAction>,
    /// `on:`, or the default (sweep when `when` has an age condition, else new).
    triggers: Vec<Trigger>,
    /// Evaluation ends after this rule when it matches (terminal action, `stop`).
    ends: bool,
    /// Some template names a regex capture: collect captures when the rule matches.
    uses_captures: bool,
}

#[derive(Debug)]
enum CompiledAction {
    Move(Template),
    Copy(Template),
    Archive(Option<Template>),
    Trash,
    Delete,
    Flag(Vec<FlagName>),
    Unflag(Vec<FlagName>),
    Label(Vec<String>),
    Stop,
}

/// A flag of a `flag`/`unflag` action, trimmed and folded once, at compile time.
#[derive(Debug)]
struct FlagName {
    /// Lower case: flags compare case-insensitively.
    lower: Box<str>,
    /// As written (trimmed): what the plan asks the server for.
    spelling: Box<str>,
}

impl FlagName {
    /// Blank names are dropped: they change nothing.
    fn list(flags: &[impl AsRef<str>]) -> Vec<FlagName> {
        flags
            .iter()
            .map(|f| f.as_ref().trim())
            .filter(|f| !f.is_empty())
            .map(|f| FlagName {
                lower: f.to_lowercase().into_boxed_str(),
                spelling: f.into(),
            })
            .collect()
    }
}

/// An error found while compiling a rule (an invalid regex, an unknown template variable).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("rule {rule:?}: {message}")]
pub struct CompileError {
    pub span: ast::Span,
    /// The rule's name.
    pub rule: String,
    pub message: String,
}

/// Where and how a message is evaluated.
#[derive(Clone, Debug)]
pub struct EvalContext<'a> {
    /// The account's name; `None` in `test` without accounts (rules naming accounts skip).
    pub account: Option<&'a str>,
    /// The mailbox the message is in.
    pub mailbox: &'a MailboxName,
    /// The account's watch list: the default `mailboxes` of a rule.
    pub watch: &'a [MailboxName],
    /// `None`: rules of both triggers (test, sweep).
    pub trigger: Option<Trigger>,
    /// The time age conditions are measured from.
    pub now: jiff::Timestamp,
    /// Resolved trash mailbox for `trash`.
    pub trash: &'a str,
    /// Resolved archive mailbox for a bare `archive`.
    pub archive: &'a str,
    /// The server's hierarchy delimiter, replaced by `_` in template values (as is `/`).
    pub delimiter: Option<char>,
    /// Rules (by name) already applied to this message: they still match and still end
    /// evaluation, but contribute no actions. A name marked with [`undone_marker`] is a rule
    /// whose work on this message was taken back (`imapsort undo`): evaluation passes it by
    /// as if it did not exist.
    pub applied: Option<&'a HashSet<String>>,
}

/// The outcome for one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Rules whose `when` held, in order, up to the one that ended evaluation.
    pub matched: Vec<Match>,
    pub plan: Plan,
    /// Skipped actions, suspicious messages (several From headers).
    pub warnings: Vec<String>,
}

/// A rule that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub rule: String,
    /// The condition that held, human readable.
    pub because: String,
}

/// How an applied set marks a rule whose work on the message was undone.
pub const UNDONE_PREFIX: &str = "\u{1}undone ";

/// The applied-set entry saying that `rule`'s work on the message was undone: the rule is
/// never applied to it again, and does not end evaluation either (as if it did not exist).
/// Starts with a control character, so no rule's name (one line of YAML text) is mistaken
/// for it.
pub fn undone_marker(rule: &str) -> String {
    format!("{UNDONE_PREFIX}{rule}")
}

/// What the IMAP layer must fetch for a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchNeeds {
    /// Header names for `BODY.PEEK[HEADER.FIELDS (...)]`; `None`: the whole header block.
    /// Always includes Message-ID (the journal's and the applied records' identity), From
    /// and Subject (the history keeps both; text output names a message by them).
    pub headers: Option<BTreeSet<String>>,
    /// Some rule has a `body` condition.
    pub body: bool,
    /// Some rule has an attachment condition (fetch BODYSTRUCTURE).
    pub attachments: bool,
    /// Some rule tests flags or keywords, or sets or clears them (a plan holds only the flag
    /// changes a message does not have yet): fetch FLAGS.
    pub flags: bool,
    /// Some rule has a size condition: fetch RFC822.SIZE.
    pub size: bool,
    /// Some rule has an age condition or a `{year}`/`{month}`/`{day}` template: fetch
    /// INTERNALDATE.
    pub received: bool,
}

/// The triggers a rule runs on: `on:` as written, else sweep when `when` has an age
/// condition, else new.
pub fn effective_triggers(rule: &ast::Rule) -> Vec<Trigger> {
    match &rule.on {
        Some(on) if !on.is_empty() => on.clone(),
        _ if has_age_condition(&rule.when) => vec![Trigger::Sweep],
        _ => vec![Trigger::New],
    }
}

impl RuleSet {
    /// Compile the rules; every error of every rule is returned at once.
    pub fn compile(rules: Vec<ast::Rule>) -> Result<RuleSet, Vec<CompileError>> {
        let mut errors = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in &rules {
            let mut cond_errors: Vec<CondError> = Vec::new();
            let when = Cond::compile(&rule.when, &mut cond_errors);
            let captures = when.capture_names();
            let mut actions = Vec::with_capacity(rule.then.len());
            for action in &rule.then {
                let template = |src: &str| {
                    Template::parse(src, &captures).map_err(|message| CondError {
                        span: action.span,
                        message,
                    })
                };
                let compiled_action = match &action.kind {
                    ActionKind::Move(t) => template(t).map(CompiledAction::Move),
                    ActionKind::Copy(t) => template(t).map(CompiledAction::Copy),
                    ActionKind::Archive(Some(t)) => {
                        template(t).map(|t| CompiledAction::Archive(Some(t)))
                    }
                    ActionKind::Archive(None) => Ok(CompiledAction::Archive(None)),
                    ActionKind::Trash => Ok(CompiledAction::Trash),
                    ActionKind::Delete => Ok(CompiledAction::Delete),
                    ActionKind::Flag(f) => Ok(CompiledAction::Flag(FlagName::list(f))),
                    ActionKind::Unflag(f) => Ok(CompiledAction::Unflag(FlagName::list(f))),
                    ActionKind::MarkRead => Ok(CompiledAction::Flag(FlagName::list(&["\\Seen"]))),
                    ActionKind::MarkUnread => {
                        Ok(CompiledAction::Unflag(FlagName::list(&["\\Seen"])))
                    }
                    ActionKind::Label(l) => Ok(CompiledAction::Label(l.clone())),
                    ActionKind::Stop => Ok(CompiledAction::Stop),
                };
                match compiled_action {
                    Ok(a) => actions.push(a),
                    Err(e) => cond_errors.push(e),
                }
            }
            errors.extend(cond_errors.into_iter().map(|e| CompileError {
                span: e.span,
                rule: rule.name.clone(),
                message: e.message,
            }));
            let uses_captures = actions.iter().any(|a| match a {
                CompiledAction::Move(t)
                | CompiledAction::Copy(t)
                | CompiledAction::Archive(Some(t)) => {
                    t.vars().any(|v| matches!(v, template::Var::Capture(_)))
                }
                _ => false,
            });
            let ends = rule.stop
                || rule
                    .then
                    .iter()
                    .any(|a| a.kind.is_terminal() || a.kind == ActionKind::Stop);
            compiled.push(CompiledRule {
                when,
                actions,
                triggers: effective_triggers(rule),
                ends,
                uses_captures,
            });
        }
        if errors.is_empty() {
            let index = RuleIndex::build(compiled.iter().map(|c| &c.when));
            let mut patterns = Vec::new();
            for c in &mut compiled {
                c.when.assign_subject_slots(&mut patterns);
            }
            let subject_sets = SubjectSets::build(&patterns);
            if subject_sets.is_none() {
                compiled
                    .iter_mut()
                    .for_each(|c| c.when.clear_subject_slots());
            }
            Ok(RuleSet {
                rules,
                compiled,
                index,
                subject_sets,
            })
        } else {
            Err(errors)
        }
    }

    /// The rules as written, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &ast::Rule> {
        self.rules.iter()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The effective triggers of rule `index` (file order).
    pub fn triggers(&self, index: usize) -> &[Trigger] {
        &self.compiled[index].triggers
    }

    /// True when some rule runs on `trigger`.
    pub fn has_trigger(&self, trigger: Trigger) -> bool {
        self.compiled.iter().any(|c| c.triggers.contains(&trigger))
    }

    /// Whether rule `index` applies to this account and mailbox (triggers aside).
    pub fn applies_to(
        &self,
        index: usize,
        account: Option<&str>,
        mailbox: &MailboxName,
        watch: &[MailboxName],
    ) -> bool {
        let rule = &self.rules[index];
        let account_ok = match &rule.accounts {
            None => true,
            Some(list) => account.is_some_and(|a| list.iter().any(|x| x == a)),
        };
        let mailboxes = rule.mailboxes.as_deref().unwrap_or(watch);
        account_ok && mailboxes.contains(mailbox)
    }

    /// What the IMAP layer must fetch so that every rule can be evaluated.
    pub fn needs(&self) -> FetchNeeds {
        // Message-ID identifies a message in the journal and the applied records; From is
        // what most rules read (and what logs name); the history keeps From and Subject, and
        // text output names a message by them (`Gist`).
        let mut c = cond::Needs {
            headers: vec![
                "message-id".to_owned(),
                "from".to_owned(),
                "subject".to_owned(),
            ],
            ..cond::Needs::default()
        };
        for (rule, compiled) in self.rules.iter().zip(&self.compiled) {
            cond::collect_needs(&rule.when, &mut c);
            for action in &compiled.actions {
                match action {
                    CompiledAction::Move(t)
                    | CompiledAction::Copy(t)
                    | CompiledAction::Archive(Some(t)) => {
                        for var in t.vars() {
                            match var {
                                template::Var::ListId => c.headers.push("list-id".into()),
                                template::Var::FromAddress
                                | template::Var::FromDomain
                                | template::Var::FromName => c.headers.push("from".into()),
                                template::Var::Year | template::Var::Month | template::Var::Day => {
                                    c.received = true
                                }
                                _ => {}
                            }
                        }
                    }
                    CompiledAction::Flag(_) | CompiledAction::Unflag(_) => c.flags = true,
                    _ => {}
                }
            }
        }
        FetchNeeds {
            headers: Some(c.headers.iter().map(|h| canonical_header(h)).collect()),
            body: c.body,
            attachments: c.attachments,
            flags: c.flags,
            size: c.size,
            received: c.received,
        }
    }
}

/// `list-id` -> `List-Id`: the usual spelling, for readable FETCH commands and logs.
fn canonical_header(lower: &str) -> String {
    if lower == "message-id" {
        return "Message-ID".into();
    }
    lower
        .split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
