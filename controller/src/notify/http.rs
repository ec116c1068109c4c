//! One HTTP POST attempt for the webhook channels, over rustls with the system's trust
//! roots. Errors never carry the URL: for Slack and many webhooks the URL is the secret.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::NotifyError;
use super::deliver::AttemptError;

/// How much of an error response is kept for the message: enough for Slack's
/// `invalid_token`-style answers.
const ERROR_BODY_MAX: usize = 300;

/// A reusable HTTP(S) client (connection pool shared by every channel).
#[derive(Clone, Debug)]
pub(super) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    pub(super) fn new() -> Result<Self, NotifyError> {
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| NotifyError::TrustRoots {
                message: e.to_string(),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// POSTs `body` as JSON with `headers`; `Ok` on any 2xx.
    pub(super) async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), AttemptError> {
        let uri: Uri = url.trim().parse().map_err(|_| {
            AttemptError::permanent(
                "the URL is not a valid http(s) URL: check the Secret or webhookUrl",
            )
        })?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) {
            return Err(AttemptError::permanent(
                "the URL must start with https:// (or http:// for a receiver on the same host)",
            ));
        }
        let mut request = Request::post(uri).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| AttemptError::permanent("cannot build the request"))?;
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| {
                AttemptError::retryable(format!("no response within {}s", timeout.as_secs_f64()))
            })?
            // The client error's text is generic ("client error (Connect)"); its source
            // chain can name the host, so only the kind is kept.
            .map_err(|e| {
                AttemptError::retryable(if e.is_connect() {
                    "cannot connect to the receiver".to_owned()
                } else {
                    "the connection to the receiver failed".to_owned()
                })
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = tokio::time::timeout(
            timeout,
            Limited::new(response.into_body(), 64 * 1024).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| b.to_bytes())
        .unwrap_or_default();
        let text: String = String::from_utf8_lossy(&body)
            .chars()
            .filter(|c| !c.is_control())
            .take(ERROR_BODY_MAX)
            .collect();
        let message = format!("the receiver answered {status}: {text}");
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Err(AttemptError::retryable(message))
        } else {
            Err(AttemptError::permanent(message))
        }
    }
}
