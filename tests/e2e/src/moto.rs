#![allow(clippy::unwrap_used)] // a test harness: a server that cannot work must fail the test
//! moto (PyPI `moto[server]`, `tests/tools/install-moto.sh`, env `TOLLGATE_MOTO_SERVER`) as
//! AWS on loopback: one server per test, stopped when dropped. Nothing here reaches real AWS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::controller::free_port;
use crate::wait_for;

/// A moto server on 127.0.0.1, stopped when dropped.
pub struct Moto {
    _child: tokio::process::Child,
    url: String,
    python: PathBuf,
}

impl Moto {
    /// Starts moto; `enforce_after` sets `INITIAL_NO_AUTH_ACTION_COUNT` (requests after that
    /// many must be signed by an IAM user of moto's and are checked against its policies).
    pub async fn start(enforce_after: Option<u32>) -> Moto {
        let server = PathBuf::from(std::env::var("TOLLGATE_MOTO_SERVER").expect(
            "TOLLGATE_MOTO_SERVER: run `bash tests/tools/install-moto.sh` and export its output",
        ));
        let port = free_port();
        let mut command = tokio::process::Command::new(&server);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(count) = enforce_after {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string());
        }
        let child = command.spawn().expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        wait_for("moto listening", Duration::from_secs(60), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Moto {
            _child: child,
            url,
            python: server.with_file_name("python"),
        }
    }

