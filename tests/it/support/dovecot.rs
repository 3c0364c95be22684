//! Starting the private Dovecot from tests: skip loudly when it is not installed, except in CI
//! (`CI` set), where a missing Dovecot fails the test.

use std::path::PathBuf;
use std::time::Duration;

use imapsort::config::{AuthMechanism, TlsMode};
use imapsort::imap::ConnectOptions;
use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

/// `Some(dovecot)` when Dovecot is installed; `None` (after an eprintln) when it is not and we
/// are not in CI; a panic in CI.
pub fn start(opts: DovecotOptions) -> Option<Dovecot> {
    if !Dovecot::available() {
        if std::env::var_os("CI").is_some() {
            panic!("dovecot is not installed, and CI is set: integration tests must not skip");
        }
        eprintln!("SKIPPED: dovecot is not installed (apt-get install dovecot-core dovecot-imapd)");
        return None;
    }
    Some(Dovecot::start(opts).expect("start private dovecot"))
}

/// Default users: user/pass.
pub fn start_default() -> Option<Dovecot> {
    start(DovecotOptions::default())
}

/// Options for implicit TLS against the private server, trusting its CA.
pub fn connect_opts(d: &Dovecot, user: &str) -> ConnectOptions {
    ConnectOptions {
        account: "test".into(),
        host: "localhost".into(),
        port: d.imaps_port(),
        tls: TlsMode::Implicit,
        allow_insecure: false,
        ca_file: Some(d.ca_pem_path()),
        username: user.into(),
        auth: AuthMechanism::Login,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(10),
    }
}

/// A simple RFC 5322 message.
pub fn message(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: sender{n}@example.com\r\nTo: user@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <m{n}@example.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n\
         Body of message {n}.\r\n"
    )
    .into_bytes()
}

/// A path for a CA file that trusts nothing we run.
pub fn unrelated_ca(dir: &std::path::Path) -> PathBuf {
    let (ca, _, _) = imapsort_testkit::dovecot::make_ca_and_leaf(&["localhost"]).unwrap();
    let p = dir.join("other-ca.pem");
    std::fs::write(&p, ca).unwrap();
    p
}

/// A configuration file for `imapsort` pointing at the private Dovecot (account `test`, user
/// `user`/`pass`, implicit TLS trusting its CA, state in `dir/state`), followed by `rules_yaml`
/// (a complete `rules:` section, or empty). Written with mode 0600 so `check` does not warn
/// about the literal password. Returns the file's path.
pub fn write_config(dir: &std::path::Path, d: &Dovecot, rules_yaml: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "settings:\n  state_dir: {state}\naccounts:\n  - name: test\n    host: localhost\n    port: {port}\n    tls: implicit\n    ca_file: {ca}\n    username: user\n    password: pass\n{rules_yaml}",
        state = dir.join("state").display(),
        port = d.imaps_port(),
        ca = d.ca_pem_path().display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
