//! How jobs and results are kept in the history: the runner's [`Codec`] in the
//! native wire format.
//!
//! A stored request is the native [`ExecuteRequest`] (with an adapter's own data
//! beside it); a stored result is the native [`ResultBody`], its outputs in the
//! encoding the request asked for (adapters ask for base64, so they read back
//! exact bytes). This is the one place that knows both the runner and the wire.

use runbox_engine::{Job, JobError, RunResult};

use runbox_store::Submission;

use crate::config::ServerConfig;
use crate::runner::{Codec, Record, ResultFormat};
use crate::webhook::Payload;
use crate::wire::convert::{
    OutputFormat, internal_result, job_from_request, result_body, scrubbed_request, stored_result,
};
use crate::wire::types::{Encoding, ExecuteRequest, ResultBody};

/// An adapter's rendering of a done submission for its callback, when the
/// submission is one of its own (`None` otherwise).
pub type CallbackRenderer = Box<dyn Fn(&Submission) -> Option<Payload> + Send + Sync>;

/// The runner's codec over the native wire format.
pub struct WireCodec {
    config: std::sync::Arc<ServerConfig>,
    callbacks: Vec<CallbackRenderer>,
}

impl WireCodec {
    /// A codec checking stored requests against `config`'s bounds.
    pub fn new(config: std::sync::Arc<ServerConfig>) -> WireCodec {
        WireCodec {
            config,
            callbacks: Vec::new(),
        }
    }

    /// Lets an adapter render the callbacks of its own submissions.
    pub fn with_callback(mut self, renderer: CallbackRenderer) -> WireCodec {
        self.callbacks.push(renderer);
        self
    }
}

/// How a request's result is written, in the runner's terms.
pub fn format_of(request: &ExecuteRequest) -> ResultFormat {
    ResultFormat {
        base64: request.output_encoding == Encoding::Base64,
        combined: request.combined_output,
    }
}

/// The wire's output format for a runner's format.
pub fn output_format(format: ResultFormat) -> OutputFormat {
    OutputFormat {
        encoding: if format.base64 {
            Encoding::Base64
        } else {
            Encoding::Utf8
        },
        combined: format.combined,
    }
}

/// What the history keeps of `request`.
pub fn record(request: &ExecuteRequest) -> Record {
    Record {
        request: serde_json::to_value(request).unwrap_or_default(),
        format: format_of(request),
        callback_url: request.callback_url.clone(),
    }
}

/// The native result of a job the runner ran, with its submission id.
pub fn body_of(
    id: &str,
    result: &Result<RunResult, String>,
    format: ResultFormat,
    language: &str,
) -> ResultBody {
    match result {
        Ok(result) => ResultBody {
            id: id.to_string(),
            ..result_body(result, output_format(format))
        },
        Err(message) => internal_result(id, language, message.clone()),
    }
}

impl Codec for WireCodec {
    fn decode_job(&self, stored: &serde_json::Value) -> Result<(Job, ResultFormat), JobError> {
        let request: ExecuteRequest = serde_json::from_value(stored.clone()).map_err(|e| {
            JobError::invalid("request", format!("the stored request cannot be read: {e}"))
        })?;
        let job = job_from_request(
            &request,
            &self.config.requests,
            &self.config.run_limits,
            &self.config.compile_limits,
        )
        .map_err(|e| JobError::invalid(e.field.unwrap_or_default(), e.message))?;
        Ok((job, format_of(&request)))
    }

    fn encode_result(
        &self,
        id: &str,
        result: &RunResult,
        format: ResultFormat,
    ) -> serde_json::Value {
        let body = body_of(id, &Ok(result.clone()), format, &result.language);
        serde_json::to_value(&body).unwrap_or_default()
    }

    fn encode_failure(&self, id: &str, language: &str, message: &str) -> serde_json::Value {
        serde_json::to_value(internal_result(id, language, message.to_string())).unwrap_or_default()
    }

    fn without_output(&self, result: &serde_json::Value) -> serde_json::Value {
        match serde_json::from_value::<ResultBody>(result.clone()) {
            Ok(body) => stored_result(&body, false),
            Err(_) => result.clone(),
        }
    }

    fn scrub_request(&self, request: &serde_json::Value) -> serde_json::Value {
        match serde_json::from_value::<ExecuteRequest>(request.clone()) {
            Ok(request) => scrubbed_request(&request),
            Err(_) => serde_json::Value::Null,
        }
    }

    fn callback(&self, submission: &Submission) -> Payload {
        if let Some(payload) = self.callbacks.iter().find_map(|render| render(submission)) {
            return payload;
        }
        let body = crate::wire::convert::submission_result(submission)
            .map(|body| serde_json::to_value(body).unwrap_or_default())
            .unwrap_or_default();
        Payload::post(body)
    }
}
