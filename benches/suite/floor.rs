//! The server floor: how long Dovecot itself needs for exactly the commands imapsort sent.
//!
//! [`capture`] puts a recording TCP proxy between imapsort and Dovecot for one untimed sweep
//! and keeps every byte the client sent (LOGIN, SELECT, UID SEARCH, UID FETCH, CREATE, UID MOVE,
//! UID STORE, LOGOUT ...). [`replay`] then sends that script to a fresh copy of the same mailbox
//! (same UIDs) as a minimal client would at best: all of it at once (pipelined), on raw TCP,
//! reading the answers with no parsing beyond finding the last tagged response. What remains is
//! the server's own time, plus one connection set-up.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::raw::read_logical;

/// Runs `client` against a recording proxy to `port`; returns what the busiest connection sent.
pub fn capture(port: u16, client: impl FnOnce(u16)) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let proxy_port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let recorded: Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>> = Arc::default();
    let acceptor = {
        let (stop, recorded) = (stop.clone(), recorded.clone());
        std::thread::spawn(move || {
            let mut pipes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).expect("blocking");
                        let server = TcpStream::connect(("127.0.0.1", port)).expect("to dovecot");
                        let log = Arc::new(Mutex::new(Vec::new()));
                        recorded.lock().expect("lock").push(log.clone());
                        pipes.push(pump(
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                            Some(log),
                        ));
                        pipes.push(pump(server, client, None));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for p in pipes {
                let _ = p.join();
            }
        })
    };
    client(proxy_port);
    stop.store(true, Ordering::Relaxed);
    let _ = acceptor.join();
    let logs = recorded.lock().expect("lock");
    logs.iter()
        .map(|l| l.lock().expect("lock").clone())
        .max_by_key(Vec::len)
        .unwrap_or_default()
}

/// Copies `from` to `to` until EOF, recording when asked.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    log: Option<Arc<Mutex<Vec<u8>>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(log) = &log {
                log.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    })
}

/// The tag of the script's last command.
fn last_tag(script: &[u8]) -> String {
    let text = String::from_utf8_lossy(script);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_owned()
}

/// Sends the whole script at once to `port` and waits for the last command's tagged answer
/// (or the end of the connection). Wall time from connecting; also the number of commands.
pub fn replay(port: u16, script: &[u8]) -> (Duration, usize) {
    let tag = format!("{} ", last_tag(script));
    let commands = String::from_utf8_lossy(script).lines().count();
    let start = Instant::now();
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::with_capacity(1 << 16, stream.try_clone().expect("clone"));
    let mut line = Vec::new();
    read_logical(&mut reader, &mut line).expect("greeting");
    let writer = {
        let mut w = stream;
        let script = script.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&script);
        })
    };
    loop {
        match read_logical(&mut reader, &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.starts_with(tag.as_bytes()) => break,
            Ok(_) => {}
        }
    }
    let took = start.elapsed();
    let _ = writer.join();
    (took, commands)
}

/// The commands of a script, one per line, with long UID sets shortened (for the report).
pub fn summary(script: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(script)
        .lines()
        .map(|l| {
            let mut s: String = l.chars().take(110).collect();
            if l.len() > 110 {
                s.push_str("...");
            }
            s
        })
        .collect()
}

/// Sends the script one command at a time and times each answer: where the server's time
/// goes, by command (`UID FETCH`, `UID MOVE` ...), as (command, count, total).
pub fn profile(port: u16, script: &[u8]) -> Vec<(String, usize, Duration)> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut line = Vec::new();
    read_logical(&mut reader, &mut line).expect("greeting");
    let mut totals: Vec<(String, usize, Duration)> = Vec::new();
    for command in String::from_utf8_lossy(script).lines() {
        let mut words = command.split_whitespace();
        let tag = format!("{} ", words.next().unwrap_or_default());
        let mut verb = words.next().unwrap_or_default().to_uppercase();
        if verb == "UID" {
            verb = format!("UID {}", words.next().unwrap_or_default().to_uppercase());
        }
        let start = Instant::now();
        if writer
            .write_all(format!("{command}\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        loop {
            match read_logical(&mut reader, &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.starts_with(tag.as_bytes()) => break,
                Ok(_) => {}
            }
        }
        let took = start.elapsed();
        match totals.iter_mut().find(|(v, _, _)| *v == verb) {
            Some(t) => {
                t.1 += 1;
                t.2 += took;
            }
            None => totals.push((verb, 1, took)),
        }
    }
    totals.sort_by(|a, b| b.2.cmp(&a.2));
    totals
}
