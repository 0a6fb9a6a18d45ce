//! One log line per request (id, method, path, status, time, key, language, job
//! status) and the HTTP metrics.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::Caller;

/// Records what the request log line should say about a job.
#[derive(Debug, Clone)]
pub struct JobLog {
    /// The language asked for.
    pub language: String,
    /// The result's status, when there is one.
    pub status: Option<String>,
}

/// `response`, marked with what its log line says about its job.
pub fn with_log(
    mut response: axum::response::Response,
    language: &str,
    status: Option<&str>,
) -> axum::response::Response {
    response.extensions_mut().insert(JobLog {
        language: language.to_string(),
        status: status.map(str::to_string),
    });
    response
}

/// Where the `Caller` extractor leaves the key id for the log line.
#[derive(Clone, Default)]
pub struct CallerSlot(pub Arc<Mutex<Option<String>>>);

impl CallerSlot {
    /// Remembers who called.
    pub fn set(&self, caller: &Caller) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(caller.key_id().unwrap_or("anonymous").to_string());
    }
}

/// The middleware.
pub async fn log_request(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().clone();
    // A path is the client's to choose: the log keeps a bounded prefix of it.
    let path = bounded(request.uri().path(), MAX_LOGGED_PATH);
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let job = response.extensions().get::<JobLog>().cloned();
    let key = slot.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    tracing::info!(
        request_id = %id,
        method = %method,
        path = %path,
        status,
        ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        key = key.as_deref().unwrap_or("-"),
        language = job.as_ref().map_or("-", |j| j.language.as_str()),
        job_status = job.as_ref().and_then(|j| j.status.as_deref()).unwrap_or("-"),
        "request"
    );
    metrics::counter!("runbox_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("runbox_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The longest path a log line keeps, in bytes.
pub const MAX_LOGGED_PATH: usize = 256;

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes]", &text[..end], text.len())
}
