//! Wire types to engine types and back, with the server's bounds and maxima checked.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use runbox_engine::{Job, LimitOverrides, RunResult, SourceFile, Stage};

use super::types::{Data, Encoding, ExecuteRequest, LimitsInput, ResultBody, StageBody};
use crate::config::{LimitSettings, RequestBounds};
use crate::error::ApiError;

/// Decodes `text` as `encoding` says; the error names `field`.
pub fn decode(text: &str, encoding: Encoding, field: &str) -> Result<Vec<u8>, ApiError> {
    match encoding {
        Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
        Encoding::Base64 => BASE64
            .decode(text.trim_end())
            .map_err(|e| ApiError::invalid(field, format!("{field} is not valid base64: {e}"))),
    }
}

/// Decodes a [`Data`] field.
pub fn decode_data(data: &Data, field: &str) -> Result<Vec<u8>, ApiError> {
    match data {
        Data::Text(text) => Ok(text.as_bytes().to_vec()),
        Data::Encoded(encoded) => decode(&encoded.content, encoded.encoding, field),
    }
}

/// Writes bytes as `encoding` says.
pub fn encode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Base64 => BASE64.encode(bytes),
    }
}

/// Checks a request against the server's bounds and maxima and builds the job.
pub fn job_from_request(
    request: &ExecuteRequest,
    bounds: &RequestBounds,
    run_max: &LimitSettings,
    compile_max: &LimitSettings,
) -> Result<Job, ApiError> {
    if request.language.trim().is_empty() {
        return Err(ApiError::invalid("language", "language must not be empty"));
    }
    let files = match (&request.source, &request.files) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "source",
                "give either source or files, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "source",
                "a request needs source (one file) or files",
            ));
        }
        (Some(source), None) => vec![SourceFile::unnamed(source.as_bytes())],
        (None, Some(files)) => {
            if files.is_empty() {
                return Err(ApiError::invalid("files", "files must not be empty"));
            }
            if files.len() > bounds.max_files {
                return Err(ApiError::too_large(
                    "files",
                    format!(
                        "{} files is too many: at most {} per request",
                        files.len(),
                        bounds.max_files
                    ),
                ));
            }
            let mut decoded = Vec::with_capacity(files.len());
            for (i, file) in files.iter().enumerate() {
                let content = decode(&file.content, file.encoding, &format!("files[{i}].content"))?;
                decoded.push(match &file.name {
                    Some(name) => SourceFile::named(name.clone(), content),
                    None => SourceFile::unnamed(content),
                });
            }
            decoded
        }
    };
    let total: usize = files.iter().map(|f| f.content.len()).sum();
    if total > bounds.max_source_bytes {
        return Err(ApiError::too_large(
            if request.source.is_some() {
                "source"
            } else {
                "files"
            },
            format!(
                "the source is {total} bytes: at most {} bytes are allowed",
                bounds.max_source_bytes
            ),
        ));
    }
    let stdin = match &request.stdin {
        Some(data) => decode_data(data, "stdin")?,
        None => Vec::new(),
    };
    if stdin.len() > bounds.max_stdin_bytes {
        return Err(ApiError::too_large(
            "stdin",
            format!(
                "stdin is {} bytes: at most {} bytes are allowed",
                stdin.len(),
                bounds.max_stdin_bytes
            ),
        ));
    }
    if request.args.len() > bounds.max_args {
        return Err(ApiError::invalid(
            "args",
            format!("at most {} arguments are allowed", bounds.max_args),
        ));
    }
    let limits = overrides(request.limits.as_ref(), run_max, "limits")?;
    let compile_limits = overrides(
        request.compile_limits.as_ref(),
        compile_max,
        "compile_limits",
    )?;
    if request.tests.is_some() || request.checker.is_some() {
        return Err(ApiError::invalid(
            "tests",
            "test cases are not supported by this server yet",
        ));
    }
    Ok(Job {
        language: request.language.clone(),
        version: request.version.clone(),
        files,
        stdin,
        args: request.args.clone(),
        limits,
        compile_limits,
    })
}

