//! Judge0's routes and error shapes: 422 with messages by field, other errors as
//! `{"error": "..."}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runbox_store::{JobState, Page, Scope, Submission};
use serde_json::{Value, json};

use super::languages::{self, LANGUAGES};
use super::request::{FieldErrors, Judge0Config, Stored, translate};
use super::view::{STATUSES, Selection, plain_name, view};
use crate::auth::Caller;
use crate::compat::{LenientJson, installations, refuse_when_shutting_down};
use crate::error::ApiError;
use crate::state::SharedState;

/// Every Judge0 route.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/submissions", post(create).get(list))
        .route("/submissions/batch", post(create_batch).get(show_batch))
        .route("/submissions/{token}", get(show).delete(delete))
        .route("/languages", get(list_languages))
        .route("/languages/all", get(all_languages))
        .route("/languages/{id}", get(show_language))
        .route("/statuses", get(statuses))
        .route("/about", get(about))
        .route("/version", get(version))
        .route("/config_info", get(config_info))
        .route("/system_info", get(system_info))
        .route("/workers", get(workers))
        .route("/authenticate", post(authenticate))
        .route("/authorize", post(authorize))
}

/// The Judge0 release whose API this is (the official SDK keys its language ids by it).
pub const JUDGE0_VERSION: &str = "1.13.1";

/// An error in Judge0's shape.
#[derive(Debug)]
pub struct Judge0Error {
    status: StatusCode,
    body: Value,
    retry_after: Option<Duration>,
}

impl Judge0Error {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Judge0Error {
            status,
            body: json!({"error": message.into()}),
            retry_after: None,
        }
    }
}

/// Native field names to Judge0's.
fn judge0_field(field: &str) -> String {
    let name = if field == "language" || field == "version" {
        "language_id"
    } else if field == "source" || field.starts_with("files") {
        "source_code"
    } else if field.starts_with("args") {
        "command_line_arguments"
    } else if field.ends_with("cpu_time_ms") {
        "cpu_time_limit"
    } else if field.ends_with("wall_time_ms") {
        "wall_time_limit"
    } else if field.ends_with("memory_kb") {
        "memory_limit"
    } else if field.ends_with("processes") {
        "max_processes_and_or_threads"
    } else if field.ends_with("stack_kb") {
        "stack_limit"
    } else if field.ends_with("output_kb") || field.ends_with("file_size_kb") {
        "max_file_size"
    } else {
        field
    };
    name.to_string()
}

impl From<ApiError> for Judge0Error {
    fn from(error: ApiError) -> Self {
        let validation = matches!(
            error.code,
            "invalid_request"
                | "unknown_language"
                | "language_not_installed"
                | "version_unavailable"
                | "too_large"
        );
        match (&error.field, validation) {
            (Some(field), true) if field != "body" => Judge0Error {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: json!({ judge0_field(field): [error.message] }),
                retry_after: None,
            },
            _ => Judge0Error {
                status: error.status,
                body: json!({"error": error.message}),
                retry_after: error.retry_after,
            },
        }
    }
}

impl From<FieldErrors> for Judge0Error {
    fn from(errors: FieldErrors) -> Self {
        Judge0Error {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!(errors),
            retry_after: None,
        }
    }
}

