//! The service in this process, called through its router without a socket (as
//! axum's testing example does): one per test, with its own data directory.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use runbox_server::{Node, ServerConfig};
use serde_json::Value;
use tower::ServiceExt;

/// A service in this process.
pub struct App {
    /// Its router.
    pub router: Router,
    node: Option<Node>,
    /// Its data directory.
    pub dir: tempfile::TempDir,
}

impl App {
    /// A service with the default configuration and 2 workers.
    pub async fn start() -> App {
        Self::start_with(|_| {}).await
    }

    /// A service whose configuration `change` adjusts.
    pub async fn start_with(change: impl FnOnce(&mut ServerConfig)) -> App {
        let dir = tempfile::tempdir().expect("a data directory");
        let mut config = ServerConfig {
            data_dir: dir.path().to_path_buf(),
            workers: Some(2),
            ..ServerConfig::default()
        };
        change(&mut config);
        let (router, node) = runbox_server::in_process(config)
            .await
            .expect("the service starts");
        App {
            router,
            node: Some(node),
            dir,
        }
    }

    /// Sends `request` and answers its status and JSON body (`Null` when empty).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, body)
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("a request"),
        )
        .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Request::get(path).body(Body::empty()).expect("a request"))
            .await
    }

    /// Stops the node (its workers and background tasks).
    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.stop(std::time::Duration::from_secs(5)).await;
        }
    }
}
