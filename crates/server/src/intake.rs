//! Intake: the one path from a wire request to a checked job.
//!
//! Every API (native, Judge0, Piston, the home-grown runners) turns its request
//! into a native [`ExecuteRequest`] and calls [`check`]: the wire's decoding and
//! bounds, the callback URL, then the engine's one check. What comes out is a
//! [`CheckedJob`](runbox_engine::CheckedJob) the runner can run, or a client
//! error (4xx) that names the field at fault.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::history::record;
use crate::runner::Record;
use crate::state::SharedState;
use crate::wire::convert::job_from_request;
use crate::wire::types::ExecuteRequest;

/// A request checked once: the engine's checked job and what the history keeps.
pub async fn check(
    state: &SharedState,
    request: &ExecuteRequest,
) -> Result<(runbox_engine::CheckedJob, Record), ApiError> {
    let job = job_from_request(
        request,
        &state.config.requests,
        &state.config.run_limits,
        &state.config.compile_limits,
    )?;
    if let Some(url) = &request.callback_url {
        crate::webhook::check_url(url, state.config.webhooks.allow_private_addresses)?;
    }
    let checked = state.runner.check(job).await?;
    let cap = std::time::Duration::from_secs(state.config.requests.max_job_wall_seconds);
    let longest = checked.max_wall_time();
    if longest > cap {
        let field = if checked.job().tests.is_empty() {
            "limits"
        } else {
            "tests"
        };
        return Err(ApiError::invalid(
            field,
            format!(
                "this job could take {} s with its wall-time limits, more than the {} s one job may take: use fewer tests or smaller limits",
                longest.as_secs(),
                cap.as_secs()
            ),
        ));
    }
    Ok((checked, record(request)))
}

/// Checks every request of a batch (an error names `submissions[i]`) and queues them.
pub async fn enqueue_all(
    state: &SharedState,
    caller: &Caller,
    requests: &[ExecuteRequest],
    batch: bool,
) -> Result<Vec<String>, ApiError> {
    let mut jobs = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        match check(state, request).await {
            Ok(job) => jobs.push(job),
            Err(error) if batch => {
                let mut error = error;
                error.field = Some(format!(
                    "submissions[{index}].{}",
                    error.field.as_deref().unwrap_or("")
                ));
                error.message = format!("submissions[{index}]: {}", error.message);
                return Err(error);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(state.runner.enqueue(caller, jobs).await?)
}
