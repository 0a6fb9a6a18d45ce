//! Judging with real boxes: verdicts, checkers (a custom one in another language),
//! the two harness recipes of `examples/`, and the compile cache.
//!
//! The built-in catalog (C, C++ and Python are core languages, installed in CI)
//! plus a shell-based `built` language whose "compiler" is a script, so that cache
//! tests compile in milliseconds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use runbox_engine::{
    Catalog, Checker, CompileCacheConfig, CustomChecker, Engine, EngineConfig, Failure, Harness,
    Job, JobError, JudgeOptions, Language, LimitOverrides, ResultStatus, RunResult, SourceFile,
    TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions, Status};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 4,
            uid_base: 2_050_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

/// `built`: the source is a shell script run as the compiler; it must leave
/// `out.sh`, which the run stage runs.
const BUILT: &str = r#"
id = "built"
name = "Built"
extensions = ["build"]
packages = ["dash"]
source_file = "main.build"
compile = ["/bin/sh", "{entry}"]
run = ["/bin/sh", "out.sh"]
version = ["/bin/sh", "-c", "echo built 1.0"]
"#;

fn catalog() -> Catalog {
    let mut languages: Vec<Language> = Catalog::embedded()
        .unwrap()
        .languages()
        .iter()
        .map(|l| (**l).clone())
        .collect();
    languages.push(Language::parse(BUILT, "test").unwrap());
    Catalog::from_languages(languages).unwrap()
}

fn engine_with(cache: Option<CompileCacheConfig>) -> Engine {
    Engine::new(
        SANDBOX.clone(),
        catalog(),
        EngineConfig {
            compile_cache: cache,
            test_workers: 2,
            ..EngineConfig::default()
        },
    )
}

fn engine() -> Engine {
    engine_with(None)
}

fn test(name: &str, stdin: &str, expected: Option<&str>) -> TestCase {
    TestCase {
        name: name.into(),
        stdin: stdin.as_bytes().to_vec(),
        expected_output: expected.map(|e| e.as_bytes().to_vec()),
        ..TestCase::default()
    }
}

fn verdicts(result: &RunResult) -> Vec<(&str, ResultStatus)> {
    result
        .tests
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| (t.name.as_str(), t.verdict))
        .collect()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example_file(path: &str, name: &str) -> SourceFile {
    SourceFile::named(name, std::fs::read(examples().join(path)).unwrap())
}

/// One test per file `examples/<dir>/tests/NAME.args`: the argument is the test's name.
fn example_tests(dir: &str) -> Vec<TestCase> {
    let mut names: Vec<String> = std::fs::read_dir(examples().join(dir).join("tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "args"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let args = std::fs::read_to_string(examples().join(format!("{dir}/tests/{name}.args")))
                .unwrap();
            TestCase {
                name,
                args: args.lines().map(str::to_string).collect(),
                ..TestCase::default()
            }
        })
        .collect()
}

/// A C program whose behaviour each test picks on stdin.
const BEHAVIOURS: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char what[16] = "";
    if (scanf("%15s", what) != 1) return 9;
    if (!strcmp(what, "ac")) puts("3");
    if (!strcmp(what, "wa")) puts("4");
    if (!strcmp(what, "tle")) for (volatile long i = 0;; i++) {}
    if (!strcmp(what, "mle")) {
        for (int i = 0; i < 64; i++) { char *p = malloc(8 << 20); if (p) memset(p, 1, 8 << 20); }
    }
    if (!strcmp(what, "re")) raise(SIGSEGV);
    if (!strcmp(what, "ole")) for (;;) fputs("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", stdout);
    return 0;
}
"#;

fn behaviours_job(tests: Vec<TestCase>) -> Job {
    Job {
        language: "c".into(),
        files: vec![SourceFile::unnamed(BEHAVIOURS)],
        limits: LimitOverrides {
            cpu_time: Some(Duration::from_millis(300)),
            memory_bytes: Some(64 << 20),
            output_bytes: Some(4 << 10),
            ..LimitOverrides::default()
        },
        tests,
        ..Job::default()
    }
}

