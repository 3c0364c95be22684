//! The fault-injecting proxy of tests/it/support/proxy.rs, tested on its own against a loopback
//! echo server: it forwards faithfully, and each fault does exactly what it says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support;
use crate::support::proxy::{Direction, Fault, Proxy};

const LIMIT: Duration = Duration::from_secs(30);

/// An echo server that counts the bytes it received per connection (into `received`, the
/// sum), its connections, and the connections it has seen end.
struct Echo {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    ended: Arc<AtomicU64>,
}

async fn echo() -> Echo {
    serve(true).await
}

/// A server that only counts what it reads and never answers: with nothing unread on the
/// proxy's side, the proxy's close reaches it as an end of stream, never as a reset that would
/// throw away bytes it has not read yet.
async fn sink() -> Echo {
    serve(false).await
}

async fn serve(reply: bool) -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let (r, c, e) = (received.clone(), connections.clone(), ended.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (r, e) = (r.clone(), e.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            r.fetch_add(n as u64, Ordering::SeqCst);
                            if reply && s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                e.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Echo {
        addr,
        received,
        connections,
        ended,
    }
}

/// Write `data`, then read until EOF or `wait` passes; what came back.
async fn exchange(s: &mut TcpStream, data: &[u8], wait: Duration) -> Vec<u8> {
    let (mut r, mut w) = s.split();
    let mut got = Vec::new();
    let writer = async {
        let _ = w.write_all(data).await;
    };
    let reader = async {
        let mut buf = vec![0u8; 8192];
        let _ = tokio::time::timeout(wait, async {
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        if got.len() >= data.len() {
                            break;
                        }
                    }
                }
            }
        })
        .await;
    };
    tokio::join!(writer, reader);
    got
}

/// Read until EOF or error; true when the connection ended within `wait`.
async fn ends_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn forwards_a_megabyte_both_ways_unchanged() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let data = payload(1 << 20);
        let got = exchange(&mut s, &data, Duration::from_secs(10)).await;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes changed in transit");
        assert_eq!(p.accepted(), 1);
        assert_eq!(p.open(), 1);
        assert_eq!(p.fired(), 0);
    });
}

#[test]
fn cut_after_n_bytes_to_the_server() {
    support::run_with_timeout(LIMIT, async {
        // A sink, not an echo: an echo's answer to the closed proxy comes back as a reset, and
        // a reset discards what the server had not read yet (the count came out below 1000).
        let e = sink().await;
        let p = Proxy::start(e.addr).await;
        p.set_fault(Fault::CutAfter {
            direction: Direction::ToServer,
            bytes: 1000,
        });
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let got = exchange(&mut s, &payload(5000), Duration::from_secs(5)).await;
        assert!(got.is_empty(), "the sink answers nothing: {got:?}");
        assert!(ends_within(&mut s, Duration::from_secs(5)).await);
        // The server reads what reached it before it sees the end: wait for that end.
        support::eventually("the server's side to end", Duration::from_secs(5), || {
            e.ended.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(e.received.load(Ordering::SeqCst), 1000);
        assert_eq!(p.fired(), 1);
    });
}

#[test]
fn cut_after_n_bytes_to_the_client() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        p.set_fault(Fault::CutAfter {
            direction: Direction::ToClient,
            bytes: 777,
        });
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let got = exchange(&mut s, &payload(3000), Duration::from_secs(5)).await;
        assert_eq!(got, payload(777));
        assert!(ends_within(&mut s, Duration::from_secs(5)).await);
    });
}

#[test]
fn cut_counts_from_when_the_fault_is_set_on_an_open_connection() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        assert_eq!(
            exchange(&mut s, &payload(500), Duration::from_secs(5)).await,
            payload(500)
        );
        p.set_fault(Fault::CutAfter {
            direction: Direction::ToClient,
            bytes: 100,
        });
        let got = exchange(&mut s, &payload(500), Duration::from_secs(5)).await;
        assert_eq!(got, payload(100), "100 more bytes, not 100 in total");
    });
}

#[test]
fn stall_holds_data_until_cleared_then_delivers_it() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        // Armed before any byte flows: each pump looks at the fault before forwarding.
        p.set_fault(Fault::Stall(Direction::ToClient));
        let got = exchange(&mut s, b"hello", Duration::from_millis(400)).await;
        assert!(got.is_empty(), "a stalled direction delivered {got:?}");
        assert_eq!(
            e.received.load(Ordering::SeqCst),
            5,
            "the other way still flows"
        );
        p.clear();
        let mut buf = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("delivered after clear")
            .unwrap();
        assert_eq!(&buf, b"hello");
        assert!(p.fired() >= 1);
    });
}

