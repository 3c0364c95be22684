use std::collections::BTreeSet;

use async_imap::imap_proto::{AttributeValue, Response};

use super::*;
use crate::imap::uidset::UidSet;

fn needs(headers: Option<&[&str]>, body: bool, attachments: bool) -> FetchNeeds {
    FetchNeeds {
        headers: headers.map(|h| h.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>()),
        body,
        attachments,
        flags: true,
        size: true,
        received: true,
    }
}

/// A rule set that only reads addresses fetches no FLAGS, RFC822.SIZE or INTERNALDATE: on
/// Dovecot's maildir those can cost a stat or a read of every message.
#[test]
fn items_leave_out_flags_size_and_date_when_no_rule_needs_them() {
    let mut n = needs(Some(&["From", "Message-ID"]), false, false);
    (n.flags, n.size, n.received) = (false, false, false);
    assert_eq!(
        FetchSpec::new(&n).items(),
        "(UID BODY.PEEK[HEADER.FIELDS (From Message-ID)])"
    );
    n.size = true;
    assert_eq!(
        FetchSpec::new(&n).items(),
        "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From Message-ID)])"
    );
    (n.size, n.flags, n.received) = (false, true, true);
    assert_eq!(
        FetchSpec::new(&n).items(),
        "(UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (From Message-ID)])"
    );
}

#[test]
fn items_ask_for_only_what_the_rules_need() {
    let cases = [
        (
            needs(Some(&["Date", "From", "Message-ID"]), false, false),
            "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (Date From Message-ID)])",
        ),
        (
            needs(None, false, false),
            "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])",
        ),
        (
            needs(Some(&["From"]), false, true),
            "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (From)] BODYSTRUCTURE)",
        ),
        (
            needs(Some(&["From"]), true, false),
            "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.262144>)",
        ),
        (
            needs(Some(&["X-Odd(Name)"]), false, false),
            "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (\"X-Odd(Name)\")])",
        ),
    ];
    for (n, want) in cases {
        let spec = FetchSpec::new(&n);
        assert_eq!(spec.items(), want);
        // Never a section without PEEK: fetching must not set \Seen.
        assert!(!spec.items().contains("BODY["), "{}", spec.items());
        // The header item alone is the item list's own, or nothing without named headers.
        match spec.header_fields() {
            Some(h) => assert!(h.starts_with("BODY.PEEK[HEADER.FIELDS (") && want.contains(h)),
            None => assert!(!want.contains("HEADER.FIELDS"), "{want}"),
        }
    }
}

/// Parses `* 1 FETCH (BODYSTRUCTURE ...)` and returns the attachments found.
fn from_bodystructure(bs: &str) -> Vec<Option<String>> {
    let line = format!("* 1 FETCH (UID 1 BODYSTRUCTURE {bs})\r\n");
    let (_, response) = Response::parse(line.as_bytes()).expect("parsable");
    let Response::Fetch(_, attrs) = response else {
        panic!("not a fetch");
    };
    let bs = attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::BodyStructure(bs) => Some(bs),
            _ => None,
        })
        .expect("a bodystructure");
    attachments(bs).into_iter().map(|a| a.filename).collect()
}