#[test]
fn each_test_gets_its_verdict_and_the_first_failure_in_test_order_is_the_status() {
    let job = behaviours_job(
        ["ac", "wa", "tle", "mle", "re", "ole"]
            .iter()
            .map(|w| test(w, w, Some("3\n")))
            .collect(),
    );
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(
        verdicts(&result),
        [
            ("ac", ResultStatus::Accepted),
            ("wa", ResultStatus::WrongAnswer),
            ("tle", ResultStatus::TimeLimitExceeded),
            ("mle", ResultStatus::MemoryLimitExceeded),
            ("re", ResultStatus::RuntimeError),
            ("ole", ResultStatus::OutputLimitExceeded),
        ]
    );
    assert_eq!(result.status, ResultStatus::WrongAnswer);
    assert!(result.run.is_none());
    assert_eq!(result.passed, Some(1));
    assert_eq!(result.failed, Some(5));
    assert_eq!(
        result.failed_tests.as_deref().unwrap(),
        ["wa", "tle", "mle", "re", "ole"]
    );
    let tests = result.tests.as_ref().unwrap();
    assert_eq!(
        tests[1].comment.as_deref(),
        Some("line 1: expected '3', got '4'")
    );
    assert_eq!(tests[4].run.signal.as_deref(), Some("SIGSEGV"));
    assert!(tests[2].run.cpu_time >= Duration::from_millis(300));
    assert!(tests[0].run.cpu_time < Duration::from_millis(300));
    let timing = result.timing.as_ref().unwrap();
    assert_eq!((timing.cpu_time, timing.parallel), ("cgroup", 2));
}

#[test]
fn a_solution_that_does_not_compile_is_a_compile_error_with_no_tests() {
    let mut job = behaviours_job(vec![test("1", "ac", Some("3"))]);
    job.files = vec![SourceFile::unnamed("int main(void) { return x; }")];
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(result.status, ResultStatus::CompileError);
    assert!(result.tests.is_none());
    assert!(String::from_utf8_lossy(&result.compile.unwrap().stderr).contains("undeclared"));
}

#[test]
fn stopping_at_the_first_failure_lists_the_tests_up_to_it() {
    let mut job = behaviours_job(vec![
        test("1", "ac", Some("3")),
        test("2", "wa", Some("3")),
        test("3", "ac", Some("3")),
        test("4", "ac", Some("3")),
    ]);
    job.judge.stop_on_first_failure = true;
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(
        verdicts(&result),
        [
            ("1", ResultStatus::Accepted),
            ("2", ResultStatus::WrongAnswer)
        ]
    );
    assert_eq!(result.failed_tests.as_deref().unwrap(), ["2"]);
}

#[test]
fn sequential_pinned_tests_run_one_by_one_on_one_cpu_with_their_own_limits() {
    let mut job = behaviours_job(vec![test("1", "ac", Some("3")), test("2", "tle", None)]);
    job.tests[1].limits.cpu_time = Some(Duration::from_millis(100));
    job.judge = JudgeOptions {
        sequential: true,
        pin_cpu: true,
        ..JudgeOptions::default()
    };
    let result = engine().check_and_run(&job).unwrap();
    let timing = result.timing.as_ref().unwrap();
    assert!(timing.pinned, "this host has the cpuset controller");
    assert_eq!(timing.parallel, 1);
    let tests = result.tests.as_ref().unwrap();
    assert!(tests[0].cpu.is_some());
    assert_eq!(tests[0].cpu, tests[1].cpu);
    assert_eq!(tests[1].verdict, ResultStatus::TimeLimitExceeded);
    assert!(
        tests[1].run.cpu_time < Duration::from_millis(250),
        "the test's own limit"
    );
}

#[test]
fn a_python_checker_judges_a_cpp_solution_and_its_output_is_the_comment() {
    // The checker accepts any answer within 1 of the expected one.
    let checker = r#"
import sys
inp, out, ans = (open(p).read() for p in sys.argv[1:4])
got, want = int(out.split()[0]), int(ans.split()[0])
if want == 999:
    sys.exit(3)
print(f"got {got}, want {want} for {inp.strip()}")
sys.exit(0 if abs(got - want) <= 1 else 1)
"#;
    let job = Job {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed(
            "#include <iostream>\nint main(){int a;std::cin>>a;std::cout<<a*2<<std::endl;}",
        )],
        tests: vec![
            test("close", "5", Some("11")),
            test("far", "5", Some("20")),
            test("broken", "1", Some("999")),
        ],
        checker: Checker::Custom(CustomChecker {
            language: "python".into(),
            files: vec![SourceFile::unnamed(checker)],
        }),
        ..Job::default()
    };
    let result = engine().check_and_run(&job).unwrap();
    let tests = result.tests.as_ref().unwrap();
    assert_eq!(
        verdicts(&result),
        [
            ("close", ResultStatus::Accepted),
            ("far", ResultStatus::WrongAnswer),
            ("broken", ResultStatus::CheckerError),
        ]
    );
    assert_eq!(tests[0].comment.as_deref(), Some("got 10, want 11 for 5"));
    assert_eq!(tests[1].comment.as_deref(), Some("got 10, want 20 for 5"));
    assert_eq!(
        tests[2].comment.as_deref(),
        Some("the checker failed (runtime_error, exit code 3)")
    );
}

