//! Compiled text and address matchers.
//!
//! Needles are folded to lower case once, here; haystacks come folded from the
//! [`MessageView`](super::MessageView) cache. Regexes fold case themselves (Unicode-aware)
//! and run on the text as written, so their captures keep the message's spelling.

use memchr::memmem::Finder;
use regex::{Regex, RegexBuilder};

use super::ast::{AddressOp, TextMatcher, TextOp};
use super::view::{AddressEntry, Folded};

/// A compiled text matcher.
#[derive(Debug)]
pub(crate) struct TextMatch {
    op: Op,
    /// Compare the text as written instead of its lower-case form.
    case_sensitive: bool,
}

#[derive(Debug)]
enum Op {
    Contains(Vec<Finder<'static>>),
    Is(Vec<Box<str>>),
    Prefix(Vec<Box<str>>),
    Suffix(Vec<Box<str>>),
    /// One anchored regex per pattern, on the folded (or written) text.
    Glob(Vec<Regex>),
    Regex(Regex),
    Exists(bool),
    Cmp(Cmp, f64),
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    Gt,
    Lt,
    Ge,
    Le,
}

/// Lower-case the needles unless the matcher is case-sensitive.
fn fold(needles: &[String], case_sensitive: bool) -> Vec<Box<str>> {
    needles
        .iter()
        .map(|n| {
            if case_sensitive {
                n.clone().into_boxed_str()
            } else {
                n.to_lowercase().into_boxed_str()
            }
        })
        .collect()
}

/// A shell glob (`*`, `?`) as an anchored regex over the whole value.
fn glob_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let mut re = String::with_capacity(pattern.len() + 8);
    re.push_str("(?s)\\A");
    let mut lit = [0u8; 4];
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(c.encode_utf8(&mut lit))),
        }
    }
    re.push_str("\\z");
    Regex::new(&re)
}

/// Compile a user regex: case-insensitive (Unicode) unless asked otherwise.
pub(crate) fn user_regex(pattern: &str, case_sensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            // The regex crate's messages are multi-line drawings; keep the last line.
            let last = detail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let last = last.trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            format!("invalid regex {pattern:?}: {last}")
        })
}

/// A decimal number as `gt`/`lt` read it: optional sign, digits, optional fraction.
pub(crate) fn parse_decimal(value: &str) -> Option<f64> {
    let v = value.trim();
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(digits.ends_with('.') && int.is_empty());
    if !ok {
        return None;
    }
    v.parse().ok()
}

impl TextMatch {
    pub(crate) fn compile(m: &TextMatcher) -> Result<TextMatch, String> {
        Self::compile_op(&m.op, m.case_sensitive)
    }

    pub(crate) fn compile_op(op: &TextOp, case_sensitive: bool) -> Result<TextMatch, String> {
        let op = match op {
            TextOp::Contains(n) => Op::Contains(
                fold(n, case_sensitive)
                    .iter()
                    .map(|n| Finder::new(n.as_bytes()).into_owned())
                    .collect(),
            ),
            TextOp::Is(n) => Op::Is(fold(n, case_sensitive)),
            TextOp::Prefix(n) => Op::Prefix(fold(n, case_sensitive)),
            TextOp::Suffix(n) => Op::Suffix(fold(n, case_sensitive)),
            TextOp::Glob(n) => Op::Glob(
                fold(n, case_sensitive)
                    .iter()
                    .map(|g| glob_regex(g).map_err(|e| format!("invalid glob {g:?}: {e}")))
                    .collect::<Result<_, _>>()?,
            ),
            TextOp::Regex(r) => Op::Regex(user_regex(r, case_sensitive)?),
            TextOp::Exists(b) => Op::Exists(*b),
            TextOp::Gt(n) => Op::Cmp(Cmp::Gt, *n),
            TextOp::Lt(n) => Op::Cmp(Cmp::Lt, *n),
            TextOp::Ge(n) => Op::Cmp(Cmp::Ge, *n),
            TextOp::Le(n) => Op::Cmp(Cmp::Le, *n),
        };
        Ok(TextMatch { op, case_sensitive })
    }

