//! moto (PyPI `moto[server]`, `tests/tools/install-moto.sh`, env `TOLLGATE_MOTO_SERVER`) as
//! AWS on loopback: one server per test, stopped when dropped. Nothing here reaches real AWS.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

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