#[test]
fn a_custom_checker_that_does_not_compile_is_a_checker_error_with_the_compiler_output() {
    let mut job = behaviours_job(vec![test("1", "ac", Some("3"))]);
    job.checker = Checker::Custom(CustomChecker {
        language: "c".into(),
        files: vec![SourceFile::unnamed("int main( {")],
    });
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(result.status, ResultStatus::CheckerError);
    let message = result.message.unwrap();
    assert!(
        message.contains("the checker does not compile"),
        "{message}"
    );
    assert!(message.contains("error"), "the compiler's words: {message}");
}

fn c_recipe(solution: &str) -> Job {
    Job {
        language: "c".into(),
        files: vec![example_file(&format!("c-assert/{solution}"), "solution.c")],
        harness: Harness {
            files: vec![
                example_file("c-assert/driver.c", "driver.c"),
                example_file("c-assert/solution.h", "solution.h"),
            ],
            entry: None,
            rename_main: true,
        },
        tests: example_tests("c-assert"),
        ..Job::default()
    }
}

#[test]
fn the_c_assertion_recipe_accepts_a_solution_with_its_own_main() {
    let result = engine().check_and_run(&c_recipe("solution.c")).unwrap();
    assert_eq!(result.status, ResultStatus::Accepted, "{result:?}");
    assert_eq!(result.passed, Some(4));
}

#[test]
fn the_c_assertion_recipe_names_exactly_the_failing_assertion_functions() {
    let result = engine().check_and_run(&c_recipe("buggy.c")).unwrap();
    assert_eq!(result.status, ResultStatus::RuntimeError);
    assert_eq!(
        result.failed_tests.as_deref().unwrap(),
        ["test_max_of", "test_reverse"]
    );
    let tests = result.tests.as_ref().unwrap();
    let failed = tests.iter().find(|t| t.name == "test_reverse").unwrap();
    assert_eq!(failed.run.signal.as_deref(), Some("SIGABRT"));
    assert!(
        String::from_utf8_lossy(&failed.run.stderr)
            .contains("Assertion `strcmp(word, \"xobnur\") == 0' failed"),
        "{}",
        String::from_utf8_lossy(&failed.run.stderr)
    );
}

#[test]
fn renaming_main_is_refused_for_a_language_that_cannot() {
    let job = Job {
        language: "python".into(),
        files: vec![SourceFile::unnamed("print(1)")],
        harness: Harness {
            rename_main: true,
            ..Harness::default()
        },
        ..Job::default()
    };
    match engine().check_and_run(&job).unwrap_err() {
        Failure::Job(JobError::Invalid { field, .. }) => assert_eq!(field, "harness.rename_main"),
        other => panic!("{other}"),
    }
}

fn python_recipe(solution: &str) -> Job {
    Job {
        language: "python".into(),
        files: vec![example_file(
            &format!("python-unittest/{solution}"),
            "solution.py",
        )],
        harness: Harness {
            files: vec![example_file(
                "python-unittest/test_solution.py",
                "test_solution.py",
            )],
            entry: Some("test_solution.py".into()),
            rename_main: false,
        },
        tests: example_tests("python-unittest"),
        ..Job::default()
    }
}

#[test]
fn the_python_unittest_recipe_runs_each_test_method_by_name() {
    let result = engine()
        .check_and_run(&python_recipe("solution.py"))
        .unwrap();
    assert_eq!(result.status, ResultStatus::Accepted, "{result:?}");
    let failed = engine()
        .check_and_run(&python_recipe("buggy/solution.py"))
        .unwrap();
    assert_eq!(
        failed.failed_tests.as_deref().unwrap(),
        ["test_palindrome_sentence"]
    );
    let test = &failed.tests.as_ref().unwrap()[2];
    assert_eq!(test.verdict, ResultStatus::RuntimeError);
    assert!(String::from_utf8_lossy(&test.run.stderr).contains("FAIL: test_palindrome_sentence"));
}

// ---- the compile cache ----

fn cache_in(dir: &Path, max_bytes: u64) -> Option<CompileCacheConfig> {
    Some(CompileCacheConfig {
        dir: dir.to_path_buf(),
        max_bytes,
    })
}

/// A `built` job whose compile pads the work dir with `pad` bytes.
fn built(marker: &str, pad: usize) -> Job {
    Job {
        language: "built".into(),
        files: vec![SourceFile::unnamed(format!(
            "head -c {pad} /dev/zero > pad\necho 'echo {marker}' > out.sh\n"
        ))],
        ..Job::default()
    }
}

fn cached(result: &RunResult) -> bool {
    result.compile.as_ref().unwrap().cached
}

