//! `imapsort sweep` against a scripted Gmail-like peer (X-GM-EXT-1): `label` becomes
//! `UID STORE +X-GM-LABELS`, `trash` goes to the SPECIAL-USE `\Trash` mailbox
//! (`[Gmail]/Trash`), flags and labels go before the move, and the push-down query is sent.

use std::time::Duration;

use imapsort::cli::OutputFormat;
use imapsort::exit::Exit;

use crate::support::peer;
use crate::support::{self, sweep_util};

const CAPS: &str = "IMAP4rev1 X-GM-EXT-1 MOVE UIDPLUS SPECIAL-USE LIST-EXTENDED";

/// A header block as a FETCH literal: the `{n}` line, then the header's lines.
fn literal(header: &[&str]) -> String {
    let bytes: usize = header.iter().map(|l| l.len() + 2).sum();
    let mut s = format!("{{{bytes}}}\n");
    for l in header {
        s.push_str(&format!("S: {l}\n"));
    }
    s
}

#[test]
fn gmail_labels_and_trash_to_the_special_use_mailbox() {
    let h1 = literal(&["From: a@x.test", "Message-ID: <g1@x>"]);
    let h2 = literal(&["From: b@y.test", "Message-ID: <g2@x>"]);
    let script = format!(
        r#"
        S: * OK Gimap ready
        C: A1 CAPABILITY
        S: * CAPABILITY {CAPS}
        S: A1 OK done
        C: A2 LOGIN "user" "pass"
        S: A2 OK logged in
        C: A3 CAPABILITY
        S: * CAPABILITY {CAPS}
        S: A3 OK done
        C: A4 LIST "" "*" RETURN (SPECIAL-USE)
        S: * LIST (\HasNoChildren) "/" "INBOX"
        S: * LIST (\HasChildren \Noselect) "/" "[Gmail]"
        S: * LIST (\HasNoChildren \All) "/" "[Gmail]/All Mail"
        S: * LIST (\HasNoChildren \Trash) "/" "[Gmail]/Trash"
        S: A4 OK done
        C: A5 SELECT INBOX
        S: * 2 EXISTS
        S: * OK [UIDVALIDITY 7] ok
        S: * OK [UIDNEXT 3] ok
        S: A5 OK [READ-WRITE] selected
        C: A6 UID SEARCH ALL
        S: * SEARCH 1 2
        S: A6 OK done
        C: A7 UID SEARCH DELETED
        S: * SEARCH
        S: A7 OK done
        C: A8 UID SEARCH UNDELETED OR FROM "x.test" FROM "y.test"
        S: * SEARCH 1 2
        S: A8 OK done
        C: A9 LIST "" ""
        S: * LIST (\Noselect) "/" ""
        S: A9 OK done
        C: A10 UID FETCH 1:2 (UID FLAGS BODY.PEEK[HEADER.FIELDS (From Message-ID Subject)])
        S: * 1 FETCH (UID 1 FLAGS () BODY[HEADER.FIELDS (FROM MESSAGE-ID SUBJECT)] {h1}S: )
        S: * 2 FETCH (UID 2 FLAGS (\Seen) BODY[HEADER.FIELDS (FROM MESSAGE-ID SUBJECT)] {h2}S: )
        S: A10 OK done
        C: A11 UID STORE 1 +FLAGS.SILENT (\Flagged)
        S: A11 OK done
        C: A12 UID STORE 1:2 +X-GM-LABELS.SILENT ("R&AOk-sum&AOk-s" "Work")
        S: A12 OK done
        C: A13 LIST "" "[Gmail]"
        S: * LIST (\HasChildren \Noselect) "/" "[Gmail]"
        S: A13 OK done
        C: A14 CREATE "[Gmail]"
        S: A14 NO [ALREADYEXISTS] Duplicate folder name
        C: A15 SUBSCRIBE "[Gmail]"
        S: A15 OK done
        C: A16 LIST "" "[Gmail]/Trash"
        S: * LIST (\HasNoChildren \Trash) "/" "[Gmail]/Trash"
        S: A16 OK done
        C: A17 UID MOVE 2 "[Gmail]/Trash"
        S: * OK [COPYUID 9 2 7] moved
        S: * 2 EXPUNGE
        S: A17 OK done
        C: A18 LOGOUT
        S: * BYE bye
        S: A18 OK done
        "#
    );
    let rules = r#"
  - name: label
    when: { from: ["@x.test", "@y.test"] }
    then: { label: [Work, Résumés] }
  - name: flag x
    when: { from: "@x.test" }
    then: { flag: \Flagged }
  - name: trash y
    when: { from: "@y.test" }
    then: trash
"#;
    let dir = tempfile::tempdir().unwrap();
    support::run_with_timeout(Duration::from_secs(30), async {
        let p = peer::start(&script).await;
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "settings:\n  state_dir: {}\naccounts:\n  - name: gmail\n    host: 127.0.0.1\n    \
                 port: {}\n    tls: none\n    allow_insecure: true\n    username: user\n    \
                 password: pass\nrules:\n{rules}",
                dir.path().join("state").display(),
                p.port
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        let run = sweep_util::sweep(&config, false, OutputFormat::Json).await;
        let transcript = p.done.await.unwrap();
        assert_eq!(transcript, Ok(()), "{}", run.stderr);
        assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
        let lines = run.by_message_id();
        assert_eq!(
            lines["<g1@x>"]["rules"],
            serde_json::json!(["label", "flag x"])
        );
        assert_eq!(
            lines["<g2@x>"]["plan"]["final"],
            serde_json::json!({"action": "trash", "mailbox": "[Gmail]/Trash"})
        );
        assert!(lines.values().all(|l| l["done"] == true), "{}", run.stdout);
        assert_eq!(
            run.summary(),
            serde_json::json!({"examined": 2, "matched": 2, "moved": 1, "errors": 0})
        );
    });
}
