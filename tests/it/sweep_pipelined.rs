//! `imapsort sweep`'s pipelined FETCH against scripted peers: several chunks' `UID FETCH`es go
//! out before the first answer is read; a server that runs them at once may send a later
//! chunk's messages before an earlier chunk's tagged OK (Dovecot does), and those messages
//! must still be evaluated with their own chunk. A `NO` to one chunk's FETCH ends the pass
//! only after every FETCH still out was answered, and what was decided before it is still
//! carried out.

use std::time::Duration;

use imapsort::cli::OutputFormat;
use imapsort::exit::Exit;

use crate::support::peer;
use crate::support::{self, sweep_util};

const CAPS: &str = "IMAP4rev1 MOVE UIDPLUS";

/// Messages in the mailbox: three fetch chunks of 500 (the last one short).
const MESSAGES: u32 = 1200;

/// The untagged FETCH answer for one message from `a@x.test`.
fn fetched(uid: u32) -> String {
    let header = [
        "From: a@x.test".to_owned(),
        format!("Message-ID: <m{uid}@x.test>"),
    ];
    let bytes: usize = header.iter().map(|l| l.len() + 2).sum();
    let mut s = format!(
        "S: * {uid} FETCH (UID {uid} BODY[HEADER.FIELDS (FROM MESSAGE-ID SUBJECT)] {{{bytes}}}\n"
    );
    for l in &header {
        s.push_str(&format!("S: {l}\n"));
    }
    s.push_str("S: )\n");
    s
}

/// Login, SELECT, the searches and the three FETCH commands, up to the first answer.
fn opening() -> String {
    opening_as("ready", "")
}

/// [`opening`] from a server that greets with `greeting`, with `before_search` (commands
/// tagged A7, A8, ...) between the scope's searches and the candidates' search.
fn opening_as(greeting: &str, before_search: &str) -> String {
    let all: Vec<String> = (1..=MESSAGES).map(|u| u.to_string()).collect();
    let all = all.join(" ");
    let t = 7 + before_search.matches("\n        C: ").count() as u32;
    format!(
        r#"
        S: * OK {greeting}
        C: A1 CAPABILITY
        S: * CAPABILITY {CAPS}
        S: A1 OK done
        C: A2 LOGIN "user" "pass"
        S: A2 OK logged in
        C: A3 CAPABILITY
        S: * CAPABILITY {CAPS}
        S: A3 OK done
        C: A4 SELECT INBOX
        S: * {MESSAGES} EXISTS
        S: * OK [UIDVALIDITY 7] ok
        S: * OK [UIDNEXT {next}] ok
        S: A4 OK [READ-WRITE] selected
        C: A5 UID SEARCH ALL
        S: * SEARCH {all}
        S: A5 OK done
        C: A6 UID SEARCH DELETED
        S: * SEARCH
        S: A6 OK done{before_search}
        C: A{t} UID SEARCH UNDELETED FROM "a@x.test"
        S: * SEARCH {all}
        S: A{t} OK done
        C: A{t1} LIST "" ""
        S: * LIST (\Noselect) "/" ""
        S: A{t1} OK done
        C: A{t2} UID FETCH 1:500 (UID BODY.PEEK[HEADER.FIELDS (From Message-ID Subject)])
        C: A{t3} UID FETCH 501:1000 (UID BODY.PEEK[HEADER.FIELDS (From Message-ID Subject)])
        C: A{t4} UID FETCH 1001:1200 (UID BODY.PEEK[HEADER.FIELDS (From Message-ID Subject)])
        "#,
        next = MESSAGES + 1,
        t1 = t + 1,
        t2 = t + 2,
        t3 = t + 3,
        t4 = t + 4,
    )
}

fn write_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "settings:\n  state_dir: {}\naccounts:\n  - name: scripted\n    host: 127.0.0.1\n    \
             port: {port}\n    tls: none\n    allow_insecure: true\n    username: user\n    \
             password: pass\nrules:\n  - name: a\n    when: {{ from: a@x.test }}\n    \
             then: {{ move: Dest }}\n",
            dir.join("state").display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    config
}

/// Sweeps against a peer playing `script`; asserts that the conversation went as scripted.
fn sweep_scripted(script: &str) -> sweep_util::Run {
    let dir = tempfile::tempdir().unwrap();
    let ran = std::sync::Mutex::new(None);
    support::run_with_timeout(Duration::from_secs(60), async {
        let p = peer::start(script).await;
        let config = write_config(dir.path(), p.port);
        let run = sweep_util::sweep(&config, false, OutputFormat::Json).await;
        let transcript = p.done.await.unwrap();
        assert_eq!(transcript, Ok(()), "{}", run.stderr);
        *ran.lock().unwrap() = Some(run);
    });
    ran.into_inner().unwrap().unwrap()
}

