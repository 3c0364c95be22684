//! Before a sweep's header search on Dovecot, the pass fetches the header fields it will
//! verify for one message, so that Dovecot's cache takes them while the search parses every
//! message's header: the verifying FETCH that follows then reads no message file again
//! (`pass::prime_cache`, docs/sweep.md). Against a real Dovecot, read from its own index
//! with `doveadm dump`: the messages the search read but the sweep never fetched carry
//! Message-ID and Subject in the cache, which only the search can have put there. And the
//! sweep stays exact: a sender that merely contains the rule's address stays.

use imapsort::cli::OutputFormat;
use imapsort::exit::Exit;
use imapsort_testkit::dovecot::Dovecot;

use crate::support::{self, sweep_util};

const MESSAGES: usize = 60;

const RULES: &str = "  - { name: news, when: { from: news@shop.test }, then: { move: News } }\n";

/// Every third message is from the rule's sender; one in six of the rest from a sender whose
/// address contains it (the server's `FROM` substring search matches it, the rule must not).
fn seed(d: &Dovecot) {
    let mail: Vec<Vec<u8>> = (1..=MESSAGES)
        .map(|n| {
            let from = match n % 6 {
                0 | 3 => "news@shop.test",
                1 => "fakenews@shop.test",
                _ => "friend@x.test",
            };
            sweep_util::eml(
                &format!("m{n}@cache.test"),
                &[("From", from), ("Subject", &format!("subject {n}"))],
                "b",
            )
        })
        .collect();
    d.seed("user", "INBOX", &mail).unwrap();
}

/// `doveadm dump` of a mailbox's index: per UID, the lower-cased names of the header fields
/// its cache holds (`hdr.from`, ...).
fn cached_headers(d: &Dovecot, mailbox: &str) -> Vec<(u32, Vec<String>)> {
    let index = d.mailbox_dir("user", mailbox).join("dovecot.index");
    let out = std::process::Command::new("doveadm")
        .arg("dump")
        .arg(&index)
        .output()
        .expect("doveadm");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    text.split("record: seq=")
        .skip(1)
        .map(|record| {
            let uid = record
                .split("uid=")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|u| u.trim().parse().ok())
                .expect("a record's uid");
            let fields = record
                .lines()
                .filter_map(|l| l.trim().strip_prefix("- hdr."))
                .filter_map(|l| l.split(':').next())
                .map(str::to_owned)
                .collect();
            (uid, fields)
        })
        .collect()
}

#[test]
fn the_search_caches_the_headers_the_verifying_fetch_asks_for() {
    let Some(d) = support::dovecot::start(Default::default()) else {
        return;
    };
    seed(&d);
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_util::write_config(dir.path(), &d, "", RULES);
    support::run_with_timeout(std::time::Duration::from_secs(60), async {
        let run = sweep_util::sweep(&config, false, OutputFormat::Json).await;
        assert_eq!(run.exit, Exit::Ok, "{}\n{}", run.stderr, d.log());
        assert_eq!(run.summary()["moved"], MESSAGES / 3, "{}", run.stdout);
    });
    let moved = MESSAGES / 3;

    let left = cached_headers(&d, "INBOX");
    // The rule's sender left; the look-alikes and everyone else stayed.
    assert_eq!(left.len(), MESSAGES - moved);
    for (uid, fields) in &left {
        for field in ["from", "message-id", "subject"] {
            assert!(
                fields.iter().any(|f| f == field),
                "UID {uid}: {field} not cached ({fields:?})"
            );
        }
    }
}
