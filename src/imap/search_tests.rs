use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::rules::ast::{AddressMatcher, Span, TextMatcher};

fn cond(kind: ConditionKind) -> Condition {
    Condition {
        span: Span::default(),
        kind,
    }
}

fn tm(op: TextOp) -> TextMatcher {
    TextMatcher {
        span: Span::default(),
        op,
        case_sensitive: false,
    }
}

fn addr(field: AddressField, op: AddressOp) -> ConditionKind {
    ConditionKind::Address {
        field,
        matcher: AddressMatcher {
            span: Span::default(),
            op,
            case_sensitive: false,
        },
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn now() -> Timestamp {
    "2026-03-10T12:00:00Z".parse().unwrap()
}

const DAY: u64 = 86_400;

#[test]
fn queries_render_as_imap_search_keys() {
    use ConditionKind as K;
    let cases: Vec<(Vec<ConditionKind>, &str)> = vec![
        (vec![K::True], "ALL"),
        (vec![], "NOT ALL"),
        (vec![K::Any(vec![])], "NOT ALL"),
        (
            vec![K::Flag {
                flag: SystemFlag::Seen,
                set: false,
            }],
            "UNSEEN",
        ),
        (
            vec![K::Not(Box::new(cond(K::Flag {
                flag: SystemFlag::Flagged,
                set: true,
            })))],
            "UNFLAGGED",
        ),
        (
            vec![K::Size {
                over: Some(1024),
                under: Some(4096),
            }],
            "LARGER 1024 SMALLER 4096",
        ),
        (
            vec![K::OlderThan(Duration::from_secs(30 * DAY))],
            "BEFORE 10-Feb-2026",
        ),
        (
            vec![K::NewerThan(Duration::from_secs(DAY))],
            "SINCE 8-Mar-2026",
        ),
        (
            vec![K::Not(Box::new(cond(K::OlderThan(Duration::from_secs(
                DAY,
            )))))],
            "NOT BEFORE 8-Mar-2026",
        ),
        (vec![K::Keyword("$Invoice".into())], "KEYWORD $Invoice"),
        (vec![K::Keyword("\\Seen".into())], "ALL"),
        (
            vec![addr(
                AddressField::From,
                AddressOp::Domain(s(&["example.com"])),
            )],
            "FROM \"example.com\"",
        ),
        (
            vec![addr(
                AddressField::Recipient,
                AddressOp::Address(TextOp::Is(s(&["a@b.example"]))),
            )],
            "OR TO \"a@b.example\" OR CC \"a@b.example\" BCC \"a@b.example\"",
        ),
        (
            vec![addr(
                AddressField::ReplyTo,
                AddressOp::Address(TextOp::Regex("x".into())),
            )],
            "ALL",
        ),
        (
            vec![K::Subject(tm(TextOp::Contains(s(&["say \"hi\" \\o/"]))))],
            r#"SUBJECT "say \"hi\" \\o/""#,
        ),
        (vec![K::Subject(tm(TextOp::Contains(s(&["Grüße"]))))], "ALL"),
        (
            vec![K::ListId(tm(TextOp::Exists(true)))],
            "HEADER \"LIST-ID\" \"\"",
        ),
        (
            vec![K::Header {
                name: "X-Spam-Flag".into(),
                matcher: tm(TextOp::Is(s(&["YES"]))),
            }],
            "HEADER \"X-Spam-Flag\" \"YES\"",
        ),
        (
            vec![K::Body(tm(TextOp::Contains(s(&["unsubscribe"]))))],
            "ALL",
        ),
        (
            vec![
                K::All(vec![
                    cond(K::OlderThan(Duration::from_secs(30 * DAY))),
                    cond(K::Flag {
                        flag: SystemFlag::Seen,
                        set: true,
                    }),
                ]),
                addr(AddressField::From, AddressOp::Domain(s(&["x.test"]))),
            ],
            "OR (BEFORE 10-Feb-2026 SEEN) FROM \"x.test\"",
        ),
        (
            // One rule that cannot be narrowed makes the whole sweep ALL.
            vec![
                K::Flag {
                    flag: SystemFlag::Draft,
                    set: true,
                },
                K::Body(tm(TextOp::Contains(s(&["x"])))),
            ],
            "ALL",
        ),
        (
            // A negated text condition cannot be pushed down.
            vec![K::Not(Box::new(cond(K::Subject(tm(TextOp::Contains(s(
                &["x"],
            )))))))],
            "ALL",
        ),
    ];
    for (kinds, want) in cases {
        let conds: Vec<Condition> = kinds.into_iter().map(cond).collect();
        let q = superset(&conds, now());
        assert_eq!(q.to_string(), want, "{conds:?}");
    }
}

#[test]
fn nothing_and_all_are_recognised() {
    assert!(superset(&[], now()).is_nothing());
    assert!(superset(&[cond(ConditionKind::True)], now()).is_all());
}

#[test]
fn a_query_reads_headers_when_any_key_names_one() {
    use ConditionKind as K;
    let old = || cond(K::OlderThan(Duration::from_secs(30 * DAY)));
    let subject = || cond(K::Subject(tm(TextOp::Contains(s(&["invoice"])))));
    let seen = || {
        cond(K::Flag {
            flag: SystemFlag::Seen,
            set: true,
        })
    };
    assert!(!superset(&[old()], now()).reads_headers());
    assert!(!superset(&[cond(K::All(vec![old(), seen()]))], now()).reads_headers());
    assert!(superset(&[subject()], now()).reads_headers());
    assert!(superset(&[cond(K::All(vec![old(), subject()]))], now()).reads_headers());
    // `not` of a substring is ALL (see the module), but a header under a NOT is still read.
    assert!(!superset(&[cond(K::Not(Box::new(subject())))], now()).reads_headers());
    let header = Query::Key(Key::Header {
        name: "List-Id".into(),
        value: String::new(),
    });
    assert!(Query::Not(Box::new(header)).reads_headers());
    // Not sendable as plain ASCII: the query is ALL, and the server reads no header.
    let grusse = cond(K::Subject(tm(TextOp::Contains(s(&["Grüße"])))));
    assert!(!superset(&[grusse], now()).reads_headers());
}

// ---- A local simulation of the server, to check the superset property -------------------

/// What the server knows of a message, for the exact (non-text) search keys.
#[derive(Clone, Debug)]
struct Sim {
    flags: [bool; 4],
    keywords: Vec<String>,
    size: u64,
    /// INTERNALDATE with the offset the server keeps.
    internal: jiff::Zoned,
}

fn flag_index(f: SystemFlag) -> usize {
    match f {
        SystemFlag::Seen => 0,
        SystemFlag::Flagged => 1,
        SystemFlag::Answered => 2,
        SystemFlag::Draft => 3,
    }
}

/// The server: dates compared on INTERNALDATE's calendar date in the zone it carries.
fn server(q: &Query, m: &Sim) -> bool {
    match q {
        Query::All => true,
        Query::Nothing => false,
        Query::And(v) => v.iter().all(|q| server(q, m)),
        Query::Or(v) => v.iter().any(|q| server(q, m)),
        Query::Not(q) => !server(q, m),
        Query::Key(k) => match k {
            Key::Flag { flag, set } => m.flags[flag_index(*flag)] == *set,
            Key::Keyword(k) => m.keywords.contains(k),
            Key::Larger(n) => m.size > *n,
            Key::Smaller(n) => m.size < *n,
            Key::Before(d) => m.internal.date() < *d,
            Key::Since(d) => m.internal.date() >= *d,
            Key::Header { .. } => unreachable!("no text conditions generated"),
        },
    }
}

/// The local meaning of the conditions RULES.md gives (for the kinds generated below).
fn local(c: &Condition, m: &Sim, now: Timestamp) -> bool {
    match &c.kind {
        ConditionKind::True => true,
        ConditionKind::All(v) => v.iter().all(|c| local(c, m, now)),
        ConditionKind::Any(v) => v.iter().any(|c| local(c, m, now)),
        ConditionKind::Not(c) => !local(c, m, now),
        ConditionKind::Flag { flag, set } => m.flags[flag_index(*flag)] == *set,
        ConditionKind::Keyword(k) => m.keywords.contains(k),
        ConditionKind::Size { over, under } => {
            over.is_none_or(|n| m.size > n) && under.is_none_or(|n| m.size < n)
        }
        ConditionKind::OlderThan(d) => {
            m.internal.timestamp() < now - jiff::SignedDuration::try_from(*d).unwrap()
        }
        ConditionKind::NewerThan(d) => {
            m.internal.timestamp() > now - jiff::SignedDuration::try_from(*d).unwrap()
        }
        other => unreachable!("not generated: {other:?}"),
    }
}

fn leaf() -> impl Strategy<Value = ConditionKind> {
    let flag = prop_oneof![
        Just(SystemFlag::Seen),
        Just(SystemFlag::Flagged),
        Just(SystemFlag::Answered),
        Just(SystemFlag::Draft)
    ];
    prop_oneof![
        Just(ConditionKind::True),
        (flag, any::<bool>()).prop_map(|(flag, set)| ConditionKind::Flag { flag, set }),
        prop_oneof![Just("work"), Just("$Invoice")]
            .prop_map(|k| ConditionKind::Keyword(k.to_owned())),
        (
            proptest::option::of(0u64..3000),
            proptest::option::of(0u64..3000)
        )
            .prop_filter("one bound", |(a, b)| a.is_some() || b.is_some())
            .prop_map(|(over, under)| ConditionKind::Size { over, under }),
        (0u64..(10 * DAY)).prop_map(|s| ConditionKind::OlderThan(Duration::from_secs(s))),
        (0u64..(10 * DAY)).prop_map(|s| ConditionKind::NewerThan(Duration::from_secs(s))),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    leaf().prop_map(cond).prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| cond(ConditionKind::All(v))),
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| cond(ConditionKind::Any(v))),
            inner.prop_map(|c| cond(ConditionKind::Not(Box::new(c)))),
        ]
    })
}

fn message() -> impl Strategy<Value = Sim> {
    (
        any::<[bool; 4]>(),
        proptest::sample::subsequence(vec!["work".to_owned(), "$Invoice".to_owned()], 0..=2),
        0u64..3000,
        // Arrival within twelve days of `now`, with an offset from -12h to +14h.
        0i64..(12 * DAY as i64),
        -12i8..=14,
    )
        .prop_map(|(flags, keywords, size, ago, offset)| {
            let tz = jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(offset));
            let ts = now() - jiff::SignedDuration::from_secs(ago);
            Sim {
                flags,
                keywords,
                size,
                internal: ts.to_zoned(tz),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// If the rules could match a message, the server's answer to the query includes it.
    #[test]
    fn the_query_is_a_superset_of_local_matches(
        conds in proptest::collection::vec(condition(), 0..4),
        m in message(),
    ) {
        let q = superset(&conds, now());
        if conds.iter().any(|c| local(c, &m, now())) {
            prop_assert!(server(&q, &m), "query {q} misses {m:?}");
        }
    }
}
