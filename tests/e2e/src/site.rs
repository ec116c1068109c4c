#![allow(clippy::unwrap_used)] // a test harness: a site that cannot work must fail the test
//! A web site on loopback for post-apply health checks: it answers every request with the
//! status set for its path (404 for any other) and counts the requests per path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

type Paths = Arc<Mutex<BTreeMap<String, (u16, usize)>>>;

/// A loopback HTTP server whose answer per path a test sets.
pub struct Site {
    /// Where it listens.
    pub addr: SocketAddr,
    paths: Paths,
}

impl Site {
    /// Starts a site that answers `path` with `status` for each pair.
    pub async fn start(answers: &[(&str, u16)]) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let paths: Paths = Arc::new(Mutex::new(
            answers
                .iter()
                .map(|(p, s)| ((*p).to_owned(), (*s, 0)))
                .collect(),
        ));
        let shared = paths.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let paths = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let status = paths.lock().unwrap().get_mut(req.uri().path()).map_or(
                            404,
                            |(status, hits)| {
                                *hits += 1;
                                *status
                            },
                        );
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = StatusCode::from_u16(status).unwrap();
                        async move { Ok::<_, hyper::Error>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Site { addr, paths }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// From now on, `path` answers `status`.
    pub fn answer(&self, path: &str, status: u16) {
        self.paths
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_insert((0, 0))
            .0 = status;
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.paths
            .lock()
            .unwrap()
            .get(path)
            .map_or(0, |(_, hits)| *hits)
    }
}
