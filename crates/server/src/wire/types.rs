//! The native API's JSON documents: the request and result contracts of DESIGN.md.
//!
//! These are the wire types (with their OpenAPI schemas); `convert.rs` maps them to
//! and from the engine's types. Statuses are the engine's own enums, so every
//! reader matches variants, not strings.

use runbox_engine::ResultStatus;
use runbox_sandbox::Status;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a text field's bytes are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 text (invalid bytes in outputs are replaced by U+FFFD).
    #[default]
    Utf8,
    /// Base64 (standard alphabet, with padding): any bytes survive.
    Base64,
}

/// Bytes given as a string (UTF-8) or as `{"content", "encoding"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Data {
    /// UTF-8 text.
    Text(String),
    /// Text or base64, as `encoding` says.
    Encoded(EncodedData),
}

/// Bytes with their encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncodedData {
    /// The bytes, encoded.
    pub content: String,
    /// How `content` is encoded.
    #[serde(default)]
    pub encoding: Encoding,
}

/// One source file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// Its path in the work directory; the first file may leave it out to get the
    /// language's default name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its content.
    pub content: String,
    /// How `content` is encoded.
    #[serde(default)]
    pub encoding: Encoding,
}

/// Limits of one stage; each one left out takes the server's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsInput {
    /// CPU time of the whole box, in milliseconds.
    pub cpu_time_ms: Option<u64>,
    /// Wall-clock time, in milliseconds.
    pub wall_time_ms: Option<u64>,
    /// Memory of the whole box, in KiB.
    pub memory_kb: Option<u64>,
    /// Processes and threads at once.
    pub processes: Option<u64>,
    /// Output kept of stdout and of stderr, each, in KiB.
    pub output_kb: Option<u64>,
    /// Stack of the main thread, in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_kb: Option<u64>,
    /// Largest file the program may write, in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size_kb: Option<u64>,
}

/// One test case of a judged job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    /// Its name (default: `test-N`, from 1).
    #[serde(default)]
    pub name: Option<String>,
    /// What the program reads.
    #[serde(default)]
    pub stdin: Option<Data>,
    /// The program's arguments for this test.
    #[serde(default)]
    pub args: Vec<String>,
    /// What the program should print; without it any output is accepted.
    #[serde(default)]
    pub expected_output: Option<Data>,
    /// Limits of this test's run, over the job's.
    #[serde(default)]
    pub limits: Option<LimitsInput>,
}

/// How outputs are compared with expected outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckerInput {
    /// `exact`, `lines` (default), `tokens`, `float`, `case_insensitive`,
    /// `custom` (a program in any language: `input output answer`), or `testlib`
    /// (shorthand for a custom C++ checker; `testlib.h` is provided).
    #[serde(rename = "type")]
    pub kind: String,
    /// For `float`: the largest absolute or relative difference accepted.
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// For `custom`: the checker's language.
    #[serde(default)]
    pub language: Option<String>,
    /// For `custom` and `testlib`: the checker's source.
    #[serde(default)]
    pub source: Option<String>,
}

/// A program that comes with the request to judge it (an interactor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramInput {
    /// A catalog id or alias; C++ gets `testlib.h`.
    pub language: String,
    /// Its source.
    pub source: String,
}

/// Test harness files: compiled or loaded with the user's files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HarnessInput {
    /// The harness files.
    #[serde(default)]
    pub files: Vec<FileInput>,
    /// The file to run instead of the user's first file (e.g. the driver).
    #[serde(default)]
    pub entry: Option<String>,
    /// Rename the user's `main` (C, C++) so the driver's `main` is the program's.
    #[serde(default)]
    pub rename_main: bool,
}

/// How a judged job's times were measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimingBody {
    /// Which CPU time the verdicts used: `cgroup` (the whole box) or `rusage`.
    pub cpu_time: String,
    /// Whether each box was pinned to one CPU.
    pub pinned: bool,
    /// How many tests ran at once.
    pub parallel: usize,
}