impl IntoResponse for Judge0Error {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

type Judge0Result = Result<Response, Judge0Error>;
type Params = Query<HashMap<String, String>>;

/// A boolean query parameter (`true`/`1`).
fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"))
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

/// Display names of Judge0 ids with the installed versions.
async fn names(state: &SharedState) -> Result<HashMap<u32, String>, ApiError> {
    let installed = installations(state).await?;
    Ok(LANGUAGES
        .iter()
        .map(|l| {
            let version = languages::pick(l, &installed).and_then(|(_, i)| i.version());
            (l.id, l.display_name(version))
        })
        .collect())
}

/// Pins a translated request to the language version its Judge0 id runs.
async fn pin_version(
    state: &SharedState,
    request: &mut crate::wire::types::ExecuteRequest,
) -> Result<(), ApiError> {
    let Some(id) = Stored::from_adapter(request.adapter.as_ref()).map(|s| s.language_id) else {
        return Ok(());
    };
    let Some(language) = languages::by_id(id) else {
        return Ok(());
    };
    let installed = installations(state).await?;
    if let Some((entry, installation)) = languages::pick(language, &installed) {
        request.version = installation.version().map(str::to_string);
        request.runtime = Some(entry.variant().to_string());
    }
    Ok(())
}

/// A submission in Judge0's terms.
async fn render(
    state: &SharedState,
    submission: &Submission,
    selection: &Selection,
    base64: bool,
) -> Result<Value, Judge0Error> {
    let config = Judge0Config::new(&state.config);
    let names = names(state).await?;
    let name_of = |id: u32| names.get(&id).cloned().unwrap_or_else(|| plain_name(id));
    view(submission, selection, base64, &config, &name_of).map_err(|field| {
        Judge0Error::new(
            StatusCode::BAD_REQUEST,
            format!(
                "some attributes for this submission cannot be converted to UTF-8 ({field}): use base64_encoded=true"
            ),
        )
    })
}

/// The submission `token` if the caller may see it.
async fn find(
    state: &SharedState,
    caller: &Caller,
    token: &str,
) -> Result<Submission, Judge0Error> {
    match state
        .store
        .submission(token)
        .await
        .map_err(ApiError::from)?
    {
        Some(s) if may_see(caller, &s) => Ok(s),
        _ => Err(Judge0Error::new(
            StatusCode::NOT_FOUND,
            format!("submission {token} not found"),
        )),
    }
}

/// `POST /submissions`.
async fn create(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    Query(params): Params,
    body: Result<LenientJson<Value>, ApiError>,
) -> Judge0Result {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    refuse_when_shutting_down(&state)?;
    let LenientJson(body) = body?;
    let base64 = flag(&params, "base64_encoded");
    let mut request = translate(&body, base64, &state.config)?;
    pin_version(&state, &mut request).await?;
    let stored = Stored::from_adapter(request.adapter.as_ref());
    let checked = crate::intake::check(&state, &request).await?;
    let ids = state
        .runner
        .enqueue(&caller, vec![checked])
        .await
        .map_err(ApiError::from)?;
    let token = ids.into_iter().next().unwrap_or_default();
    if flag(&params, "wait") {
        let wall = stored.map_or(10.0, |s| s.wall_time_limit);
        let timeout = Duration::from_secs_f64(wall + 60.0);
        if state
            .runner
            .wait_done(&token, timeout)
            .await
            .map_err(ApiError::from)?
        {
            let submission = find(&state, &caller, &token).await?;
            let selection = Selection::parse(params.get("fields").map(String::as_str));
            let body = render(&state, &submission, &selection, base64).await?;
            return Ok((StatusCode::CREATED, Json(body)).into_response());
        }
    }
    Ok((StatusCode::CREATED, Json(json!({"token": token}))).into_response())
}

/// `GET /submissions/{token}`.
async fn show(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    Path(token): Path<String>,
    Query(params): Params,
) -> Judge0Result {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let submission = find(&state, &caller, &token).await?;
    let selection = Selection::parse(params.get("fields").map(String::as_str));
    let body = render(
        &state,
        &submission,
        &selection,
        flag(&params, "base64_encoded"),
    )
    .await?;
    Ok(Json(body).into_response())
}

/// `DELETE /submissions/{token}`: a finished submission, answered one last time.
async fn delete(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    Path(token): Path<String>,
    Query(params): Params,
) -> Judge0Result {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let submission = find(&state, &caller, &token).await?;
    if submission.state != JobState::Done {
        let id = if submission.state == JobState::Queued {
            1
        } else {
            2
        };
        return Err(Judge0Error::new(
            StatusCode::BAD_REQUEST,
            format!(
                "submission cannot be deleted because its status is {id} ({})",
                super::view::status_description(id)
            ),
        ));
    }
    let selection = Selection::parse(params.get("fields").map(String::as_str));
    let body = render(
        &state,
        &submission,
        &selection,
        flag(&params, "base64_encoded"),
    )
    .await?;
    state
        .store
        .delete_submission(&token)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(body).into_response())
}

