//! Loading valid files: the `Config` and rule AST they produce.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::rules::ast::{
    ActionKind, AddressField, AddressOp, ConditionKind, Rule, Span, SystemFlag, TextOp, Trigger,
};
use crate::vocab::MailboxName;

fn load_ok(text: &str) -> Config {
    match load_str(text, Path::new("/etc/imapsort/c.yaml")) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn rules(text: &str) -> Vec<Rule> {
    load_ok(text).rules.rules().cloned().collect()
}

/// The `when` of a single rule whose condition is `COND`.
fn when(cond: &str) -> ConditionKind {
    let text = format!("rules:\n  - name: r\n    when: {cond}\n    then: trash\n");
    rules(&text).remove(0).when.kind
}

const EXAMPLE: &str = r#"
accounts:
  - name: personal
    host: imap.example.com
    username: me@example.com
    password: { command: [pass, show, mail/personal] }

rules:
  - name: mailing lists
    when: { list_id: { exists: true } }
    then: { move: "Lists/{list_id}" }

  - name: invoices
    when:
      any:
        - subject: { regex: '\b(invoice|receipt)\b' }
        - from: "@billing.example.net"
    then: [{ flag: "$Invoice" }, { copy: "Accounting/{year}" }]

  - name: boss
    when: { from: boss@work.example }
    then: { flag: \Flagged }
    stop: true

  - name: archive read mail older than 30 days
    when: { all: [{ older_than: 30d }, { seen: true }, { flagged: false }] }
    then: { archive: "Archive/{year}" }
"#;

#[test]
fn rules_md_example_loads() {
    let c = load_ok(EXAMPLE);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let a = &c.accounts[0];
    assert_eq!(a.name, "personal");
    assert_eq!(a.host, "imap.example.com");
    assert_eq!(a.port, 993);
    assert_eq!(a.tls, TlsMode::Implicit);
    assert!(!a.allow_insecure);
    assert_eq!(a.username, "me@example.com");
    assert_eq!(
        a.credentials,
        Credentials::Secret(SecretSource::Command(vec![
            "pass".into(),
            "show".into(),
            "mail/personal".into()
        ]))
    );
    assert_eq!(a.auth, AuthMechanism::Login);
    assert_eq!(a.watch, vec!["INBOX".to_string()]);
    assert_eq!(a.max_connections, 4);
    assert_eq!(a.poll_interval, Duration::from_secs(120));
    assert_eq!(a.first_start, FirstStart::New);
    assert_eq!((a.trash.as_deref(), a.archive.as_deref()), (None, None));
    assert_eq!(a.span, Span { line: 3, column: 5 });
    assert_eq!(c.settings.sweep_interval, Duration::from_secs(3600));
    assert_eq!(c.settings.idle_refresh, Duration::from_secs(600));
    assert_eq!(c.settings.metrics_listen, None);
    assert_eq!(c.settings.max_connecting, 8);

    let r: Vec<Rule> = c.rules.rules().cloned().collect();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].name, "mailing lists");
    assert_eq!(r[0].span, Span { line: 9, column: 5 });
    let ConditionKind::ListId(m) = &r[0].when.kind else {
        panic!("{:?}", r[0].when)
    };
    assert_eq!(m.op, TextOp::Exists(true));
    assert_eq!(
        r[0].then[0].kind,
        ActionKind::Move("Lists/{list_id}".into())
    );
    assert_eq!(
        (
            r[0].accounts.clone(),
            r[0].mailboxes.clone(),
            r[0].on.clone()
        ),
        (None, None, None)
    );

    let ConditionKind::Any(any) = &r[1].when.kind else {
        panic!()
    };
    let ConditionKind::Subject(s) = &any[0].kind else {
        panic!()
    };
    assert_eq!(s.op, TextOp::Regex(r"\b(invoice|receipt)\b".into()));
    let ConditionKind::Address { field, matcher } = &any[1].kind else {
        panic!()
    };
    assert_eq!(*field, AddressField::From);
    assert_eq!(
        matcher.op,
        AddressOp::Domain(vec!["billing.example.net".into()])
    );
    assert_eq!(
        r[1].then.iter().map(|a| a.kind.clone()).collect::<Vec<_>>(),
        vec![
            ActionKind::Flag(vec!["$Invoice".into()]),
            ActionKind::Copy("Accounting/{year}".into())
        ]
    );
    assert!(r[2].stop);
    assert_eq!(
        r[2].then[0].kind,
        ActionKind::Flag(vec!["\\Flagged".into()])
    );
    let ConditionKind::All(all) = &r[3].when.kind else {
        panic!()
    };
    assert_eq!(
        all[0].kind,
        ConditionKind::OlderThan(Duration::from_secs(30 * 86_400))
    );
    assert_eq!(
        all[1].kind,
        ConditionKind::Flag {
            flag: SystemFlag::Seen,
            set: true
        }
    );
    assert_eq!(
        r[3].then[0].kind,
        ActionKind::Archive(Some("Archive/{year}".into()))
    );
}

