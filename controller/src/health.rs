//! Post-apply health checks (`spec.healthChecks`): where each probe goes (a URL from the
//! spec, or one of the Project's outputs), and one `GET` per attempt that reads only the
//! status line. Knows nothing of Kubernetes.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::api::HealthCheck;
use crate::terraform::OutputValue;

/// Status code that means healthy unless the check says otherwise.
pub const DEFAULT_STATUS: u16 = 200;
/// One attempt's time limit unless the check says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest an attempt may be given.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts after a failed one unless the check says otherwise.
pub const DEFAULT_RETRIES: u32 = 2;
/// Pause between attempts.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Why health checks cannot run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// The system's trust roots could not be loaded for `https://` checks.
    #[error(
        "cannot load the system's trust roots for https health checks: {message}; install CA certificates in the controller's image"
    )]
    TrustRoots {
        /// What rustls said.
        message: String,
    },
}

/// `spec.healthChecks[].timeout` as a duration (default 5 s); an error says what is allowed.
pub fn timeout_of(check: &HealthCheck) -> Result<Duration, String> {
    let Some(text) = &check.timeout else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let parsed = crate::sla::parse_duration("timeout", text)
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "a duration such as 5s".to_owned())?;
    if parsed > MAX_TIMEOUT {
        return Err(format!("at most {}s", MAX_TIMEOUT.as_secs()));
    }
    Ok(parsed)
}

/// One check, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The check's name.
    pub name: String,
    /// Where it goes.
    url: String,
    /// How the target is shown: the URL, or only the output's name when that is sensitive.
    pub shown: String,
    /// The status code that means healthy.
    pub expected: u16,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// How many attempts at most.
    pub attempts: u32,
}

/// What one check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was asked and answered, for status (never a sensitive output's value).
    pub message: String,
}

/// The probes of `checks` against the Project's `outputs`; a check that cannot run (its
/// output is missing or not an http(s) URL) is an outcome that failed, said why.
#[must_use]
pub fn probes(
    checks: &[HealthCheck],
    outputs: &BTreeMap<String, OutputValue>,
) -> Vec<Result<Probe, Outcome>> {
    checks.iter().map(|c| probe(c, outputs)).collect()
}

fn probe(check: &HealthCheck, outputs: &BTreeMap<String, OutputValue>) -> Result<Probe, Outcome> {
    let failed = |message: String| Outcome {
        name: check.name.clone(),
        passed: false,
        message,
    };
    let (url, shown) = match (&check.url, &check.url_from_output) {
        (Some(url), _) => (url.clone(), url.clone()),
        (None, Some(output)) => {
            let Some(value) = outputs.get(output) else {
                let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
                return Err(failed(format!(
                    "the Project has no output {output:?} (it has: {}); fix spec.healthChecks[].urlFromOutput",
                    known.join(", ")
                )));
            };
            let Some(url) = value.value.as_str() else {
                return Err(failed(format!("output {output:?} is not a string")));
            };
            let shown = if value.sensitive {
                format!("(output {output}, sensitive)")
            } else {
                url.to_owned()
            };
            (url.to_owned(), shown)
        }
        (None, None) => {
            return Err(failed(
                "set exactly one of url and urlFromOutput".to_owned(),
            ));
        }
    };
    let uri: Option<Uri> = url.parse().ok();
    if !uri
        .as_ref()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
    {
        return Err(failed(format!("{shown} is not an http(s) URL")));
    }
    let timeout = timeout_of(check).map_err(|allowed| failed(format!("timeout: {allowed}")))?;
    let expected = check
        .expected_status
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(DEFAULT_STATUS);
    let retries = check
        .retries
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(DEFAULT_RETRIES);
    Ok(Probe {
        name: check.name.clone(),
        url,
        shown,
        expected,
        timeout,
        attempts: retries.saturating_add(1),
    })
}

/// Runs probes over HTTP(S), certificates verified against the system's trust roots.
#[derive(Clone, Debug)]
pub struct Prober {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Prober {
    /// A prober with its own connection pool.
    pub fn new() -> Result<Self, HealthError> {
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| HealthError::TrustRoots {
                message: e.to_string(),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(connector),
        })
    }

    /// Runs `probe` until one attempt answers the expected status or its attempts are spent.
    pub async fn run(&self, probe: &Probe) -> Outcome {
        let mut last = String::new();
        for attempt in 1..=probe.attempts {
            if attempt > 1 {
                tokio::time::sleep(RETRY_DELAY).await;
            }
            match self.attempt(probe).await {
                Ok(()) => {
                    return Outcome {
                        name: probe.name.clone(),
                        passed: true,
                        message: format!(
                            "GET {} answered {} (attempt {attempt} of {})",
                            probe.shown, probe.expected, probe.attempts
                        ),
                    };
                }
                Err(why) => last = why,
            }
        }
        Outcome {
            name: probe.name.clone(),
            passed: false,
            message: format!(
                "GET {}: {last}, expected {} (after {} attempts)",
                probe.shown, probe.expected, probe.attempts
            ),
        }
    }

