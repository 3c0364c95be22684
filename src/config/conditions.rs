//! `when:` — conditions and text matchers (a string is `contains`, a list any `contains`, a map
//! one operation).

use super::address;
use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, Fields, MapKind};
use crate::rules::ast::{
    AddressField, Condition, ConditionKind, Span, SystemFlag, TextMatcher, TextOp,
};

const CONDITIONS: &[&str] = &[
    "all",
    "any",
    "not",
    "from",
    "sender",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "recipient",
    "subject",
    "header",
    "list_id",
    "body",
    "size",
    "older_than",
    "newer_than",
    "sent_before",
    "sent_after",
    "seen",
    "flagged",
    "answered",
    "draft",
    "keyword",
    "has_attachment",
    "attachment",
];

const TEXT_OPS: &[&str] = &[
    "contains", "is", "prefix", "suffix", "glob", "regex", "exists", "gt", "lt", "ge", "le",
];
const TEXT_KEYS: &[&str] = &[
    "contains",
    "is",
    "prefix",
    "suffix",
    "glob",
    "regex",
    "exists",
    "gt",
    "lt",
    "ge",
    "le",
    "case_sensitive",
];
const HEADER_KEYS: &[&str] = &[
    "name",
    "contains",
    "is",
    "prefix",
    "suffix",
    "glob",
    "regex",
    "exists",
    "gt",
    "lt",
    "ge",
    "le",
    "case_sensitive",
];
/// Read a condition: a map (several keys: all must hold), or `true` / `false`.
/// `false` becomes an empty `any` (never holds), so a rule can be switched off in place.
pub(crate) fn condition(d: &mut Diags, node: &Node, what: &str) -> Option<Condition> {
    let kind = match &node.value {
        Value::Bool(true) => ConditionKind::True,
        Value::Bool(false) => ConditionKind::Any(Vec::new()),
        Value::Map(entries) if entries.is_empty() => {
            d.error(
                node.span,
                format!("{what}: the condition is empty; write true to match every message"),
            );
            return None;
        }
        Value::Map(entries) => {
            let before = d.error_count();
            let f = read::fields(
                d,
                node,
                what,
                &MapKind {
                    noun: "condition",
                    context: "",
                    allowed: CONDITIONS,
                    quiet: &[],
                },
            )?;
            let mut parts = Vec::new();
            for (key, key_node, value) in &f.entries {
                if let Some(c) = single(d, key, key_node.span, value) {
                    parts.push(c);
                }
            }
            if d.error_count() != before {
                return None;
            }
            if entries.len() == 1 {
                return parts.pop();
            }
            ConditionKind::All(parts)
        }
        _ => {
            d.error(
                node.span,
                format!(
                    "{what}: expected a condition (a map such as {{ from: \"@example.com\" }}, or true), found {}",
                    read::found(node)
                ),
            );
            return None;
        }
    };
    Some(Condition {
        span: node.span,
        kind,
    })
}

/// One `key: value` of a condition map.
fn single(d: &mut Diags, key: &str, span: Span, value: &Node) -> Option<Condition> {
    let kind = match key {
        "all" | "any" => {
            let Value::Seq(items) = &value.value else {
                d.error(
                    value.span,
                    format!(
                        "{key}: expected a list of conditions, found {}",
                        read::found(value)
                    ),
                );
                return None;
            };
            let before = d.error_count();
            let list: Vec<Condition> = items
                .iter()
                .filter_map(|item| condition(d, item, key))
                .collect();
            if d.error_count() != before {
                return None;
            }
            if key == "all" {
                ConditionKind::All(list)
            } else {
                ConditionKind::Any(list)
            }
        }
        "not" => ConditionKind::Not(Box::new(condition(d, value, "not")?)),
        "from" | "sender" | "reply_to" | "to" | "cc" | "bcc" | "recipient" => {
            let field = match key {
                "from" => AddressField::From,
                "sender" => AddressField::Sender,
                "reply_to" => AddressField::ReplyTo,
                "to" => AddressField::To,
                "cc" => AddressField::Cc,
                "bcc" => AddressField::Bcc,
                _ => AddressField::Recipient,
            };
            ConditionKind::Address {
                field,
                matcher: address::address(d, value, key)?,
            }
        }
        "subject" => ConditionKind::Subject(text_matcher(d, value, key, true)?),
        "list_id" => ConditionKind::ListId(text_matcher(d, value, key, true)?),
        "body" => ConditionKind::Body(text_matcher(d, value, key, false)?),
        "attachment" => ConditionKind::Attachment(text_matcher(d, value, key, false)?),
        "header" => header(d, value)?,
        "size" => size(d, value)?,
        "older_than" => ConditionKind::OlderThan(read::duration(d, value, key)?),
        "newer_than" => ConditionKind::NewerThan(read::duration(d, value, key)?),
        "sent_before" => ConditionKind::SentBefore(read::duration(d, value, key)?),
        "sent_after" => ConditionKind::SentAfter(read::duration(d, value, key)?),
        "seen" | "flagged" | "answered" | "draft" => {
            let flag = match key {
                "seen" => SystemFlag::Seen,
                "flagged" => SystemFlag::Flagged,
                "answered" => SystemFlag::Answered,
                _ => SystemFlag::Draft,
            };
            ConditionKind::Flag {
                flag,
                set: read::boolean(d, value, key)?,
            }
        }
        "keyword" => {
            let s = read::text(d, value, key)?;
            match flag_name(&s) {
                Ok(k) => ConditionKind::Keyword(k),
                Err(e) => {
                    d.error(value.span, format!("keyword: {e}"));
                    return None;
                }
            }
        }
        "has_attachment" => ConditionKind::HasAttachment(read::boolean(d, value, key)?),
        _ => unreachable!("fields() admits only CONDITIONS"),
    };
    Some(Condition { span, kind })
}

