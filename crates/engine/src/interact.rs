//! Interactive tests: the program and an interactor run together, each one's
//! stdout piped into the other's stdin, and the interactor decides.
//!
//! The interactor is called as testlib's `registerInteraction` expects it:
//! `interactor input tout [answer]`, where `input` is the test's `stdin`, `tout`
//! a file it may write for the checker, and `answer` the test's expected output
//! when there is one. Both boxes start together (`Sandbox::run_pair`), each with
//! its own limits; the interactor's wall time is its own plus the program's, so
//! that a program that stops talking runs out of its time first. Verdicts, in
//! this order, as contest systems give them:
//!
//! 1. The program ran out of time, memory or output: that status, even when the
//!    interactor gave up first.
//! 2. The interactor was killed by SIGPIPE: the program stopped reading before
//!    the interactor was done; `runtime_error` if the program crashed, else
//!    `wrong_answer`.
//! 3. The program crashed: `runtime_error`, unless the interactor had judged
//!    it already (it said `_wa`, or failed itself), or the crash was SIGPIPE
//!    (the interactor had ended): a program told "wrong" often dies reading the
//!    closed pipe, and that is not its verdict. An interactor that saw the end
//!    of its input because the program crashed says `_pe`: the crash wins.
//! 4. Otherwise the interactor's exit code, as testlib defines them (a crash
//!    or a limit of the interactor is `checker_error`).
//! 5. Accepted, with an expected output: the checker judges `tout` against it.

use runbox_sandbox::{BindMount, Limits, Outcome, Sandbox, Status};

use crate::error::{Error, Result};
use crate::job::TestCase;
use crate::judge::{self, JUDGE_DIR, Judging};
use crate::pipeline::{Program, RunInput, program_box};
use crate::result::{ResultStatus, StageSummary, TestResult};
use crate::testlib::{self, Decision};

/// Room for the interactor's `tout` file, beside the test's input and answer.
const TOUT_BYTES: u64 = 16 << 20;

/// One interactive test: the program and the interactor joined, then the checker.
pub(crate) fn run_test(
    sandbox: &Sandbox,
    program: &Program<'_>,
    interactor: &Program<'_>,
    test: &TestCase,
    input: RunInput<'_>,
    judging: &Judging<'_>,
) -> Result<TestResult> {
    let answer = test.expected_output.as_deref();
    let bytes = (test.stdin.len() + answer.map_or(0, <[u8]>::len)) as u64;
    let volume = sandbox
        .volume(bytes + TOUT_BYTES)
        .map_err(|source| Error::Sandbox {
            stage: "interactor",
            source,
        })?;
    let mut files = vec![("input", test.stdin.as_slice())];
    files.extend(answer.map(|a| ("answer", a)));
    for (name, content) in &files {
        let path = volume.path().join(name);
        crate::pipeline::write_box_file(&path, content)?;
    }
    let mut args = vec![format!("{JUDGE_DIR}/input"), format!("{JUDGE_DIR}/tout")];
    if answer.is_some() {
        args.push(format!("{JUDGE_DIR}/answer"));
    }
    let program_limits = input.limits.unwrap_or(program.limits);
    let interactor_limits = Limits {
        wall_time: interactor.limits.wall_time + program_limits.wall_time,
        ..interactor.limits.clone()
    };
    let cpu = input.cpu;
    // The program's stdout is the interactor's stdin: stderr stays apart, or
    // the interactor would read it.
    let program_input = RunInput {
        stderr_to_stdout: false,
        ..input
    };
    let extra = [BindMount::writable(volume.path(), JUDGE_DIR)];
    let interactor_input = RunInput {
        limits: Some(&interactor_limits),
        args: &args,
        extra: &extra,
        cpu,
        ..RunInput::default()
    };
    let (run, interaction) = sandbox
        .run_pair(
            &program_box(program, &program_input),
            &program_box(interactor, &interactor_input),
        )
        .map_err(|source| Error::Sandbox {
            stage: "run",
            source,
        })?;
    let mut decision = decide(&run, &interaction);
    let mut checker = None;
    if let (ResultStatus::Accepted, Some(expected)) = (decision.verdict, answer) {
        // The interactor wrote its file as the box user: a link or a FIFO in its
        // place is never followed; missing or refused, it wrote none.
        let tout = runbox_sandbox::files::read_box_file(
            volume.path(),
            std::path::Path::new("tout"),
            TOUT_BYTES,
        )
        .unwrap_or_default();
        let (checked, summary) =
            judge::check(sandbox, &judging.checker, &test.stdin, expected, &tout, cpu)?;
        // The interactor's message says more than "accepted" alone.
        decision = Decision {
            comment: checked.comment.or(decision.comment),
            ..checked
        };
        checker = summary;
    }
    Ok(TestResult {
        name: test.name.clone(),
        verdict: decision.verdict,
        score: decision.score,
        run,
        comment: decision.comment,
        checker,
        interactor: Some(StageSummary::from(&interaction)),
        cpu,
        output_files: None,
        memcheck: None,
    })
}

