//! The native API under `/api/v1`: every route is listed in [`routes`]; handlers
//! parse, call the runner or the store, and map errors.

pub mod openapi;

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runbox_store::{JobState, Page, Scope, Submission};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::history::body_of;
use crate::intake;
use crate::logging::with_log;
use crate::state::{ApiJson, ApiQuery as Query, SharedState, refuse_when_shutting_down};
use crate::time::rfc3339;
use crate::wire::convert::submission_result;
use crate::wire::types::*;

/// Every native route.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/execute", post(execute))
        .route("/api/v1/sessions", get(crate::session::native::sessions))
        .route("/api/v1/submissions", post(submit).get(list_submissions))
        .route("/api/v1/submissions/batch", post(submit_batch))
        .route("/api/v1/submissions/{id}", get(get_submission))
        .route("/api/v1/languages", get(languages))
        .route("/api/v1/health", get(health))
        .route("/api/v1/ready", get(ready))
        .route("/api/v1/metrics", get(metrics_text))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/workers", get(workers))
        .route("/api/v1/audit", get(audit_log))
        // Operator conventions: Prometheus' default path and Kubernetes' probes.
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
}

/// Compile and run one request and answer its result.
#[utoipa::path(post, path = "/api/v1/execute", request_body = ExecuteRequest,
    responses((status = 200, body = ResultBody), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])), tag = "runs")]
pub async fn execute(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(request): ApiJson<ExecuteRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Execute)?;
    refuse_when_shutting_down(&state)?;
    if request.callback_url.is_some() {
        return Err(ApiError::invalid(
            "callback_url",
            "callback_url is for asynchronous submissions: POST /api/v1/submissions",
        ));
    }
    let language = request.language.clone();
    let (job, record) = intake::check(&state, &request).await?;
    let ran = state
        .runner
        .execute_now(&caller, job, record.clone())
        .await?;
    let body = body_of(&ran.id, &ran.result, record.format, &language);
    let status = body.status;
    Ok(with_log(
        Json(body).into_response(),
        &language,
        Some(status.as_str()),
    ))
}

/// Query of `POST /submissions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// Answer with the finished submission instead of its id (up to `timeout` seconds).
    #[serde(default)]
    pub wait: bool,
    /// How long `wait` waits, in seconds (default 60).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// Queue a request; with `?wait=true`, answer when it is done.
#[utoipa::path(post, path = "/api/v1/submissions", request_body = ExecuteRequest,
    params(SubmitQuery),
    responses((status = 202, body = SubmissionCreated), (status = 200, body = SubmissionBody),
              (status = 400, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("bearer" = [])), tag = "submissions")]
pub async fn submit(
    State(state): State<SharedState>,
    caller: Caller,
    Query(query): Query<SubmitQuery>,
    ApiJson(request): ApiJson<ExecuteRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Execute)?;
    refuse_when_shutting_down(&state)?;
    let language = request.language.clone();
    let ids = intake::enqueue_all(&state, &caller, std::slice::from_ref(&request), false).await?;
    let id = ids.into_iter().next().unwrap_or_default();
    if query.wait {
        let timeout = Duration::from_secs(query.timeout.unwrap_or(60).clamp(1, 600));
        if state.runner.wait_done(&id, timeout).await? {
            let submission = state
                .store
                .submission(&id)
                .await?
                .ok_or_else(|| ApiError::not_found("the submission was deleted"))?;
            let body = submission_body(&submission, true);
            let status = body.status.clone();
            return Ok(with_log(
                Json(body).into_response(),
                &language,
                status.as_deref(),
            ));
        }
    }
    let created = SubmissionCreated {
        id,
        state: JobState::Queued.as_str().into(),
    };
    Ok(with_log(
        (StatusCode::ACCEPTED, Json(created)).into_response(),
        &language,
        None,
    ))
}

/// Queue several requests at once.
#[utoipa::path(post, path = "/api/v1/submissions/batch", request_body = BatchRequest,
    responses((status = 202, body = BatchCreated), (status = 400, body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("bearer" = [])), tag = "submissions")]
pub async fn submit_batch(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Execute)?;
    refuse_when_shutting_down(&state)?;
    let max = state.config.requests.max_batch;
    if batch.submissions.is_empty() {
        return Err(ApiError::invalid(
            "submissions",
            "a batch needs at least one submission",
        ));
    }
    if batch.submissions.len() > max {
        return Err(ApiError::too_large(
            "submissions",
            format!(
                "{} submissions is too many: at most {max} per batch",
                batch.submissions.len()
            ),
        ));
    }
    let ids = intake::enqueue_all(&state, &caller, &batch.submissions, true).await?;
    let created = BatchCreated {
        submissions: ids
            .into_iter()
            .map(|id| SubmissionCreated {
                id,
                state: JobState::Queued.as_str().into(),
            })
            .collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(created)).into_response())
}

/// Whether `caller` may see `submission`: its own, or any with the admin scope.
fn may_see(caller: &Caller, submission: &Submission) -> bool {
    match caller {
        Caller::Anonymous { .. } => true,
        Caller::Key { key, .. } => {
            key.scope == Scope::Admin || submission.key_id.as_deref() == Some(key.id.as_str())
        }
    }
}

/// One submission with its result once done.
#[utoipa::path(get, path = "/api/v1/submissions/{id}",
    params(("id" = String, Path, description = "The submission's id")),
    responses((status = 200, body = SubmissionBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "submissions")]