/// `header: { name: NAME, <one text operation>, case_sensitive? }`.
fn header(d: &mut Diags, node: &Node) -> Option<ConditionKind> {
    let f = read::fields(
        d,
        node,
        "header",
        &MapKind {
            noun: "key",
            context: " in header",
            allowed: HEADER_KEYS,
            quiet: &[],
        },
    )?;
    let name = f
        .require(
            d,
            "name",
            "the header's name, as in header: { name: X-Spam, contains: yes }",
        )
        .and_then(|n| read::text(d, n, "header name"));
    let name = name.and_then(|n| {
        let bad = n.chars().any(|c| !c.is_ascii_graphic() || c == ':');
        if bad {
            d.error(
                f.get("name").map_or(f.span, |v| v.span),
                format!("header name {n:?} may hold only printable ASCII characters without spaces or \":\""),
            );
            None
        } else {
            Some(n)
        }
    });
    let (op, case_sensitive) = text_op(d, node, &f, "header", true)?;
    Some(ConditionKind::Header {
        name: name?,
        matcher: TextMatcher {
            span: node.span,
            op,
            case_sensitive,
        },
    })
}

/// `size: { over: SIZE, under: SIZE }`, at least one.
fn size(d: &mut Diags, node: &Node) -> Option<ConditionKind> {
    let f = read::fields(
        d,
        node,
        "size",
        &MapKind {
            noun: "key",
            context: " in size",
            allowed: &["over", "under"],
            quiet: &[],
        },
    )?;
    if f.entries.is_empty() {
        if !has_keys(node) {
            d.error(
                node.span,
                "size: give over, under or both, as in size: { over: 5M }",
            );
        }
        return None;
    }
    let before = d.error_count();
    let over = f.get("over").and_then(|n| read::size(d, n, "size over"));
    let under = f.get("under").and_then(|n| read::size(d, n, "size under"));
    if d.error_count() != before {
        return None;
    }
    if let (Some(o), Some(u)) = (over, under)
        && u <= o.saturating_add(1)
    {
        d.warning(
            node.span,
            format!("size: no message is over {o} and under {u} bytes at once; this never matches"),
        );
    }
    Some(ConditionKind::Size { over, under })
}

fn has_keys(node: &Node) -> bool {
    matches!(&node.value, Value::Map(e) if !e.is_empty())
}

/// A text matcher: a string (`contains`), a list of strings (any `contains`), or a map with
/// exactly one operation. `exists_ok`: the subject is a header, so `exists` makes sense.
pub(crate) fn text_matcher(
    d: &mut Diags,
    node: &Node,
    what: &str,
    exists_ok: bool,
) -> Option<TextMatcher> {
    let op = match &node.value {
        Value::Map(_) => {
            let f = read::fields(
                d,
                node,
                what,
                &MapKind {
                    noun: "key",
                    context: " in a text matcher",
                    allowed: TEXT_KEYS,
                    quiet: &[],
                },
            )?;
            let (op, case_sensitive) = text_op(d, node, &f, what, exists_ok)?;
            return Some(TextMatcher {
                span: node.span,
                op,
                case_sensitive,
            });
        }
        Value::Null | Value::Bool(_) => {
            d.error(
                node.span,
                format!(
                    "{what}: expected a string, a list of strings or a map such as {{ regex: ... }}, found {}",
                    read::found(node)
                ),
            );
            return None;
        }
        _ => TextOp::Contains(patterns(d, node, what)?),
    };
    Some(TextMatcher {
        span: node.span,
        op,
        case_sensitive: false,
    })
}

