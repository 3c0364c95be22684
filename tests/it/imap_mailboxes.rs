//! Mailbox names against the private Dovecot with both hierarchy separators: non-ASCII names
//! through CREATE and LIST, ensure_mailbox (parents, subscriptions, races), SPECIAL-USE.

use std::time::Duration;

use imapsort::imap::{ImapError, Session, connect};
use imapsort::imap::{SpecialUse, resolve_special};
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};
use secrecy::SecretString;

use crate::support;

const LIMIT: Duration = Duration::from_secs(60);

fn start(separator: char) -> Option<Dovecot> {
    support::dovecot::start(DovecotOptions {
        separator,
        ..DovecotOptions::default()
    })
}

async fn login(d: &Dovecot) -> Session {
    connect(
        &support::dovecot::connect_opts(d, "user"),
        &SecretString::from("pass".to_string()),
    )
    .await
    .unwrap()
}

async fn subscribed(s: &mut Session) -> Vec<String> {
    let responses = s.run_command("LSUB \"\" \"*\"").await.unwrap();
    let mut names = Vec::new();
    for r in responses {
        if let async_imap::imap_proto::Response::MailboxData(
            async_imap::imap_proto::MailboxDatum::List(l),
        ) = r
        {
            names.push(l.name.to_string());
        }
    }
    names
}

fn check_separator(sep: char) {
    let Some(d) = start(sep) else { return };
    support::run_with_timeout(LIMIT, async {
        let mut s = login(&d).await;
        assert_eq!(s.delimiter().await.unwrap(), Some(sep));

        // Non-ASCII names, nested, round trip through CREATE and LIST.
        let names = [
            "Büro/Rechnungen 2026",
            "日本語/メール",
            "Lists/dev.example.org",
            "A&B",
        ];
        for name in names {
            if sep == '.' && name.contains('.') {
                // On a '.' server a '.' in a component would become hierarchy: refused.
                let e = s.ensure_mailbox(name).await.unwrap_err();
                assert!(matches!(e, ImapError::Name(_)), "{e:?}");
                continue;
            }
            assert!(s.ensure_mailbox(name).await.unwrap(), "{name} created");
            // A second time: nothing to do, no error.
            assert!(!s.ensure_mailbox(name).await.unwrap());
        }
        let list = s.list().await.unwrap();
        let listed: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
        for name in names {
            if sep == '.' && name.contains('.') {
                continue;
            }
            assert!(listed.contains(&name), "{name} missing from {listed:?}");
            // Parents were created too.
            for parent in imapsort::imap::name::parents(name) {
                assert!(listed.contains(&parent.as_str()), "{parent} missing");
            }
        }
        let buero = list
            .iter()
            .find(|e| e.name == "Büro/Rechnungen 2026")
            .unwrap();
        assert_eq!(buero.wire_name, format!("B&APw-ro{sep}Rechnungen 2026"));
        assert_eq!(buero.delimiter, Some(sep));

        // Created mailboxes and their parents are subscribed.
        let subs = subscribed(&mut s).await;
        for wire in ["B&APw-ro", &format!("B&APw-ro{sep}Rechnungen 2026")] {
            assert!(
                subs.iter().any(|x| x == wire),
                "{wire} not subscribed: {subs:?}"
            );
        }

        // SPECIAL-USE discovery and the trash/archive defaults.
        let trash = list
            .iter()
            .find(|e| e.special_use == Some(SpecialUse::Trash))
            .unwrap();
        assert_eq!(trash.name, "Trash");
        assert_eq!(
            resolve_special(None, &list, SpecialUse::Archive, "Archive"),
            "Archive"
        );
        assert_eq!(
            resolve_special(Some("Bin"), &list, SpecialUse::Trash, "Trash"),
            "Bin"
        );

        // A message can be moved into a non-ASCII nested mailbox and counted there.
        d.seed("user", "INBOX", &[support::dovecot::message(1, "x")])
            .unwrap();
        s.select("INBOX").await.unwrap();
        s.uid_move("1", "日本語/メール").await.unwrap();
        let st = s.status("日本語/メール").await.unwrap();
        assert_eq!(st.messages, Some(1));
        assert_eq!(st.unseen, Some(1));
        s.logout().await.unwrap();
    });
}

