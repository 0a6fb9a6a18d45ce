//! testlib, as problem setters write for it: the pinned header given to C++
//! checkers and interactors, and what their exit codes and messages mean.
//!
//! testlib (<https://github.com/MikeMirzayanov/testlib>) is how contest problems'
//! checkers and interactors are written. The engine embeds one pinned release
//! ([`VERSION`], `crates/engine/vendor/testlib/README.md` says where it came from) and
//! lays it beside the sources of every C++ checker or interactor, so that an
//! unmodified `#include "testlib.h"` compiles; a program that brings its own
//! `testlib.h` keeps it.
//!
//! A checker (or interactor) says its decision by its exit code, and writes its
//! message on stderr:
//!
//! | exit | testlib | verdict | score |
//! | --- | --- | --- | --- |
//! | 0 | `_ok` | `accepted` | 1 |
//! | 1 | `_wa` | `wrong_answer` | 0 |
//! | 2, 4, 8 | `_pe` (`_dirt`, `_unexpected_eof`) | `presentation_error` | 0 |
//! | 3 | `_fail` | `checker_error`: the checker's own failure | none |
//! | 7 | `_points`, `quitp(x, ...)`: stderr `points x ...` | `partial` | x |
//! | 16 + n | `_pc(n)` | `partial` | n / 100 |
//!
//! Anything else (another code, a signal, a limit) is the checker's failure too.
//! testlib exits with `PC_BASE_EXIT_CODE + n` for `_pc(n)`, and its default base
//! is 0, which would make `_pc(1)` a wrong answer: the engine compiles testlib
//! programs with a base of 16, testlib's own `_partially` value.

use runbox_sandbox::{Outcome, Status};

use crate::catalog::Language;
use crate::job::{Job, SourceFile};
use crate::result::ResultStatus;

/// The testlib release the engine ships.
pub const VERSION: &str = "0.9.45";

/// The name the header is written under, beside the program's sources.
pub const HEADER_NAME: &str = "testlib.h";

/// The header itself, unmodified (MIT licence, Mike Mirzayanov).
pub const HEADER: &[u8] = include_bytes!("../vendor/testlib/testlib.h");

/// The exit code of `_pc(0)`.
const PARTIAL_BASE: i32 = 16;

/// The compiler option that makes `_pc(n)` exit with [`PARTIAL_BASE`] + n.
const PARTIAL_BASE_OPTION: &str = "-DPC_BASE_EXIT_CODE=16";

/// Longest comment kept from a checker's or interactor's messages.
const MAX_COMMENT_BYTES: usize = 1024;

/// Gives a helper program (a checker, an interactor) of `language` testlib:
/// C++ programs get the header beside their sources and the option that keeps
/// partial scores apart, unless they bring a `testlib.h` of their own.
pub(crate) fn provide(language: &Language, job: &mut Job) {
    // testlib is C++ only, and the option needs a compile command that takes options.
    if !(language.is_source("checker.cpp") && language.takes_compiler_options()) {
        return;
    }
    if job
        .files
        .iter()
        .any(|f| f.name.as_deref() == Some(HEADER_NAME))
    {
        return;
    }
    job.harness
        .files
        .push(SourceFile::named(HEADER_NAME, HEADER.to_vec()));
    job.compiler_options.push(PARTIAL_BASE_OPTION.to_string());
}

/// What a checker or an interactor decided about a test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    /// The test's verdict.
    pub verdict: ResultStatus,
    /// The test's score: 1 accepted, the points or partial credit given, else 0.
    pub score: f64,
    /// Its message (testlib writes it on stderr), or why it failed.
    pub comment: Option<String>,
}

impl Decision {
    fn new(verdict: ResultStatus, score: f64, comment: Option<String>) -> Decision {
        Decision {
            verdict,
            score,
            comment,
        }
    }
}

/// Reads the decision of a checker or interactor (`role` names it in comments)
/// from how its box ended.
pub(crate) fn decision(role: &str, outcome: &Outcome) -> Decision {
    let said = comment_of(outcome);
    let code = match (outcome.status, outcome.exit_code) {
        (Status::Ok, _) => 0,
        (Status::RuntimeError, Some(code)) => code,
        _ => return failed(role, outcome, said),
    };
    match code {
        0 => Decision::new(ResultStatus::Accepted, 1.0, said),
        1 => Decision::new(ResultStatus::WrongAnswer, 0.0, said),
        2 | 4 | 8 => Decision::new(ResultStatus::PresentationError, 0.0, said),
        7 => match said.as_deref().and_then(points) {
            Some(points) => Decision::new(ResultStatus::Partial, points, said),
            None => {
                let mut comment =
                    format!("the {role} exited with 7 (points) without printing 'points X'");
                if let Some(said) = said {
                    comment.push_str(": ");
                    comment.push_str(&said);
                }
                Decision::new(ResultStatus::CheckerError, 0.0, Some(comment))
            }
        },
        code if code >= PARTIAL_BASE => Decision::new(
            ResultStatus::Partial,
            f64::from(code - PARTIAL_BASE) / 100.0,
            said,
        ),
        _ => failed(role, outcome, said),
    }
}

