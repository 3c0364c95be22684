use super::*;

fn view(raw: &str) -> MessageView {
    MessageView::parse(raw.as_bytes(), MessageFacts::default())
}

fn subject(v: &MessageView) -> Vec<Option<String>> {
    v.subjects()
        .map(|f| f.map(|x| x.text().to_owned()))
        .collect()
}

#[test]
fn subjects_are_decoded_and_unfolded() {
    let cases: &[(&str, &str)] = &[
        ("Subject: plain\r\n\r\n", "plain"),
        ("Subject: =?ISO-8859-1?Q?Caf=E9?= ok\n\n", "Café ok"),
        ("Subject: =?UTF-8?B?w6ljaGFudGlsbG9u?=\n\n", "échantillon"),
        (
            "Subject: =?Shift_JIS?B?k/qWe4zqgsWCtw==?=\n\n",
            "日本語です",
        ),
        (
            "Subject: folded\r\n  across\r\n\tlines\r\n\r\n",
            "folded across lines",
        ),
        ("Subject: =?utf-8?q?a?= =?utf-8?q?b?=\n\n", "ab"),
        ("Subject: raw UTF-8 ünïcode\n\n", "raw UTF-8 ünïcode"),
        ("Subject:\n\n", ""),
    ];
    for (raw, want) in cases {
        assert_eq!(subject(&view(raw)), vec![Some(want.to_string())], "{raw:?}");
    }
}

#[test]
fn eight_bit_junk_is_undecodable_not_a_crash() {
    let raw = b"Subject: caf\xe9 \xff\xfe\nFrom: a@b.c\n\nbody";
    let v = MessageView::parse(raw, MessageFacts::default());
    assert_eq!(subject(&v), vec![None]);
    assert_eq!(v.address_list(AddressSlot::From).addrs.len(), 1);
}

#[test]
fn addresses_are_lowercased_with_groups_and_names() {
    let v = view(
        "From: \"=?UTF-8?Q?J=C3=B6rg?=\" <Joerg@Example.COM>\n\
         To: team: a@x.org, B@Y.org;, c@z.org\n\
         Cc: undisclosed-recipients:;\n\n",
    );
    let from = &v.address_list(AddressSlot::From).addrs;
    assert_eq!(&*from[0].address, "joerg@example.com");
    assert_eq!(from[0].name.as_ref().map(|n| n.text()), Some("Jörg"));
    assert_eq!(from[0].domain(), "example.com");
    let to: Vec<&str> = v
        .address_list(AddressSlot::To)
        .addrs
        .iter()
        .map(|a| &*a.address)
        .collect();
    assert_eq!(to, ["a@x.org", "b@y.org", "c@z.org"]);
    assert_eq!(v.address_list(AddressSlot::Cc).count, 1);
}

#[test]
fn list_identifier_extraction() {
    let cases = [
        ("Dev list <dev.example.org>", "dev.example.org"),
        ("  <x.y>  ", "x.y"),
        ("plain.id ", "plain.id"),
        ("broken <open", "broken <open"),
        ("", ""),
    ];
    for (value, want) in cases {
        assert_eq!(list_identifier(value), want, "{value:?}");
    }
}

#[test]
fn message_id_date_and_duplicates() {
    let v = view(
        "Message-ID: <abc@host>\nDate: Tue, 3 Mar 2026 10:20:30 +0100\n\
         From: a@x.org\nFrom: b@y.org\nX-Thing: 1\nx-thing: 2\n\n",
    );
    assert_eq!(v.message_id(), Some("<abc@host>"));
    let date = v.date().expect("date");
    assert_eq!(date.offset().seconds(), 3600);
    assert_eq!(date.hour(), 10);
    assert_eq!(v.from_count(), 2);
    assert_eq!(v.header_values("X-THING"), ["1", "2"]);
}

#[test]
fn no_date_and_invalid_date() {
    assert!(view("Subject: x\n\n").date().is_none());
    assert!(view("Date: not a date\n\n").date().is_none());
}

