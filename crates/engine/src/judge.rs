//! The tests loop: one fresh box per test case, each run judged by a checker.
//!
//! The program was compiled once (or taken from the compile cache); each test runs
//! it with its own stdin, arguments and limits, in parallel over a bounded number
//! of workers or one by one. A run that does not end with exit 0 gets its stage
//! status as verdict; otherwise the checker decides. A custom checker is itself a
//! compiled program, run in its own box with the test's input, the program's
//! output and the expected output as files; its exit code is its decision, as
//! testlib defines them (`testlib.rs`). With an interactor, each test runs the
//! program and the interactor together (`interact.rs`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use runbox_sandbox::{BindMount, Sandbox, Status};

use crate::checker::{CheckOutcome, Checker};
use crate::error::{Error, Result};
use crate::job::{Job, TestCase};
use crate::pipeline::{Program, RunInput, run_collecting, run_program};
use crate::result::{ResultStatus, StageSummary, TestResult};
use crate::testlib::{self, Decision};

/// What judges a run's output.
pub(crate) enum Judge<'a> {
    /// A built-in checker.
    Builtin(&'a Checker),
    /// A custom checker program.
    Program(Program<'a>),
}

/// How a job's tests are judged: the checker, and the interactor if any.
pub(crate) struct Judging<'a> {
    pub checker: Judge<'a>,
    pub interactor: Option<Program<'a>>,
    /// How many files and bytes each test's run may return.
    pub output_caps: crate::output_files::OutputCaps,
}

/// Where a custom checker (or an interactor) finds the test's files.
pub(crate) const JUDGE_DIR: &str = "/judge";

/// How the tests are spread: workers, and the CPU of each when pinned.
pub(crate) struct Spread<'p> {
    pub workers: usize,
    /// CPUs to pin to, one per worker; empty: not pinned.
    pub cpus: Vec<u32>,
    /// Called with each test's result as it is judged.
    pub progress: &'p (dyn Fn(&TestResult) + Sync),
    /// Output bytes the tests may keep together, once judged (the checker saw
    /// them whole): a job of many tests printing much holds a bounded result.
    pub output_budget: usize,
}

