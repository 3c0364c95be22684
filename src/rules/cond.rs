//! Compiled conditions: evaluation, explanation (why a rule matched) and named captures.

use std::fmt::Write as _;
use std::time::Duration;

use regex::Regex;

use super::ast::{self, AddressField, AddressOp, ConditionKind, SystemFlag, TextMatcher, TextOp};
use super::guard::{GuardKey, Source};
use super::matcher::{AddressMatch, RegexTarget, TextMatch};
use super::subject_set::Memo;
use super::template::Captures;
use super::view::{
    AddressEntry, AddressSlot, FLAG_ANSWERED, FLAG_DRAFT, FLAG_FLAGGED, FLAG_SEEN, Folded,
    MessageView, name_hash,
};

/// A compiled condition node with its description (for `because`).
#[derive(Debug)]
pub(crate) struct Cond {
    kind: Kind,
    /// The condition as a user would say it; `any` picks the branch that held instead.
    desc: Box<str>,
}

#[derive(Debug)]
enum Kind {
    True,
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Address(AddressField, AddressMatch),
    /// With a regex: its slot in the rule set's [`SubjectSets`](super::subject_set), if any.
    Subject(TextMatch, Option<u32>),
    Header {
        hash: u64,
        /// Lower-case name.
        name: Box<str>,
        m: TextMatch,
    },
    ListId(TextMatch),
    Body(TextMatch),
    Size {
        over: Option<u64>,
        under: Option<u64>,
    },
    /// Nanoseconds.
    OlderThan(i128),
    NewerThan(i128),
    SentBefore(i128),
    SentAfter(i128),
    Flag(u8, bool),
    /// Lower-cased keyword.
    Keyword(Box<str>),
    HasAttachment(bool),
    Attachment(TextMatch),
}

/// An error inside one condition, with its place.
pub(crate) struct CondError {
    pub(crate) span: ast::Span,
    pub(crate) message: String,
}

/// Durations as users write them (`30d`, `1h 30m`).
pub(crate) fn fmt_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if s >= len {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{}{unit}", s / len);
            s %= len;
        }
    }
    out
}

fn quote_list(v: &[String]) -> String {
    if v.len() == 1 {
        format!("{:?}", v[0])
    } else {
        let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
        format!("any of [{}]", items.join(", "))
    }
}

pub(crate) fn describe_text_op(op: &TextOp) -> String {
    match op {
        TextOp::Contains(v) => format!("contains {}", quote_list(v)),
        TextOp::Is(v) => format!("is {}", quote_list(v)),
        TextOp::Prefix(v) => format!("starts with {}", quote_list(v)),
        TextOp::Suffix(v) => format!("ends with {}", quote_list(v)),
        TextOp::Glob(v) => format!("matches glob {}", quote_list(v)),
        TextOp::Regex(r) => format!("matches regex {r:?}"),
        TextOp::Exists(true) => "exists".into(),
        TextOp::Exists(false) => "is absent".into(),
        TextOp::Gt(n) => format!("> {n}"),
        TextOp::Lt(n) => format!("< {n}"),
        TextOp::Ge(n) => format!(">= {n}"),
        TextOp::Le(n) => format!("<= {n}"),
    }
}

fn describe_text(m: &TextMatcher) -> String {
    let mut s = describe_text_op(&m.op);
    if m.case_sensitive {
        s.push_str(" (case-sensitive)");
    }
    s
}

fn describe_address(op: &AddressOp) -> String {
    match op {
        AddressOp::Any(ops) => {
            let parts: Vec<String> = ops.iter().map(describe_address).collect();
            format!("any of [{}]", parts.join(", "))
        }
        AddressOp::Address(op) => describe_text_op(op),
        AddressOp::Domain(d) => format!("is in domain {}", quote_list(d)),
        AddressOp::Name(m) => format!("name {}", describe_text(m)),
    }
}

