//! Helpers shared by the sweep tests: a config file for the private Dovecot, running the
//! `sweep` command in-process, and looking at mailboxes over an independent connection.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imapsort::cli::{ConfigArg, OutputFormat, SweepArgs};
use imapsort::exit::Exit;
use imapsort::imap::{Session, connect};
use imapsort_testkit::dovecot::Dovecot;
use secrecy::SecretString;

/// Writes a config for account `test` on `d` (implicit TLS, trusting its CA) plus `rules`
/// (YAML, the `rules:` list's items, indented by two spaces); the state database goes to
/// `dir/state`.
pub fn write_config(dir: &Path, d: &Dovecot, extra_account: &str, rules: &str) -> PathBuf {
    let text = format!(
        "settings:\n  state_dir: {state}\naccounts:\n  - name: test\n    host: localhost\n    port: {port}\n    ca_file: {ca}\n    \
         username: user\n    password: pass\n{extra_account}rules:\n{rules}",
        port = d.imaps_port(),
        ca = d.ca_pem_path().display(),
        state = dir.join("state").display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// What one run of `imapsort sweep` printed, and its exit code.
pub struct Run {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON lines, parsed.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    /// The final summary line (`--format json`).
    pub fn summary(&self) -> serde_json::Value {
        self.json().last().expect("a summary line")["summary"].clone()
    }

    /// Message lines by Message-ID.
    pub fn by_message_id(&self) -> BTreeMap<String, serde_json::Value> {
        self.json()
            .into_iter()
            .filter(|v| v.get("summary").is_none())
            .map(|v| (v["message_id"].as_str().unwrap_or("").to_owned(), v))
            .collect()
    }
}

pub async fn sweep(config: &Path, dry_run: bool, format: OutputFormat) -> Run {
    sweep_with(config, dry_run, format, None, None).await
}

pub async fn sweep_with(
    config: &Path,
    dry_run: bool,
    format: OutputFormat,
    account: Option<&str>,
    mailbox: Option<&str>,
) -> Run {
    let args = SweepArgs {
        config: ConfigArg {
            config: Some(config.to_path_buf()),
        },
        account: account.map(String::from),
        mailbox: mailbox.map(imapsort::vocab::MailboxName::new),
        dry_run,
        format,
        wait: std::time::Duration::from_secs(30),
        shard: Default::default(),
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let exit = imapsort::commands::sweep::run(&args, &mut out, &mut err).await;
    Run {
        exit,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

/// An independent connection (not the one the sweep used) to look at the result.
pub async fn observer(d: &Dovecot) -> Session {
    let opts = crate::support::dovecot::connect_opts(d, "user");
    connect(&opts, &SecretString::from("pass".to_string()))
        .await
        .expect("observer connects")
}

/// A mailbox's messages: Message-ID -> flags (sorted, without `\Recent`). Empty when the
/// mailbox does not exist.
pub async fn contents(s: &mut Session, mailbox: &str) -> BTreeMap<String, Vec<String>> {
    if !s.exists(mailbox).await.unwrap() {
        return BTreeMap::new();
    }
    s.examine(mailbox).await.unwrap();
    let uids = s.uid_search("ALL").await.unwrap();
    if uids.is_empty() {
        return BTreeMap::new();
    }
    header_and_flags(s, "MESSAGE-ID")
        .await
        .into_iter()
        .collect()
}

/// Every message of the selected mailbox: the value of its header `field` (empty when it has
/// none) and its flags (sorted, without `\Recent`).
pub async fn header_and_flags(s: &mut Session, field: &str) -> Vec<(String, Vec<String>)> {
    let items = s
        .uid_fetch(
            "1:*",
            &format!("(UID FLAGS BODY.PEEK[HEADER.FIELDS ({field})])"),
        )
        .await
        .unwrap();
    items
        .into_iter()
        .map(|item| {
            let header = String::from_utf8_lossy(item.header().unwrap_or_default()).to_string();
            let value = header
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default();
            let mut flags: Vec<String> = item
                .flags()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != "\\Recent")
                .collect();
            flags.sort();
            (value, flags)
        })
        .collect()
}

/// Every mailbox the server lists (config form).
pub async fn mailbox_names(s: &mut Session) -> Vec<String> {
    let mut names: Vec<String> = s
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

/// A message with the given headers (CRLF line ends), a Message-ID `<id>` and a short body.
pub fn eml(id: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut s = String::new();
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str(&format!("Message-ID: <{id}>\r\n"));
    s.push_str("Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n");
    s.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    s.push_str(body);
    s.push_str("\r\n");
    s.into_bytes()
}

/// Two rules moving mail to two mailboxes (so the moves share one `\Deleted` + `UID
/// EXPUNGE`): from `a@x.test` to A, from `c@x.test` to C.
pub const RULES_A_C: &str = "  - { name: a, when: { from: a@x.test }, then: { move: A } }\n  \
                             - { name: c, when: { from: c@x.test }, then: { move: C } }\n";

/// Seeds INBOX with `messages` messages for [`RULES_A_C`]: number n (from 1) is from
/// `a@x.test` when n % 4 is 1, from `c@x.test` when it is 3, else from `keep@x.test`;
/// Message-ID `<m{n}@{tag}>`.
pub fn seed_a_c(d: &Dovecot, messages: usize, tag: &str) {
    let mail: Vec<Vec<u8>> = (1..=messages)
        .map(|n| {
            let from = match n % 4 {
                1 => "a@x.test",
                3 => "c@x.test",
                _ => "keep@x.test",
            };
            eml(
                &format!("m{n}@{tag}"),
                &[("From", from), ("Subject", "s")],
                "b",
            )
        })
        .collect();
    d.seed("user", "INBOX", &mail).unwrap();
}

/// Runs the `imapsort sweep` binary (`--format json`) with the debug log; asserts that it
/// succeeded and returns (stdout, the log).
pub fn sweep_logged(config: &Path) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "--format", "json", "-c"])
        .arg(config)
        .env("IMAPSORT_LOG", "imapsort=debug")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{:?}\n{log}", out.status);
    (String::from_utf8_lossy(&out.stdout).into_owned(), log)
}