#[test]
fn slash_separator_with_fs_layout() {
    check_separator('/');
}

#[test]
fn dot_separator_maildirplusplus() {
    check_separator('.');
}

#[test]
fn seeded_nested_mailboxes_are_listed_under_both_separators() {
    for sep in ['/', '.'] {
        let Some(d) = start(sep) else { return };
        d.seed(
            "user",
            "Archive/2025/Q1",
            &[support::dovecot::message(1, "old")],
        )
        .unwrap();
        d.seed(
            "user",
            "Straße",
            &[
                support::dovecot::message(2, "x"),
                support::dovecot::message(3, "y"),
            ],
        )
        .unwrap();
        support::run_with_timeout(LIMIT, async {
            let mut s = login(&d).await;
            let list = s.list().await.unwrap();
            let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
            assert!(names.contains(&"Archive/2025/Q1"), "{sep}: {names:?}");
            assert_eq!(s.status("Archive/2025/Q1").await.unwrap().messages, Some(1));
            assert_eq!(s.status("Straße").await.unwrap().messages, Some(2));
        });
    }
}

#[test]
fn concurrent_ensure_mailbox_races_are_tolerated() {
    let Some(d) = start('/') else { return };
    support::run_with_timeout(LIMIT, async {
        let mut a = login(&d).await;
        let mut b = login(&d).await;
        let (ra, rb) = tokio::join!(
            a.ensure_mailbox("Race/Deep/Box"),
            b.ensure_mailbox("Race/Deep/Box")
        );
        ra.unwrap();
        rb.unwrap();
        assert!(a.exists("Race/Deep/Box").await.unwrap());
    });
}

#[test]
fn seeding_ten_thousand_messages_is_fast() {
    let Some(d) = start('/') else { return };
    let msgs: Vec<Vec<u8>> = (0..10_000)
        .map(|n| support::dovecot::message(n, "bulk"))
        .collect();
    let started = std::time::Instant::now();
    d.seed("user", "Bulk", &msgs).unwrap();
    let took = started.elapsed();
    eprintln!("seeding 10,000 messages took {took:?}");
    // About a second on tmpfs; allow a slow shared CI machine.
    assert!(took < Duration::from_secs(10), "seeding took {took:?}");
    support::run_with_timeout(LIMIT, async {
        let mut s = login(&d).await;
        assert_eq!(s.status("Bulk").await.unwrap().messages, Some(10_000));
    });
}

/// `*` and `%` are LIST wildcards: asking whether `Lists/*` exists must not answer for
/// `Lists/rust`. Existence is exact, so a mailbox with such a name is created, found, and not
/// confused with its neighbours; under both separators.
#[test]
fn existence_is_exact_although_names_hold_list_wildcards() {
    for sep in ['/', '.'] {
        let Some(d) = start(sep) else { return };
        support::run_with_timeout(LIMIT, async {
            let mut s = login(&d).await;
            for name in ["Lists/rust", "Deals", "inbox"] {
                s.ensure_mailbox(name).await.unwrap();
            }
            for (name, exists) in [
                ("Lists/rust", true),
                ("Lists", true),
                ("INBOX", true),
                ("Inbox", true),
                ("Lists/*", false),
                ("Lists/%", false),
                ("Lists/ru%", false),
                ("L*", false),
                ("Deal%", false),
                ("*", false),
                ("%", false),
            ] {
                assert_eq!(s.exists(name).await.unwrap(), exists, "{sep}: {name}");
            }
            // A wildcard name of its own is created, although LIST "Lists/*" already matched.
            assert!(s.ensure_mailbox("Lists/*").await.unwrap(), "{sep}: created");
            assert!(s.exists("Lists/*").await.unwrap());
            assert!(!s.exists("Lists/%").await.unwrap());
            assert!(s.ensure_mailbox("Deals 50%").await.unwrap());
            assert!(!s.ensure_mailbox("Deals 50%").await.unwrap(), "found again");
            let names: Vec<String> = s
                .list()
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            for name in ["Lists/*", "Lists/rust", "Deals 50%"] {
                assert!(
                    names.iter().any(|n| n == name),
                    "{sep}: {name} in {names:?}"
                );
            }
            s.logout().await.unwrap();
        });
    }
}