/// The decision when the checker or interactor itself failed: `_fail`, an exit
/// code testlib does not use, a signal or a limit. Never the program's fault.
fn failed(role: &str, outcome: &Outcome, said: Option<String>) -> Decision {
    let how = match (outcome.exit_code, &outcome.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => signal.clone(),
        (None, None) => outcome.status.to_string(),
    };
    let mut comment = format!("the {role} failed ({}, {how})", outcome.status);
    if let Some(said) = said {
        comment.push_str(": ");
        comment.push_str(&said);
    }
    Decision::new(ResultStatus::CheckerError, 0.0, Some(comment))
}

/// The points of testlib's `quitp`: its message starts `points X`.
fn points(message: &str) -> Option<f64> {
    let value: f64 = message
        .strip_prefix("points ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    value.is_finite().then_some(value)
}

/// The messages of a checker or interactor: its stderr (where testlib writes),
/// or its stdout when stderr is empty; trimmed and cut to a kilobyte.
pub(crate) fn comment_of(outcome: &Outcome) -> Option<String> {
    let text = [&outcome.stderr, &outcome.stdout]
        .into_iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .find(|t| !t.is_empty())?;
    let mut end = text.len().min(MAX_COMMENT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ended(status: Status, code: Option<i32>, stdout: &str, stderr: &str) -> Outcome {
        Outcome {
            status,
            exit_code: code,
            signal: None,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            stdout_truncated: false,
            stderr_truncated: false,
            cpu_time: Duration::ZERO,
            wall_time: Duration::ZERO,
            memory_kb: 0,
            limit_hit: None,
            chunks: Vec::new(),
        }
    }

    fn exited(code: i32, stderr: &str) -> Decision {
        let status = if code == 0 {
            Status::Ok
        } else {
            Status::RuntimeError
        };
        decision("checker", &ended(status, Some(code), "", stderr))
    }

    #[test]
    fn exit_codes_map_to_verdicts_as_testlib_defines_them() {
        assert_eq!(
            exited(0, "ok 3 tokens\n"),
            Decision::new(ResultStatus::Accepted, 1.0, Some("ok 3 tokens".into()))
        );
        assert_eq!(
            exited(1, "wrong answer x").verdict,
            ResultStatus::WrongAnswer
        );
        assert_eq!(
            exited(2, "wrong output format YES or NO expected").verdict,
            ResultStatus::PresentationError
        );
        let fail = exited(3, "FAIL bad answer file");
        assert_eq!(fail.verdict, ResultStatus::CheckerError);
        assert_eq!(
            fail.comment.as_deref(),
            Some("the checker failed (runtime_error, exit code 3): FAIL bad answer file")
        );
        assert_eq!(exited(5, "").verdict, ResultStatus::CheckerError);
    }

    #[test]
    fn points_are_read_from_the_message_and_partial_credit_from_the_code() {
        let points = exited(7, "points 0.25 ja=1 pa=0.75\n");
        assert_eq!(points.verdict, ResultStatus::Partial);
        assert_eq!(points.score, 0.25);
        assert_eq!(points.comment.as_deref(), Some("points 0.25 ja=1 pa=0.75"));
        let partial = exited(16 + 40, "partially correct (40) half");
        assert_eq!(
            (partial.verdict, partial.score),
            (ResultStatus::Partial, 0.4)
        );
        assert_eq!(
            exited(7, "no points here").verdict,
            ResultStatus::CheckerError
        );
    }

    #[test]
    fn a_checker_that_is_killed_or_runs_out_of_time_failed_itself() {
        let mut killed = ended(Status::TimeLimitExceeded, None, "", "");
        killed.signal = Some("SIGKILL".into());
        let decided = decision("interactor", &killed);
        assert_eq!(decided.verdict, ResultStatus::CheckerError);
        assert_eq!(
            decided.comment.as_deref(),
            Some("the interactor failed (time_limit_exceeded, SIGKILL)")
        );
    }

    #[test]
    fn stderr_is_the_comment_and_stdout_only_when_stderr_is_empty() {
        let both = ended(Status::Ok, Some(0), "debug\n", "ok fine\n");
        assert_eq!(comment_of(&both).as_deref(), Some("ok fine"));
        let only_stdout = ended(Status::Ok, Some(0), "got 10\n", "");
        assert_eq!(comment_of(&only_stdout).as_deref(), Some("got 10"));
    }

    #[test]
    fn a_long_comment_is_cut_at_a_character_boundary() {
        let long = "é".repeat(1000);
        let comment = comment_of(&ended(Status::Ok, Some(0), &long, "")).unwrap();
        assert!(comment.len() <= MAX_COMMENT_BYTES);
        assert!(comment.chars().all(|c| c == 'é'));
    }
}