fn field_name(f: AddressField) -> &'static str {
    match f {
        AddressField::From => "from",
        AddressField::Sender => "sender",
        AddressField::ReplyTo => "reply_to",
        AddressField::To => "to",
        AddressField::Cc => "cc",
        AddressField::Bcc => "bcc",
        AddressField::Recipient => "recipient",
    }
}

fn nanos(d: Duration) -> i128 {
    d.as_nanos().min(i128::MAX as u128) as i128
}

impl Cond {
    /// Compile, collecting every error of the tree.
    pub(crate) fn compile(c: &ast::Condition, errors: &mut Vec<CondError>) -> Cond {
        let text = |m: &TextMatcher, errors: &mut Vec<CondError>| {
            TextMatch::compile(m).unwrap_or_else(|message| {
                errors.push(CondError {
                    span: m.span,
                    message,
                });
                TextMatch::compile_op(&TextOp::Exists(false), false).expect("exists compiles")
            })
        };
        let (kind, desc) = match &c.kind {
            ConditionKind::True => (Kind::True, "always (when: true)".to_owned()),
            ConditionKind::All(cs) => {
                let cs: Vec<Cond> = cs.iter().map(|c| Cond::compile(c, errors)).collect();
                let desc = if cs.is_empty() {
                    "all of nothing (always true)".to_owned()
                } else {
                    cs.iter()
                        .map(|c| &*c.desc)
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                (Kind::All(cs), desc)
            }
            ConditionKind::Any(cs) => {
                let cs: Vec<Cond> = cs.iter().map(|c| Cond::compile(c, errors)).collect();
                let desc = format!(
                    "any of ({})",
                    cs.iter().map(|c| &*c.desc).collect::<Vec<_>>().join("; ")
                );
                (Kind::Any(cs), desc)
            }
            ConditionKind::Not(inner) => {
                let inner = Cond::compile(inner, errors);
                let desc = format!("not ({})", inner.desc);
                (Kind::Not(Box::new(inner)), desc)
            }
            ConditionKind::Address { field, matcher } => {
                let m = AddressMatch::compile(&matcher.op, matcher.case_sensitive).unwrap_or_else(
                    |message| {
                        errors.push(CondError {
                            span: matcher.span,
                            message,
                        });
                        AddressMatch::Any(Vec::new())
                    },
                );
                let desc = format!("{} {}", field_name(*field), describe_address(&matcher.op));
                (Kind::Address(*field, m), desc)
            }
            ConditionKind::Subject(m) => (
                Kind::Subject(text(m, errors), None),
                format!("subject {}", describe_text(m)),
            ),
            ConditionKind::Header { name, matcher } => {
                let lower = name.to_ascii_lowercase();
                let desc = format!("header {name:?} {}", describe_text(matcher));
                (
                    Kind::Header {
                        hash: name_hash(&lower),
                        name: lower.into_boxed_str(),
                        m: text(matcher, errors),
                    },
                    desc,
                )
            }
            ConditionKind::ListId(m) => (
                Kind::ListId(text(m, errors)),
                format!("list_id {}", describe_text(m)),
            ),
            ConditionKind::Body(m) => (
                Kind::Body(text(m, errors)),
                format!("body {}", describe_text(m)),
            ),
            ConditionKind::Size { over, under } => {
                let mut parts = Vec::new();
                if let Some(o) = over {
                    parts.push(format!("size over {o} bytes"));
                }
                if let Some(u) = under {
                    parts.push(format!("size under {u} bytes"));
                }
                (
                    Kind::Size {
                        over: *over,
                        under: *under,
                    },
                    parts.join(" and "),
                )
            }
            ConditionKind::OlderThan(d) => (
                Kind::OlderThan(nanos(*d)),
                format!("older_than {}", fmt_duration(*d)),
            ),
            ConditionKind::NewerThan(d) => (
                Kind::NewerThan(nanos(*d)),
                format!("newer_than {}", fmt_duration(*d)),
            ),
            ConditionKind::SentBefore(d) => (
                Kind::SentBefore(nanos(*d)),
                format!("sent_before {}", fmt_duration(*d)),
            ),
            ConditionKind::SentAfter(d) => (
                Kind::SentAfter(nanos(*d)),
                format!("sent_after {}", fmt_duration(*d)),
            ),
            ConditionKind::Flag { flag, set } => {
                let (bit, word) = match flag {
                    SystemFlag::Seen => (FLAG_SEEN, "seen"),
                    SystemFlag::Flagged => (FLAG_FLAGGED, "flagged"),
                    SystemFlag::Answered => (FLAG_ANSWERED, "answered"),
                    SystemFlag::Draft => (FLAG_DRAFT, "draft"),
                };
                (Kind::Flag(bit, *set), format!("{word}: {set}"))
            }
            ConditionKind::Keyword(k) => (
                Kind::Keyword(k.trim().to_lowercase().into_boxed_str()),
                format!("keyword {k:?}"),
            ),
            ConditionKind::HasAttachment(b) => {
                (Kind::HasAttachment(*b), format!("has_attachment: {b}"))
            }
            ConditionKind::Attachment(m) => (
                Kind::Attachment(text(m, errors)),
                format!("attachment name {}", describe_text(m)),
            ),
        };
        Cond {
            kind,
            desc: desc.into_boxed_str(),
        }
    }

    /// Does the condition hold for this message at `now` (nanoseconds since the epoch)?
    pub(crate) fn eval(&self, v: &MessageView, now: i128) -> bool {
        self.eval_in(v, now, &Memo::none())
    }

    /// [`eval`](Self::eval), with Subject regexes answered by the message's `memo`.
    pub(crate) fn eval_in(&self, v: &MessageView, now: i128, memo: &Memo<'_>) -> bool {
        match &self.kind {
            Kind::True => true,
            Kind::All(cs) => cs.iter().all(|c| c.eval_in(v, now, memo)),
            Kind::Any(cs) => cs.iter().any(|c| c.eval_in(v, now, memo)),
            Kind::Not(c) => !c.eval_in(v, now, memo),
            Kind::Address(field, m) => eval_address(v, *field, m),
            Kind::Subject(m, slot) => {
                if let Some(slot) = slot
                    && let Some(hit) = memo.subject(*slot, v)
                {
                    return hit;
                }
                let mut subjects = v.subjects().peekable();
                let present = subjects.peek().is_some();
                m.test_any(present, subjects.flatten())
            }
            Kind::Header { hash, name, m } => {
                let mut fields = v.header(*hash, name).peekable();
                let present = fields.peek().is_some();
                m.test_any(present, fields.flatten())
            }
            Kind::ListId(m) => m.test_any(v.list_id_count > 0, v.list_ids.iter()),
            Kind::Body(m) => m.test_any(v.body.is_some(), v.body.iter()),
            Kind::Size { over, under } => {
                over.is_none_or(|o| v.size > o) && under.is_none_or(|u| v.size < u)
            }
            Kind::OlderThan(d) => age(v.received.as_ref()).is_some_and(|t| t < now - d),
            Kind::NewerThan(d) => age(v.received.as_ref()).is_some_and(|t| t > now - d),
            Kind::SentBefore(d) => age(v.date()).is_some_and(|t| t < now - d),
            Kind::SentAfter(d) => age(v.date()).is_some_and(|t| t > now - d),
            Kind::Flag(bit, set) => (v.system_flags & bit != 0) == *set,
            Kind::Keyword(k) => v.flags_lower.iter().any(|f| f == k),
            Kind::HasAttachment(b) => v.attachments.is_empty() != *b,
            Kind::Attachment(m) => {
                let mut named = v.attachments.iter().flatten().peekable();
                let present = named.peek().is_some();
                m.test_any(present, named)
            }
        }
    }

    /// Why the condition held: its description, with `any` narrowed to the branches that held.
    pub(crate) fn explain(&self, v: &MessageView, now: i128, out: &mut String) {
        match &self.kind {
            Kind::Any(cs) => match cs.iter().find(|c| c.eval(v, now)) {
                Some(c) => c.explain(v, now, out),
                None => out.push_str(&self.desc),
            },
            Kind::All(cs) if !cs.is_empty() && self.has_any() => {
                for (i, c) in cs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" and ");
                    }
                    c.explain(v, now, out);
                }
            }
            _ => out.push_str(&self.desc),
        }
    }

    /// Keys one of which the message must have for the condition to hold (see
    /// [`super::guard`]); false when there is no such set. Only necessary, never sufficient: a
    /// message with a key still evaluates the condition.
    pub(crate) fn guard(&self, out: &mut Vec<GuardKey>) -> bool {
        match &self.kind {
            Kind::Address(field, m) => {
                let mut keys = Vec::new();
                if m.keys(&mut keys).is_none() {
                    return false;
                }
                out.extend(keys.into_iter().map(|(domain, key)| GuardKey {
                    source: Source::Address(*field),
                    domain,
                    key,
                }));
                true
            }
            Kind::ListId(m) => {
                let Some(needles) = m.is_needles() else {
                    return false;
                };
                let source = if m.case_sensitive() {
                    Source::ListIdText
                } else {
                    Source::ListIdLower
                };
                out.extend(needles.iter().map(|n| GuardKey {
                    source,
                    domain: false,
                    key: n.clone(),
                }));
                true
            }
            // Every conjunct must hold: the first one with keys guards the whole.
            Kind::All(cs) => cs.iter().any(|c| {
                let mut keys = Vec::new();
                let found = c.guard(&mut keys);
                if found {
                    out.append(&mut keys);
                }
                found
            }),
            // Some branch must hold: every branch needs keys, and any of them will do.
            Kind::Any(cs) if !cs.is_empty() => {
                let mut keys = Vec::new();
                if !cs.iter().all(|c| c.guard(&mut keys)) {
                    return false;
                }
                out.append(&mut keys);
                true
            }
            _ => false,
        }
    }

    /// Give every Subject regex of the tree a slot: its index in `out`, which gets the
    /// pattern and its case flag.
    pub(crate) fn assign_subject_slots(&mut self, out: &mut Vec<(String, bool)>) {
        match &mut self.kind {
            Kind::All(cs) | Kind::Any(cs) => {
                cs.iter_mut().for_each(|c| c.assign_subject_slots(out))
            }
            Kind::Not(c) => c.assign_subject_slots(out),
            Kind::Subject(m, slot) => {
                if let Some(re) = m.regex() {
                    *slot = Some(out.len() as u32);
                    out.push((re.as_str().to_owned(), m.case_sensitive()));
                }
            }
            _ => {}
        }
    }

    /// Undo [`assign_subject_slots`](Self::assign_subject_slots) (no set was built).
    pub(crate) fn clear_subject_slots(&mut self) {
        match &mut self.kind {
            Kind::All(cs) | Kind::Any(cs) => cs.iter_mut().for_each(Cond::clear_subject_slots),
            Kind::Not(c) => c.clear_subject_slots(),
            Kind::Subject(_, slot) => *slot = None,
            _ => {}
        }
    }

    fn has_any(&self) -> bool {
        match &self.kind {
            Kind::Any(_) => true,
            Kind::All(cs) => cs.iter().any(Cond::has_any),
            _ => false,
        }
    }

    /// Named capture groups of every regex in the tree (`not` included): the names a
    /// template of the rule may use.
    pub(crate) fn capture_names(&self) -> Vec<String> {
        let mut refs = Vec::new();
        self.collect_regexes(&mut refs, true);
        let mut out: Vec<String> = Vec::new();
        for r in refs {
            for name in r.regex().capture_names().flatten() {
                if !out.iter().any(|n| n == name) {
                    out.push(name.to_owned());
                }
            }
        }
        out
    }

    /// The regexes of this condition that can have matched when it held (for captures).
    pub(crate) fn regexes<'a>(&'a self, out: &mut Vec<RegexRef<'a>>) {
        self.collect_regexes(out, false);
    }

    fn collect_regexes<'a>(&'a self, out: &mut Vec<RegexRef<'a>>, include_not: bool) {
        match &self.kind {
            Kind::All(cs) | Kind::Any(cs) => {
                cs.iter().for_each(|c| c.collect_regexes(out, include_not))
            }
            // A regex under `not` never matched when the rule matched: no captures from it.
            Kind::Not(c) if include_not => c.collect_regexes(out, include_not),
            Kind::Not(_) => {}
            Kind::Address(field, m) => {
                let mut rs = Vec::new();
                m.regexes(&mut rs);
                out.extend(rs.into_iter().map(|(r, t)| RegexRef::Address(*field, t, r)));
            }
            Kind::Subject(m, _) => out.extend(m.regex().map(RegexRef::Subject)),
            Kind::Header { hash, name, m } => {
                out.extend(m.regex().map(|r| RegexRef::Header(*hash, name, r)))
            }
            Kind::ListId(m) => out.extend(m.regex().map(RegexRef::ListId)),
            Kind::Body(m) => out.extend(m.regex().map(RegexRef::Body)),
            Kind::Attachment(m) => out.extend(m.regex().map(RegexRef::Attachment)),
            _ => {}
        }
    }
}

