//! Wire types to engine types and back, with the server's bounds and maxima checked.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use runbox_engine::{
    Checker, CustomChecker, CustomProgram, Harness, Job, JudgeOptions, LimitOverrides, RunResult,
    SourceFile, Stage, StageSummary, TestCase,
};

use super::types::{
    CheckerInput, Data, Encoding, ExecuteRequest, HelperStageBody, LimitsInput, OutputFileBody,
    ProgramInput, ResultBody, StageBody, TestBody, TimingBody,
};
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
    let tests = tests_from_request(request, bounds, run_max)?;
    let checker = checker_from_request(request.checker.as_ref(), bounds)?;
    let interactor = request
        .interactor
        .as_ref()
        .map(|i| interactor_from_request(i, bounds))
        .transpose()?;
    if interactor.is_some() && tests.is_empty() {
        return Err(ApiError::invalid(
            "interactor",
            "an interactor needs tests: each test's stdin is the interactor's input",
        ));
    }
    let harness = match &request.harness {
        None => Harness::default(),
        Some(harness) => Harness {
            files: decode_files(&harness.files, "harness.files", bounds)?,
            entry: harness.entry.clone(),
            rename_main: harness.rename_main,
        },
    };
    Ok(Job {
        language: request.language.clone(),
        version: request.version.clone(),
        runtime: request.runtime.clone(),
        files,
        stdin,
        args: request.args.clone(),
        compiler_options: request.compiler_options.clone(),
        limits,
        compile_limits,
        tests,
        checker,
        interactor,
        judge: JudgeOptions {
            stop_on_first_failure: request.stop_on_first_failure,
            sequential: request.sequential,
            pin_cpu: request.pin_cpu,
        },
        harness,
        stderr_to_stdout: request.stderr_to_stdout,
        network: request.network,
        runs: runs_of(request, bounds)?,
        output_files: request.output_files.clone(),
        banned_functions: request.banned_functions.clone(),
        allowed_functions: request.allowed_functions.clone(),
        analysis: runbox_engine::Analysis {
            memcheck: request.analysis.as_ref().is_some_and(|a| a.memcheck),
        },
    })
}

/// How many runs `request` asks for, checked against the server's maximum.
fn runs_of(request: &ExecuteRequest, bounds: &RequestBounds) -> Result<u32, ApiError> {
    match request.runs {
        None => Ok(1),
        Some(0) => Err(ApiError::invalid("runs", "runs must be at least 1")),
        Some(n) if n > bounds.max_runs => Err(ApiError::invalid(
            "runs",
            format!(
                "{n} runs is too many: this server allows at most {}",
                bounds.max_runs
            ),
        )),
        Some(_) if request.tests.as_ref().is_some_and(|t| !t.is_empty()) => Err(ApiError::invalid(
            "runs",
            "a job with tests runs each test once: leave runs out",
        )),
        Some(n) => Ok(n),
    }
}

/// Named files, decoded; every one must have a name.
fn decode_files(
    files: &[super::types::FileInput],
    field: &str,
    bounds: &RequestBounds,
) -> Result<Vec<SourceFile>, ApiError> {
    if files.len() > bounds.max_files {
        return Err(ApiError::too_large(
            field,
            format!(
                "{} files is too many: at most {}",
                files.len(),
                bounds.max_files
            ),
        ));
    }
    let mut decoded = Vec::with_capacity(files.len());
    let mut total = 0usize;
    for (i, file) in files.iter().enumerate() {
        let Some(name) = &file.name else {
            return Err(ApiError::invalid(
                format!("{field}[{i}].name"),
                "every harness file needs a name",
            ));
        };
        let content = decode(
            &file.content,
            file.encoding,
            &format!("{field}[{i}].content"),
        )?;
        total += content.len();
        decoded.push(SourceFile::named(name.clone(), content));
    }
    if total > bounds.max_source_bytes {
        return Err(ApiError::too_large(
            field,
            format!(
                "{field} hold {total} bytes: at most {} are allowed",
                bounds.max_source_bytes
            ),
        ));
    }
    Ok(decoded)
}

