//! Failure paths a real server will not produce on demand, against scripted peers that speak
//! exact C:/S: transcripts: NO on STORE/FETCH/SEARCH, BYE mid-command, drops, stalls, garbage,
//! STARTTLS stripping, OAuth SASL strings, host-name verification.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use imapsort::config::{AuthMechanism, TlsMode};
use imapsort::imap::{ConnectOptions, IdleOutcome, ImapError, Session, connect};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::support;
use crate::support::peer;

const LIMIT: Duration = Duration::from_secs(20);

/// The transcript up to a logged-in session (plaintext, LOGIN user/pass).
const LOGIN: &str = r#"
    S: * OK ready
    C: A1 CAPABILITY
    S: * CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS
    S: A1 OK done
    C: A2 LOGIN "user" "pass"
    S: A2 OK logged in
    C: A3 CAPABILITY
    S: * CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS
    S: A3 OK done
"#;

fn opts(port: u16) -> ConnectOptions {
    ConnectOptions {
        account: "scripted".into(),
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        allow_insecure: true,
        ca_file: None,
        username: "user".into(),
        auth: AuthMechanism::Login,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
    }
}

fn pass() -> SecretString {
    SecretString::from("pass".to_string())
}

async fn session(script: &str) -> (Session, peer::Peer) {
    let p = peer::start(&format!("{LOGIN}{script}")).await;
    let s = connect(&opts(p.port), &pass())
        .await
        .expect("scripted login");
    (s, p)
}

async fn finish(p: peer::Peer) {
    p.done.await.unwrap().expect("transcript followed");
}

#[test]
fn no_to_store_fetch_and_search_are_errors() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 SELECT INBOX
            S: * 3 EXISTS
            S: * OK [UIDVALIDITY 42] ok
            S: * OK [UIDNEXT 4] ok
            S: A4 OK [READ-WRITE] selected
            C: A5 UID STORE 1 +FLAGS.SILENT (\Seen)
            S: A5 NO [CANNOT] store refused
            C: A6 UID FETCH 1:3 (UID FLAGS)
            S: * 1 FETCH (UID 1 FLAGS ())
            S: A6 NO fetch failed halfway
            C: A7 UID SEARCH ALL
            S: A7 NO [SERVERBUG] search broke
            C: A8 UID SEARCH ALL
            S: * SEARCH 1 3
            S: A8 OK done
            "#,
        )
        .await;
        let info = s.select("INBOX").await.unwrap();
        assert_eq!(
            (info.uid_validity, info.uid_next, info.exists),
            (Some(42), Some(4), 3)
        );
        let e = s
            .uid_store("1", "+FLAGS.SILENT (\\Seen)")
            .await
            .unwrap_err();
        assert!(
            matches!(e, ImapError::No { ref command, .. } if command == "UID STORE"),
            "{e:?}"
        );
        assert_eq!(e.no_code(), Some("CANNOT"));
        assert!(!e.is_transient());
        let e = s.uid_fetch("1:3", "(UID FLAGS)").await.unwrap_err();
        assert!(
            matches!(e, ImapError::No { ref command, .. } if command == "UID FETCH"),
            "{e:?}"
        );
        let e = s.uid_search("ALL").await.unwrap_err();
        assert!(matches!(e, ImapError::No { .. }), "{e:?}");
        // The session is still in step after the errors.
        assert_eq!(s.uid_search("ALL").await.unwrap(), vec![1, 3]);
        finish(p).await;
    });
}

#[test]
fn pipelined_fetches_are_answered_in_order_and_a_no_keeps_the_session_in_step() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 UID FETCH 1:2 (UID FLAGS)
            S: * 1 FETCH (UID 1 FLAGS (\Seen))
            S: A4 NO [SERVERBUG] fetch failed halfway
            C: A5 UID FETCH 3:4 (UID FLAGS)
            S: * 3 FETCH (UID 3 FLAGS ())
            S: * 4 FETCH (UID 4 FLAGS (\Flagged))
            S: A5 OK done
            C: A6 UID SEARCH ALL
            S: * SEARCH 1 3 4
            S: A6 OK done
            "#,
        )
        .await;
        // Both commands go out before either answer is read.
        let first = s.start_uid_fetch("1:2", "(UID FLAGS)").await.unwrap();
        let second = s.start_uid_fetch("3:4", "(UID FLAGS)").await.unwrap();
        let e = s.finish_uid_fetch(&first).await.unwrap_err();
        assert!(matches!(e, ImapError::No { .. }), "{e:?}");
        let items = s.finish_uid_fetch(&second).await.unwrap();
        let uids: Vec<u32> = items.iter().filter_map(|i| i.uid()).collect();
        assert_eq!(
            uids,
            [3, 4],
            "the second answer holds only its own messages"
        );
        assert_eq!(s.uid_search("ALL").await.unwrap(), vec![1, 3, 4]);
        finish(p).await;
    });
}