#[test]
fn attachments_and_body_from_mime() {
    let raw = "From: a@b.c\nContent-Type: multipart/mixed; boundary=XX\n\n\
--XX\nContent-Type: text/plain; charset=utf-8\n\nHello plain\n\
--XX\nContent-Type: application/pdf; name=\"=?UTF-8?Q?Rechnung_M=C3=A4rz.pdf?=\"\n\
Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf\n\
Content-Transfer-Encoding: base64\n\nJVBERi0=\n\
--XX\nContent-Type: image/png\nContent-Disposition: attachment\n\nxx\n\
--XX--\n";
    let v = view(raw);
    let names: Vec<Option<&str>> = v
        .attachments
        .iter()
        .map(|a| a.as_ref().map(Folded::text))
        .collect();
    assert_eq!(names, [Some("Rechnung März.pdf"), None]);
    assert_eq!(
        v.body.as_ref().map(|b| b.text().trim()),
        Some("Hello plain")
    );
}

#[test]
fn html_only_body_is_visible_text() {
    let raw = "Content-Type: text/html\n\n<html><head><style>p{}</style></head>\
<body><p>Caf&eacute; &amp; <b>bar</b></p></body></html>\n";
    let v = view(raw);
    let body = v
        .body
        .as_ref()
        .map(|b| b.text().to_owned())
        .unwrap_or_default();
    assert!(body.contains("Café & bar"), "{body:?}");
    assert!(!body.contains('<'), "{body:?}");
}

#[test]
fn flags_are_case_insensitive() {
    let v = MessageView::parse(
        b"Subject: x\n\n",
        MessageFacts {
            flags: vec!["\\seen".into(), "Work".into()],
            ..MessageFacts::default()
        },
    );
    assert_eq!(v.system_flags, FLAG_SEEN);
    assert!(v.has_flag("\\Seen"));
    assert!(v.has_flag("work"));
    assert!(!v.has_flag("\\Flagged"));
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 7] = [
        b"",
        b"\n\n\n",
        b"no colon at all",
        b":\n:\n",
        b"Subject: =?utf-8?B?####?=\n\n",
        b"Content-Type: multipart/mixed; boundary=\"\n\n--\n--",
        b"\xff\xfe\x00\x01: \x80\n\n",
    ];
    for raw in inputs {
        let _ = MessageView::parse(raw, MessageFacts::default());
    }
}

#[test]
fn body_from_a_separately_fetched_message() {
    let mut v = view("From: a@b.c\nSubject: s\n\n");
    assert_eq!(
        v.body.as_ref().map(|b| b.text().to_owned()),
        Some(String::new())
    );
    v.set_body_from_message(
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9\n",
    );
    assert_eq!(
        v.body.as_ref().map(|b| b.text().trim().to_owned()),
        Some("caf\u{e9}".to_owned())
    );
    assert_eq!(v.subjects().flatten().next().map(Folded::text), Some("s"));
}

#[test]
fn header_lookup_sees_every_present_name_and_no_absent_one() {
    // Enough names that several share a bit of the presence filter.
    let names: Vec<String> = (0..200).map(|i| format!("X-H{i}")).collect();
    let mut raw: String = names.iter().map(|n| format!("{n}: v-{n}\r\n")).collect();
    raw.push_str("\r\n");
    let v = view(&raw);
    for n in &names {
        assert_eq!(v.header_values(n), vec![format!("v-{n}")], "{n}");
        assert_eq!(v.header_values(&n.to_uppercase()), vec![format!("v-{n}")]);
    }
    for i in 200..400 {
        assert!(v.header_values(&format!("X-H{i}")).is_empty());
    }
}

#[test]
fn the_first_subject_slot_agrees_with_the_header_lookup() {
    let v = view("Subject: =?utf-8?q?caf=C3=A9?=\r\nX: y\r\nSubject: second\r\n\r\n");
    let direct = subject(&v);
    assert_eq!(direct, vec![Some("café".into()), Some("second".into())]);
    // Twice: the second read comes from the slot.
    assert_eq!(subject(&v), direct);
    assert_eq!(v.header_values("subject"), vec!["café", "second"]);
    assert!(subject(&view("X: y\r\n\r\n")).is_empty());
}

/// What the history keeps of a message: the first From address, lower-cased, and the decoded
/// first Subject; `None` where there is none.
#[test]
fn from_address_and_subject_for_the_history() {
    let v = view(
        "From: Alice <Alice@Example.COM>, bob@x.test\nSubject: =?UTF-8?Q?Caf=C3=A9?= menu\nSubject: second\n\n",
    );
    assert_eq!(v.from_address(), Some("alice@example.com"));
    assert_eq!(v.subject(), Some("Café menu"));
    let none = view("To: a@b.c\n\n");
    assert_eq!((none.from_address(), none.subject()), (None, None));
}
