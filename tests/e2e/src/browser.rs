//! Headless Chromium driven over W3C WebDriver (Debian `chromium` + `chromium-driver`,
//! installed by `tests/tools/install-chromium.sh`), with the few commands the dashboard
//! test needs. The client is a dozen HTTP calls on hyper, which the tree already has: a
//! WebDriver crate (fantoccini) would bring a second HTTP stack for the same calls.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP/1.1 request to `127.0.0.1:port`; the answer's status, headers and body.
pub async fn http(
    port: u16,
    request: Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, String) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("HTTP request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("HTTP body")
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// The chromedriver to run: `$TOLLGATE_CHROMEDRIVER`, else `chromedriver` on `PATH`.
fn chromedriver() -> PathBuf {
    std::env::var_os("TOLLGATE_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromedriver"))
}

/// A chromedriver process and one headless Chromium session; both end when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a desktop
    /// window.
    pub async fn start() -> Browser {
        // Its own process group, which Chromium joins: dropping the Browser (a failed test)
        // ends both, not only chromedriver.
        let mut driver = Command::new(chromedriver())
            .arg("--port=0")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start chromedriver ({e}): run `bash tests/tools/install-chromium.sh`")
            });
        let stdout = driver.stdout.take().expect("chromedriver's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("chromedriver says on which port it listens");
        // Keep reading its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let binary =
            std::env::var("TOLLGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let created = browser
            .call(
                Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": binary,
                        // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--disable-dev-shm-usage", "--window-size=1280,900",
                                 "--lang=en-US", "--no-first-run", "--disable-crash-reporter", "--disable-breakpad"],
                    }
                }}}),
            )
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        browser
    }

    /// A WebDriver command; its `value`. Fails the test on a WebDriver error.
    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("WebDriver {path}: {error}"))
    }

    async fn try_call(&self, method: Method, path: &str, body: Value) -> Result<Value, Value> {
        let body = if method == Method::GET || method == Method::DELETE {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("127.0.0.1:{}", self.port))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("a WebDriver request");
        let (status, _, text) = http(self.port, request).await;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let value = answer.get("value").cloned().unwrap_or(answer);
        if status.is_success() {
            Ok(value)
        } else {
            Err(value)
        }
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, &self.at("/url"), json!({"url": url}))
            .await;
    }

    /// The address shown.
    pub async fn url(&self) -> String {
        self.call(Method::GET, &self.at("/url"), Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element `css` selects, if there is one.
    async fn find(&self, css: &str) -> Option<String> {
        self.try_call(
            Method::POST,
            &self.at("/element"),
            json!({"using": "css selector", "value": css}),
        )
        .await
        .ok()
        .and_then(|v| v[ELEMENT].as_str().map(str::to_owned))
    }

    /// The visible text of the element `css` selects, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.find(css).await?;
        self.try_call(
            Method::GET,
            &self.at(&format!("/element/{element}/text")),
            Value::Null,
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Waits until the element `css` selects shows text that satisfies `done`; that text.
    /// Fails the test after two minutes with the page's address and text.
    pub async fn wait_text(&self, what: &str, css: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut delay = Duration::from_millis(50);
        loop {
            let text = self.text(css).await.unwrap_or_default();
            if done(&text) {
                return text;
            }
            if Instant::now() > deadline {
                let page = self.text("body").await.unwrap_or_default();
                panic!(
                    "timed out waiting for {what} ({css} shows {text:?}) on {}:\n{page}",
                    self.url().await
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Clicks the element `css` selects. A live update can replace it between finding and
    /// clicking ("stale element reference"): then it is found again.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let element = self
                .find(css)
                .await
                .unwrap_or_else(|| panic!("no {css} on the page"));
            match self
                .try_call(
                    Method::POST,
                    &self.at(&format!("/element/{element}/click")),
                    json!({}),
                )
                .await
            {
                Ok(_) => return,
                Err(e) if e["error"] == "stale element reference" && Instant::now() < deadline => {}
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Types `text` into the element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self
            .find(css)
            .await
            .unwrap_or_else(|| panic!("no {css} on the page"));
        self.call(
            Method::POST,
            &self.at(&format!("/element/{element}/value")),
            json!({"text": text}),
        )
        .await;
    }

    /// Runs `script` in the page; what it returns.
    pub async fn execute(&self, script: &str) -> Value {
        self.call(
            Method::POST,
            &self.at("/execute/sync"),
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    async fn cdp(&self, command: &str, params: Value) -> Value {
        self.call(
            Method::POST,
            &self.at("/goog/cdp/execute"),
            json!({"cmd": command, "params": params}),
        )
        .await
    }

    /// Shows pages as a phone does (390×844 CSS pixels, touch, mobile viewport), or as the
    /// desktop window again.
    pub async fn phone(&self, on: bool) {
        if on {
            self.cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
            )
            .await;
        } else {
            self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                .await;
        }
    }

    /// Saves the page as a PNG: the whole page, or only what the screen shows.
    pub async fn screenshot(&self, path: &Path, whole: bool) {
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": whole}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Ends the session (Chromium exits), then chromedriver (on drop).
    pub async fn quit(self) {
        let _ = self
            .try_call(
                Method::DELETE,
                &format!("/session/{}", self.session),
                Value::Null,
            )
            .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}
