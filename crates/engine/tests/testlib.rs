//! Unmodified testlib checkers, as problem setters write them, judging with
//! real boxes: accepted, wrong answer, presentation error, the checker's own
//! failure and partial scores, with the checker's figures per test.
//!
//! The checkers in `tests/testlib/` are testlib's own (`wcmp`, `lcmp`, `rcmp6`,
//! `yesno`, `pointscmp`), copied unmodified; the engine gives them the pinned
//! `testlib.h`. Every test shares one compile cache, so each checker compiles
//! once for the whole run (testlib takes seconds to compile).

use std::path::Path;
use std::sync::{Arc, LazyLock};

use runbox_engine::{
    Catalog, Checker, CompileCacheConfig, CustomChecker, Engine, EngineConfig, Job, ResultStatus,
    RunResult, SourceFile, TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions, Status};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 6,
            uid_base: 2_060_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

/// One compile cache for the whole test binary, in a directory removed at exit
/// by nobody: it lives under the system's temporary directory, per process.
static CACHE: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("runbox-testlib-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
});

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    Engine::new(
        SANDBOX.clone(),
        Catalog::embedded().unwrap(),
        EngineConfig {
            compile_cache: Some(CompileCacheConfig {
                dir: CACHE.clone(),
                max_bytes: 1 << 30,
            }),
            test_workers: 2,
            ..EngineConfig::default()
        },
    )
});

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testlib")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn testlib_checker(name: &str) -> Checker {
    Checker::Custom(CustomChecker {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed(fixture(&format!("{name}.cpp")))],
    })
}

fn test(name: &str, stdin: &str, expected: &str) -> TestCase {
    TestCase {
        name: name.into(),
        stdin: stdin.as_bytes().to_vec(),
        expected_output: Some(expected.as_bytes().to_vec()),
        ..TestCase::default()
    }
}

/// A Python "solution" that prints its input: each test's stdin is the output
/// the checker is shown, so one program exercises every verdict.
fn echo_job(checker: Checker, tests: Vec<TestCase>) -> Job {
    Job {
        language: "python".into(),
        files: vec![SourceFile::unnamed(
            "import sys\nsys.stdout.write(sys.stdin.read())\n",
        )],
        tests,
        checker,
        ..Job::default()
    }
}

fn judged(job: &Job) -> RunResult {
    ENGINE.check_and_run(job).unwrap()
}

fn verdicts(result: &RunResult) -> Vec<(&str, ResultStatus)> {
    result
        .tests
        .as_ref()
        .unwrap_or_else(|| panic!("no tests: {result:?}"))
        .iter()
        .map(|t| (t.name.as_str(), t.verdict))
        .collect()
}

fn comment<'r>(result: &'r RunResult, test: &str) -> &'r str {
    result
        .tests
        .as_ref()
        .unwrap()
        .iter()
        .find(|t| t.name == test)
        .unwrap()
        .comment
        .as_deref()
        .unwrap_or("")
}

#[test]
fn wcmp_accepts_equal_tokens_and_names_the_first_different_word() {
    let result = judged(&echo_job(
        testlib_checker("wcmp"),
        vec![
            test("same", "1  2\n3\n", "1 2 3\n"),
            test("differs", "1 2 4\n", "1 2 3\n"),
        ],
    ));
    assert_eq!(
        verdicts(&result),
        [
            ("same", ResultStatus::Accepted),
            ("differs", ResultStatus::WrongAnswer)
        ]
    );
    assert_eq!(comment(&result, "same"), "ok 3 tokens");
    assert_eq!(
        comment(&result, "differs"),
        "wrong answer 3rd words differ - expected: '3', found: '4'"
    );
    assert_eq!(result.status, ResultStatus::WrongAnswer);
    assert_eq!(result.score, Some(1.0));
}

#[test]
fn lcmp_compares_line_by_line() {
    let result = judged(&echo_job(
        testlib_checker("lcmp"),
        vec![
            test("same", "a  b\nc\n", "a b\nc\n"),
            test("joined", "a b c\n", "a b\nc\n"),
        ],
    ));
    assert_eq!(
        verdicts(&result),
        [
            ("same", ResultStatus::Accepted),
            ("joined", ResultStatus::WrongAnswer)
        ]
    );
    assert!(
        comment(&result, "joined").starts_with("wrong answer 1st lines differ"),
        "{}",
        comment(&result, "joined")
    );
}

