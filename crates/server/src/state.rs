//! `AppState` (shared by every handler) and the extractors that authenticate,
//! rate-limit and parse requests before a handler sees them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use runbox_engine::Engine;
use runbox_store::{AuditEvent, Store, now_ms};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::admission::Admission;
use crate::auth::{Caller, key_hash, presented_key};
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::runner::Runner;

// The HTTP layer decides what status each refusal of the layers below is; the
// runner and admission know nothing of HTTP.
impl From<crate::admission::AdmissionRefusal> for ApiError {
    fn from(refusal: crate::admission::AdmissionRefusal) -> Self {
        use crate::admission::AdmissionRefusal as R;
        match refusal {
            R::RateLimited { retry_after, .. } => {
                ApiError::rate_limited(refusal.to_string(), retry_after)
            }
            R::TooManyJobs { .. } => {
                ApiError::rate_limited(refusal.to_string(), Duration::from_secs(1))
            }
            R::TooManyRefusals { retry_after } => {
                ApiError::rate_limited(refusal.to_string(), retry_after)
            }
            R::Store(error) => error.into(),
        }
    }
}

impl From<crate::runner::Refusal> for ApiError {
    fn from(refusal: crate::runner::Refusal) -> Self {
        use crate::runner::Refusal as R;
        match refusal {
            R::Job(error) => error.into(),
            R::QueueFull { .. } => {
                ApiError::unavailable("queue_full", refusal.to_string(), Duration::from_secs(2))
            }
            R::NoWorker { .. } => {
                ApiError::unavailable("no_worker", refusal.to_string(), Duration::from_secs(5))
            }
            R::Admission(refusal) => refusal.into(),
            R::ShuttingDown => {
                ApiError::unavailable("shutting_down", refusal.to_string(), Duration::from_secs(5))
            }
            R::Callback(message) => ApiError::invalid("callback_url", message),
            R::Store(error) => error.into(),
            R::Internal(message) => ApiError::internal(message),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    /// The settings.
    pub config: Arc<ServerConfig>,
    /// The engine (catalog, installations).
    pub engine: Arc<Engine>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Runs and queues jobs.
    pub runner: Arc<Runner>,
    /// Rate limits and concurrency caps.
    pub admission: Arc<Admission>,
    /// Renders `/metrics`.
    pub metrics: crate::prometheus::Exposition,
    /// When the service started.
    pub started: Instant,
    /// Whether the listener is on a loopback address (anonymous use needs it).
    pub loopback: bool,
    /// Becomes true when a graceful shutdown begins.
    pub shutting_down: watch::Receiver<bool>,
    /// The sandbox's readiness, checked at most once per few seconds.
    pub readiness: Arc<crate::readiness::SandboxReadiness>,
}

/// The state as axum holds it.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Writes an audit event without delaying the request.
    pub fn audit(
        &self,
        kind: &str,
        caller_key: Option<&str>,
        addr: &str,
        detail: serde_json::Value,
    ) {
        let store = self.store.clone();
        let event = AuditEvent {
            at_ms: now_ms(),
            kind: kind.to_string(),
            key_id: caller_key.map(str::to_string),
            client_addr: Some(addr.to_string()),
            detail,
        };
        tokio::spawn(async move {
            if let Err(error) = store.audit(&event).await {
                tracing::warn!(%error, "cannot write an audit event");
            }
        });
    }

    /// Who is calling: a valid key, or anonymous when that is allowed. Counts the
    /// request against the caller's rate limit.
    async fn authenticate(&self, parts: &Parts) -> Result<Caller, ApiError> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        // An address refused too often is refused again before its key costs a
        // database lookup, an audit row or a log line of detail.
        self.admission.check_address(&addr)?;
        let caller = match presented_key(&parts.headers) {
            Err(error) => Err(error),
            Ok(Some(key)) => match self.store.key_by_hash(&key_hash(&key)).await? {
                Some(record) if record.revoked_ms.is_none() => Ok(Caller::Key {
                    key: Box::new(record),
                    addr: addr.clone(),
                }),
                Some(_) => Err(ApiError::unauthorized("this API key has been revoked")),
                None => Err(ApiError::unauthorized("this API key is not valid")),
            },
            Ok(None) => {
                if self.loopback && self.store.active_key_count().await? == 0 {
                    Ok(Caller::Anonymous { addr: addr.clone() })
                } else {
                    Err(ApiError::unauthorized(
                        "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (create one with `runbox keys create --name NAME`)",
                    ))
                }
            }
        };
        let caller = caller.inspect_err(|error| {
            metrics::counter!("runbox_rejected_requests_total", "reason" => "unauthorized")
                .increment(1);
            self.admission.count_refusal(&addr);
            // Refusals are counted per minute and address, not written one by one.
            let store = self.store.clone();
            let (addr, reason) = (addr.clone(), error.code);
            tokio::spawn(async move {
                if let Err(error) = store.audit_refusal(&addr, reason, now_ms()).await {
                    tracing::warn!(%error, "cannot count a refused request");
                }
            });
        })?;
        if let Err(refusal) = self.admission.check_rate(&caller).await {
            let error = ApiError::from(refusal);
            metrics::counter!("runbox_rejected_requests_total", "reason" => "rate_limited")
                .increment(1);
            let store = self.store.clone();
            let (addr, reason) = (addr.clone(), error.code);
            tokio::spawn(async move {
                if let Err(error) = store.audit_refusal(&addr, reason, now_ms()).await {
                    tracing::warn!(%error, "cannot count a refused request");
                }
            });
            return Err(error);
        }
        Ok(caller)
    }
}

