//! Reading typed values out of [`Node`]s, reporting what is wrong at its place.
//!
//! Every helper reports its own error and returns `None`, so callers go on reading the rest of
//! the file: that is how every error of a file is reported at once.

use super::diag::Diags;
use super::node::{Node, Value};
use super::units;
use crate::rules::ast::Span;

/// The entries of a checked map: known keys only, first occurrence of each, in file order.
pub(crate) struct Fields<'a> {
    /// Where the map starts (for "missing key" errors).
    pub span: Span,
    /// (key, key node, value node) in file order.
    pub entries: Vec<(&'a str, &'a Node, &'a Node)>,
}

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// The value of `key`, treating an explicit `null` as absent.
    pub fn get_some(&self, key: &str) -> Option<&'a Node> {
        self.get(key).filter(|n| n.value != Value::Null)
    }

    /// The value of a required key; reports it missing (at the map) otherwise.
    pub fn require(&self, d: &mut Diags, key: &str, what: &str) -> Option<&'a Node> {
        let node = self.get(key);
        if node.is_none() {
            d.error(self.span, format!("missing key {key:?}: {what}"));
        }
        node
    }
}

/// How a map's unknown keys are named in messages.
pub(crate) struct MapKind<'s> {
    /// "key" or "condition".
    pub noun: &'s str,
    /// " in settings", " in an account", "" ...
    pub context: &'s str,
    /// Every key this map allows, in the order to list them.
    pub allowed: &'s [&'s str],
    /// Keys let through without being listed (the caller explains them better).
    pub quiet: &'s [&'s str],
}

/// Check that `node` is a map of string keys drawn from `kind.allowed`, without duplicates.
/// Reports a non-map (naming it `what`), unknown keys and duplicates; returns the known keys.
pub(crate) fn fields<'a>(
    d: &mut Diags,
    node: &'a Node,
    what: &str,
    kind: &MapKind<'_>,
) -> Option<Fields<'a>> {
    let Value::Map(entries) = &node.value else {
        d.error(
            node.span,
            format!("{what}: expected a map, found {}", found(node)),
        );
        return None;
    };
    let mut out = Fields {
        span: node.span,
        entries: Vec::new(),
    };
    let mut seen: Vec<(&str, Span)> = Vec::new();
    for (key, value) in entries {
        let Value::Str(name) = &key.value else {
            if matches!(key.value, Value::Seq(_) | Value::Map(_)) {
                d.error(
                    key.span,
                    format!("{what}: a key must be a plain word, found {}", found(key)),
                );
            } else {
                let text = key.scalar_text().unwrap_or_default();
                unknown_key(d, key.span, &text, kind);
            }
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == name.as_str()) {
            d.error(
                key.span,
                format!(
                    "duplicate key {name:?} (first at line {}, column {})",
                    first.line, first.column
                ),
            );
            continue;
        }
        seen.push((name, key.span));
        if kind.allowed.contains(&name.as_str()) || kind.quiet.contains(&name.as_str()) {
            out.entries.push((name, key, value));
        } else {
            unknown_key(d, key.span, name, kind);
        }
    }
    Some(out)
}

fn unknown_key(d: &mut Diags, span: Span, name: &str, kind: &MapKind<'_>) {
    let hint = did_you_mean(name, kind.allowed);
    d.error(
        span,
        format!(
            "unknown {} {name:?}{}{hint}; allowed: {}",
            kind.noun,
            kind.context,
            kind.allowed.join(", ")
        ),
    );
}

/// The allowed word closest to a misspelt one, if it is close enough to be a typo: at most one
/// edit per three letters (at least one), where swapping two neighbouring letters is one edit
/// (`form` -> `from`, `mvoe` -> `move`), compared without regard to case.
pub(crate) fn suggest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    allowed
        .iter()
        .map(|a| (strsim::osa_distance(&word, a), *a))
        .filter(|(dist, _)| *dist <= limit)
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, a)| a)
}

