//! `ApiError`: the one place where errors become status codes and JSON bodies.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answer: a status, a stable code, a message, maybe the field at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What happened and what to do.
    pub message: String,
    /// The request field at fault.
    pub field: Option<String>,
    /// For 429 and 503: when to try again.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new_public(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, code, message)
    }

    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 400: the request is malformed; `field` names the culprit.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        }
    }

    /// 400 without a field (e.g. a body that is not JSON).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 413: too large; `field` names what.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
        }
    }

    /// 401: no key, or a key that is not valid.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid key without the scope.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 429: over a rate limit or concurrency cap.
    pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// 503: the queue is full or the service is shutting down.
    pub fn unavailable(
        code: &'static str,
        message: impl Into<String>,
        retry_after: Duration,
    ) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// 500: runbox's own failure. The message is logged; the client gets a short one.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("runbox failed to handle the request: {message}"),
        )
    }
}

impl From<runbox_engine::JobError> for ApiError {
    /// A job the engine refused: the client's mistake, a 400 naming the field.
    fn from(error: runbox_engine::JobError) -> Self {
        use runbox_engine::JobError as E;
        let code = match &error {
            E::UnknownLanguage { .. } => "unknown_language",
            E::NotInstalled { .. } => "language_not_installed",
            E::VersionUnavailable { .. } => "version_unavailable",
            E::Invalid { .. } => "invalid_request",
        };
        ApiError {
            field: Some(error.field().to_string()),
            ..ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string())
        }
    }
}

impl From<runbox_store::Error> for ApiError {
    /// The database failing is the service being unavailable for a while (503 with
    /// `Retry-After`), not a bad request; the details go to the log.
    fn from(error: runbox_store::Error) -> Self {
        tracing::error!(%error, "database error");
        ApiError::unavailable(
            "database_unavailable",
            "the database is not answering: try again shortly",
            Duration::from_secs(5),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response.extensions_mut().insert(RejectedCode(self.code));
        response
    }
}

/// Marks a response as an error, for the request log and the metrics.
#[derive(Debug, Clone, Copy)]
pub struct RejectedCode(pub &'static str);

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `invalid_request`, `unknown_language`, `unauthorized`, ...
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