    /// The `exists` value, when this is an `exists` matcher.
    pub(crate) fn exists(&self) -> Option<bool> {
        match self.op {
            Op::Exists(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn regex(&self) -> Option<&Regex> {
        match &self.op {
            Op::Regex(r) => Some(r),
            _ => None,
        }
    }

    /// The needles of an `is` matcher, in the form they are compared (a value matches when
    /// its compared form equals one of them).
    pub(crate) fn is_needles(&self) -> Option<&[Box<str>]> {
        match &self.op {
            Op::Is(n) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn case_sensitive(&self) -> bool {
        self.case_sensitive
    }

    /// Test one decoded value (not for `exists`, which the caller answers from presence).
    #[inline]
    pub(crate) fn test(&self, value: &Folded) -> bool {
        match &self.op {
            Op::Regex(r) => r.is_match(value.text()),
            Op::Cmp(..) | Op::Exists(_) => self.test_str(value.text()),
            _ if self.case_sensitive => self.test_str(value.text()),
            _ => self.test_str(value.lower()),
        }
    }

    /// Test a string that is already in the form this matcher compares (folded unless
    /// case-sensitive).
    pub(crate) fn test_str(&self, hay: &str) -> bool {
        match &self.op {
            Op::Contains(f) => f.iter().any(|f| f.find(hay.as_bytes()).is_some()),
            Op::Is(n) => n.iter().any(|n| **n == *hay),
            Op::Prefix(n) => n.iter().any(|n| hay.starts_with(&**n)),
            Op::Suffix(n) => n.iter().any(|n| hay.ends_with(&**n)),
            Op::Glob(g) => g.iter().any(|g| g.is_match(hay)),
            Op::Regex(r) => r.is_match(hay),
            Op::Exists(b) => *b,
            Op::Cmp(cmp, n) => parse_decimal(hay).is_some_and(|v| match cmp {
                Cmp::Gt => v > *n,
                Cmp::Lt => v < *n,
                Cmp::Ge => v >= *n,
                Cmp::Le => v <= *n,
            }),
        }
    }

    /// Any of the values matches; `exists` answers from `present` (instances, decodable or not).
    pub(crate) fn test_any<'a>(
        &self,
        present: bool,
        mut values: impl Iterator<Item = &'a Folded>,
    ) -> bool {
        match self.op {
            Op::Exists(b) => present == b,
            _ => values.any(|v| self.test(v)),
        }
    }
}

/// A compiled address matcher.
#[derive(Debug)]
pub(crate) enum AddressMatch {
    Any(Vec<AddressMatch>),
    /// Applied to the lower-cased `local@domain` (needles folded, always).
    Address(TextMatch),
    /// Lower-cased domains without a leading `@`.
    Domain(Vec<Box<str>>),
    Name(TextMatch),
}

impl AddressMatch {
    pub(crate) fn compile(op: &AddressOp, case_sensitive: bool) -> Result<AddressMatch, String> {
        Ok(match op {
            AddressOp::Any(ops) => AddressMatch::Any(
                ops.iter()
                    .map(|o| AddressMatch::compile(o, case_sensitive))
                    .collect::<Result<_, _>>()?,
            ),
            AddressOp::Address(TextOp::Regex(r)) => AddressMatch::Address(TextMatch::compile_op(
                &TextOp::Regex(r.clone()),
                case_sensitive,
            )?),
            // The haystack is lower-cased by definition, so the needles are too.
            AddressOp::Address(op) => AddressMatch::Address(TextMatch::compile_op(op, false)?),
            AddressOp::Domain(d) => AddressMatch::Domain(
                d.iter()
                    .map(|d| {
                        d.trim()
                            .trim_start_matches('@')
                            .trim_end_matches('.')
                            .to_lowercase()
                            .into_boxed_str()
                    })
                    .collect(),
            ),
            AddressOp::Name(m) => AddressMatch::Name(TextMatch::compile(m)?),
        })
    }

    /// Any address of `addrs` matches; `present`: the header has at least one instance.
    pub(crate) fn test(&self, present: bool, addrs: &[&[AddressEntry]]) -> bool {
        let all = || addrs.iter().flat_map(|a| a.iter());
        match self {
            AddressMatch::Any(ms) => ms.iter().any(|m| m.test(present, addrs)),
            AddressMatch::Address(m) => match m.exists() {
                Some(b) => present == b,
                None => all().any(|a| m.test_str(&a.address)),
            },
            AddressMatch::Domain(ds) => all().any(|a| {
                let domain = a.domain();
                ds.iter().any(|d| domain_matches(domain, d))
            }),
            AddressMatch::Name(m) => match m.exists() {
                Some(b) => all().any(|a| a.name.is_some()) == b,
                None => all().any(|a| a.name.as_ref().is_some_and(|n| m.test(n))),
            },
        }
    }

    /// The exact addresses (`false`) and domains (`true`) one of which an address must have
    /// for this matcher to hold, when it is made of nothing else; `None` otherwise.
    pub(crate) fn keys(&self, out: &mut Vec<(bool, Box<str>)>) -> Option<()> {
        match self {
            AddressMatch::Any(ms) if !ms.is_empty() => ms.iter().try_for_each(|m| m.keys(out)),
            // `test_str` compares the needle with the lower-cased address, whatever the case
            // flag.
            AddressMatch::Address(m) => {
                out.extend(m.is_needles()?.iter().map(|n| (false, n.clone())));
                Some(())
            }
            // An empty domain never matches: it needs no key.
            AddressMatch::Domain(ds) => {
                out.extend(
                    ds.iter()
                        .filter(|d| !d.is_empty())
                        .map(|d| (true, d.clone())),
                );
                Some(())
            }
            AddressMatch::Any(_) | AddressMatch::Name(_) => None,
        }
    }

    /// Regexes of this matcher (for named captures).
    pub(crate) fn regexes<'a>(&'a self, out: &mut Vec<(&'a Regex, RegexTarget)>) {
        match self {
            AddressMatch::Any(ms) => ms.iter().for_each(|m| m.regexes(out)),
            AddressMatch::Address(m) => out.extend(m.regex().map(|r| (r, RegexTarget::Address))),
            AddressMatch::Name(m) => out.extend(m.regex().map(|r| (r, RegexTarget::Name))),
            AddressMatch::Domain(_) => {}
        }
    }
}

/// What an address regex runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RegexTarget {
    Address,
    Name,
}

/// `domain` is `want` or a subdomain of it.
pub(crate) fn domain_matches(domain: &str, want: &str) -> bool {
    if want.is_empty() {
        return false;
    }
    domain == want
        || (domain.len() > want.len()
            && domain.ends_with(want)
            && domain.as_bytes()[domain.len() - want.len() - 1] == b'.')
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
