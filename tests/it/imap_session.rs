//! The session against a real private Dovecot: select, search, fetch, store, copy, move,
//! expunge, list, status, IDLE.

use std::time::Duration;

use imapsort::imap::{IdleOutcome, connect};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::support;

const LIMIT: Duration = Duration::from_secs(60);

fn pass() -> SecretString {
    SecretString::from("pass".to_string())
}

#[test]
fn select_search_fetch_store_move_expunge() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let msgs: Vec<Vec<u8>> = (1..=5)
        .map(|n| support::dovecot::message(n, &format!("hello {n}")))
        .collect();
    d.seed("user", "INBOX", &msgs).unwrap();
    support::run_with_timeout(LIMIT, async {
        let mut s = connect(&support::dovecot::connect_opts(&d, "user"), &pass())
            .await
            .unwrap();
        assert!(s.has_capability("IMAP4rev1"));
        assert!(s.has_capability("move") && s.has_capability("UIDPLUS"));
        let info = s.select("INBOX").await.unwrap();
        assert_eq!(info.exists, 5);
        assert!(info.uid_validity.is_some());
        assert_eq!(info.uid_next, Some(6));

        let all = s.uid_search("ALL").await.unwrap();
        assert_eq!(all, vec![1, 2, 3, 4, 5]);
        let some = s.uid_search("SUBJECT \"hello 3\"").await.unwrap();
        assert_eq!(some, vec![3]);

        let items = s
            .uid_fetch("1:5", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODYSTRUCTURE)")
            .await
            .unwrap();
        assert_eq!(items.len(), 5);
        let first = items.iter().find(|i| i.uid() == Some(1)).unwrap();
        let header = String::from_utf8_lossy(first.header().unwrap()).to_string();
        assert!(header.contains("Subject: hello 1"), "{header}");
        assert!(!header.contains("Message-ID"), "{header}");
        assert_eq!(first.size(), Some(msgs[0].len() as u32));
        assert!(first.internal_date().is_some());
        assert!(first.bodystructure().is_some());
        let flags = first.flags().unwrap();
        assert!(!flags.iter().any(|f| f == "\\Seen"), "{flags:?}");

        let full = s.uid_fetch("2", "(UID BODY.PEEK[])").await.unwrap();
        assert_eq!(full[0].body().unwrap(), &msgs[1][..]);
        // BODY.PEEK did not set \Seen.
        let flags = s.uid_fetch("2", "(UID FLAGS)").await.unwrap();
        assert!(!flags[0].flags().unwrap().iter().any(|f| f == "\\Seen"));

        s.uid_store("1,2", "+FLAGS.SILENT (\\Flagged $Work)")
            .await
            .unwrap();
        let flagged = s.uid_search("FLAGGED").await.unwrap();
        assert_eq!(flagged, vec![1, 2]);

        s.ensure_mailbox("Dest/Sub").await.unwrap();
        s.uid_copy("3", "Dest/Sub").await.unwrap();
        s.uid_move("4", "Dest/Sub").await.unwrap();
        assert_eq!(s.status("Dest/Sub").await.unwrap().messages, Some(2));

        s.uid_store("5", "+FLAGS.SILENT (\\Deleted)").await.unwrap();
        s.uid_expunge("5").await.unwrap();
        assert_eq!(s.uid_search("ALL").await.unwrap(), vec![1, 2, 3]);
        s.logout().await.unwrap();
    });
}

#[test]
fn idle_wakes_on_new_mail_times_out_and_cancels() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    // "idling" (trace) says the server has accepted IDLE: cancel and deliver only then, so
    // each really happens during IDLE.
    let filter = "imapsort::imap::idle=trace";
    support::run_with_timeout_logged(LIMIT, filter, |logs| async move {
        let idling = |n: usize| {
            let logs = logs.clone();
            async move {
                logs.wait_for("IDLE accepted", Duration::from_secs(10), |t| {
                    t.matches("idling").count() >= n
                })
                .await
            }
        };
        let mut s = connect(&support::dovecot::connect_opts(&d, "user"), &pass())
            .await
            .unwrap();
        s.select("INBOX").await.unwrap();
        let cancel = CancellationToken::new();

        let out = s.idle(Duration::from_millis(300), &cancel).await.unwrap();
        assert_eq!(out, IdleOutcome::Timeout);

        let (out, ()) = tokio::join!(s.idle(Duration::from_secs(30), &cancel), async {
            idling(2).await;
            cancel.cancel();
        });
        assert_eq!(out.unwrap(), IdleOutcome::Cancelled);

        let cancel = CancellationToken::new();
        let msg = support::dovecot::message(1, "new");
        let (out, ()) = tokio::join!(s.idle(Duration::from_secs(20), &cancel), async {
            idling(3).await;
            d.seed("user", "INBOX", &[msg]).unwrap();
        });
        assert_eq!(out.unwrap(), IdleOutcome::NewData);
        // The session is still usable after IDLE.
        assert_eq!(s.uid_search("ALL").await.unwrap(), vec![1]);
    });
}