#[test]
fn attachments_from_bodystructure() {
    let text = r#"("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)"#;
    let cases: Vec<(String, Vec<Option<&str>>)> = vec![
        (text.to_owned(), vec![]),
        (
            // A plain file name in the disposition.
            format!(
                r#"({text}("application" "pdf" NIL NIL NIL "base64" 100 NIL ("attachment" ("filename" "invoice 7.pdf")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![Some("invoice 7.pdf")],
        ),
        (
            // Content-Type name only, disposition inline: still an attachment (it has a name).
            format!(
                r#"({text}("image" "png" ("name" "logo.png") NIL NIL "base64" 100 NIL ("inline" NIL) NIL NIL) "related" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![Some("logo.png")],
        ),
        (
            // Disposition attachment without a name.
            format!(
                r#"({text}("application" "octet-stream" NIL NIL NIL "base64" 100 NIL ("attachment" NIL) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![None],
        ),
        (
            // RFC 2231 extended value with a charset.
            format!(
                r#"({text}("application" "pdf" NIL NIL NIL "base64" 100 NIL ("attachment" ("filename*" "UTF-8''Rechnung%20%E2%82%AC.pdf")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![Some("Rechnung €.pdf")],
        ),
        (
            // RFC 2231 continuations.
            format!(
                r#"({text}("application" "pdf" NIL NIL NIL "base64" 100 NIL ("attachment" ("filename*0" "very-long-" "filename*1" "name.pdf")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![Some("very-long-name.pdf")],
        ),
        (
            // RFC 2047 encoded word (common in practice, though not allowed by the RFC).
            format!(
                r#"({text}("application" "pdf" ("name" "=?UTF-8?B?w5xiZXJzaWNodC5wZGY=?=") NIL NIL "base64" 100 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![Some("Übersicht.pdf")],
        ),
        (
            // Disposition filename wins over Content-Type name.
            format!(
                r#"({text}("application" "pdf" ("name" "ct.pdf") NIL NIL "base64" 100 NIL ("attachment" ("filename" "cd.pdf")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![Some("cd.pdf")],
        ),
        (
            // Nested multiparts are walked.
            format!(
                r#"(({text}{text} "alternative" ("boundary" "a") NIL NIL NIL)("text" "csv" ("name" "a.csv") NIL NIL "7bit" 5 1 NIL ("attachment" ("filename" "a.csv")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#
            ),
            vec![Some("a.csv")],
        ),
    ];
    for (bs, want) in cases {
        let want: Vec<Option<String>> = want.into_iter().map(|w| w.map(String::from)).collect();
        assert_eq!(from_bodystructure(&bs), want, "{bs}");
    }
}

#[test]
fn system_flags_are_spelt_canonically() {
    for (sent, want) in [
        ("\\SEEN", Some("\\Seen")),
        ("\\flagged", Some("\\Flagged")),
        ("$Junk", Some("$Junk")),
        ("\\*", None),
    ] {
        assert_eq!(flag_name(sent.to_owned()).as_deref(), want, "{sent}");
    }
}

/// The FETCH responses of `lines` (`* n FETCH (...)`), merged as a session merges them.
fn fetched(lines: &[&str]) -> Vec<FetchedItem> {
    let responses = lines
        .iter()
        .map(|l| {
            let line = format!("{l}\r\n");
            let (_, r) = Response::parse(line.as_bytes()).expect("parsable");
            r.into_owned()
        })
        .collect();
    crate::imap::item::merge_by_uid(responses)
}

#[test]
fn an_answer_without_an_item_asked_for_is_not_evaluated() {
    const DATE: &str = r#"INTERNALDATE "02-Mar-2026 10:00:00 +0000""#;
    let hdr = r#"BODY[HEADER.FIELDS (FROM)] "From: a@b.example""#;
    let bs = r#"BODYSTRUCTURE ("text" "plain" NIL NIL NIL "7bit" 1 1 NIL NIL NIL NIL)"#;
    let with_attachments = FetchSpec::new(&needs(Some(&["From"]), false, true));
    let headers_only = FetchSpec::new(&needs(Some(&["From"]), false, false));
    let body = FetchSpec::new(&needs(Some(&["From"]), true, false));
    let cases = [
        (
            &with_attachments,
            format!("UID 1 FLAGS () RFC822.SIZE 1 {DATE} {hdr} {bs}"),
            true,
        ),
        (
            &with_attachments,
            format!("UID 1 FLAGS () RFC822.SIZE 1 {DATE} {hdr}"),
            false,
        ),
        (
            &headers_only,
            format!("UID 1 FLAGS () RFC822.SIZE 1 {DATE} {hdr}"),
            true,
        ),
        (
            &headers_only,
            format!("UID 1 FLAGS () RFC822.SIZE 1 {DATE}"),
            false,
        ),
        (
            &headers_only,
            format!("UID 1 RFC822.SIZE 1 {DATE} {hdr}"),
            false,
        ),
        (&headers_only, format!("UID 1 FLAGS () {DATE} {hdr}"), false),
        (
            &headers_only,
            format!("UID 1 FLAGS () RFC822.SIZE 1 {hdr}"),
            false,
        ),
        (&headers_only, "UID 1 FLAGS (\\Seen)".to_owned(), false),
        (
            &body,
            format!("UID 1 FLAGS () RFC822.SIZE 1 {DATE} {hdr}"),
            false,
        ),
        (
            &body,
            format!(r#"UID 1 FLAGS () RFC822.SIZE 1 {DATE} BODY[]<0> "From: a@b.example""#),
            true,
        ),
    ];
    let asked: UidSet = "1".parse().unwrap();
    for (spec, attrs, complete) in cases {
        let items = fetched(&[&format!("* 1 FETCH ({attrs})")]);
        assert_eq!(spec.view(&items[0]).is_some(), complete, "{attrs}");
        assert_eq!(
            spec.views(items, &asked).len(),
            usize::from(complete),
            "{attrs}"
        );
    }
}

#[test]
fn an_answer_split_in_two_is_one_complete_message() {
    let spec = FetchSpec::new(&needs(Some(&["From"]), false, false));
    let items = fetched(&[
        "* 4 FETCH (UID 7 FLAGS (\\Seen) RFC822.SIZE 9)",
        "* 4 FETCH (INTERNALDATE \"02-Mar-2026 10:00:00 +0000\")",
        "* 4 FETCH (UID 7 BODY[HEADER.FIELDS (FROM)] \"From: a@b.example\")",
    ]);
    assert_eq!(items.len(), 1);
    let (uid, view) = spec.view(&items[0]).expect("complete once merged");
    assert_eq!(uid.get(), 7);
    assert!(view.has_flag("\\Seen"));
    assert_eq!(view.header_values("From"), ["a@b.example"]);
}

/// The command lines of one chunk are answered separately, and a server running them at once
/// may put a message's data, or a flag update for it, in another line's answer: still one view
/// per message, with the newest flags, and never two.
#[test]
fn answers_of_several_lines_give_one_view_per_message() {
    let spec = FetchSpec::new(&needs(Some(&["From"]), false, false));
    let full = |uid: u32| {
        format!(
            "* {uid} FETCH (UID {uid} FLAGS () RFC822.SIZE 9 INTERNALDATE \"02-Mar-2026 10:00:00 +0000\" BODY[HEADER.FIELDS (FROM)] \"From: a@b.example\")"
        )
    };
    let mut items = fetched(&[&full(1), &full(5)]);
    items.extend(fetched(&[
        "* 1 FETCH (UID 1 FLAGS (\\Flagged))",
        &full(5),
        &full(6),
    ]));
    let asked: UidSet = "1:6".parse().unwrap();
    let views = spec.views(items, &asked);
    let uids: Vec<u32> = views.iter().map(|(u, _)| u.get()).collect();
    assert_eq!(uids, [1, 5, 6]);
    assert!(
        views[0].1.has_flag("\\Flagged"),
        "the later update is the newer state"
    );
}