#[test]
fn address_inference() {
    use AddressOp::*;
    let cases = [
        (r#""@example.com""#, Domain(vec!["example.com".into()])),
        (
            "alice@example.com",
            Address(TextOp::Is(vec!["alice@example.com".into()])),
        ),
        ("a@b@c", Address(TextOp::Is(vec!["a@b@c".into()]))),
        ("billing", Address(TextOp::Contains(vec!["billing".into()]))),
        (
            r#"[a@x.org, "@y.org", z]"#,
            Any(vec![
                Address(TextOp::Is(vec!["a@x.org".into()])),
                Domain(vec!["y.org".into()]),
                Address(TextOp::Contains(vec!["z".into()])),
            ]),
        ),
        (
            "{ is: a@x.org }",
            Address(TextOp::Is(vec!["a@x.org".into()])),
        ),
        (
            "{ contains: [a, b] }",
            Address(TextOp::Contains(vec!["a".into(), "b".into()])),
        ),
        (
            "{ prefix: news }",
            Address(TextOp::Prefix(vec!["news".into()])),
        ),
        (
            "{ suffix: .org }",
            Address(TextOp::Suffix(vec![".org".into()])),
        ),
        (
            "{ glob: '*@*.org' }",
            Address(TextOp::Glob(vec!["*@*.org".into()])),
        ),
        ("{ regex: '^a' }", Address(TextOp::Regex("^a".into()))),
        (
            "{ domain: example.com }",
            Domain(vec!["example.com".into()]),
        ),
        (
            "{ domain: ['@a.org', b.org] }",
            Domain(vec!["a.org".into(), "b.org".into()]),
        ),
    ];
    for (written, want) in cases {
        let kind = when(&format!("{{ from: {written} }}"));
        let ConditionKind::Address { matcher, .. } = kind else {
            panic!("{written}: {kind:?}")
        };
        assert_eq!(matcher.op, want, "{written}");
        assert!(!matcher.case_sensitive);
    }
    let ConditionKind::Address { field, matcher } =
        when("{ recipient: { name: { is: Bob }, case_sensitive: true } }")
    else {
        panic!()
    };
    assert_eq!(field, AddressField::Recipient);
    assert!(matcher.case_sensitive);
    let Name(name) = matcher.op else { panic!() };
    assert_eq!(name.op, TextOp::Is(vec!["Bob".into()]));
    let ConditionKind::Address { matcher, .. } =
        when("{ to: { name: Bob, case_sensitive: true } }")
    else {
        panic!()
    };
    let Name(name) = matcher.op else { panic!() };
    assert_eq!(name.op, TextOp::Contains(vec!["Bob".into()]));
    assert!(name.case_sensitive, "a plain name inherits case_sensitive");
}

#[test]
fn text_matcher_inference() {
    let cases = [
        ("Invoice", TextOp::Contains(vec!["Invoice".into()]), false),
        (
            "[a, b]",
            TextOp::Contains(vec!["a".into(), "b".into()]),
            false,
        ),
        ("2024", TextOp::Contains(vec!["2024".into()]), false),
        ("{ is: '' }", TextOp::Is(vec![String::new()]), false),
        (
            "{ prefix: [Re, Fwd] }",
            TextOp::Prefix(vec!["Re".into(), "Fwd".into()]),
            false,
        ),
        (
            "{ suffix: x, case_sensitive: true }",
            TextOp::Suffix(vec!["x".into()]),
            true,
        ),
        ("{ glob: '*x?' }", TextOp::Glob(vec!["*x?".into()]), false),
        (
            "{ regex: '(?P<n>\\d+)' }",
            TextOp::Regex("(?P<n>\\d+)".into()),
            false,
        ),
        ("{ exists: false }", TextOp::Exists(false), false),
        ("{ gt: 5 }", TextOp::Gt(5.0), false),
        ("{ lt: 2.5 }", TextOp::Lt(2.5), false),
        ("{ ge: -1 }", TextOp::Ge(-1.0), false),
        ("{ le: 0 }", TextOp::Le(0.0), false),
    ];
    for (written, want, cs) in cases {
        let ConditionKind::Subject(m) = when(&format!("{{ subject: {written} }}")) else {
            panic!()
        };
        assert_eq!((m.op, m.case_sensitive), (want, cs), "{written}");
    }
    let ConditionKind::Header { name, matcher } = when("{ header: { name: X-Spam-Score, gt: 5 } }")
    else {
        panic!()
    };
    assert_eq!(
        (name.as_str(), matcher.op),
        ("X-Spam-Score", TextOp::Gt(5.0))
    );
}

#[test]
fn condition_forms() {
    assert_eq!(when("true"), ConditionKind::True);
    assert_eq!(when("false"), ConditionKind::Any(vec![]));
    assert_eq!(when("{ all: [] }"), ConditionKind::All(vec![]));
    assert_eq!(when("{ any: [] }"), ConditionKind::Any(vec![]));
    let ConditionKind::All(parts) = when("{ subject: a, from: b, seen: false }") else {
        panic!()
    };
    let keys: Vec<&str> = parts
        .iter()
        .map(|c| match &c.kind {
            ConditionKind::Subject(_) => "subject",
            ConditionKind::Address { .. } => "from",
            ConditionKind::Flag { .. } => "seen",
            _ => "?",
        })
        .collect();
    assert_eq!(
        keys,
        ["subject", "from", "seen"],
        "several keys keep their order"
    );
    let ConditionKind::Not(inner) = when("{ not: { keyword: work } }") else {
        panic!()
    };
    assert_eq!(inner.kind, ConditionKind::Keyword("work".into()));
    for (written, want) in [
        (
            "{ size: { over: 10K } }",
            ConditionKind::Size {
                over: Some(10_240),
                under: None,
            },
        ),
        (
            "{ size: { under: 500 } }",
            ConditionKind::Size {
                over: None,
                under: Some(500),
            },
        ),
        (
            "{ newer_than: 2w }",
            ConditionKind::NewerThan(Duration::from_secs(1_209_600)),
        ),
        (
            "{ sent_before: 1h 30m }",
            ConditionKind::SentBefore(Duration::from_secs(5400)),
        ),
        (
            "{ sent_after: 90s }",
            ConditionKind::SentAfter(Duration::from_secs(90)),
        ),
        (
            "{ has_attachment: true }",
            ConditionKind::HasAttachment(true),
        ),
        (
            "{ draft: true }",
            ConditionKind::Flag {
                flag: SystemFlag::Draft,
                set: true,
            },
        ),
        (
            "{ answered: false }",
            ConditionKind::Flag {
                flag: SystemFlag::Answered,
                set: false,
            },
        ),
        (
            "{ keyword: '\\seen' }",
            ConditionKind::Keyword("\\Seen".into()),
        ),
    ] {
        assert_eq!(when(written), want, "{written}");
    }
    let ConditionKind::Attachment(m) = when("{ attachment: { suffix: .pdf } }") else {
        panic!()
    };
    assert_eq!(m.op, TextOp::Suffix(vec![".pdf".into()]));
    let ConditionKind::Body(m) = when("{ body: unsubscribe }") else {
        panic!()
    };
    assert_eq!(m.op, TextOp::Contains(vec!["unsubscribe".into()]));
}

#[test]
fn actions_and_rule_keys() {
    let text = r#"
accounts:
  - { name: a, host: h, username: u, password: { env: PW } }
  - { name: b, host: h, username: u, password: { file: pw.txt } }
rules:
  - name: r
    when: true
    then: [mark_read, mark_unread, stop, { flag: [work, '\flagged'] }, { unflag: '$x' }, { label: [A, B] }, { copy: C }, archive]
    accounts: [b]
    mailboxes: INBOX/sub
    on: [sweep, new]
  - name: t
    when: true
    then: { archive: }
    on: new
  - name: u
    when: true
    then: trash
  - name: v
    when: true
    then: [delete]
"#;
    let c = load_ok(text);
    assert_eq!(
        c.accounts[0].credentials,
        Credentials::Secret(SecretSource::Env("PW".into()))
    );
    assert_eq!(
        c.accounts[1].credentials,
        Credentials::Secret(SecretSource::File("pw.txt".into()))
    );
    let r: Vec<Rule> = c.rules.rules().cloned().collect();
    let kinds: Vec<ActionKind> = r[0].then.iter().map(|a| a.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            ActionKind::MarkRead,
            ActionKind::MarkUnread,
            ActionKind::Stop,
            ActionKind::Flag(vec!["work".into(), "\\Flagged".into()]),
            ActionKind::Unflag(vec!["$x".into()]),
            ActionKind::Label(vec!["A".into(), "B".into()]),
            ActionKind::Copy("C".into()),
            ActionKind::Archive(None),
        ]
    );
    assert_eq!(r[0].accounts, Some(vec!["b".to_string()]));
    assert_eq!(r[0].mailboxes, Some(vec![MailboxName::new("INBOX/sub")]));
    assert_eq!(r[0].on, Some(vec![Trigger::Sweep, Trigger::New]));
    assert_eq!(r[1].then[0].kind, ActionKind::Archive(None));
    assert_eq!(r[1].on, Some(vec![Trigger::New]));
    assert_eq!(r[2].then[0].kind, ActionKind::Trash);
    assert_eq!(r[3].then[0].kind, ActionKind::Delete);
    let msgs: Vec<String> = c.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].starts_with("delete removes"), "{msgs:?}");
}

