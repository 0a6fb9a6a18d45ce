//! The result of a job: the result contract of DESIGN.md.

use runbox_sandbox::{Outcome, Status};

use crate::output_files::OutputFile;
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
    /// Every test (or this test) passed its checker.
    Accepted,
    /// The program ran to its end (exit 0) but its output is not the expected one.
    WrongAnswer,
    /// The program's output is not in the expected format (testlib's `_pe`).
    PresentationError,
    /// The checker or interactor gave part of the test's points (testlib's
    /// `quitp` or `_pc`): the test's `score` says how many.
    Partial,
    /// The request's own checker or interactor failed (it does not compile, it
    /// crashed, it ran out of its limits, it said `_fail`): neither the program's
    /// fault nor the host's. The result's `message` or the test's `comment` says why.
    CheckerError,
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
            ResultStatus::Accepted => "accepted",
            ResultStatus::WrongAnswer => "wrong_answer",
            ResultStatus::PresentationError => "presentation_error",
            ResultStatus::Partial => "partial",
            ResultStatus::CheckerError => "checker_error",
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

/// The compile stage: what the compiler did, or did earlier for the same files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompileStage {
    /// The compiler's run. On a cache hit, the run that produced the cached artifacts.
    #[serde(flatten)]
    pub outcome: Stage,
    /// Whether the artifacts came from the compile cache (or from an identical job
    /// compiled at the same time) instead of a compile of this job.
    pub cached: bool,
}

impl std::ops::Deref for CompileStage {
    type Target = Stage;

    fn deref(&self) -> &Stage {
        &self.outcome
    }
}

/// How a helper program (a custom checker, an interactor) ran on one test: its
/// own figures, apart from the program's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSummary {
    /// How its box ended.
    pub status: runbox_sandbox::Status,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// CPU time of its box.
    #[serde(rename = "cpu_time_ms", serialize_with = "millis")]
    pub cpu_time: std::time::Duration,
    /// Wall-clock time of its box.
    #[serde(rename = "wall_time_ms", serialize_with = "millis")]
    pub wall_time: std::time::Duration,
    /// Peak memory of its box, in KiB.
    pub memory_kb: u64,
}

impl From<&Outcome> for StageSummary {
    fn from(outcome: &Outcome) -> Self {
        StageSummary {
            status: outcome.status,
            exit_code: outcome.exit_code,
            cpu_time: outcome.cpu_time,
            wall_time: outcome.wall_time,
            memory_kb: outcome.memory_kb,
        }
    }
}

/// A duration as milliseconds with microsecond precision, as stages write them.
fn millis<S: serde::Serializer>(
    duration: &std::time::Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((duration.as_secs_f64() * 1e6).round() / 1e3)
}

/// One test case of a judged job: its verdict, and its run stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// `accepted`, `wrong_answer`, `presentation_error`, `partial`,
    /// `checker_error`, or the run's status when it did not end with exit 0.
    pub verdict: ResultStatus,
    /// The test's points: 1 accepted, what a checker or interactor gave for
    /// `partial` (testlib's `quitp` points, or n / 100 for `_pc(n)`), else 0.
    pub score: f64,
    /// The run of the program on this test (its own CPU time, wall time, memory).
    /// With an interactor its stdout went to the interactor and is empty here.
    #[serde(flatten)]
    pub run: Stage,
    /// What the checker (or interactor) said: where the output differs, or a
    /// custom checker's message (testlib writes it on stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// How the custom checker ran on this test, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checker: Option<StageSummary>,
    /// How the interactor ran on this test, for an interactive job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactor: Option<StageSummary>,
    /// The CPU the test's box was pinned to, when pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// The files the job asked for, as this test's run left them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<OutputFile>>,
    /// What memcheck found in this test's run (`analysis.memcheck`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcheck: Option<crate::memcheck::MemcheckReport>,
}

