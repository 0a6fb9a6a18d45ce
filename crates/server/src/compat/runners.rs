//! The three home-grown back-ends runbox replaces, as thin adapters:
//!
//! - the C exercise service ([`c_exercise`]): `POST /submit`, `/encoded`, `/execute_code`;
//! - a multi-language runner: `POST /api/execute` (`X-API-Key`), `GET /api/languages`,
//!   `GET /api/system`, `GET /health`;
//! - a learning platform's executor: `POST /api/v1/code/execute` (`Authorization:
//!   Bearer`), for python, javascript and typescript.

pub mod c_exercise;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use runbox_store::Scope;
use serde::Deserialize;
use serde_json::{Value, json};

use runbox_engine::RunResult;
use runbox_sandbox::Status;

use crate::auth::Caller;
use crate::compat::{
    LenientJson, execute, installation, installations, lossy, millis, native_request, now_rfc3339,
};
use crate::error::ApiError;
use crate::state::SharedState;
use crate::wire::types::LimitsInput;

/// Every route of the home-grown contracts.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/submit", post(c_exercise::submit))
        .route("/encoded", post(c_exercise::encoded))
        .route("/execute_code", post(c_exercise::execute_code))
        .route("/api/execute", post(runner_execute))
        .route("/api/languages", get(runner_languages))
        .route("/api/system", get(runner_system))
        .route("/health", get(health))
        .route("/api/v1/code/execute", post(learning_execute))
}

/// An error as the runner and the learning platform write it:
/// `{"success": false, "error": "..."}`.
pub struct RunnerError {
    status: StatusCode,
    error: String,
}

impl RunnerError {
    fn bad(error: impl Into<String>) -> Self {
        RunnerError {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
        }
    }
}

impl From<ApiError> for RunnerError {
    fn from(error: ApiError) -> Self {
        match error.status {
            StatusCode::UNAUTHORIZED => RunnerError {
                status: StatusCode::UNAUTHORIZED,
                error: "Invalid API key".into(),
            },
            StatusCode::PAYLOAD_TOO_LARGE => {
                RunnerError::bad(format!("Validation error: {}", error.message))
            }
            s if s == StatusCode::BAD_REQUEST && error.code == "invalid_request" => {
                RunnerError::bad(format!("Validation error: {}", error.message))
            }
            status => RunnerError {
                status,
                error: error.message,
            },
        }
    }
}

impl IntoResponse for RunnerError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"success": false, "error": self.error})),
        )
            .into_response()
    }
}

/// The request of `POST /api/execute`.
#[derive(Debug, Deserialize)]
struct RunnerRequest {
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    input: Option<String>,
    /// Milliseconds.
    #[serde(default)]
    timeout: Option<f64>,
}

/// The run stage's outputs and figures, or the compiler's when it failed.
struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
    exit_code: Option<i32>,
    time_ms: f64,
}

fn outcome(result: &RunResult) -> Outcome {
    match &result.run {
        Some(run) => {
            let mut stderr = lossy(&run.stderr);
            if !matches!(run.status, Status::Ok | Status::RuntimeError) {
                if !stderr.is_empty() && !stderr.ends_with('\n') {
                    stderr.push('\n');
                }
                stderr.push_str(&run.status.as_str().replace('_', " "));
            }
            Outcome {
                success: run.status == Status::Ok,
                stdout: lossy(&run.stdout),
                stderr,
                exit_code: run.exit_code.or_else(|| {
                    run.signal
                        .as_deref()
                        .and_then(runbox_sandbox::outcome::signal_number)
                        .map(|n| 128 + n)
                }),
                time_ms: millis(run.wall_time),
            }
        }
        None => {
            let (output, time) = match &result.compile {
                Some(compile) => (
                    [compile.stdout.as_slice(), compile.stderr.as_slice()].concat(),
                    millis(compile.wall_time),
                ),
                None => (result.message.clone().unwrap_or_default().into_bytes(), 0.0),
            };
            Outcome {
                success: false,
                stdout: String::new(),
                stderr: lossy(&output),
                exit_code: result.compile.as_ref().and_then(|c| c.exit_code),
                time_ms: time,
            }
        }
    }
}

/// Resolves a language name the runner knows to an installed catalog id.
async fn supported(state: &SharedState, name: &str) -> Result<String, RunnerError> {
    match installation(state, name).await? {
        Some((language, installation)) if installation.is_installed() => Ok(language.id.clone()),
        _ => Err(RunnerError::bad(format!(
            "Language '{name}' is not supported"
        ))),
    }
}

