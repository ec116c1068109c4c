//! One way to serve HTTP/1, for the metrics server and the admission webhook: at most
//! `max_connections` at once (a new one beyond is closed at once), a pause instead of a
//! busy loop when `accept` fails (e.g. out of file descriptors), a bound on how long a
//! client may take to send its headers, and on shutdown a bounded drain: every open
//! connection finishes its request and closes.
//!
//! Small enough not to need a framework (axum, tower-http); TLS stays with the caller (the
//! webhook does its handshake, then hands the stream to [`http1`]). Any body type: the
//! dashboard streams server-sent events.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How long `accept` rests after failing before it tries again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Bounds of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; a new connection beyond is closed.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time open connections get to finish after shutdown.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Where connections come from: a [`TcpListener`] (and, in tests, one that fails).
pub trait Accept {
    /// The next connection.
    fn accept(&self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    fn accept(&self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// Resolves when the server stops; a connection then finishes its request and closes.
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// Waits for the server to stop.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Accepts connections until `shutdown` resolves and hands each to `connection` in its own
/// task, then drains them (at most `limits.drain_timeout`). `name` labels the log lines.
pub async fn accept_loop<A, F, Fut>(
    name: &'static str,
    listener: A,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    mut connection: F,
) where
    A: Accept,
    F: FnMut(TcpStream, SocketAddr, Stopping) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let slots = std::sync::Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // E.g. out of file descriptors: rest instead of spinning; the
                        // shutdown still wins.
                        tracing::warn!(server = name, error = %e, "cannot accept a connection");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                        }
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(server = name, %peer, limit = limits.max_connections, "at the connection limit; closing a new connection");
                    continue;
                };
                let served = connection(tcp, peer, Stopping(stopped.clone()));
                connections.spawn(async move {
                    let _slot = slot;
                    served.await;
                });
            }
        }
    }
    tracing::info!(server = name, open = connections.len(), "stopping");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            server = name,
            "connections still open after the drain timeout; closing them"
        );
    }
}

/// Serves HTTP/1 on one connection with `handle` until the client closes it or the
/// server stops (then the request in progress finishes first).
pub async fn http1<IO, H, Fut, B>(
    name: &'static str,
    io: IO,
    peer: SocketAddr,
    limits: Limits,
    stopping: Stopping,
    handle: H,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = hyper::service::service_fn(move |req| {
        let response = handle(req);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(server = name, %peer, error = %e, "connection ended with an error");
            }
        }
        () = stopping.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use http_body_util::Full;
    use hyper::StatusCode;
    use hyper::body::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{Notify, oneshot};

    use super::*;

    fn ok(_: Request<Incoming>) -> std::future::Ready<Response<Full<Bytes>>> {
        std::future::ready(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
    }

    /// A server on a real socket; stop it with the sender; its task ends after the drain.
    async fn start(
        limits: Limits,
    ) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(accept_loop(
            "test",
            listener,
            limits,
            async move {
                let _ = stopped.await;
            },
            move |tcp, peer, stopping| http1("test", tcp, peer, limits, stopping, ok),
        ));
        (addr, stop, server)
    }

    /// Sends one keep-alive request and reads its response; the connection stays open.
    async fn get(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let mut text = String::new();
        while !text.ends_with("ok\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {text:?}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text
    }

    #[tokio::test]
    async fn a_connection_beyond_the_limit_is_closed_and_the_next_one_after_a_close_is_served() {
        let limits = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let (addr, stop, server) = start(limits).await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut first).await.starts_with("HTTP/1.1 200"));
        // The first holds the only slot: the second is closed without an answer.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let _ = second.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let mut buf = [0u8; 64];
        let read = second.read(&mut buf).await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        // The first is still served; once it closes, a new one is.
        assert!(get(&mut first).await.starts_with("HTTP/1.1 200"));
        drop(first);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut third = loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no slot after the first closed"
            );
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let n = stream.read(&mut buf).await.unwrap_or(0);
            // Until the server has seen the first close, a new one may still be refused.
            if n > 0 {
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
                break stream;
            }
            tokio::task::yield_now().await;
        };
        let _ = third.read(&mut buf).await;
        stop.send(()).unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        let (addr, stop, server) = start(Limits::default()).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        assert!(
            get(&mut idle)
                .await
                .contains(&StatusCode::OK.as_u16().to_string())
        );
        stop.send(()).unwrap();
        // Drained well before the 10 s drain timeout would cut it off: the idle keep-alive
        // connection is closed by the server, not left open.
        server.await.unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(idle.read(&mut buf).await, Ok(0) | Err(_)));
    }

    /// Fails `accept` a few times, then waits forever; records when it was called.
    struct Failing {
        failures: usize,
        calls: std::sync::Mutex<Vec<tokio::time::Instant>>,
        done: Notify,
    }

    impl Accept for Arc<Failing> {
        fn accept(&self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(tokio::time::Instant::now());
                calls.len()
            };
            let this = self.clone();
            async move {
                if call <= this.failures {
                    Err(std::io::Error::other("too many open files"))
                } else {
                    this.done.notify_one();
                    std::future::pending().await
                }
            }
        }
    }

    #[tokio::test]
    async fn a_failing_accept_rests_between_attempts_instead_of_spinning() {
        let failing = Arc::new(Failing {
            failures: 3,
            calls: std::sync::Mutex::new(Vec::new()),
            done: Notify::new(),
        });
        let watched = failing.clone();
        accept_loop(
            "test",
            failing.clone(),
            Limits::default(),
            async move { watched.done.notified().await },
            |_, _, _| async {},
        )
        .await;
        let calls = failing.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 4);
        // A lower bound only (a sleep never ends early): a busy loop retries at once.
        for pair in calls.windows(2) {
            assert!(pair[1] - pair[0] >= ACCEPT_BACKOFF, "{calls:?}");
        }
    }
}
