//! Secrets never leave imapsort: the `imapsort` binary runs at `IMAPSORT_LOG=trace` (text and
//! JSON log formats) — `folders`, `sweep` (text and JSON output) and `status` — against the
//! private Dovecot with every password source and both LOGIN and PLAIN, and with a wrong
//! password; every byte it writes to stdout and stderr is
//! searched for the secret, its SASL encodings and its IMAP-quoted form. Also: a server that
//! strips STARTTLS never sees a password, `tls: none` without `allow_insecure` never
//! connects, and a certificate the system does not trust (signed by an unknown CA, or a
//! single self-signed one) is refused before any byte of the session is sent.
//!
//! Library-level versions of the TLS checks (wrong host name, wrong CA, plaintext, STARTTLS
//! stripping) are in tests/it/imap_connect.rs and tests/it/imap_peer.rs.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

use crate::support;

/// Distinctive secrets: never a substring of anything else the program prints.
const SECRET: &str = "Zq7-sekret-V9xw-4417";
const WRONG: &str = "Wr0ng-pa55-Qk2-9931";
const TOKEN: &str = "ya29.tok3n-Xf8-0071";

fn dovecot() -> Option<Dovecot> {
    support::dovecot::start(DovecotOptions {
        users: vec![("user".into(), SECRET.into())],
        ..DovecotOptions::default()
    })
}

/// Every form in which `secret` could leak: as is, quoted for LOGIN, base64 in AUTH PLAIN /
/// XOAUTH2 / OAUTHBEARER, and its first half (a truncated leak is still a leak).
fn leak_forms(user: &str, secret: &str) -> Vec<String> {
    vec![
        secret.to_string(),
        format!("\"{secret}\""),
        B64.encode(format!("\0{user}\0{secret}")),
        B64.encode(format!("user={user}\x01auth=Bearer {secret}\x01\x01")),
        secret[..secret.len() / 2 + 1].to_string(),
    ]
}

fn assert_no_leak(what: &str, out: &Output, user: &str, secret: &str) {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for form in leak_forms(user, secret) {
        assert!(
            !text.contains(&form),
            "{what}: the secret leaked as {form:?} in:\n{text}"
        );
    }
}

/// A config with one account for the private Dovecot; `password` is the YAML of the
/// `password:` value; `extra` more account keys (indented 4).
fn config(dir: &Path, port: u16, ca: Option<&Path>, password: &str, extra: &str) -> PathBuf {
    let ca_line = ca
        .map(|p| format!("    ca_file: {}\n", p.display()))
        .unwrap_or_default();
    let text = format!(
        "settings:\n  state_dir: {state}\naccounts:\n  - name: test\n    host: localhost\n    port: {port}\n{ca_line}    username: user\n    password: {password}\n{extra}rules:\n  - name: flag all\n    when: true\n    then: {{ flag: \"$Seen-By-Test\" }}\n",
        state = dir.join("state").display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn imapsort(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imapsort"));
    cmd.args(args)
        .env("IMAPSORT_LOG", "trace")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run_bounded(cmd, Duration::from_secs(60))
}

/// Run a command with a hard time bound.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn imapsort");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("imapsort output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("imapsort did not finish within {limit:?}");
        }
    }
}

