//! A hostile IMAP server on 127.0.0.1:0: after a normal login it answers a command with
//! garbage, an oversized literal (`{4294967295}`), a line that never ends, an endless stream
//! of untagged data, a trickle, BYE halfway through a FETCH, or NO to MOVE / COPY. The session
//! must fail cleanly (an error, promptly, the session marked unusable where the stream is out
//! of step) and must not buffer without bound: the server counts the bytes the client let it
//! send, and that stays far below what the server tried to send.
//!
//! The simple NO/BYE/stall/garbage transcripts live in tests/it/imap_peer.rs; these are the
//! cases a line-by-line transcript cannot express.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use imapsort::config::{AuthMechanism, TlsMode};
use imapsort::imap::{ConnectOptions, ImapError, Session, connect};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support;

const LIMIT: Duration = Duration::from_secs(60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
const MIB: u64 = 1 << 20;

/// What the server does when the command under test arrives.
enum Hostile {
    /// Send these bytes (the tag `TAG` replaced by the command's tag), then keep reading.
    Reply(Vec<u8>),
    /// Send `head`, then `chunk` over and over until `max` bytes went out or the client
    /// stops reading; then stall.
    Flood {
        head: Vec<u8>,
        chunk: Vec<u8>,
        max: u64,
    },
    /// Send `bytes` one at a time, `every` apart.
    Trickle { bytes: Vec<u8>, every: Duration },
}

/// The server: how much it managed to send for the hostile answer.
struct Server {
    port: u16,
    sent: Arc<AtomicU64>,
    /// The connection's task: it ends once the client has gone.
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// What the server sent in all, once the client (dropped by the caller) has gone and the
    /// server has stopped sending.
    async fn sent_in_all(self) -> u64 {
        self.task.await.expect("the hostile server panicked");
        self.sent.load(Ordering::SeqCst)
    }
}

/// Start a server that logs any user in, answers SELECT and NOOP normally, and answers the
/// first command starting with `trigger` (after the tag) the hostile way.
async fn server(trigger: &'static str, hostile: Hostile) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let task = tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (r, mut w) = tcp.into_split();
        let mut r = BufReader::new(r);
        let caps = "* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS LITERAL+\r\n";
        if w.write_all(b"* OK ready\r\n").await.is_err() {
            return;
        }
        let mut hostile = Some(hostile);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let Some((tag, command)) = line.trim_end().split_once(' ') else {
                return;
            };
            let upper = command.to_ascii_uppercase();
            let reply: Vec<u8> = if upper.starts_with(trigger) && hostile.is_some() {
                match hostile.take().unwrap() {
                    Hostile::Reply(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).replace("TAG", tag);
                        // Binary replies keep their bytes: replace only in valid UTF-8.
                        if std::str::from_utf8(&bytes).is_ok() {
                            text.into_bytes()
                        } else {
                            bytes
                        }
                    }
                    Hostile::Flood { head, chunk, max } => {
                        if w.write_all(&head).await.is_err() {
                            return;
                        }
                        let mut total = head.len() as u64;
                        while total < max {
                            if w.write_all(&chunk).await.is_err() {
                                break;
                            }
                            total += chunk.len() as u64;
                            counter.store(total, Ordering::SeqCst);
                        }
                        // Stall with the socket open until the client leaves.
                        let mut sink = String::new();
                        while matches!(r.read_line(&mut sink).await, Ok(n) if n > 0) {
                            sink.clear();
                        }
                        return;
                    }
                    Hostile::Trickle { bytes, every } => {
                        for b in bytes {
                            if w.write_all(&[b]).await.is_err() {
                                return;
                            }
                            counter.fetch_add(1, Ordering::SeqCst);
                            // The scenario: a server that sends one byte at a time.
                            tokio::time::sleep(every).await;
                        }
                        Vec::new()
                    }
                }
            } else if upper.starts_with("CAPABILITY") {
                format!("{caps}{tag} OK done\r\n").into_bytes()
            } else if upper.starts_with("LOGIN") {
                format!("{tag} OK logged in\r\n").into_bytes()
            } else if upper.starts_with("SELECT") || upper.starts_with("EXAMINE") {
                format!(
                    "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 4] ok\r\n{tag} OK [READ-WRITE] done\r\n"
                )
                .into_bytes()
            } else if upper.starts_with("LOGOUT") {
                format!("* BYE bye\r\n{tag} OK bye\r\n").into_bytes()
            } else {
                format!("{tag} OK done\r\n").into_bytes()
            };
            if w.write_all(&reply).await.is_err() {
                return;
            }
        }
    });
    Server { port, sent, task }
}

