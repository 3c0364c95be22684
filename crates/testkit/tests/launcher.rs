//! The launcher against the real Dovecot: the options other tests build on (extra passdbs and
//! mechanisms, seeding into a non-ASCII mailbox, restart on the same ports).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use imapsort_testkit::dovecot::{Dovecot, DovecotOptions};

/// `None` (skipped loudly) when Dovecot is not installed, except in CI, where that fails.
fn start(opts: DovecotOptions) -> Option<Dovecot> {
    if !Dovecot::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "dovecot is not installed, and CI is set: tests must not skip"
        );
        eprintln!("SKIPPED: dovecot is not installed (apt-get install dovecot-core dovecot-imapd)");
        return None;
    }
    Some(Dovecot::start(opts).expect("start private dovecot"))
}

/// Sends `commands` (tagged a1, a2, …) over plaintext IMAP; returns everything the server said.
fn converse(d: &Dovecot, commands: &[&str]) -> String {
    let stream = TcpStream::connect(("127.0.0.1", d.imap_port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut transcript = String::new();
    reader.read_line(&mut transcript).unwrap();
    for (i, command) in commands.iter().enumerate() {
        let tag = format!("a{}", i + 1);
        write!(writer, "{tag} {command}\r\n").unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                return transcript;
            }
            transcript.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                break;
            }
        }
    }
    transcript
}

#[test]
fn an_extra_passdb_adds_its_mechanisms_and_password_logins_still_work() {
    // Dovecot's oauth2 passdb (DESIGN.md), pointing at an introspection URL nobody serves:
    // enough to show the configuration is accepted and ordered as Dovecot wants it.
    let dir = tempfile::tempdir().unwrap();
    let oauth2_conf = dir.path().join("oauth2.conf");
    std::fs::write(
        &oauth2_conf,
        "introspection_mode = post\nintrospection_url = http://127.0.0.1:9/introspect\n\
         username_attribute = username\nactive_attribute = active\nactive_value = true\n\
         force_introspection = yes\n",
    )
    .unwrap();
    let Some(d) = start(DovecotOptions {
        extra_passdb: format!(
            "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
            oauth2_conf.display()
        ),
        extra_mechanisms: vec!["xoauth2".into(), "oauthbearer".into()],
        ..DovecotOptions::default()
    }) else {
        return;
    };
    let said = converse(&d, &["CAPABILITY", "LOGIN user pass", "LOGOUT"]);
    assert!(said.contains("AUTH=XOAUTH2"), "{said}");
    assert!(said.contains("AUTH=OAUTHBEARER"), "{said}");
    assert!(said.contains("a2 OK"), "{said}\n{}", d.log());
}

#[test]
fn seeded_mail_in_a_non_ascii_mailbox_survives_a_restart_on_the_same_ports() {
    let Some(mut d) = start(DovecotOptions::default()) else {
        return;
    };
    let message =
        b"From: a@example.com\r\nSubject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nbody\r\n";
    d.seed("user", "Büro/Rechnungen €", &[message.to_vec()])
        .unwrap();
    let ports = (d.imap_port(), d.imaps_port());
    d.restart().unwrap();
    assert_eq!((d.imap_port(), d.imaps_port()), ports);
    // The wire name is modified UTF-7, the same name the launcher wrote on disk.
    let said = converse(
        &d,
        &[
            "LOGIN user pass",
            "STATUS \"B&APw-ro/Rechnungen &IKw-\" (MESSAGES)",
            "LOGOUT",
        ],
    );
    assert!(said.contains("(MESSAGES 1)"), "{said}\n{}", d.log());
}

/// Polls `cond` every 20 ms for up to 10 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sessions_counts_a_logged_in_client_until_it_leaves() {
    let Some(d) = start(DovecotOptions::default()) else {
        return;
    };
    assert_eq!(d.sessions("user").unwrap(), 0);
    let stream = TcpStream::connect(("127.0.0.1", d.imap_port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    writer.write_all(b"a1 LOGIN user pass\r\n").unwrap();
    while !line.starts_with("a1 ") {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    assert!(line.starts_with("a1 OK"), "{line}");
    eventually("one session", || d.sessions("user").unwrap() == 1);
    assert_eq!(d.sessions("nobody").unwrap(), 0);
    drop((reader, writer));
    eventually("no session", || d.sessions("user").unwrap() == 0);
}