#[test]
fn rcmp6_accepts_within_its_epsilon_only() {
    let result = judged(&echo_job(
        testlib_checker("rcmp6"),
        vec![
            test("close", "0.3333333\n", "0.33333333333\n"),
            test("far", "0.3334\n", "0.33333333333\n"),
        ],
    ));
    assert_eq!(
        verdicts(&result),
        [
            ("close", ResultStatus::Accepted),
            ("far", ResultStatus::WrongAnswer)
        ]
    );
    assert!(comment(&result, "far").contains("1st numbers differ"));
}

#[test]
fn yesno_tells_a_wrong_answer_from_a_presentation_error_and_from_its_own_failure() {
    let result = judged(&echo_job(
        testlib_checker("yesno"),
        vec![
            test("yes", "yes\n", "YES\n"),
            test("no", "NO\n", "YES\n"),
            test("maybe", "MAYBE\n", "YES\n"),
            // The answer file itself is broken: the checker says _fail.
            test("broken-answer", "YES\n", "PERHAPS\n"),
        ],
    ));
    assert_eq!(
        verdicts(&result),
        [
            ("yes", ResultStatus::Accepted),
            ("no", ResultStatus::WrongAnswer),
            ("maybe", ResultStatus::PresentationError),
            ("broken-answer", ResultStatus::CheckerError),
        ]
    );
    assert_eq!(
        comment(&result, "no"),
        "wrong answer expected YES, found NO"
    );
    assert_eq!(
        comment(&result, "maybe"),
        "wrong output format YES or NO expected, but MAYBE found"
    );
    assert_eq!(
        comment(&result, "broken-answer"),
        "the checker failed (runtime_error, exit code 3): FAIL YES or NO expected in answer, but PERHAPS found"
    );
    // The first failing verdict in test order is the job's.
    assert_eq!(result.status, ResultStatus::WrongAnswer);
    assert_eq!(result.failed_tests.as_deref().unwrap().len(), 3);
}

#[test]
fn a_points_checker_gives_each_test_its_score_and_the_job_their_sum() {
    // pointscmp gives |answer - output| points, with testlib's quitp.
    let result = judged(&echo_job(
        testlib_checker("pointscmp"),
        vec![
            test("quarter", "1.25\n", "1\n"),
            test("half", "0.5\n", "1\n"),
        ],
    ));
    assert_eq!(
        verdicts(&result),
        [
            ("quarter", ResultStatus::Partial),
            ("half", ResultStatus::Partial)
        ]
    );
    let tests = result.tests.as_ref().unwrap();
    assert_eq!(tests[0].score, 0.25);
    assert_eq!(tests[1].score, 0.5);
    assert_eq!(result.score, Some(0.75));
    assert_eq!(result.status, ResultStatus::Partial);
    assert!(
        comment(&result, "quarter").starts_with("points 0.25"),
        "{}",
        comment(&result, "quarter")
    );
}

#[test]
fn partial_credit_with_pc_is_a_fraction_of_the_test() {
    let checker = r#"
#include "testlib.h"
int main(int argc, char *argv[]) {
    registerTestlibCmd(argc, argv);
    int got = ouf.readInt(), want = ans.readInt();
    if (got == want) quitf(_ok, "exact");
    quitf(_pc(40), "close to %d", want);
}
"#;
    let result = judged(&echo_job(
        Checker::Custom(CustomChecker {
            language: "cpp".into(),
            files: vec![SourceFile::unnamed(checker)],
        }),
        vec![test("exact", "7\n", "7\n"), test("close", "6\n", "7\n")],
    ));
    assert_eq!(
        verdicts(&result),
        [
            ("exact", ResultStatus::Accepted),
            ("close", ResultStatus::Partial)
        ]
    );
    let tests = result.tests.as_ref().unwrap();
    assert_eq!((tests[0].score, tests[1].score), (1.0, 0.4));
    assert_eq!(
        comment(&result, "close"),
        "partially correct (40) close to 7"
    );
}

