//! A stored submission seen as Judge0 writes it: status ids and messages, times in
//! seconds as strings, memory in KB, the fields a client asked for.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use runbox_store::{JobState, Submission};
use serde_json::{Map, Value, json};

use super::languages;
use super::request::{Judge0Config, Stored};
use crate::wire::types::{ExecuteRequest, ResultBody};
use runbox_engine::ResultStatus;
use runbox_sandbox::Status;

use crate::wire::convert::stage_bytes;

/// Judge0's statuses, ids 1 to 14.
pub const STATUSES: &[(u32, &str)] = &[
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// runbox's one status beyond Judge0's, sent only in `extended_status`.
pub const MEMORY_LIMIT_EXCEEDED: (u32, &str) = (15, "Memory Limit Exceeded");

/// The fields Judge0 answers when `fields` is not given.
pub const DEFAULT_FIELDS: &[&str] = &[
    "token",
    "stdout",
    "time",
    "memory",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// Every field of a Judge0 submission: what `fields=*` answers.
pub const ALL_FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "post_execution_filesystem",
    "status",
    "language",
];

/// The description of a status id.
pub fn status_description(id: u32) -> &'static str {
    STATUSES
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("Internal Error", |(_, d)| d)
}

/// Which fields an answer has.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// [`DEFAULT_FIELDS`].
    Default,
    /// [`ALL_FIELDS`] (`*`).
    All,
    /// The named fields, in order (unknown ones are left out; `extended_status` is
    /// runbox's own).
    Named(Vec<String>),
}

impl Selection {
    /// The `fields` query parameter.
    pub fn parse(fields: Option<&str>) -> Selection {
        match fields.map(str::trim) {
            None | Some("") => Selection::Default,
            Some("*") => Selection::All,
            Some(list) => Selection::Named(
                list.split(',')
                    .map(|f| f.trim().to_string())
                    .filter(|f| !f.is_empty())
                    .collect(),
            ),
        }
    }

    fn names(&self) -> Vec<&str> {
        match self {
            Selection::Default => DEFAULT_FIELDS.to_vec(),
            Selection::All => ALL_FIELDS.to_vec(),
            Selection::Named(names) => names.iter().map(String::as_str).collect(),
        }
    }
}

/// How a submission ended, in Judge0's terms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// 1 to 14.
    pub status_id: u32,
    /// runbox's finer status where Judge0 has none (Memory Limit Exceeded).
    pub extended: Option<(u32, &'static str)>,
    /// stdout (both streams, in order, when redirected).
    pub stdout: Option<Vec<u8>>,
    /// stderr.
    pub stderr: Option<Vec<u8>>,
    /// The compiler's output, both streams.
    pub compile_output: Option<Vec<u8>>,
    /// What went wrong, in a sentence.
    pub message: Option<String>,
    /// The exit code.
    pub exit_code: Option<i32>,
    /// The signal number that ended it.
    pub exit_signal: Option<i32>,
    /// CPU seconds.
    pub time: Option<f64>,
    /// Wall seconds.
    pub wall_time: Option<f64>,
    /// Peak memory, KB.
    pub memory: Option<u64>,
}

/// Judge0's comparison of an output with the expected one: equal once trailing
/// white space is removed from each line and trailing blank lines are dropped.
/// (The engine's `lines` checker is the equivalent to switch to once Judge0
/// submissions run as judged jobs.)
pub fn expected_output_matches(expected: &[u8], actual: &[u8]) -> bool {
    fn normal(text: &[u8]) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .map(|line| line.trim_ascii_end())
            .collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }
    normal(expected) == normal(actual)
}

fn non_empty(bytes: Vec<u8>) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then_some(bytes)
}

