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

/// What one proxied connection's client sent.
type Log = Arc<Mutex<Vec<u8>>>;

/// Runs `client` against a recording proxy to `port`; returns what the busiest connection sent.
pub fn capture(port: u16, client: impl FnOnce(u16)) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let proxy_port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let recorded: Arc<Mutex<Vec<Log>>> = Arc::default();
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
    totals.sort_by_key(|t| std::cmp::Reverse(t.2));
    totals
}

/// The script with every `UID MOVE set mailbox` turned into `UID COPY set mailbox`, and one
/// `UID STORE +FLAGS.SILENT (\Deleted)` plus one `UID EXPUNGE` over all moved UIDs before the
/// end: what the same sweep would cost the server if moves shared one expunge of the source.
pub fn batched_expunge(script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let mut out = String::new();
    let mut moved: Vec<u32> = Vec::new();
    let mut tail = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        if words.len() == 4
            && words[1].eq_ignore_ascii_case("UID")
            && words[2].eq_ignore_ascii_case("MOVE")
        {
            let (set, mailbox) = words[3].split_once(' ').unwrap_or((words[3], ""));
            moved.extend(parse_set(set));
            out.push_str(&format!("{} UID COPY {set} {mailbox}\r\n", words[0]));
        } else if line
            .split_whitespace()
            .nth(1)
            .is_some_and(|w| w.eq_ignore_ascii_case("LOGOUT"))
        {
            tail.push_str(line);
            tail.push_str("\r\n");
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    moved.sort_unstable();
    moved.dedup();
    for (i, set) in compress(&moved, 7500).iter().enumerate() {
        out.push_str(&format!(
            "XS{i} UID STORE {set} +FLAGS.SILENT (\\Deleted)\r\nXE{i} UID EXPUNGE {set}\r\n"
        ));
    }
    out.push_str(&tail);
    out.into_bytes()
}

fn parse_set(set: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    v.extend(a.min(b)..=a.max(b));
                }
            }
            None => v.extend(part.parse::<u32>().ok()),
        }
    }
    v
}

/// Sorted UIDs as `a:b,c` sets of at most `max` characters each.
fn compress(uids: &[u32], max: usize) -> Vec<String> {
    let mut sets = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    while i < uids.len() {
        let mut j = i;
        while j + 1 < uids.len() && uids[j + 1] == uids[j] + 1 {
            j += 1;
        }
        let part = if j > i {
            format!("{}:{}", uids[i], uids[j])
        } else {
            uids[i].to_string()
        };
        if !cur.is_empty() && cur.len() + part.len() + 1 > max {
            sets.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(&part);
        i = j + 1;
    }
    if !cur.is_empty() {
        sets.push(cur);
    }
    sets
}

/// Variants of a captured script, for finding what a change to imapsort's commands would save
/// on the server (`IMAPSORT_BENCH_VARIANTS=1`): each is replayed and profiled like the script.
pub fn variants(script: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let text = String::from_utf8_lossy(script).into_owned();
    let edit = |f: &dyn Fn(&str) -> Option<String>| -> Vec<u8> {
        let mut out = String::new();
        for line in text.lines() {
            if let Some(l) = f(line) {
                out.push_str(&l);
                out.push_str("\r\n");
            }
        }
        out.into_bytes()
    };
    let is = |line: &str, verb: &str| {
        line.split_whitespace()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
            .eq_ignore_ascii_case(verb)
    };
    let only_from = |line: &str| {
        Some(
            line.replace("Message-ID ", "")
                .replace(" Date)", ")")
                .replace(" Date ", " "),
        )
    };
    let drop = |item: &'static str| {
        move |l: &str| {
            Some(if l.contains(" UID FETCH ") {
                l.replace(item, "")
            } else {
                l.to_owned()
            })
        }
    };
    // Every FETCH asks for `items` instead of what imapsort asked for.
    let items_only = |items: &'static str| {
        move |l: &str| {
            Some(match l.find(" (UID ") {
                Some(at) if l.contains(" UID FETCH ") => format!("{} (UID {items})", &l[..at]),
                _ => l.to_owned(),
            })
        }
    };
    vec![
        ("as sent", script.to_vec()),
        ("FETCH without INTERNALDATE", edit(&drop(" INTERNALDATE"))),
        ("FETCH without RFC822.SIZE", edit(&drop(" RFC822.SIZE"))),
        ("FETCH without FLAGS", edit(&drop(" FLAGS"))),
        (
            "FETCH without FLAGS RFC822.SIZE INTERNALDATE",
            edit(&drop(" FLAGS RFC822.SIZE INTERNALDATE")),
        ),
        ("FETCH without Date", edit(&drop(" Date"))),
        ("FETCH without Message-ID and Date", edit(&only_from)),
        (
            "FETCH of the header fields only",
            edit(&|l| Some(only_from(l)?.replace("UID FLAGS RFC822.SIZE INTERNALDATE ", "UID "))),
        ),
        // Dovecot keeps in its cache the header fields a search read, so this FETCH after a
        // `SEARCH FROM` reads no message file; Message-ID and Subject make it read them all.
        (
            "FETCH of From only",
            edit(&items_only("BODY.PEEK[HEADER.FIELDS (From)]")),
        ),
        ("FETCH of ENVELOPE", edit(&items_only("ENVELOPE"))),
        (
            "no FETCH",
            edit(&|l| (!is(l, "UID FETCH")).then(|| l.to_owned())),
        ),
        (
            "no SEARCH ALL / DELETED",
            edit(&|l| {
                let u = l.to_uppercase();
                (!(u.ends_with("UID SEARCH ALL") || u.ends_with("UID SEARCH DELETED")))
                    .then(|| l.to_owned())
            }),
        ),
        (
            "moves as COPY + STORE + UID EXPUNGE",
            batched_expunge(script),
        ),
        // What a second `UID MOVE` costs Dovecot (it syncs the source mailbox per MOVE): the
        // price of sending the messages whose intents are durable before the rest.
        ("each UID MOVE in two halves", edit(&move_in_halves)),
        // What the two one-message FETCHes before a header search (pass::prime_cache) cost
        // or save the search and the verifying FETCH after it.
        (
            "no cache FETCH before the search",
            edit(&|l| (!is(l, "UID FETCH") || l.contains(" (UID ")).then(|| l.to_owned())),
        ),
    ]
}

/// `A9 UID MOVE set mailbox` as two commands, `A9` and `A9b`, each with half of the UIDs.
fn move_in_halves(line: &str) -> Option<String> {
    let words: Vec<&str> = line.splitn(4, ' ').collect();
    if words.len() != 4
        || !words[1].eq_ignore_ascii_case("UID")
        || !words[2].eq_ignore_ascii_case("MOVE")
    {
        return Some(line.to_owned());
    }
    let (set, mailbox) = words[3].split_once(' ').unwrap_or((words[3], ""));
    let uids = parse_set(set);
    if uids.len() < 2 {
        return Some(line.to_owned());
    }
    let (a, b) = uids.split_at(uids.len() / 2);
    let tag = words[0];
    let one = compress(a, usize::MAX).concat();
    let two = compress(b, usize::MAX).concat();
    Some(format!(
        "{tag} UID MOVE {one} {mailbox}\r\n{tag}b UID MOVE {two} {mailbox}"
    ))
}