#[test]
fn the_checkers_own_time_and_memory_are_reported_for_each_test() {
    let result = judged(&echo_job(
        testlib_checker("wcmp"),
        vec![test("one", "1\n", "1\n")],
    ));
    let test = &result.tests.as_ref().unwrap()[0];
    let checker = test.checker.as_ref().expect("a custom checker ran");
    assert_eq!(checker.status, Status::Ok);
    assert_eq!(checker.exit_code, Some(0));
    assert!(checker.wall_time > std::time::Duration::ZERO);
    assert!(checker.memory_kb > 0);
    let json = serde_json::to_value(test).unwrap();
    for field in ["cpu_time_ms", "wall_time_ms", "memory_kb", "status"] {
        assert!(json["checker"].get(field).is_some(), "{field} in {json}");
    }
    assert_eq!(json["score"], 1.0);
}

#[test]
fn a_checker_that_runs_out_of_its_time_is_a_checker_error_not_the_programs() {
    let checker = r#"
#include "testlib.h"
int main(int argc, char *argv[]) {
    registerTestlibCmd(argc, argv);
    for (volatile unsigned long i = 0;; i++) {}
}
"#;
    let engine = Engine::new(
        SANDBOX.clone(),
        Catalog::embedded().unwrap(),
        EngineConfig {
            compile_cache: Some(CompileCacheConfig {
                dir: CACHE.clone(),
                max_bytes: 1 << 30,
            }),
            checker_limits: runbox_sandbox::Limits {
                cpu_time: std::time::Duration::from_millis(300),
                ..runbox_engine::limits::default_checker_limits()
            },
            ..EngineConfig::default()
        },
    );
    let job = echo_job(
        Checker::Custom(CustomChecker {
            language: "cpp".into(),
            files: vec![SourceFile::unnamed(checker)],
        }),
        vec![test("1", "1\n", "1\n")],
    );
    let result = engine.check_and_run(&job).unwrap();
    assert_eq!(verdicts(&result), [("1", ResultStatus::CheckerError)]);
    let test = &result.tests.as_ref().unwrap()[0];
    assert_eq!(test.run.status, Status::Ok, "the program itself was fine");
    assert_eq!(
        test.checker.as_ref().unwrap().status,
        Status::TimeLimitExceeded
    );
    assert!(
        comment(&result, "1").starts_with("the checker failed (time_limit_exceeded"),
        "{}",
        comment(&result, "1")
    );
}

#[test]
fn a_testlib_checker_compiles_once_and_is_served_from_the_cache_after() {
    // A checker no other test uses, so its first compile happens here.
    let mut source = fixture("wcmp.cpp");
    source.extend_from_slice(b"\n// cache test\n");
    let job = echo_job(
        Checker::Custom(CustomChecker {
            language: "cpp".into(),
            files: vec![SourceFile::unnamed(source)],
        }),
        vec![test("1", "1\n", "1\n")],
    );
    let started = std::time::Instant::now();
    assert_eq!(judged(&job).status, ResultStatus::Accepted);
    let first = started.elapsed();
    let started = std::time::Instant::now();
    assert_eq!(judged(&job).status, ResultStatus::Accepted);
    let second = started.elapsed();
    // testlib takes seconds to compile; a cache hit takes none of them.
    assert!(
        second * 3 < first,
        "first {first:?}, then {second:?}: the second was compiled again"
    );
}

#[test]
fn a_checker_that_brings_its_own_testlib_keeps_it() {
    // Its own "testlib.h" defines what the checker uses: the engine's is not added.
    let job = echo_job(
        Checker::Custom(CustomChecker {
            language: "cpp".into(),
            files: vec![
                SourceFile::named(
                    "check.cpp",
                    "#include \"testlib.h\"\nint main() { return OWN_TESTLIB; }\n",
                ),
                SourceFile::named("testlib.h", "#define OWN_TESTLIB 0\n"),
            ],
        }),
        vec![test("1", "1\n", "1\n")],
    );
    assert_eq!(judged(&job).status, ResultStatus::Accepted);
}