#[test]
fn bye_mid_command_is_a_transient_connection_loss() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 UID SEARCH ALL
            S: * BYE server shutting down
            S! close
            "#,
        )
        .await;
        let e = s.uid_search("ALL").await.unwrap_err();
        assert!(
            matches!(e, ImapError::ConnectionLost(Some(ref t)) if t.contains("shutting down")),
            "{e:?}"
        );
        assert!(e.is_transient());
        finish(p).await;
    });
}

#[test]
fn connection_dropped_mid_fetch_is_not_a_short_success() {
    // async-imap ends a FETCH stream at EOF as if it were complete; we must not.
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 UID FETCH 1:2 (UID FLAGS)
            S: * 1 FETCH (UID 1 FLAGS ())
            S! close
            "#,
        )
        .await;
        let e = s.uid_fetch("1:2", "(UID FLAGS)").await.unwrap_err();
        assert!(matches!(e, ImapError::ConnectionLost(None)), "{e:?}");
        assert!(e.is_transient());
        finish(p).await;
    });
}

#[test]
fn a_peer_that_never_answers_times_out() {
    support::run_with_timeout(LIMIT, async {
        // No greeting at all.
        let p = peer::start("S! stall").await;
        let mut o = opts(p.port);
        o.connect_timeout = Duration::from_millis(300);
        let e = connect(&o, &pass()).await.unwrap_err();
        assert!(matches!(e, ImapError::Timeout(..)), "{e:?}");
        assert!(e.is_transient());
        drop(p);

        // A command that is never answered.
        let (mut s, p) = session("C: A4 NOOP\nS! stall").await;
        let start = std::time::Instant::now();
        let e = s.noop().await.unwrap_err();
        assert!(matches!(e, ImapError::Timeout(..)), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        // Out of step now: later commands fail at once instead of reading a stale response.
        assert!(!s.is_usable());
        let e = s.noop().await.unwrap_err();
        assert!(matches!(e, ImapError::ConnectionLost(_)), "{e:?}");
        drop(s);
        finish(p).await;
    });
}

#[test]
fn garbage_is_a_protocol_error() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 NOOP
            S: ))) this is not IMAP
            "#,
        )
        .await;
        let e = s.noop().await.unwrap_err();
        assert!(matches!(e, ImapError::Protocol(_)), "{e:?}");
        assert!(e.is_connection_fatal());
        drop(s);
        finish(p).await;
    });
}

#[test]
fn unknown_untagged_data_is_skipped() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 NOOP
            S: * XUNKNOWN-EXTENSION (some "data" 1 2
            S: * 5 EXISTS
            S: A4 OK done
            "#,
        )
        .await;
        s.noop().await.unwrap();
        assert!(s.take_new_data());
        finish(p).await;
    });
}

#[test]
fn plaintext_injected_after_starttls_ok_is_refused() {
    support::run_with_timeout(LIMIT, async {
        let p = peer::start(
            r#"
            S: * OK ready
            C: A1 CAPABILITY
            S: * CAPABILITY IMAP4rev1 STARTTLS
            S: A1 OK done
            C: A2 STARTTLS
            S: A2 OK Begin TLS negotiation now{CRLF}* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected
            "#,
        )
        .await;
        let mut o = opts(p.port);
        o.tls = TlsMode::StartTls;
        o.allow_insecure = false;
        o.host = "localhost".into();
        let e = connect(&o, &pass()).await.unwrap_err();
        assert!(matches!(e, ImapError::Protocol(_)), "{e:?}");
        let _ = p.done.await;
    });
}