/// A regex of a rule and what it runs on, for collecting named captures after a match.
#[derive(Clone, Copy)]
pub(crate) enum RegexRef<'a> {
    Address(AddressField, RegexTarget, &'a Regex),
    Subject(&'a Regex),
    Header(u64, &'a str, &'a Regex),
    ListId(&'a Regex),
    Body(&'a Regex),
    Attachment(&'a Regex),
}

impl RegexRef<'_> {
    fn regex(&self) -> &Regex {
        match *self {
            RegexRef::Address(_, _, r)
            | RegexRef::Subject(r)
            | RegexRef::Header(_, _, r)
            | RegexRef::ListId(r)
            | RegexRef::Body(r)
            | RegexRef::Attachment(r) => r,
        }
    }

    /// Add the named groups of the first matching haystack; earlier regexes win.
    pub(crate) fn capture(&self, v: &MessageView, out: &mut Captures) {
        let (re, texts): (&Regex, Vec<&str>) = match *self {
            RegexRef::Address(field, target, re) => {
                if field == AddressField::From && v.from_count() > 1 {
                    return;
                }
                let texts = address_lists(v, field)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| match target {
                        RegexTarget::Address => Some(&*a.address),
                        RegexTarget::Name => a.name.as_ref().map(Folded::text),
                    })
                    .collect();
                (re, texts)
            }
            RegexRef::Subject(re) => (re, v.subjects().flatten().map(Folded::text).collect()),
            RegexRef::Header(hash, name, re) => (
                re,
                v.header(hash, name).flatten().map(Folded::text).collect(),
            ),
            RegexRef::ListId(re) => (re, v.list_ids.iter().map(Folded::text).collect()),
            RegexRef::Body(re) => (re, v.body.iter().map(Folded::text).collect()),
            RegexRef::Attachment(re) => (
                re,
                v.attachments.iter().flatten().map(Folded::text).collect(),
            ),
        };
        for text in texts {
            if let Some(caps) = re.captures(text) {
                for name in re.capture_names().flatten() {
                    if let Some(m) = caps.name(name) {
                        out.entry(name.into())
                            .or_insert_with(|| m.as_str().to_owned());
                    }
                }
                return;
            }
        }
    }
}

fn age(t: Option<&jiff::Zoned>) -> Option<i128> {
    t.map(|z| z.timestamp().as_nanosecond())
}

fn address_lists(v: &MessageView, field: AddressField) -> Vec<&[AddressEntry]> {
    let slot = |s| &v.address_list(s).addrs[..];
    match field {
        AddressField::From => vec![slot(AddressSlot::From)],
        AddressField::Sender => vec![slot(AddressSlot::Sender)],
        AddressField::ReplyTo => vec![slot(AddressSlot::ReplyTo)],
        AddressField::To => vec![slot(AddressSlot::To)],
        AddressField::Cc => vec![slot(AddressSlot::Cc)],
        AddressField::Bcc => vec![slot(AddressSlot::Bcc)],
        AddressField::Recipient => vec![
            slot(AddressSlot::To),
            slot(AddressSlot::Cc),
            slot(AddressSlot::Bcc),
        ],
    }
}

fn eval_address(v: &MessageView, field: AddressField, m: &AddressMatch) -> bool {
    let one = |s: AddressSlot| {
        let list = v.address_list(s);
        m.test(list.count > 0, &[&list.addrs])
    };
    match field {
        AddressField::From => v.from_count() <= 1 && one(AddressSlot::From),
        AddressField::Sender => one(AddressSlot::Sender),
        AddressField::ReplyTo => one(AddressSlot::ReplyTo),
        AddressField::To => one(AddressSlot::To),
        AddressField::Cc => one(AddressSlot::Cc),
        AddressField::Bcc => one(AddressSlot::Bcc),
        AddressField::Recipient => {
            let (to, cc, bcc) = (
                v.address_list(AddressSlot::To),
                v.address_list(AddressSlot::Cc),
                v.address_list(AddressSlot::Bcc),
            );
            let present = to.count + cc.count + bcc.count > 0;
            m.test(present, &[&to.addrs, &cc.addrs, &bcc.addrs])
        }
    }
}

/// True when the condition holds an age condition (`older_than`, `newer_than`) anywhere.
pub fn has_age_condition(c: &ast::Condition) -> bool {
    match &c.kind {
        ConditionKind::OlderThan(_) | ConditionKind::NewerThan(_) => true,
        ConditionKind::All(cs) | ConditionKind::Any(cs) => cs.iter().any(has_age_condition),
        ConditionKind::Not(c) => has_age_condition(c),
        _ => false,
    }
}

/// Header names a condition reads (lower-case), and whether it needs body / attachments.
/// What evaluating some conditions needs fetched (see [`super::FetchNeeds`]).
#[derive(Debug, Default)]
pub(crate) struct Needs {
    /// Header names, lower case, possibly repeated.
    pub headers: Vec<String>,
    pub body: bool,
    pub attachments: bool,
    /// FLAGS: flag and keyword conditions.
    pub flags: bool,
    /// RFC822.SIZE: size conditions.
    pub size: bool,
    /// INTERNALDATE: age conditions.
    pub received: bool,
}

pub(crate) fn collect_needs(c: &ast::Condition, needs: &mut Needs) {
    let mut add = |h: &str| needs.headers.push(h.to_owned());
    match &c.kind {
        ConditionKind::All(cs) | ConditionKind::Any(cs) => {
            cs.iter().for_each(|c| collect_needs(c, needs));
        }
        ConditionKind::Not(c) => collect_needs(c, needs),
        ConditionKind::Address { field, .. } => match field {
            AddressField::From => add("from"),
            AddressField::Sender => add("sender"),
            AddressField::ReplyTo => add("reply-to"),
            AddressField::To => add("to"),
            AddressField::Cc => add("cc"),
            AddressField::Bcc => add("bcc"),
            AddressField::Recipient => {
                add("to");
                add("cc");
                add("bcc");
            }
        },
        ConditionKind::Subject(_) => add("subject"),
        ConditionKind::Header { name, .. } => add(&name.to_ascii_lowercase()),
        ConditionKind::ListId(_) => add("list-id"),
        ConditionKind::SentBefore(_) | ConditionKind::SentAfter(_) => add("date"),
        ConditionKind::Body(_) => needs.body = true,
        ConditionKind::HasAttachment(_) | ConditionKind::Attachment(_) => needs.attachments = true,
        ConditionKind::Flag { .. } | ConditionKind::Keyword(_) => needs.flags = true,
        ConditionKind::Size { .. } => needs.size = true,
        ConditionKind::OlderThan(_) | ConditionKind::NewerThan(_) => needs.received = true,
        ConditionKind::True => {}
    }
}
