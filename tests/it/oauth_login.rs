//! `imapsort login` against the test authorization server: the device flow (interval and
//! slow_down honoured; approved 0, denied 77, expired 75) and the browser flow (PKCE and
//! state; the redirect delivered to the loopback listener, or the address pasted on stdin).
//! The test is the user and the user agent. Nothing here needs Dovecot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::login::{Login, assert_no_secret};
use crate::support::oauth_server::AuthServer;

/// A configuration with one account `alice` using the test server, state in `dir/state`.
fn config(dir: &Path, auth: &AuthServer) -> PathBuf {
    let text = format!(
        "settings:\n  state_dir: {state}\naccounts:\n  - name: alice\n    host: 127.0.0.1\n    username: alice\n{oauth}rules: []\n",
        state = dir.join("state").display(),
        oauth = auth.oauth2_yaml(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn token_file(dir: &Path) -> PathBuf {
    dir.join("state/oauth2/alice.json")
}

fn stored_refresh_token(dir: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(token_file(dir)).unwrap()).unwrap();
    v["refresh_token"].as_str().unwrap().to_owned()
}

#[test]
fn device_login_honours_interval_and_slow_down() {
    let auth = AuthServer::start();
    auth.with(|s| s.slow_down_once = true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &auth);
    let mut login = Login::start(&cfg, "alice", "device");
    let code = login.user_code();
    // The user approves only after two polls: the second is answered with slow_down.
    let deadline = Instant::now() + Duration::from_secs(20);
    while auth.with(|s| s.polls.len()) < 2 {
        assert!(Instant::now() < deadline, "no second poll");
        std::thread::sleep(Duration::from_millis(20));
    }
    auth.approve(&code, "alice");
    let (exit, out, err) = login.finish(Duration::from_secs(30));
    assert_eq!(exit, 0, "stdout {out:?}\nstderr {err}");
    let polls = auth.with(|s| s.polls.clone());
    assert_eq!(polls.len(), 3, "one poll after the approval");
    // interval 1 s; after slow_down 1 + 5 s (a little slack for timer granularity).
    assert!(
        polls[1] - polls[0] >= Duration::from_millis(950),
        "{polls:?}"
    );
    assert!(
        polls[2] - polls[1] >= Duration::from_millis(5950),
        "{polls:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(token_file(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        auth.live_refresh_tokens("alice"),
        vec![stored_refresh_token(dir.path())]
    );
    assert_no_secret(&auth, &[&out.join("\n"), &err]);
}

#[test]
fn device_login_denied_is_77_and_expired_is_75() {
    let auth = AuthServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &auth);
    let mut login = Login::start(&cfg, "alice", "device");
    let code = login.user_code();
    auth.deny(&code);
    let (exit, out, err) = login.finish(Duration::from_secs(30));
    assert_eq!(exit, 77, "stdout {out:?}\nstderr {err}");
    assert!(err.contains("refused"), "{err}");

    auth.with(|s| s.device_ttl = Duration::from_secs(2));
    let mut login = Login::start(&cfg, "alice", "device");
    let _ = login.user_code();
    let (exit, out, err) = login.finish(Duration::from_secs(30));
    assert_eq!(exit, 75, "stdout {out:?}\nstderr {err}");
    assert!(err.contains("expired"), "{err}");
    assert!(!token_file(dir.path()).exists(), "nothing saved");
}

/// The user agent: follow the authorization URL; the server signs in and redirects.
fn authorize(url: &str) -> String {
    let agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .new_agent();
    let response = agent.get(url).call().expect("authorization request");
    assert_eq!(response.status().as_u16(), 302);
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn get_status(url: &str) -> u16 {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    agent
        .get(url)
        .call()
        .expect("request to the loopback listener")
        .status()
        .as_u16()
}

#[test]
fn browser_login_by_redirect_checks_state() {
    let auth = AuthServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &auth);
    let mut login = Login::start(&cfg, "alice", "browser");
    let url = login.browser_url();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let location = authorize(&url);
    let (listener, _) = location.split_once('?').unwrap();
    // A redirect with another state is refused, and the login goes on waiting.
    assert_eq!(
        get_status(&format!("{listener}?code=forged&state=forged")),
        400
    );
    assert_eq!(get_status(&location), 200);
    let (exit, out, err) = login.finish(Duration::from_secs(30));
    assert_eq!(exit, 0, "stdout {out:?}\nstderr {err}");
    assert_eq!(
        auth.live_refresh_tokens("alice"),
        vec![stored_refresh_token(dir.path())]
    );
    assert_no_secret(&auth, &[&out.join("\n"), &err]);
}

#[test]
fn browser_login_by_pasted_address() {
    let auth = AuthServer::start();
    auth.with(|s| s.browser_user = "alice".into());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &auth);
    let mut login = Login::start(&cfg, "alice", "browser");
    let url = login.browser_url();
    let location = authorize(&url);
    // The browser was elsewhere: its final address is pasted; noise first.
    let stdin = login.stdin.as_mut().unwrap();
    writeln!(stdin, "what do I do?").unwrap();
    writeln!(stdin, "  {location}  ").unwrap();
    let (exit, out, err) = login.finish(Duration::from_secs(30));
    assert_eq!(exit, 0, "stdout {out:?}\nstderr {err}");
    assert!(
        err.contains("holds no code"),
        "the noise line was answered: {err}"
    );
    assert_eq!(
        auth.live_refresh_tokens("alice"),
        vec![stored_refresh_token(dir.path())]
    );
    assert_no_secret(&auth, &[&out.join("\n"), &err]);
}

#[test]
fn login_refuses_what_the_configuration_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "accounts:\n  - name: g\n    host: imap.gmail.com\n    username: me@gmail.com\n    auth: oauth2\n    oauth2: { provider: google, client_id: x }\n  - name: p\n    host: h\n    username: u\n    password: { env: PW }\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_imapsort"))
            .args(["login", "-c"])
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["g", "--method", "device"]);
    assert_eq!(code, Some(78));
    assert!(
        err.contains("config.yaml:6:25: error: account \"g\": login --method device"),
        "{err}"
    );
    let (code, err) = run(&["p"]);
    assert_eq!(code, Some(78));
    assert!(err.contains("auth: oauth2"), "{err}");
    let (code, err) = run(&["nobody"]);
    assert_eq!(code, Some(78));
    assert!(err.contains("no account named \"nobody\""), "{err}");
}