#[test]
fn greeting_bye_is_refused() {
    support::run_with_timeout(LIMIT, async {
        let p = peer::start("S: * BYE too many connections\nS! close").await;
        let e = connect(&opts(p.port), &pass()).await.unwrap_err();
        assert!(
            matches!(e, ImapError::ConnectionLost(Some(ref t)) if t.contains("too many")),
            "{e:?}"
        );
        finish(p).await;
    });
}

#[test]
fn a_temporary_login_failure_is_transient_and_a_refusal_is_not() {
    // Dovecot answers NO [UNAVAILABLE] while its auth service is overloaded (after a restart
    // under many accounts): come back soon, unlike AUTHENTICATIONFAILED (wrong password).
    for (code, transient) in [("UNAVAILABLE", true), ("AUTHENTICATIONFAILED", false)] {
        support::run_with_timeout(LIMIT, async {
            let p = peer::start(&format!(
                r#"
                S: * OK ready
                C: A1 CAPABILITY
                S: * CAPABILITY IMAP4rev1 IDLE
                S: A1 OK done
                C: A2 LOGIN "user" "pass"
                S: A2 NO [{code}] Temporary authentication failure.
                "#
            ))
            .await;
            let e = connect(&opts(p.port), &pass()).await.unwrap_err();
            assert_eq!(e.is_transient(), transient, "{code}: {e:?}");
            assert_eq!(
                matches!(e, ImapError::Auth { .. }),
                !transient,
                "{code}: {e:?}"
            );
            finish(p).await;
        });
    }
}

#[test]
fn starttls_not_offered_is_refused_before_any_password() {
    support::run_with_timeout(LIMIT, async {
        // A man in the middle strips STARTTLS from the capabilities: we must not log in.
        let p = peer::start(
            r#"
            S: * OK ready
            C: A1 CAPABILITY
            S: * CAPABILITY IMAP4rev1 AUTH=PLAIN
            S: A1 OK done
            "#,
        )
        .await;
        let mut o = opts(p.port);
        o.tls = TlsMode::StartTls;
        o.allow_insecure = false;
        let e = connect(&o, &pass()).await.unwrap_err();
        assert!(matches!(e, ImapError::StartTlsUnavailable { .. }), "{e:?}");
        assert!(!e.is_transient());
        finish(p).await;
    });
}

#[test]
fn xoauth2_sends_the_exact_sasl_string() {
    let ir = B64.encode("user=me@example.com\x01auth=Bearer tok3n\x01\x01");
    support::run_with_timeout(LIMIT, async move {
        let script = format!(
            r#"
            S: * OK ready
            C: A1 CAPABILITY
            S: * CAPABILITY IMAP4rev1 AUTH=XOAUTH2 IDLE
            S: A1 OK done
            C: A2 AUTHENTICATE XOAUTH2
            S: + 
            C: {ir}
            S: A2 OK welcome
            C: A3 CAPABILITY
            S: * CAPABILITY IMAP4rev1 IDLE X-GM-EXT-1
            S: A3 OK done
            "#
        );
        let p = peer::start(&script).await;
        let mut o = opts(p.port);
        o.username = "me@example.com".into();
        o.auth = AuthMechanism::XOAuth2;
        let s = connect(&o, &SecretString::from("tok3n".to_string()))
            .await
            .unwrap();
        assert!(s.is_gmail());
        finish(p).await;
    });
}

#[test]
fn xoauth2_error_challenge_gets_an_empty_reply_and_an_auth_error() {
    let ir = B64.encode("user=me@example.com\x01auth=Bearer expired\x01\x01");
    let challenge =
        B64.encode(r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
    support::run_with_timeout(LIMIT, async move {
        let script = format!(
            r#"
            S: * OK ready
            C: A1 CAPABILITY
            S: * CAPABILITY IMAP4rev1 AUTH=XOAUTH2
            S: A1 OK done
            C: A2 AUTHENTICATE XOAUTH2
            S: + 
            C: {ir}
            S: + {challenge}
            C: 
            S: A2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)
            "#
        );
        let p = peer::start(&script).await;
        let mut o = opts(p.port);
        o.username = "me@example.com".into();
        o.auth = AuthMechanism::XOAuth2;
        let e = connect(&o, &SecretString::from("expired".to_string()))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ImapError::Auth { ref account, .. } if account == "scripted"),
            "{e:?}"
        );
        assert!(!format!("{e} {e:?}").contains("expired"));
        finish(p).await;
    });
}

