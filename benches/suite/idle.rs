//! Scenario 8: 10,000 IDLE connections of one `imapsort run`, against a minimal IDLE server
//! written for the benchmark (Dovecot cannot hold 10,000 sessions on a small machine): RSS per
//! connection, CPU while idle, and the latency from an `EXISTS` the server sends to the first
//! command of the pass it starts.
//!
//! The server speaks just enough IMAP4rev1 over plaintext for imapsort's worker: a greeting
//! with capabilities, LOGIN, SELECT of an empty mailbox, an empty SEARCH, IDLE until DONE, and
//! OK to anything else. One tokio task per connection; the harness can push `* 1 EXISTS` into
//! any idling connection and learn when the next command arrives.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::daemon::{Daemon, open_files_limit, p50_p99_ms, write_private};

/// An `EXISTS` to send; the instant the next command arrived comes back.
type Poke = oneshot::Sender<Instant>;

/// The server's handle.
#[derive(Clone, Default)]
struct Server {
    /// Connections in IDLE now.
    idling: Arc<AtomicUsize>,
    /// By connection number: where to send an `EXISTS` while it idles.
    pokes: Arc<Mutex<HashMap<usize, mpsc::Sender<Poke>>>>,
}

impl Server {
    async fn start() -> (Server, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = Server::default();
        let s = server.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                n += 1;
                tokio::spawn(s.clone().serve(stream, n));
            }
        });
        (server, port)
    }

    async fn serve(self, stream: tokio::net::TcpStream, id: usize) {
        let _ = stream.set_nodelay(true);
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::with_capacity(512, r);
        let (poke_tx, mut poke_rx) = mpsc::channel::<Poke>(1);
        self.pokes.lock().unwrap().insert(id, poke_tx);
        let caps = "IMAP4rev1 IDLE UIDPLUS MOVE LITERAL+";
        let _ = w
            .write_all(format!("* OK [CAPABILITY {caps}] bench server ready\r\n").as_bytes())
            .await;
        let mut line = String::new();
        // Set by a poke: answered when the next command (after DONE) arrives.
        let mut waiting: Option<Poke> = None;
        loop {
            line.clear();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let mut words = line.split_whitespace();
            let tag = words.next().unwrap_or("*").to_owned();
            let verb = words.next().unwrap_or("").to_ascii_uppercase();
            if let Some(w) = waiting.take() {
                let _ = w.send(Instant::now());
            }
            let reply = match verb.as_str() {
                "CAPABILITY" => format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n"),
                "LOGIN" => format!("{tag} OK [CAPABILITY {caps}] logged in\r\n"),
                "SELECT" | "EXAMINE" => format!(
                    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* 0 EXISTS\r\n\
                     * OK [UIDVALIDITY 1] ok\r\n* OK [UIDNEXT 1] ok\r\n{tag} OK [READ-WRITE] selected\r\n"
                ),
                "UID" | "SEARCH" => {
                    let sub = words.next().unwrap_or("").to_ascii_uppercase();
                    if verb == "SEARCH" || sub == "SEARCH" {
                        format!("* SEARCH\r\n{tag} OK done\r\n")
                    } else {
                        format!("{tag} OK done\r\n")
                    }
                }
                "LOGOUT" => {
                    let _ = w
                        .write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes())
                        .await;
                    break;
                }
                "IDLE" => {
                    if w.write_all(b"+ idling\r\n").await.is_err() {
                        break;
                    }
                    self.idling.fetch_add(1, Ordering::SeqCst);
                    // Until DONE, or a poke: then EXISTS, and wait for DONE.
                    line.clear();
                    let done = tokio::select! {
                        r = r.read_line(&mut line) => r,
                        Some(poke) = poke_rx.recv() => {
                            if w.write_all(b"* 1 EXISTS\r\n").await.is_err() {
                                break;
                            }
                            waiting = Some(poke);
                            r.read_line(&mut line).await
                        }
                    };
                    self.idling.fetch_sub(1, Ordering::SeqCst);
                    match done {
                        Ok(n) if n > 0 => format!("{tag} OK idle done\r\n"),
                        _ => break,
                    }
                }
                _ => format!("{tag} OK done\r\n"),
            };
            if w.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        self.pokes.lock().unwrap().remove(&id);
    }

    fn idling(&self) -> usize {
        self.idling.load(Ordering::SeqCst)
    }

    /// Send `* 1 EXISTS` to an idling connection; the time until its next command.
    async fn poke(&self, id: usize) -> Option<Duration> {
        let tx = self.pokes.lock().unwrap().get(&id)?.clone();
        let (done_tx, done_rx) = oneshot::channel();
        let sent = Instant::now();
        tx.send(done_tx).await.ok()?;
        let at = tokio::time::timeout(Duration::from_secs(10), done_rx)
            .await
            .ok()?
            .ok()?;
        Some(at.saturating_duration_since(sent))
    }
}

