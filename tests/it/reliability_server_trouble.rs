//! Server trouble under a running `imapsort run` (the real binary, against the private
//! Dovecot): the destination is over quota, a watched mailbox is deleted, a destination
//! cannot be created. Each gives a clear log line, the message stays where it was, it is
//! retried later (with backoff) and succeeds once the trouble is gone, and the other
//! mailboxes keep being served meanwhile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use imapsort::imap::{Session, connect};
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions, SeedMessage};
use secrecy::SecretString;

use crate::support;

const RULES: &str = r#"rules:
  - name: invoices
    when: { subject: { contains: invoice } }
    then: { copy: Accounting }
  - name: lists
    when: { list_id: { exists: true } }
    then: { move: "Lists/{list_id}" }
  - name: work
    mailboxes: [Work]
    when: true
    then: { flag: $Work }
"#;

fn write_config(dir: &Path, d: &Dovecot) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "settings:\n  state_dir: {state}\n  idle_refresh: 3s\naccounts:\n  - name: trouble\n    host: localhost\n    port: {port}\n    ca_file: {ca}\n    username: user\n    password: pass\n    watch: [INBOX, Work]\n    poll_interval: 2s\n{RULES}",
        state = dir.join("state").display(),
        port = d.imaps_port(),
        ca = d.ca_pem_path().display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn mail(n: usize, subject: &str, extra: &str, pad: usize) -> SeedMessage {
    let mut bytes = format!(
        "From: a{n}@example.com\r\nTo: user@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <t{n}@trouble.test>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n{extra}\r\nbody\r\n"
    )
    .into_bytes();
    for _ in 0..pad / 64 {
        bytes.extend_from_slice(&[b'p'; 62]);
        bytes.extend_from_slice(b"\r\n");
    }
    SeedMessage {
        bytes,
        ..SeedMessage::default()
    }
}

async fn observer(d: &Dovecot) -> Session {
    connect(
        &support::dovecot::connect_opts(d, "user"),
        &SecretString::from("pass".to_string()),
    )
    .await
    .expect("observer login")
}

/// Message-ID numbers in `mailbox` with their flags (empty when the mailbox is missing).
async fn contents(s: &mut Session, mailbox: &str) -> Vec<(usize, Vec<String>)> {
    if !s.exists(mailbox).await.unwrap() {
        return Vec::new();
    }
    let info = s.examine(mailbox).await.unwrap();
    if info.exists == 0 {
        return Vec::new();
    }
    let items = s
        .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .await
        .unwrap();
    items
        .iter()
        .map(|i| {
            let h = String::from_utf8_lossy(i.header().unwrap_or_default()).to_string();
            let n = h
                .split("<t")
                .nth(1)
                .and_then(|r| r.split('@').next())
                .and_then(|x| x.parse().ok())
                .unwrap_or(usize::MAX);
            (n, i.flags().unwrap_or_default())
        })
        .collect()
}

