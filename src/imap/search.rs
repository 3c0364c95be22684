//! SEARCH push-down: from rule conditions, a `UID SEARCH` query that finds a SUPERSET of the
//! messages the rules could match, so a sweep fetches only candidates.
//!
//! Every candidate is still evaluated locally, so a sweep's result equals a full scan; the query
//! only has to be sure never to leave out a message that could match. Two approximations are
//! computed side by side:
//!
//! - `over(c)`: every message for which `c` holds passes the query (a superset);
//! - `under(c)`: every message that passes the query has `c` hold (a subset), needed to push a
//!   `not` down: `not c` is over-approximated by `NOT under(c)`.
//!
//! What is pushed (the rest becomes `ALL` in `over`, nothing in `under`):
//!
//! | condition | query | exact? |
//! |---|---|---|
//! | `seen`/`flagged`/`answered`/`draft` | `SEEN`/`UNSEEN`, ... | yes |
//! | `keyword` | `KEYWORD k` (only a valid atom) | yes |
//! | `size` | `LARGER n` / `SMALLER n` | yes |
//! | `older_than`/`newer_than` | `BEFORE` / `SINCE` widened by two days | no: date granularity |
//! | address, subject, header, list-id text (`contains`, `is`, `prefix`, `suffix`, address `domain`) | `FROM s`, `SUBJECT s`, `HEADER name s` | no: a substring |
//! | `exists: true` on a header or list-id | `HEADER name ""` | no |
//!
//! Server substring search is case-insensitive, so it is a superset of both case-sensitive and
//! case-insensitive local matching. Search strings are sent only when plain printable ASCII
//! (so no `CHARSET` is needed); anything else is `ALL`. Dates: a server compares the calendar
//! date of INTERNALDATE in some time zone (UTC-12 to UTC+14); widening by two days makes the
//! query right whatever zone it uses.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;

use crate::rules::ast::{AddressField, AddressOp, Condition, ConditionKind, SystemFlag, TextOp};

/// A search query: a boolean formula over IMAP search keys, kept simplified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Every message (`ALL`).
    All,
    /// No message: the sweep need not ask the server at all.
    Nothing,
    Key(Key),
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
}

/// One IMAP search key (RFC 3501 section 6.4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// `SEEN` / `UNSEEN`, `FLAGGED` / `UNFLAGGED`, ...
    Flag {
        flag: SystemFlag,
        set: bool,
    },
    Keyword(String),
    /// `LARGER n`: RFC822.SIZE > n.
    Larger(u64),
    /// `SMALLER n`: RFC822.SIZE < n.
    Smaller(u64),
    /// `BEFORE date`: INTERNALDATE's date < date.
    Before(Date),
    /// `SINCE date`: INTERNALDATE's date >= date.
    Since(Date),
    /// `HEADER name value`: a header `name` contains `value` (case-insensitive); an empty
    /// value means the header is present.
    Header {
        name: String,
        value: String,
    },
}