/// Marks a request whose caller was refused: its body is never read.
#[derive(Clone)]
pub struct Refused(pub ApiError);

/// How long this request's body may take to arrive.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

impl<S> FromRequestParts<S> for Caller
where
    SharedState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = SharedState::from_ref(state);
        parts
            .extensions
            .insert(BodyTimeout(std::time::Duration::from_millis(
                state.config.connections.body_read_timeout_ms,
            )));
        let caller = state.authenticate(parts).await.inspect_err(|error| {
            parts.extensions.insert(Refused(error.clone()));
        })?;
        if let Some(slot) = parts.extensions.get::<crate::logging::CallerSlot>() {
            slot.set(&caller);
        }
        Ok(caller)
    }
}

/// A JSON body, with errors as [`ApiError`]s that name the field at fault.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !content_type.starts_with("application/json") {
            return Err(ApiError::bad_request(
                "unsupported_media_type",
                "send the body as JSON with 'Content-Type: application/json'",
            ));
        }
        let bytes = read_body(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The body's bytes; 413 when it is over the configured size, 401 without
/// reading it when the request's caller was refused (a keyless client cannot make
/// the server hold its body), 408 when it does not arrive in time.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    if let Some(Refused(error)) = request.extensions().get::<Refused>() {
        return Err(error.clone());
    }
    let timeout = request
        .extensions()
        .get::<BodyTimeout>()
        .map_or(std::time::Duration::from_secs(30), |t| t.0);
    let read = tokio::time::timeout(timeout, Bytes::from_request(request, state)).await;
    let Ok(read) = read else {
        return Err(ApiError::new_public(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        ));
    };
    read.map_err(|rejection| {
        if rejection.status().as_u16() == 413 {
            ApiError::too_large(
                "body",
                "the request body is larger than this server accepts",
            )
        } else {
            ApiError::bad_request("invalid_body", format!("cannot read the body: {rejection}"))
        }
    })
}

/// Refuses new work while the server shuts down (503 with `Retry-After`).
pub fn refuse_when_shutting_down(state: &SharedState) -> Result<(), ApiError> {
    if *state.shutting_down.borrow() {
        return Err(ApiError::unavailable(
            "shutting_down",
            "this server is shutting down: send the request to another node or try again shortly",
            std::time::Duration::from_secs(5),
        ));
    }
    Ok(())
}

/// Parses a JSON document; the error says where it went wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            ApiError::invalid(path.clone(), format!("{path}: {inner}"))
        }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

/// Query parameters, with errors as [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LimitSettings, RequestBounds};
    use crate::wire::convert::job_from_request;
    use crate::wire::types::ExecuteRequest;
    use proptest::prelude::*;

    /// Any JSON value, a few levels deep, with the request's field names likely.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let key = prop_oneof![
            Just("language".to_string()),
            Just("source".to_string()),
            Just("files".to_string()),
            Just("stdin".to_string()),
            Just("limits".to_string()),
            Just("tests".to_string()),
            Just("checker".to_string()),
            Just("content".to_string()),
            Just("encoding".to_string()),
            Just("name".to_string()),
            Just("cpu_time_ms".to_string()),
            Just("expected_output".to_string()),
            "[a-z_]{1,12}",
        ];
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)),
            prop_oneof![
                Just("python".to_string()),
                Just("base64".to_string()),
                Just("../x".to_string()),
                ".{0,20}"
            ]
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the body, parsing and checking a request answers a value or a
        /// 4xx error, never a panic or a 5xx.
        #[test]
        fn any_json_body_gives_a_request_or_a_client_error(value in json_value()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            match parse_json::<ExecuteRequest>(&bytes) {
                Err(error) => prop_assert!(error.status.is_client_error(), "{error:?}"),
                Ok(request) => {
                    let checked = job_from_request(
                        &request,
                        &RequestBounds::default(),
                        &LimitSettings::run_defaults(),
                        &LimitSettings::compile_defaults(),
                    );
                    if let Err(error) = checked {
                        prop_assert!(error.status.is_client_error(), "{error:?}");
                    }
                }
            }
        }

        /// Arbitrary bytes (not JSON at all, truncated JSON, invalid UTF-8) are a 400.
        #[test]
        fn any_bytes_give_a_request_or_a_client_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Err(error) = parse_json::<ExecuteRequest>(&bytes) {
                prop_assert!(error.status.is_client_error(), "{error:?}");
            }
        }
    }

    #[test]
    fn a_truncated_body_is_invalid_json_and_an_unknown_field_names_itself() {
        let err = parse_json::<ExecuteRequest>(b"{\"language\": \"py").unwrap_err();
        assert_eq!(err.code, "invalid_json");
        let err = parse_json::<ExecuteRequest>(
            br#"{"language": "python", "source": "", "limits": {"cpu": 1}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("limits.cpu"));
        assert!(
            err.message.contains("unknown field `cpu`"),
            "{}",
            err.message
        );
    }
}