/// The request's test cases, each checked.
fn tests_from_request(
    request: &ExecuteRequest,
    bounds: &RequestBounds,
    run_max: &LimitSettings,
) -> Result<Vec<TestCase>, ApiError> {
    let Some(tests) = &request.tests else {
        return Ok(Vec::new());
    };
    if tests.is_empty() {
        return Err(ApiError::invalid(
            "tests",
            "tests must not be empty when given",
        ));
    }
    if tests.len() > bounds.max_tests {
        return Err(ApiError::too_large(
            "tests",
            format!(
                "{} tests is too many: at most {} per job",
                tests.len(),
                bounds.max_tests
            ),
        ));
    }
    let mut cases = Vec::with_capacity(tests.len());
    let mut total = 0usize;
    for (i, test) in tests.iter().enumerate() {
        let stdin = match &test.stdin {
            Some(data) => decode_data(data, &format!("tests[{i}].stdin"))?,
            None => Vec::new(),
        };
        let expected_output = test
            .expected_output
            .as_ref()
            .map(|data| decode_data(data, &format!("tests[{i}].expected_output")))
            .transpose()?;
        for (what, len) in [
            ("stdin", stdin.len()),
            (
                "expected_output",
                expected_output.as_ref().map_or(0, Vec::len),
            ),
        ] {
            if len > bounds.max_stdin_bytes {
                return Err(ApiError::too_large(
                    format!("tests[{i}].{what}"),
                    format!(
                        "tests[{i}].{what} is {len} bytes: at most {} are allowed",
                        bounds.max_stdin_bytes
                    ),
                ));
            }
            total += len;
        }
        if test.args.len() > bounds.max_args {
            return Err(ApiError::invalid(
                format!("tests[{i}].args"),
                format!("at most {} arguments are allowed", bounds.max_args),
            ));
        }
        cases.push(TestCase {
            name: test
                .name
                .clone()
                .unwrap_or_else(|| format!("test-{}", i + 1)),
            stdin,
            args: test.args.clone(),
            expected_output,
            limits: overrides(test.limits.as_ref(), run_max, &format!("tests[{i}].limits"))?,
        });
    }
    // All tests' data together stays within what one request body may carry.
    if total > bounds.max_body_bytes {
        return Err(ApiError::too_large(
            "tests",
            "the tests' data is larger than a request may be",
        ));
    }
    Ok(cases)
}

/// The request's interactor, its source within the bounds.
fn interactor_from_request(
    input: &ProgramInput,
    bounds: &RequestBounds,
) -> Result<CustomProgram, ApiError> {
    if input.language.trim().is_empty() {
        return Err(ApiError::invalid(
            "interactor.language",
            "an interactor needs its language",
        ));
    }
    if input.source.len() > bounds.max_source_bytes {
        return Err(ApiError::too_large(
            "interactor.source",
            format!(
                "the interactor is {} bytes: at most {} are allowed",
                input.source.len(),
                bounds.max_source_bytes
            ),
        ));
    }
    Ok(CustomProgram {
        language: input.language.clone(),
        files: vec![SourceFile::unnamed(input.source.as_bytes())],
    })
}

