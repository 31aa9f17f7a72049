//! A listener that counts the TCP connections it accepts: the proof that a refused
//! request made no connection at all (an HTTP-level recorder would miss a connection that
//! sent nothing).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Answers every request `200 {"tripped":true}` so that a request that does get through
/// completes (and a test that expects a connection can see one); counts connections.
#[derive(Debug)]
pub struct Tripwire {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Tripwire {
    /// Listens on a free port of `ip`. Use a loopback address nothing else listens on
    /// and no allow-list names, such as `127.0.0.2` (Linux routes all of 127/8 to `lo`).
    ///
    /// # Panics
    ///
    /// If `ip` cannot be bound.
    pub async fn start(ip: IpAddr) -> Tripwire {
        let listener = TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("bind {ip}:0 for a tripwire: {e}"));
        let addr = listener.local_addr().expect("a listener's address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let app =
            Router::new().fallback(|| async { axum::Json(serde_json::json!({"tripped": true})) });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Tripwire {
            addr,
            accepted,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}
