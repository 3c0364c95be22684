//! The index and the Subject regex set never change an outcome: evaluation with them equals
//! evaluation trying every rule and every regex alone, on table cases and on generated rule
//! sets and messages.

use proptest::prelude::*;

use crate::rules::ast::*;
use crate::rules::{EvalContext, MessageFacts, MessageView, RuleSet};
use crate::vocab::MailboxName;

const SP: Span = Span { line: 1, column: 1 };

fn c(kind: ConditionKind) -> Condition {
    Condition { span: SP, kind }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn addr(field: AddressField, op: AddressOp) -> Condition {
    c(ConditionKind::Address {
        field,
        matcher: AddressMatcher {
            span: SP,
            op,
            case_sensitive: false,
        },
    })
}

fn is(v: &[&str]) -> AddressOp {
    AddressOp::Address(TextOp::Is(strs(v)))
}

fn domain(v: &[&str]) -> AddressOp {
    AddressOp::Domain(strs(v))
}

fn list_is(v: &[&str], case_sensitive: bool) -> Condition {
    c(ConditionKind::ListId(TextMatcher {
        span: SP,
        op: TextOp::Is(strs(v)),
        case_sensitive,
    }))
}

fn rule(name: &str, when: Condition, then: Vec<ActionKind>, stop: bool) -> Rule {
    Rule {
        name: name.into(),
        span: SP,
        when,
        then: then
            .into_iter()
            .map(|kind| Action { span: SP, kind })
            .collect(),
        accounts: None,
        mailboxes: None,
        on: None,
        stop,
    }
}

fn flag_rule(name: &str, when: Condition) -> Rule {
    rule(name, when, vec![ActionKind::Flag(strs(&[name]))], false)
}

fn view(raw: &str) -> MessageView {
    MessageView::parse(
        raw.as_bytes(),
        MessageFacts {
            flags: vec![],
            size: raw.len() as u64,
            received: None,
        },
    )
}

/// Both evaluations, asserted equal; returns the names of the rules that matched.
fn both(rules: &RuleSet, v: &MessageView) -> Vec<String> {
    let watch = vec![MailboxName::inbox()];
    let ctx = EvalContext {
        account: Some("personal"),
        mailbox: &MailboxName::inbox(),
        watch: &watch,
        trigger: None,
        now: "2026-03-10T12:00:00Z".parse().expect("now"),
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('/'),
        applied: None,
    };
    let indexed = rules.evaluate(v, &ctx);
    let plain = rules.evaluate_plain(v, &ctx);
    assert_eq!(indexed, plain);
    indexed.matched.into_iter().map(|m| m.rule).collect()
}

#[test]
fn guards_are_found_where_a_key_is_necessary() {
    let subject = || {
        c(ConditionKind::Subject(TextMatcher {
            span: SP,
            op: TextOp::Contains(strs(&["x"])),
            case_sensitive: false,
        }))
    };
    let cases: Vec<(&str, Condition, bool)> = vec![
        (
            "exact",
            addr(AddressField::From, is(&["a@x.example"])),
            true,
        ),
        (
            "domain",
            addr(AddressField::To, domain(&["x.example"])),
            true,
        ),
        (
            "any of exact and domain",
            addr(
                AddressField::Cc,
                AddressOp::Any(vec![is(&["a@x.example"]), domain(&["y.example"])]),
            ),
            true,
        ),
        (
            "any with a contains",
            addr(
                AddressField::From,
                AddressOp::Any(vec![
                    is(&["a@x.example"]),
                    AddressOp::Address(TextOp::Contains(strs(&["a"]))),
                ]),
            ),
            false,
        ),
        (
            "contains",
            addr(
                AddressField::From,
                AddressOp::Address(TextOp::Contains(strs(&["a@x"]))),
            ),
            false,
        ),
        (
            "exists",
            addr(AddressField::From, AddressOp::Address(TextOp::Exists(true))),
            false,
        ),
        ("list id is", list_is(&["l.example"], false), true),
        (
            "all, key second",
            c(ConditionKind::All(vec![
                subject(),
                addr(AddressField::From, is(&["a@x.example"])),
            ])),
            true,
        ),
        (
            "all without a key",
            c(ConditionKind::All(vec![subject(), subject()])),
            false,
        ),
        (
            "any across fields",
            c(ConditionKind::Any(vec![
                addr(AddressField::From, is(&["a@x.example"])),
                list_is(&["l.example"], true),
            ])),
            true,
        ),
        (
            "any with a keyless branch",
            c(ConditionKind::Any(vec![
                addr(AddressField::From, is(&["a@x.example"])),
                subject(),
            ])),
            false,
        ),
        ("empty any", c(ConditionKind::Any(vec![])), false),
        (
            "not",
            c(ConditionKind::Not(Box::new(addr(
                AddressField::From,
                is(&["a@x.example"]),
            )))),
            false,
        ),
    ];
    for (name, when, guarded) in cases {
        let rules = RuleSet::compile(vec![flag_rule(name, when)]).expect("compiles");
        assert_eq!(rules.index.guarded() == 1, guarded, "{name}");
    }
}

#[test]
fn indexed_evaluation_matches_plain_on_tricky_messages() {
    let rules = RuleSet::compile(vec![
        flag_rule("from a", addr(AddressField::From, is(&["A@X.example"]))),
        flag_rule(
            "from corp",
            addr(AddressField::From, domain(&["@Corp.Example."])),
        ),
        flag_rule("to dotted", addr(AddressField::To, domain(&[".example"]))),
        flag_rule(
            "recipient b",
            addr(AddressField::Recipient, is(&["b@y.example"])),
        ),
        flag_rule("list ci", list_is(&["Rust.Lists.Example"], false)),
        flag_rule("list cs", list_is(&["Rust.Lists.Example"], true)),
        flag_rule("empty domain", addr(AddressField::From, domain(&[""]))),
        flag_rule(
            "not from a",
            c(ConditionKind::Not(Box::new(addr(
                AddressField::From,
                is(&["a@x.example"]),
            )))),
        ),
        rule(
            "stop on sender",
            addr(AddressField::Sender, is(&["s@x.example"])),
            vec![ActionKind::Move("Sent by s".into())],
            true,
        ),
        flag_rule("after stop", addr(AddressField::From, is(&["a@x.example"]))),
    ])
    .expect("compiles");
    let cases: Vec<(&str, &[&str])> = vec![
        ("From: A <a@X.Example>\r\n\r\n", &["from a", "after stop"]),
        (
            "From: a@x.example\r\nFrom: b@corp.example\r\n\r\n",
            &["not from a"],
        ),
        (
            "From: c@mail.CORP.example\r\nTo: z@a..example, b@y.example\r\n\r\n",
            &["from corp", "to dotted", "recipient b", "not from a"],
        ),
        (
            "From: c@corp.example.org\r\nCc: B@Y.EXAMPLE\r\n\r\n",
            &["recipient b", "not from a"],
        ),
        (
            "From: c@notcorp.example\r\nTo: t@example\r\n\r\n",
            &["not from a"],
        ),
        (
            "List-Id: Rust <rust.lists.example>\r\n\r\n",
            &["list ci", "not from a"],
        ),
        (
            "List-Id: <Rust.Lists.Example>\r\n\r\n",
            &["list ci", "list cs", "not from a"],
        ),
        (
            "From: a@x.example\r\nSender: s@x.example\r\n\r\n",
            &["from a", "stop on sender"],
        ),
        ("\r\n", &["not from a"]),
    ];
    for (raw, want) in cases {
        assert_eq!(both(&rules, &view(raw)), strs(want), "{raw:?}");
    }
}

#[test]
fn subject_regexes_share_one_set_with_per_rule_answers() {
    let regex = |re: &str, case_sensitive: bool| {
        c(ConditionKind::Subject(TextMatcher {
            span: SP,
            op: TextOp::Regex(re.into()),
            case_sensitive,
        }))
    };
    let rules = RuleSet::compile(vec![
        flag_rule("invoice", regex("invoice #[0-9]+", false)),
        flag_rule("Exact", regex("Invoice", true)),
        flag_rule(
            "not re",
            c(ConditionKind::Not(Box::new(regex("^re:", false)))),
        ),
        flag_rule(
            "second subject",
            c(ConditionKind::All(vec![
                regex("week", false),
                regex("^x", false),
            ])),
        ),
    ])
    .expect("compiles");
    assert!(rules.subject_sets.is_some());
    let cases: Vec<(&str, &[&str])> = vec![
        ("Subject: RE: INVOICE #12\r\n\r\n", &["invoice"]),
        ("Subject: an Invoice\r\n\r\n", &["Exact", "not re"]),
        (
            "Subject: weekly\r\nSubject: X\r\n\r\n",
            &["not re", "second subject"],
        ),
        ("X: no subject\r\n\r\n", &["not re"]),
    ];
    for (raw, want) in cases {
        assert_eq!(both(&rules, &view(raw)), strs(want), "{raw:?}");
    }
    let one = RuleSet::compile(vec![flag_rule("one", regex("a", false))]).expect("compiles");
    assert!(one.subject_sets.is_none(), "a single regex runs alone");
}

const ADDRS: &[&str] = &[
    "a@x.example",
    "b@corp.example",
    "c@mail.corp.example",
    "d@example",
    "e@corp.example.org",
    "f@x..example",
];
const DOMAINS: &[&str] = &[
    "x.example",
    "corp.example",
    "example",
    ".example",
    "@corp.example",
    "org",
    "",
];
const LISTS: &[&str] = &["rust.lists.example", "Tokio.Example", "other"];
const SUBJECT_REGEXES: &[&str] = &[
    "^re:",
    "invoice #[0-9]+",
    "(?-i)Invoice",
    "ü",
    r"\bweek\b",
    "^$",
    "a|b",
    "[[:upper:]]{3}",
    "ß",
    "k",
];
const SUBJECTS: &[&str] = &[
    "Re: Invoice #12",
    "INVOICE #7",
    "a weekly week",
    "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_=C3=9CBER?=",
    "",
    "KELVIN \u{212A}",
    "STRASSE",
    "xyz",
];
const FIELDS: &[AddressField] = &[
    AddressField::From,
    AddressField::Sender,
    AddressField::ReplyTo,
    AddressField::To,
    AddressField::Cc,
    AddressField::Bcc,
    AddressField::Recipient,
];

/// Swap the case of some letters, so case folding is exercised.
fn recase(s: &str, mask: u32) -> String {
    s.chars()
        .enumerate()
        .map(|(i, ch)| {
            if mask & (1 << (i % 32)) != 0 {
                ch.to_ascii_uppercase()
            } else {
                ch
            }
        })
        .collect()
}

fn pick<'a>(pool: &'a [&'a str]) -> impl Strategy<Value = String> + 'a {
    (0..pool.len(), any::<u32>()).prop_map(|(i, m)| recase(pool[i], m & 0x0f0f))
}

fn address_op() -> impl Strategy<Value = AddressOp> {
    let leaf = prop_oneof![
        prop::collection::vec(pick(ADDRS), 1..3).prop_map(|v| AddressOp::Address(TextOp::Is(v))),
        prop::collection::vec(pick(DOMAINS), 1..3).prop_map(AddressOp::Domain),
        pick(ADDRS).prop_map(|a| AddressOp::Address(TextOp::Contains(vec![a]))),
    ];
    prop_oneof![
        3 => leaf.clone(),
        1 => prop::collection::vec(leaf, 0..3).prop_map(AddressOp::Any),
    ]
}

fn leaf() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => (0..FIELDS.len(), address_op()).prop_map(|(f, op)| addr(FIELDS[f], op)),
        2 => (prop::collection::vec(pick(LISTS), 1..3), any::<bool>()).prop_map(|(v, cs)| {
            c(ConditionKind::ListId(TextMatcher {
                span: SP,
                op: TextOp::Is(v),
                case_sensitive: cs,
            }))
        }),
        2 => (0..SUBJECT_REGEXES.len(), any::<bool>()).prop_map(|(i, cs)| {
            c(ConditionKind::Subject(TextMatcher {
                span: SP,
                op: TextOp::Regex(SUBJECT_REGEXES[i].into()),
                case_sensitive: cs,
            }))
        }),
        1 => any::<bool>().prop_map(|set| c(ConditionKind::Flag {
            flag: SystemFlag::Seen,
            set,
        })),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| c(ConditionKind::All(v))),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| c(ConditionKind::Any(v))),
            inner.prop_map(|x| c(ConditionKind::Not(Box::new(x)))),
        ]
    })
}