/// `POST /api/execute`.
async fn runner_execute(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    body: Result<LenientJson<RunnerRequest>, ApiError>,
) -> Result<Response, RunnerError> {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let LenientJson(body) = body?;
    let Some(name) = body.language.filter(|l| !l.trim().is_empty()) else {
        return Err(RunnerError::bad("Validation error: language is required"));
    };
    let Some(code) = body.code.filter(|c| !c.is_empty()) else {
        return Err(RunnerError::bad("Validation error: code is required"));
    };
    let max = state.config.requests.max_source_bytes;
    if code.len() > max {
        return Err(RunnerError::bad(format!(
            "Validation error: code is {} bytes, at most {max} are allowed",
            code.len()
        )));
    }
    let id = supported(&state, &name).await?;
    let mut request = native_request(&id);
    request.source = Some(code);
    request.stdin = body.input.map(crate::wire::types::Data::Text);
    if let Some(timeout) = body.timeout {
        let max_ms = state.config.run_limits.max_wall_time_ms;
        if !timeout.is_finite() || timeout < 1.0 || timeout > max_ms as f64 {
            return Err(RunnerError::bad(format!(
                "Validation error: timeout must be between 1 and {max_ms} ms"
            )));
        }
        let ms = timeout.ceil() as u64;
        request.limits = Some(LimitsInput {
            cpu_time_ms: Some(ms.min(state.config.run_limits.max_cpu_time_ms)),
            wall_time_ms: Some(ms),
            ..LimitsInput::default()
        });
    }
    let result = execute(&state, &caller, request).await?;
    let o = outcome(&result);
    Ok(Json(json!({
        "success": o.success,
        "language": id,
        "output": o.stdout,
        "error": o.stderr,
        "exitCode": o.exit_code,
        "executionTime": o.time_ms.round() as u64,
        "timestamp": now_rfc3339(),
    }))
    .into_response())
}

/// `GET /api/languages`: the installed languages.
async fn runner_languages(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
) -> Result<Response, RunnerError> {
    caller?;
    let list: Vec<Value> = installations(&state)
        .await?
        .iter()
        .filter(|(_, i)| i.is_installed())
        .map(|(language, _)| {
            json!({
                "id": language.id,
                "name": language.name,
                "type": if language.is_compiled() { "compiled" } else { "interpreted" },
                "fileExtension": format!(".{}", language.extensions.first().map_or("txt", String::as_str)),
            })
        })
        .collect();
    Ok(Json(json!({"success": true, "languages": list})).into_response())
}

/// `GET /api/system`: the host and the service.
async fn runner_system(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
) -> Result<Response, RunnerError> {
    caller?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.trim_start_matches(':').split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let installed = installations(&state).await?;
    Ok(Json(json!({
        "success": true,
        "system": {
            "platform": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "hostname": crate::config::host_name(),
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "memory": {"total": kib("MemTotal") * 1024, "free": kib("MemAvailable") * 1024},
            "uptime": state.started.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
            "workers": crate::config::worker_count(&state.config),
            "running": state.runner.running(),
            "languages": installed.iter().filter(|(_, i)| i.is_installed()).count(),
            "sandbox": state.engine.sandbox().cgroup_version().map(|v| format!("cgroup {v}")),
        },
        "timestamp": now_rfc3339(),
    }))
    .into_response())
}

/// `GET /health`.
async fn health(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "timestamp": now_rfc3339(),
        "uptime": state.started.elapsed().as_secs_f64(),
    }))
}

/// The request of `POST /api/v1/code/execute`.
#[derive(Debug, Deserialize)]
struct LearningRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

/// The languages the learning platform offers.
const LEARNING_LANGUAGES: &[&str] = &["python", "javascript", "typescript"];

/// `POST /api/v1/code/execute`.
async fn learning_execute(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    body: Result<LenientJson<LearningRequest>, ApiError>,
) -> Result<Response, RunnerError> {
    let caller = caller.map_err(|e| RunnerError {
        status: e.status,
        error: e.message,
    })?;
    caller.require(Scope::Execute)?;
    let LenientJson(body) = body?;
    let Some(code) = body.code.filter(|c| !c.is_empty()) else {
        return Err(RunnerError::bad("Validation error: code is required"));
    };
    let name = body.language.unwrap_or_default().trim().to_lowercase();
    if !LEARNING_LANGUAGES.contains(&name.as_str()) {
        return Err(RunnerError::bad(format!(
            "Language '{name}' is not supported: use one of {}",
            LEARNING_LANGUAGES.join(", ")
        )));
    }
    let id = supported(&state, &name).await?;
    let mut request = native_request(&id);
    request.source = Some(code);
    let result = execute(&state, &caller, request).await?;
    let o = outcome(&result);
    Ok(Json(json!({
        "success": o.success,
        "stdout": o.stdout,
        "stderr": o.stderr,
        "exitCode": o.exit_code,
        "executionTime": o.time_ms.round() as u64,
    }))
    .into_response())
}