/// The verdict of a program and its interactor (see the module's rules).
fn decide(program: &Outcome, interactor: &Outcome) -> Decision {
    let broken_pipe = |o: &Outcome| o.signal.as_deref() == Some("SIGPIPE");
    if broken_pipe(interactor) {
        return match program.status {
            Status::Ok => Decision {
                verdict: ResultStatus::WrongAnswer,
                score: 0.0,
                comment: Some("the program stopped reading before the interactor was done".into()),
            },
            status => judge::not_run(status),
        };
    }
    let decided = testlib::decision("interactor", interactor);
    match program.status {
        Status::Ok => decided,
        Status::RuntimeError
            if broken_pipe(program)
                || matches!(
                    decided.verdict,
                    ResultStatus::WrongAnswer | ResultStatus::CheckerError
                ) =>
        {
            decided
        }
        status => judge::not_run(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ended(status: Status, code: Option<i32>, signal: Option<&str>, stderr: &str) -> Outcome {
        Outcome {
            status,
            exit_code: code,
            signal: signal.map(str::to_string),
            stdout: Vec::new(),
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

    fn ok() -> Outcome {
        ended(Status::Ok, Some(0), None, "")
    }

    #[test]
    fn the_programs_own_limit_wins_over_the_interactors_verdict() {
        let gave_up = ended(Status::RuntimeError, Some(2), None, "wrong output format");
        let slow = ended(Status::TimeLimitExceeded, None, Some("SIGKILL"), "");
        assert_eq!(
            decide(&slow, &gave_up).verdict,
            ResultStatus::TimeLimitExceeded
        );
        let crashed = ended(Status::RuntimeError, None, Some("SIGSEGV"), "");
        assert_eq!(
            decide(&crashed, &gave_up).verdict,
            ResultStatus::RuntimeError
        );
    }

    #[test]
    fn a_program_cut_off_by_a_finished_interactor_gets_the_interactors_verdict() {
        let cut_off = ended(Status::RuntimeError, None, Some("SIGPIPE"), "");
        let wrong = ended(Status::RuntimeError, Some(1), None, "wrong answer 1+2 is 3");
        let decided = decide(&cut_off, &wrong);
        assert_eq!(decided.verdict, ResultStatus::WrongAnswer);
        assert_eq!(decided.comment.as_deref(), Some("wrong answer 1+2 is 3"));
    }

    #[test]
    fn a_program_that_crashes_after_being_told_wrong_gets_the_wrong_answer() {
        let died_reading = ended(Status::RuntimeError, Some(1), None, "EOFError");
        let wrong = ended(Status::RuntimeError, Some(1), None, "wrong answer 3 != 4");
        assert_eq!(
            decide(&died_reading, &wrong).verdict,
            ResultStatus::WrongAnswer
        );
    }

    #[test]
    fn an_interactor_cut_off_by_the_program_is_the_programs_fault() {
        let cut_off = ended(Status::RuntimeError, None, Some("SIGPIPE"), "");
        let decided = decide(&ok(), &cut_off);
        assert_eq!(decided.verdict, ResultStatus::WrongAnswer);
    }

    #[test]
    fn an_interactor_that_fails_is_a_checker_error() {
        let failed = ended(Status::RuntimeError, Some(3), None, "FAIL bad input");
        assert_eq!(decide(&ok(), &failed).verdict, ResultStatus::CheckerError);
        let accepted = decide(&ok(), &ok());
        assert_eq!(
            (accepted.verdict, accepted.score),
            (ResultStatus::Accepted, 1.0)
        );
    }
}