/// A stage's limits from the request, each checked against the server's maximum.
pub fn overrides(
    input: Option<&LimitsInput>,
    max: &LimitSettings,
    field: &str,
) -> Result<LimitOverrides, ApiError> {
    let Some(input) = input else {
        return Ok(LimitOverrides::default());
    };
    let check = |name: &str, value: Option<u64>, maximum: u64, unit: &str| match value {
        Some(0) => Err(ApiError::invalid(
            format!("{field}.{name}"),
            format!("{field}.{name} must be at least 1"),
        )),
        Some(v) if v > maximum => Err(ApiError::invalid(
            format!("{field}.{name}"),
            format!(
                "{field}.{name} is {v} {unit}, above this server's maximum of {maximum} {unit}"
            ),
        )),
        other => Ok(other),
    };
    let cpu = check("cpu_time_ms", input.cpu_time_ms, max.max_cpu_time_ms, "ms")?;
    let wall = check(
        "wall_time_ms",
        input.wall_time_ms,
        max.max_wall_time_ms,
        "ms",
    )?;
    let memory = check("memory_kb", input.memory_kb, max.max_memory_kb, "KiB")?;
    let processes = check("processes", input.processes, max.max_processes, "processes")?;
    let output = check("output_kb", input.output_kb, max.max_output_kb, "KiB")?;
    let stack = check("stack_kb", input.stack_kb, max.max_memory_kb, "KiB")?;
    let file_size = check("file_size_kb", input.file_size_kb, 1 << 20, "KiB")?;
    Ok(LimitOverrides {
        stack_bytes: stack.map(|kb| kb << 10),
        file_size_bytes: file_size.map(|kb| kb << 10),
        cpu_time: cpu.map(Duration::from_millis),
        wall_time: wall.map(Duration::from_millis),
        memory_bytes: memory.map(|kb| kb << 10),
        processes,
        output_bytes: output.map(|kb| kb << 10),
        ..LimitOverrides::default()
    })
}

/// The engine's defaults overlaid with the operator's configured defaults.
pub fn configured_defaults(
    base: &runbox_sandbox::Limits,
    settings: &LimitSettings,
) -> runbox_sandbox::Limits {
    LimitOverrides {
        cpu_time: settings.cpu_time_ms.map(Duration::from_millis),
        wall_time: settings.wall_time_ms.map(Duration::from_millis),
        memory_bytes: settings.memory_kb.map(|kb| kb << 10),
        processes: settings.processes,
        output_bytes: settings.output_kb.map(|kb| kb << 10),
        ..LimitOverrides::default()
    }
    .apply(base)
}

