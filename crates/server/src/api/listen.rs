//! The HTTP listener: accepts connections within bounds and serves the router on each.
//!
//! A client that opens connections and sends nothing, or sends a header a byte at a time,
//! must not take the server's file descriptors or its workers. So: at most
//! [`ListenLimits::max_connections`] connections at once, at most
//! [`ListenLimits::max_per_client`] of them from one client address (HTTP/1.1 serves one
//! request at a time per connection, so this is also the client's request concurrency), and a
//! connection that has not sent a whole request header within
//! [`ListenLimits::header_timeout`] (whether new or idle between requests) is closed. A
//! connection beyond a bound is answered `503` or `429` with `Retry-After` and closed. It
//! knows nothing of the API's routes.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Bounds on the connections of the HTTP server. Documented in docs/serve.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one client IP address.
    pub max_per_client: usize,
    /// Time a connection has to send a whole request header, new or idle between requests.
    pub header_timeout: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_connections: 512,
            max_per_client: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// How many refusals may be being written at once; beyond, a connection is just closed.
const MAX_REFUSING: usize = 64;

/// Connections per client address.
#[derive(Debug, Default)]
struct Clients(Mutex<HashMap<IpAddr, usize>>);

/// One connection of a client, counted until dropped.
struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Clients {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish (at most
/// `drain`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenLimits,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let clients = Arc::new(Clients::default());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or the peer gave up before accept: wait a little so an
                // error that persists does not spin a core, then go on.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refuse(stream, &refusing, Refusal::Busy);
            continue;
        };
        let Some(slot) = clients.take(peer.ip(), limits.max_per_client.max(1)) else {
            drop(permit);
            refuse(stream, &refusing, Refusal::PerClient);
            continue;
        };
        let app = app.clone();
        let stop = shutdown.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(async move {
            connection(stream, app, header_timeout, stop).await;
            drop(slot);
            drop(permit);
        });
    }
    // Stop accepting; open connections finish their request (each was told to close).
    let _ = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

async fn connection(
    stream: TcpStream,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            tower::ServiceExt::oneshot(app.clone(), request)
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[derive(Clone, Copy)]
enum Refusal {
    Busy,
    PerClient,
}

/// Answers a connection beyond a bound, briefly, off the accept loop.
fn refuse(mut stream: TcpStream, refusing: &Arc<Semaphore>, why: Refusal) {
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    let (status, message) = match why {
        Refusal::Busy => ("503 Service Unavailable", "the server has as many connections as it takes; try again shortly"),
        Refusal::PerClient => ("429 Too Many Requests", "this client has as many connections open as one client may; close one or try again shortly"),
    };
    // The same `{"error": ...}` body as every other error answer.
    let body = serde_json::to_string(&super::ErrorBody {
        error: message.to_string(),
    })
    .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            // Read what the client sent first, so that closing does not reset the connection
            // before it reads the answer.
            let mut buf = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_millis(100), stream.readable()).await;
            let _ = stream.try_read(&mut buf);
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            // Drain what else comes until the client closes (within the second), so that the
            // close is not a reset that could discard the answer before it is read.
            while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_at_most_its_share_and_slots_come_back() {
        let clients = Arc::new(Clients::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = clients.take(a, 2).expect("first");
        let second = clients.take(a, 2).expect("second");
        assert!(clients.take(a, 2).is_none(), "a third is refused");
        let other = clients.take(b, 2).expect("another client is not affected");
        drop(first);
        let again = clients
            .take(a, 2)
            .expect("a slot comes back when a connection ends");
        drop((second, again, other));
        assert!(
            clients.0.lock().unwrap().is_empty(),
            "no entry outlives its connections"
        );
    }
}