#[test]
fn oauthbearer_sends_the_rfc7628_string_and_dummy_reply_on_error() {
    support::run_with_timeout(LIMIT, async move {
        let challenge = B64.encode(r#"{"status":"invalid_token"}"#);
        let script_for = |port: u16| {
            let ir = B64.encode(format!(
                "n,a=me@example.com,\x01host=127.0.0.1\x01port={port}\x01auth=Bearer tok\x01\x01"
            ));
            format!(
                r#"
                S: * OK ready
                C: A1 CAPABILITY
                S: * CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER
                S: A1 OK done
                C: A2 AUTHENTICATE OAUTHBEARER
                S: + 
                C: {ir}
                S: + {challenge}
                C: AQ==
                S: A2 NO authentication failed
                "#
            )
        };
        let p = peer::start_with(script_for).await;
        let mut o = opts(p.port);
        o.username = "me@example.com".into();
        o.auth = AuthMechanism::OAuthBearer;
        let e = connect(&o, &SecretString::from("tok".to_string()))
            .await
            .unwrap_err();
        assert!(matches!(e, ImapError::Auth { .. }), "{e:?}");
        finish(p).await;
    });
}

#[test]
fn wrong_host_name_is_refused_and_right_one_accepted() {
    support::run_with_timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        // The certificate names imap.example.net only; we connect as "localhost".
        let (p, ca) = peer::start_tls("S: * OK ready", &["imap.example.net"]).await;
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca).unwrap();
        let mut o = opts(p.port);
        o.host = "localhost".into();
        o.tls = TlsMode::Implicit;
        o.allow_insecure = false;
        o.ca_file = Some(ca_path.clone());
        let e = connect(&o, &pass()).await.unwrap_err();
        assert!(matches!(e, ImapError::Certificate { .. }), "{e:?}");
        // Both names: the one asked for and the one the certificate has.
        let text = e.to_string();
        assert!(
            text.contains("imap.example.net") && text.contains("\"localhost\""),
            "{text}"
        );
        assert!(!e.is_transient());
        let _ = p.done.await;

        // Same setup with the name in the certificate: the handshake and greeting succeed.
        let (p, ca) = peer::start_tls(
            &format!("S: * OK ready\n{}", &LOGIN[LOGIN.find("C:").unwrap()..]),
            &["localhost"],
        )
        .await;
        std::fs::write(&ca_path, ca).unwrap();
        let mut o = opts(p.port);
        o.host = "localhost".into();
        o.tls = TlsMode::Implicit;
        o.allow_insecure = false;
        o.ca_file = Some(ca_path);
        connect(&o, &pass()).await.unwrap();
        finish(p).await;
    });
}

#[test]
fn idle_no_is_an_error_not_a_hang() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 IDLE
            S: A4 NO IDLE not allowed now
            "#,
        )
        .await;
        let e = s
            .idle(Duration::from_secs(60), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(e, ImapError::No { ref command, .. } if command == "IDLE"),
            "{e:?}"
        );
        finish(p).await;
    });
}

#[test]
fn server_closing_during_idle_is_connection_lost() {
    support::run_with_timeout(LIMIT, async {
        for end in ["S: * BYE idle timeout\nS! close", "S! close"] {
            let (mut s, p) = session(&format!("C: A4 IDLE\nS: + idling\n{end}")).await;
            let e = s
                .idle(Duration::from_secs(60), &CancellationToken::new())
                .await
                .unwrap_err();
            assert!(matches!(e, ImapError::ConnectionLost(_)), "{end}: {e:?}");
            assert!(e.is_transient());
            finish(p).await;
        }
    });
}

#[test]
fn idle_reports_exists_and_ends_with_done() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 IDLE
            S: + idling
            S: * 4 EXISTS
            C: DONE
            S: A4 OK idle done
            C: A5 NOOP
            S: A5 OK
            "#,
        )
        .await;
        let out = s
            .idle(Duration::from_secs(60), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(out, IdleOutcome::NewData);
        s.noop().await.unwrap();
        finish(p).await;
    });
}

