//! A release `runbox serve` for the benchmarks: a free loopback port, a fresh data
//! directory, limits raised so the load itself is measured, not the admission.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// No request may take longer than this; every benchmark is bounded by it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A release `runbox serve` on a free loopback port with a fresh data directory.
pub struct Server {
    child: Child,
    url: String,
    client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

// Each benchmark binary compiles this module and uses a part of it.
#[allow(dead_code)]
impl Server {
    /// Starts the server beside this benchmark's binary.
    pub fn start() -> anyhow::Result<Server> {
        let binary = std::env::current_exe()?.with_file_name("runbox");
        if !binary.exists() {
            bail!(
                "{} not found: build it first with `cargo build --release -p runbox`",
                binary.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(&binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("RUNBOX_QUEUE_CAPACITY", "1024")
            .env("RUNBOX_RATE_PER_SECOND", "100000")
            .env("RUNBOX_RATE_BURST", "100000")
            .env("RUNBOX_RATE_MAX_CONCURRENT", "1024")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start runbox serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("runbox listening on ")
            .with_context(|| format!("unexpected first line: {line}"))?
            .to_string();
        let client = reqwest::blocking::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Server {
            child,
            url,
            client,
            _dir: dir,
        })
    }

    /// POSTs `body` to `route`; the JSON answer, or an error naming the status.
    pub fn post(&self, route: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{route}", self.url))
            .json(body)
            .send()?;
        let status = response.status();
        let answer: Value = response.json()?;
        if !status.is_success() {
            bail!("{status}: {answer}");
        }
        Ok(answer)
    }

    /// Runs one request; checks its output; returns its id.
    pub fn run(&self, route: &str, language: &str, source: &str) -> anyhow::Result<String> {
        let body = self.post(route, &json!({"language": language, "source": source}))?;
        let result = if body.get("result").is_some() {
            &body["result"]
        } else {
            &body
        };
        if result["run"]["stdout"] != "Hello, World!\n" {
            bail!("wrong answer: {body}");
        }
        result["id"].as_str().map(str::to_string).context("no id")
    }

    /// How many submissions the store holds.
    pub fn total_submissions(&self) -> anyhow::Result<u64> {
        let page: Value = self
            .client
            .get(format!("{}/api/v1/submissions?per_page=1", self.url))
            .send()?
            .json()?;
        page["total"].as_u64().context("no total")
    }

    /// Stops it with SIGTERM; an error unless it exits cleanly.
    pub fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("runbox serve exited with {status}");
        }
        Ok(())
    }
}