impl Query {
    fn and(items: Vec<Query>) -> Query {
        let mut out = Vec::new();
        for q in items {
            match q {
                Query::All => {}
                Query::Nothing => return Query::Nothing,
                Query::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        dedup(&mut out);
        match out.len() {
            0 => Query::All,
            1 => out.pop().unwrap_or(Query::All),
            _ => Query::And(out),
        }
    }

    fn or(items: Vec<Query>) -> Query {
        let mut out = Vec::new();
        for q in items {
            match q {
                Query::Nothing => {}
                Query::All => return Query::All,
                Query::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        dedup(&mut out);
        match out.len() {
            0 => Query::Nothing,
            1 => out.pop().unwrap_or(Query::Nothing),
            _ => Query::Or(out),
        }
    }

    fn not(q: Query) -> Query {
        match q {
            Query::All => Query::Nothing,
            Query::Nothing => Query::All,
            Query::Not(inner) => *inner,
            Query::Key(Key::Flag { flag, set }) => Query::Key(Key::Flag { flag, set: !set }),
            other => Query::Not(Box::new(other)),
        }
    }

    /// True when the server cannot narrow anything: fetch every UID.
    pub fn is_all(&self) -> bool {
        matches!(self, Query::All)
    }

    /// True when no message can match: nothing to search or fetch.
    pub fn is_nothing(&self) -> bool {
        matches!(self, Query::Nothing)
    }

    /// True when the server has to read message headers to answer it (`FROM`, `SUBJECT`,
    /// `HEADER`, ...), not only its index (flags, sizes, dates).
    pub fn reads_headers(&self) -> bool {
        match self {
            Query::All | Query::Nothing => false,
            Query::Key(k) => matches!(k, Key::Header { .. }),
            Query::And(items) | Query::Or(items) => items.iter().any(Query::reads_headers),
            Query::Not(q) => q.reads_headers(),
        }
    }
}

fn dedup(items: &mut Vec<Query>) {
    let mut seen: Vec<Query> = Vec::with_capacity(items.len());
    items.retain(|q| {
        if seen.contains(q) {
            false
        } else {
            seen.push(q.clone());
            true
        }
    });
}

/// The superset query for a sweep over messages that any of `conditions` (the `when` of each
/// rule that applies) could match, with `now` the time the rules will be evaluated at.
pub fn superset<'a>(conditions: impl IntoIterator<Item = &'a Condition>, now: Timestamp) -> Query {
    Query::or(conditions.into_iter().map(|c| over(c, now)).collect())
}

/// A query every message satisfying `c` passes.
fn over(c: &Condition, now: Timestamp) -> Query {
    match &c.kind {
        ConditionKind::True => Query::All,
        ConditionKind::All(cs) => Query::and(cs.iter().map(|c| over(c, now)).collect()),
        ConditionKind::Any(cs) => Query::or(cs.iter().map(|c| over(c, now)).collect()),
        ConditionKind::Not(inner) => Query::not(under(inner, now)),
        ConditionKind::Flag { flag, set } => Query::Key(Key::Flag {
            flag: *flag,
            set: *set,
        }),
        ConditionKind::Keyword(k) => keyword(k).unwrap_or(Query::All),
        ConditionKind::Size { over, under } => size(*over, *under),
        ConditionKind::OlderThan(d) => match cutoff_date(now, *d) {
            // instant < cutoff => its date in any zone is at most cutoff's UTC date + 1.
            Some(day) => day_offset(day, 2).map_or(Query::All, |d| Query::Key(Key::Before(d))),
            None => Query::All,
        },
        ConditionKind::NewerThan(d) => match cutoff_date(now, *d) {
            // instant > cutoff => its date in any zone is at least cutoff's UTC date - 1.
            Some(day) => day_offset(day, -1).map_or(Query::All, |d| Query::Key(Key::Since(d))),
            None => Query::All,
        },
        ConditionKind::Address { field, matcher } => {
            let names: &[&str] = match field {
                AddressField::From => &["FROM"],
                AddressField::Sender => &["SENDER"],
                AddressField::ReplyTo => &["REPLY-TO"],
                AddressField::To => &["TO"],
                AddressField::Cc => &["CC"],
                AddressField::Bcc => &["BCC"],
                AddressField::Recipient => &["TO", "CC", "BCC"],
            };
            Query::or(
                names
                    .iter()
                    .map(|name| address(name, &matcher.op))
                    .collect(),
            )
        }
        ConditionKind::Subject(m) => text("SUBJECT", &m.op),
        ConditionKind::Header { name, matcher } => {
            if is_header_name(name) {
                text(name, &matcher.op)
            } else {
                Query::All
            }
        }
        ConditionKind::ListId(m) => text("LIST-ID", &m.op),
        // Body text is decoded locally (HTML reduced to visible text): a server substring search
        // over the raw part is not a superset. Dates from headers are parsed differently by
        // servers. Attachments are not searchable.
        ConditionKind::Body(_)
        | ConditionKind::SentBefore(_)
        | ConditionKind::SentAfter(_)
        | ConditionKind::HasAttachment(_)
        | ConditionKind::Attachment(_) => Query::All,
    }
}

/// A query that only messages satisfying `c` pass (`Nothing` when nothing is known exactly).
fn under(c: &Condition, now: Timestamp) -> Query {
    match &c.kind {
        ConditionKind::True => Query::All,
        ConditionKind::All(cs) => Query::and(cs.iter().map(|c| under(c, now)).collect()),
        ConditionKind::Any(cs) => Query::or(cs.iter().map(|c| under(c, now)).collect()),
        ConditionKind::Not(inner) => Query::not(over(inner, now)),
        ConditionKind::Flag { flag, set } => Query::Key(Key::Flag {
            flag: *flag,
            set: *set,
        }),
        ConditionKind::Keyword(k) => keyword(k).unwrap_or(Query::Nothing),
        ConditionKind::Size { over, under } => size(*over, *under),
        ConditionKind::OlderThan(d) => match cutoff_date(now, *d) {
            // date < D (any zone) => UTC date < D + 1 => instant < start of D + 1 (UTC);
            // with D = cutoff date - 1 that is before the cutoff.
            Some(day) => day_offset(day, -1).map_or(Query::Nothing, |d| Query::Key(Key::Before(d))),
            None => Query::Nothing,
        },
        ConditionKind::NewerThan(d) => match cutoff_date(now, *d) {
            // date >= D (any zone) => UTC date >= D - 1; with D = cutoff date + 2 the instant is
            // at least the start of the day after the cutoff.
            Some(day) => day_offset(day, 2).map_or(Query::Nothing, |d| Query::Key(Key::Since(d))),
            None => Query::Nothing,
        },
        _ => Query::Nothing,
    }
}

fn keyword(k: &str) -> Option<Query> {
    // A keyword is an atom; a system flag written as a keyword (`\Seen`) is not searchable as
    // KEYWORD.
    let atom = !k.is_empty()
        && k.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
    atom.then(|| Query::Key(Key::Keyword(k.to_owned())))
}

fn size(over: Option<u64>, under: Option<u64>) -> Query {
    Query::and(
        over.map(|n| Query::Key(Key::Larger(n)))
            .into_iter()
            .chain(under.map(|n| match n {
                0 => Query::Nothing,
                n => Query::Key(Key::Smaller(n)),
            }))
            .collect(),
    )
}

/// The UTC calendar date of `now - d`.
fn cutoff_date(now: Timestamp, d: std::time::Duration) -> Option<Date> {
    let span = jiff::SignedDuration::try_from(d).ok()?;
    let cutoff = now.checked_sub(span).ok()?;
    Some(cutoff.to_zoned(jiff::tz::TimeZone::UTC).date())
}

fn day_offset(d: Date, days: i32) -> Option<Date> {
    d.checked_add(jiff::Span::new().days(days)).ok()
}

/// Header names are printable ASCII without `:` or space (RFC 5322 field-name).
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Whether a search string can be sent as a quoted string without a CHARSET.
fn searchable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Any of `needles` as a substring of header `name`.
fn substrings(name: &str, needles: &[String]) -> Query {
    if needles.iter().any(|n| !searchable(n)) {
        return Query::All;
    }
    Query::or(
        needles
            .iter()
            .map(|n| {
                Query::Key(Key::Header {
                    name: name.to_owned(),
                    value: n.clone(),
                })
            })
            .collect(),
    )
}

fn text(name: &str, op: &TextOp) -> Query {
    match op {
        TextOp::Contains(v) | TextOp::Is(v) | TextOp::Prefix(v) | TextOp::Suffix(v) => {
            substrings(name, v)
        }
        TextOp::Exists(true) => Query::Key(Key::Header {
            name: name.to_owned(),
            value: String::new(),
        }),
        TextOp::Exists(false)
        | TextOp::Glob(_)
        | TextOp::Regex(_)
        | TextOp::Gt(_)
        | TextOp::Lt(_)
        | TextOp::Ge(_)
        | TextOp::Le(_) => Query::All,
    }
}

fn address(name: &str, op: &AddressOp) -> Query {
    match op {
        AddressOp::Any(ops) => Query::or(ops.iter().map(|o| address(name, o)).collect()),
        AddressOp::Address(
            TextOp::Contains(v) | TextOp::Is(v) | TextOp::Prefix(v) | TextOp::Suffix(v),
        ) => substrings(name, v),
        // "that domain or any subdomain": the domain's text appears in the address.
        AddressOp::Domain(domains) => {
            let trimmed: Vec<String> = domains
                .iter()
                .map(|d| d.trim_start_matches('@').to_owned())
                .collect();
            substrings(name, &trimmed)
        }
        // Display names are decoded locally (RFC 2047); substring search over the decoded
        // header is a superset only for plain text, which `substrings` checks.
        AddressOp::Name(m) => match &m.op {
            TextOp::Contains(v) | TextOp::Is(v) | TextOp::Prefix(v) | TextOp::Suffix(v) => {
                substrings(name, v)
            }
            _ => Query::All,
        },
        AddressOp::Address(_) => Query::All,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Flag { flag, set } => {
                let name = match flag {
                    SystemFlag::Seen => "SEEN",
                    SystemFlag::Flagged => "FLAGGED",
                    SystemFlag::Answered => "ANSWERED",
                    SystemFlag::Draft => "DRAFT",
                };
                if *set {
                    f.write_str(name)
                } else {
                    write!(f, "UN{name}")
                }
            }
            Key::Keyword(k) => write!(f, "KEYWORD {k}"),
            Key::Larger(n) => write!(f, "LARGER {n}"),
            Key::Smaller(n) => write!(f, "SMALLER {n}"),
            Key::Before(d) | Key::Since(d) => {
                let word = if matches!(self, Key::Before(_)) {
                    "BEFORE"
                } else {
                    "SINCE"
                };
                let month = MONTHS[usize::try_from(d.month() - 1).unwrap_or(0)];
                write!(f, "{word} {}-{month}-{}", d.day(), d.year())
            }
            Key::Header { name, value } => {
                match name.to_ascii_uppercase().as_str() {
                    n @ ("FROM" | "TO" | "CC" | "BCC" | "SUBJECT") => write!(f, "{n} ")?,
                    _ => {
                        f.write_str("HEADER ")?;
                        quoted(f, name)?;
                        f.write_str(" ")?;
                    }
                }
                quoted(f, value)
            }
        }
    }
}

/// The query as a `UID SEARCH` argument. `Nothing` (never sent) prints as `NOT ALL`.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_query(f, self, true)
    }
}

fn write_query(f: &mut fmt::Formatter<'_>, q: &Query, top: bool) -> fmt::Result {
    match q {
        Query::All => f.write_str("ALL"),
        Query::Nothing => f.write_str("NOT ALL"),
        Query::Key(k) => fmt::Display::fmt(k, f),
        Query::And(items) => {
            if !top {
                f.write_str("(")?;
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write_query(f, item, false)?;
            }
            if !top {
                f.write_str(")")?;
            }
            Ok(())
        }
        // OR is binary: OR a (OR b c) is written OR a OR b c.
        Query::Or(items) => {
            for (i, item) in items.iter().enumerate() {
                if i + 1 < items.len() {
                    f.write_str("OR ")?;
                }
                write_query(f, item, false)?;
                if i + 1 < items.len() {
                    f.write_str(" ")?;
                }
            }
            Ok(())
        }
        Query::Not(inner) => {
            f.write_str("NOT ")?;
            write_query(f, inner, false)
        }
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
