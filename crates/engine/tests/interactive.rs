//! Interactive problems with real boxes: the A+B interactor of
//! `examples/interactive-a-plus-b` (testlib's `registerInteraction`) talking to
//! solutions that answer right, answer wrong, run out of time and never read;
//! and testlib's own A+B interactor, whose `tout` goes to a checker.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use runbox_engine::{
    Catalog, Checker, CompileCacheConfig, CustomChecker, CustomProgram, Engine, EngineConfig,
    Failure, Job, JobError, LimitOverrides, ResultStatus, RunResult, SourceFile, TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions, Status};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 6,
            uid_base: 2_070_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

/// One compile cache for the test binary: the interactor compiles once.
static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("runbox-interactive-cache-{}", std::process::id()));
    Engine::new(
        SANDBOX.clone(),
        Catalog::embedded().unwrap(),
        EngineConfig {
            compile_cache: Some(CompileCacheConfig {
                dir,
                max_bytes: 1 << 30,
            }),
            test_workers: 2,
            ..EngineConfig::default()
        },
    )
});

fn example(name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/interactive-a-plus-b")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn interactor() -> CustomProgram {
    CustomProgram {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed(example("interactor.cpp"))],
    }
}

fn queries(name: &str, stdin: &str) -> TestCase {
    TestCase {
        name: name.into(),
        stdin: stdin.as_bytes().to_vec(),
        ..TestCase::default()
    }
}

/// A Python solution against the example's interactor, with short limits.
fn job(solution: &str) -> Job {
    Job {
        language: "python".into(),
        files: vec![SourceFile::unnamed(solution)],
        tests: vec![
            queries("1", "3\n1 2\n-5 5\n1000000000 1000000000\n"),
            queries("2", "1\n40 2\n"),
        ],
        interactor: Some(interactor()),
        limits: LimitOverrides {
            cpu_time: Some(Duration::from_secs(1)),
            wall_time: Some(Duration::from_secs(2)),
            ..LimitOverrides::default()
        },
        ..Job::default()
    }
}

fn verdicts(result: &RunResult) -> Vec<ResultStatus> {
    result
        .tests
        .as_ref()
        .unwrap_or_else(|| panic!("no tests: {result:?}"))
        .iter()
        .map(|t| t.verdict)
        .collect()
}

#[test]
fn a_solution_that_answers_every_query_is_accepted_with_the_interactors_message() {
    let solution = String::from_utf8(example("solution.py")).unwrap();
    let result = ENGINE.check_and_run(&job(&solution)).unwrap();
    assert_eq!(result.status, ResultStatus::Accepted, "{result:?}");
    let tests = result.tests.as_ref().unwrap();
    assert_eq!(tests[0].comment.as_deref(), Some("ok 3 sums right"));
    assert_eq!(tests[1].comment.as_deref(), Some("ok 1 sums right"));
    let interactor = tests[0]
        .interactor
        .as_ref()
        .expect("the interactor's figures");
    assert_eq!(interactor.status, Status::Ok);
    assert!(interactor.memory_kb > 0);
    // The solution's stdout went to the interactor, not into the result.
    assert!(tests[0].run.stdout.is_empty());
    assert_eq!(result.score, Some(2.0));
}

#[test]
fn a_cpp_solution_talks_to_the_interactor_too() {
    let job = Job {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed(example("solution.cpp"))],
        ..job("")
    };
    let result = ENGINE.check_and_run(&job).unwrap();
    assert_eq!(
        verdicts(&result),
        [ResultStatus::Accepted, ResultStatus::Accepted]
    );
}

#[test]
fn a_wrong_answer_is_the_interactors_verdict_with_its_reason() {
    let solution = String::from_utf8(example("wrong.py")).unwrap();
    let result = ENGINE.check_and_run(&job(&solution)).unwrap();
    assert_eq!(
        verdicts(&result),
        [ResultStatus::WrongAnswer, ResultStatus::WrongAnswer]
    );
    assert_eq!(
        result.tests.as_ref().unwrap()[1].comment.as_deref(),
        Some("wrong answer query 1: 40 + 2 is 42, not 43")
    );
    assert_eq!(result.score, Some(0.0));
}

