//! Properties of the rules engine: matchers never panic, whatever the message or needle;
//! `not` inverts; `any` / `all` obey their laws.

use std::time::Duration;

use imapsort::rules::ast::*;
use imapsort::rules::{EvalContext, MessageFacts, MessageView, RuleSet};
use proptest::prelude::*;

const SP: Span = Span { line: 1, column: 1 };

fn c(kind: ConditionKind) -> Condition {
    Condition { span: SP, kind }
}

fn text(op: TextOp, case_sensitive: bool) -> TextMatcher {
    TextMatcher {
        span: SP,
        op,
        case_sensitive,
    }
}

fn holds(cond: Condition, view: &MessageView) -> bool {
    let rules = RuleSet::compile(vec![Rule {
        name: "r".into(),
        span: SP,
        when: cond,
        then: vec![Action {
            span: SP,
            kind: ActionKind::Flag(vec!["x".into()]),
        }],
        accounts: None,
        mailboxes: None,
        on: None,
        stop: false,
    }])
    .expect("compiles");
    let watch = vec!["INBOX".to_owned()];
    let ctx = EvalContext {
        account: None,
        mailbox: "INBOX",
        watch: &watch,
        trigger: None,
        now: "2026-03-10T12:00:00Z".parse().expect("now"),
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('.'),
        applied: None,
    };
    !rules.evaluate(view, &ctx).matched.is_empty()
}

fn text_op() -> impl Strategy<Value = TextOp> {
    let needles = prop::collection::vec(".{0,6}", 1..3);
    prop_oneof![
        needles.clone().prop_map(TextOp::Contains),
        needles.clone().prop_map(TextOp::Is),
        needles.clone().prop_map(TextOp::Prefix),
        needles.clone().prop_map(TextOp::Suffix),
        needles.prop_map(TextOp::Glob),
        any::<bool>().prop_map(TextOp::Exists),
        (-5.0f64..5.0).prop_map(TextOp::Gt),
        (-5.0f64..5.0).prop_map(TextOp::Le),
        "[a-z.*+?()\\[\\]|^$\\\\]{0,8}".prop_map(TextOp::Regex),
    ]
}

fn leaf() -> impl Strategy<Value = Condition> {
    (
        text_op(),
        any::<bool>(),
        0u8..12,
        "[A-Za-z-]{1,8}",
        0u64..400,
    )
        .prop_map(|(op, cs, which, name, n)| {
            let m = text(op.clone(), cs);
            let address = || AddressMatcher {
                span: SP,
                op: match which % 3 {
                    0 => AddressOp::Address(op.clone()),
                    1 => AddressOp::Domain(vec![name.to_lowercase()]),
                    _ => AddressOp::Name(m.clone()),
                },
                case_sensitive: cs,
            };
            c(match which {
                0 => ConditionKind::Subject(m),
                1 => ConditionKind::Header { name, matcher: m },
                2 => ConditionKind::ListId(m),
                3 => ConditionKind::Body(m),
                4 => ConditionKind::Attachment(m),
                5 => ConditionKind::Address {
                    field: AddressField::From,
                    matcher: address(),
                },
                6 => ConditionKind::Address {
                    field: AddressField::Recipient,
                    matcher: address(),
                },
                7 => ConditionKind::Size {
                    over: Some(n),
                    under: None,
                },
                8 => ConditionKind::Flag {
                    flag: SystemFlag::Seen,
                    set: cs,
                },
                9 => ConditionKind::OlderThan(Duration::from_secs(n * 86_400)),
                10 => ConditionKind::Keyword(name),
                _ => ConditionKind::HasAttachment(cs),
            })
        })
}

fn condition() -> impl Strategy<Value = Condition> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| c(ConditionKind::All(v))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| c(ConditionKind::Any(v))),
            inner.prop_map(|x| c(ConditionKind::Not(Box::new(x)))),
        ]
    })
}

