//! `auth: oauth2` accounts end to end: Dovecot checks every token through its oauth2 passdb
//! (introspection at the test authorization server), the real `imapsort run`, `sweep` and
//! `folders` binaries use the tokens `imapsort login` saved.
//!
//! - expiry with a Dovecot restart in between: the daemon reconnects with a refreshed token,
//!   and the rotated refresh token is what the file holds;
//! - revocation: one account stops (logged once, "run `imapsort login alice`"), the other
//!   keeps sorting; `folders` and `sweep` exit 69 with the same advice without sending the
//!   dead token again; a new login resumes the account by itself;
//! - no secret the server issued appears in any log, output or state file (but the token file).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::login::{assert_no_secret, device_login};
use crate::support::oauth_server::AuthServer;
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

const RULES: &str =
    "rules:\n  - name: sort\n    when: { subject: sortme }\n    then: { move: Sorted }\n";

struct Setup {
    dovecot: Dovecot,
    auth: AuthServer,
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup(users: &[&str]) -> Option<Setup> {
    let auth = AuthServer::start();
    let dovecot = crate::support::dovecot::start(DovecotOptions {
        users: users
            .iter()
            .map(|u| (u.to_string(), "pw".to_string()))
            .collect(),
        oauth2_introspection_url: Some(auth.url("introspect")),
        ..DovecotOptions::default()
    })?;
    let dir = tempfile::tempdir().unwrap();
    let mut accounts = String::new();
    for user in users {
        accounts.push_str(&format!(
            "  - name: {user}\n    host: 127.0.0.1\n    port: {port}\n    ca_file: {ca}\n    username: {user}\n    first_start: all\n{oauth}",
            port = dovecot.imaps_port(),
            ca = dovecot.ca_pem_path().display(),
            oauth = auth.oauth2_yaml(),
        ));
    }
    let text = format!(
        "settings:\n  state_dir: {}\naccounts:\n{accounts}{RULES}",
        dir.path().join("state").display()
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, text).unwrap();
    Some(Setup {
        dovecot,
        auth,
        dir,
        config,
    })
}

impl Setup {
    fn count(&self, user: &str, mailbox: &str) -> usize {
        let dir = self.dovecot.mailbox_dir(user, mailbox);
        ["cur", "new"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
            .map(|entries| entries.count())
            .sum()
    }

    fn wait_count(&self, user: &str, mailbox: &str, n: usize, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count(user, mailbox) != n {
            if Instant::now() > deadline {
                panic!(
                    "{user}/{mailbox} holds {}, expected {n}\ndaemon log:\n{}\ndovecot log:\n{}",
                    self.count(user, mailbox),
                    std::fs::read_to_string(log).unwrap_or_default(),
                    self.dovecot.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn deliver(&self, user: &str, n: usize) {
        let msg = crate::support::dovecot::message(n, &format!("sortme {n}"));
        self.dovecot.seed(user, "INBOX", &[msg]).unwrap();
    }

    fn token_file(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("state/oauth2/{user}.json"))
    }

    fn stored_refresh(&self, user: &str) -> String {
        let text = std::fs::read_to_string(self.token_file(user)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["refresh_token"].as_str().unwrap_or_default().to_owned()
    }

    /// `imapsort ARGS -c CONFIG`: exit code, stdout, stderr.
    fn imapsort(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(args)
            .arg("-c")
            .arg(&self.config)
            .env("IMAPSORT_LOG", "trace")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `imapsort run` with every log line (trace) in `daemon.log`.
    fn run(&self) -> (crate::support::Daemon, PathBuf) {
        let log = self.dir.path().join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(["run", "-c"])
            .arg(&self.config)
            .env("IMAPSORT_LOG", "trace,imapsort::imap=debug")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (crate::support::Daemon::new(child), log)
    }

    /// Every file under the state directory but the token files.
    fn state_texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![self.dir.path().join("state")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_none_or(|x| x != "json") {
                    out.push(String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned());
                }
            }
        }
        out
    }
}

fn stop(mut child: crate::support::Daemon) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("imapsort run did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_log(log: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn expiry_restart_rotation_revocation_and_a_new_login() {
    let Some(mut s) = setup(&["alice", "bob"]) else {
        return;
    };
    device_login(&s.config, "alice", &s.auth, "alice");
    device_login(&s.config, "bob", &s.auth, "bob");
    let (daemon, log) = s.run();

    // Both accounts sort with the tokens from the login; Dovecot asked about each.
    s.deliver("alice", 1);
    s.deliver("bob", 2);
    s.wait_count("alice", "Sorted", 1, &log);
    s.wait_count("bob", "Sorted", 1, &log);
    assert!(s.auth.with(|st| st.introspections) >= 2);
    assert_eq!(
        s.auth.with(|st| st.refreshes),
        0,
        "fresh tokens are used as they are"
    );

    // The access tokens expire (the daemon cannot know) and the server restarts: the
    // reconnect is refused once, refreshed, and sorting goes on.
    let before = s.stored_refresh("alice");
    s.auth.expire_access_tokens();
    s.dovecot.restart().unwrap();
    s.deliver("alice", 3);
    s.wait_count("alice", "Sorted", 2, &log);
    assert!(s.auth.with(|st| st.refreshes) >= 1);
    assert_eq!(
        s.auth.with(|st| st.refused_refreshes),
        0,
        "no refresh token sent twice"
    );
    let after = s.stored_refresh("alice");
    assert_ne!(before, after, "the rotated refresh token was saved");
    assert_eq!(s.auth.live_refresh_tokens("alice"), vec![after]);

    // Alice's sign-in is revoked; bob keeps sorting, alice stops and says what to do once.
    s.auth.revoke_user("alice");
    s.auth.expire_access_tokens();
    s.dovecot.restart().unwrap();
    s.deliver("alice", 4);
    s.deliver("bob", 5);
    s.wait_count("bob", "Sorted", 2, &log);
    wait_log(&log, "run `imapsort login alice`");
    let refused = s.auth.with(|st| st.refused_refreshes);
    // More retries would have come within a few backoff rounds.
    std::thread::sleep(Duration::from_secs(5));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("run `imapsort login alice`").count(),
        1,
        "{text}"
    );
    assert_eq!(s.count("alice", "INBOX"), 1);
    assert_eq!(s.count("alice", "Sorted"), 2);

    // folders and sweep say the same and exit 69, without sending the dead token again.
    let (code, _, folders_err) = s.imapsort(&["folders", "--account", "alice"]);
    assert_eq!(code, Some(69), "{folders_err}");
    assert!(
        folders_err.contains("run `imapsort login alice`"),
        "{folders_err}"
    );
    let (code, sweep_out, sweep_err) = s.imapsort(&["sweep", "--account", "alice"]);
    assert_eq!(code, Some(69), "{sweep_err}");
    assert!(
        sweep_err.contains("run `imapsort login alice`"),
        "{sweep_err}"
    );
    assert_eq!(s.auth.with(|st| st.refused_refreshes), refused);
    let (code, folders_bob, bob_err) = s.imapsort(&["folders", "--account", "bob"]);
    assert_eq!(code, Some(0), "{bob_err}");

    // A new login: the daemon notices the token file and sorts alice's waiting message.
    device_login(&s.config, "alice", &s.auth, "alice");
    s.wait_count("alice", "Sorted", 3, &log);
    assert_eq!(s.count("alice", "INBOX"), 0);
    stop(daemon);

    let daemon_log = std::fs::read_to_string(&log).unwrap();
    let mut texts = vec![
        daemon_log.as_str(),
        folders_err.as_str(),
        sweep_out.as_str(),
        sweep_err.as_str(),
        folders_bob.as_str(),
        bob_err.as_str(),
    ];
    let state = s.state_texts();
    texts.extend(state.iter().map(String::as_str));
    assert_no_secret(&s.auth, &texts);
}

#[test]
fn sweep_reuses_the_stored_token_and_refreshes_it_within_60_s_of_expiry() {
    let Some(s) = setup(&["alice"]) else {
        return;
    };
    device_login(&s.config, "alice", &s.auth, "alice");
    s.deliver("alice", 1);
    let (code, out, err) = s.imapsort(&["sweep"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(s.count("alice", "Sorted"), 1);
    let (code, _, err) = s.imapsort(&["folders"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        s.auth.with(|st| st.refreshes),
        0,
        "the saved access token was reused"
    );

    // Tokens that live 61 s are stale after a second: each run refreshes first.
    s.auth.with(|st| st.access_ttl = Duration::from_secs(61));
    device_login(&s.config, "alice", &s.auth, "alice");
    std::thread::sleep(Duration::from_millis(1100));
    let (code, _, err) = s.imapsort(&["folders"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(s.auth.with(|st| st.refreshes), 1);
    std::thread::sleep(Duration::from_millis(1100));
    let (code, _, err) = s.imapsort(&["folders"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(s.auth.with(|st| st.refreshes), 2);
    assert_eq!(s.auth.with(|st| st.refused_refreshes), 0);
    assert!(
        s.auth
            .live_refresh_tokens("alice")
            .contains(&s.stored_refresh("alice"))
    );
    assert_no_secret(&s.auth, &[&out, &err]);
}