/// The verdict of a submission in `state` with `result`.
pub fn verdict(state: JobState, result: Option<&ResultBody>, stored: &Stored) -> Verdict {
    let result = match (state, result) {
        (JobState::Queued, _) => {
            return Verdict {
                status_id: 1,
                ..Verdict::default()
            };
        }
        (JobState::Running, _) | (JobState::Done, None) => {
            return Verdict {
                status_id: 2,
                ..Verdict::default()
            };
        }
        (JobState::Done, Some(result)) => result,
    };
    let mut verdict = Verdict::default();
    if let Some(compile) = &result.compile {
        let (out, err) = stage_bytes(compile);
        verdict.compile_output = non_empty([out, err].concat());
    }
    if result.status == ResultStatus::CompileError {
        verdict.status_id = 6;
        if let Some(compile) = &result.compile
            && compile.status == Status::TimeLimitExceeded
        {
            verdict.message = Some("Compilation time limit exceeded".into());
        }
        return verdict;
    }
    let Some(run) = &result.run else {
        let error = result.error.clone().unwrap_or_default();
        verdict.status_id = if error.contains("Exec format error") || error.contains("os error 8") {
            14
        } else {
            13
        };
        verdict.message = Some(if error.is_empty() {
            "the job ended without a result".into()
        } else {
            error
        });
        return verdict;
    };
    // With redirect_stderr_to_stdout the box gave both streams one pipe: stderr
    // is empty and stdout holds both, in order.
    let (stdout, stderr) = stage_bytes(run);
    verdict.stdout = non_empty(stdout.clone());
    verdict.stderr = non_empty(stderr);
    verdict.time = Some(run.cpu_time_ms / 1000.0);
    verdict.wall_time = Some(run.wall_time_ms / 1000.0);
    verdict.memory = Some(run.memory_kb);
    verdict.exit_code = run.exit_code;
    verdict.exit_signal = run
        .signal
        .as_deref()
        .and_then(runbox_sandbox::outcome::signal_number);
    let over_time = run.cpu_time_ms > stored.cpu_time_limit * 1000.0;
    verdict.status_id = match run.status {
        Status::TimeLimitExceeded => 5,
        Status::MemoryLimitExceeded => {
            verdict.extended = Some(MEMORY_LIMIT_EXCEEDED);
            verdict.message = Some("Memory limit exceeded".into());
            12
        }
        Status::OutputLimitExceeded => {
            verdict.message = Some(format!(
                "Output limit exceeded: more than max_file_size ({} KB) of output",
                stored.max_file_size
            ));
            8
        }
        Status::RuntimeError if verdict.exit_signal.is_some() => {
            let signal = verdict.exit_signal.unwrap_or_default();
            verdict.message = Some(format!("Caught fatal signal {signal}"));
            // SIGSEGV, SIGXFSZ, SIGFPE, SIGABRT on Linux.
            match signal {
                11 => 7,
                25 => 8,
                8 => 9,
                6 => 10,
                _ => 12,
            }
        }
        Status::RuntimeError => {
            verdict.message = Some(format!(
                "Exited with error status {}",
                run.exit_code.unwrap_or(1)
            ));
            11
        }
        Status::Ok if over_time => 5,
        Status::Ok => {
            let expected = stored
                .expected_output
                .as_deref()
                .and_then(|e| BASE64.decode(e).ok());
            match expected {
                Some(expected) if !expected_output_matches(&expected, &stdout) => 4,
                _ => 3,
            }
        }
        _ => 13,
    };
    if verdict.status_id == 5 {
        verdict.message = Some("Time limit exceeded".into());
    }
    verdict
}

/// A time in seconds as Judge0 writes it: a string with three decimals.
fn seconds_text(seconds: Option<f64>) -> Value {
    seconds.map_or(Value::Null, |s| Value::String(format!("{s:.3}")))
}

