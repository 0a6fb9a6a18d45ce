//! Drop-in compatibility APIs: Judge0 CE, Piston v2 and three home-grown runners
//! that runbox replaces.
//!
//! Each adapter lives in its own module and only translates: its wire format to a
//! native [`ExecuteRequest`], the native result back to its own terms. Jobs run on
//! the same [`Runner`](crate::runner::Runner) as the native API, with the same API
//! keys, rate limits, queue bounds and history. Every route of every adapter is
//! listed in [`routes`].
//!
//! - [`judge0`]: `/submissions`, `/languages`, `/statuses`, ... at the root.
//! - [`piston`]: `/api/v2/runtimes`, `/api/v2/execute`.
//! - [`runners`]: the C exercise service (`/submit`, `/encoded`, `/execute_code`),
//!   the multi-language runner (`/api/execute`, `/api/languages`, `/api/system`,
//!   `/health`) and the learning platform's executor (`/api/v1/code/execute`).

pub mod judge0;
pub mod piston;
pub mod runners;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Request};
use runbox_engine::{Installation, Language};
use serde::de::DeserializeOwned;

use runbox_engine::RunResult;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::SharedState;
use crate::wire::types::{Encoding, ExecuteRequest};

/// Every compatibility route, merged by [`crate::router`] beside the native API.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .merge(judge0::routes())
        .merge(piston::routes())
        .merge(runners::routes())
}

/// A JSON body read whatever its `Content-Type` says: Piston and home-grown clients
/// often send none, or `text/plain` (node-fetch with a string body).
pub struct LenientJson<T>(pub T);

impl<S, T> FromRequest<S> for LenientJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = crate::state::read_body(request, state).await?;
        // Adapters parse into a JSON tree first: a body of millions of tiny values
        // would cost far more memory than its bytes, so it is refused unparsed.
        if json_values(&bytes) > MAX_JSON_VALUES {
            return Err(ApiError::too_large(
                "body",
                format!("the body holds more than {MAX_JSON_VALUES} JSON values"),
            ));
        }
        crate::state::parse_json(&bytes).map(LenientJson)
    }
}

pub use crate::state::refuse_when_shutting_down;

/// The most JSON values (numbers, strings, arrays, objects, ...) an adapter's
/// body may hold: far more than any real request, far less than a hostile one.
pub const MAX_JSON_VALUES: usize = 100_000;

/// How many values a JSON text holds, counted without parsing it (a cheap upper
/// bound: separators and openings outside strings, plus one).
pub fn json_values(bytes: &[u8]) -> usize {
    let (mut count, mut in_string, mut escaped) = (1usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b',' | b'[' | b'{' | b':' => count += 1,
            _ => {}
        }
    }
    count
}

/// A native request with the defaults every adapter starts from: outputs in
/// base64, so that adapters see the program's exact bytes.
pub fn native_request(language: &str) -> ExecuteRequest {
    ExecuteRequest {
        language: language.to_string(),
        version: None,
        runtime: None,
        source: None,
        files: None,
        stdin: None,
        args: Vec::new(),
        compiler_options: Vec::new(),
        limits: None,
        compile_limits: None,
        tests: None,
        checker: None,
        interactor: None,
        stop_on_first_failure: false,
        sequential: false,
        pin_cpu: false,
        harness: None,
        output_encoding: Encoding::Base64,
        network: false,
        stderr_to_stdout: false,
        combined_output: false,
        runs: None,
        output_files: Vec::new(),
        banned_functions: Vec::new(),
        allowed_functions: Vec::new(),
        analysis: None,
        callback_url: None,
        adapter: None,
    }
}

/// Checks `request` once and runs it now on the runner (stored in the history
/// like a native execute): the engine's result, exact bytes and typed statuses.
/// A host failure is a 500, never dressed up as the program's failure.
pub async fn execute(
    state: &SharedState,
    caller: &Caller,
    request: ExecuteRequest,
) -> Result<RunResult, ApiError> {
    refuse_when_shutting_down(state)?;
    let (job, record) = crate::intake::check(state, &request).await?;
    let ran = state.runner.execute_now(caller, job, record).await?;
    ran.result.map_err(ApiError::internal)
}

/// A duration in milliseconds, as the adapters' figures are written.
pub fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every catalog language with its installation (versions detected once, then
/// remembered by the engine).
pub async fn installations(
    state: &SharedState,
) -> Result<Vec<(Arc<Language>, Installation)>, ApiError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.installations())
        .await
        .map_err(ApiError::internal)
}

/// The installation of one language, by catalog id.
pub async fn installation(
    state: &SharedState,
    id: &str,
) -> Result<Option<(Arc<Language>, Installation)>, ApiError> {
    let Ok(language) = state.engine.catalog().get(id).cloned() else {
        return Ok(None);
    };
    let engine = state.engine.clone();
    let found = language.clone();
    let installation = tokio::task::spawn_blocking(move || engine.installation(&found))
        .await
        .map_err(ApiError::internal)?;
    Ok(Some((language, installation)))
}

/// Seconds as Judge0 and the home-grown runners write them: milliseconds / 1000.
pub fn seconds(ms: f64) -> f64 {
    (ms / 1000.0 * 1e6).round() / 1e6
}

/// Now, as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    crate::time::rfc3339(runbox_store::now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_counted_outside_strings_only() {
        assert_eq!(json_values(b"0"), 1);
        assert_eq!(json_values(b"[0,0,0]"), 4);
        assert_eq!(json_values(br#"{"a": "x,y,[z]", "b": [1, 2]}"#), 7);
        assert_eq!(json_values(br#""quoted \" , still a string""#), 1);
        let hostile = format!("[{}0]", "0,".repeat(200_000));
        assert!(json_values(hostile.as_bytes()) > MAX_JSON_VALUES);
    }
}