    /// One `GET`; only the status line is read (the body is dropped unread).
    async fn attempt(&self, probe: &Probe) -> Result<(), String> {
        let request = Request::get(probe.url.as_str())
            .header("user-agent", "tollgate-health-check")
            .body(Empty::new())
            .map_err(|_| "cannot build the request".to_owned())?;
        let response = tokio::time::timeout(probe.timeout, self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {}s", probe.timeout.as_secs_f64()))?
            // The error's source chain can carry the URL (a sensitive output): kind only.
            .map_err(|e| {
                if e.is_connect() {
                    "cannot connect".to_owned()
                } else {
                    "the connection failed".to_owned()
                }
            })?;
        let status = response.status().as_u16();
        if status == probe.expected {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn check(spec: serde_json::Value) -> HealthCheck {
        serde_json::from_value(spec).unwrap()
    }

    fn output(value: &str, sensitive: bool) -> OutputValue {
        OutputValue {
            sensitive,
            value: serde_json::json!(value),
            value_type: serde_json::json!("string"),
        }
    }

    #[test]
    fn a_url_comes_from_the_spec_or_an_output_and_a_sensitive_one_is_never_shown() {
        let outputs = BTreeMap::from([
            (
                "web_url".to_owned(),
                output("http://10.0.0.1/health", false),
            ),
            (
                "admin_url".to_owned(),
                output("https://x:token@a.example/", true),
            ),
            (
                "web_port".to_owned(),
                OutputValue {
                    sensitive: false,
                    value: serde_json::json!(8080),
                    value_type: serde_json::json!("number"),
                },
            ),
        ]);
        let probes = probes(
            &[
                check(
                    serde_json::json!({"name": "spec", "url": "https://a.example/ok", "expectedStatus": 204, "timeout": "2s", "retries": 0}),
                ),
                check(serde_json::json!({"name": "out", "urlFromOutput": "web_url"})),
                check(serde_json::json!({"name": "secret", "urlFromOutput": "admin_url"})),
                check(serde_json::json!({"name": "missing", "urlFromOutput": "nope"})),
                check(serde_json::json!({"name": "number", "urlFromOutput": "web_port"})),
            ],
            &outputs,
        );
        let spec = probes[0].as_ref().unwrap();
        assert_eq!(
            (spec.expected, spec.timeout, spec.attempts),
            (204, Duration::from_secs(2), 1)
        );
        let out = probes[1].as_ref().unwrap();
        assert_eq!(out.shown, "http://10.0.0.1/health");
        assert_eq!(
            (out.expected, out.timeout, out.attempts),
            (DEFAULT_STATUS, DEFAULT_TIMEOUT, DEFAULT_RETRIES + 1)
        );
        let secret = probes[2].as_ref().unwrap();
        assert_eq!(secret.shown, "(output admin_url, sensitive)");
        let missing = probes[3].as_ref().unwrap_err();
        assert!(!missing.passed);
        assert!(
            missing.message.contains("no output \"nope\""),
            "{}",
            missing.message
        );
        assert!(missing.message.contains("web_url"), "{}", missing.message);
        assert!(
            probes[4]
                .as_ref()
                .unwrap_err()
                .message
                .contains("not a string")
        );
    }

    #[test]
    fn only_http_urls_with_a_host_are_probed() {
        let outputs = BTreeMap::from([
            ("file".to_owned(), output("file:///etc/passwd", false)),
            ("relative".to_owned(), output("/health", false)),
            (
                "secret".to_owned(),
                output("gopher://user:hunter2@x/", true),
            ),
        ]);
        for name in ["file", "relative", "secret"] {
            let result = probe(
                &check(serde_json::json!({"name": name, "urlFromOutput": name})),
                &outputs,
            );
            let failed = result.unwrap_err();
            assert!(
                failed.message.contains("is not an http(s) URL"),
                "{failed:?}"
            );
            assert!(!failed.message.contains("hunter2"), "{failed:?}");
        }
    }

    #[test]
    fn timeouts_are_positive_and_at_most_a_minute() {
        let with = |t: &str| {
            timeout_of(&check(
                serde_json::json!({"name": "a", "url": "http://a/", "timeout": t}),
            ))
        };
        assert_eq!(with("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(with("1500ms").unwrap_err(), "a duration such as 5s");
        assert_eq!(with("0s").unwrap_err(), "a duration such as 5s");
        assert_eq!(with("61s").unwrap_err(), "at most 60s");
    }
}