fn stdout(result: &RunResult) -> String {
    String::from_utf8_lossy(&result.run.as_ref().unwrap().stdout).into_owned()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("entries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn an_identical_job_is_served_from_the_cache_and_any_changed_byte_misses() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(cache_in(dir.path(), 1 << 30));
    let first = engine.check_and_run(&built("one", 0)).unwrap();
    assert!(!cached(&first));
    let again = engine.check_and_run(&built("one", 0)).unwrap();
    assert!(cached(&again));
    assert_eq!(stdout(&again), "one\n");
    assert_eq!(again.status, ResultStatus::Ok);
    let changed = engine.check_and_run(&built("onf", 0)).unwrap();
    assert!(!cached(&changed), "one byte of the source changed");
    assert_eq!(stdout(&changed), "onf\n");
    let mut renamed = built("one", 0);
    renamed.files.push(SourceFile::named("notes.txt", "x"));
    assert!(
        !cached(&engine.check_and_run(&renamed).unwrap()),
        "another file"
    );
    // Another engine (another process) finds the entries on disk.
    let later = engine_with(cache_in(dir.path(), 1 << 30));
    assert!(cached(&later.check_and_run(&built("one", 0)).unwrap()));
}

#[test]
fn a_judged_job_from_the_cache_runs_its_tests_on_the_cached_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(cache_in(dir.path(), 1 << 30));
    let mut job = behaviours_job(vec![test("1", "ac", Some("3")), test("2", "wa", Some("3"))]);
    job.files = vec![SourceFile::unnamed(format!(
        "{BEHAVIOURS}\n// cache test\n"
    ))];
    let first = engine.check_and_run(&job).unwrap();
    let second = engine.check_and_run(&job).unwrap();
    assert!(!cached(&first) && cached(&second));
    assert_eq!(verdicts(&first), verdicts(&second));
    assert_eq!(
        second.compile.as_ref().unwrap().cpu_time,
        first.compile.as_ref().unwrap().cpu_time,
        "the cached compile stage is the one that made the artifacts"
    );
}

#[test]
fn identical_jobs_arriving_together_compile_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(cache_in(dir.path(), 1 << 30));
    let mut job = built("together", 0);
    job.files[0]
        .content
        .splice(0..0, b"sleep 0.3\n".iter().copied());
    let results: Vec<RunResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| engine.check_and_run(&job).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let compiled = results.iter().filter(|r| !cached(r)).count();
    assert_eq!(compiled, 1, "one compile, three served from it");
    assert!(results.iter().all(|r| stdout(r) == "together\n"));
}

#[test]
fn least_recently_used_entries_are_evicted_under_the_size_bound() {
    let dir = tempfile::tempdir().unwrap();
    // Each entry holds ~30 KiB (20 KB of padding, three files): two fit in 80 KiB.
    let engine = engine_with(cache_in(dir.path(), 80 << 10));
    for marker in ["a", "b", "c"] {
        engine.check_and_run(&built(marker, 20_000)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(entries(dir.path()).len(), 2);
    assert!(
        cached(&engine.check_and_run(&built("c", 20_000)).unwrap()),
        "c is kept"
    );
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !cached(&engine.check_and_run(&built("a", 20_000)).unwrap()),
        "a was evicted"
    );
    // Storing a again evicted b, the least recently used; c stays.
    assert!(cached(&engine.check_and_run(&built("c", 20_000)).unwrap()));
    assert_eq!(entries(dir.path()).len(), 2);
}

#[test]
fn a_damaged_or_half_written_entry_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(cache_in(dir.path(), 1 << 30));
    engine.check_and_run(&built("intact", 0)).unwrap();
    let [entry] = entries(dir.path()).try_into().unwrap();
    // The artifact changed on disk after it was committed.
    std::fs::write(entry.join("files/out.sh"), "echo tampered\n").unwrap();
    let result = engine.check_and_run(&built("intact", 0)).unwrap();
    assert!(!cached(&result));
    assert_eq!(stdout(&result), "intact\n");
    // A crash before the commit marker: the entry has its files but no marker.
    let [entry] = entries(dir.path()).try_into().unwrap();
    std::fs::remove_file(entry.join("COMMITTED")).unwrap();
    let result = engine.check_and_run(&built("intact", 0)).unwrap();
    assert!(!cached(&result));
    assert_eq!(stdout(&result), "intact\n");
}

#[test]
fn a_failed_compile_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(cache_in(dir.path(), 1 << 30));
    let job = Job {
        language: "built".into(),
        files: vec![SourceFile::unnamed("echo broken >&2; exit 1")],
        ..Job::default()
    };
    let result = engine.check_and_run(&job).unwrap();
    assert_eq!(result.status, ResultStatus::CompileError);
    assert!(!cached(&result));
    assert!(!cached(&engine.check_and_run(&job).unwrap()));
    assert!(entries(dir.path()).is_empty());
    assert_eq!(
        engine.check_and_run(&job).unwrap().compile.unwrap().status,
        Status::RuntimeError
    );
}
