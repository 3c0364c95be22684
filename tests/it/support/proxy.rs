//! A fault-injecting TCP proxy on loopback, between imapsort and a server (the private Dovecot
//! or a scripted peer). It forwards bytes both ways and, on demand, cuts a connection after N
//! bytes in either direction, stalls a direction (a NAT that silently drops state), delays
//! every chunk, cuts at a random point drawn from a seeded generator, or refuses connections.
//!
//! ```text
//! client --(ToServer)--> proxy --(ToServer)--> server
//! client <--(ToClient)-- proxy <--(ToClient)-- server
//! ```
//!
//! Faults are injected at runtime through the handle: [`Proxy::set_fault`] applies to the
//! connections open now (counted from the bytes they have passed so far) and to every later
//! one, until [`Proxy::clear`]; [`Proxy::inject`] applies only to the connections open now.
//! [`Proxy::cut_all`] drops every open connection at once. The handle counts accepted and open
//! connections and the faults that actually fired.
//!
//! For plaintext IMAP it also counts connections *logging in*: accepted, and the server has
//! not yet said `Logged in` (Dovecot's LOGIN reply) on them; [`Proxy::peak_logging_in`] is the
//! most seen at once (connection pacing is observed with it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Which way bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (commands).
    ToServer,
    /// Server to client (responses).
    ToClient,
}

/// What the proxy does to a connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Forward `bytes` more bytes in `direction`, then close both sides.
    CutAfter { direction: Direction, bytes: u64 },
    /// Stop forwarding in `direction` (the sockets stay open, nothing is read) until the fault
    /// is changed or cleared; what was held back is then delivered.
    Stall(Direction),
    /// Wait this long before forwarding each chunk, both ways.
    Delay(Duration),
    /// Cut at a point drawn from the proxy's seeded generator: a direction, a byte offset
    /// below `max_bytes`, and FIN or RST.
    CutRandom { max_bytes: u64 },
    /// New connections are accepted and closed at once, before any byte (a server that is
    /// down behind a load balancer). Open connections are not touched.
    Refuse,
}

/// The fault in force, published to every connection task.
#[derive(Clone, Copy, Debug)]
struct FaultState {
    /// Bumped at every change, so a connection re-arms exactly once per change.
    generation: u64,
    fault: Fault,
    /// Connections with an id above this do not get the fault (for [`Proxy::inject`]).
    up_to_conn: u64,
}

/// How a fault was armed on one connection: thresholds fixed at the moment it saw the fault.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Armed {
    None,
    CutAt {
        direction: Direction,
        at: u64,
        reset: bool,
    },
    Stall(Direction),
    Delay(Duration),
}

/// Shared between the two pumps of one connection.
struct Conn {
    id: u64,
    /// Bytes forwarded client -> server and server -> client.
    sent: [AtomicU64; 2],
    /// (generation, armed) last computed.
    armed: Mutex<(u64, Armed)>,
    /// Cancelling it closes both sides.
    cut: CancellationToken,
    /// Send RST rather than FIN when cut.
    reset: Mutex<bool>,
    /// The server said `Logged in` on this connection.
    logged_in: std::sync::atomic::AtomicBool,
    /// The last bytes the server sent, so a marker split across two reads is still found.
    tail: Mutex<Vec<u8>>,
}

/// State shared by the handle and every task.
struct Shared {
    target: SocketAddr,
    state: watch::Sender<FaultState>,
    /// Drops every open connection ([`Proxy::cut_all`]); replaced after each use.
    generation_cut: Mutex<CancellationToken>,
    rng: Mutex<fastrand::Rng>,
    accepted: AtomicU64,
    open: AtomicU64,
    /// Faults that fired: cuts done, stalls and delays armed on a connection, refusals.
    fired: AtomicU64,
    /// Connections accepted and not yet logged in (nor closed).
    logging_in: AtomicU64,
    /// The most `logging_in` seen at once since start (or the last reset).
    peak_logging_in: AtomicU64,
    /// Connections the server logged in.
    logins: AtomicU64,
    stop: CancellationToken,
}

