//! Piston v2's API over the runner: `GET /api/v2/runtimes`, `POST /api/v2/execute`,
//! and the WebSocket `GET /api/v2/connect` ([`connect`]).
//!
//! Better than Piston where it hurts: bodies up to the server's
//! `requests.max_body_bytes` (Piston refuses above 100 KB), memory limits in
//! bytes converted exactly (KiB = 1024 bytes), and a bounded queue that answers
//! 429 with `Retry-After` when full, instead of queueing without end. Requests are
//! read as JSON whatever their `Content-Type` (the npm client sends none).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use runbox_engine::{Installation, Language};
use runbox_store::Scope;
use serde_json::{Map, Value, json};

use runbox_engine::Stage;
use runbox_sandbox::{LimitHit, Status};

use crate::auth::Caller;
use crate::compat::{LenientJson, execute as run_now, installations, native_request};
use crate::error::ApiError;
use crate::state::SharedState;
use crate::wire::types::{Data, EncodedData, Encoding, FileInput, LimitsInput};

mod connect;

/// Every Piston route.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v2/runtimes", get(runtimes))
        .route("/api/v2/execute", post(execute))
        .route("/api/v2/connect", get(connect::connect))
}

/// Piston's defaults: 10 s to compile, 3 s to run.
const DEFAULT_COMPILE_MS: u64 = 10_000;
const DEFAULT_RUN_MS: u64 = 3_000;

/// An error in Piston's shape: `{"message": "..."}`.
#[derive(Debug)]
pub struct PistonError {
    status: StatusCode,
    message: String,
    retry_after: Option<std::time::Duration>,
}

impl PistonError {
    fn bad(message: impl Into<String>) -> Self {
        PistonError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<ApiError> for PistonError {
    fn from(error: ApiError) -> Self {
        // A full queue is "too many requests" to Piston's clients.
        let status = if error.code == "queue_full" {
            StatusCode::TOO_MANY_REQUESTS
        } else if error.status == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else if error.status.is_client_error()
            && error.status != StatusCode::UNAUTHORIZED
            && error.status != StatusCode::FORBIDDEN
            && error.status != StatusCode::TOO_MANY_REQUESTS
        {
            StatusCode::BAD_REQUEST
        } else {
            error.status
        };
        PistonError {
            status,
            message: error.message,
            retry_after: error.retry_after,
        }
    }
}

impl IntoResponse for PistonError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({"message": self.message}))).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Piston's name of a runbox language, and its runtime where Piston names one.
pub fn piston_name(id: &str) -> (&str, Option<&'static str>) {
    match id {
        "cpp" => ("c++", Some("gcc")),
        "c" => ("c", Some("gcc")),
        "javascript" => ("javascript", Some("node")),
        "typescript" => ("typescript", Some("tsc")),
        "csharp" => ("csharp", Some("mono")),
        "fortran" => ("fortran", Some("gfortran")),
        "d" => ("d", Some("gdc")),
        other => (other, None),
    }
}

/// The installed languages a Piston language name (or alias) may mean.
fn candidates<'a>(
    name: &str,
    installed: &'a [(Arc<Language>, Installation)],
) -> Vec<&'a (Arc<Language>, Installation)> {
    let wanted = name.trim().to_lowercase();
    installed
        .iter()
        .filter(|(language, installation)| {
            installation.is_installed()
                && (piston_name(&language.id).0 == wanted
                    || language.id == wanted
                    || language.aliases.contains(&wanted))
        })
        .collect()
}

/// `GET /api/v2/runtimes`.
async fn runtimes(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
) -> Result<Response, PistonError> {
    caller?;
    let installed = installations(&state).await?;
    let list: Vec<Value> = installed
        .iter()
        .filter(|(_, i)| i.is_installed())
        .map(|(language, installation)| {
            let (name, runtime) = piston_name(&language.id);
            let mut aliases: Vec<String> = Vec::new();
            if name != language.id {
                aliases.push(language.id.clone());
            }
            aliases.extend(
                language
                    .aliases
                    .iter()
                    .filter(|a| a.as_str() != name)
                    .cloned(),
            );
            let mut entry = json!({
                "language": name,
                "version": installation.version().unwrap_or("0.0.0"),
                "aliases": aliases,
            });
            if let Some(runtime) = runtime {
                entry["runtime"] = json!(runtime);
            }
            entry
        })
        .collect();
    Ok(Json(list).into_response())
}

