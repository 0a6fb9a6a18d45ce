//! The result of a job: the result contract of DESIGN.md.

use runbox_sandbox::{Outcome, Status};
use serde::Serialize;

/// One stage (compile or run): status, exit code, output, CPU time, memory.
pub type Stage = Outcome;

/// How a job ended, as the top `status` of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// The program exited with code 0.
    Ok,
    /// The program exited with another code, or was killed by a signal.
    RuntimeError,
    /// CPU or wall time ran out.
    TimeLimitExceeded,
    /// The box ran out of memory.
    MemoryLimitExceeded,
    /// Output (or a file) went past its limit.
    OutputLimitExceeded,
    /// Something went wrong on runbox's side.
    InternalError,
    /// The compile stage failed; its output says why.
    CompileError,
}

impl ResultStatus {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Ok => "ok",
            ResultStatus::RuntimeError => "runtime_error",
            ResultStatus::TimeLimitExceeded => "time_limit_exceeded",
            ResultStatus::MemoryLimitExceeded => "memory_limit_exceeded",
            ResultStatus::OutputLimitExceeded => "output_limit_exceeded",
            ResultStatus::InternalError => "internal_error",
            ResultStatus::CompileError => "compile_error",
        }
    }
}

impl From<Status> for ResultStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Ok => ResultStatus::Ok,
            Status::RuntimeError => ResultStatus::RuntimeError,
            Status::TimeLimitExceeded => ResultStatus::TimeLimitExceeded,
            Status::MemoryLimitExceeded => ResultStatus::MemoryLimitExceeded,
            Status::OutputLimitExceeded => ResultStatus::OutputLimitExceeded,
            Status::InternalError => ResultStatus::InternalError,
        }
    }
}

impl std::fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// A unique id of this run.
    pub id: String,
    /// The catalog id of the language.
    pub language: String,
    /// The installed version, when known.
    pub version: Option<String>,
    /// How the job ended.
    pub status: ResultStatus,
    /// The compile stage, for compiled languages.
    pub compile: Option<Stage>,
    /// The run stage; `None` when the compile failed.
    pub run: Option<Stage>,
}

impl RunResult {
    /// The stage the status comes from: the run, or the failed compile.
    pub fn last_stage(&self) -> Option<&Stage> {
        self.run.as_ref().or(self.compile.as_ref())
    }
}