#[test]
fn account_settings_and_defaults() {
    let text = r#"
settings:
  state_dir: /var/lib/x
  sweep_interval: 15m
  idle_refresh: 5m
  metrics_listen: "[::1]:9898"
  max_connecting: 2
accounts:
  - name: s
    host: h
    tls: starttls
    username: u
    password: literal
    auth: xoauth2
    watch: [INBOX, Lists/dev]
    max_connections: 1
    poll_interval: 1h 30m
    trash: Bin
    archive: Old
    first_start: all
    ca_file: /etc/ca.pem
  - { name: n, host: h, tls: none, allow_insecure: true, username: u, password: p, port: 10143 }
"#;
    let c = load_ok(text);
    assert_eq!(c.settings.state_dir, Path::new("/var/lib/x"));
    assert_eq!(c.settings.sweep_interval, Duration::from_secs(900));
    assert_eq!(c.settings.idle_refresh, Duration::from_secs(300));
    let listen = c.settings.metrics_listen.as_ref().unwrap();
    assert_eq!((listen.host.as_str(), listen.port), ("::1", 9898));
    assert_eq!(c.settings.max_connecting, 2);
    let s = &c.accounts[0];
    assert_eq!(
        (s.port, s.tls, s.auth),
        (143, TlsMode::StartTls, AuthMechanism::XOAuth2)
    );
    assert_eq!(s.watch, vec!["INBOX".to_string(), "Lists/dev".to_string()]);
    assert_eq!(s.max_connections, 1);
    assert_eq!(s.poll_interval, Duration::from_secs(5400));
    assert_eq!(
        (s.trash.as_deref(), s.archive.as_deref()),
        (Some("Bin"), Some("Old"))
    );
    assert_eq!(s.first_start, FirstStart::All);
    assert_eq!(s.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
    let n = &c.accounts[1];
    assert_eq!(
        (n.port, n.tls, n.allow_insecure),
        (10143, TlsMode::None, true)
    );
    assert_eq!(c.account("n").map(|a| a.port), Some(10143));
}

#[test]
fn empty_and_minimal_files_are_valid() {
    for text in [
        "",
        "# nothing\n",
        "settings:\naccounts:\nrules:\n",
        "rules: []\n",
    ] {
        let c = load_ok(text);
        assert!(c.accounts.is_empty());
        assert_eq!(c.rules.rules().count(), 0);
    }
}

#[test]
fn literal_password_never_shows() {
    let text =
        "accounts:\n  - { name: a, host: h, username: u, password: hunter2-secret, bogus: 1 }\n";
    let err = load_str(text, Path::new("c.yaml")).unwrap_err();
    assert!(!format!("{err}").contains("hunter2"));
    assert!(!format!("{err:?}").contains("hunter2"));
    let ok =
        load_ok("accounts:\n  - { name: a, host: h, username: u, password: hunter2-secret }\n");
    assert!(!format!("{ok:?}").contains("hunter2"));
}

#[test]
fn resolve_path_prefers_the_given_file() {
    assert_eq!(resolve_path(Some(Path::new("x.yaml"))), Path::new("x.yaml"));
    assert_eq!(resolve_path(None), default_path());
}

#[test]
fn unreadable_file_is_one_error_without_a_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.yaml");
    let err = load(&path).unwrap_err();
    assert!(matches!(err, LoadError::Unreadable { .. }), "{err:?}");
    assert_eq!(err.path(), path);
    let diags = err.diagnostics();
    assert_eq!(diags.len(), 1);
    assert_eq!((diags[0].severity, diags[0].span), (Severity::Error, None));
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: error: cannot read the file: ",
            path.display()
        )),
        "{shown}"
    );
    assert_eq!(shown, diags[0].to_string());
}