/// A stage as the API writes it.
pub fn stage_body(stage: &Stage, encoding: Encoding) -> StageBody {
    StageBody {
        status: stage.status.as_str().to_string(),
        exit_code: stage.exit_code,
        signal: stage.signal.clone(),
        stdout: encode(&stage.stdout, encoding),
        stderr: encode(&stage.stderr, encoding),
        encoding,
        stdout_truncated: stage.stdout_truncated,
        stderr_truncated: stage.stderr_truncated,
        cpu_time_ms: millis(stage.cpu_time),
        wall_time_ms: millis(stage.wall_time),
        memory_kb: stage.memory_kb,
        limit_hit: stage.limit_hit.map(|hit| {
            serde_json::to_value(hit)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }),
        cached: None,
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A result as the API writes it.
pub fn result_body(result: &RunResult, encoding: Encoding) -> ResultBody {
    ResultBody {
        id: result.id.clone(),
        language: result.language.clone(),
        version: result.version.clone(),
        status: result.status.as_str().to_string(),
        compile: result.compile.as_ref().map(|s| stage_body(s, encoding)),
        run: result.run.as_ref().map(|s| stage_body(s, encoding)),
        tests: None,
        passed: None,
        failed: None,
        failed_tests: None,
        error: None,
    }
}

/// The result as stored: without outputs when the operator keeps none.
pub fn stored_result(body: &ResultBody, keep_output: bool) -> serde_json::Value {
    let mut body = body.clone();
    if !keep_output {
        let strip = |stage: &mut StageBody| {
            stage.stdout.clear();
            stage.stderr.clear();
        };
        body.compile.iter_mut().for_each(strip);
        body.run.iter_mut().for_each(strip);
        for test in body.tests.iter_mut().flatten() {
            strip(&mut test.stage);
        }
    }
    serde_json::to_value(&body).unwrap_or(serde_json::Value::Null)
}

/// The request as stored once it ran: without source, files and stdin when the
/// operator keeps no source.
pub fn scrubbed_request(request: &ExecuteRequest) -> serde_json::Value {
    let mut request = request.clone();
    request.source = None;
    request.files = None;
    request.stdin = None;
    for test in request.tests.iter_mut().flatten() {
        test.stdin = None;
        test.expected_output = None;
    }
    if let Some(checker) = request.checker.as_mut() {
        checker.source = None;
    }
    if let Some(adapter) = request.adapter.as_mut() {
        crate::compat::scrub_adapter_data(adapter);
    }
    serde_json::to_value(&request).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::{EncodedData, FileInput};

    fn request(json: serde_json::Value) -> ExecuteRequest {
        serde_json::from_value(json).unwrap()
    }

    fn build(req: &ExecuteRequest) -> Result<Job, ApiError> {
        job_from_request(
            req,
            &RequestBounds::default(),
            &LimitSettings::run_defaults(),
            &LimitSettings::compile_defaults(),
        )
    }

    #[test]
    fn source_becomes_one_unnamed_file() {
        let job = build(&request(
            serde_json::json!({"language": "python", "source": "print(1)"}),
        ))
        .unwrap();
        assert_eq!(job.files, vec![SourceFile::unnamed("print(1)")]);
    }

    #[test]
    fn base64_files_and_stdin_keep_every_byte() {
        let req = ExecuteRequest {
            files: Some(vec![FileInput {
                name: Some("a.bin".into()),
                content: BASE64.encode([0u8, 255, 254]),
                encoding: Encoding::Base64,
            }]),
            stdin: Some(Data::Encoded(EncodedData {
                content: BASE64.encode([0xffu8, 0]),
                encoding: Encoding::Base64,
            })),
            ..request(serde_json::json!({"language": "c", "source": ""}))
        };
        let req = ExecuteRequest {
            source: None,
            ..req
        };
        let job = build(&req).unwrap();
        assert_eq!(job.files[0].content, vec![0, 255, 254]);
        assert_eq!(job.stdin, vec![0xff, 0]);
    }

    #[test]
    fn bad_base64_names_the_field() {
        let req = request(serde_json::json!({"language": "c",
            "files": [{"name": "a.c", "content": "!!", "encoding": "base64"}]}));
        assert_eq!(
            build(&req).unwrap_err().field.as_deref(),
            Some("files[0].content")
        );
    }

    #[test]
    fn a_limit_above_the_maximum_is_refused_with_the_maximum() {
        let req = request(serde_json::json!({"language": "c", "source": "",
            "limits": {"cpu_time_ms": 999999}}));
        let err = build(&req).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("limits.cpu_time_ms"));
        assert!(
            err.message.contains("maximum of 20000 ms"),
            "{}",
            err.message
        );
    }

    #[test]
    fn oversized_source_is_413() {
        let req =
            request(serde_json::json!({"language": "c", "source": "x".repeat((1 << 20) + 1)}));
        assert_eq!(build(&req).unwrap_err().status.as_u16(), 413);
    }

    #[test]
    fn source_and_files_together_are_refused() {
        let req = request(serde_json::json!({"language": "c", "source": "",
            "files": [{"name": "a.c", "content": ""}]}));
        assert_eq!(build(&req).unwrap_err().field.as_deref(), Some("source"));
    }

    #[test]
    fn invalid_utf8_output_survives_in_base64() {
        assert_eq!(encode(&[0xff, b'a'], Encoding::Base64), "/2E=");
        assert_eq!(encode(&[0xff, b'a'], Encoding::Utf8), "\u{fffd}a");
    }
}
