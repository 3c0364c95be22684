//! A loopback TCP proxy that can cut every connection passing through it, to simulate a
//! connection lost mid-IDLE (a NAT timeout, a server crash without FIN, a flaky link).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Cancelling it drops every connection open now; replaced at each cut.
    generation: Arc<Mutex<CancellationToken>>,
    /// Connections accepted so far.
    accepted: Arc<AtomicU64>,
    /// Stops the accept loop.
    stop: CancellationToken,
}

impl Proxy {
    /// Forward 127.0.0.1:<ephemeral> to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let generation = Arc::new(Mutex::new(CancellationToken::new()));
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (g, a, s) = (generation.clone(), accepted.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (mut client, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => return },
                };
                a.fetch_add(1, Ordering::SeqCst);
                let cut = g.lock().await.clone();
                let stop = s.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                    // Dropping both streams closes them.
                });
            }
        });
        Proxy {
            addr,
            generation,
            accepted,
            stop,
        }
    }

    /// Drop every connection open now; later ones pass normally.
    pub async fn cut_all(&self) {
        let mut g = self.generation.lock().await;
        g.cancel();
        *g = CancellationToken::new();
    }

    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