/// Messages that exercise the matchers: generated headers plus arbitrary junk bytes.
fn message() -> impl Strategy<Value = Vec<u8>> {
    (
        ".{0,20}",
        "[a-zA-Z]{1,6}@[a-z]{1,5}\\.(org|com)",
        prop::option::of("[a-z.]{1,12}"),
        prop::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
    )
        .prop_map(|(subject, from, list, junk, with_attachment)| {
            let mut raw = format!("Subject: {subject}\nFrom: Some One <{from}>\nTo: x@y.org\n");
            if let Some(list) = list {
                raw.push_str(&format!("List-Id: L <{list}>\n"));
            }
            let mut raw = raw.into_bytes();
            raw.extend_from_slice(b"X-Junk: ");
            raw.extend_from_slice(&junk);
            raw.extend_from_slice(b"\n");
            if with_attachment {
                raw.extend_from_slice(
                    b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\nhi\n--B\n\
Content-Disposition: attachment; filename=a.pdf\n\nx\n--B--\n",
                );
            } else {
                raw.extend_from_slice(b"\nbody\n");
            }
            raw
        })
}

fn view(raw: &[u8], seen: bool) -> MessageView {
    MessageView::parse(
        raw,
        MessageFacts {
            flags: if seen { vec!["\\Seen".into()] } else { vec![] },
            size: raw.len() as u64,
            received: Some("2026-01-01T00:00:00+01:00[+01:00]".parse().expect("zoned")),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = view(&raw, false);
    }

    #[test]
    fn matchers_never_panic(cond in condition(), raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let v = view(&raw, false);
        // Invalid user regexes are compile errors, not panics.
        if RuleSet::compile(vec![rule_of(cond.clone())]).is_ok() {
            let _ = holds(cond, &v);
        }
    }

    #[test]
    fn not_inverts(cond in condition(), raw in message(), seen in any::<bool>()) {
        let v = view(&raw, seen);
        if RuleSet::compile(vec![rule_of(cond.clone())]).is_ok() {
            prop_assert_eq!(holds(c(ConditionKind::Not(Box::new(cond.clone()))), &v), !holds(cond, &v));
        }
    }

    #[test]
    fn any_all_laws(a in condition(), b in condition(), raw in message(), seen in any::<bool>()) {
        let v = view(&raw, seen);
        if RuleSet::compile(vec![rule_of(a.clone()), rule_of(b.clone())]).is_err() {
            return Ok(());
        }
        let (ha, hb) = (holds(a.clone(), &v), holds(b.clone(), &v));
        prop_assert!(!holds(c(ConditionKind::Any(vec![])), &v));
        prop_assert!(holds(c(ConditionKind::All(vec![])), &v));
        prop_assert_eq!(holds(c(ConditionKind::Any(vec![a.clone()])), &v), ha);
        prop_assert_eq!(holds(c(ConditionKind::All(vec![a.clone()])), &v), ha);
        prop_assert_eq!(holds(c(ConditionKind::Any(vec![a.clone(), b.clone()])), &v), ha || hb);
        prop_assert_eq!(holds(c(ConditionKind::All(vec![a.clone(), b.clone()])), &v), ha && hb);
        // De Morgan: not(any(a, b)) == all(not a, not b).
        let not = |x: Condition| c(ConditionKind::Not(Box::new(x)));
        prop_assert_eq!(
            holds(not(c(ConditionKind::Any(vec![a.clone(), b.clone()]))), &v),
            holds(c(ConditionKind::All(vec![not(a.clone()), not(b.clone())])), &v)
        );
        prop_assert_eq!(
            holds(not(c(ConditionKind::All(vec![a.clone(), b.clone()]))), &v),
            holds(c(ConditionKind::Any(vec![not(a), not(b)])), &v)
        );
    }
}

fn rule_of(when: Condition) -> Rule {
    Rule {
        name: "r".into(),
        span: SP,
        when,
        then: vec![Action {
            span: SP,
            kind: ActionKind::Stop,
        }],
        accounts: None,
        mailboxes: None,
        on: None,
        stop: false,
    }
}

/// The golden messages, mutated (bytes replaced, cut, spliced): parsing and evaluating every
/// kind of condition on them never panics.
fn golden_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("tests/golden").expect("golden dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "eml") {
            out.push(std::fs::read(path).expect("read eml"));
        }
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_messages_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        cut in any::<prop::sample::Index>(),
        cond in condition(),
    ) {
        let messages = golden_messages();
        let mut raw = messages[which.index(messages.len())].clone();
        for (at, byte) in edits {
            if !raw.is_empty() {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
        }
        let keep = cut.index(raw.len() + 1);
        raw.truncate(keep.max(raw.len() / 2));
        let v = view(&raw, false);
        if RuleSet::compile(vec![rule_of(cond.clone())]).is_ok() {
            let _ = holds(cond, &v);
        }
    }
}