#[test]
fn stall_to_the_server_keeps_the_socket_open() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        p.set_fault(Fault::Stall(Direction::ToServer));
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let got = exchange(&mut s, b"ping", Duration::from_millis(400)).await;
        assert!(got.is_empty());
        assert_eq!(e.received.load(Ordering::SeqCst), 0);
        assert!(
            !ends_within(&mut s, Duration::from_millis(200)).await,
            "a stall is not a close"
        );
        assert_eq!(p.open(), 1);
    });
}

#[test]
fn delay_slows_every_round_trip() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        p.set_fault(Fault::Delay(Duration::from_millis(150)));
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let t = Instant::now();
        let got = exchange(&mut s, b"abc", Duration::from_secs(5)).await;
        assert_eq!(got, b"abc");
        // One chunk each way, each held 150 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    });
}

/// Where a seeded random cut falls: (bytes the client got back, bytes the server got).
async fn random_cut_point(seed: u64) -> (usize, u64) {
    let e = echo().await;
    let p = Proxy::start_seeded(e.addr, seed).await;
    p.set_fault(Fault::CutRandom { max_bytes: 4000 });
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    // Small writes, one at a time, so the cut point does not depend on chunking.
    let mut got = Vec::new();
    for chunk in payload(8000).chunks(100) {
        if s.write_all(chunk).await.is_err() {
            break;
        }
        let mut buf = vec![0u8; 100];
        match tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await {
            Ok(Ok(_)) => got.extend_from_slice(&buf),
            _ => break,
        }
    }
    // The cut closed the server side too: once the echo server has seen its connection end,
    // it has counted every byte the proxy passed on.
    support::eventually("the echo connection to end", Duration::from_secs(5), || {
        e.ended.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(p.fired(), 1, "exactly one cut");
    (got.len(), e.received.load(Ordering::SeqCst))
}

#[test]
fn random_cuts_are_reproducible_from_the_seed_and_stay_below_the_bound() {
    support::run_with_timeout(LIMIT, async {
        let a = random_cut_point(7).await;
        let b = random_cut_point(7).await;
        assert_eq!(a, b, "the same seed cuts at the same point");
        let mut points = std::collections::BTreeSet::new();
        for seed in 1..8 {
            let (back, to_server) = random_cut_point(seed).await;
            assert!(
                to_server <= 4000 && back <= 4000,
                "seed {seed}: {back} {to_server}"
            );
            points.insert((back, to_server));
        }
        assert!(points.len() > 1, "seeds must give different cut points");
    });
}

#[test]
fn inject_hits_open_connections_only_and_cut_all_drops_them() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        let mut old = TcpStream::connect(p.addr).await.unwrap();
        assert_eq!(exchange(&mut old, b"x", Duration::from_secs(5)).await, b"x");
        p.inject(Fault::Stall(Direction::ToClient));
        let mut new = TcpStream::connect(p.addr).await.unwrap();
        assert_eq!(
            exchange(&mut new, b"new", Duration::from_secs(5)).await,
            b"new",
            "a connection opened after inject passes"
        );
        assert!(
            exchange(&mut old, b"old", Duration::from_millis(300))
                .await
                .is_empty(),
            "the open connection is stalled"
        );
        assert_eq!(p.open(), 2);
        p.cut_all().await;
        assert!(ends_within(&mut old, Duration::from_secs(5)).await);
        assert!(ends_within(&mut new, Duration::from_secs(5)).await);
        // The proxy counts a connection closed after both of its sockets are.
        support::eventually("no open connection", Duration::from_secs(5), || {
            p.open() == 0
        })
        .await;
        p.clear();
        let mut again = TcpStream::connect(p.addr).await.unwrap();
        assert_eq!(
            exchange(&mut again, b"y", Duration::from_secs(5)).await,
            b"y"
        );
        assert_eq!(p.accepted(), 3);
    });
}

#[test]
fn refuse_closes_new_connections_before_the_server_sees_them() {
    support::run_with_timeout(LIMIT, async {
        let e = echo().await;
        let p = Proxy::start(e.addr).await;
        p.set_fault(Fault::Refuse);
        for _ in 0..3 {
            let mut s = TcpStream::connect(p.addr).await.unwrap();
            assert!(ends_within(&mut s, Duration::from_secs(5)).await);
        }
        assert_eq!(e.connections.load(Ordering::SeqCst), 0);
        assert_eq!(p.accepted(), 3);
        assert_eq!(p.fired(), 3);
        p.clear();
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        assert_eq!(exchange(&mut s, b"ok", Duration::from_secs(5)).await, b"ok");
    });
}
