//! A real `runbox serve` on a free loopback port with its own data directory, and
//! a small blocking HTTP client: shared by the compatibility tests.

#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use reqwest::blocking::Response;
pub use serde_json::{Value, json};

/// A running server, stopped when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
    client: reqwest::blocking::Client,
}

impl Server {
    /// A server with 2 workers and `env` (`RUNBOX_*` settings).
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = std::fs::File::create(dir.path().join("serve.log")).expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_runbox"));
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "2",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env_remove("RUNBOX_CONFIG")
            .env("RUNBOX_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "true")
            .env("RUNBOX_WEBHOOKS_BACKOFF_MS", "50")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("runbox serve must start");
        let stdout = child.stdout.take().expect("its stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("runbox listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let Ok(url) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "runbox serve did not start: {}",
                std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
            );
        };
        Server {
            child,
            url,
            dir,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The data directory (for `runbox keys create --data-dir`).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Creates an API key with `scope` through the CLI; the key.
    pub fn create_key(&self, name: &str, scope: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_runbox"))
            .args(["keys", "--data-dir"])
            .arg(self.data_dir())
            .args(["create", "--name", name, "--scope", scope])
            .output()
            .expect("runbox keys create");
        assert!(
            out.status.success(),
            "keys create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A request builder for `path` with `headers`.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::blocking::RequestBuilder {
        let mut builder = self.client.request(method, format!("{}{}", self.url, path));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
    }

    /// GET `path`: status and JSON body.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        into_json(self.request(reqwest::Method::GET, path, headers).send())
    }

    /// POST `body` as JSON: status and JSON body.
    pub fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        into_json(
            self.request(reqwest::Method::POST, path, headers)
                .json(body)
                .send(),
        )
    }

    /// DELETE `path`: status and JSON body.
    pub fn delete(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        into_json(self.request(reqwest::Method::DELETE, path, headers).send())
    }
}

fn into_json(response: reqwest::Result<Response>) -> (u16, Value) {
    let response = response.expect("the server must answer");
    let status = response.status().as_u16();
    let text = response.text().expect("a body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Base64 of `text`.
pub fn b64(text: &str) -> String {
    use std::fmt::Write as _;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = out.write_char(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