fn rule_set() -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec((condition(), 0..4u8, any::<bool>()), 1..12).prop_map(|rs| {
        rs.into_iter()
            .enumerate()
            .map(|(i, (when, action, stop))| {
                let name = format!("r{i}");
                let then = match action {
                    0 => ActionKind::Flag(vec![name.clone()]),
                    1 => ActionKind::Move(format!("M/{name}")),
                    2 => ActionKind::Label(vec![name.clone()]),
                    _ => ActionKind::Copy("C/{list_id}".into()),
                };
                rule(&name, when, vec![then], stop)
            })
            .collect()
    })
}

fn header(name: &'static str, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::collection::vec(pick(ADDRS), 1..3), 0..max).prop_map(
        move |instances| {
            instances
                .iter()
                .map(|addrs| format!("{name}: {}\r\n", addrs.join(", ")))
                .collect()
        },
    )
}

fn message() -> impl Strategy<Value = String> {
    (
        header("From", 3),
        header("Sender", 2),
        header("Reply-To", 2),
        header("To", 2),
        header("Cc", 2),
        header("Bcc", 2),
        prop::collection::vec(pick(LISTS), 0..3),
        prop::collection::vec(0..SUBJECTS.len(), 0..3),
    )
        .prop_map(|(from, sender, reply_to, to, cc, bcc, lists, subjects)| {
            let lists: String = lists
                .iter()
                .map(|l| format!("List-Id: The list <{l}>\r\n"))
                .collect();
            let subjects: String = subjects
                .iter()
                .map(|&i| format!("Subject: {}\r\n", SUBJECTS[i]))
                .collect();
            format!("{from}{sender}{reply_to}{to}{cc}{bcc}{lists}{subjects}\r\nbody\r\n")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn indexed_evaluation_equals_plain(rules in rule_set(), raw in message()) {
        let rules = RuleSet::compile(rules).expect("compiles");
        both(&rules, &view(&raw));
    }
}

#[test]
fn more_than_64_subject_regexes_and_rules_still_agree() {
    let rules: Vec<Rule> = (0..150)
        .map(|i| {
            flag_rule(
                &format!("r{i}"),
                if i % 2 == 0 {
                    c(ConditionKind::Subject(TextMatcher {
                        span: SP,
                        op: TextOp::Regex(format!("^s{}$", i % 90)),
                        case_sensitive: i % 3 == 0,
                    }))
                } else {
                    addr(AddressField::From, is(&[&format!("a{}@x.example", i % 70)]))
                },
            )
        })
        .collect();
    let rules = RuleSet::compile(rules).expect("compiles");
    assert!(rules.subject_sets.is_some());
    for (raw, want) in [
        (
            "Subject: s4\r\nFrom: a3@x.example\r\n\r\n",
            vec!["r3", "r4", "r73", "r94", "r143"],
        ),
        (
            "Subject: S88\r\nFrom: a69@x.example\r\n\r\n",
            vec!["r69", "r88", "r139"],
        ),
        ("Subject: s89\r\n\r\n", vec![]),
    ] {
        assert_eq!(both(&rules, &view(raw)), strs(&want), "{raw:?}");
    }
}