/// The request's checker (`lines` when none is given).
fn checker_from_request(
    input: Option<&CheckerInput>,
    bounds: &RequestBounds,
) -> Result<Checker, ApiError> {
    let Some(input) = input else {
        return Ok(Checker::default());
    };
    let no_extra = |what: &str, present: bool| {
        if present {
            Err(ApiError::invalid(
                format!("checker.{what}"),
                format!(
                    "checker.{what} is only for the {} checker",
                    if what == "epsilon" { "float" } else { "custom" }
                ),
            ))
        } else {
            Ok(())
        }
    };
    let kind = input.kind.as_str();
    if kind != "float" {
        no_extra("epsilon", input.epsilon.is_some())?;
    }
    if kind != "custom" {
        no_extra("language", input.language.is_some())?;
    }
    if kind != "custom" && kind != "testlib" {
        no_extra("source", input.source.is_some())?;
    }
    Ok(match kind {
        "exact" => Checker::Exact,
        "lines" => Checker::Lines,
        "tokens" => Checker::Tokens,
        "case_insensitive" => Checker::CaseInsensitive,
        "float" => {
            let epsilon = input
                .epsilon
                .unwrap_or(runbox_engine::checker::DEFAULT_EPSILON);
            if !(epsilon.is_finite() && epsilon >= 0.0) {
                return Err(ApiError::invalid(
                    "checker.epsilon",
                    "checker.epsilon must be a finite number >= 0",
                ));
            }
            Checker::Float { epsilon }
        }
        "custom" | "testlib" => {
            // testlib checkers are C++, with testlib.h provided by the engine.
            let language = match kind {
                "testlib" => "cpp".to_string(),
                _ => input.language.clone().ok_or_else(|| {
                    ApiError::invalid("checker.language", "a custom checker needs its language")
                })?,
            };
            let source = input.source.clone().ok_or_else(|| {
                ApiError::invalid("checker.source", "a custom checker needs its source")
            })?;
            if source.len() > bounds.max_source_bytes {
                return Err(ApiError::too_large(
                    "checker.source",
                    format!(
                        "the checker is {} bytes: at most {} are allowed",
                        source.len(),
                        bounds.max_source_bytes
                    ),
                ));
            }
            Checker::Custom(CustomChecker {
                language,
                files: vec![SourceFile::unnamed(source.into_bytes())],
            })
        }
        other => {
            return Err(ApiError::invalid(
                "checker.type",
                format!(
                    "unknown checker '{other}': use exact, lines, tokens, float, case_insensitive, custom or testlib"
                ),
            ));
        }
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
pub fn stage_body(stage: &Stage, format: OutputFormat) -> StageBody {
    let encoding = format.encoding;
    StageBody {
        output: format
            .combined
            .then(|| encode(&stage.interleaved(), encoding)),
        status: stage.status,
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

/// A checker's or interactor's figures as the API writes them.
fn helper_body(summary: &StageSummary) -> HelperStageBody {
    HelperStageBody {
        status: summary.status,
        exit_code: summary.exit_code,
        cpu_time_ms: millis(summary.cpu_time),
        wall_time_ms: millis(summary.wall_time),
        memory_kb: summary.memory_kb,
    }
}

/// How a result's outputs are written.
#[derive(Debug, Clone, Copy)]
pub struct OutputFormat {
    /// UTF-8 or base64.
    pub encoding: Encoding,
    /// With each stage's interleaved `output`.
    pub combined: bool,
}

impl OutputFormat {
    /// The format `request` asks for.
    pub fn of(request: &ExecuteRequest) -> OutputFormat {
        OutputFormat {
            encoding: request.output_encoding,
            combined: request.combined_output,
        }
    }
}

/// A result as the API writes it.
pub fn result_body(result: &RunResult, format: OutputFormat) -> ResultBody {
    ResultBody {
        id: result.id.clone(),
        language: result.language.clone(),
        version: result.version.clone(),
        status: result.status,
        compile: result.compile.as_ref().map(|c| StageBody {
            cached: Some(c.cached),
            ..stage_body(&c.outcome, format)
        }),
        run: result.run.as_ref().map(|s| stage_body(s, format)),
        output_files: result.output_files.as_deref().map(output_files_body),
        memcheck: result.memcheck.clone(),
        tests: result.tests.as_ref().map(|tests| {
            tests
                .iter()
                .map(|t| TestBody {
                    name: t.name.clone(),
                    verdict: t.verdict,
                    score: Some(t.score),
                    comment: t.comment.clone(),
                    checker: t.checker.as_ref().map(helper_body),
                    interactor: t.interactor.as_ref().map(helper_body),
                    output_files: t.output_files.as_deref().map(output_files_body),
                    memcheck: t.memcheck.clone(),
                    stage: stage_body(&t.run, format),
                })
                .collect()
        }),
        passed: result.passed.map(|n| n as u32),
        failed: result.failed.map(|n| n as u32),
        failed_tests: result.failed_tests.clone(),
        score: result.score,
        timing: result.timing.as_ref().map(|t| TimingBody {
            cpu_time: t.cpu_time.to_string(),
            pinned: t.pinned,
            parallel: t.parallel,
        }),
        error: result.message.clone(),
    }
}

/// Returned files as the API writes them: contents in base64.
fn output_files_body(files: &[runbox_engine::OutputFile]) -> Vec<OutputFileBody> {
    files
        .iter()
        .map(|f| OutputFileBody {
            name: f.name.clone(),
            size: f.size,
            content_base64: f.content.as_deref().map(|c| BASE64.encode(c)),
            refused: f.refused.clone(),
        })
        .collect()
}

/// The result as stored: without outputs when the operator keeps none.
pub fn stored_result(body: &ResultBody, keep_output: bool) -> serde_json::Value {
    let mut body = body.clone();
    if !keep_output {
        let strip = |stage: &mut StageBody| {
            stage.stdout.clear();
            stage.stderr.clear();
            stage.output = None;
        };
        body.compile.iter_mut().for_each(strip);
        body.run.iter_mut().for_each(strip);
        let strip_files = |files: &mut Vec<OutputFileBody>| {
            files.iter_mut().for_each(|f| f.content_base64 = None);
        };
        body.output_files.iter_mut().for_each(strip_files);
        for test in body.tests.iter_mut().flatten() {
            strip(&mut test.stage);
            test.output_files.iter_mut().for_each(strip_files);
        }
    }
    serde_json::to_value(&body).unwrap_or(serde_json::Value::Null)
}

/// The request as stored once it ran: without source, files, stdin, expected
/// outputs, the checker's source and harness files, when the operator keeps no source.
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
    if let Some(interactor) = request.interactor.as_mut() {
        interactor.source.clear();
    }
    // A harness is exercise code the platform sent: a source like any other.
    if let Some(harness) = request.harness.as_mut() {
        harness.files.clear();
    }
    if let Some(adapter) = request.adapter.as_mut() {
        scrub_adapter_data(adapter);
    }
    serde_json::to_value(&request).unwrap_or(serde_json::Value::Null)
}

/// The result of a done submission: the stored one, or one made from its error.
pub fn submission_result(submission: &runbox_store::Submission) -> Option<ResultBody> {
    if submission.state != runbox_store::JobState::Done {
        return None;
    }
    if let Some(result) = &submission.result
        && let Ok(body) = serde_json::from_value::<ResultBody>(result.clone())
    {
        return Some(body);
    }
    Some(internal_result(
        &submission.id,
        &submission.language,
        submission
            .error
            .clone()
            .unwrap_or_else(|| "the job ended without a result".into()),
    ))
}

/// The fields of an adapter's data (`adapter.<name>.<field>`) that hold the
/// user's code and input: removed when the history keeps no source. Adapters keep
/// what they need to answer later (limits, an expected output) under other names.
const ADAPTER_SOURCE_FIELDS: &[&str] = &["source_code", "stdin", "additional_files"];

/// Removes the user's code and inputs from an adapter's data (see
/// [`ADAPTER_SOURCE_FIELDS`]).
pub fn scrub_adapter_data(data: &mut serde_json::Value) {
    if let Some(adapters) = data.as_object_mut() {
        for adapter in adapters.values_mut() {
            if let Some(fields) = adapter.as_object_mut() {
                for field in ADAPTER_SOURCE_FIELDS {
                    fields.remove(*field);
                }
            }
        }
    }
}

/// The exact bytes of a stored stage's stdout and stderr (the history keeps
/// them in the encoding the request asked for; adapters ask for base64).
pub fn stage_bytes(stage: &StageBody) -> (Vec<u8>, Vec<u8>) {
    (
        stored_bytes(stage, &stage.stdout),
        stored_bytes(stage, &stage.stderr),
    )
}

/// The exact bytes of a stored stage's stdout and stderr interleaved in the
/// order read (stdout then stderr when the request did not ask for
/// `combined_output`).
pub fn combined_bytes(stage: &StageBody) -> Vec<u8> {
    match &stage.output {
        Some(output) => stored_bytes(stage, output),
        None => {
            let (stdout, stderr) = stage_bytes(stage);
            [stdout, stderr].concat()
        }
    }
}

/// One of a stored stage's outputs, decoded as its encoding says (the server
/// wrote it, so it decodes; the text itself otherwise).
fn stored_bytes(stage: &StageBody, text: &str) -> Vec<u8> {
    decode(text, stage.encoding, "output").unwrap_or_else(|_| text.as_bytes().to_vec())
}

/// A result for a job that could not run, for a reason of the host.
pub fn internal_result(id: &str, language: &str, message: String) -> ResultBody {
    ResultBody {
        id: id.to_string(),
        language: language.to_string(),
        version: None,
        status: runbox_engine::ResultStatus::InternalError,
        compile: None,
        run: None,
        output_files: None,
        memcheck: None,
        tests: None,
        passed: None,
        failed: None,
        failed_tests: None,
        score: None,
        timing: None,
        error: Some(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::{EncodedData, FileInput};

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