async fn login(port: u16) -> Session {
    let opts = ConnectOptions {
        account: "hostile".into(),
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        allow_insecure: true,
        ca_file: None,
        username: "user".into(),
        auth: AuthMechanism::Login,
        connect_timeout: Duration::from_secs(3),
        command_timeout: COMMAND_TIMEOUT,
    };
    let mut s = connect(&opts, &SecretString::from("pass".to_string()))
        .await
        .expect("login to the hostile server");
    s.select("INBOX").await.expect("select");
    s
}

/// The error must come within the command timeout (plus slack for a loaded machine).
fn assert_prompt(started: Instant) {
    let took = started.elapsed();
    assert!(
        took < COMMAND_TIMEOUT + Duration::from_secs(5),
        "took {took:?}"
    );
}

#[test]
fn an_oversized_literal_is_refused_without_buffering_it() {
    support::run_with_timeout(LIMIT, async {
        // 4 GiB announced; the server would send 512 MiB of it as fast as the client reads.
        let srv = server(
            "UID FETCH",
            Hostile::Flood {
                head: b"* 1 FETCH (UID 1 BODY[] {4294967295}\r\n".to_vec(),
                chunk: vec![b'a'; 64 * 1024],
                max: 512 * MIB,
            },
        )
        .await;
        let mut s = login(srv.port).await;
        let started = Instant::now();
        let e = s.uid_fetch("1", "(UID BODY.PEEK[])").await.unwrap_err();
        assert_prompt(started);
        assert!(matches!(e, ImapError::Protocol(_)), "{e:?}");
        assert!(
            !s.is_usable(),
            "the stream is out of step after the refusal"
        );
        drop(s);
        let sent = srv.sent_in_all().await;
        assert!(
            sent < 96 * MIB,
            "the client accepted {} MiB of a literal it should have refused",
            sent / MIB
        );
    });
}

#[test]
fn a_literal_just_over_the_response_limit_is_refused() {
    support::run_with_timeout(LIMIT, async {
        // 100 MiB: a number that fits the parser, far above anything imapsort fetches
        // (message bodies are fetched partially, 256 KiB at most).
        let srv = server(
            "UID FETCH",
            Hostile::Flood {
                head: format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\n", 100 * MIB).into_bytes(),
                chunk: vec![b'b'; 64 * 1024],
                max: 101 * MIB,
            },
        )
        .await;
        let mut s = login(srv.port).await;
        let e = s.uid_fetch("1", "(UID BODY.PEEK[])").await.unwrap_err();
        assert!(matches!(e, ImapError::Protocol(_)), "{e:?}");
        drop(s);
        assert!(srv.sent_in_all().await < 96 * MIB);
    });
}

#[test]
fn a_line_that_never_ends_is_refused_at_the_limit() {
    support::run_with_timeout(LIMIT, async {
        let srv = server(
            "UID SEARCH",
            Hostile::Flood {
                head: b"* SEARCH 1".to_vec(),
                chunk: b" 1 2 3 4 5 6 7 8 9".repeat(4096),
                max: 512 * MIB,
            },
        )
        .await;
        let mut s = login(srv.port).await;
        let started = Instant::now();
        let e = s.uid_search("ALL").await.unwrap_err();
        assert_prompt(started);
        assert!(matches!(e, ImapError::Protocol(_)), "{e:?}");
        assert!(!s.is_usable());
        drop(s);
        assert!(srv.sent_in_all().await < 96 * MIB);
    });
}

#[test]
fn an_endless_stream_of_untagged_responses_is_bounded() {
    support::run_with_timeout(LIMIT, async {
        // Each response is complete and well-formed, so no per-response limit trips; the
        // tagged completion never comes.
        let srv = server(
            "NOOP",
            Hostile::Flood {
                head: Vec::new(),
                chunk: b"* 1 EXISTS\r\n* OK [ALERT] still here\r\n".repeat(2048),
                max: 2048 * MIB,
            },
        )
        .await;
        let mut s = login(srv.port).await;
        let started = Instant::now();
        let e = s.noop().await.unwrap_err();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(40), "took {took:?}");
        assert!(matches!(e, ImapError::Protocol(_)), "{e:?}");
        drop(s);
        let sent = srv.sent_in_all().await;
        assert!(
            sent < 300 * MIB,
            "the client kept {} MiB of untagged responses for one command",
            sent / MIB
        );
    });
}

