//! Address matchers, with RULES.md's inference: `"@x"` is a domain, a string holding `@`
//! elsewhere is the exact address, any other string is `contains` on the address.

use super::diag::Diags;
use super::node::{Node, Value};
use super::read::{self, MapKind};
use super::text::{patterns, text_matcher};
use crate::rules::ast::{AddressMatcher, AddressOp, Span, TextOp};

const ADDRESS_OPS: &[&str] = &[
    "is", "contains", "prefix", "suffix", "glob", "regex", "domain", "name",
];
const ADDRESS_KEYS: &[&str] = &[
    "is",
    "contains",
    "prefix",
    "suffix",
    "glob",
    "regex",
    "domain",
    "name",
    "case_sensitive",
];

/// An address matcher: inferred from a string or a list of strings, or a map with one operation.
pub(crate) fn address(d: &mut Diags, node: &Node, what: &str) -> Option<AddressMatcher> {
    let (op, case_sensitive) = match &node.value {
        Value::Str(s) => (infer_address(d, s, node.span, what)?, false),
        Value::Seq(items) if items.is_empty() => {
            d.error(
                node.span,
                format!("{what}: the list is empty, so it would never match"),
            );
            return None;
        }
        Value::Seq(items) => {
            let before = d.error_count();
            let mut ops = Vec::new();
            for item in items {
                match &item.value {
                    Value::Str(s) => {
                        if let Some(op) = infer_address(d, s, item.span, what) {
                            ops.push(op);
                        }
                    }
                    _ => d.error(
                        item.span,
                        format!(
                            "{what}: expected an address or domain string, found {}",
                            read::found(item)
                        ),
                    ),
                }
            }
            if d.error_count() != before {
                return None;
            }
            (AddressOp::Any(ops), false)
        }
        Value::Map(_) => address_map(d, node, what)?,
        _ => {
            d.error(
                node.span,
                format!(
                    "{what}: expected an address (\"alice@example.com\", \"@example.com\", \"billing\"), a list of them, or a map such as {{ domain: example.com }}, found {}",
                    read::found(node)
                ),
            );
            return None;
        }
    };
    Some(AddressMatcher {
        span: node.span,
        op,
        case_sensitive,
    })
}

/// RULES.md: `@x` is a domain; a string holding `@` elsewhere is the exact address; any other
/// string is `contains` on the address.
pub(crate) fn infer_address(d: &mut Diags, s: &str, span: Span, what: &str) -> Option<AddressOp> {
    if s.is_empty() {
        d.error(span, format!("{what}: must not be empty"));
        return None;
    }
    if let Some(domain) = s.strip_prefix('@') {
        if domain.is_empty() {
            d.error(span, format!("{what}: \"@\" names no domain"));
            return None;
        }
        return Some(AddressOp::Domain(vec![domain.to_owned()]));
    }
    if s.contains('@') {
        return Some(AddressOp::Address(TextOp::Is(vec![s.to_owned()])));
    }
    Some(AddressOp::Address(TextOp::Contains(vec![s.to_owned()])))
}

fn address_map(d: &mut Diags, node: &Node, what: &str) -> Option<(AddressOp, bool)> {
    let f = read::fields(
        d,
        node,
        what,
        &MapKind {
            noun: "key",
            context: " in an address matcher",
            allowed: ADDRESS_KEYS,
            quiet: &["exists"],
        },
    )?;
    if let Some((_, key_node, _)) = f.entries.iter().find(|(k, _, _)| *k == "exists") {
        d.error(
            key_node.span,
            format!(
                "exists applies only to header, subject and list_id; to test whether a message has the header, write header: {{ name: {}, exists: true }}",
                header_name(what)
            ),
        );
        return None;
    }
    let case_sensitive = match f.get("case_sensitive") {
        Some(n) => read::boolean(d, n, "case_sensitive")?,
        None => false,
    };
    let (key, _, value) = read::exactly_one(d, node, &f, what, ADDRESS_OPS)?;
    let op = match key {
        "is" => AddressOp::Address(TextOp::Is(patterns(d, value, key)?)),
        "contains" => AddressOp::Address(TextOp::Contains(patterns(d, value, key)?)),
        "prefix" => AddressOp::Address(TextOp::Prefix(patterns(d, value, key)?)),
        "suffix" => AddressOp::Address(TextOp::Suffix(patterns(d, value, key)?)),
        "glob" => AddressOp::Address(TextOp::Glob(patterns(d, value, key)?)),
        "regex" => AddressOp::Address(TextOp::Regex(read::string(d, value, "regex")?.to_owned())),
        "domain" => {
            let list = read::text_list(d, value, "domain")?;
            let mut domains = Vec::new();
            for (s, span) in list {
                let domain = s.strip_prefix('@').unwrap_or(&s);
                if domain.is_empty() || domain.contains('@') {
                    d.error(span, format!("domain: {s:?} is not a domain name"));
                    return None;
                }
                domains.push(domain.to_owned());
            }
            AddressOp::Domain(domains)
        }
        _ => {
            let mut m = text_matcher(d, value, "name", false)?;
            // A plain string under `name:` inherits the outer `case_sensitive`.
            if !matches!(value.value, Value::Map(_)) {
                m.case_sensitive = case_sensitive;
            }
            AddressOp::Name(m)
        }
    };
    Some((op, case_sensitive))
}

/// The header behind an address condition, for hints.
fn header_name(what: &str) -> &'static str {
    match what {
        "from" => "From",
        "sender" => "Sender",
        "reply_to" => "Reply-To",
        "to" => "To",
        "cc" => "Cc",
        "bcc" => "Bcc",
        _ => "To",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn inference_from_a_string() {
        let span = Span { line: 1, column: 1 };
        let cases = [
            (
                "@example.com",
                Some(AddressOp::Domain(vec!["example.com".into()])),
            ),
            (
                "@sub.example.com",
                Some(AddressOp::Domain(vec!["sub.example.com".into()])),
            ),
            (
                "alice@example.com",
                Some(AddressOp::Address(TextOp::Is(vec![
                    "alice@example.com".into(),
                ]))),
            ),
            (
                "alice@",
                Some(AddressOp::Address(TextOp::Is(vec!["alice@".into()]))),
            ),
            (
                "billing",
                Some(AddressOp::Address(TextOp::Contains(vec!["billing".into()]))),
            ),
            (
                "example.com",
                Some(AddressOp::Address(TextOp::Contains(vec![
                    "example.com".into(),
                ]))),
            ),
            ("@", None),
            ("", None),
        ];
        for (written, want) in cases {
            let mut d = Diags::new(Path::new("c.yaml"));
            assert_eq!(
                infer_address(&mut d, written, span, "from"),
                want,
                "{written:?}"
            );
            assert_eq!(d.error_count(), usize::from(want.is_none()), "{written:?}");
        }
    }
}