#[test]
fn trace_logs_and_output_never_hold_the_password_from_any_source() {
    let Some(d) = dovecot() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sources = [
        ("literal", format!("'{SECRET}'"), vec![]),
        (
            "env",
            "{ env: TEST_IMAP_SECRET }".to_string(),
            vec![("TEST_IMAP_SECRET", SECRET)],
        ),
        (
            "file",
            format!("{{ file: {} }}", secret_file.display()),
            vec![],
        ),
        (
            "command",
            format!("{{ command: [cat, {}] }}", secret_file.display()),
            vec![],
        ),
    ];
    let mut runs = 0;
    for (source, yaml, envs) in &sources {
        for auth in ["login", "plain"] {
            for log_format in ["text", "json"] {
                let cfg = config(
                    dir.path(),
                    d.imaps_port(),
                    Some(&d.ca_pem_path()),
                    yaml,
                    &format!("    auth: {auth}\n"),
                );
                let cfg = cfg.to_str().unwrap();
                let out = imapsort(&["--log-format", log_format, "folders", "-c", cfg], envs);
                let what = format!("folders, {source}, {auth}, {log_format}");
                assert!(out.status.success(), "{what}: {out:?}");
                assert!(
                    String::from_utf8_lossy(&out.stdout).contains("INBOX"),
                    "{what}: the command really logged in"
                );
                // imapsort's own protocol tracing is on, and rustls's handshake tracing too:
                // otherwise the check would prove nothing.
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    stderr.contains("imap <") && stderr.contains("rustls"),
                    "{what}: trace logging is not on"
                );
                assert_no_leak(&what, &out, "user", SECRET);
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 16);
}

#[test]
fn sweep_and_status_at_trace_level_never_hold_the_password() {
    let Some(d) = dovecot() else {
        return;
    };
    d.seed(
        "user",
        "INBOX",
        &[
            support::dovecot::message(1, "hello"),
            support::dovecot::message(2, "again"),
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        d.imaps_port(),
        Some(&d.ca_pem_path()),
        &format!("'{SECRET}'"),
        "",
    );
    let cfg = cfg.to_str().unwrap();
    for log_format in ["text", "json"] {
        for format in ["text", "json"] {
            let out = imapsort(
                &[
                    "--log-format",
                    log_format,
                    "sweep",
                    "-c",
                    cfg,
                    "--format",
                    format,
                ],
                &[],
            );
            let what = format!("sweep, {log_format} logs, {format} output");
            assert!(out.status.success(), "{what}: {out:?}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("imap <"),
                "{what}: trace logging is not on"
            );
            assert_no_leak(&what, &out, "user", SECRET);
        }
    }
    let out = imapsort(&["status", "-c", cfg, "--format", "json"], &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("flag all"),
        "status shows the recent actions: {out:?}"
    );
    assert_no_leak("status", &out, "user", SECRET);
}

#[test]
fn a_wrong_password_is_reported_without_either_password() {
    let Some(d) = dovecot() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for auth in ["login", "plain"] {
        let cfg = config(
            dir.path(),
            d.imaps_port(),
            Some(&d.ca_pem_path()),
            &format!("'{WRONG}'"),
            &format!("    auth: {auth}\n"),
        );
        let out = imapsort(&["folders", "-c", cfg.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(69), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("test"),
            "the error names the account: {stderr}"
        );
        assert_no_leak("wrong password", &out, "user", WRONG);
        assert_no_leak("wrong password (right one)", &out, "user", SECRET);
    }
}

#[test]
fn an_untrusted_certificate_is_refused_before_any_password() {
    let Some(d) = dovecot() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The launcher's own readiness login: Dovecot may write its log line a moment after the
    // login succeeded, so wait for it before counting.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !d.log().contains("Login: user=") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logins_before = d.log().matches("Login: user=").count();
    // No ca_file: the private CA is not a system root.
    let cfg = config(dir.path(), d.imaps_port(), None, &format!("'{SECRET}'"), "");
    let out = imapsort(&["folders", "-c", cfg.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");
    assert_no_leak("untrusted certificate", &out, "user", SECRET);
    // Dovecot's log shows no new login and no failed authentication. A login of our own
    // marks the place: once it is in the log, so is anything imapsort's attempt caused.
    assert!(d.login("user", SECRET).unwrap(), "the marker login failed");
    let logins = || d.log().matches("Login: user=").count();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while logins() <= logins_before {
        assert!(
            std::time::Instant::now() < deadline,
            "the marker login is not in the log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = d.log();
    assert_eq!(
        log.matches("Login: user=").count(),
        logins_before + 1,
        "a login reached the server:\n{log}"
    );
    assert!(!log.contains("auth failed"), "{log}");
}

/// A plaintext listener that records every line it receives and answers like a server
/// whose STARTTLS was stripped by a man in the middle.
fn stripping_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let _ =
                stream.write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN] ready\r\n");
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                seen.lock().unwrap().push(line.clone());
                let tag = line.split_whitespace().next().unwrap_or("*").to_string();
                let reply = if line.to_ascii_uppercase().contains("CAPABILITY") {
                    format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN\r\n{tag} OK done\r\n")
                } else if line.to_ascii_uppercase().contains("STARTTLS") {
                    format!("{tag} BAD unknown command\r\n")
                } else {
                    // A LOGIN would be accepted: the client must not get this far.
                    format!("{tag} OK done\r\n")
                };
                let _ = stream.write_all(reply.as_bytes());
                line.clear();
            }
        }
    });
    (port, lines)
}

#[test]
fn a_stripped_starttls_never_sees_a_password() {
    let (port, lines) = stripping_server();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        port,
        None,
        &format!("'{SECRET}'"),
        "    tls: starttls\n",
    );
    let out = imapsort(&["folders", "-c", cfg.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert_no_leak("stripped STARTTLS", &out, "user", SECRET);
    let received = lines.lock().unwrap().join("");
    assert!(received.contains("CAPABILITY"), "{received}");
    for form in leak_forms("user", SECRET) {
        assert!(
            !received.contains(&form),
            "the server received {received:?}"
        );
    }
    let upper = received.to_ascii_uppercase();
    assert!(
        !upper.contains("LOGIN") && !upper.contains("AUTHENTICATE"),
        "the client tried to log in over plaintext: {received:?}"
    );
}

#[test]
fn tls_none_without_allow_insecure_never_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        port,
        None,
        &format!("'{SECRET}'"),
        "    tls: none\n",
    );
    let out = imapsort(&["folders", "-c", cfg.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("allow_insecure"),
        "{out:?}"
    );
    assert_no_leak("tls none", &out, "user", SECRET);
    assert!(listener.accept().is_err(), "a connection was attempted");
}

#[test]
fn oauth_tokens_never_appear_in_trace_logs_on_a_refused_authentication() {
    // A scripted server that refuses XOAUTH2 with the usual JSON challenge.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let caps = "IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER SASL-IR";
        let _ = stream.write_all(format!("* OK [CAPABILITY {caps}] ready\r\n").as_bytes());
        let mut line = String::new();
        let mut auth_tag = None;
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            seen.lock().unwrap().push(line.clone());
            let tag = line.split_whitespace().next().unwrap_or("*").to_string();
            let reply = if let Some(t) = auth_tag.take() {
                format!("{t} NO [AUTHENTICATIONFAILED] invalid credentials\r\n")
            } else if line.to_ascii_uppercase().contains("AUTHENTICATE") {
                auth_tag = Some(tag);
                let challenge = B64.encode(r#"{"status":"401","schemes":"bearer"}"#);
                format!("+ {challenge}\r\n")
            } else if line.to_ascii_uppercase().contains("CAPABILITY") {
                format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n")
            } else {
                format!("{tag} BAD unexpected\r\n")
            };
            let _ = stream.write_all(reply.as_bytes());
            line.clear();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        port,
        None,
        &format!("'{TOKEN}'"),
        "    tls: none\n    allow_insecure: true\n    auth: xoauth2\n",
    );
    let out = imapsort(&["folders", "-c", cfg.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert_no_leak("xoauth2 refused", &out, "user", TOKEN);
    let xoauth2 = B64.encode(format!("user=user\x01auth=Bearer {TOKEN}\x01\x01"));
    assert!(
        lines.lock().unwrap().join("").contains(&xoauth2),
        "the token did reach the server (so the log check is meaningful)"
    );
}

#[test]
fn config_errors_and_debug_output_never_hold_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Errors all around the password: an unknown key beside it, a bad port, a numeric
    // password's hint, an invalid rule.
    let text = format!(
        "accounts:\n  - name: a\n    host: h\n    port: nope\n    username: u\n    password: '{SECRET}'\n    passwort: '{SECRET}'\n  - name: b\n    host: h\n    username: u\n    password: {{ literal: '{TOKEN}' }}\nrules:\n  - name: r\n    when: {{ subject: {{ regex: '(' }} }}\n    then: trash\n"
    );
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, &text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = imapsort::config::load(&path).unwrap_err();
    let rendered = format!("{err}\n{err:?}\n{:?}", err.diagnostics());
    assert!(rendered.contains("port"), "{rendered}");
    for secret in [SECRET, TOKEN] {
        assert!(!rendered.contains(secret), "{rendered}");
    }
    let out = imapsort(&["check", "-c", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert_no_leak("check errors", &out, "u", SECRET);
    assert_no_leak("check errors", &out, "u", TOKEN);

    // A valid config: Debug of the loaded config and its accounts never shows the secret.
    let good = config(dir.path(), 993, None, &format!("'{SECRET}'"), "");
    let loaded = imapsort::config::load(&good).expect("valid");
    let debug = format!("{loaded:?}");
    assert!(debug.contains("localhost"), "Debug shows the config");
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn a_self_signed_certificate_without_ca_file_is_refused_before_any_password() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    // A single self-signed certificate for localhost (what a home server often has).
    let (cert, key) = imapsort_testkit::dovecot::make_self_signed(&["localhost"]).unwrap();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let seen = received.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let _ = tls.write_all(b"* OK ready\r\n").await;
            let mut buf = [0u8; 4096];
            while let Ok(n) = tls.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, None, &format!("'{SECRET}'"), "");
    let out = imapsort(&["folders", "-c", cfg.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");
    assert_no_leak("self-signed", &out, "user", SECRET);
    assert!(
        received.lock().unwrap().is_empty(),
        "the client sent data over a connection it should have refused"
    );
}