#[test]
fn load_reads_a_file_and_keeps_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let c = load(&path).unwrap();
    assert_eq!(c.path, path);
    assert_eq!(c.rules.rules().count(), 4);
}

#[test]
fn invalid_file_lists_errors_and_warnings_in_order() {
    let text = "rules:\n  - name: a\n    when: true\n    then: delete\n  - name: b\n    when: { x: 1 }\n    then: trash\n";
    let err = load_str(text, Path::new("c.yaml")).unwrap_err();
    let lines: Vec<String> = err.diagnostics().iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("c.yaml:4:11: warning: rule \"a\": delete"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("c.yaml:6:13: error: rule \"b\": unknown condition \"x\""),
        "{lines:?}"
    );
    assert_eq!(err.to_string(), lines.join("\n"));
}

#[test]
fn oauth2_accounts_get_provider_defaults() {
    let text = r#"
settings: { state_dir: /var/lib/imapsort }
accounts:
  - name: work
    host: outlook.office365.com
    username: me@example.com
    auth: oauth2
    oauth2: { provider: microsoft, client_id: cid, tenant: contoso.example }
  - name: gmail
    host: imap.gmail.com
    username: me@gmail.com
    auth: oauth2
    oauth2:
      provider: google
      client_id: gid
      client_secret: { env: GSECRET }
      mechanism: oauthbearer
"#;
    let c = load_ok(text);
    let ms = c.accounts[0].credentials.oauth2().unwrap();
    assert_eq!(c.accounts[0].auth, AuthMechanism::XOAuth2);
    assert_eq!(ms.provider, Provider::Microsoft);
    assert_eq!(
        ms.token_url,
        "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"
    );
    assert_eq!(
        ms.device_url.as_deref(),
        Some("https://login.microsoftonline.com/contoso.example/oauth2/v2.0/devicecode")
    );
    assert_eq!(
        ms.scopes,
        vec![
            "https://outlook.office.com/IMAP.AccessAsUser.All".to_string(),
            "offline_access".to_string()
        ]
    );
    assert_eq!(
        ms.token_file,
        Path::new("/var/lib/imapsort/oauth2/work.json")
    );
    let g = c.accounts[1].credentials.oauth2().unwrap();
    assert_eq!(c.accounts[1].auth, AuthMechanism::OAuthBearer);
    assert_eq!(g.device_url, None);
    assert_eq!(g.token_url, "https://oauth2.googleapis.com/token");
    assert_eq!(g.scopes, vec!["https://mail.google.com/".to_string()]);
    assert_eq!(g.client_secret, Some(SecretSource::Env("GSECRET".into())));
    assert!(
        g.authorize_params
            .contains(&("access_type".into(), "offline".into()))
    );
}

/// Under systemd the working directory is `/`: a relative `ca_file` is taken beside the
/// configuration file, like a relative `state_dir` or password `file:`; `~/` is `$HOME`.
#[test]
fn a_relative_ca_file_is_beside_the_configuration_file() {
    let account = |ca: &str| {
        format!("accounts:\n  - {{ name: a, host: h, username: u, password: p, ca_file: {ca} }}\n")
    };
    let env = |k: &str| (k == "HOME").then(|| std::ffi::OsString::from("/home/me"));
    for (written, want) in [
        ("ca.pem", "/etc/imapsort/ca.pem"),
        ("certs/ca.pem", "/etc/imapsort/certs/ca.pem"),
        ("/etc/ssl/ca.pem", "/etc/ssl/ca.pem"),
        ("~/ca.pem", "/home/me/ca.pem"),
    ] {
        let c = load_with(
            &account(written),
            Path::new("/etc/imapsort/c.yaml"),
            None,
            &env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.accounts[0].ca_file.as_deref(),
            Some(Path::new(want)),
            "{written}"
        );
    }
}
