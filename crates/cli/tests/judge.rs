//! End-to-end tests of `runbox judge`: the real binary, real boxes, a directory of
//! tests, and the C recipe of `examples/`.

use std::path::Path;
use std::process::{Command, Output};

fn runbox(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbox"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUNBOX_LANGUAGES_DIR")
        .env("RUNBOX_COMPILE_CACHE", dir.join("cache"))
        .output()
        .expect("runbox must start")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A C solution that adds two numbers, and three tests; `9 9` makes it print 0.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("tests");
    std::fs::create_dir(&tests).unwrap();
    std::fs::write(
        dir.path().join("sum.c"),
        "#include <stdio.h>\nint main(void){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a==9?0:a+b);return 0;}\n",
    )
    .unwrap();
    for (name, input, expected) in [("1", "1 2", "3"), ("2", "2 2", "4\n"), ("10", "9 9", "18")] {
        std::fs::write(tests.join(format!("{name}.in")), input).unwrap();
        let ext = if name == "2" { "ans" } else { "out" };
        std::fs::write(tests.join(format!("{name}.{ext}")), expected).unwrap();
    }
    dir
}

#[test]
fn judge_prints_a_table_and_exits_1_naming_the_failed_test() {
    let dir = workspace();
    let out = runbox(dir.path(), &["judge", "sum.c", "--tests", "tests"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(rows[0].starts_with("1 ") && rows[0].contains("accepted"));
    assert!(rows[1].starts_with("2 ") && rows[1].contains("accepted"));
    assert!(rows[2].starts_with("10") && rows[2].contains("wrong_answer"));
    assert!(
        rows[2].contains("line 1: expected '18', got '0'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("wrong_answer: 2/3 passed · failed: 10"),
        "{stdout}"
    );
}

#[test]
fn judge_exits_0_when_every_test_is_accepted_and_the_second_run_is_cached() {
    let dir = workspace();
    std::fs::remove_file(dir.path().join("tests/10.in")).unwrap();
    let first = runbox(
        dir.path(),
        &["judge", "sum.c", "--tests", "tests", "--json"],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let json: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(json["status"], "accepted");
    assert_eq!(json["passed"], 2);
    assert_eq!(json["failed"], 0);
    assert_eq!(json["run"], serde_json::Value::Null);
    assert_eq!(json["compile"]["cached"], false);
    assert_eq!(json["tests"][0]["verdict"], "accepted");
    assert_eq!(json["tests"][0]["status"], "ok");
    assert_eq!(json["timing"]["cpu_time"], "cgroup");
    let second = runbox(
        dir.path(),
        &["judge", "sum.c", "--tests", "tests", "--json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(json["compile"]["cached"], true);
    assert_eq!(json["status"], "accepted");
}

#[test]
fn judge_with_a_float_checker_and_a_bad_checker_flag() {
    let dir = workspace();
    let out = runbox(
        dir.path(),
        &[
            "judge",
            "sum.c",
            "--tests",
            "tests",
            "--checker",
            "float:0.5",
            "--json",
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failed_tests"], serde_json::json!(["10"]));
    let bad = runbox(
        dir.path(),
        &["judge", "sum.c", "--tests", "tests", "--checker", "fuzzy"],
    );
    assert_eq!(bad.status.code(), Some(125));
    assert!(text(&bad.stderr).contains("unknown checker 'fuzzy'"));
}

#[test]
fn judge_runs_the_c_assertion_recipe_of_the_examples() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/c-assert");
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_runbox"))
        .args([
            "judge",
            "buggy.c",
            "--harness",
            "driver.c",
            "--harness",
            "solution.h",
            "--rename-main",
            "--tests",
            "tests",
            "--json",
        ])
        .current_dir(&example)
        .env("RUNBOX_COMPILE_CACHE", cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["failed_tests"],
        serde_json::json!(["test_max_of", "test_reverse"])
    );
    assert_eq!(json["tests"][1]["signal"], "SIGABRT");
}

#[test]
fn judge_with_memcheck_shows_a_leak_at_its_line_under_the_test() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("leak.c"),
        "#include <stdio.h>\n#include <stdlib.h>\nint main(void){int a,b;scanf(\"%d %d\",&a,&b);\n\
         int *p = malloc(32);\np = NULL;\nprintf(\"%d\\n\",a+b);return 0;}\n",
    )
    .unwrap();
    let out = runbox(
        dir.path(),
        &[
            "judge",
            "leak.c",
            "--tests",
            "tests",
            "--memcheck",
            "--stop-on-first-failure",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("memcheck: leak.c:4: 32 bytes in 1 blocks are definitely lost"),
        "{stdout}"
    );
}

#[test]
fn judge_with_a_banned_function_is_a_compile_error_naming_the_call() {
    let dir = workspace();
    let out = runbox(
        dir.path(),
        &[
            "judge",
            "sum.c",
            "--tests",
            "tests",
            "--banned-function",
            "scanf",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(120),
        "{stdout}{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("scanf (banned) is called in main (sum.c:2)"),
        "{stdout}"
    );
}