/// The submission as Judge0 answers it; `Err` names a text field that is not
/// UTF-8 when `base64` is false.
pub fn view(
    submission: &Submission,
    selection: &Selection,
    base64: bool,
    config: &Judge0Config,
    language_name: &dyn Fn(u32) -> String,
) -> Result<Value, String> {
    let request: Option<ExecuteRequest> = submission
        .request
        .clone()
        .and_then(|r| serde_json::from_value(r).ok());
    let stored = request
        .as_ref()
        .and_then(|r| Stored::from_adapter(r.adapter.as_ref()))
        .unwrap_or_else(|| Stored::for_native(&submission.language, config));
    let result = crate::wire::convert::submission_result(submission);
    let verdict = verdict(submission.state, result.as_ref(), &stored);
    let stored_bytes =
        |field: &Option<String>| field.as_deref().and_then(|b| BASE64.decode(b).ok());
    let text = |name: &str, bytes: Option<Vec<u8>>| -> Result<Value, String> {
        match bytes {
            None => Ok(Value::Null),
            Some(bytes) if base64 => Ok(Value::String(BASE64.encode(bytes))),
            Some(bytes) => String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| name.to_string()),
        }
    };
    let rfc =
        |ms: Option<i64>| ms.map_or(Value::Null, |ms| Value::String(crate::time::rfc3339(ms)));
    let language_id = stored.language_id;
    let mut out = Map::new();
    for name in selection.names() {
        let value = match name {
            "token" => json!(submission.id),
            "source_code" => text(name, stored_bytes(&stored.source_code))?,
            "stdin" => text(name, stored_bytes(&stored.stdin))?,
            "expected_output" => text(name, stored_bytes(&stored.expected_output))?,
            "stdout" => text(name, verdict.stdout.clone())?,
            "stderr" => text(name, verdict.stderr.clone())?,
            "compile_output" => text(name, verdict.compile_output.clone())?,
            "additional_files" => stored
                .additional_files
                .clone()
                .map_or(Value::Null, Value::String),
            "post_execution_filesystem" => Value::Null,
            "message" => text(name, verdict.message.clone().map(String::into_bytes))?,
            "language_id" => json!(language_id),
            "language" => json!({"id": language_id, "name": language_name(language_id)}),
            "status_id" => json!(verdict.status_id),
            "status" => json!({
                "id": verdict.status_id,
                "description": status_description(verdict.status_id),
            }),
            "extended_status" => {
                let (id, description) = verdict
                    .extended
                    .unwrap_or((verdict.status_id, status_description(verdict.status_id)));
                json!({"id": id, "description": description})
            }
            "created_at" => rfc(Some(submission.created_ms)),
            "finished_at" => rfc(submission.finished_ms),
            "time" => seconds_text(verdict.time),
            "wall_time" => seconds_text(verdict.wall_time),
            "memory" => json!(verdict.memory),
            "exit_code" => json!(verdict.exit_code),
            "exit_signal" => json!(verdict.exit_signal),
            "number_of_runs" => json!(stored.number_of_runs),
            "cpu_time_limit" => json!(format!("{:.1}", stored.cpu_time_limit)),
            "cpu_extra_time" => json!(format!("{:.1}", stored.cpu_extra_time)),
            "wall_time_limit" => json!(format!("{:.1}", stored.wall_time_limit)),
            "memory_limit" => json!(stored.memory_limit),
            "stack_limit" => json!(stored.stack_limit),
            "max_processes_and_or_threads" => json!(stored.max_processes_and_or_threads),
            "enable_per_process_and_thread_time_limit" => {
                json!(stored.enable_per_process_and_thread_time_limit)
            }
            "enable_per_process_and_thread_memory_limit" => {
                json!(stored.enable_per_process_and_thread_memory_limit)
            }
            "max_file_size" => json!(stored.max_file_size),
            "compiler_options" => json!(stored.compiler_options),
            "command_line_arguments" => json!(stored.command_line_arguments),
            "redirect_stderr_to_stdout" => json!(stored.redirect_stderr_to_stdout),
            "callback_url" => json!(stored.callback_url),
            "enable_network" => json!(stored.enable_network),
            _ => continue,
        };
        out.insert(name.to_string(), value);
    }
    Ok(Value::Object(out))
}