/// A compile-and-run request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// A catalog id or alias (`GET /api/v1/languages`).
    pub language: String,
    /// The version: exact (`3.13.5`), a prefix (`3`, `3.13`) or a node-semver
    /// range (`>=3.12`, `^3.10`); the default (else the newest installed) without.
    #[serde(default)]
    pub version: Option<String>,
    /// The runtime to take the language from (`host`, `debian-trixie`; see
    /// `GET /api/v1/languages`), when several hold the same version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Shorthand for one file with the language's default name.
    #[serde(default)]
    pub source: Option<String>,
    /// The files; the first is the entry.
    #[serde(default)]
    pub files: Option<Vec<FileInput>>,
    /// What the program reads on stdin.
    #[serde(default)]
    pub stdin: Option<Data>,
    /// The program's arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Options added to the compile command (`["-O0", "-std=c11"]`), for
    /// languages that take them (`compiler_options` in `GET /api/v1/languages`).
    #[serde(default)]
    pub compiler_options: Vec<String>,
    /// Limits of the run stage.
    #[serde(default)]
    pub limits: Option<LimitsInput>,
    /// Limits of the compile stage.
    #[serde(default)]
    pub compile_limits: Option<LimitsInput>,
    /// Test cases: compile once, run once per test, give each a verdict.
    #[serde(default)]
    pub tests: Option<Vec<TestInput>>,
    /// How outputs are compared (with `tests`).
    #[serde(default)]
    pub checker: Option<CheckerInput>,
    /// An interactor (with `tests`): it runs beside the program on each test,
    /// joined to its stdin and stdout, reads the test's `stdin` as its input
    /// file (testlib's `inf`) and decides the verdict by its exit code. A test
    /// with `expected_output` also goes through `checker`, with what the
    /// interactor wrote to its output file (`tout`) as the program's output.
    #[serde(default)]
    pub interactor: Option<ProgramInput>,
    /// Stop at the first test that is not accepted.
    #[serde(default)]
    pub stop_on_first_failure: bool,
    /// Run tests one by one (steadier timings) instead of in parallel.
    #[serde(default)]
    pub sequential: bool,
    /// Pin each box to one CPU, so timings are repeatable.
    #[serde(default)]
    pub pin_cpu: bool,
    /// Files compiled or loaded with the user's code (headers, a test driver).
    #[serde(default)]
    pub harness: Option<HarnessInput>,
    /// How stdout and stderr are written in the result.
    #[serde(default)]
    pub output_encoding: Encoding,
    /// The program may reach the internet (never the host or local networks);
    /// refused unless the operator enabled `network`.
    #[serde(default)]
    pub network: bool,
    /// The run's stderr goes into its stdout, in the exact order written (`2>&1`);
    /// stderr comes back empty.
    #[serde(default)]
    pub stderr_to_stdout: bool,
    /// Each stage also returns `output`: stdout and stderr interleaved in the
    /// order they were read, as a terminal would have shown them.
    #[serde(default)]
    pub combined_output: bool,
    /// Runs the program this many times (1 to the server's `requests.max_runs`):
    /// its times and memory are then the mean, its output the last run's, and the
    /// first run that fails is the result. Not with `tests`.
    #[serde(default)]
    pub runs: Option<u32>,
    /// Files the run leaves in its work directory to return, base64, in the
    /// result: names or globs relative to it (`plot.png`, `out/*.csv`). A glob
    /// matches the files the run made; a link, a FIFO or a directory is
    /// refused. At most the server's `requests.max_output_files` files and
    /// `requests.max_output_file_bytes` bytes per run (or per test).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_files: Vec<String>,
    /// C and C++: library functions the program may not call (`system`,
    /// `fork`). A program that does ends as `compile_error` before any test
    /// runs; `error` names each function and where it is called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banned_functions: Vec<String>,
    /// C and C++: the only library functions the program may call (reserved,
    /// `_`-prefixed names such as the C runtime's are always allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_functions: Vec<String>,
    /// Analyses of each run beside its verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisInput>,
    /// Where the result is POSTed when done (asynchronous submissions only).
    #[serde(default)]
    pub callback_url: Option<String>,
    /// What a compatibility adapter (Judge0) keeps with the submission to answer
    /// in its own terms later; the engine ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub adapter: Option<serde_json::Value>,
}

