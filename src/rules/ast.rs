//! The rule language as written, after YAML structure checks and before compilation.
//!
//! `config` builds these from the YAML node tree (reporting structural errors with their
//! place); `rules::RuleSet::compile` turns them into matchers (reporting invalid regexes and
//! unknown template variables with their place). Every node keeps the [`Span`] it came from.
//! The types are plain data so that other layers (the IMAP `UID SEARCH` push-down, `check`'s
//! move-loop warning) can read a rule set without knowing how it is compiled.

use std::time::Duration;

use crate::vocab::MailboxName;

/// A place in the configuration file: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub line: u32,
    pub column: u32,
}

/// When a rule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    /// Once for each message that arrives in a mailbox the rule applies to.
    New,
    /// Over all messages of its mailboxes, periodically and on `imapsort sweep`.
    Sweep,
}

/// One entry of the `rules:` list.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    /// Where the rule's map starts (used for errors about the rule as a whole).
    pub span: Span,
    pub when: Condition,
    /// Never empty once the loader accepted the rule.
    pub then: Vec<Action>,
    /// `accounts:`; `None` means every account.
    pub accounts: Option<Vec<String>>,
    /// `mailboxes:` (UTF-8, `/`-separated); `None` means the account's `watch` list.
    pub mailboxes: Option<Vec<MailboxName>>,
    /// `on:` as written; `None` means the default (sweep if `when` has an age condition).
    pub on: Option<Vec<Trigger>>,
    /// `stop: true`.
    pub stop: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub span: Span,
    pub kind: ConditionKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConditionKind {
    /// `when: true`.
    True,
    /// `all:`, and also a map holding several keys (all must hold).
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// `from`, `sender`, `reply_to`, `to`, `cc`, `bcc`, `recipient`.
    Address {
        field: AddressField,
        matcher: AddressMatcher,
    },
    Subject(TextMatcher),
    /// `header: { name: NAME, <text matcher keys> }`.
    Header {
        name: String,
        matcher: TextMatcher,
    },
    ListId(TextMatcher),
    Body(TextMatcher),
    /// `size: { over, under }`, in bytes; at least one is set.
    Size {
        over: Option<u64>,
        under: Option<u64>,
    },
    /// Arrival time (INTERNALDATE) older than now minus the duration.
    OlderThan(Duration),
    NewerThan(Duration),
    /// Same, on the Date header.
    SentBefore(Duration),
    SentAfter(Duration),
    /// `seen`, `flagged`, `answered`, `draft`: the flag is set (`true`) / not set (`false`).
    Flag {
        flag: SystemFlag,
        set: bool,
    },
    /// `keyword: NAME`.
    Keyword(String),
    HasAttachment(bool),
    Attachment(TextMatcher),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressField {
    From,
    Sender,
    ReplyTo,
    To,
    Cc,
    Bcc,
    /// To, Cc or Bcc.
    Recipient,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemFlag {
    Seen,
    Flagged,
    Answered,
    Draft,
}

/// A text matcher: one operation plus `case_sensitive`.
#[derive(Clone, Debug, PartialEq)]
pub struct TextMatcher {
    pub span: Span,
    pub op: TextOp,
    /// Default false: matching folds case (Unicode-aware), for `regex` too.
    pub case_sensitive: bool,
}

/// The operations of a text matcher. Lists mean "any of them".
#[derive(Clone, Debug, PartialEq)]
pub enum TextOp {
    Contains(Vec<String>),
    Is(Vec<String>),
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    Glob(Vec<String>),
    Regex(String),
    Exists(bool),
    Gt(f64),
    Lt(f64),
    Ge(f64),
    Le(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct AddressMatcher {
    pub span: Span,
    pub op: AddressOp,
    pub case_sensitive: bool,
}

/// What an address matcher tests.
#[derive(Clone, Debug, PartialEq)]
pub enum AddressOp {
    /// A YAML list of strings: any of them (each inferred as for a single string).
    Any(Vec<AddressOp>),
    /// `is`, `contains`, `prefix`, `suffix`, `glob`, `regex` on the lower-cased `local@domain`.
    /// A plain string holding an `@` (not first) is `Is`; any other plain string is `Contains`.
    Address(TextOp),
    /// `domain:` or a plain string starting with `@`: that domain or any subdomain of it.
    Domain(Vec<String>),
    /// `name:` with a text matcher for the display name.
    Name(TextMatcher),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub span: Span,
    pub kind: ActionKind,
}

/// The actions of RULES.md. Mailbox arguments are unexpanded templates.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionKind {
    Move(String),
    Copy(String),
    Archive(Option<String>),
    Trash,
    Delete,
    Flag(Vec<String>),
    Unflag(Vec<String>),
    MarkRead,
    MarkUnread,
    Label(Vec<String>),
    Stop,
}

impl ActionKind {
    /// Terminal actions end evaluation: the message leaves (or would leave) the mailbox.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ActionKind::Move(_) | ActionKind::Archive(_) | ActionKind::Trash | ActionKind::Delete
        )
    }
}
