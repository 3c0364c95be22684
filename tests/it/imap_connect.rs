//! Connecting and logging in against the private Dovecot: every TLS mode, LOGIN and PLAIN,
//! certificate verification, refusals.

use std::time::Duration;

use imapsort::config::{AuthMechanism, TlsMode};
use imapsort::imap::{ImapError, connect};
use imapsort_testkit::dovecot::DovecotOptions;
use secrecy::SecretString;

use crate::support;

const LIMIT: Duration = Duration::from_secs(60);

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn users() -> DovecotOptions {
    DovecotOptions {
        users: vec![
            ("user".into(), "pass".into()),
            // Non-ASCII and a quote: LOGIN must send a literal.
            ("u2".into(), "pä ss\"wörd".into()),
        ],
        ..DovecotOptions::default()
    }
}

#[test]
fn login_and_plain_over_implicit_tls_and_starttls() {
    let Some(d) = support::dovecot::start(users()) else {
        return;
    };
    support::run_with_timeout(LIMIT, async {
        for (tls, port) in [
            (TlsMode::Implicit, d.imaps_port()),
            (TlsMode::StartTls, d.imap_port()),
        ] {
            for auth in [AuthMechanism::Login, AuthMechanism::Plain] {
                for (user, pw) in [("user", "pass"), ("u2", "pä ss\"wörd")] {
                    let mut o = support::dovecot::connect_opts(&d, user);
                    o.tls = tls;
                    o.port = port;
                    o.auth = auth;
                    let s = connect(&o, &secret(pw))
                        .await
                        .unwrap_or_else(|e| panic!("{tls:?} {auth:?} {user}: {e:?}"));
                    assert!(
                        s.has_capability("IDLE"),
                        "post-login capabilities: {:?}",
                        s.capabilities()
                    );
                    s.logout().await.unwrap();
                }
            }
        }
    });
}

#[test]
fn wrong_password_is_an_auth_error_naming_the_account_without_the_password() {
    let Some(d) = support::dovecot::start(users()) else {
        return;
    };
    support::run_with_timeout(LIMIT, async {
        for auth in [AuthMechanism::Login, AuthMechanism::Plain] {
            let mut o = support::dovecot::connect_opts(&d, "user");
            o.account = "personal".into();
            o.auth = auth;
            let err = connect(&o, &secret("Wr0ngSecret")).await.unwrap_err();
            assert!(
                matches!(err, ImapError::Auth { ref account, .. } if account == "personal"),
                "{err:?}"
            );
            assert!(!err.is_transient());
            let text = format!("{err} {err:?}");
            assert!(text.contains("personal"), "{text}");
            assert!(!text.contains("Wr0ngSecret"), "{text}");
        }
    });
}

#[test]
fn plaintext_needs_allow_insecure() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    support::run_with_timeout(LIMIT, async {
        let mut o = support::dovecot::connect_opts(&d, "user");
        o.tls = TlsMode::None;
        o.port = d.imap_port();
        let err = connect(&o, &secret("pass")).await.unwrap_err();
        assert!(matches!(err, ImapError::Insecure), "{err:?}");
        o.allow_insecure = true;
        let s = connect(&o, &secret("pass")).await.unwrap();
        s.logout().await.unwrap();
    });
}

#[test]
fn wrong_ca_and_missing_ca_are_refused() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other = support::dovecot::unrelated_ca(dir.path());
    support::run_with_timeout(LIMIT, async {
        for (tls, port) in [
            (TlsMode::Implicit, d.imaps_port()),
            (TlsMode::StartTls, d.imap_port()),
        ] {
            for ca in [Some(other.clone()), None] {
                let mut o = support::dovecot::connect_opts(&d, "user");
                o.tls = tls;
                o.port = port;
                o.ca_file = ca.clone();
                let err = connect(&o, &secret("pass")).await.unwrap_err();
                assert!(
                    matches!(err, ImapError::Certificate { .. }),
                    "{tls:?} {ca:?}: {err:?}"
                );
                assert!(!err.is_transient());
                assert!(
                    !err.is_auth_failure(),
                    "a TLS failure is not a login failure"
                );
                // The error says what to do, not only what rustls found.
                let text = err.to_string();
                assert!(text.contains("localhost"), "{text}");
                assert!(text.contains("ca_file"), "{text}");
                match &ca {
                    None => assert!(
                        text.contains("not signed by a certificate authority this system trusts"),
                        "{text}"
                    ),
                    Some(path) => assert!(text.contains(&path.display().to_string()), "{text}"),
                }
            }
        }
    });
}

#[test]
fn connecting_by_ip_in_the_san_works() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    support::run_with_timeout(LIMIT, async {
        let mut o = support::dovecot::connect_opts(&d, "user");
        o.host = "127.0.0.1".into();
        connect(&o, &secret("pass"))
            .await
            .unwrap()
            .logout()
            .await
            .unwrap();
    });
}

#[test]
fn refused_port_is_a_transient_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    support::run_with_timeout(LIMIT, async move {
        let o = imapsort::imap::ConnectOptions {
            account: "a".into(),
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::Implicit,
            allow_insecure: false,
            ca_file: None,
            username: "u".into(),
            auth: AuthMechanism::Login,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
        };
        let err = connect(&o, &secret("x")).await.unwrap_err();
        assert!(matches!(err, ImapError::Connect { .. }), "{err:?}");
        assert!(err.is_transient());
    });
}

#[test]
fn secrets_come_from_a_token_helper_command_and_its_failure_names_the_account() {
    let Some(d) = support::dovecot::start_default() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config_path = support::dovecot::write_config(dir.path(), &d, "");
    let with_command = |argv: &str| {
        let text = std::fs::read_to_string(&config_path).unwrap().replace(
            "password: pass",
            &format!("password: {{ command: {argv} }}"),
        );
        imapsort::config::load_str(&text, &config_path).expect("valid config")
    };
    support::run_with_timeout(LIMIT, async {
        let ok = with_command("[printf, \"pass\\n\"]");
        let s = imapsort::imap::connect_account(&ok.accounts[0], dir.path())
            .await
            .unwrap();
        s.logout().await.unwrap();

        let failing = with_command("[\"false\"]");
        let e = imapsort::imap::connect_account(&failing.accounts[0], dir.path())
            .await
            .unwrap_err();
        assert!(
            matches!(e, ImapError::Secret { ref account, .. } if account == "test"),
            "{e:?}"
        );
        assert!(!e.is_transient());
    });
}
