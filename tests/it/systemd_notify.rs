//! `daemon::notify` against a real Unix datagram socket standing in for systemd.
//!
//! The environment is process-global, so the notifying side runs in a child process (this
//! test binary re-run with `--exact systemd_notify::child_sends_notifications`) whose environment is set at
//! spawn: no `set_var`, and no race with other tests.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use imapsort::daemon::notify;

const CHILD: &str = "IMAPSORT_NOTIFY_TEST_CHILD";

/// Runs only as the child: sends one of each notification, prints the watchdog interval.
#[test]
fn child_sends_notifications() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    notify::ready();
    notify::reloading();
    notify::status("sorting 2 accounts\nline two");
    notify::watchdog();
    notify::stopping();
    println!("WATCHDOG_INTERVAL={:?}", notify::watchdog_interval());
}

fn run_child(envs: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        &crate::support::child_test(module_path!(), "child_sends_notifications"),
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env_remove("NOTIFY_SOCKET")
    .env_remove("WATCHDOG_USEC")
    .env_remove("WATCHDOG_PID");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn receive_all(sock: &UnixDatagram) -> Vec<String> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    messages
}

#[test]
fn each_notification_arrives_as_one_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let stdout = run_child(&[
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "20000000"),
    ]);
    let messages = receive_all(&sock);
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert_eq!(messages[0], "READY=1\n");
    let reload: Vec<&str> = messages[1].lines().collect();
    assert_eq!(reload[0], "RELOADING=1");
    let usec = reload[1]
        .strip_prefix("MONOTONIC_USEC=")
        .expect("MONOTONIC_USEC sent");
    assert!(usec.parse::<u64>().unwrap() > 0);
    assert_eq!(messages[2], "STATUS=sorting 2 accounts line two\n");
    assert_eq!(messages[3], "WATCHDOG=1\n");
    assert_eq!(messages[4], "STOPPING=1\n");
    assert!(stdout.contains("WATCHDOG_INTERVAL=Some(20s)"), "{stdout}");
}

#[test]
fn abstract_socket_names_are_supported() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    let name = format!("imapsort-notify-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    run_child(&[("NOTIFY_SOCKET", &format!("@{name}"))]);
    let messages = receive_all(&sock);
    assert_eq!(messages.first().map(String::as_str), Some("READY=1\n"));
    assert_eq!(messages.len(), 5);
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
    let stdout = run_child(&[("WATCHDOG_USEC", "5000000"), ("WATCHDOG_PID", "1")]);
    // WATCHDOG_PID names another process: the watchdog is not ours.
    assert!(stdout.contains("WATCHDOG_INTERVAL=None"), "{stdout}");
}