#[test]
fn gmail_labels_are_sent_in_modified_utf7_and_refused_elsewhere() {
    support::run_with_timeout(LIMIT, async {
        let script = r#"
            S: * OK Gimap ready
            C: A1 CAPABILITY
            S: * CAPABILITY IMAP4rev1 IDLE X-GM-EXT-1
            S: A1 OK done
            C: A2 LOGIN "user" "pass"
            S: A2 OK logged in
            C: A3 CAPABILITY
            S: * CAPABILITY IMAP4rev1 IDLE X-GM-EXT-1 MOVE UIDPLUS
            S: A3 OK done
            C: A4 UID STORE 7 +X-GM-LABELS.SILENT ("Work/B&APw-ro" "plain")
            S: A4 OK stored
            "#;
        let p = peer::start(script).await;
        let mut s = connect(&opts(p.port), &pass()).await.unwrap();
        assert!(s.is_gmail());
        s.uid_add_gmail_labels("7", &["Work/Büro".into(), "plain".into()])
            .await
            .unwrap();
        finish(p).await;

        let (mut s, p) = session("").await;
        let e = s
            .uid_add_gmail_labels("7", &["x".into()])
            .await
            .unwrap_err();
        assert!(matches!(e, ImapError::Unsupported(_)), "{e:?}");
        finish(p).await;
    });
}

#[test]
fn preauth_on_a_starttls_connection_and_logindisabled_are_refused() {
    support::run_with_timeout(LIMIT, async {
        // PREAUTH would skip the TLS upgrade entirely.
        let p = peer::start("S: * PREAUTH welcome back").await;
        let mut o = opts(p.port);
        o.tls = TlsMode::StartTls;
        o.allow_insecure = false;
        let e = connect(&o, &pass()).await.unwrap_err();
        assert!(matches!(e, ImapError::StartTlsUnavailable { .. }), "{e:?}");
        finish(p).await;

        // LOGINDISABLED: LOGIN must not be sent (the password would be refused anyway).
        let p = peer::start(
            r#"
            S: * OK ready
            C: A1 CAPABILITY
            S: * CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN
            S: A1 OK done
            "#,
        )
        .await;
        let e = connect(&opts(p.port), &pass()).await.unwrap_err();
        assert!(matches!(e, ImapError::Unsupported(_)), "{e:?}");
        finish(p).await;
    });
}