fn config(port: u16, accounts: usize, state: &Path) -> String {
    let mut y = format!(
        "settings:\n  state_dir: {}\n  metrics_listen: 127.0.0.1:0\naccounts:\n",
        state.display()
    );
    for i in 0..accounts {
        let _ = write!(
            y,
            "  - name: c{i:05}\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    allow_insecure: true\n    username: c{i}\n    password: pass\n    trash: Trash\n    archive: Archive\n"
        );
    }
    y.push_str(
        "rules:\n  - name: push\n    when: { from: push@bench.example }\n    then: { move: Pushed }\n",
    );
    y
}

/// What one run showed.
pub struct Idle {
    pub connections: usize,
    pub connected_after: Duration,
    pub rss_kb: u64,
    pub baseline_rss_kb: u64,
    pub idle_cpu: f64,
    pub idle_window: Duration,
    pub latency: Vec<Duration>,
}

/// One daemon over `accounts` connections: (time to all idling, RSS, idle CPU, latencies).
async fn one(
    bin: &str,
    dir: &Path,
    accounts: usize,
    idle: Option<Duration>,
    samples: usize,
) -> (Duration, u64, f64, Vec<Duration>) {
    let (server, port) = Server::start().await;
    let state = dir.join(format!("idle-state-{accounts}"));
    let _ = std::fs::remove_dir_all(&state);
    let cfg = dir.join(format!("idle-{accounts}.yaml"));
    write_private(&cfg, &config(port, accounts, &state));
    let log = dir.join(format!("idle-{accounts}.log"));
    let started = Instant::now();
    let (bin, cfg2, log2) = (bin.to_owned(), cfg.clone(), log.clone());
    let daemon = tokio::task::spawn_blocking(move || {
        Daemon::start(&bin, &cfg2, &log2, Duration::from_secs(60))
    })
    .await
    .expect("start");
    while server.idling() < accounts {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "only {} of {accounts} connections idle",
            server.idling()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected_after = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = daemon.rss_kb();
    let cpu = match idle {
        Some(window) => {
            let d = &daemon;
            tokio::task::block_in_place(|| d.cpu_share(window))
        }
        None => 0.0,
    };
    let mut latency = Vec::new();
    let ids: Vec<usize> = server.pokes.lock().unwrap().keys().copied().collect();
    for k in 0..samples {
        let id = ids[(k * 7919) % ids.len()];
        // The connection is idle again (its pass found nothing) before it is poked again.
        if let Some(d) = server.poke(id).await {
            latency.push(d);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| daemon.stop());
    (connected_after, rss, cpu, latency)
}

pub fn run(bin: &str, dir: &Path, connections: usize, samples: usize, idle: Duration) -> Idle {
    // The server's side of every connection is in this process (imapsort's side in its own).
    let need = connections as u64 + 1000;
    if open_files_limit() < need {
        // As root, raise this process's limit (the server's side of every connection).
        let _ = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={need}:{need}"),
            ])
            .status();
    }
    assert!(
        open_files_limit() >= need,
        "the idle scenario needs {need} open files (ulimit -n); have {}",
        open_files_limit()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (_, baseline_rss_kb, _, _) = one(bin, dir, 1, None, 0).await;
        let (connected_after, rss_kb, idle_cpu, latency) =
            one(bin, dir, connections, Some(idle), samples).await;
        eprintln!(
            "  idle: {connections} connections idle after {connected_after:?}, RSS {:.1} MB \
             (1 connection: {:.1} MB), idle CPU {:.2} %, latency (ms) {:?}",
            rss_kb as f64 / 1024.0,
            baseline_rss_kb as f64 / 1024.0,
            idle_cpu * 100.0,
            p50_p99_ms(&latency)
        );
        Idle {
            connections,
            connected_after,
            rss_kb,
            baseline_rss_kb,
            idle_cpu,
            idle_window: idle,
            latency,
        }
    })
}

pub fn table(report: &mut String, s: &Idle) {
    let per = (s.rss_kb.saturating_sub(s.baseline_rss_kb)) as f64 * 1.024
        / (s.connections.max(2) - 1) as f64;
    let (m, p) = p50_p99_ms(&s.latency);
    let _ = writeln!(
        report,
        "### 8. {} IDLE connections against a minimal IDLE server (plaintext, max_connecting 8)\n\n\
         | measure | result | target |\n|---|---|---|\n\
         | all idling after start | {:.1} s | |\n\
         | RSS | {:.1} MB (1 connection: {:.1} MB) | |\n\
         | RSS per further connection | {:.1} KB | < 50 KB |\n\
         | CPU while idle ({} s) | {:.2} % of a core | < 1 % |\n\
         | EXISTS to the pass's first command, p50 / p99 ({} samples) | {:.2} / {:.2} ms | |\n",
        s.connections,
        s.connected_after.as_secs_f64(),
        s.rss_kb as f64 / 1024.0,
        s.baseline_rss_kb as f64 / 1024.0,
        per,
        s.idle_window.as_secs(),
        s.idle_cpu * 100.0,
        s.latency.len(),
        m,
        p,
    );
}