/// A limit of the request: absent, null or -1 (Piston's "no limit of my own")
/// means the default; another negative number is refused; otherwise at most `max`.
fn limit(body: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, PistonError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let Some(v) = n.as_f64().filter(|v| v.is_finite()) else {
                return Err(PistonError::bad(format!(
                    "If specified, {key} must be a number"
                )));
            };
            if v == -1.0 {
                return Ok(None);
            }
            if v < 0.0 {
                return Err(PistonError::bad(format!(
                    "{key} must be a positive number (or -1 for the default)"
                )));
            }
            if v > max as f64 {
                return Err(PistonError::bad(format!(
                    "{key} cannot exceed the configured limit of {max}"
                )));
            }
            Ok(Some(v.ceil() as u64))
        }
        Some(_) => Err(PistonError::bad(format!(
            "If specified, {key} must be a number"
        ))),
    }
}

/// Decodes a file's content as its `encoding` says.
fn decode_file(content: &str, encoding: &str, index: usize) -> Result<Vec<u8>, PistonError> {
    match encoding {
        "utf8" | "utf-8" => Ok(content.as_bytes().to_vec()),
        "base64" => BASE64
            .decode(content.trim())
            .map_err(|_| PistonError::bad(format!("files[{index}].content is not valid base64"))),
        "hex" => hex::decode(content.trim())
            .map_err(|_| PistonError::bad(format!("files[{index}].content is not valid hex"))),
        other => Err(PistonError::bad(format!(
            "files[{index}].encoding must be utf8, base64 or hex, not '{other}'"
        ))),
    }
}

/// A Piston job, checked and translated: the native request and the runtime
/// that will run it.
pub(crate) struct PistonJob {
    pub request: crate::wire::types::ExecuteRequest,
    /// Piston's name of the language.
    pub language: String,
    /// The installed version.
    pub version: String,
}