/// RFC 3501 7.4.2 lets a server split one message's items over several FETCH responses, and
/// another client's flag changes arrive as unsolicited FETCHes, with or without a UID, in the
/// middle of our own answer. Each message must come back once, with everything asked for,
/// and a response that lacks the asked-for header must never be evaluated as an empty message.
#[test]
fn fetch_answers_are_merged_by_uid() {
    use imapsort::imap::fetch::FetchSpec;
    use imapsort::rules::FetchNeeds;
    const ITEMS: &str = "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (Subject)])";
    const DATE: &str = r#"INTERNALDATE "02-Mar-2026 10:00:00 +0000""#;
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(&format!(
            r#"
            C: A4 UID FETCH 1:3 {ITEMS}
            S: * 1 FETCH (UID 1 FLAGS (\Seen))
            S: * 1 FETCH (UID 1 RFC822.SIZE 40 {DATE} BODY[HEADER.FIELDS (Subject)] {{16}}{{CRLF}}Subject: one{{CRLF}}{{CRLF}})
            S: * 2 FETCH (FLAGS (\Flagged))
            S: * 2 FETCH (UID 2 FLAGS () RFC822.SIZE 41 {DATE} BODY[HEADER.FIELDS (Subject)] {{16}}{{CRLF}}Subject: two{{CRLF}}{{CRLF}})
            S: * 3 FETCH (UID 3 FLAGS () RFC822.SIZE 42 {DATE} BODY[HEADER.FIELDS (Subject)] {{18}}{{CRLF}}Subject: three{{CRLF}}{{CRLF}})
            S: * 3 FETCH (FLAGS (\Deleted))
            S: * 1 FETCH (UID 1 FLAGS (\Seen \Answered))
            S: * 9 FETCH (UID 9 FLAGS (\Seen))
            S: * 7 FETCH (FLAGS (\Seen))
            S: A4 OK done
            C: A5 UID FETCH 4:5 (UID FLAGS)
            S: * 4 FETCH (UID 4 FLAGS ())
            S: * 1 EXPUNGE
            S: * 4 FETCH (FLAGS (\Seen))
            S: * 4 FETCH (UID 5 FLAGS ())
            S: A5 OK done
            "#
        ))
        .await;
        let items = s.uid_fetch("1:3", ITEMS).await.unwrap();
        let summary: Vec<(Option<u32>, Option<Vec<String>>, bool)> = items
            .iter()
            .map(|i| (i.uid(), i.flags(), i.header().is_some()))
            .collect();
        let flags = |f: &[&str]| Some(f.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            summary,
            [
                // Split over two responses, then a newer flag update: one item, newest flags.
                (Some(1), flags(&["\\Seen", "\\Answered"]), true),
                // The update by sequence number came before the answer, which is newer.
                (Some(2), flags(&[]), true),
                // The update by sequence number came after the answer: it wins.
                (Some(3), flags(&["\\Deleted"]), true),
                // A message not asked for: only its flags, no header.
                (Some(9), flags(&["\\Seen"]), false),
            ],
            "sequence number 7 names no message of the answer and is dropped"
        );

        let spec = FetchSpec::new(&FetchNeeds {
            headers: Some(["Subject".to_string()].into()),
            flags: true,
            size: true,
            received: true,
            ..FetchNeeds::default()
        });
        assert_eq!(spec.items(), ITEMS);
        let views: Vec<(u32, Option<String>)> = items
            .iter()
            .filter_map(|i| spec.view(i))
            .map(|(uid, v)| {
                (
                    uid.get(),
                    v.header_values("Subject").first().map(|s| s.to_string()),
                )
            })
            .collect();
        assert_eq!(
            views,
            [
                (1, Some("one".to_owned())),
                (2, Some("two".to_owned())),
                (3, Some("three".to_owned())),
            ],
            "a response without the asked-for header is never a message to evaluate"
        );
        let asked: imapsort::imap::uidset::UidSet = "1:3".parse().unwrap();
        let in_order: Vec<u32> = spec
            .views(items, &asked)
            .iter()
            .map(|(uid, _)| uid.get())
            .collect();
        assert_eq!(in_order, [1, 2, 3]);

        // After an EXPUNGE in the answer, sequence numbers have moved: an update that names
        // one cannot be placed safely and is dropped rather than given to the wrong message.
        let items = s.uid_fetch("4:5", "(UID FLAGS)").await.unwrap();
        let summary: Vec<_> = items.iter().map(|i| (i.uid(), i.flags())).collect();
        assert_eq!(summary, [(Some(4), flags(&[])), (Some(5), flags(&[]))]);
        finish(p).await;
    });
}

/// `exists` reads LIST's answer for the exact name: wildcard matches of other mailboxes do not
/// count, `*` goes out as `%` (one level), and names are compared after decoding.
#[test]
fn exists_compares_the_listed_names_exactly() {
    support::run_with_timeout(LIMIT, async {
        let (mut s, p) = session(
            r#"
            C: A4 LIST "" ""
            S: * LIST (\Noselect) "." ""
            S: A4 OK done
            C: A5 LIST "" "Lists.%"
            S: * LIST (\HasNoChildren) "." "Lists.rust"
            S: * LIST (\HasNoChildren) "." "Lists.go"
            S: A5 OK done
            C: A6 LIST "" "Lists.%"
            S: * LIST (\HasNoChildren) "." "Lists.rust"
            S: * LIST (\HasNoChildren) "." "Lists.*"
            S: A6 OK done
            C: A7 LIST "" "B&APw-ro"
            S: * LIST (\HasChildren) "." "B&APw-ro"
            S: A7 OK done
            C: A8 LIST "" "Gone"
            S: * LIST (\NonExistent) "." "Gone"
            S: A8 OK done
            C: A9 LIST "" INBOX
            S: * LIST (\HasNoChildren) "." "Inbox"
            S: A9 OK done
            "#,
        )
        .await;
        assert!(!s.exists("Lists/*").await.unwrap(), "only other names");
        assert!(s.exists("Lists/*").await.unwrap(), "the name itself");
        assert!(s.exists("Büro").await.unwrap());
        assert!(!s.exists("Gone").await.unwrap());
        assert!(s.exists("inbox").await.unwrap());
        finish(p).await;
    });
}
