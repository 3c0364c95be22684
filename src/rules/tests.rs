//! Engine tests: rules built as AST values, evaluated against small messages.

use std::time::Duration;

use super::ast::*;
use super::*;
use crate::vocab::MailboxName;

const SP: Span = Span { line: 1, column: 1 };

fn c(kind: ConditionKind) -> Condition {
    Condition { span: SP, kind }
}

fn text(op: TextOp) -> TextMatcher {
    TextMatcher {
        span: SP,
        op,
        case_sensitive: false,
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn subject_contains(s: &str) -> Condition {
    c(ConditionKind::Subject(text(TextOp::Contains(strs(&[s])))))
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

fn act(kind: ActionKind) -> Action {
    Action { span: SP, kind }
}

fn rule(name: &str, when: Condition, then: Vec<ActionKind>) -> Rule {
    Rule {
        name: name.into(),
        span: SP,
        when,
        then: then.into_iter().map(act).collect(),
        accounts: None,
        mailboxes: None,
        on: None,
        stop: false,
    }
}

const NOW: &str = "2026-03-10T12:00:00Z";

fn msg(raw: &str, flags: &[&str], received: Option<&str>) -> MessageView {
    MessageView::parse(
        raw.as_bytes(),
        MessageFacts {
            flags: strs(flags),
            size: raw.len() as u64,
            received: received.map(|r| r.parse::<jiff::Zoned>().expect("zoned")),
        },
    )
}

fn eval_with(rules: &RuleSet, v: &MessageView, f: impl FnOnce(&mut EvalContext<'_>)) -> Evaluation {
    eval_in(rules, v, "INBOX", f)
}

/// [`eval_with`] for a message in `mailbox`.
fn eval_in(
    rules: &RuleSet,
    v: &MessageView,
    mailbox: &str,
    f: impl FnOnce(&mut EvalContext<'_>),
) -> Evaluation {
    let watch = vec![MailboxName::inbox()];
    let mailbox = MailboxName::new(mailbox);
    let mut ctx = EvalContext {
        account: Some("personal"),
        mailbox: &mailbox,
        watch: &watch,
        trigger: None,
        now: NOW.parse().expect("now"),
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('.'),
        applied: None,
    };
    f(&mut ctx);
    rules.evaluate(v, &ctx)
}

fn eval(rules: &RuleSet, v: &MessageView) -> Evaluation {
    eval_with(rules, v, |_| {})
}

fn compile(rules: Vec<Rule>) -> RuleSet {
    RuleSet::compile(rules).expect("rules compile")
}

fn names(ev: &Evaluation) -> Vec<&str> {
    ev.matched.iter().map(|m| m.rule.as_str()).collect()
}

const LIST_MAIL: &str = "From: \"Alice Example\" <Alice@Lists.Example.org>\n\
To: dev@lists.example.org\nCc: bob@example.com\n\
List-Id: Developers <dev.lists.example.org>\n\
Subject: [dev] Invoice 2026-0042 ready\nMessage-ID: <m1@example.org>\n\
Date: Mon, 9 Mar 2026 08:00:00 -0500\nX-Priority: 3\n\nHello body text\n";

#[test]
fn conditions_table() {
    let v = msg(
        LIST_MAIL,
        &["\\Seen", "Work"],
        Some("2026-02-01T10:00:00+01:00[+01:00]"),
    );
    let ton = |op: TextOp| text(op);
    let cases: Vec<(&str, Condition, bool)> = vec![
        ("true", c(ConditionKind::True), true),
        ("subject contains", subject_contains("INVOICE"), true),
        ("subject missing word", subject_contains("receipt"), false),
        (
            "from is exact",
            addr(
                AddressField::From,
                AddressOp::Address(TextOp::Is(strs(&["alice@lists.example.org"]))),
            ),
            true,
        ),
        (
            "from is not a prefix trick",
            addr(
                AddressField::From,
                AddressOp::Address(TextOp::Is(strs(&["alice@lists.example"]))),
            ),
            false,
        ),
        (
            "from domain parent",
            addr(
                AddressField::From,
                AddressOp::Domain(strs(&["@example.org"])),
            ),
            true,
        ),
        (
            "from domain lookalike",
            addr(AddressField::From, AddressOp::Domain(strs(&["ample.org"]))),
            false,
        ),
        (
            "from name",
            addr(
                AddressField::From,
                AddressOp::Name(ton(TextOp::Prefix(strs(&["alice"])))),
            ),
            true,
        ),
        (
            "recipient via cc",
            addr(
                AddressField::Recipient,
                AddressOp::Address(TextOp::Contains(strs(&["bob@"]))),
            ),
            true,
        ),
        (
            "to does not see cc",
            addr(
                AddressField::To,
                AddressOp::Address(TextOp::Contains(strs(&["bob@"]))),
            ),
            false,
        ),
        (
            "bcc missing exists false",
            addr(AddressField::Bcc, AddressOp::Address(TextOp::Exists(false))),
            true,
        ),
        (
            "list_id is",
            c(ConditionKind::ListId(ton(TextOp::Is(strs(&[
                "DEV.lists.example.org",
            ]))))),
            true,
        ),
        (
            "header any case",
            c(ConditionKind::Header {
                name: "x-PRIORITY".into(),
                matcher: ton(TextOp::Le(3.0)),
            }),
            true,
        ),
        (
            "header missing exists",
            c(ConditionKind::Header {
                name: "X-Spam".into(),
                matcher: ton(TextOp::Exists(true)),
            }),
            false,
        ),
        (
            "header missing contains is false",
            c(ConditionKind::Header {
                name: "X-Spam".into(),
                matcher: ton(TextOp::Contains(strs(&[""]))),
            }),
            false,
        ),
        (
            "body",
            c(ConditionKind::Body(ton(TextOp::Contains(strs(&[
                "BODY TEXT",
            ]))))),
            true,
        ),
        (
            "size over",
            c(ConditionKind::Size {
                over: Some(100),
                under: None,
            }),
            true,
        ),
        (
            "size under",
            c(ConditionKind::Size {
                over: None,
                under: Some(100),
            }),
            false,
        ),
        (
            "older_than 30d",
            c(ConditionKind::OlderThan(Duration::from_secs(30 * 86400))),
            true,
        ),
        (
            "older_than 60d",
            c(ConditionKind::OlderThan(Duration::from_secs(60 * 86400))),
            false,
        ),
        (
            "newer_than 60d",
            c(ConditionKind::NewerThan(Duration::from_secs(60 * 86400))),
            true,
        ),
        (
            "sent_after 2d",
            c(ConditionKind::SentAfter(Duration::from_secs(2 * 86400))),
            true,
        ),
        (
            "sent_before 2d",
            c(ConditionKind::SentBefore(Duration::from_secs(2 * 86400))),
            false,
        ),
        (
            "seen",
            c(ConditionKind::Flag {
                flag: SystemFlag::Seen,
                set: true,
            }),
            true,
        ),
        (
            "flagged false",
            c(ConditionKind::Flag {
                flag: SystemFlag::Flagged,
                set: false,
            }),
            true,
        ),
        (
            "keyword any case",
            c(ConditionKind::Keyword("work".into())),
            true,
        ),
        (
            "keyword missing",
            c(ConditionKind::Keyword("home".into())),
            false,
        ),
        (
            "no attachment",
            c(ConditionKind::HasAttachment(false)),
            true,
        ),
        (
            "attachment name",
            c(ConditionKind::Attachment(ton(TextOp::Exists(false)))),
            true,
        ),
        ("empty all", c(ConditionKind::All(vec![])), true),
        ("empty any", c(ConditionKind::Any(vec![])), false),
        (
            "not",
            c(ConditionKind::Not(Box::new(subject_contains("invoice")))),
            false,
        ),
    ];
    for (name, cond, want) in cases {
        let rs = compile(vec![rule(name, cond, vec![ActionKind::Flag(strs(&["x"]))])]);
        let ev = eval(&rs, &v);
        assert_eq!(!ev.matched.is_empty(), want, "case {name:?}: {ev:?}");
    }
}

#[test]
fn plan_has_only_real_changes_and_later_wins() {
    let v = msg("Subject: hi\n\n", &["\\seen", "keep"], None);
    let rs = compile(vec![
        rule(
            "a",
            c(ConditionKind::True),
            vec![
                ActionKind::MarkRead,
                ActionKind::Flag(strs(&["\\Flagged", "temp", "Keep"])),
                ActionKind::Unflag(strs(&["absent"])),
            ],
        ),
        rule(
            "b",
            c(ConditionKind::True),
            vec![
                ActionKind::Unflag(strs(&["TEMP", "keep"])),
                ActionKind::Label(strs(&["L", "L"])),
            ],
        ),
    ]);
    let ev = eval(&rs, &v);
    assert_eq!(names(&ev), ["a", "b"]);
    assert_eq!(ev.plan.add_flags, ["\\Flagged"]);
    assert_eq!(ev.plan.remove_flags, ["keep"]);
    assert_eq!(ev.plan.add_labels, ["L"]);
    assert!(ev.plan.final_action.is_none());
}

#[test]
fn terminal_and_stop_end_evaluation() {
    let v = msg(LIST_MAIL, &[], Some("2026-03-09T14:00:00+01:00[+01:00]"));
    let mut stopper = rule(
        "stopper",
        subject_contains("dev"),
        vec![ActionKind::Flag(strs(&["a"]))],
    );
    stopper.stop = true;
    let rs = compile(vec![
        rule(
            "lists",
            subject_contains("dev"),
            vec![ActionKind::Move("Lists/{list_id}".into())],
        ),
        rule("after", c(ConditionKind::True), vec![ActionKind::Trash]),
    ]);
    let ev = eval(&rs, &v);
    assert_eq!(names(&ev), ["lists"]);
    let fin = ev.plan.final_action.expect("final");
    assert_eq!(fin.action, FinalKind::Move);
    assert_eq!(fin.mailbox.as_deref(), Some("Lists/dev_lists_example_org"));

    let rs = compile(vec![
        stopper,
        rule("after", c(ConditionKind::True), vec![ActionKind::Trash]),
    ]);
    let ev = eval(&rs, &v);
    assert_eq!(names(&ev), ["stopper"]);
    assert!(ev.plan.final_action.is_none());

    let rs = compile(vec![
        rule(
            "stop action",
            c(ConditionKind::True),
            vec![ActionKind::Stop],
        ),
        rule("after", c(ConditionKind::True), vec![ActionKind::Trash]),
    ]);
    assert_eq!(names(&eval(&rs, &v)), ["stop action"]);
}

#[test]
fn final_actions_resolve_mailboxes() {
    let v = msg(LIST_MAIL, &[], Some("2026-03-09T23:30:00-05:00[-05:00]"));
    let cases: Vec<(ActionKind, FinalKind, Option<&str>)> = vec![
        (ActionKind::Trash, FinalKind::Trash, Some("Trash")),
        (
            ActionKind::Archive(None),
            FinalKind::Archive,
            Some("Archive"),
        ),
        (
            ActionKind::Archive(Some("Archive/{year}/{month}/{day}".into())),
            FinalKind::Archive,
            Some("Archive/2026/03/09"),
        ),
        (ActionKind::Delete, FinalKind::Delete, None),
        (
            ActionKind::Move("{account}/{from.domain}/{from.address}".into()),
            FinalKind::Move,
            Some("personal/lists_example_org/alice@lists_example_org"),
        ),
        (
            ActionKind::Move("People/{from.name}".into()),
            FinalKind::Move,
            Some("People/Alice Example"),
        ),
    ];
    for (action, kind, mailbox) in cases {
        let rs = compile(vec![rule(
            "r",
            c(ConditionKind::True),
            vec![action.clone()],
        )]);
        let ev = eval(&rs, &v);
        let fin = ev.plan.final_action.expect("final");
        assert_eq!(
            (fin.action, fin.mailbox.as_deref()),
            (kind, mailbox),
            "{action:?}"
        );
        assert!(ev.warnings.is_empty(), "{:?}", ev.warnings);
    }
}

#[test]
fn missing_variable_skips_action_and_terminal_still_ends() {
    let v = msg("Subject: no list\nFrom: a@b.c\n\n", &[], None);
    let rs = compile(vec![
        rule(
            "lists",
            c(ConditionKind::True),
            vec![
                ActionKind::Copy("Copies/{year}".into()),
                ActionKind::Flag(strs(&["seen-by-rule"])),
                ActionKind::Move("Lists/{list_id}".into()),
            ],
        ),
        rule("later", c(ConditionKind::True), vec![ActionKind::Trash]),
    ]);
    let ev = eval(&rs, &v);
    assert_eq!(names(&ev), ["lists"]);
    assert!(ev.plan.final_action.is_none());
    assert!(ev.plan.copy.is_empty());
    assert_eq!(ev.plan.add_flags, ["seen-by-rule"]);
    assert_eq!(ev.warnings.len(), 2, "{:?}", ev.warnings);
    assert!(ev.warnings[0].contains("{year}"), "{:?}", ev.warnings);
    assert!(ev.warnings[1].contains("{list_id}") && ev.warnings[1].contains("stays"));
}

#[test]
fn two_from_headers_make_from_false_and_warn() {
    let v = msg(
        "From: boss@work.example\nFrom: evil@x.test\nSubject: s\n\n",
        &[],
        None,
    );
    let rs = compile(vec![
        rule(
            "boss",
            addr(
                AddressField::From,
                AddressOp::Domain(strs(&["work.example"])),
            ),
            vec![ActionKind::Flag(strs(&["\\Flagged"]))],
        ),
        rule(
            "absent from",
            addr(
                AddressField::From,
                AddressOp::Address(TextOp::Exists(false)),
            ),
            vec![ActionKind::Flag(strs(&["x"]))],
        ),
        rule(
            "by name",
            c(ConditionKind::True),
            vec![ActionKind::Move("P/{from.address}".into())],
        ),
    ]);
    let ev = eval(&rs, &v);
    assert_eq!(names(&ev), ["by name"]);
    assert!(
        ev.warnings[0].contains("2 From headers"),
        "{:?}",
        ev.warnings
    );
    assert!(
        ev.warnings[1].contains("{from.address}"),
        "{:?}",
        ev.warnings
    );
}

#[test]
fn named_captures_become_variables() {
    let v = msg("Subject: Ticket [PROJ-17] opened\n\n", &[], None);
    let rs = compile(vec![rule(
        "tickets",
        c(ConditionKind::All(vec![c(ConditionKind::Subject(text(
            TextOp::Regex(r"\[(?P<project>[a-z]+)-(?P<num>\d+)\]".into()),
        )))])),
        vec![ActionKind::Move("Tickets/{project}/{num}".into())],
    )]);
    let ev = eval(&rs, &v);
    assert_eq!(
        ev.plan.final_action.and_then(|f| f.mailbox).as_deref(),
        Some("Tickets/PROJ/17")
    );
}

#[test]
fn applicability_by_account_mailbox_and_trigger() {
    let v = msg("Subject: s\n\n", &[], Some("2026-01-01T00:00:00Z[UTC]"));
    let mut only_work = rule(
        "only work",
        c(ConditionKind::True),
        vec![ActionKind::Flag(strs(&["a"]))],
    );
    only_work.accounts = Some(strs(&["work"]));
    let mut in_lists = rule(
        "in lists",
        c(ConditionKind::True),
        vec![ActionKind::Flag(strs(&["b"]))],
    );
    in_lists.mailboxes = Some(vec![MailboxName::new("Lists")]);
    let aged = rule(
        "aged",
        c(ConditionKind::OlderThan(Duration::from_secs(86400))),
        vec![ActionKind::Flag(strs(&["c"]))],
    );
    let plain = rule(
        "plain",
        c(ConditionKind::True),
        vec![ActionKind::Flag(strs(&["d"]))],
    );
    let rs = compile(vec![only_work, in_lists, aged, plain]);
    assert_eq!(rs.triggers(2), [Trigger::Sweep]);
    assert_eq!(rs.triggers(3), [Trigger::New]);

    assert_eq!(names(&eval(&rs, &v)), ["aged", "plain"]);
    assert_eq!(
        names(&eval_with(&rs, &v, |c| c.trigger = Some(Trigger::New))),
        ["plain"]
    );
    assert_eq!(
        names(&eval_with(&rs, &v, |c| c.trigger = Some(Trigger::Sweep))),
        ["aged"]
    );
    assert_eq!(
        names(&eval_with(&rs, &v, |c| c.account = Some("work"))),
        ["only work", "aged", "plain"]
    );
    assert_eq!(names(&eval_in(&rs, &v, "Lists", |_| {})), ["in lists"]);
    assert_eq!(names(&eval_in(&rs, &v, "inbox", |_| {})), ["aged", "plain"]);
}

#[test]
fn applied_rules_match_and_end_but_contribute_nothing() {
    let v = msg("Subject: s\n\n", &[], None);
    let rs = compile(vec![
        rule(
            "first",
            c(ConditionKind::True),
            vec![ActionKind::Flag(strs(&["a"])), ActionKind::Move("X".into())],
        ),
        rule(
            "second",
            c(ConditionKind::True),
            vec![ActionKind::Flag(strs(&["b"]))],
        ),
    ]);
    let applied: std::collections::HashSet<String> = ["first".to_string()].into();
    let watch = vec![MailboxName::inbox()];
    let ctx = EvalContext {
        account: None,
        mailbox: &MailboxName::inbox(),
        watch: &watch,
        trigger: None,
        now: NOW.parse().expect("now"),
        trash: "Trash",
        archive: "Archive",
        delimiter: None,
        applied: Some(&applied),
    };
    let ev = rs.evaluate(&v, &ctx);
    assert_eq!(names(&ev), ["first"]);
    assert!(ev.plan.is_empty(), "{:?}", ev.plan);
}

/// A rule whose work on the message was undone neither matches nor ends evaluation: the
/// rules after it see the message as if it did not exist.
#[test]
fn undone_rules_are_passed_by_as_if_they_did_not_exist() {
    let v = msg("Subject: s\n\n", &[], None);
    let rs = compile(vec![
        rule(
            "lists",
            c(ConditionKind::True),
            vec![ActionKind::Move("Lists".into())],
        ),
        rule(
            "read",
            c(ConditionKind::True),
            vec![ActionKind::Flag(strs(&["\\Seen"]))],
        ),
    ]);
    let watch = vec![MailboxName::inbox()];
    let inbox = MailboxName::inbox();
    let with = |applied: &std::collections::HashSet<String>| {
        let ctx = EvalContext {
            account: None,
            mailbox: &inbox,
            watch: &watch,
            trigger: None,
            now: NOW.parse().expect("now"),
            trash: "Trash",
            archive: "Archive",
            delimiter: None,
            applied: Some(applied),
        };
        rs.evaluate(&v, &ctx)
    };
    let ev = with(&["lists".to_string(), super::undone_marker("lists")].into());
    assert_eq!(names(&ev), ["read"]);
    assert_eq!(ev.plan.add_flags, ["\\Seen"]);
    assert!(ev.plan.final_action.is_none());
    // Only applied (not undone): it still ends evaluation.
    let ev = with(&["lists".to_string()].into());
    assert_eq!(names(&ev), ["lists"]);
    assert!(ev.plan.is_empty());
}

#[test]
fn because_names_the_branch_that_held() {
    let v = msg(
        "Subject: receipt\nFrom: a@billing.example.net\n\n",
        &[],
        None,
    );
    let rs = compile(vec![rule(
        "invoices",
        c(ConditionKind::Any(vec![
            subject_contains("invoice"),
            addr(
                AddressField::From,
                AddressOp::Domain(strs(&["billing.example.net"])),
            ),
        ])),
        vec![ActionKind::Flag(strs(&["$Invoice"]))],
    )]);
    let ev = eval(&rs, &v);
    assert_eq!(
        ev.matched[0].because,
        "from is in domain \"billing.example.net\""
    );
}

#[test]
fn moving_to_the_current_mailbox_is_skipped() {
    let v = msg("Subject: s\n\n", &[], None);
    let rs = compile(vec![rule(
        "loop",
        c(ConditionKind::True),
        vec![ActionKind::Move("INBOX".into())],
    )]);
    let ev = eval(&rs, &v);
    assert!(ev.plan.final_action.is_none());
    assert!(
        ev.warnings[0].contains("already there"),
        "{:?}",
        ev.warnings
    );
}

#[test]
fn compile_reports_every_error_with_rule_and_span() {
    let bad_span = Span { line: 7, column: 9 };
    let mut bad_regex = rule(
        "bad regex",
        c(ConditionKind::Subject(TextMatcher {
            span: bad_span,
            op: TextOp::Regex("(".into()),
            case_sensitive: false,
        })),
        vec![ActionKind::Flag(strs(&["x"]))],
    );
    bad_regex.then[0].span = Span { line: 8, column: 1 };
    let mut bad_template = rule(
        "bad template",
        c(ConditionKind::True),
        vec![ActionKind::Move("L/{nope}".into())],
    );
    bad_template.then[0].span = Span {
        line: 12,
        column: 11,
    };
    let errors = RuleSet::compile(vec![bad_regex, bad_template]).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        (errors[0].rule.as_str(), errors[0].span),
        ("bad regex", bad_span)
    );
    assert!(errors[0].message.contains("invalid regex"));
    assert_eq!(errors[1].rule, "bad template");
    assert_eq!(
        errors[1].span,
        Span {
            line: 12,
            column: 11
        }
    );
    assert!(errors[1].message.contains("unknown variable {nope}"));
}

#[test]
fn needs_lists_headers_body_and_attachments() {
    let rs = compile(vec![
        rule(
            "a",
            subject_contains("x"),
            vec![ActionKind::Move("L/{list_id}".into())],
        ),
        rule(
            "b",
            c(ConditionKind::All(vec![
                c(ConditionKind::Header {
                    name: "x-spam-flag".into(),
                    matcher: text(TextOp::Exists(true)),
                }),
                c(ConditionKind::Body(text(TextOp::Contains(strs(&["y"]))))),
            ])),
            vec![ActionKind::Trash],
        ),
    ]);
    let needs = rs.needs();
    let headers: Vec<&str> = needs
        .headers
        .as_ref()
        .expect("finite")
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        headers,
        ["From", "List-Id", "Message-ID", "Subject", "X-Spam-Flag"]
    );
    assert!(needs.body);
    assert!(!needs.attachments);
    // Nothing here reads flags, sizes or arrival times.
    assert!(!needs.flags && !needs.size && !needs.received);
}

/// FLAGS, RFC822.SIZE and INTERNALDATE are fetched only for the rules that read them: flag
/// conditions and flag actions (a plan holds only changes), sizes, ages and date templates.
#[test]
fn needs_flags_size_and_arrival_only_when_a_rule_reads_them() {
    let flags = |rules| {
        let n = compile(rules).needs();
        (n.flags, n.size, n.received)
    };
    let moved = || vec![ActionKind::Move("X".into())];
    assert_eq!(
        flags(vec![rule("a", subject_contains("x"), moved())]),
        (false, false, false)
    );
    assert_eq!(
        flags(vec![rule(
            "a",
            c(ConditionKind::Flag {
                flag: SystemFlag::Seen,
                set: true
            }),
            moved()
        )]),
        (true, false, false)
    );
    assert_eq!(
        flags(vec![rule(
            "a",
            subject_contains("x"),
            vec![ActionKind::Flag(vec!["\\Flagged".into()])]
        )]),
        (true, false, false)
    );
    assert_eq!(
        flags(vec![rule(
            "a",
            c(ConditionKind::Size {
                over: Some(10),
                under: None
            }),
            moved()
        )]),
        (false, true, false)
    );
    assert_eq!(
        flags(vec![rule(
            "a",
            c(ConditionKind::OlderThan(std::time::Duration::from_secs(60))),
            moved()
        )]),
        (false, false, true)
    );
    assert_eq!(
        flags(vec![rule(
            "a",
            subject_contains("x"),
            vec![ActionKind::Archive(Some("A/{year}".into()))]
        )]),
        (false, false, true)
    );
    let sent = compile(vec![rule(
        "a",
        c(ConditionKind::SentBefore(std::time::Duration::from_secs(
            60,
        ))),
        moved(),
    )])
    .needs();
    assert!(sent.headers.expect("finite").contains("Date"));
}

/// Workers share one compiled rule set and may move views between tasks.
#[test]
fn rule_sets_and_views_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
    assert_send_sync::<MessageView>();
    assert_send_sync::<Evaluation>();
}