#[test]
fn seeded_flags_and_dates_are_what_the_server_reports() {
    use imapsort_testkit::dovecot::SeedMessage;
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_577_836_800); // 2020-01-01
    d.seed_with(
        "user",
        "INBOX",
        &[
            SeedMessage {
                bytes: support::dovecot::message(1, "old and read"),
                flags: vec!["\\Seen".into(), "\\Flagged".into()],
                internal_date: Some(old),
            },
            SeedMessage {
                bytes: support::dovecot::message(2, "new"),
                ..SeedMessage::default()
            },
        ],
    )
    .unwrap();
    support::run_with_timeout(LIMIT, async {
        let mut s = connect(&support::dovecot::connect_opts(&d, "user"), &pass())
            .await
            .unwrap();
        s.select("INBOX").await.unwrap();
        let seen = s.uid_search("SEEN").await.unwrap();
        let old_uids = s.uid_search("BEFORE 1-Jan-2021").await.unwrap();
        assert_eq!(seen, old_uids);
        assert_eq!(seen.len(), 1);
        let items = s
            .uid_fetch(&seen[0].to_string(), "(UID FLAGS INTERNALDATE)")
            .await
            .unwrap();
        let flags = items[0].flags().unwrap();
        assert!(flags.contains(&"\\Flagged".to_string()), "{flags:?}");
        let date = items[0].internal_date().unwrap();
        assert_eq!(date.timestamp().as_second(), 1_577_836_800);
    });
}

#[test]
fn restart_drops_connections_with_a_transient_error_and_mail_survives() {
    let Some(mut d) = support::dovecot::start_default() else {
        return;
    };
    d.seed("user", "INBOX", &[support::dovecot::message(1, "x")])
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut s = rt.block_on(async {
        let mut s = connect(&support::dovecot::connect_opts(&d, "user"), &pass())
            .await
            .unwrap();
        s.select("INBOX").await.unwrap();
        s
    });
    d.restart().unwrap();
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let e = s.noop().await.unwrap_err();
            assert!(e.is_transient(), "{e:?}");
            let mut s = connect(&support::dovecot::connect_opts(&d, "user"), &pass())
                .await
                .unwrap();
            assert_eq!(s.select("INBOX").await.unwrap().exists, 1);
        })
        .await
        .expect("hard timeout");
    });
}

#[test]
fn disabled_move_capability_and_quota_refusals() {
    use imapsort::imap::ImapError;
    use imapsort_testkit::dovecot::DovecotOptions;
    let Some(d) = support::dovecot::start(DovecotOptions {
        disable_caps: vec!["MOVE".into()],
        quota_kib: Some(4),
        ..DovecotOptions::default()
    }) else {
        return;
    };
    let big = {
        let mut m = support::dovecot::message(1, "big");
        m.extend(std::iter::repeat_n(b'x', 3000));
        m.extend_from_slice(b"\r\n");
        m
    };
    d.seed("user", "INBOX", &[big]).unwrap();
    support::run_with_timeout(LIMIT, async {
        let mut s = connect(&support::dovecot::connect_opts(&d, "user"), &pass())
            .await
            .unwrap();
        assert!(!s.has_capability("MOVE"));
        assert!(s.has_capability("UIDPLUS"));
        s.select("INBOX").await.unwrap();
        let e = s.uid_move("1", "Trash").await.unwrap_err();
        assert!(matches!(e, ImapError::Unsupported("MOVE")), "{e:?}");
        // 3 KB in a 4 KiB quota: a copy does not fit.
        let e = s.uid_copy("1", "Archive").await.unwrap_err();
        assert!(matches!(e, ImapError::No { .. }), "{e:?}");
        assert_eq!(e.no_code(), Some("OVERQUOTA"), "{e:?}");
        // The session survives a NO.
        s.noop().await.unwrap();
    });
}
