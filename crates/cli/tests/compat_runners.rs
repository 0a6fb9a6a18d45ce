//! The three home-grown contracts on a real `runbox serve`.

mod compat_support;

use compat_support::{Server, b64, json};

const SOLUTION: &str = "int add(int a, int b) { return a + b; }\nint mul(int a, int b) { return a + b; }\nint main(void) { return 7; }\n";
const TESTS: &str = "#include <assert.h>\nint add(int, int);\nint mul(int, int);\nvoid test_add(void) { assert(add(2, 3) == 5); }\nvoid test_mul(void) { assert(mul(2, 3) == 6); }\nint main(void) { test_add(); test_mul(); return 0; }\n";

#[test]
fn a_c_exercise_names_the_failing_test_function_and_passes_the_other() {
    let server = Server::start(&[]);
    let (status, answer) = server.post(
        "/submit",
        &json!({"code": SOLUTION, "tests": TESTS, "perTestTimeout": 2}),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["build"], true);
    assert_eq!(answer["compile"], true);
    assert_eq!(answer["run"], false);
    assert_eq!(answer["failed_tests"], json!(["test_mul"]));
    assert!(
        answer["output"]
            .as_str()
            .unwrap()
            .contains("Assertion `mul(2, 3) == 6' failed"),
        "{answer}"
    );
    assert!(answer["compilation_time"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_correct_c_exercise_runs_with_no_failed_tests_even_with_its_own_main() {
    let server = Server::start(&[]);
    let fixed = "int add(int a, int b) { return a + b; }\nint mul(int a, int b) { return a * b; }\nint main(void) { return 7; }\n";
    let (status, answer) = server.post("/submit", &json!({"code": fixed, "tests": TESTS}), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        (answer["run"].clone(), answer["failed_tests"].clone()),
        (json!(true), json!([])),
        "{answer}"
    );
}

#[test]
fn the_encoded_route_takes_base64_and_a_test_past_its_timeout_fails() {
    let server = Server::start(&[]);
    let tests = "void test_loops(void) { for (;;) {} }\nvoid test_ok(void) {}\nint main(void) { return 0; }\n";
    let (status, answer) = server.post("/encoded", &json!({"code": b64("int unused;"), "tests": b64(tests), "perTestTimeout": 1, "timeout": 5}), &[]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["failed_tests"], json!(["test_loops"]));
    assert!(
        answer["output"]
            .as_str()
            .unwrap()
            .contains("test_loops timed out after 1 s"),
        "{answer}"
    );
    let (status, answer) = server.post(
        "/encoded",
        &json!({"code": "%%%", "tests": b64(tests)}),
        &[],
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("code is not valid base64"),
        "{answer}"
    );
}

#[test]
fn execute_code_runs_the_code_alone_and_reports_a_compile_error() {
    let server = Server::start(&[]);
    let (_, answer) = server.post(
        "/execute_code",
        &json!({"code": "#include <stdio.h>\nint main(void){puts(\"hi\");}"}),
        &[],
    );
    assert_eq!(
        (
            answer["build"].clone(),
            answer["run"].clone(),
            answer["output"].clone()
        ),
        (json!(true), json!(true), json!("hi\n"))
    );
    let (_, answer) = server.post(
        "/execute_code",
        &json!({"code": "int main(void){ return nope; }"}),
        &[],
    );
    assert_eq!(
        (
            answer["build"].clone(),
            answer["compile"].clone(),
            answer["run"].clone()
        ),
        (json!(false), json!(false), json!(false))
    );
    assert!(
        answer["output"].as_str().unwrap().contains("nope"),
        "{answer}"
    );
}

#[test]
fn the_multi_language_runner_runs_with_its_api_key_and_refuses_without() {
    let server = Server::start(&[]);
    let key = server.create_key("runner", "execute");
    let body = json!({"language": "python", "code": "print(input()[::-1])", "input": "abc", "timeout": 3000});
    let (status, answer) = server.post("/api/execute", &body, &[("X-API-Key", &key)]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["output"], "cba\n");
    assert_eq!(answer["exitCode"], 0);
    assert!(answer["timestamp"].as_str().unwrap().ends_with('Z'));
    for headers in [vec![], vec![("X-API-Key", "rbx_nope")]] {
        let (status, answer) = server.post("/api/execute", &body, &headers);
        assert_eq!(
            (status, answer),
            (401, json!({"success": false, "error": "Invalid API key"}))
        );
    }
}

#[test]
fn the_multi_language_runner_refuses_unknown_languages_and_oversized_code() {
    let server = Server::start(&[("RUNBOX_REQUESTS_MAX_SOURCE_BYTES", "1000")]);
    let (status, answer) = server.post(
        "/api/execute",
        &json!({"language": "klingon", "code": "x"}),
        &[],
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("not supported"),
        "{answer}"
    );
    let (status, answer) = server.post(
        "/api/execute",
        &json!({"language": "python", "code": "#".repeat(1001)}),
        &[],
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("Validation error"),
        "{answer}"
    );
    let (_, languages) = server.get("/api/languages", &[]);
    assert_eq!(languages["success"], true);
    let c = languages["languages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "c")
        .expect("c");
    assert_eq!(
        (c["type"].clone(), c["fileExtension"].clone()),
        (json!("compiled"), json!(".c"))
    );
    let (_, health) = server.get("/health", &[]);
    assert_eq!(health["status"], "healthy");
    assert!(health["uptime"].as_f64().is_some());
    let (_, system) = server.get("/api/system", &[]);
    assert_eq!(system["success"], true);
}

#[test]
fn the_learning_platform_executor_takes_a_bearer_key() {
    let server = Server::start(&[]);
    let key = server.create_key("learning", "execute");
    let bearer = format!("Bearer {key}");
    let (status, answer) = server.post(
        "/api/v1/code/execute",
        &json!({"language": "javascript", "code": "console.log(6 * 7); console.error('warn')"}),
        &[("Authorization", &bearer)],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["success"].clone(),
            answer["stdout"].clone(),
            answer["stderr"].clone(),
            answer["exitCode"].clone()
        ),
        (json!(true), json!("42\n"), json!("warn\n"), json!(0))
    );
    let (status, answer) = server.post(
        "/api/v1/code/execute",
        &json!({"language": "python", "code": "raise SystemExit(2)"}),
        &[("Authorization", &bearer)],
    );
    assert_eq!(
        (
            status,
            answer["success"].clone(),
            answer["exitCode"].clone()
        ),
        (200, json!(false), json!(2))
    );
    let (status, _) = server.post(
        "/api/v1/code/execute",
        &json!({"language": "ruby", "code": "p 1"}),
        &[("Authorization", &bearer)],
    );
    assert_eq!(status, 400);
    let (status, _) = server.post(
        "/api/v1/code/execute",
        &json!({"language": "python", "code": "print(1)"}),
        &[("Authorization", "Bearer rbx_bad")],
    );
    assert_eq!(status, 401);
}
