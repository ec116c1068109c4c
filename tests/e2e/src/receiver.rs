#![allow(clippy::unwrap_used)] // a test harness: a receiver that cannot work must fail the test
//! A signed-webhook notification receiver on loopback, as a team's chat bridge would run
//! one: it checks each request's HMAC signature and keeps what it accepted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One signed request the receiver accepted.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `X-Tollgate-Event`.
    pub event: String,
    /// `X-Tollgate-Delivery`.
    pub id: String,
    /// The JSON body.
    pub body: Value,
}

/// A webhook receiver on loopback that checks every request's HMAC signature and keeps
/// the valid ones (an invalid one fails the test).
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Delivery>>>,
    invalid: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    /// Starts a receiver that accepts requests signed with `signing_key`.
    pub async fn start(signing_key: &'static str) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let invalid = Arc::new(Mutex::new(Vec::new()));
        let state = (received.clone(), invalid.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (received, invalid) = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (received, invalid) = (received.clone(), invalid.clone());
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let (timestamp, signature) = (
                                header("x-tollgate-timestamp"),
                                header("x-tollgate-signature"),
                            );
                            let (event, id) =
                                (header("x-tollgate-event"), header("x-tollgate-delivery"));
                            let body = req.into_body().collect().await?.to_bytes();
                            if tollgate::notify::verify_signature(
                                signing_key.as_bytes(),
                                &timestamp,
                                &body,
                                &signature,
                            ) {
                                received.lock().unwrap().push(Delivery {
                                    event,
                                    id,
                                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                                });
                            } else {
                                invalid.lock().unwrap().push(id);
                            }
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from("ok"))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            received,
            invalid,
        }
    }

    /// The valid deliveries so far; fails the test if any request was badly signed.
    pub fn deliveries(&self) -> Vec<Delivery> {
        assert!(
            self.invalid.lock().unwrap().is_empty(),
            "requests with a bad signature: {:?}",
            self.invalid.lock().unwrap()
        );
        self.received.lock().unwrap().clone()
    }

    /// How many deliveries of each event arrived.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for d in self.deliveries() {
            *counts.entry(d.event).or_insert(0) += 1;
        }
        counts
    }
}

/// Routes the namespace `ns`'s notifications of `events` to a signed webhook at `url`, as a
/// TO would (written with `client`): the Secret `hook` holding the URL and the signing key,
/// and the `tollgate-notifications` ConfigMap with one channel, `finance`.
pub async fn route_events(
    client: kube::Client,
    ns: &str,
    url: &str,
    signing_key: &str,
    events: &[&str],
) {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::{Api, PostParams};
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hook", "namespace": ns},
        "stringData": {"url": url, "key": signing_key}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let routes = format!(
        "channels:\n  - name: finance\n    events: [{}]\n    webhook:\n      urlSecretRef: {{name: hook, key: url}}\nwebhookSigningKeySecretRef: {{name: hook, key: key}}\n",
        events.join(", ")
    );
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "tollgate-notifications", "namespace": ns},
        "data": {"config.yaml": routes}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client, ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}
