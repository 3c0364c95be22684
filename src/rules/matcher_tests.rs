use super::*;
use crate::rules::ast::Span;

fn tm(op: TextOp, cs: bool) -> TextMatch {
    TextMatch::compile(&TextMatcher {
        span: Span::default(),
        op,
        case_sensitive: cs,
    })
    .expect("compiles")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn text_matchers_table() {
    // (op, case_sensitive, haystack, expected)
    let cases: Vec<(TextOp, bool, &str, bool)> = vec![
        (
            TextOp::Contains(s(&["invoice"])),
            false,
            "Your INVOICE #3",
            true,
        ),
        (
            TextOp::Contains(s(&["invoice"])),
            true,
            "Your INVOICE #3",
            false,
        ),
        (
            TextOp::Contains(s(&["INVOICE"])),
            false,
            "your invoice",
            true,
        ),
        (TextOp::Contains(s(&["x", "nope"])), false, "nope!", true),
        (TextOp::Contains(s(&["ÄRGER"])), false, "großer ärger", true),
        (TextOp::Contains(s(&[""])), false, "", true),
        (TextOp::Is(s(&["Hello"])), false, "hello", true),
        (TextOp::Is(s(&["Hello"])), false, "hello there", false),
        (TextOp::Is(s(&["Hello"])), true, "hello", false),
        (TextOp::Prefix(s(&["[dev]"])), false, "[DEV] patch", true),
        (TextOp::Prefix(s(&["[dev]"])), false, "re: [dev]", false),
        (TextOp::Suffix(s(&[".PDF"])), false, "a.pdf", true),
        (TextOp::Suffix(s(&[".pdf"])), true, "a.PDF", false),
        (
            TextOp::Glob(s(&["*report ??"])),
            false,
            "Weekly REPORT 12",
            true,
        ),
        (
            TextOp::Glob(s(&["*report ??"])),
            false,
            "Weekly report 123",
            false,
        ),
        (TextOp::Glob(s(&["a.b*"])), false, "axb", false),
        (TextOp::Glob(s(&["a.b*"])), false, "a.b", true),
        (TextOp::Glob(s(&["*"])), false, "multi\nline", true),
        (
            TextOp::Regex(r"\binvoice\b".into()),
            false,
            "An INVOICE",
            true,
        ),
        (
            TextOp::Regex(r"\binvoice\b".into()),
            true,
            "An INVOICE",
            false,
        ),
        (TextOp::Regex(r"ΣΑΣ".into()), false, "σας", true),
        (TextOp::Gt(5.0), false, " 7 ", true),
        (TextOp::Gt(5.0), false, "5", false),
        (TextOp::Ge(5.0), false, "5.0", true),
        (TextOp::Lt(0.0), false, "-1.5", true),
        (TextOp::Le(3.0), false, "3", true),
        (TextOp::Gt(1.0), false, "7 apples", false),
        (TextOp::Gt(1.0), false, "inf", false),
        (TextOp::Gt(1.0), false, "NaN", false),
        (TextOp::Gt(1.0), false, "1e9", false),
        (TextOp::Gt(1.0), false, "", false),
    ];
    for (op, cs, hay, want) in cases {
        let m = tm(op.clone(), cs);
        let v = crate::rules::view::Folded::new(hay);
        assert_eq!(m.test(&v), want, "{op:?} cs={cs} on {hay:?}");
    }
}

#[test]
fn exists_answers_from_presence_not_values() {
    let yes = tm(TextOp::Exists(true), false);
    let no = tm(TextOp::Exists(false), false);
    assert!(yes.test_any(true, std::iter::empty()));
    assert!(!yes.test_any(false, std::iter::empty()));
    assert!(no.test_any(false, std::iter::empty()));
    assert!(!no.test_any(true, std::iter::empty()));
}

#[test]
fn decimal_parsing() {
    let cases = [
        ("1", Some(1.0)),
        ("+2.5", Some(2.5)),
        ("-.5", Some(-0.5)),
        ("3.", Some(3.0)),
        (".", None),
        ("-", None),
        ("1,5", None),
        ("0x10", None),
        (" 42\t", Some(42.0)),
    ];
    for (input, want) in cases {
        assert_eq!(parse_decimal(input), want, "{input:?}");
    }
}

#[test]
fn domain_matches_the_domain_and_subdomains_only() {
    let cases = [
        ("example.com", "example.com", true),
        ("x.example.com", "example.com", true),
        ("a.b.example.com", "example.com", true),
        ("badexample.com", "example.com", false),
        ("example.com.evil.test", "example.com", false),
        ("com", "example.com", false),
        ("example.com", "", false),
    ];
    for (domain, want, expected) in cases {
        assert_eq!(domain_matches(domain, want), expected, "{domain} vs {want}");
    }
}

#[test]
fn invalid_regex_message_is_one_line() {
    let err = user_regex("(unclosed", false).unwrap_err();
    assert!(err.starts_with("invalid regex \"(unclosed\""), "{err}");
    assert!(!err.contains('\n'), "{err}");
}