/// ` (did you mean "X"?)` when [`suggest`] finds a close word, else nothing.
pub(crate) fn did_you_mean(word: &str, allowed: &[&str]) -> String {
    suggest(word, allowed)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// Whether every key of the raw map made it into `f` (none unknown or duplicated).
pub(crate) fn all_keys_known(node: &Node, f: &Fields<'_>) -> bool {
    matches!(&node.value, Value::Map(e) if e.len() == f.entries.len())
}

/// The one operation key of a matcher map among `ops` (the map's keys already checked): an error
/// naming what was found when there is none or more than one. With no operation and an unknown
/// key, the unknown key was already reported, so nothing more is said.
pub(crate) fn exactly_one<'a>(
    d: &mut Diags,
    node: &Node,
    f: &Fields<'a>,
    what: &str,
    ops: &[&str],
) -> Option<(&'a str, &'a Node, &'a Node)> {
    let found: Vec<_> = f
        .entries
        .iter()
        .filter(|(k, _, _)| ops.contains(k))
        .collect();
    if let [one] = found.as_slice() {
        return Some(**one);
    }
    if found.is_empty() && !all_keys_known(node, f) {
        return None;
    }
    let named = if found.is_empty() {
        "none".to_owned()
    } else {
        found
            .iter()
            .map(|(k, _, _)| *k)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    d.error(
        node.span,
        format!(
            "{what}: give exactly one of {}; found {named}",
            ops.join(", ")
        ),
    );
    None
}

/// `found` where text is expected: a float would lose its spelling (2024.10 -> 2024.1), so
/// it is refused with a hint rather than turned into text.
pub(crate) fn found_for_text(node: &Node) -> String {
    match node.value {
        Value::Float(_) => format!("{} (put it in quotes to mean text)", found(node)),
        _ => found(node),
    }
}

/// What a node is, for "found ..." in messages. Strings are quoted; callers reading secrets
/// must not use it.
pub(crate) fn found(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => format!("the number {i}"),
        Value::UInt(u) => format!("the number {u}"),
        Value::Float(f) => format!("the number {f}"),
        other => other.kind().to_owned(),
    }
}

/// A string; `what` names it in the message (usually the key).
pub(crate) fn string<'a>(d: &mut Diags, node: &'a Node, what: &str) -> Option<&'a str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => {
            d.error(
                node.span,
                format!("{what}: expected a string, found {}", found(node)),
            );
            None
        }
    }
}

/// A non-empty string. Numbers are taken as their text (a mailbox called `2024`).
pub(crate) fn text(d: &mut Diags, node: &Node, what: &str) -> Option<String> {
    let s = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(_) | Value::UInt(_) => node.scalar_text()?,
        _ => {
            d.error(
                node.span,
                format!("{what}: expected a string, found {}", found_for_text(node)),
            );
            return None;
        }
    };
    if s.is_empty() {
        d.error(node.span, format!("{what}: must not be empty"));
        return None;
    }
    Some(s)
}

/// A non-empty string or a non-empty list of them (each with its place).
pub(crate) fn text_list(d: &mut Diags, node: &Node, what: &str) -> Option<Vec<(String, Span)>> {
    match &node.value {
        Value::Seq(items) => {
            if items.is_empty() {
                d.error(node.span, format!("{what}: the list is empty"));
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                match text(d, item, what) {
                    Some(s) => out.push((s, item.span)),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        Value::Map(_) | Value::Null | Value::Bool(_) => {
            d.error(
                node.span,
                format!(
                    "{what}: expected a string or a list of strings, found {}",
                    found(node)
                ),
            );
            None
        }
        _ => text(d, node, what).map(|s| vec![(s, node.span)]),
    }
}

/// Just the strings of [`text_list`].
pub(crate) fn strings(d: &mut Diags, node: &Node, what: &str) -> Option<Vec<String>> {
    text_list(d, node, what).map(|v| v.into_iter().map(|(s, _)| s).collect())
}

pub(crate) fn boolean(d: &mut Diags, node: &Node, what: &str) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => {
            d.error(
                node.span,
                format!("{what}: expected true or false, found {}", found(node)),
            );
            None
        }
    }
}

/// A whole number in `min..=max`.
pub(crate) fn integer(d: &mut Diags, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
    let n = match node.value {
        Value::Int(i) => u64::try_from(i).ok(),
        Value::UInt(u) => Some(u),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            d.error(
                node.span,
                format!(
                    "{what}: expected a whole number from {min} to {max}, found {}",
                    found(node)
                ),
            );
            None
        }
    }
}