/// `GET /submissions`: the caller's submissions, newest first, paged.
async fn list(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    Query(params): Params,
) -> Judge0Result {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let number = |name: &str, default: u32| -> Result<u32, Judge0Error> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                Judge0Error::new(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be a positive integer"),
                )
            }),
        }
    };
    let page = number("page", 1)?;
    let per_page = number("per_page", 20)?.min(state.config.requests.max_per_page);
    let listing = state
        .store
        .list_submissions(caller.key_id(), Page { page, per_page })
        .await
        .map_err(ApiError::from)?;
    let selection = Selection::parse(params.get("fields").map(String::as_str));
    let base64 = flag(&params, "base64_encoded");
    let mut submissions = Vec::with_capacity(listing.items.len());
    // Listings carry summaries only: a page's results are read one by one, so
    // no query ever holds every stored result of a page at once.
    for summary in &listing.items {
        let Some(submission) = state
            .store
            .submission(&summary.id)
            .await
            .map_err(ApiError::from)?
        else {
            continue;
        };
        submissions.push(render(&state, &submission, &selection, base64).await?);
    }
    let total_pages = listing.total.div_ceil(u64::from(per_page));
    Ok(Json(json!({
        "submissions": submissions,
        "meta": {
            "current_page": page,
            "next_page": (u64::from(page) < total_pages).then_some(page + 1),
            "prev_page": (page > 1).then(|| page - 1),
            "total_pages": total_pages,
            "total_count": listing.total,
        }
    }))
    .into_response())
}

/// `POST /submissions/batch`: each entry answers a token or its own errors.
async fn create_batch(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    Query(params): Params,
    body: Result<LenientJson<Value>, ApiError>,
) -> Judge0Result {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    refuse_when_shutting_down(&state)?;
    let LenientJson(body) = body?;
    let base64 = flag(&params, "base64_encoded");
    let Some(items) = body.get("submissions").and_then(Value::as_array) else {
        let mut errors = FieldErrors::new();
        errors.insert("submissions".into(), vec!["can't be blank".into()]);
        return Err(errors.into());
    };
    let max = state.config.requests.max_batch;
    if items.is_empty() || items.len() > max {
        return Err(Judge0Error::new(
            StatusCode::BAD_REQUEST,
            format!("number of submissions in a batch should be between 1 and {max}"),
        ));
    }
    let mut answers: Vec<Option<Value>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    for item in items {
        let checked = match translate(item, base64, &state.config) {
            Ok(mut request) => match pin_version(&state, &mut request).await {
                Ok(()) => crate::intake::check(&state, &request)
                    .await
                    .map_err(Judge0Error::from),
                Err(error) => Err(Judge0Error::from(error)),
            },
            Err(errors) => Err(Judge0Error::from(errors)),
        };
        match checked {
            Ok(job) => {
                answers.push(None);
                valid.push(job);
            }
            Err(error) => answers.push(Some(error.body)),
        }
    }
    let tokens = if valid.is_empty() {
        Vec::new()
    } else {
        state
            .runner
            .enqueue(&caller, valid)
            .await
            .map_err(ApiError::from)?
    };
    let mut tokens = tokens.into_iter();
    let mut out = Vec::with_capacity(answers.len());
    for answer in answers {
        match answer {
            Some(errors) => out.push(errors),
            None => out.push(json!({"token": tokens.next().unwrap_or_default()})),
        }
    }
    Ok((StatusCode::CREATED, Json(Value::Array(out))).into_response())
}

/// `GET /submissions/batch?tokens=a,b`.
async fn show_batch(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    Query(params): Params,
) -> Judge0Result {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let tokens: Vec<&str> = params
        .get("tokens")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let max = state.config.requests.max_batch;
    if tokens.is_empty() || tokens.len() > max {
        return Err(Judge0Error::new(
            StatusCode::BAD_REQUEST,
            format!("number of tokens in a batch should be between 1 and {max}"),
        ));
    }
    let selection = Selection::parse(params.get("fields").map(String::as_str));
    let base64 = flag(&params, "base64_encoded");
    let mut submissions = Vec::with_capacity(tokens.len());
    for token in tokens {
        match find(&state, &caller, token).await {
            Ok(submission) => {
                submissions.push(render(&state, &submission, &selection, base64).await?)
            }
            Err(_) => submissions.push(Value::Null),
        }
    }
    Ok(Json(json!({ "submissions": submissions })).into_response())
}

