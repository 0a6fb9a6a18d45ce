//! Files out and the memory figure through the APIs, in-process: the native
//! API returns the files a run wrote (base64, listed with their sizes), and a
//! Judge0 run that hits its memory limit reports no more than the limit plus
//! the documented slack.

mod support;

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use support::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn execute_returns_the_files_the_run_wrote_in_base64_with_their_sizes() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({
                "language": "python",
                "source": "open('data.bin', 'wb').write(bytes(range(256)))\nopen('notes.txt', 'w').write('hi')\n",
                "output_files": ["*.bin", "notes.txt", "nothing.csv"],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let files = body["output_files"]
        .as_array()
        .expect("output_files listed");
    let by_name = |name: &str| {
        files
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {body}"))
    };
    let data = by_name("data.bin");
    assert_eq!(data["size"], 256, "{body}");
    let bytes = BASE64
        .decode(data["content_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, (0..=255u8).collect::<Vec<_>>());
    assert_eq!(by_name("notes.txt")["content_base64"], BASE64.encode("hi"));
    assert!(
        by_name("nothing.csv")["refused"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_output_file_pattern_outside_the_work_directory_is_a_400() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "source": "print(1)", "output_files": ["../../etc/passwd"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_judge0_memory_limit_reports_no_more_than_the_limit_plus_the_slack() {
    let app = App::start().await;
    let greedy = "#include <stdlib.h>\n#include <string.h>\n\
                  int main(void) { for (;;) { char *p = malloc(1 << 20); if (!p) return 3; memset(p, 1, 1 << 20); } }\n";
    let (status, body) = app
        .post(
            "/submissions?wait=true",
            json!({"language_id": 50, "source_code": greedy, "memory_limit": 65536}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Judge0 CE has no status of its own for it: its message says so.
    assert_eq!(body["message"], "Memory limit exceeded", "{body}");
    let memory = body["memory"].as_u64().expect("memory reported");
    assert!(
        memory <= 65536 + runbox_sandbox::MEMORY_SLACK_KB,
        "{memory} KB for a 65536 KB limit: {body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_banned_function_is_a_compile_error_that_names_it() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({
                "language": "c",
                "source": "#include <stdlib.h>\nint main(void) {\n  return system(\"true\");\n}\n",
                "banned_functions": ["system"],
                "tests": [{"stdin": "", "expected_output": ""}],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "compile_error", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("system (banned) is called in main (main.c:3)"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcheck_reports_a_leak_at_its_line_beside_the_verdict() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({
                "language": "c",
                "source": "#include <stdlib.h>\n#include <stdio.h>\nint main(void) {\n  char *p = malloc(24);\n  p = 0;\n  puts(\"ok\");\n  return 0;\n}\n",
                "analysis": {"memcheck": true},
                "tests": [{"expected_output": "ok\n"}],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "accepted", "{body}");
    let report = &body["tests"][0]["memcheck"];
    assert_eq!(report["definitely_lost_bytes"], 24, "{body}");
    assert_eq!(report["findings"][0]["line"], 4, "{body}");
    assert_eq!(report["findings"][0]["file"], "main.c", "{body}");
    app.stop().await;
}