#[test]
fn a_solution_that_runs_out_of_time_is_a_time_limit_even_when_the_interactor_gives_up_first() {
    // It reads the first query, then computes forever: the interactor waits on
    // it, and when the solution is killed it reads the end of its input.
    let slow = "n = int(input())\na, b = map(int, input().split())\nwhile True:\n    pass\n";
    let result = ENGINE.check_and_run(&job(slow)).unwrap();
    assert_eq!(
        verdicts(&result),
        [
            ResultStatus::TimeLimitExceeded,
            ResultStatus::TimeLimitExceeded
        ]
    );
    let test = &result.tests.as_ref().unwrap()[0];
    assert!(
        test.run.cpu_time >= Duration::from_secs(1),
        "{:?}",
        test.run
    );
}

#[test]
fn a_solution_that_never_reads_cannot_hang_the_pair_beyond_its_wall_time() {
    let idle = "import time\ntime.sleep(60)\n";
    let started = Instant::now();
    let result = ENGINE.check_and_run(&job(idle)).unwrap();
    assert_eq!(
        verdicts(&result),
        [
            ResultStatus::TimeLimitExceeded,
            ResultStatus::TimeLimitExceeded
        ]
    );
    let test = &result.tests.as_ref().unwrap()[0];
    assert!(
        test.run.wall_time < Duration::from_secs(4),
        "{:?}",
        test.run
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_interactors_tout_goes_to_the_checker_with_the_expected_answer() {
    // testlib's own A+B interactor writes the solution's answers to tout
    // without judging them; wcmp compares tout with the expected output.
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/testlib")
                .join(name),
        )
        .unwrap()
    };
    // Its protocol has no count first: pairs until the end of input.
    let mut job = job(concat!(
        "import sys\n",
        "while line := sys.stdin.readline():\n",
        "    a, b = map(int, line.split())\n",
        "    print(a + b + 1, flush=True)\n",
    ));
    job.interactor = Some(CustomProgram {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed(fixture("interactor-a-plus-b.cpp"))],
    });
    job.checker = Checker::Custom(CustomChecker {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed(fixture("wcmp.cpp"))],
    });
    // testlib's interactor reads pairs right after the count.
    job.tests = vec![TestCase {
        expected_output: Some(b"42\n".to_vec()),
        ..queries("1", "1\n40 2\n")
    }];
    let result = ENGINE.check_and_run(&job).unwrap();
    assert_eq!(verdicts(&result), [ResultStatus::WrongAnswer]);
    let test = &result.tests.as_ref().unwrap()[0];
    assert_eq!(
        test.comment.as_deref(),
        Some("wrong answer 1st words differ - expected: '42', found: '43'")
    );
    assert!(test.checker.is_some() && test.interactor.is_some());
}

#[test]
fn an_interactor_in_an_unknown_language_is_refused_before_anything_runs() {
    let mut job = job("print(1)");
    job.interactor = Some(CustomProgram {
        language: "klingon".into(),
        files: vec![SourceFile::unnamed("x")],
    });
    match ENGINE.check_and_run(&job).unwrap_err() {
        Failure::Job(JobError::Invalid { field, .. }) => {
            assert_eq!(field, "interactor.language")
        }
        other => panic!("{other}"),
    }
}

#[test]
fn an_interactor_that_does_not_compile_is_a_checker_error() {
    let mut job = job("print(1)");
    job.interactor = Some(CustomProgram {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed("int main( {")],
    });
    let result = ENGINE.check_and_run(&job).unwrap();
    assert_eq!(result.status, ResultStatus::CheckerError);
    let message = result.message.unwrap();
    assert!(
        message.starts_with("the interactor does not compile"),
        "{message}"
    );
}