/// The one operation of a text-matcher map (already checked for unknown keys).
fn text_op(
    d: &mut Diags,
    node: &Node,
    f: &Fields<'_>,
    what: &str,
    exists_ok: bool,
) -> Option<(TextOp, bool)> {
    let ops: Vec<_> = f
        .entries
        .iter()
        .filter(|(k, _, _)| TEXT_OPS.contains(k))
        .collect();
    let case_sensitive = match f.get("case_sensitive") {
        Some(n) => read::boolean(d, n, "case_sensitive")?,
        None => false,
    };
    let [(key, key_node, value)] = ops.as_slice() else {
        if ops.is_empty() && !all_keys_known(node, f) {
            return None;
        }
        let found = if ops.is_empty() {
            "none".to_owned()
        } else {
            ops.iter()
                .map(|(k, _, _)| *k)
                .collect::<Vec<_>>()
                .join(" and ")
        };
        d.error(
            node.span,
            format!(
                "{what}: give exactly one of contains, is, prefix, suffix, glob, regex, exists, gt, lt, ge, le; found {found}"
            ),
        );
        return None;
    };
    let op = match *key {
        "contains" => TextOp::Contains(patterns(d, value, key)?),
        "is" => TextOp::Is(patterns(d, value, key)?),
        "prefix" => TextOp::Prefix(patterns(d, value, key)?),
        "suffix" => TextOp::Suffix(patterns(d, value, key)?),
        "glob" => TextOp::Glob(patterns(d, value, key)?),
        "regex" => TextOp::Regex(read::string(d, value, "regex")?.to_owned()),
        "exists" => {
            if !exists_ok {
                d.error(
                    key_node.span,
                    format!(
                        "exists applies only to headers (header, subject, list_id), not to {what}"
                    ),
                );
                return None;
            }
            TextOp::Exists(read::boolean(d, value, "exists")?)
        }
        "gt" => TextOp::Gt(read::number(d, value, key)?),
        "lt" => TextOp::Lt(read::number(d, value, key)?),
        "ge" => TextOp::Ge(read::number(d, value, key)?),
        _ => TextOp::Le(read::number(d, value, key)?),
    };
    Some((op, case_sensitive))
}

/// Whether every key of the raw map made it into `f` (none unknown or duplicated).
pub(crate) fn all_keys_known(node: &Node, f: &Fields<'_>) -> bool {
    matches!(&node.value, Value::Map(e) if e.len() == f.entries.len())
}

/// A string or a non-empty list of strings to match; empty strings are allowed (`is: ""`
/// matches a header that is present but empty). Numbers are taken as their text.
pub(crate) fn patterns(d: &mut Diags, node: &Node, what: &str) -> Option<Vec<String>> {
    let one = |d: &mut Diags, n: &Node| match &n.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(_) | Value::UInt(_) => n.scalar_text(),
        _ => {
            d.error(
                n.span,
                format!(
                    "{what}: expected a string, found {}",
                    read::found_for_text(n)
                ),
            );
            None
        }
    };
    match &node.value {
        Value::Seq(items) if items.is_empty() => {
            d.error(
                node.span,
                format!("{what}: the list is empty, so it would never match"),
            );
            None
        }
        Value::Seq(items) => {
            let before = d.error_count();
            let out: Vec<String> = items.iter().filter_map(|i| one(d, i)).collect();
            (d.error_count() == before).then_some(out)
        }
        _ => one(d, node).map(|s| vec![s]),
    }
}

/// A flag or keyword as IMAP knows it: system flags (`\Seen`, any case) in their canonical
/// spelling; keywords as atoms (no spaces, no `( ) { % * " \ ]`, ASCII only).
pub(crate) fn flag_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the flag name is empty".to_owned());
    }
    if let Some(rest) = s.strip_prefix('\\') {
        let canonical = ["Seen", "Answered", "Flagged", "Deleted", "Draft"]
            .into_iter()
            .find(|f| f.eq_ignore_ascii_case(rest));
        return match canonical {
            Some(f) => Ok(format!("\\{f}")),
            None => Err(format!(
                "unknown system flag \"{s}\"; system flags are \\Seen, \\Answered, \\Flagged, \\Deleted, \\Draft (keywords are written without a backslash)"
            )),
        };
    }
    let bad = |c: char| !c.is_ascii_graphic() || "(){%*\"\\]".contains(c);
    if s.chars().any(bad) {
        return Err(format!(
            "keyword \"{s}\" may hold only printable ASCII without spaces or any of ( ) {{ % * \" \\ ]"
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names() {
        let cases = [
            ("\\Seen", Ok("\\Seen")),
            ("\\seen", Ok("\\Seen")),
            ("\\FLAGGED", Ok("\\Flagged")),
            ("\\Deleted", Ok("\\Deleted")),
            ("$Important", Ok("$Important")),
            ("work", Ok("work")),
            ("Junk-2", Ok("Junk-2")),
            ("\\Recent", Err(())),
            ("\\", Err(())),
            ("two words", Err(())),
            ("a(b", Err(())),
            ("a]b", Err(())),
            ("a*", Err(())),
            ("straße", Err(())),
            ("", Err(())),
        ];
        for (written, want) in cases {
            let got = flag_name(written).map_err(|_| ());
            assert_eq!(got, want.map(str::to_owned), "{written:?}");
        }
    }
}