/// Runs every test (or up to the first failure) and returns their results in test order.
pub(crate) fn run_tests(
    sandbox: &Sandbox,
    program: &Program<'_>,
    job: &Job,
    judging: &Judging<'_>,
    spread: &Spread<'_>,
) -> Result<Vec<TestResult>> {
    let tests = &job.tests;
    let slots: Vec<Mutex<Option<TestResult>>> = tests.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let first_failure = AtomicUsize::new(usize::MAX);
    let error: Mutex<Option<Error>> = Mutex::new(None);
    let stop = job.judge.stop_on_first_failure;
    let budget = AtomicUsize::new(spread.output_budget);
    std::thread::scope(|scope| {
        for worker in 0..spread.workers.clamp(1, tests.len().max(1)) {
            let cpu = spread.cpus.get(worker).copied();
            let (slots, next, first_failure, error, budget) =
                (&slots, &next, &first_failure, &error, &budget);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(test) = tests.get(i) else { break };
                    if (stop && i > first_failure.load(Ordering::Acquire)) || lock(error).is_some()
                    {
                        break;
                    }
                    match run_test(sandbox, program, job, test, judging, cpu) {
                        Ok(mut result) => {
                            keep_within(&mut result.run, budget);
                            if result.verdict != ResultStatus::Accepted {
                                first_failure.fetch_min(i, Ordering::AcqRel);
                            }
                            (spread.progress)(&result);
                            *lock(&slots[i]) = Some(result);
                        }
                        Err(err) => {
                            lock(error).get_or_insert(err);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    let mut results = Vec::with_capacity(tests.len());
    for slot in slots {
        // Tests are claimed in order, so the listed ones are a prefix.
        let Some(result) = slot.into_inner().unwrap_or_else(|p| p.into_inner()) else {
            break;
        };
        let failed = result.verdict != ResultStatus::Accepted;
        results.push(result);
        if stop && failed {
            break;
        }
    }
    Ok(results)
}

/// Cuts a judged test's outputs to what is left of `budget`, flagging the cut.
fn keep_within(stage: &mut runbox_sandbox::Outcome, budget: &AtomicUsize) {
    for (data, truncated) in [
        (&mut stage.stdout, &mut stage.stdout_truncated),
        (&mut stage.stderr, &mut stage.stderr_truncated),
    ] {
        let wanted = data.len();
        let granted = budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left - left.min(wanted))
            })
            .map_or(0, |left| left.min(wanted));
        if granted < wanted {
            data.truncate(granted);
            data.shrink_to_fit();
            *truncated = true;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One test: a fresh box for the program (beside the interactor's, if any),
/// then the checker.
fn run_test(
    sandbox: &Sandbox,
    program: &Program<'_>,
    job: &Job,
    test: &TestCase,
    judging: &Judging<'_>,
    cpu: Option<u32>,
) -> Result<TestResult> {
    let limits = test.limits.apply(program.limits);
    let args = if test.args.is_empty() {
        &job.args
    } else {
        &test.args
    };
    let input = RunInput {
        limits: Some(&limits),
        stdin: &test.stdin,
        args,
        cpu,
        stderr_to_stdout: job.stderr_to_stdout,
        network: job.network,
        output_files: &job.output_files,
        output_caps: judging.output_caps,
        memcheck: job.analysis.memcheck,
        ..RunInput::default()
    };
    if let Some(interactor) = &judging.interactor {
        return crate::interact::run_test(sandbox, program, interactor, test, input, judging);
    }
    let crate::pipeline::Collected {
        outcome: run,
        files: output_files,
        memcheck,
    } = run_collecting(sandbox, program, input)?;
    let (decision, checker) = if run.status != Status::Ok {
        (not_run(run.status), None)
    } else {
        match &test.expected_output {
            None => (accepted(), None),
            Some(expected) => check(
                sandbox,
                &judging.checker,
                &test.stdin,
                expected,
                &run.stdout,
                cpu,
            )?,
        }
    };
    Ok(TestResult {
        name: test.name.clone(),
        verdict: decision.verdict,
        score: decision.score,
        run,
        comment: decision.comment,
        checker,
        interactor: None,
        cpu,
        output_files,
        memcheck,
    })
}

/// A test accepted without a checker (it has no expected output).
pub(crate) fn accepted() -> Decision {
    Decision {
        verdict: ResultStatus::Accepted,
        score: 1.0,
        comment: None,
    }
}

/// A test whose run ended badly: its status is the verdict.
pub(crate) fn not_run(status: Status) -> Decision {
    Decision {
        verdict: status.into(),
        score: 0.0,
        comment: None,
    }
}

/// Judges `actual` against `expected`: a built-in comparison, or the custom
/// checker in its own box (then with its figures).
pub(crate) fn check(
    sandbox: &Sandbox,
    judge: &Judge<'_>,
    input: &[u8],
    expected: &[u8],
    actual: &[u8],
    cpu: Option<u32>,
) -> Result<(Decision, Option<StageSummary>)> {
    let decided = match judge {
        Judge::Builtin(checker) => checker.compare(expected, actual),
        Judge::Program(checker) => {
            let (decision, summary) = run_checker(sandbox, checker, input, actual, expected, cpu)?;
            return Ok((decision, Some(summary)));
        }
    };
    let CheckOutcome { accepted, comment } = decided.unwrap_or(CheckOutcome {
        accepted: false,
        comment: Some("no checker".into()),
    });
    let decision = if accepted {
        Decision {
            comment,
            ..self::accepted()
        }
    } else {
        Decision {
            verdict: ResultStatus::WrongAnswer,
            score: 0.0,
            comment,
        }
    };
    Ok((decision, None))
}

/// Runs a custom checker with `input`, `output` and `answer` files in /judge.
fn run_checker(
    sandbox: &Sandbox,
    checker: &Program<'_>,
    input: &[u8],
    output: &[u8],
    answer: &[u8],
    cpu: Option<u32>,
) -> Result<(Decision, StageSummary)> {
    let bytes = (input.len() + output.len() + answer.len()) as u64;
    let volume = sandbox
        .volume(bytes + (1 << 20))
        .map_err(|source| Error::Sandbox {
            stage: "checker",
            source,
        })?;
    for (name, content) in [("input", input), ("output", output), ("answer", answer)] {
        let path = volume.path().join(name);
        crate::pipeline::write_box_file(&path, content)?;
    }
    let args: Vec<String> = ["input", "output", "answer"]
        .iter()
        .map(|n| format!("{JUDGE_DIR}/{n}"))
        .collect();
    let extra = [BindMount::read_only(volume.path(), JUDGE_DIR)];
    let outcome = run_program(
        sandbox,
        checker,
        RunInput {
            args: &args,
            extra: &extra,
            cpu,
            ..RunInput::default()
        },
    )?;
    Ok((
        testlib::decision("checker", &outcome),
        StageSummary::from(&outcome),
    ))
}

/// The CPUs this process may run on, from `/proc/self/status`.
pub(crate) fn allowed_cpus() -> Vec<u32> {
    let listed = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|l| parse_cpu_list(l.trim()))
        })
        .unwrap_or_default();
    if listed.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        return (0..n).collect();
    }
    listed
}

/// Parses a cpuset list such as `0-3,6`.
fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    cpus.extend(a..=b.min(a.saturating_add(4096)));
                }
            }
            None => cpus.extend(part.parse::<u32>().ok()),
        }
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_ranges_and_singles() {
        assert_eq!(parse_cpu_list("0-3,6"), [0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list("1"), [1]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
        assert!(!allowed_cpus().is_empty());
    }
}
