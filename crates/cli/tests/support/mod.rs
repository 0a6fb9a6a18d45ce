//! A real `runbox serve` on a free loopback port, with its own data directory, and
//! a small HTTP client for it. Shared by the end-to-end tests of the service.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use reqwest::blocking::Response;
use serde_json::Value;

/// A running server.
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory (kept by `_dir` unless given by the caller).
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    log: PathBuf,
    client: reqwest::blocking::Client,
}

/// How to start a server.
#[derive(Default, Clone)]
pub struct Options<'a> {
    /// Extra flags of `runbox serve`.
    pub args: Vec<&'a str>,
    /// Extra environment variables (`RUNBOX_*` settings).
    pub env: Vec<(&'a str, String)>,
    /// Use this data directory instead of a fresh one.
    pub data_dir: Option<PathBuf>,
}

/// The runbox binary under test.
pub fn runbox_binary() -> &'static str {
    env!("CARGO_BIN_EXE_runbox")
}

impl TestServer {
    /// A server with default settings and 2 workers.
    pub fn start() -> TestServer {
        Self::start_with(Options::default())
    }

    /// A server with `options`.
    pub fn start_with(options: Options<'_>) -> TestServer {
        let (dir, data_dir) = match &options.data_dir {
            Some(path) => (None, path.clone()),
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        std::fs::create_dir_all(&data_dir).expect("the data directory");
        let log = data_dir.join(format!("serve-{}.log", Instant::now().elapsed().as_nanos()));
        let log_file = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new(runbox_binary());
        command.arg("serve");
        if !options.args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !options.args.contains(&"--workers") {
            command.args(["--workers", "2"]);
        }
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&options.args)
            .env("RUNBOX_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "true")
            .env("RUNBOX_WEBHOOKS_BACKOFF_MS", "50")
            .env_remove("RUNBOX_CONFIG")
            .current_dir(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("runbox serve must start");
        let url = wait_for_line(&mut child, &log, "runbox listening on ", "runbox serve");
        TestServer {
            child: Some(child),
            url,
            data_dir,
            _dir: dir,
            log,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A request builder for `path` with an optional API key.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::blocking::RequestBuilder {
        let builder = self.client.request(method, format!("{}{}", self.url, path));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// GET `path`.
    pub fn get(&self, path: &str, key: Option<&str>) -> Response {
        self.request(reqwest::Method::GET, path, key)
            .send()
            .expect("the server must answer")
    }

    /// POST `body` as JSON to `path`.
    pub fn post(&self, path: &str, body: &Value, key: Option<&str>) -> Response {
        self.request(reqwest::Method::POST, path, key)
            .json(body)
            .send()
            .expect("the server must answer")
    }

    /// POST and expect `status`; the JSON answer.
    pub fn post_expect(&self, path: &str, body: &Value, key: Option<&str>, status: u16) -> Value {
        let response = self.post(path, body, key);
        expect_json(response, status, self)
    }

    /// GET and expect `status`; the JSON answer.
    pub fn get_expect(&self, path: &str, key: Option<&str>, status: u16) -> Value {
        let response = self.get(path, key);
        expect_json(response, status, self)
    }

    /// Creates an API key with `runbox keys create` on this server's data directory.
    pub fn create_key(&self, name: &str, extra: &[&str]) -> String {
        create_key(&self.data_dir, name, extra)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate().expect("the server must exit")
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        terminate(self.child.take()?)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Creates an API key in `data_dir`'s store; returns the key.
pub fn create_key(data_dir: &Path, name: &str, extra: &[&str]) -> String {
    let dir = data_dir.to_str().expect("a UTF-8 data directory");
    create_key_in(&["--data-dir", dir], name, extra)
}

/// Creates an API key with `runbox keys create STORE... --name NAME EXTRA...`, where
/// `store` names the store (`--data-dir DIR` or `--database URL`); returns the key.
pub fn create_key_in(store: &[&str], name: &str, extra: &[&str]) -> String {
    let out = Command::new(runbox_binary())
        .args(["keys", "create"])
        .args(store)
        .args(["--name", name])
        .args(extra)
        .env_remove("RUNBOX_CONFIG")
        .output()
        .expect("runbox keys must start");
    assert!(
        out.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).expect("a text key");
    let key = key.trim().to_string();
    assert!(key.starts_with("rbx_"), "not a key: {key}");
    key
}

/// Asserts the status of `response` and parses its JSON body.
pub fn expect_json(response: Response, status: u16, server: &TestServer) -> Value {
    let got = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    assert_eq!(
        got,
        status,
        "body: {text}\nserver log:\n{}",
        tail(&server.log())
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A Python hello world request.
pub fn python(source: &str) -> Value {
    serde_json::json!({"language": "python", "source": source})
}

/// Waits (at most a minute) for the line of `child`'s stdout that starts with
/// `prefix`, and returns the rest of it; panics with the log at `log` otherwise.
/// Later lines are read and dropped, so the child never blocks on its stdout.
fn wait_for_line(child: &mut Child, log: &Path, prefix: &'static str, what: &str) -> String {
    let stdout = child.stdout.take().expect("its stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(rest) => rest,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not start; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// Sends SIGTERM to `child` (by its pid) and waits for its exit; SIGKILL after a minute.
fn terminate(mut child: Child) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `runbox worker` (a worker node of a fleet) with its own data
/// directory and a health listener on a free loopback port.
pub struct TestWorker {
    child: Option<Child>,
    /// Its worker id, as it names itself in the store.
    pub id: String,
    /// `http://127.0.0.1:PORT` of its health and metrics listener.
    pub url: String,
    pid: u32,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestWorker {
    /// A worker on `database` running `concurrency` jobs at once, with extra
    /// environment variables (`RUNBOX_*` settings).
    pub fn start(database: &str, concurrency: u32, env: &[(&str, String)]) -> TestWorker {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("worker.log");
        let log_file = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new(runbox_binary());
        command
            .args(["worker", "--listen", "127.0.0.1:0", "--database", database])
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUNBOX_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "true")
            .env("RUNBOX_WEBHOOKS_BACKOFF_MS", "50")
            .env_remove("RUNBOX_CONFIG")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("runbox worker must start");
        let line = wait_for_line(&mut child, &log, "runbox worker ", "runbox worker");
        let (id, url) = line
            .split_once(" listening on ")
            .unwrap_or_else(|| panic!("not a worker's start line: {line}"));
        TestWorker {
            pid: child.id(),
            child: Some(child),
            id: id.to_string(),
            url: url.to_string(),
            log,
            _dir: dir,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the worker, by its pid.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .expect("kill must start");
        assert!(status.success(), "kill -{signal} {} failed", self.pid);
    }

    /// Kills the worker with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a worker that runs");
        child.kill().expect("SIGKILL must be sent");
        child.wait().expect("the killed worker must be reaped")
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> ExitStatus {
        terminate(self.child.take().expect("a worker that runs")).expect("the worker must exit")
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // A frozen worker must be thawed to hear SIGTERM.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            terminate(child);
        }
    }
}
