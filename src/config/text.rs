//! Text matchers: a string is `contains`, a list any `contains`, a map one operation (and
//! `case_sensitive`). Read for conditions (`subject`, `header`, `body` ...) and for an address
//! matcher's `name`.

use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, Fields, MapKind};
use crate::rules::ast::{TextMatcher, TextOp};

/// A text matcher's operations, with the keys `before` and `after` them that a map may hold
/// too: one list for the operations ([`TEXT_OPS`]), a text matcher's keys ([`TEXT_KEYS`]) and
/// a header condition's (`conditions::HEADER_KEYS`, with `name`), in the order error
/// messages list them.
macro_rules! text_keys {
    ($($before:literal),* ; $($after:literal),*) => {
        &[
            $($before,)* "contains", "is", "prefix", "suffix", "glob", "regex", "exists", "gt",
            "lt", "ge", "le", $($after),*
        ]
    };
}
pub(crate) use text_keys;

const TEXT_OPS: &[&str] = text_keys!(;);
const TEXT_KEYS: &[&str] = text_keys!(; "case_sensitive");

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
pub(crate) fn text_op(
    d: &mut Diags,
    node: &Node,
    f: &Fields<'_>,
    what: &str,
    exists_ok: bool,
) -> Option<(TextOp, bool)> {
    let case_sensitive = match f.get("case_sensitive") {
        Some(n) => read::boolean(d, n, "case_sensitive")?,
        None => false,
    };
    let (key, key_node, value) = read::exactly_one(d, node, f, what, TEXT_OPS)?;
    let op = match key {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_lists_share_the_operations_in_one_order() {
        let ops = [
            "contains", "is", "prefix", "suffix", "glob", "regex", "exists", "gt", "lt", "ge", "le",
        ];
        assert_eq!(TEXT_OPS, ops);
        assert_eq!(TEXT_KEYS[..ops.len()], ops);
        assert_eq!(TEXT_KEYS[ops.len()..], ["case_sensitive"]);
        let header: &[&str] = text_keys!("name"; "case_sensitive");
        assert_eq!(header[0], "name");
        assert_eq!(header[1..], *TEXT_KEYS);
    }
}