/// Reads a Piston job (the body of `execute`, or the `init` message of `connect`).
pub(crate) async fn parse_job(
    state: &SharedState,
    body: &Map<String, Value>,
) -> Result<PistonJob, PistonError> {
    let Some(language) = body.get("language").and_then(Value::as_str) else {
        return Err(PistonError::bad("language is required as a string"));
    };
    let Some(version) = body.get("version").and_then(Value::as_str) else {
        return Err(PistonError::bad("version is required as a string"));
    };
    let Some(files) = body.get("files").and_then(Value::as_array) else {
        return Err(PistonError::bad("files is required as an array"));
    };
    if files.is_empty() {
        return Err(PistonError::bad("files is required as an array"));
    }
    let installed = installations(state).await?;
    // Piston's rule: of the runtimes of that language whose version the selector
    // holds, the highest wins.
    let runtime = candidates(language, &installed)
        .into_iter()
        .filter(|(_, installation)| {
            runbox_engine::version::range_matches(version, installation.version().unwrap_or("0"))
                .unwrap_or(false)
        })
        .max_by(|a, b| {
            let version =
                |i: &Installation| i.version().and_then(runbox_engine::version::normalized);
            version(&a.1).cmp(&version(&b.1))
        })
        .ok_or_else(|| PistonError::bad(format!("{language}-{version} runtime is unknown")))?;
    let (lang, installation) = runtime;
    let mut inputs = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let Some(content) = file.get("content").and_then(Value::as_str) else {
            return Err(PistonError::bad(format!(
                "files[{i}].content is required as a string"
            )));
        };
        let encoding = file
            .get("encoding")
            .and_then(Value::as_str)
            .unwrap_or("utf8");
        let bytes = decode_file(content, encoding, i)?;
        let name = file
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if i > 0 && name.is_none() {
            return Err(PistonError::bad(format!(
                "files[{i}].name is required for every file after the first"
            )));
        }
        inputs.push(FileInput {
            name,
            content: BASE64.encode(bytes),
            encoding: Encoding::Base64,
        });
    }
    let stdin = match body.get("stdin") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(PistonError::bad("stdin must be a string")),
    };
    let args = match body.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| match a {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(PistonError::bad("args must be an array of strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(PistonError::bad("args must be an array of strings")),
    };
    let run_max = &state.config.run_limits;
    let compile_max = &state.config.compile_limits;
    let compile_timeout = limit(body, "compile_timeout", compile_max.max_wall_time_ms)?;
    let run_timeout = limit(body, "run_timeout", run_max.max_wall_time_ms)?;
    let compile_cpu = limit(body, "compile_cpu_time", compile_max.max_cpu_time_ms)?;
    let run_cpu = limit(body, "run_cpu_time", run_max.max_cpu_time_ms)?;
    let compile_memory = limit(
        body,
        "compile_memory_limit",
        compile_max.max_memory_kb << 10,
    )?;
    let run_memory = limit(body, "run_memory_limit", run_max.max_memory_kb << 10)?;

    let mut request = native_request(&lang.id);
    // The version chosen here is the one that runs (one of several of the language).
    request.version = installation.version().map(str::to_string);
    request.runtime = Some(lang.variant().to_string());
    request.combined_output = true;
    request.files = Some(inputs);
    request.stdin = stdin.map(|s| {
        Data::Encoded(EncodedData {
            content: s,
            encoding: Encoding::Utf8,
        })
    });
    request.args = args;
    let run_wall = run_timeout.unwrap_or(DEFAULT_RUN_MS).max(1);
    request.limits = Some(LimitsInput {
        cpu_time_ms: Some(run_cpu.unwrap_or(run_wall).max(1)),
        wall_time_ms: Some(run_wall),
        memory_kb: run_memory.map(|b| b.div_ceil(1024)),
        ..LimitsInput::default()
    });
    if lang.is_compiled() {
        request.compile_limits = Some(LimitsInput {
            cpu_time_ms: compile_cpu.or(compile_timeout),
            wall_time_ms: compile_timeout.or(compile_cpu.map(|c| c.max(DEFAULT_COMPILE_MS))),
            memory_kb: compile_memory.map(|b| b.div_ceil(1024)),
            ..LimitsInput::default()
        });
    }
    Ok(PistonJob {
        request,
        language: piston_name(&lang.id).0.to_string(),
        version: installation.version().unwrap_or("0.0.0").to_string(),
    })
}

/// `POST /api/v2/execute`.
async fn execute(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    body: Result<LenientJson<Value>, ApiError>,
) -> Result<Response, PistonError> {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let LenientJson(body) = body?;
    let Some(body) = body.as_object() else {
        return Err(PistonError::bad("the body must be a JSON object"));
    };
    let job = parse_job(&state, body).await?;
    let result = run_now(&state, &caller, job.request).await?;
    let mut answer = json!({
        "language": job.language,
        "version": job.version,
    });
    if let Some(compile) = &result.compile {
        answer["compile"] = stage(&compile.outcome);
    }
    answer["run"] = match &result.run {
        Some(run) => stage(run),
        // Piston answers a failed compile with an empty run stage.
        None => json!({
            "stdout": "", "stderr": "", "output": "", "code": null, "signal": null,
            "message": "the compile stage failed: nothing ran", "status": null,
            "cpu_time": 0, "wall_time": 0, "memory": 0,
        }),
    };
    Ok(Json(answer).into_response())
}

/// Piston's status and message of a stage.
pub fn status_of(stage: &Stage) -> (Option<&'static str>, Option<String>) {
    match stage.status {
        Status::Ok => (None, None),
        Status::RuntimeError => match &stage.signal {
            Some(signal) => (Some("SG"), Some(format!("Killed by signal {signal}"))),
            None => (
                Some("RE"),
                Some(format!("Exited with code {}", stage.exit_code.unwrap_or(1))),
            ),
        },
        Status::TimeLimitExceeded => (
            Some("TO"),
            Some(format!(
                "Time limit exceeded ({} limit)",
                if stage.limit_hit == Some(LimitHit::WallTime) {
                    "wall"
                } else {
                    "CPU"
                }
            )),
        ),
        Status::MemoryLimitExceeded => (
            Some("SG"),
            Some("Memory limit exceeded: killed by SIGKILL".into()),
        ),
        Status::OutputLimitExceeded if stage.stderr_truncated && !stage.stdout_truncated => {
            (Some("EL"), Some("stderr length exceeded".into()))
        }
        Status::OutputLimitExceeded => (Some("OL"), Some("stdout length exceeded".into())),
        Status::InternalError => (Some("XX"), Some("internal error".into())),
    }
}

/// A stage as Piston writes it (times in ms, memory in bytes).
pub fn stage(stage: &Stage) -> Value {
    let mut fields = json!({
        "stdout": String::from_utf8_lossy(&stage.stdout),
        "stderr": String::from_utf8_lossy(&stage.stderr),
        "output": String::from_utf8_lossy(&stage.interleaved()),
    });
    add_ending(&mut fields, stage);
    fields
}

/// How a stage ended, as Piston writes it into a stage and a WebSocket `exit`:
/// code, signal name, message, status, times in ms, memory in bytes.
pub(crate) fn add_ending(fields: &mut Value, stage: &Stage) {
    let (status, message) = status_of(stage);
    let ending = json!({
        "code": stage.exit_code,
        "signal": stage.signal,
        "message": message,
        "status": status,
        "cpu_time": stage.cpu_time.as_millis() as u64,
        "wall_time": stage.wall_time.as_millis() as u64,
        "memory": stage.memory_kb * 1024,
    });
    if let (Some(fields), Value::Object(ending)) = (fields.as_object_mut(), ending) {
        fields.extend(ending);
    }
}
