//! `imapsort check` as a user runs it: the real binary, its output and its exit codes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const VALID: &str = r#"
accounts:
  - name: personal
    host: imap.example.com
    username: me@example.com
    password: { command: [pass, show, mail/personal] }
rules:
  - name: lists
    when: { list_id: { exists: true } }
    then: { move: "Lists/{list_id}" }
"#;

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .arg("check")
        .args(args)
        .env_remove("IMAPSORT_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("the binary runs")
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_string_lossy().into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn valid_file_exits_0_with_ok_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "config.yaml", VALID, 0o644);
    let out = check(&["-c", &file]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), format!("{file}: ok (0 warnings)\n"));
}

#[test]
fn warnings_are_printed_and_still_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{VALID}  - name: purge\n    when: {{ subject: spam }}\n    then: delete\n");
    let file = write(dir.path(), "config.yaml", &text, 0o600);
    let out = check(&["-c", &file]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!(
            "{file}:13:11: warning: rule \"purge\": delete removes the message permanently (it is expunged, not moved to the trash)\n{file}: ok (1 warning)\n"
        )
    );
}

#[test]
fn invalid_file_exits_78_with_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = "settings: { sweep_interval: soon }\nrules:\n  - name: r\n    when: { frm: x }\n    then: nothing\n";
    let file = write(dir.path(), "bad.yaml", text, 0o600);
    let out = check(&["-c", &file]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:1:29: error: sweep_interval: invalid duration \"soon\""
        )),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}:4:13: error: rule \"r\": unknown condition \"frm\""
        )),
        "{text}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{file}:5:11: error: rule \"r\": unknown action \"nothing\""
        )),
        "{text}"
    );
    assert_eq!(lines[3], format!("{file}: 3 errors, 0 warnings"));
}

#[test]
fn unreadable_file_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join("missing.yaml")
        .to_string_lossy()
        .into_owned();
    let out = check(&["-c", &file]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("{file}: error: cannot read the file: ")),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("\n{file}: 1 error, 0 warnings\n")),
        "{text}"
    );
}

#[test]
fn config_path_comes_from_imapsort_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "env.yaml", VALID, 0o600);
    let out = Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .arg("check")
        .env("IMAPSORT_CONFIG", &file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), format!("{file}: ok (0 warnings)\n"));
}

/// A literal password in a file others can read is a warning, and the password is never shown.
#[test]
fn literal_password_in_readable_file_warns_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = "accounts:\n  - name: a\n    host: h\n    username: u\n    password: Sup3r-Secret\n";
    let file = write(dir.path(), "c.yaml", text, 0o640);
    let out = check(&["-c", &file]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!(
            "{file}:5:15: warning: account \"a\": the password is written in the file, which group or others can read (mode 640); chmod 600 the file, or use command, env or file\n{file}: ok (1 warning)\n"
        )
    );
    let all = format!("{out:?}");
    assert!(!all.contains("Sup3r-Secret"));

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check(&["-c", &file]);
    assert_eq!(stdout(&out), format!("{file}: ok (0 warnings)\n"));
}

/// A `file:` password readable by others is a warning; relative paths are taken beside the file.
#[test]
fn password_file_readable_by_others_warns() {
    let dir = tempfile::tempdir().unwrap();
    let pw = write(dir.path(), "pw.txt", "secret\n", 0o604);
    let text = "accounts:\n  - { name: a, host: h, username: u, password: { file: pw.txt } }\n";
    let file = write(dir.path(), "c.yaml", text, 0o600);
    let out = check(&["-c", &file]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!(
            "{file}:2:48: warning: account \"a\": password file {pw} is readable by others (mode 604); chmod o-r it\n{file}: ok (1 warning)\n"
        )
    );
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = check(&["-c", &file]);
    assert_eq!(stdout(&out), format!("{file}: ok (0 warnings)\n"));
}

/// Every command that reads the configuration reports an invalid one as `check` does: the
/// same lines (on stderr rather than stdout, without the summary) and exit 78.
#[test]
fn every_command_reports_an_invalid_file_as_check_does() {
    let dir = tempfile::tempdir().unwrap();
    let text = "rules:\n  - name: r\n    when: { frm: x }\n    then: trash\n  - name: purge\n    when: true\n    then: delete\n";
    let file = write(dir.path(), "bad.yaml", text, 0o600);
    let checked = check(&["-c", &file]);
    assert_eq!(checked.status.code(), Some(78), "{checked:?}");
    let report = stdout(&checked);
    let (lines, summary) = report
        .trim_end()
        .rsplit_once('\n')
        .expect("diagnostics and a summary");
    assert_eq!(summary, format!("{file}: 1 error, 1 warning"));
    let message = dir.path().join("m.eml");
    std::fs::write(&message, "Subject: x\r\n\r\nbody\r\n").unwrap();
    let message = message.to_string_lossy().into_owned();
    let commands: &[&[&str]] = &[
        &["test", &message],
        &["sweep"],
        &["sweep", "--dry-run"],
        &["run"],
        &["folders"],
        &["status"],
        &["login", "personal"],
    ];
    for args in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(&args[..1])
            .args(["-c", &file])
            .args(&args[1..])
            .env_remove("IMAPSORT_CONFIG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("JOURNAL_STREAM")
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(78), "{args:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{lines}\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}
