//! The native API judges like a contest system: an interactor beside the
//! tests, a testlib checker given as `{"type": "testlib"}`, and the verdict,
//! score and helper figures of each test in the result. In-process.

mod support;

use std::path::Path;

use axum::http::StatusCode;
use serde_json::json;
use support::App;

fn read(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interactive_job_with_a_testlib_checker_gives_each_test_its_verdict_and_figures() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({
                "language": "python",
                "source": read("examples/interactive-a-plus-b/wrong.py"),
                "interactor": {
                    "language": "cpp",
                    "source": read("examples/interactive-a-plus-b/interactor.cpp"),
                },
                "checker": {
                    "type": "testlib",
                    "source": read("crates/engine/tests/testlib/wcmp.cpp"),
                },
                "tests": [{"name": "one", "stdin": "1\n40 2\n", "expected_output": "42\n"}],
                "limits": {"cpu_time_ms": 1000, "wall_time_ms": 3000},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "wrong_answer", "{body}");
    assert_eq!(body["score"], 0.0, "{body}");
    let test = &body["tests"][0];
    assert_eq!(test["verdict"], "wrong_answer", "{body}");
    assert_eq!(test["score"], 0.0, "{body}");
    assert_eq!(
        test["comment"], "wrong answer query 1: 40 + 2 is 42, not 43",
        "{body}"
    );
    // The interactor decided: the checker never ran.
    assert!(test.get("checker").is_none(), "{body}");
    for field in ["status", "cpu_time_ms", "wall_time_ms", "memory_kb"] {
        assert!(test["interactor"].get(field).is_some(), "{field}: {body}");
    }
    assert_eq!(test["interactor"]["exit_code"], 1, "{body}");

    // The right solution: the interactor accepts, and its tout goes to wcmp.
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({
                "language": "python",
                "source": read("examples/interactive-a-plus-b/solution.py"),
                "interactor": {
                    "language": "cpp",
                    "source": read("examples/interactive-a-plus-b/interactor.cpp"),
                },
                "checker": {
                    "type": "testlib",
                    "source": read("crates/engine/tests/testlib/wcmp.cpp"),
                },
                "tests": [{"name": "one", "stdin": "1\n40 2\n", "expected_output": "42\n"}],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(body["score"], 1.0, "{body}");
    let test = &body["tests"][0];
    assert_eq!(test["comment"], "ok \"42\"", "{body}");
    assert_eq!(test["checker"]["status"], "ok", "{body}");
    assert_eq!(test["interactor"]["status"], "ok", "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interactor_without_tests_or_with_a_language_on_a_testlib_checker_is_a_client_error() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "source": "print(1)",
                   "interactor": {"language": "cpp", "source": "int main(){}"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "interactor", "{body}");
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "source": "print(1)",
                   "tests": [{"stdin": "", "expected_output": "1"}],
                   "checker": {"type": "testlib", "language": "python", "source": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "checker.language", "{body}");
    app.stop().await;
}