/// The destination ensured, the messages moved, LOGOUT.
fn closing(first_tag: u32, uids: &str) -> String {
    let t = first_tag;
    format!(
        r#"
        C: A{t} LIST "" "Dest"
        S: A{t} OK done
        C: A{t1} CREATE "Dest"
        S: A{t1} OK created
        C: A{t2} SUBSCRIBE "Dest"
        S: A{t2} OK done
        C: A{t3} UID MOVE {uids} "Dest"
        S: * OK [COPYUID 9 {uids} 1:4] moved
        S: A{t3} OK done
        C: A{t4} LOGOUT
        S: * BYE bye
        S: A{t4} OK done
        "#,
        t1 = t + 1,
        t2 = t + 2,
        t3 = t + 3,
        t4 = t + 4,
    )
}

#[test]
fn a_later_chunks_messages_sent_before_an_earlier_ok_are_evaluated() {
    // Messages of chunks 2 and 3 arrive before chunk 1's OK, one of chunk 3 before chunk
    // 2's: all four are moved.
    let script = format!(
        "{}{}{}S: A9 OK done\n{}S: A10 OK done\n{}S: A11 OK done\n{}",
        opening(),
        fetched(1),
        fetched(600),
        fetched(1100),
        fetched(1150),
        closing(12, "1,600,1100,1150"),
    );
    let run = sweep_scripted(&script);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let lines = run.by_message_id();
    let moved: Vec<&String> = lines.keys().collect();
    assert_eq!(
        moved,
        [
            "<m1100@x.test>",
            "<m1150@x.test>",
            "<m1@x.test>",
            "<m600@x.test>"
        ],
        "{}",
        run.stdout
    );
    assert!(lines.values().all(|l| l["done"] == true), "{}", run.stdout);
    assert_eq!(
        run.summary(),
        serde_json::json!({"examined": MESSAGES, "matched": 4, "moved": 4, "errors": 0})
    );
}

#[test]
fn a_no_to_one_chunk_is_answered_in_step_and_what_came_before_is_carried_out() {
    // Chunk 2's FETCH fails; chunk 3's is still read before anything else is sent; chunk 1's
    // message is moved, and the pass reports the failure.
    let script = format!(
        "{}{}S: A9 OK done\n{}S: A10 NO [SERVERBUG] fetch failed\n{}S: A11 OK done\n{}",
        opening(),
        fetched(1),
        fetched(600),
        fetched(1100),
        closing(12, "1"),
    );
    let run = sweep_scripted(&script);
    assert!(
        run.stderr.contains("fetching from mailbox INBOX failed"),
        "{}",
        run.stderr
    );
    let lines = run.by_message_id();
    assert_eq!(
        lines.keys().collect::<Vec<_>>(),
        ["<m1@x.test>"],
        "{}",
        run.stdout
    );
    assert_eq!(lines["<m1@x.test>"]["done"], true, "{}", run.stdout);
    // The failed mailbox is counted as an error; the sweep itself ran (exit 0: RULES.md
    // reserves 69 for a server that cannot be reached at all).
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(
        run.summary()["errors"].as_u64() >= Some(1),
        "{}",
        run.stdout
    );
}

/// A server whose greeting names Dovecot gets, before the header search, two FETCHes of the
/// verified header fields of the lowest UID, one after the other (`pass::prime_cache`: so
/// that Dovecot's search caches them); their answers, a `NO` included, change nothing. The
/// other tests' peers greet otherwise and get none: their scripts go straight to the search.
#[test]
fn on_dovecot_the_header_search_comes_after_two_cache_fetches() {
    let prime = "
        C: A7 UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (From Message-ID Subject)])
        S: A7 OK done
        C: A8 UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (From Message-ID Subject)])
        S: A8 NO [EXPUNGEISSUED] some messages were expunged";
    let script = format!(
        "{}{}S: A11 OK done\nS: A12 OK done\n{}S: A13 OK done\n{}",
        opening_as("Dovecot ready.", prime),
        fetched(2),
        fetched(1100),
        closing(14, "2,1100"),
    );
    let run = sweep_scripted(&script);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let moved: Vec<String> = run.by_message_id().into_keys().collect();
    assert_eq!(moved, ["<m1100@x.test>", "<m2@x.test>"], "{}", run.stdout);
}