/// A stage (compile or run, or one test's run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StageBody {
    /// `ok`, `runtime_error`, `time_limit_exceeded`, `memory_limit_exceeded`,
    /// `output_limit_exceeded` or `internal_error`.
    #[schema(value_type = String)]
    pub status: Status,
    /// The exit code, when the program exited.
    pub exit_code: Option<i32>,
    /// The signal (`SIGSEGV`), when it was killed by one.
    pub signal: Option<String>,
    /// stdout, as `encoding` says.
    pub stdout: String,
    /// stderr, as `encoding` says.
    pub stderr: String,
    /// How `stdout`, `stderr` and `output` are written.
    pub encoding: Encoding,
    /// stdout and stderr interleaved in the order read (with `combined_output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// CPU time of the whole box (cgroup accounting), in milliseconds.
    pub cpu_time_ms: f64,
    /// Wall-clock time, in milliseconds.
    pub wall_time_ms: f64,
    /// Peak memory of the whole box, in KiB.
    pub memory_kb: u64,
    /// The limit that ended it: `cpu_time`, `wall_time`, `memory`, `output`, `file_size`.
    pub limit_hit: Option<String>,
    /// For a compile stage: true when the artifacts came from the compile cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
}

/// How a checker or an interactor ran on one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HelperStageBody {
    /// How its box ended: `ok`, `runtime_error` (any other exit code, which is
    /// its decision), `time_limit_exceeded`, ...
    #[schema(value_type = String)]
    pub status: Status,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// CPU time of its box, in milliseconds.
    pub cpu_time_ms: f64,
    /// Wall-clock time, in milliseconds.
    pub wall_time_ms: f64,
    /// Peak memory of its box, in KiB.
    pub memory_kb: u64,
}

/// Analyses of a job's runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisInput {
    /// C and C++: each test (or the run) under Valgrind's memcheck: invalid
    /// reads and writes, uninitialised values, definitely and indirectly lost
    /// bytes, each at the user's file and line. The run gets 20 times its time
    /// limits and 512 MiB more memory; the program is compiled with `-g -O0`.
    #[serde(default)]
    pub memcheck: bool,
}

/// A file a run was asked to return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutputFileBody {
    /// Its path relative to the work directory.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes in base64, when returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// Why it is not returned (no such file, not a regular file, over a cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// One test's verdict and run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestBody {
    /// The test's name.
    pub name: String,
    /// `accepted`, `wrong_answer`, `presentation_error`, `partial`,
    /// `checker_error` (the request's checker or interactor failed), or the
    /// status of the run that ended it.
    #[schema(value_type = String)]
    pub verdict: ResultStatus,
    /// The test's points: 1 accepted, 0 not, or what the checker gave
    /// (`partial`: testlib's `quitp` points, n / 100 for `_pc(n)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Where the output differs, or what a custom checker or the interactor
    /// said (testlib's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// How the custom checker ran on this test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<HelperStageBody>,
    /// How the interactor ran on this test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactor: Option<HelperStageBody>,
    /// The files asked for, as this test's run left them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<OutputFileBody>>,
    /// What memcheck found in this test's run (with `analysis.memcheck`):
    /// counts and each finding's kind, description, file, line and function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub memcheck: Option<runbox_engine::MemcheckReport>,
    /// The run.
    #[serde(flatten)]
    pub stage: StageBody,
}