/// Which clock the verdicts' CPU times come from, and how the tests were run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// `cgroup`: user + system time of every process of the box, from its cgroup;
    /// `rusage`: per process only (no usable cgroup on this host).
    pub cpu_time: &'static str,
    /// Whether each box was pinned to one CPU (cpuset).
    pub pinned: bool,
    /// How many tests ran at once (1: one by one).
    pub parallel: usize,
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
    pub compile: Option<CompileStage>,
    /// The run stage; `None` when the compile failed or the job has tests.
    pub run: Option<Stage>,
    /// The files the job asked for, as the run left them (without tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<OutputFile>>,
    /// What memcheck found in the run (without tests, `analysis.memcheck`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcheck: Option<crate::memcheck::MemcheckReport>,
    /// One result per test case, in test order; `None` without tests. With
    /// "stop at the first failure", the tests after the first failure are left out.
    pub tests: Option<Vec<TestResult>>,
    /// How many of the listed tests were accepted (only with tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<usize>,
    /// How many of the listed tests were not (only with tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    /// The names of the failed tests, in test order (only with tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_tests: Option<Vec<String>>,
    /// The sum of the listed tests' scores (only with tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Which CPU time the verdicts used (only with tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// What went wrong beside the program, when something did (a checker that
    /// does not compile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunResult {
    /// Cuts the outputs of every stage and test, in order (compile, run, tests),
    /// so that together they hold at most `max_bytes`; each stream cut is
    /// flagged truncated. Figures (times, memory, statuses) stay whole.
    pub fn cap_outputs(&mut self, max_bytes: usize) {
        let mut left = max_bytes;
        let mut cap = |stage: &mut Stage| {
            for (data, truncated) in [
                (&mut stage.stdout, &mut stage.stdout_truncated),
                (&mut stage.stderr, &mut stage.stderr_truncated),
            ] {
                if data.len() > left {
                    data.truncate(left);
                    *truncated = true;
                }
                left -= data.len();
            }
        };
        if let Some(compile) = self.compile.as_mut() {
            cap(&mut compile.outcome);
        }
        if let Some(run) = self.run.as_mut() {
            cap(run);
        }
        for test in self.tests.iter_mut().flatten() {
            cap(&mut test.run);
        }
    }

    /// The stage the status comes from: the run, or the failed compile.
    pub fn last_stage(&self) -> Option<&Stage> {
        self.run
            .as_ref()
            .or(self.compile.as_ref().map(|c| &c.outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(stdout: &[u8], stderr: &[u8]) -> Stage {
        Stage {
            status: Status::Ok,
            exit_code: Some(0),
            signal: None,
            stdout: stdout.to_vec(),
            stderr: stderr.to_vec(),
            stdout_truncated: false,
            stderr_truncated: false,
            cpu_time: std::time::Duration::ZERO,
            wall_time: std::time::Duration::ZERO,
            memory_kb: 0,
            limit_hit: None,
            chunks: Vec::new(),
        }
    }

    #[test]
    fn outputs_of_every_test_together_stay_within_the_cap_and_are_flagged() {
        let test = |name: &str| TestResult {
            name: name.into(),
            verdict: ResultStatus::Accepted,
            score: 1.0,
            run: stage(&[b'o'; 6], &[b'e'; 6]),
            comment: None,
            checker: None,
            interactor: None,
            cpu: None,
            output_files: None,
            memcheck: None,
        };
        let mut result = RunResult {
            id: "x".into(),
            language: "c".into(),
            version: None,
            status: ResultStatus::Accepted,
            compile: None,
            run: None,
            output_files: None,
            memcheck: None,
            tests: Some(vec![test("1"), test("2"), test("3")]),
            passed: None,
            failed: None,
            failed_tests: None,
            score: None,
            timing: None,
            message: None,
        };
        result.cap_outputs(20);
        let tests = result.tests.unwrap();
        let total: usize = tests
            .iter()
            .map(|t| t.run.stdout.len() + t.run.stderr.len())
            .sum();
        assert_eq!(total, 20);
        assert!(!tests[0].run.stdout_truncated && !tests[0].run.stderr_truncated);
        assert!(!tests[1].run.stdout_truncated);
        assert!(tests[1].run.stderr_truncated);
        assert_eq!(tests[1].run.stderr.len(), 2);
        assert!(tests[2].run.stdout_truncated && tests[2].run.stdout.is_empty());
        assert!(tests[2].run.stderr_truncated);
    }
}
