//! Helpers of the exactly-once tests (`tests/once_*.rs`): configurations for the private
//! Dovecot (straight, or on its plaintext port through [`cutter::Cutter`]), running the real
//! `imapsort` binary, and a census of every mailbox over an independent connection.
#![allow(dead_code)]

pub mod cutter;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use imapsort::imap::{Session, connect};
use imapsort_testkit::dovecot::Dovecot;
use secrecy::SecretString;

/// Where an account connects: the server itself (implicit TLS) or a port on loopback that
/// speaks plaintext IMAP (a [`cutter::Cutter`] in front of the server's plaintext port).
#[derive(Clone, Copy, Debug)]
pub enum Via {
    Tls,
    Plain(u16),
}

/// One account block named `name` for user `user` of `d`, with `extra` lines (indented by four
/// spaces) appended.
pub fn account(d: &Dovecot, name: &str, via: Via, extra: &str) -> String {
    let conn = match via {
        Via::Tls => format!(
            "    port: {}\n    tls: implicit\n    ca_file: {}\n",
            d.imaps_port(),
            d.ca_pem_path().display()
        ),
        Via::Plain(port) => format!("    port: {port}\n    tls: none\n    allow_insecure: true\n"),
    };
    format!(
        "  - name: {name}\n    host: 127.0.0.1\n{conn}    username: user\n    password: pass\n{extra}"
    )
}

/// Writes `dir/config.yaml` (mode 0600): state in `state_dir`, the given accounts and
/// `rules` (the items of the `rules:` list). Returns its path.
pub fn write_config(
    dir: &Path,
    state_dir: &Path,
    settings: &str,
    accounts: &str,
    rules: &str,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "settings:\n  state_dir: {}\n{settings}accounts:\n{accounts}rules:\n{rules}",
        state_dir.display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `imapsort sweep -c config ARGS...`, logging at `info`, to completion.
pub fn sweep(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imapsort"))
        .args(["sweep", "-c"])
        .arg(config)
        .args(args)
        .env("IMAPSORT_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .output()
        .expect("run imapsort sweep")
}

/// The exit code, stdout and stderr of a finished command, for assertion messages.
pub fn shown(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub use super::spawn_run;

/// SIGTERM, then wait (at most 15 s, then SIGKILL). Returns the exit code, if it exited.
pub fn stop(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` every 100 ms until it holds; panics with `what` (and `detail()`) after
/// `limit`.
pub fn wait_for(
    what: &str,
    limit: Duration,
    mut cond: impl FnMut() -> bool,
    detail: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}\n{}", detail());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A message with Message-ID `<id>` (none when `id` is `None`) and the given subject.
pub fn message(id: Option<&str>, subject: &str) -> Vec<u8> {
    let id = id
        .map(|i| format!("Message-ID: <{i}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Sender <sender@example.com>\r\nTo: user@example.com\r\nSubject: {subject}\r\n\
         {id}Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes()
}

/// An independent connection to look at the server.
pub async fn observer(d: &Dovecot) -> Session {
    let opts = imapsort::imap::ConnectOptions {
        account: "observer".into(),
        host: "localhost".into(),
        port: d.imaps_port(),
        tls: imapsort::config::TlsMode::Implicit,
        allow_insecure: false,
        ca_file: Some(d.ca_pem_path()),
        username: "user".into(),
        auth: imapsort::config::AuthMechanism::Login,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(30),
    };
    connect(&opts, &SecretString::from("pass".to_string()))
        .await
        .expect("observer connects")
}

/// One message as the census sees it: its Subject (the tests' identity, unique per message,
/// also for messages without a Message-ID) and its flags (sorted, without `\Recent`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub subject: String,
    pub flags: Vec<String>,
}

/// Every mailbox the server lists, with the messages in it (sorted by subject).
pub async fn census(s: &mut Session) -> BTreeMap<String, Vec<Seen>> {
    let mut out = BTreeMap::new();
    for entry in s.list().await.unwrap() {
        if entry
            .attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\Noselect"))
        {
            continue;
        }
        let info = s.examine(&entry.name).await.unwrap();
        let mut seen = Vec::new();
        if info.exists > 0 {
            let found = crate::support::sweep_util::header_and_flags(s, "SUBJECT").await;
            seen.extend(
                found
                    .into_iter()
                    .map(|(subject, flags)| Seen { subject, flags }),
            );
        }
        seen.sort();
        out.insert(entry.name, seen);
    }
    out
}

/// How many messages with `subject` each mailbox holds (mailboxes without one left out).
pub fn places(census: &BTreeMap<String, Vec<Seen>>, subject: &str) -> BTreeMap<String, usize> {
    census
        .iter()
        .filter_map(|(mailbox, seen)| {
            let n = seen.iter().filter(|m| m.subject == subject).count();
            (n > 0).then(|| (mailbox.clone(), n))
        })
        .collect()
}

/// `[(mailbox, n)]` as a map, for comparing with [`places`].
pub fn at(list: &[(&str, usize)]) -> BTreeMap<String, usize> {
    list.iter().map(|(m, n)| (m.to_string(), *n)).collect()
}

/// A runtime for the async helpers of a synchronous test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh census over a new observer connection.
pub fn census_now(rt: &tokio::runtime::Runtime, d: &Dovecot) -> BTreeMap<String, Vec<Seen>> {
    rt.block_on(async {
        let mut s = observer(d).await;
        let c = census(&mut s).await;
        let _ = s.logout().await;
        c
    })
}