#[test]
fn binary_garbage_is_a_protocol_error_and_poisons_the_session() {
    support::run_with_timeout(LIMIT, async {
        let mut junk = b"\x00\xff\xfe garbage \x01\x02".to_vec();
        junk.extend((0..4096u32).map(|i| (i * 7919 % 256) as u8));
        junk.extend_from_slice(b"\r\nTAG OK done\r\n");
        let srv = server("UID SEARCH", Hostile::Reply(junk)).await;
        let mut s = login(srv.port).await;
        let started = Instant::now();
        let e = s.uid_search("ALL").await.unwrap_err();
        assert_prompt(started);
        assert!(
            matches!(e, ImapError::Protocol(_) | ImapError::Timeout(..)),
            "{e:?}"
        );
        assert!(!s.is_usable());
        // Later commands fail fast rather than read the rest of the garbage.
        let e = s.noop().await.unwrap_err();
        assert!(matches!(e, ImapError::ConnectionLost(_)), "{e:?}");
    });
}

#[test]
fn a_trickling_server_times_out_within_the_command_timeout() {
    support::run_with_timeout(LIMIT, async {
        // A slowloris: a well-formed answer, one byte every 100 ms, never a silence long
        // enough for a per-read timeout to fire.
        let srv = server(
            "UID SEARCH",
            Hostile::Trickle {
                bytes: b"* SEARCH 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24\r\nA5 OK done\r\n".to_vec(),
                every: Duration::from_millis(100),
            },
        )
        .await;
        let mut s = login(srv.port).await;
        let started = Instant::now();
        let e = s.uid_search("ALL").await.unwrap_err();
        assert_prompt(started);
        assert!(matches!(e, ImapError::Timeout(..)), "{e:?}");
        assert!(e.is_transient());
        assert!(!s.is_usable());
    });
}

#[test]
fn bye_halfway_through_a_fetch_is_a_connection_loss_not_a_short_result() {
    support::run_with_timeout(LIMIT, async {
        let srv = server(
            "UID FETCH",
            Hostile::Reply(
                b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (UID 2 FLAGS ())\r\n* BYE shutting down for maintenance\r\n"
                    .to_vec(),
            ),
        )
        .await;
        let mut s = login(srv.port).await;
        // The server keeps the socket open after BYE (some do, until their own timeout).
        let e = s.uid_fetch("1:3", "(UID FLAGS)").await.unwrap_err();
        assert!(
            matches!(e, ImapError::ConnectionLost(_) | ImapError::Timeout(..)),
            "{e:?}"
        );
        assert!(e.is_transient());
    });
}

#[test]
fn no_to_move_and_copy_are_errors_with_their_codes_and_the_session_stays_usable() {
    for (command, reply, code) in [
        (
            "UID MOVE",
            "TAG NO [TRYCREATE] Mailbox doesn't exist: Nowhere\r\n",
            "TRYCREATE",
        ),
        (
            "UID COPY",
            "TAG NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n",
            "OVERQUOTA",
        ),
        ("UID STORE", "TAG NO [CANNOT] read-only\r\n", "CANNOT"),
    ] {
        support::run_with_timeout(LIMIT, async {
            let srv = server(command, Hostile::Reply(reply.as_bytes().to_vec())).await;
            let mut s = login(srv.port).await;
            let e = match command {
                "UID MOVE" => s.uid_move("1", "Nowhere").await,
                "UID COPY" => s.uid_copy("1", "Full").await,
                _ => s.uid_store("1", "+FLAGS.SILENT (\\Seen)").await,
            }
            .unwrap_err();
            assert!(matches!(e, ImapError::No { .. }), "{command}: {e:?}");
            assert_eq!(e.no_code(), Some(code), "{command}: {e:?}");
            assert!(s.is_usable(), "{command}: a NO leaves the stream in step");
            s.noop().await.expect("the next command works");
        });
    }
}