pub async fn get_submission(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubmissionBody>, ApiError> {
    caller.require(Scope::Execute)?;
    match state.store.submission(&id).await? {
        Some(submission) if may_see(&caller, &submission) => {
            Ok(Json(submission_body(&submission, true)))
        }
        _ => Err(ApiError::not_found(format!("no submission {id}"))),
    }
}

/// Query of `GET /submissions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page number, from 1.
    pub page: Option<u32>,
    /// Items per page (at most the server's maximum, 100 by default).
    pub per_page: Option<u32>,
}

/// The caller's own submissions, newest first.
#[utoipa::path(get, path = "/api/v1/submissions", params(ListQuery),
    responses((status = 200, body = SubmissionPage), (status = 400, body = ErrorBody)),
    security(("bearer" = [])), tag = "submissions")]
pub async fn list_submissions(
    State(state): State<SharedState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<SubmissionPage>, ApiError> {
    caller.require(Scope::Execute)?;
    let max = state.config.requests.max_per_page;
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(20);
    if page == 0 {
        return Err(ApiError::invalid("page", "page starts at 1"));
    }
    if per_page == 0 || per_page > max {
        return Err(ApiError::invalid(
            "per_page",
            format!("per_page must be between 1 and {max}"),
        ));
    }
    let listing = state
        .store
        .list_submissions(caller.key_id(), Page { page, per_page })
        .await?;
    Ok(Json(SubmissionPage {
        submissions: listing
            .items
            .iter()
            .map(|s| submission_body(s, false))
            .collect(),
        page,
        per_page,
        total: listing.total,
    }))
}

/// A stored submission as the API writes it.
pub fn submission_body(submission: &Submission, with_result: bool) -> SubmissionBody {
    SubmissionBody {
        id: submission.id.clone(),
        state: submission.state.as_str().to_string(),
        language: submission.language.clone(),
        status: submission.status.clone(),
        created_at: rfc3339(submission.created_ms),
        started_at: submission.started_ms.map(rfc3339),
        finished_at: submission.finished_ms.map(rfc3339),
        result: if with_result {
            submission_result(submission)
        } else {
            None
        },
        request: None,
        webhook: submission.webhook.as_ref().map(|w| WebhookBody {
            url: w.url.clone(),
            attempts: w.attempts,
            delivered: w.delivered,
            status_code: w.status_code,
            error: w.error.clone(),
        }),
    }
}

/// The catalog with what is installed here.
#[utoipa::path(get, path = "/api/v1/languages",
    responses((status = 200, body = [LanguageBody])), security(("bearer" = [])), tag = "meta")]
pub async fn languages(
    State(state): State<SharedState>,
    _caller: Caller,
) -> Result<Json<Vec<LanguageBody>>, ApiError> {
    let engine = state.engine.clone();
    let list = tokio::task::spawn_blocking(move || engine.installations())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        list.into_iter()
            .map(|(language, installation)| LanguageBody {
                id: language.id.clone(),
                name: language.name.clone(),
                version: installation.version().map(str::to_string),
                runtime: language.variant().to_string(),
                installed: installation.is_installed(),
                aliases: language.aliases.clone(),
                extensions: language.extensions.clone(),
                compiled: language.is_compiled(),
                compiler_options: language.takes_compiler_options(),
                source_file: language.source_file.clone(),
            })
            .collect(),
    ))
}

/// Alive: answers as long as the process serves HTTP.
#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = HealthBody)), tag = "meta")]
pub async fn health(State(state): State<SharedState>) -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}

/// Ready: a box runs and the database answers.
#[utoipa::path(get, path = "/api/v1/ready",
    responses((status = 200, body = ReadyBody), (status = 503, body = ReadyBody)), tag = "meta")]
pub async fn ready(State(state): State<SharedState>) -> Response {
    let mut problems = Vec::new();
    let database = match state.store.ping().await {
        Ok(()) => true,
        Err(error) => {
            problems.push(format!("database: {error}"));
            false
        }
    };
    let sandbox = match state.readiness.check().await {
        Ok(()) => true,
        Err(error) => {
            problems.push(format!("sandbox: {error}"));
            false
        }
    };
    if *state.shutting_down.borrow() {
        problems.push("shutting down".into());
    }
    let ok = problems.is_empty();
    let body = ReadyBody {
        status: if ok { "ready" } else { "not_ready" }.into(),
        sandbox,
        database,
        problems,
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/api/v1/metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")), tag = "meta")]
pub async fn metrics_text(State(state): State<SharedState>) -> Response {
    if let Ok(depth) = state.store.queue_depth().await {
        for (language, n) in depth {
            metrics::gauge!("runbox_queue_depth", "language" => language).set(n as f64);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The workers of the fleet seen in the last minute (admin scope).
#[utoipa::path(get, path = "/api/v1/workers",
    responses((status = 200, body = [WorkerBody]), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "fleet")]
pub async fn workers(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<Json<Vec<WorkerBody>>, ApiError> {
    caller.require(Scope::Admin)?;
    let workers = state.store.workers(Duration::from_secs(60)).await?;
    Ok(Json(
        workers
            .into_iter()
            .map(|w| WorkerBody {
                id: w.id,
                host: w.host,
                concurrency: w.concurrency,
                running: w.running,
                last_heartbeat: rfc3339(w.last_heartbeat_ms),
                version: w.version,
            })
            .collect(),
    ))
}

/// Query of `GET /audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// How many events, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The audit log: keys created and revoked, requests rejected (admin scope).
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery),
    responses((status = 200, description = "Audit events, newest first"), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "meta")]
pub async fn audit_log(
    State(state): State<SharedState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<runbox_store::AuditRecord>>, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(state.store.audit_log(limit).await?))
}