    /// Runs boto3 code against this moto (`sts`, `iam`, `s3` clients made from
    /// `key`/`secret`), returning what it prints.
    pub fn boto(&self, key: &str, secret: &str, code: &str) -> String {
        let prelude = format!(
            "import boto3, json\nkw = dict(endpoint_url={url:?}, region_name='us-east-1', aws_access_key_id={key:?}, aws_secret_access_key={secret:?})\nsts = boto3.client('sts', **kw)\niam = boto3.client('iam', **kw)\ns3 = boto3.client('s3', **kw)\n",
            url = self.url
        );
        let out = std::process::Command::new(&self.python)
            .args(["-c", &format!("{prelude}{code}")])
            .output()
            .expect("run boto3");
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The sessions moto's STS issued, as it keeps them (`/moto-api/data.json`): what the
    /// caller sent (session name, external id) and the access key id it got.
    pub fn assumed_roles(&self) -> Vec<serde_json::Value> {
        let out = std::process::Command::new(&self.python)
            .args([
                "-c",
                &format!(
                    "import json, urllib.request\nprint(json.dumps(json.load(urllib.request.urlopen({url:?} + '/moto-api/data.json'))['sts']['AssumedRole']))",
                    url = self.url
                ),
            ])
            .output()
            .expect("read moto's model data");
        assert!(
            out.status.success(),
            "moto model data: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("moto's assumed roles as JSON")
    }

    /// Starts moto checking every request after the first three, which make an `admin` IAM
    /// user allowed everything; returns its keys for the test's own setup.
    pub async fn start_enforcing() -> (Moto, String, String) {
        let moto = Moto::start(Some(3)).await;
        let admin = moto.boto(
            "setup",
            "setup",
            "iam.create_user(UserName='admin')\nk = iam.create_access_key(UserName='admin')['AccessKey']\niam.put_user_policy(UserName='admin', PolicyName='all', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))\nprint(k['AccessKeyId'], k['SecretAccessKey'])",
        );
        let (key, secret) = admin.split_once(' ').expect("admin keys");
        (moto, key.to_owned(), secret.to_owned())
    }

    /// An IAM user `controller` allowed only `actions` (IAM actions as JSON), and its keys.
    pub fn controller_user(&self, admin: (&str, &str), actions: &str) -> (String, String) {
        let keys = self.boto(
            admin.0,
            admin.1,
            &format!("iam.create_user(UserName='controller')\nk = iam.create_access_key(UserName='controller')['AccessKey']\niam.put_user_policy(UserName='controller', PolicyName='own', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Action': {actions}, 'Resource': '*'}}]}}))\nprint(k['AccessKeyId'], k['SecretAccessKey'])"),
        );
        let (key, secret) = keys.split_once(' ').expect("controller keys");
        (key.to_owned(), secret.to_owned())
    }

    /// Queues Cost Explorer `GetCostAndUsage` results (moto's
    /// `/moto-api/static/ce/cost-and-usage-results`): each request with new parameters takes
    /// the next one, one with the same parameters gets the same one again.
    pub fn seed_cost_and_usage(&self, results: &[Value]) {
        let body = serde_json::json!({ "results": results }).to_string();
        let out = std::process::Command::new(&self.python)
            .args([
                "-c",
                &format!(
                    "import urllib.request\nr = urllib.request.urlopen(urllib.request.Request({url:?} + '/moto-api/static/ce/cost-and-usage-results', data={body:?}.encode(), method='POST', headers={{'Content-Type': 'application/json'}}))\nprint(r.status)",
                    url = self.url
                ),
            ])
            .output()
            .expect("seed moto's Cost Explorer");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "201",
            "seeding Cost Explorer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// This moto's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The controller's environment: its own identity and this endpoint.
    ///
    /// moto is also the HTTP proxy, for one name only: the AWS provider (6.x) reaches S3
    /// Control, where it keeps bucket tags, at the endpoint's host with the account id in
    /// front (`123456789012.127.0.0.1`), which no resolver knows; moto serves that request
    /// in proxy form. Loopback addresses are never proxied (Go and `NO_PROXY`), so every
    /// other call goes straight to its server as before.
    pub fn controller_env(&self, key: &str, secret: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("HTTP_PROXY", self.url.as_str()),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// Cost Explorer on loopback: `GetCostAndUsage` is forwarded to moto (seeded with
/// [`Moto::seed_cost_and_usage`]); `GetCostForecast`, which moto does not serve, is answered
/// with a recorded response shaped as AWS documents it (`Total`, `ForecastResultsByTime`),
/// or `DataUnavailableException` when no forecast is set. Every request it saw is kept.
pub struct CostExplorer {
    /// Its endpoint (`AWS_ENDPOINT_URL_COST_EXPLORER`).
    pub url: String,
    forecast: Arc<Mutex<Option<String>>>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl CostExplorer {
    /// Serves in front of `moto`, forecasting `forecast` USD (`None`: no forecast).
    pub async fn start(moto: &Moto, forecast: Option<&str>) -> CostExplorer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream: SocketAddr = moto
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("moto's address");
        let explorer = CostExplorer {
            url: format!("http://{addr}"),
            forecast: Arc::new(Mutex::new(forecast.map(str::to_owned))),
            seen: Arc::default(),
        };
        let state = (explorer.forecast.clone(), explorer.seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (forecast, seen) = state.clone();
                        async move { answer(req, upstream, &forecast, &seen).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        explorer
    }

    /// Forecasts `amount` USD from now on (`None`: no forecast).
    pub fn set_forecast(&self, amount: Option<&str>) {
        *self.forecast.lock().unwrap() = amount.map(str::to_owned);
    }

    /// The requests so far: operation (`GetCostAndUsage`, …) and JSON body.
    pub fn seen(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    req: Request<Incoming>,
    upstream: SocketAddr,
    forecast: &Mutex<Option<String>>,
    seen: &Mutex<Vec<(String, Value)>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push((operation.clone(), json.clone()));
    if operation == "GetCostForecast" {
        let amount = forecast.lock().unwrap().clone();
        let (status, reply) = match amount {
            Some(amount) => (
                200,
                serde_json::json!({
                    "Total": {"Amount": amount, "Unit": "USD"},
                    "ForecastResultsByTime": [{
                        "TimePeriod": json["TimePeriod"].clone(),
                        "MeanValue": amount,
                    }],
                }),
            ),
            None => (
                400,
                serde_json::json!({
                    "__type": "com.amazonaws.awsinsightsindexservice#DataUnavailableException",
                    "Message": "Insufficient amount of historical data to generate forecast.",
                }),
            ),
        };
        return Ok(Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(reply.to_string())))
            .unwrap());
    }
    let stream = tokio::net::TcpStream::connect(upstream).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut forwarded = Request::builder()
        .method(parts.method)
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        forwarded = forwarded.header(name, value);
    }
    let response = sender
        .send_request(forwarded.body(Full::new(body)).unwrap())
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// A Terraform CLI configuration that takes hashicorp/aws from the local mirror, and a
/// plugin cache filled once, so concurrent `init`s only link the provider: the CLI config
/// `TOLLGATE_AWS_PROVIDER_CONFIG` (tests/tools/install-aws-provider.sh), or else a mirror
/// holding the provider (`TOLLGATE_AWS_PROVIDER_MIRROR`, default `/opt/tf-plugins`).
pub fn aws_provider_config(dir: &Path) -> (PathBuf, PathBuf) {
    let config = match std::env::var("TOLLGATE_AWS_PROVIDER_CONFIG") {
        Ok(config) => PathBuf::from(config),
        Err(_) => mirror_config(dir),
    };
    let cache = dir.join("plugin-cache");
    let warm = dir.join("warm");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(&warm).unwrap();
    std::fs::copy(
        crate::repo_root().join("tests/e2e/testdata/catalog/priced/versions.tf"),
        warm.join("versions.tf"),
    )
    .unwrap();
    let terraform = std::env::var("TOLLGATE_TERRAFORM").unwrap_or_else(|_| "terraform".into());
    let status = std::process::Command::new(terraform)
        .arg(format!("-chdir={}", warm.display()))
        .args(["init", "-input=false", "-backend=false"])
        .env("TF_CLI_CONFIG_FILE", &config)
        .env("TF_PLUGIN_CACHE_DIR", &cache)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "terraform init of the aws provider failed"
    );
    (config, cache)
}

/// A CLI config taking hashicorp/aws from the mirror `TOLLGATE_AWS_PROVIDER_MIRROR` (and
/// tollgate's test provider from the mirror of `TF_CLI_CONFIG_FILE`, if any).
fn mirror_config(dir: &Path) -> PathBuf {
    let mirror =
        std::env::var("TOLLGATE_AWS_PROVIDER_MIRROR").unwrap_or_else(|_| "/opt/tf-plugins".into());
    assert!(
        Path::new(&mirror)
            .join("registry.terraform.io/hashicorp/aws")
            .is_dir(),
        "the hashicorp/aws provider is not in the mirror {mirror}: set TOLLGATE_AWS_PROVIDER_CONFIG (tests/tools/install-aws-provider.sh) or TOLLGATE_AWS_PROVIDER_MIRROR"
    );
    let base = std::env::var("TF_CLI_CONFIG_FILE")
        .ok()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    let config = dir.join("terraformrc");
    let tollgate_mirror = base
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("path")
                .map(|p| p.trim().trim_start_matches('=').trim().to_owned())
        })
        .unwrap_or_else(|| "\"/nonexistent\"".into());
    std::fs::write(
        &config,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = {mirror:?}\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n  filesystem_mirror {{\n    path = {tollgate_mirror}\n    include = [\"registry.terraform.io/tollgate/*\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/tollgate/*\", \"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n"
        ),
    )
    .unwrap();
    config
}
