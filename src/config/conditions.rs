//! `when:` — conditions. Their text and address matchers are read by `text` and `address`.

use super::address;
use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, MapKind};
use super::text::{text_matcher, text_op};
use crate::rules::ast::{AddressField, Condition, ConditionKind, Span, SystemFlag, TextMatcher};

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

const HEADER_KEYS: &[&str] = super::text::text_keys!("name"; "case_sensitive");

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
