//! `imapsort status` as a user runs it: the real binary against a state database written by
//! this test process, which keeps it open the way a running daemon does.

use std::path::Path;
use std::process::{Command, Output};

use imapsort::state::{Action, NewJournalEntry, Outcome, StateDb};

fn config(dir: &Path, state_dir: Option<&Path>) -> String {
    let settings = state_dir
        .map(|d| format!("settings:\n  state_dir: {}\n", d.display()))
        .unwrap_or_default();
    let text = format!(
        "{settings}accounts:\n  - name: personal\n    host: imap.example.com\n    username: me\n    \
         password: {{ env: NOPE }}\n  - name: work\n    host: imap.example.com\n    username: me\n    \
         password: {{ env: NOPE }}\nrules: []\n"
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn status(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imapsort"));
    cmd.arg("status")
        .args(args)
        .env_remove("IMAPSORT_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env("IMAPSORT_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn seed(db: &mut StateDb) {
    db.set_last_uid("personal", "INBOX", 11, 4242).unwrap();
    db.record_error("personal", "INBOX", "connection reset by peer")
        .unwrap();
    db.journal_record(
        &NewJournalEntry {
            account: "personal",
            mailbox: "INBOX",
            uid_validity: 11,
            uid: 4242,
            message_id: Some("<a@example.org>"),
            rule: "mailing lists",
            action: Action::Move,
            destination: Some("Lists/dev"),
        },
        &Outcome::Done,
    )
    .unwrap();
}

#[test]
fn without_a_database_it_says_no_state_yet_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = config(dir.path(), Some(&state));
    let out = status(&["-c", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).starts_with("no state yet"), "{}", stdout(&out));
    assert!(
        !state.exists(),
        "status must not create the state directory"
    );
}

#[test]
fn an_invalid_configuration_exits_78_with_its_errors_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "accounts: 5\nbogus: true\n").unwrap();
    let out = status(&["-c", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config.yaml:"), "{stderr}");
}

#[test]
fn it_reads_the_database_while_a_daemon_holds_it_open() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = config(dir.path(), Some(&state));
    let mut daemon = StateDb::open(&state).unwrap();
    seed(&mut daemon);

    let out = status(&["-c", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    for line in [
        "account personal",
        "  mailbox INBOX",
        "    last UID       4242 (UIDVALIDITY 11)",
        "account work",
        "  no state yet",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in\n{text}"
        );
    }
    assert!(text.contains("connection reset by peer"), "{text}");
    assert!(
        text.contains("uid 4242  move Lists/dev  [mailing lists]  done"),
        "{text}"
    );

    // The daemon keeps writing; a second look sees it.
    daemon.set_last_uid("personal", "INBOX", 11, 4243).unwrap();
    let out = status(&["-c", &file, "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let inbox = &json["accounts"][0]["mailboxes"][0];
    assert_eq!(json["accounts"][0]["account"], "personal");
    assert_eq!(inbox["mailbox"], "INBOX");
    assert_eq!(inbox["last_uid"], 4243);
    assert_eq!(inbox["last_error"]["text"], "connection reset by peer");
    assert_eq!(inbox["recent_actions"][0]["rule"], "mailing lists");
    assert_eq!(json["accounts"][1]["account"], "work");
    assert_eq!(json["accounts"][1]["mailboxes"], serde_json::json!([]));
}

#[test]
fn a_stopped_daemons_database_is_read_without_leaving_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = config(dir.path(), Some(&state));
    seed(&mut StateDb::open(&state).unwrap());
    let before = files(&state);
    let out = status(&["-c", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("4242"));
    assert_eq!(
        files(&state),
        before,
        "a root-owned -wal/-shm would lock the daemon out"
    );
}

#[test]
fn state_directory_from_systemd_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("from-systemd");
    let file = config(dir.path(), None);
    seed(&mut StateDb::open(&state).unwrap());
    let out = status(&["-c", &file], &[("STATE_DIRECTORY", &state)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains("last UID       4242"),
        "{}",
        stdout(&out)
    );
}