/// The name of a Judge0 id without a version (for submissions of a language
/// that is gone).
pub fn plain_name(id: u32) -> String {
    languages::by_id(id).map_or_else(
        || format!("language {id}"),
        |l| l.name.replace(" ({v})", "").replace(" {v}", ""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::{Encoding, StageBody};

    fn stage(status: &str, stdout: &str, exit: Option<i32>, signal: Option<&str>) -> StageBody {
        StageBody {
            output: None,
            status: serde_json::from_value(serde_json::json!(status)).unwrap(),
            exit_code: exit,
            signal: signal.map(str::to_string),
            stdout: stdout.into(),
            stderr: String::new(),
            encoding: Encoding::Utf8,
            stdout_truncated: false,
            stderr_truncated: false,
            cpu_time_ms: 12.0,
            wall_time_ms: 20.0,
            memory_kb: 3000,
            limit_hit: None,
            cached: None,
        }
    }

    fn result(status: &str, run: Option<StageBody>) -> ResultBody {
        ResultBody {
            id: "x".into(),
            language: "c".into(),
            version: None,
            status: serde_json::from_value(serde_json::json!(status)).unwrap(),
            compile: None,
            run,
            output_files: None,
            memcheck: None,
            tests: None,
            passed: None,
            failed: None,
            failed_tests: None,
            score: None,
            timing: None,
            error: None,
        }
    }

    fn stored(expected: Option<&str>) -> Stored {
        let mut s = Stored::for_native("c", &Judge0Config::new(&Default::default()));
        s.expected_output = expected.map(|e| BASE64.encode(e));
        s
    }

    #[test]
    fn judge0_comparison_ignores_trailing_blanks_only() {
        assert!(expected_output_matches(b"3\n", b"3"));
        assert!(expected_output_matches(b"a  \nb\n\n\n", b"a\nb"));
        assert!(!expected_output_matches(b"a\nb", b"a\n b"));
        assert!(!expected_output_matches(b"3", b"4\n"));
    }

    #[test]
    fn signals_map_to_judge0_runtime_error_ids() {
        for (signal, id) in [
            ("SIGSEGV", 7),
            ("SIGXFSZ", 8),
            ("SIGFPE", 9),
            ("SIGABRT", 10),
            ("SIGKILL", 12),
        ] {
            let r = result(
                "runtime_error",
                Some(stage("runtime_error", "", None, Some(signal))),
            );
            assert_eq!(
                verdict(JobState::Done, Some(&r), &stored(None)).status_id,
                id,
                "{signal}"
            );
        }
        let r = result(
            "runtime_error",
            Some(stage("runtime_error", "", Some(3), None)),
        );
        let v = verdict(JobState::Done, Some(&r), &stored(None));
        assert_eq!(
            (v.status_id, v.message.as_deref()),
            (11, Some("Exited with error status 3"))
        );
    }

    #[test]
    fn expected_output_decides_accepted_or_wrong_answer() {
        let r = result("ok", Some(stage("ok", "3\n", Some(0), None)));
        assert_eq!(
            verdict(JobState::Done, Some(&r), &stored(Some("3"))).status_id,
            3
        );
        assert_eq!(
            verdict(JobState::Done, Some(&r), &stored(Some("4"))).status_id,
            4
        );
        assert_eq!(
            verdict(JobState::Done, Some(&r), &stored(None)).status_id,
            3
        );
    }

    #[test]
    fn memory_limit_is_runtime_error_other_with_an_extended_status() {
        let r = result(
            "memory_limit_exceeded",
            Some(stage("memory_limit_exceeded", "", None, Some("SIGKILL"))),
        );
        let v = verdict(JobState::Done, Some(&r), &stored(None));
        assert_eq!(v.status_id, 12);
        assert_eq!(v.extended, Some((15, "Memory Limit Exceeded")));
    }

    #[test]
    fn a_run_past_the_limit_within_the_extra_time_is_time_limit_exceeded() {
        let mut s = stored(None);
        s.cpu_time_limit = 0.01;
        let r = result("ok", Some(stage("ok", "", Some(0), None)));
        assert_eq!(verdict(JobState::Done, Some(&r), &s).status_id, 5);
    }

    #[test]
    fn queued_and_running_are_1_and_2() {
        assert_eq!(verdict(JobState::Queued, None, &stored(None)).status_id, 1);
        assert_eq!(verdict(JobState::Running, None, &stored(None)).status_id, 2);
    }
}