/// A running proxy; stops (and drops every connection) when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Forward 127.0.0.1:<ephemeral> to `target`, seed 0.
    pub async fn start(target: SocketAddr) -> Proxy {
        Proxy::start_seeded(target, 0).await
    }

    /// Forward 127.0.0.1:<ephemeral> to `target`; random cuts draw from `seed`.
    pub async fn start_seeded(target: SocketAddr, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, _) = watch::channel(FaultState {
            generation: 0,
            fault: Fault::None,
            up_to_conn: u64::MAX,
        });
        let shared = Arc::new(Shared {
            target,
            state,
            generation_cut: Mutex::new(CancellationToken::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            fired: AtomicU64::new(0),
            logging_in: AtomicU64::new(0),
            peak_logging_in: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy { addr, shared }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Apply `fault` to the connections open now and to every later one, until changed.
    pub fn set_fault(&self, fault: Fault) {
        self.publish(fault, u64::MAX);
    }

    /// Apply `fault` to the connections open now only; later ones pass normally (and so do
    /// the open ones once the fault is replaced).
    pub fn inject(&self, fault: Fault) {
        let newest = self.shared.accepted.load(Ordering::SeqCst);
        self.publish(fault, newest);
    }

    /// Forward everything again (a stalled direction delivers what it held back).
    pub fn clear(&self) {
        self.publish(Fault::None, u64::MAX);
    }

    fn publish(&self, fault: Fault, up_to_conn: u64) {
        self.shared.state.send_modify(|s| {
            s.generation += 1;
            s.fault = fault;
            s.up_to_conn = up_to_conn;
        });
    }

    /// Drop every connection open now; later ones pass (subject to the fault in force).
    pub async fn cut_all(&self) {
        let mut g = self.shared.generation_cut.lock().unwrap();
        if self.shared.open.load(Ordering::SeqCst) > 0 {
            self.shared.fired.fetch_add(1, Ordering::SeqCst);
        }
        g.cancel();
        *g = CancellationToken::new();
    }

    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Faults that fired so far (cuts, stalls and delays armed on a connection, refusals, and
    /// `cut_all` calls that found a connection).
    pub fn fired(&self) -> u64 {
        self.shared.fired.load(Ordering::SeqCst)
    }

    /// The most connections logging in at once since start or [`Proxy::reset_peak`].
    pub fn peak_logging_in(&self) -> u64 {
        self.shared.peak_logging_in.load(Ordering::SeqCst)
    }

    /// Start counting the peak afresh (from the connections logging in now).
    pub fn reset_peak(&self) {
        let now = self.shared.logging_in.load(Ordering::SeqCst);
        self.shared.peak_logging_in.store(now, Ordering::SeqCst);
    }

    /// Connections the server logged in since start.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// A number from the proxy's seeded generator (for tests that choose faults).
    pub fn random(&self, below: u64) -> u64 {
        self.shared.rng.lock().unwrap().u64(0..below.max(1))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, _) = tokio::select! {
            _ = shared.stop.cancelled() => return,
            r = listener.accept() => match r { Ok(c) => c, Err(_) => return },
        };
        let id = shared.accepted.fetch_add(1, Ordering::SeqCst) + 1;
        let state = *shared.state.borrow();
        if state.fault == Fault::Refuse && id <= state.up_to_conn {
            shared.fired.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let cut = shared.generation_cut.lock().unwrap().child_token();
        tokio::spawn(serve(client, id, cut, shared.clone()));
    }
}

/// Counts one connection as logging in until it logs in or ends.
struct LoggingIn {
    shared: Arc<Shared>,
    done: bool,
}

impl LoggingIn {
    fn start(shared: &Arc<Shared>) -> LoggingIn {
        let now = shared.logging_in.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_logging_in.fetch_max(now, Ordering::SeqCst);
        LoggingIn {
            shared: shared.clone(),
            done: false,
        }
    }

    fn finish(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            self.shared.logging_in.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for LoggingIn {
    fn drop(&mut self) {
        self.finish();
    }
}

async fn serve(client: TcpStream, id: u64, cut: CancellationToken, shared: Arc<Shared>) {
    let mut logging_in = LoggingIn::start(&shared);
    let Ok(server) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    shared.open.fetch_add(1, Ordering::SeqCst);
    let conn = Arc::new(Conn {
        id,
        sent: [AtomicU64::new(0), AtomicU64::new(0)],
        armed: Mutex::new((u64::MAX, Armed::None)),
        cut,
        reset: Mutex::new(false),
        logged_in: std::sync::atomic::AtomicBool::new(false),
        tail: Mutex::new(Vec::new()),
    });
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = tokio::spawn(pump(
        cr,
        sw,
        Direction::ToServer,
        conn.clone(),
        shared.clone(),
    ));
    let down = tokio::spawn(pump(
        sr,
        cw,
        Direction::ToClient,
        conn.clone(),
        shared.clone(),
    ));
    let (up, down) = (up.await, down.await);
    logging_in_done(&conn, &mut logging_in);
    let reset = *conn.reset.lock().unwrap();
    // Put each socket's halves back together to close it the chosen way (FIN on drop, or RST
    // with a zero linger).
    if reset && let (Ok((cr, sw)), Ok((sr, cw))) = (up, down) {
        if let Ok(client) = cr.reunite(cw) {
            let _ = client.set_zero_linger();
        }
        if let Ok(server) = sr.reunite(sw) {
            let _ = server.set_zero_linger();
        }
    }
    shared.open.fetch_sub(1, Ordering::SeqCst);
}

impl Conn {
    fn index(d: Direction) -> usize {
        match d {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// The fault as armed for this connection, re-armed when the published one changed.
    fn armed(&self, state: &FaultState, shared: &Shared) -> Armed {
        let mut slot = self.armed.lock().unwrap();
        if slot.0 == state.generation {
            return slot.1;
        }
        let applies = self.id <= state.up_to_conn;
        let armed = match state.fault {
            _ if !applies => Armed::None,
            Fault::None | Fault::Refuse => Armed::None,
            Fault::CutAfter { direction, bytes } => Armed::CutAt {
                direction,
                at: self.sent[Conn::index(direction)].load(Ordering::SeqCst) + bytes,
                reset: false,
            },
            Fault::Stall(d) => Armed::Stall(d),
            Fault::Delay(d) => Armed::Delay(d),
            Fault::CutRandom { max_bytes } => {
                let mut rng = shared.rng.lock().unwrap();
                let direction = if rng.bool() {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                let offset = rng.u64(0..max_bytes.max(1));
                Armed::CutAt {
                    direction,
                    at: self.sent[Conn::index(direction)].load(Ordering::SeqCst) + offset,
                    reset: rng.bool(),
                }
            }
        };
        if matches!(armed, Armed::Stall(_) | Armed::Delay(_)) {
            shared.fired.fetch_add(1, Ordering::SeqCst);
        }
        *slot = (state.generation, armed);
        armed
    }

    /// Look for the server's `Logged in` in what it sends (until found once).
    fn watch_login(&self, chunk: &[u8], shared: &Shared) {
        const MARK: &[u8] = b"Logged in";
        if self.logged_in.load(Ordering::SeqCst) {
            return;
        }
        let mut tail = self.tail.lock().unwrap();
        tail.extend_from_slice(chunk);
        if tail.windows(MARK.len()).any(|w| w == MARK) {
            self.logged_in.store(true, Ordering::SeqCst);
            shared.logins.fetch_add(1, Ordering::SeqCst);
            shared.logging_in.fetch_sub(1, Ordering::SeqCst);
            tail.clear();
        } else {
            let keep = tail.len().saturating_sub(MARK.len());
            tail.drain(..keep);
        }
    }

    fn fire_cut(&self, reset: bool, shared: &Shared) {
        if !self.cut.is_cancelled() {
            *self.reset.lock().unwrap() = reset;
            shared.fired.fetch_add(1, Ordering::SeqCst);
            self.cut.cancel();
        }
    }
}

/// The connection ended: if it never logged in, it no longer counts as logging in. (When it
/// did, [`Conn::watch_login`] already took it off.)
fn logging_in_done(conn: &Conn, guard: &mut LoggingIn) {
    if conn.logged_in.load(Ordering::SeqCst) {
        guard.done = true;
    } else {
        guard.finish();
    }
}

/// Forward one direction until EOF, an error, or a cut. Returns the halves so the caller can
/// close the sockets (with RST if asked).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
) -> (OwnedReadHalf, OwnedWriteHalf) {
    let mut rx = shared.state.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    let idx = Conn::index(direction);
    'outer: loop {
        let state = *rx.borrow_and_update();
        let armed = conn.armed(&state, &shared);
        if armed == Armed::Stall(direction) {
            tokio::select! {
                _ = conn.cut.cancelled() => break,
                _ = shared.stop.cancelled() => break,
                _ = rx.changed() => continue,
            }
        }
        let n = tokio::select! {
            _ = conn.cut.cancelled() => break,
            _ = shared.stop.cancelled() => break,
            _ = rx.changed() => continue,
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    break;
                }
                Ok(n) => n,
            },
        };
        // The fault may have changed while we waited for data: look again before forwarding.
        loop {
            let state = *rx.borrow_and_update();
            match conn.armed(&state, &shared) {
                Armed::Stall(d) if d == direction => {
                    tokio::select! {
                        _ = conn.cut.cancelled() => break 'outer,
                        _ = shared.stop.cancelled() => break 'outer,
                        _ = rx.changed() => continue,
                    }
                }
                Armed::Delay(d) => {
                    tokio::select! {
                        _ = conn.cut.cancelled() => break 'outer,
                        _ = shared.stop.cancelled() => break 'outer,
                        _ = tokio::time::sleep(d) => {}
                    }
                    break;
                }
                _ => break,
            }
        }
        let state = *rx.borrow();
        let mut take = n;
        let mut cut_after = None;
        if let Armed::CutAt {
            direction: d,
            at,
            reset,
        } = conn.armed(&state, &shared)
            && d == direction
        {
            let sent = conn.sent[idx].load(Ordering::SeqCst);
            if sent + n as u64 >= at {
                take = at.saturating_sub(sent) as usize;
                cut_after = Some(reset);
            }
        }
        if take > 0 {
            if direction == Direction::ToClient {
                conn.watch_login(&buf[..take], &shared);
            }
            if to.write_all(&buf[..take]).await.is_err() {
                break;
            }
            conn.sent[idx].fetch_add(take as u64, Ordering::SeqCst);
        }
        if let Some(reset) = cut_after {
            let _ = to.flush().await;
            conn.fire_cut(reset, &shared);
            break;
        }
    }
    (from, to)
}
