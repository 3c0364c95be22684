//! A fuzz smoke that runs in `cargo test` (the long runs are `cargo fuzz`, see fuzz/ and
//! docs/RELIABILITY.md): arbitrary bytes and structured mutations of real messages and of a
//! real configuration go through `MessageView::parse` -> `RuleSet::evaluate` and
//! `config::load_str` without a panic; an invalid configuration always says why.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use imapsort::rules::ast::Trigger;
use imapsort::rules::{EvalContext, MessageFacts, MessageView, RuleSet};
use proptest::prelude::*;

use crate::support::corpus;

static RULES: LazyLock<Arc<RuleSet>> = LazyLock::new(|| {
    imapsort::config::load_str(corpus::rules_yaml(), Path::new("rules.yaml"))
        .expect("valid rule set")
        .rules
});

/// A complete configuration (settings, two accounts with every password source, the rules).
fn full_config() -> String {
    let head = r#"settings:
  state_dir: /var/lib/imapsort
  sweep_interval: 1h 30m
  idle_refresh: 9m
accounts:
  - name: personal
    host: imap.example.com
    port: 993
    tls: implicit
    username: me@example.com
    password: { command: [pass, show, mail/personal] }
    watch: [INBOX, Lists]
    max_connections: 2
    poll_interval: 2m
    trash: Trash
    archive: Archive
    first_start: all
  - name: work
    host: mail.work.example
    tls: starttls
    ca_file: /etc/ssl/work.pem
    username: me
    password: { env: WORK_PASSWORD }
    auth: xoauth2
"#;
    format!("{head}{}", corpus::rules_yaml())
}

/// Small messages to mutate: the committed corpus (the big generated ones are covered by
/// tests/it/reliability_malformed.rs; mutating megabytes here would only be slow).
static BASES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut v: Vec<Vec<u8>> = corpus::committed().into_iter().map(|c| c.bytes).collect();
    v.push(corpus::nested_multiparts(40).bytes);
    v.push(corpus::binary_junk(2000, 3).bytes);
    v
});

fn evaluate(raw: &[u8], flags: Vec<String>) {
    let view = MessageView::parse(
        raw,
        MessageFacts {
            flags,
            size: raw.len() as u64,
            received: Some("2025-06-01T00:00:00-07:00[-07:00]".parse().unwrap()),
        },
    );
    let watch = vec!["INBOX".to_owned()];
    for trigger in [None, Some(Trigger::New)] {
        let ctx = EvalContext {
            account: Some("personal"),
            mailbox: "INBOX",
            watch: &watch,
            trigger,
            now: "2026-03-10T12:00:00Z".parse().unwrap(),
            trash: "Trash",
            archive: "Archive",
            delimiter: Some('.'),
            applied: None,
        };
        let ev = RULES.evaluate(&view, &ctx);
        for name in ev.plan.copy.iter().chain(
            ev.plan
                .final_action
                .iter()
                .filter_map(|f| f.mailbox.as_ref()),
        ) {
            assert!(!name.chars().any(char::is_control), "{name:?}");
        }
    }
}

fn load(text: &str) {
    match imapsort::config::load_str(text, Path::new("/smoke/config.yaml")) {
        Ok(config) => {
            let _ = config.rules.needs();
        }
        Err(e) => {
            assert!(!e.diagnostics().is_empty(), "an error without a diagnostic");
            assert!(!e.to_string().is_empty());
        }
    }
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    /// Insert bytes at a relative position (0..=1 scaled to the length).
    Insert(f64, Vec<u8>),
    /// Delete a range.
    Delete(f64, usize),
    /// Overwrite one byte.
    Flip(f64, u8),
    /// Copy a range somewhere else (repeats boundaries, headers, encoded words).
    Duplicate(f64, usize, f64),
    /// Cut the rest off.
    Truncate(f64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b"\r\n ".to_vec()),
        Just(b"=?utf-8?b?".to_vec()),
        Just(b"?=".to_vec()),
        Just(b"--".to_vec()),
        Just(b"Content-Type: multipart/mixed; boundary=".to_vec()),
        Just(b"\r\nFrom: x@y.z\r\n".to_vec()),
        Just(b"\xff\xfe\xc3".to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b": ".to_vec()),
        Just(b"\n- ".to_vec()),
        Just(b"&a ".to_vec()),
        Just(b"*a".to_vec()),
        Just(b"!!binary ".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\"".to_vec()),
        prop::collection::vec(any::<u8>(), 1..16),
    ];
    prop_oneof![
        (0.0..=1.0, interesting).prop_map(|(p, b)| Mutation::Insert(p, b)),
        (0.0..=1.0, 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (0.0..=1.0, any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (0.0..=1.0, 1usize..200, 0.0..=1.0).prop_map(|(p, n, q)| Mutation::Duplicate(p, n, q)),
        (0.0..=1.0).prop_map(Mutation::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
    for m in mutations {
        let len = data.len();
        match m {
            Mutation::Insert(p, bytes) => {
                let i = at(*p, len);
                data.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let i = at(*p, len);
                data.drain(i..(i + n).min(len));
            }
            Mutation::Flip(p, b) => {
                if len > 0 {
                    let i = at(*p, len - 1);
                    data[i] = *b;
                }
            }
            Mutation::Duplicate(p, n, q) => {
                let i = at(*p, len);
                let piece = data[i..(i + n).min(len)].to_vec();
                let j = at(*q, len);
                data.splice(j..j, piece);
            }
            Mutation::Truncate(p) => data.truncate(at(*p, len)),
        }
    }
    data
}

fn flags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            Just("\\Seen".to_owned()),
            Just("\\Flagged".to_owned()),
            Just("work".to_owned()),
            "\\PC{0,8}",
        ],
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_a_message_never_panic(
        raw in prop::collection::vec(any::<u8>(), 0..4096),
        flags in flags(),
    ) {
        evaluate(&raw, flags);
    }

    #[test]
    fn mutated_real_messages_never_panic(
        base in 0usize..64,
        mutations in prop::collection::vec(mutation(), 1..12),
        flags in flags(),
    ) {
        let bases = &*BASES;
        let raw = apply(bases[base % bases.len()].clone(), &mutations);
        evaluate(&raw, flags);
    }

    #[test]
    fn arbitrary_text_as_a_config_never_panics(text in "\\PC{0,400}") {
        load(&text);
    }

    #[test]
    fn yaml_shaped_noise_as_a_config_never_panics(
        text in "([a-z_]{1,8}|[-:{}\\[\\],&*!|>'\" \n]|  |\\d{1,3}|\\.){0,120}",
    ) {
        load(&text);
    }

    #[test]
    fn mutated_real_config_never_panics(
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let text = apply(full_config().into_bytes(), &mutations);
        load(&String::from_utf8_lossy(&text));
    }
}

#[test]
fn the_unmutated_inputs_are_valid() {
    // The mutations start from inputs that load and match: otherwise the smoke would only
    // ever exercise the error paths.
    let config = imapsort::config::load_str(&full_config(), Path::new("/smoke/config.yaml"))
        .expect("the full configuration is valid");
    assert_eq!(config.accounts.len(), 2);
    assert!(config.rules.len() >= 10);
    assert!(BASES.len() >= 8);
}