/// The result of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultBody {
    /// The submission's id.
    pub id: String,
    /// The catalog id of the language.
    pub language: String,
    /// The installed version that ran it.
    pub version: Option<String>,
    /// `ok`, `accepted`, `wrong_answer`, `presentation_error`, `partial`,
    /// `compile_error`, `checker_error`, or a stage status.
    #[schema(value_type = String)]
    pub status: ResultStatus,
    /// The compile stage, for compiled languages.
    pub compile: Option<StageBody>,
    /// The run stage (null with tests, or after a failed compile).
    pub run: Option<StageBody>,
    /// The files asked for, as the run left them (without tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<OutputFileBody>>,
    /// What memcheck found in the run (without tests, with `analysis.memcheck`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub memcheck: Option<runbox_engine::MemcheckReport>,
    /// The tests, in order, when the job had tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<TestBody>>,
    /// How many tests were accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<u32>,
    /// How many were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u32>,
    /// The names of the tests that were not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_tests: Option<Vec<String>>,
    /// The sum of the tests' scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// How the tests' times were measured (with tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimingBody>,
    /// Why a job has no real result (`internal_error` after its workers failed),
    /// or what went wrong beside the program (`checker_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to an asynchronous submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubmissionCreated {
    /// The id to poll with `GET /api/v1/submissions/{id}`.
    pub id: String,
    /// `queued`.
    pub state: String,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubmissionBody {
    /// Its id.
    pub id: String,
    /// `queued`, `running` or `done`.
    pub state: String,
    /// The catalog id of its language.
    pub language: String,
    /// The result's top status once done.
    pub status: Option<String>,
    /// When it arrived (RFC 3339, UTC).
    pub created_at: String,
    /// When a worker started it.
    pub started_at: Option<String>,
    /// When it was done.
    pub finished_at: Option<String>,
    /// The result once done.
    pub result: Option<ResultBody>,
    /// The request as stored (without source and stdin when the operator keeps none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
    /// The webhook's delivery, when it has a callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookBody>,
}

/// A webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookBody {
    /// Where it went.
    pub url: String,
    /// Tries made.
    pub attempts: u32,
    /// Whether a 2xx answer came back.
    pub delivered: bool,
    /// The last HTTP status.
    pub status_code: Option<u16>,
    /// The last error.
    pub error: Option<String>,
}

/// One page of the caller's submissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubmissionPage {
    /// The page, newest first (without results; fetch one to see it).
    pub submissions: Vec<SubmissionBody>,
    /// This page's number, from 1.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
    /// Submissions on every page.
    pub total: u64,
}

/// A batch of submissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The submissions, each as for `POST /api/v1/submissions`.
    pub submissions: Vec<ExecuteRequest>,
}

/// The ids of a batch, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchCreated {
    /// One entry per submission, in request order.
    pub submissions: Vec<SubmissionCreated>,
}

/// A catalog language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LanguageBody {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The installed version, when installed.
    pub version: Option<String>,
    /// The runtime this version runs in (`host`: the host's own /usr); one
    /// language has one entry per runtime, each with its version.
    pub runtime: String,
    /// Whether it can be used here.
    pub installed: bool,
    /// Other names accepted in `language`.
    pub aliases: Vec<String>,
    /// File extensions, the default first.
    pub extensions: Vec<String>,
    /// Whether it has a compile stage.
    pub compiled: bool,
    /// Whether its compile stage takes `compiler_options`.
    pub compiler_options: bool,
    /// The name a `source` gets.
    pub source_file: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthBody {
    /// `ok`.
    pub status: String,
    /// The runbox version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
}

/// `GET /ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReadyBody {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Whether a box ran.
    pub sandbox: bool,
    /// Whether the database answered.
    pub database: bool,
    /// What is wrong, when not ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A worker of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerBody {
    /// Its id.
    pub id: String,
    /// Its host.
    pub host: String,
    /// Jobs it runs at once.
    pub concurrency: u32,
    /// Jobs it runs now.
    pub running: u32,
    /// Its last heartbeat (RFC 3339).
    pub last_heartbeat: String,
    /// Its runbox version.
    pub version: String,
}

pub use crate::error::{ErrorBody, ErrorDetail};