/// `GET /languages`: the installed languages under every Judge0 id.
async fn list_languages(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
) -> Judge0Result {
    caller?;
    let installed = installations(&state).await?;
    let mut out: Vec<(String, u32)> = listed(&installed)
        .into_iter()
        .map(|(l, version)| (l.display_name(version.as_deref()), l.id))
        .collect();
    out.sort();
    Ok(Json(
        out.into_iter()
            .map(|(name, id)| json!({"id": id, "name": name}))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

/// The ids `GET /languages` lists, with the installed version each runs: the
/// id clients pick for each language (the official SDK's), and for every other
/// installed version of it the id whose Judge0 version is closest to it. The
/// rest are archived, as Judge0 marks retired ids: they still run.
fn listed(
    installed: &[(
        std::sync::Arc<runbox_engine::Language>,
        runbox_engine::Installation,
    )],
) -> Vec<(&'static languages::Judge0Language, Option<String>)> {
    let mut out: Vec<(&'static languages::Judge0Language, Option<String>)> = Vec::new();
    for main in LANGUAGES.iter().filter(|l| languages::is_main(l)) {
        let Some((_, installation)) = languages::pick(main, installed) else {
            continue;
        };
        out.push((main, installation.version().map(str::to_string)));
        let main_version = installation.version().map(str::to_string);
        for (entry, installation) in installed
            .iter()
            .filter(|(l, i)| l.id == main.runbox && i.is_installed())
        {
            let version = installation.version().map(str::to_string);
            if version == main_version {
                continue;
            }
            // The id that picks exactly this version, if one does.
            let best = LANGUAGES
                .iter()
                .filter(|l| l.runbox == main.runbox)
                .find(|l| {
                    languages::pick(l, installed)
                        .is_some_and(|(e, _)| e.variant() == entry.variant())
                        && languages::is_exact(l, version.as_deref())
                });
            if let Some(best) = best {
                out.push((best, version));
            }
        }
    }
    out
}

/// `GET /languages/all`: every id, installed or not, with `is_archived` for the
/// ones `GET /languages` does not list.
async fn all_languages(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
) -> Judge0Result {
    caller?;
    let installed = installations(&state).await?;
    let shown: Vec<u32> = listed(&installed).into_iter().map(|(l, _)| l.id).collect();
    let out: Vec<Value> = LANGUAGES
        .iter()
        .map(|l| {
            let version = languages::pick(l, &installed).and_then(|(_, i)| i.version());
            json!({
                "id": l.id,
                "name": l.display_name(version),
                "is_archived": !shown.contains(&l.id),
            })
        })
        .collect();
    Ok(Json(out).into_response())
}

/// `GET /languages/{id}`.
async fn show_language(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Judge0Result {
    caller?;
    let not_found = || {
        Judge0Error::new(
            StatusCode::NOT_FOUND,
            format!("language with id {id} doesn't exist"),
        )
    };
    let entry = id
        .parse::<u32>()
        .ok()
        .and_then(languages::by_id)
        .ok_or_else(not_found)?;
    let installed = installations(&state).await?;
    let shown: Vec<u32> = listed(&installed).into_iter().map(|(l, _)| l.id).collect();
    let Some((language, installation)) =
        languages::pick(entry, &installed).cloned().or_else(|| {
            installed
                .iter()
                .find(|(l, _)| l.id == entry.runbox)
                .cloned()
        })
    else {
        return Err(not_found());
    };
    let job = runbox_engine::Job {
        language: language.id.clone(),
        version: installation.version().map(str::to_string),
        runtime: Some(language.variant().to_string()),
        files: vec![runbox_engine::SourceFile::unnamed("")],
        ..runbox_engine::Job::default()
    };
    let commands = if installation.is_installed() {
        state
            .runner
            .check(job)
            .await
            .ok()
            .map(|checked| state.engine.commands(&checked))
    } else {
        None
    };
    Ok(Json(json!({
        "id": entry.id,
        "name": entry.display_name(installation.version()),
        "is_archived": !shown.contains(&entry.id),
        "source_file": language.source_file,
        "compile_cmd": commands.as_ref().and_then(|c| c.compile.as_ref()).map(|c| c.join(" ")),
        "run_cmd": commands.as_ref().map(|c| c.run.join(" ")),
    }))
    .into_response())
}

/// `GET /statuses`.
async fn statuses(caller: Result<Caller, ApiError>) -> Judge0Result {
    caller?;
    Ok(Json(
        STATUSES
            .iter()
            .map(|(id, description)| json!({"id": id, "description": description}))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

/// `GET /about`.
async fn about(caller: Result<Caller, ApiError>) -> Judge0Result {
    caller?;
    Ok(Json(json!({
        "version": JUDGE0_VERSION,
        "homepage": "https://github.com/runbox",
        "source_code": "https://github.com/runbox",
        "maintainer": "runbox (a Judge0-compatible API)",
        "runbox_version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response())
}

/// `GET /version`.
async fn version(caller: Result<Caller, ApiError>) -> Result<String, Judge0Error> {
    caller?;
    Ok(JUDGE0_VERSION.to_string())
}

/// `GET /config_info`: Judge0's settings with this server's figures.
async fn config_info(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
) -> Judge0Result {
    caller?;
    let c = Judge0Config::new(&state.config);
    Ok(Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": true,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": true,
        "enable_callbacks": true,
        "callbacks_max_tries": 3,
        "callbacks_timeout": state.config.webhooks.timeout_ms as f64 / 1000.0,
        "enable_additional_files": true,
        "max_queue_size": state.config.queue_capacity,
        "cpu_time_limit": c.cpu_time_limit,
        "max_cpu_time_limit": c.max_cpu_time_limit,
        "cpu_extra_time": c.cpu_extra_time,
        "max_cpu_extra_time": c.max_cpu_extra_time,
        "wall_time_limit": c.wall_time_limit,
        "max_wall_time_limit": c.max_wall_time_limit,
        "memory_limit": c.memory_limit,
        "max_memory_limit": c.max_memory_limit,
        "stack_limit": c.stack_limit,
        "max_stack_limit": c.max_stack_limit,
        "max_processes_and_or_threads": c.max_processes_and_or_threads,
        "max_max_processes_and_or_threads": c.max_max_processes_and_or_threads,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": true,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": true,
        "max_file_size": c.max_file_size,
        "max_max_file_size": c.max_max_file_size,
        "number_of_runs": c.number_of_runs,
        "max_number_of_runs": c.max_number_of_runs,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": state.config.requests.max_source_bytes / 1024,
        "enable_batched_submissions": true,
        "max_submission_batch_size": state.config.requests.max_batch,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "allow_enable_network": state.config.network.enabled,
        "enable_network": false,
    }))
    .into_response())
}

/// `GET /system_info`: the host's CPU and memory, as `lscpu` and `free` name them.
async fn system_info(caller: Result<Caller, ApiError>) -> Judge0Result {
    caller?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)
                    .map(|r| r.trim_start_matches(':').trim().to_string())
            })
            .unwrap_or_default()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Json(json!({
        "Architecture": std::env::consts::ARCH,
        "CPU(s)": cpus.to_string(),
        "Model name": model,
        "Mem": mem("MemTotal"),
        "MemAvailable": mem("MemAvailable"),
        "Swap": mem("SwapTotal"),
    }))
    .into_response())
}

/// `GET /workers`: the queue and this fleet's workers, in Judge0's shape.
async fn workers(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
) -> Judge0Result {
    caller?;
    let depth: u64 = state
        .store
        .queue_depth()
        .await
        .map_err(ApiError::from)?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let fleet = state
        .store
        .workers(Duration::from_secs(60))
        .await
        .map_err(ApiError::from)?;
    let available: u32 = fleet.iter().map(|w| w.concurrency).sum();
    let working: u32 = fleet.iter().map(|w| w.running).sum();
    Ok(Json(json!([{
        "queue": JUDGE0_VERSION,
        "size": depth,
        "available": available,
        "idle": available.saturating_sub(working),
        "working": working,
        "paused": 0,
        "failed": 0,
    }]))
    .into_response())
}

/// `POST /authenticate`: 200 when the `X-Auth-Token` (or any runbox key header)
/// is accepted.
async fn authenticate(caller: Result<Caller, ApiError>) -> Judge0Result {
    caller?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /authorize`: 200 when `X-Auth-User` (or the caller's key) is an admin key.
async fn authorize(
    State(state): State<SharedState>,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
) -> Judge0Result {
    if let Some(user) = headers.get("x-auth-user").and_then(|v| v.to_str().ok()) {
        let key = state
            .store
            .key_by_hash(&crate::auth::key_hash(user.trim()))
            .await
            .map_err(ApiError::from)?;
        return match key {
            Some(key) if key.revoked_ms.is_none() && key.scope == Scope::Admin => {
                Ok(StatusCode::OK.into_response())
            }
            _ => Err(Judge0Error::new(
                StatusCode::FORBIDDEN,
                "X-Auth-User is not an admin API key",
            )),
        };
    }
    let caller = caller?;
    caller.require(Scope::Admin)?;
    Ok(StatusCode::OK.into_response())
}