/// Poll `cond` (an expression that may `.await`) every 250 ms until it holds or `limit` passes.
macro_rules! wait_for {
    ($what:expr, $limit:expr, $cond:expr) => {{
        let start = Instant::now();
        loop {
            if $cond {
                break;
            }
            assert!(
                start.elapsed() < $limit,
                "{}: not within {:?}",
                $what,
                $limit
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }};
}

/// WARN/ERROR lines of the log that contain every one of `words` (case-insensitive).
fn log_lines(log: &Path, words: &[&str]) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .filter(|l| {
            let lower = l.to_lowercase();
            words.iter().all(|w| lower.contains(&w.to_lowercase()))
        })
        .map(str::to_string)
        .collect()
}

fn start(config: &Path, log: &Path) -> support::Daemon {
    std::fs::File::create(log).unwrap(); // a fresh log for each start
    support::spawn_run(config, log)
}

#[test]
fn quota_deleted_mailboxes_and_uncreatable_destinations_are_logged_left_and_retried() {
    let Some(d) = support::dovecot::start(DovecotOptions {
        quota_kib: Some(256),
        ..DovecotOptions::default()
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &d);
    let log = dir.path().join("imapsort.log");
    // Ballast that fills the quota; seeding bypasses it, IMAP copies do not.
    d.seed_with("user", "Ballast", &[mail(900, "ballast", "", 250 * 1024)])
        .unwrap();
    d.seed_with("user", "Work", &[]).unwrap();
    let mut child = start(&config, &log);
    let long_list = "x".repeat(300);

    let state_dir = dir.path().join("state");
    support::run_with_timeout(Duration::from_secs(300), async {
        let mut s = observer(&d).await;
        // Mail delivered once the daemon knows both mailboxes is new to it.
        wait_for!(
            "the daemon to select INBOX and Work",
            Duration::from_secs(30),
            ["INBOX", "Work"]
                .iter()
                .all(|m| support::state::knows(&state_dir, "trouble", m))
        );

        // 1. Over quota: the copy is refused; the message stays, Work is still served.
        d.seed_with("user", "INBOX", &[mail(1, "invoice 1", "", 20 * 1024)])
            .unwrap();
        d.seed_with("user", "Work", &[mail(2, "work item", "", 0)])
            .unwrap();
        wait_for!(
            "a log line about the quota",
            Duration::from_secs(30),
            !log_lines(&log, &["quota"]).is_empty()
        );
        wait_for!(
            "Work served meanwhile",
            Duration::from_secs(30),
            contents(&mut s, "Work")
                .await
                .iter()
                .any(|(n, f)| *n == 2 && f.iter().any(|x| x == "$Work"))
        );
        assert!(
            contents(&mut s, "INBOX").await.iter().any(|(n, _)| *n == 1),
            "the invoice left INBOX although its copy failed"
        );
        assert!(contents(&mut s, "Accounting").await.is_empty());

        // Free the quota: the retry (with backoff) makes exactly one copy.
        s.select("Ballast").await.unwrap();
        s.uid_store("1:*", "+FLAGS.SILENT (\\Deleted)")
            .await
            .unwrap();
        s.uid_expunge("1:*").await.unwrap();
        wait_for!(
            "the copy after the quota freed up",
            Duration::from_secs(60),
            contents(&mut s, "Accounting").await.len() == 1
        );
        // Once the rule is recorded as applied it is never carried out again; any second
        // copy would have been made before that.
        s.examine("INBOX").await.unwrap();
        let invoice = s
            .uid_search("HEADER Message-ID <t1@trouble.test>")
            .await
            .unwrap();
        assert_eq!(invoice.len(), 1, "{invoice:?}");
        wait_for!(
            "the copy recorded as done",
            Duration::from_secs(30),
            support::state::applied(&state_dir, "trouble", "INBOX", invoice[0])
                .contains("invoices")
        );
        assert_eq!(
            contents(&mut s, "Accounting").await.len(),
            1,
            "copied more than once"
        );

        // 2. A watched mailbox deleted under the daemon: logged; INBOX still served; once
        //    the mailbox is back, its mail is handled.
        s.delete_mailbox("Work").await.unwrap();
        d.seed_with(
            "user",
            "INBOX",
            &[mail(3, "news", "List-Id: <a.example>\r\n", 0)],
        )
        .unwrap();
        wait_for!(
            "INBOX served with Work gone",
            Duration::from_secs(30),
            contents(&mut s, "Lists/a.example").await.len() == 1
        );
        wait_for!(
            "a log line about Work",
            Duration::from_secs(30),
            !log_lines(&log, &["work"]).is_empty()
        );
        s.create("Work").await.unwrap();
        // The recreated mailbox has a new UIDVALIDITY: the worker, retrying with backoff,
        // finds it and resets its state (mail already there then counts as existing, as at
        // a first start), so deliver once it is back.
        wait_for!(
            "the Work worker back on the new mailbox",
            Duration::from_secs(120),
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("UIDVALIDITY changed") && l.contains("Work"))
        );
        d.seed_with("user", "Work", &[mail(4, "after", "", 0)])
            .unwrap();
        wait_for!(
            "Work served again",
            Duration::from_secs(30),
            contents(&mut s, "Work")
                .await
                .iter()
                .any(|(n, f)| *n == 4 && f.iter().any(|x| x == "$Work"))
        );

        // 3. A destination that cannot be created (a name component longer than the file
        //    system allows): logged, the message stays, later mail is still sorted.
        d.seed_with(
            "user",
            "INBOX",
            &[mail(
                5,
                "long invoice",
                &format!("List-Id: <{long_list}>\r\n"),
                0,
            )],
        )
        .unwrap();
        d.seed_with(
            "user",
            "INBOX",
            &[mail(6, "short", "List-Id: <b.example>\r\n", 0)],
        )
        .unwrap();
        wait_for!(
            "later mail still sorted",
            Duration::from_secs(30),
            contents(&mut s, "Lists/b.example").await.len() == 1
        );
        wait_for!(
            "a log line about the uncreatable mailbox",
            Duration::from_secs(30),
            !log_lines(&log, &["xxxxxxxx"]).is_empty()
        );
        assert!(
            contents(&mut s, "INBOX").await.iter().any(|(n, _)| *n == 5),
            "the message whose destination cannot be created left INBOX"
        );
        // Its copy (an earlier step of the same plan) succeeded: however often the failing
        // move is retried, the copy is made once. (It was made again at every retry when a
        // part-failed plan's intents were marked failed instead of reconciled.)
        wait_for!(
            "the copy of the message",
            Duration::from_secs(30),
            contents(&mut s, "Accounting")
                .await
                .iter()
                .any(|(n, _)| *n == 5)
        );
        let retries_before = log_lines(&log, &["xxxxxxxx"]).len();
        wait_for!(
            "a few retries",
            Duration::from_secs(40),
            log_lines(&log, &["xxxxxxxx"]).len() >= retries_before + 2
        );
        let copies = contents(&mut s, "Accounting")
            .await
            .iter()
            .filter(|(n, _)| *n == 5)
            .count();
        assert_eq!(copies, 1, "the copy was repeated at each retry");
    });

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "log lines about trouble:\n{}",
        text.lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!text.contains("panicked"));
    // Every line about trouble says whose: a server problem on one of several accounts must
    // be traceable to it, the executor's own lines included.
    let anonymous: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .filter(|l| !l.contains("account="))
        .collect();
    assert!(
        anonymous.is_empty(),
        "lines without the account:\n{}",
        anonymous.join("\n")
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "no clean exit");
}
