//! A proxy that understands just enough plaintext IMAP to cut a connection at an exact
//! command: before the server sees it, or after the server carried it out and answered (the
//! answer never reaches the client). This reproduces, deterministically and through the real
//! binaries, the moments a crash or a lost connection can leave a non-idempotent command in:
//! sent or not, run or not. It also keeps the command lines it forwarded (the tag dropped,
//! LOGIN's arguments never kept), so a test can say what a run sent.
//!
//! ```text
//! imapsort --plaintext--> Cutter (127.0.0.1:port) ----> Dovecot's plaintext IMAP port
//! ```
//!
//! It runs on its own thread and runtime, so synchronous tests that spawn processes can use it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// When to cut, relative to the matching command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Drop the connection instead of forwarding the command: the server never sees it.
    Before,
    /// Forward the command, wait for the server's tagged answer, then drop the connection
    /// without forwarding it: the command ran, the client cannot know.
    AfterAnswer,
}

/// One planned cut: the `nth` (1-based, counted over every connection) command line whose
/// text (after the tag, upper-cased) contains `command`.
#[derive(Clone, Debug)]
pub struct Cut {
    pub command: String,
    pub nth: u64,
    pub when: When,
}

impl Cut {
    pub fn new(command: &str, nth: u64, when: When) -> Cut {
        Cut {
            command: command.to_ascii_uppercase(),
            nth,
            when,
        }
    }
}

struct Shared {
    target: SocketAddr,
    cut: Mutex<Option<Cut>>,
    /// Matching command lines seen so far (for `nth`).
    matched: AtomicU64,
    /// Cuts done.
    fired: AtomicU64,
    /// Every command line forwarded, without its tag.
    log: Mutex<Vec<String>>,
}

/// A running cutter; stops when dropped.
pub struct Cutter {
    pub port: u16,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Cutter {
    /// Forward 127.0.0.1:<ephemeral> to 127.0.0.1:`target_port`.
    pub fn start(target_port: u16) -> Cutter {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            target: SocketAddr::from(([127, 0, 0, 1], target_port)),
            cut: Mutex::new(None),
            matched: AtomicU64::new(0),
            fired: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let (s, t) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                loop {
                    let client = tokio::select! {
                        _ = t.cancelled() => return,
                        r = listener.accept() => match r { Ok((c, _)) => c, Err(_) => return },
                    };
                    tokio::spawn(serve(client, s.clone(), t.clone()));
                }
            });
        });
        Cutter { port, shared, stop }
    }

    /// Arm a cut (replacing any armed one); the count of matching lines starts again.
    pub fn arm(&self, cut: Cut) {
        self.shared.matched.store(0, Ordering::SeqCst);
        *self.shared.cut.lock().unwrap() = Some(cut);
    }

    /// Forward everything from now on.
    pub fn disarm(&self) {
        *self.shared.cut.lock().unwrap() = None;
    }

    /// Cuts done so far.
    pub fn fired(&self) -> u64 {
        self.shared.fired.load(Ordering::SeqCst)
    }

    /// The command lines forwarded so far (tags dropped), and forget them.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.log.lock().unwrap())
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the client-side pump decided about one command line.
enum Verdict {
    Forward,
    CutBefore,
    CutAfterAnswer(String),
}

fn judge(shared: &Shared, line: &str) -> Verdict {
    let mut words = line.splitn(2, ' ');
    let tag = words.next().unwrap_or("").to_string();
    let rest = words.next().unwrap_or("").trim_end().to_string();
    let upper = rest.to_ascii_uppercase();
    let shown = if upper.starts_with("LOGIN") || upper.starts_with("AUTHENTICATE") {
        "LOGIN ...".to_string()
    } else {
        rest.clone()
    };
    if !tag.is_empty() && !rest.is_empty() {
        shared.log.lock().unwrap().push(shown);
    }
    let mut armed = shared.cut.lock().unwrap();
    let Some(cut) = armed.as_ref() else {
        return Verdict::Forward;
    };
    if rest.is_empty() || !upper.contains(&cut.command) {
        return Verdict::Forward;
    }
    let n = shared.matched.fetch_add(1, Ordering::SeqCst) + 1;
    if n != cut.nth {
        return Verdict::Forward;
    }
    let when = cut.when;
    *armed = None;
    shared.fired.fetch_add(1, Ordering::SeqCst);
    match when {
        When::Before => Verdict::CutBefore,
        When::AfterAnswer => Verdict::CutAfterAnswer(tag),
    }
}

async fn serve(client: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    let Ok(server) = TcpStream::connect(shared.target).await else {
        return;
    };
    let (client_r, mut client_w) = client.into_split();
    let (server_r, mut server_w) = server.into_split();
    let kill = stop.child_token();
    let awaited: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));

    let to_server = {
        let (shared, kill, awaited) = (shared.clone(), kill.clone(), awaited.clone());
        async move {
            let mut reader = BufReader::new(client_r);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line).to_string();
                match judge(&shared, &text) {
                    Verdict::Forward => {}
                    Verdict::CutBefore => break,
                    Verdict::CutAfterAnswer(tag) => *awaited.lock().unwrap() = Some(tag),
                }
                if server_w.write_all(&line).await.is_err() {
                    break;
                }
            }
            kill.cancel();
        }
    };
    let to_client = {
        let (kill, awaited) = (kill.clone(), awaited.clone());
        async move {
            let mut reader = BufReader::new(server_r);
            loop {
                let Some(response) = read_response(&mut reader).await else {
                    break;
                };
                let tag = awaited.lock().unwrap().clone();
                if let Some(tag) = tag
                    && response.starts_with(format!("{tag} ").as_bytes())
                {
                    break;
                }
                if client_w.write_all(&response).await.is_err() {
                    break;
                }
            }
            kill.cancel();
        }
    };
    tokio::select! {
        _ = kill.cancelled() => {}
        _ = async { tokio::join!(to_server, to_client) } => {}
    }
}

/// One whole server response: a line, and any literal it announces (`{n}` at its end) with
/// the rest of the line after it.
async fn read_response(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let start = out.len();
        match reader.read_until(b'\n', &mut out).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = &out[start..];
        let Some(n) = literal_length(line) else {
            return Some(out);
        };
        let mut literal = vec![0; n];
        reader.read_exact(&mut literal).await.ok()?;
        out.extend_from_slice(&literal);
    }
}

/// `n` when the line ends with `{n}\r\n`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let body = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))?;
    let open = body.rfind('{')?;
    let inner = body[open + 1..].strip_suffix('}')?;
    inner.trim_end_matches('+').parse().ok()
}