/// A number (for `gt`, `lt`, `ge`, `le`).
pub(crate) fn number(d: &mut Diags, node: &Node, what: &str) -> Option<f64> {
    match node.value {
        Value::Int(i) => Some(i as f64),
        Value::UInt(u) => Some(u as f64),
        Value::Float(f) if f.is_finite() => Some(f),
        _ => {
            d.error(
                node.span,
                format!("{what}: expected a number, found {}", found(node)),
            );
            None
        }
    }
}

/// A duration written as text (`10m`, `1h 30m`).
pub(crate) fn duration(d: &mut Diags, node: &Node, what: &str) -> Option<std::time::Duration> {
    match &node.value {
        Value::Str(s) => match units::parse_duration(s) {
            Ok(v) => Some(v),
            Err(e) => {
                d.error(node.span, format!("{what}: {e}"));
                None
            }
        },
        Value::Int(i) => {
            d.error(
                node.span,
                format!("{what}: a duration needs a unit: {i}s, {i}m, {i}h, {i}d or {i}w"),
            );
            None
        }
        _ => {
            d.error(
                node.span,
                format!(
                    "{what}: expected a duration such as 10m or 1h 30m, found {}",
                    found(node)
                ),
            );
            None
        }
    }
}

/// A size: a number of bytes, or text with a unit (`10K`, `5M`).
pub(crate) fn size(d: &mut Diags, node: &Node, what: &str) -> Option<u64> {
    let parsed = match &node.value {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::UInt(u) => Ok(*u),
        Value::Str(s) => units::parse_size(s),
        _ => {
            d.error(
                node.span,
                format!(
                    "{what}: expected a size such as 500, 10K or 5M, found {}",
                    found(node)
                ),
            );
            return None;
        }
    };
    match parsed {
        Ok(v) => Some(v),
        Err(e) => {
            d.error(node.span, format!("{what}: {e}"));
            None
        }
    }
}

/// One of a fixed set of words (`tls: starttls`).
pub(crate) fn choice<T: Copy>(
    d: &mut Diags,
    node: &Node,
    what: &str,
    options: &[(&str, T)],
) -> Option<T> {
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let expected = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    };
    let Some(s) = node.as_str() else {
        d.error(
            node.span,
            format!("{what}: expected {expected}, found {}", found(node)),
        );
        return None;
    };
    match options.iter().find(|(n, _)| *n == s) {
        Some((_, v)) => Some(*v),
        None => {
            let hint = did_you_mean(s, &names);
            d.error(
                node.span,
                format!("{what}: unknown value {s:?}{hint}; expected {expected}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos() {
        let allowed = &["accounts", "rules", "settings", "on", "to", "cc", "subject"];
        for (word, want) in [
            ("acounts", Some("accounts")),
            ("sbuject", Some("subject")),
            ("Rules", Some("rules")),
            ("setting", Some("settings")),
            ("subjet", Some("subject")),
            ("ob", Some("on")),
            ("xyz", None),
            ("weather", None),
            ("", None),
        ] {
            assert_eq!(suggest(word, allowed), want, "{word:?}");
        }
    }

    /// Swapped neighbours are one slip of the fingers, as cargo and clap count them.
    #[test]
    fn swapped_letters_are_one_typo() {
        let allowed = &["from", "to", "move", "copy", "login", "tls"];
        for (word, want) in [
            ("form", Some("from")),
            ("mvoe", Some("move")),
            ("cpoy", Some("copy")),
            ("lgoin", Some("login")),
            ("tsl", Some("tls")),
            ("ot", Some("to")),
            ("mvoed", None),
            ("xyz", None),
        ] {
            assert_eq!(suggest(word, allowed), want, "{word:?}");
        }
    }
}
