//! Rules engine throughput: evaluating a realistic 30-rule set on a parsed message
//! (target: >= 1,000,000 evaluations/s on one core) and building a MessageView from a
//! 1-4 KB header block (target: <= 20 us).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imapsort::rules::ast::*;
use imapsort::rules::{EvalContext, MessageFacts, MessageView, RuleSet};

const SP: Span = Span { line: 1, column: 1 };

fn c(kind: ConditionKind) -> Condition {
    Condition { span: SP, kind }
}

fn t(op: TextOp) -> TextMatcher {
    TextMatcher {
        span: SP,
        op,
        case_sensitive: false,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn from(op: AddressOp) -> Condition {
    c(ConditionKind::Address {
        field: AddressField::From,
        matcher: AddressMatcher {
            span: SP,
            op,
            case_sensitive: false,
        },
    })
}

fn rule(name: &str, when: Condition, then: Vec<ActionKind>) -> Rule {
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
        stop: false,
    }
}

/// Thirty rules of the kinds people write: regexes, contains, domains, list ids, flags.
fn rules() -> RuleSet {
    let mut r = Vec::new();
    for (i, domain) in [
        "github.com",
        "gitlab.com",
        "atlassian.net",
        "slack.com",
        "zoom.us",
    ]
    .iter()
    .enumerate()
    {
        r.push(rule(
            &format!("bots {i}"),
            from(AddressOp::Domain(s(&[domain]))),
            vec![ActionKind::Move(format!("Notifications/{domain}"))],
        ));
    }
    for (i, list) in [
        "rust-users",
        "tokio",
        "serde",
        "linux-kernel",
        "debian-devel",
    ]
    .iter()
    .enumerate()
    {
        r.push(rule(
            &format!("list {i}"),
            c(ConditionKind::ListId(t(TextOp::Prefix(s(&[&format!(
                "{list}."
            )]))))),
            vec![ActionKind::Move("Lists/{list_id}".into())],
        ));
    }
    for (i, word) in [
        "invoice",
        "receipt",
        "order confirmation",
        "shipping",
        "password reset",
    ]
    .iter()
    .enumerate()
    {
        r.push(rule(
            &format!("subject {i}"),
            c(ConditionKind::Subject(t(TextOp::Contains(s(&[word]))))),
            vec![
                ActionKind::Flag(s(&["$Invoice"])),
                ActionKind::Copy("Accounting/{year}".into()),
            ],
        ));
    }
    for (i, re) in [
        r"\b(urgent|asap)\b",
        r"^\[JIRA\] \(([A-Z]+-\d+)\)",
        r"(?i)webinar|newsletter",
        r"\border #?\d{6,}\b",
        r"^Re: \[security\]",
    ]
    .iter()
    .enumerate()
    {
        r.push(rule(
            &format!("regex {i}"),
            c(ConditionKind::Subject(t(TextOp::Regex(re.to_string())))),
            vec![ActionKind::Flag(s(&["\\Flagged"]))],
        ));
    }
    for (i, who) in ["boss@work.example", "ceo@work.example", "hr@work.example"]
        .iter()
        .enumerate()
    {
        let mut b = rule(
            &format!("person {i}"),
            from(AddressOp::Address(TextOp::Is(s(&[who])))),
            vec![ActionKind::Flag(s(&["\\Flagged"]))],
        );
        b.stop = true;
        r.push(b);
    }
    r.push(rule(
        "newsletters",
        c(ConditionKind::All(vec![
            c(ConditionKind::Header {
                name: "List-Unsubscribe".into(),
                matcher: t(TextOp::Exists(true)),
            }),
            c(ConditionKind::Flag {
                flag: SystemFlag::Seen,
                set: false,
            }),
        ])),
        vec![ActionKind::Label(s(&["newsletters"]))],
    ));
    r.push(rule(
        "spam header",
        c(ConditionKind::Header {
            name: "X-Spam-Flag".into(),
            matcher: t(TextOp::Is(s(&["yes"]))),
        }),
        vec![ActionKind::Move("Junk".into())],
    ));
    r.push(rule(
        "big",
        c(ConditionKind::Size {
            over: Some(10 << 20),
            under: None,
        }),
        vec![ActionKind::Flag(s(&["big"]))],
    ));
    r.push(rule(
        "not flagged keyword",
        c(ConditionKind::All(vec![
            c(ConditionKind::Keyword("work".into())),
            c(ConditionKind::Flag {
                flag: SystemFlag::Flagged,
                set: false,
            }),
        ])),
        vec![ActionKind::Flag(s(&["todo"]))],
    ));
    r.push(rule(
        "archive old read",
        c(ConditionKind::All(vec![
            c(ConditionKind::OlderThan(Duration::from_secs(30 * 86_400))),
            c(ConditionKind::Flag {
                flag: SystemFlag::Seen,
                set: true,
            }),
        ])),
        vec![ActionKind::Archive(Some("Archive/{year}".into()))],
    ));
    r.push(rule(
        "recipient alias",
        c(ConditionKind::Address {
            field: AddressField::Recipient,
            matcher: AddressMatcher {
                span: SP,
                op: AddressOp::Address(TextOp::Contains(s(&["+shopping@"]))),
                case_sensitive: false,
            },
        }),
        vec![ActionKind::Move("Shopping".into())],
    ));
    r.push(rule(
        "lists catch-all",
        c(ConditionKind::ListId(t(TextOp::Exists(true)))),
        vec![ActionKind::Move("Lists/{list_id}".into())],
    ));
    assert_eq!(r.len(), 30);
    RuleSet::compile(r).expect("bench rules compile")
}

/// A realistic header block of a mailing-list message: `received` Received headers (about
/// 230 bytes each) and 1.1 KB of the rest.
fn header_block(received: usize) -> String {
    let mut h = String::new();
    for i in 0..received {
        h.push_str(&format!(
            "Received: from mx{i}.relay.example.net (mx{i}.relay.example.net [192.0.2.{i}])\r\n\
             \tby mail.example.org (Postfix) with ESMTPS id 4Q{i}X2Y3Z\r\n\
             \tfor <me@example.org>; Tue, 3 Mar 2026 10:2{i}:30 +0100 (CET)\r\n"
        ));
    }
    h.push_str(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=lists.example.org;\r\n\
         \ts=2024; t=1772529630; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\
         \th=From:To:Subject:Date:Message-ID:List-Id;\r\n\
         \tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaXMgbG9uZyBlbm91Z2g=\r\n\
         Authentication-Results: mail.example.org; dkim=pass header.d=lists.example.org;\r\n\
         \tspf=pass smtp.mailfrom=bounces@lists.example.org; dmarc=pass\r\n\
         From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@contributors.example.com>\r\n\
         To: Rust users <rust-users@lists.example.org>\r\n\
         Cc: me@example.org, \"Someone Else\" <someone@else.example>\r\n\
         Subject: Re: [rust-users] =?UTF-8?Q?Question_about_lifetimes_=E2=80=93_again?=\r\n\
         Date: Tue, 3 Mar 2026 10:20:30 +0100\r\n\
         Message-ID: <CAF8a9b7c6d5e4f3g2h1@mail.contributors.example.com>\r\n\
         In-Reply-To: <CAF1234567890@mail.example.net>\r\n\
         References: <CAF1234567890@mail.example.net> <CAF0987654321@mail.example.net>\r\n\
         List-Id: Rust users <rust-users.lists.example.org>\r\n\
         List-Unsubscribe: <mailto:rust-users-leave@lists.example.org>,\r\n\
         \t<https://lists.example.org/unsubscribe/rust-users>\r\n\
         List-Archive: <https://lists.example.org/archive/rust-users>\r\n\
         List-Post: <mailto:rust-users@lists.example.org>\r\n\
         Precedence: list\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\
         X-Mailman-Version: 3.3.8\r\n\
         X-Spam-Status: No, score=-2.1 required=5.0\r\n\r\n",
    );
    h
}

fn facts() -> MessageFacts {
    MessageFacts {
        flags: vec!["\\Seen".into(), "work".into()],
        size: 8_200,
        received: Some("2026-03-03T10:20:31+01:00[+01:00]".parse().expect("zoned")),
    }
}

fn bench(crit: &mut Criterion) {
    let rules = rules();
    let raw = header_block(6);
    let view = MessageView::parse(raw.as_bytes(), facts());
    let watch = vec![imapsort::vocab::MailboxName::inbox()];
    let ctx = EvalContext {
        account: Some("personal"),
        mailbox: &imapsort::vocab::MailboxName::inbox(),
        watch: &watch,
        trigger: Some(Trigger::New),
        now: "2026-03-10T12:00:00Z".parse().expect("now"),
        trash: "Trash",
        archive: "Archive",
        delimiter: Some('/'),
        applied: None,
    };
    let ev = rules.evaluate(&view, &ctx);
    assert!(
        !ev.matched.is_empty(),
        "the bench message should match a rule"
    );

    let mut g = crit.benchmark_group("rules");
    g.throughput(Throughput::Elements(1));
    g.bench_function("evaluate 30 rules", |b| {
        b.iter(|| black_box(rules.evaluate(black_box(&view), &ctx)))
    });
    for received in [0, 6, 12] {
        let raw = header_block(received);
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(format!("parse {} byte header block", raw.len()), |b| {
            b.iter(|| black_box(MessageView::parse(black_box(raw.as_bytes()), facts())))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
