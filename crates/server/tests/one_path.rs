//! Every request is checked once: a client's mistake is a 4xx naming the field,
//! never a 200 with `internal_error`; defaults suit one backend; the Judge0 and
//! home-grown contracts hold. In-process, against the router.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use support::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_version_that_is_not_installed_is_a_client_error() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "version": "9", "source": "print(1)"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "version_unavailable", "{body}");
    assert_eq!(body["error"]["field"], "version", "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arguments_to_a_language_that_takes_none_are_a_client_error() {
    // A language of the test's own that takes no arguments (as SQLite).
    let languages = tempfile::tempdir().unwrap();
    std::fs::write(
        languages.path().join("noargs.toml"),
        "id = \"noargs\"\nname = \"No args\"\nextensions = [\"na\"]\npackages = [\"bash\"]\nsource_file = \"main.na\"\naccepts_args = false\nrun = [\"/usr/bin/bash\", \"{entry}\"]\nversion = [\"/usr/bin/bash\", \"-c\", \"echo 1.0\"]\n",
    )
    .unwrap();
    let dir = languages.path().to_path_buf();
    let app = App::start_with(|c| c.languages_dir = Some(dir)).await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "noargs", "source": "echo hi", "args": ["x"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "args", "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_custom_checker_in_an_unknown_language_is_a_client_error() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "source": "print(1)",
                   "tests": [{"stdin": "", "expected_output": "1"}],
                   "checker": {"type": "custom", "language": "brainfork", "source": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "checker.language", "{body}");
    // Queued, it is refused before it is queued.
    let (status, body) = app
        .post(
            "/api/v1/submissions",
            json!({"language": "python", "source": "print(1)",
                   "tests": [{"stdin": "", "expected_output": "1"}],
                   "checker": {"type": "custom", "language": "brainfork", "source": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checker_that_does_not_compile_is_a_checker_error_not_an_internal_error() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "source": "print(1)",
                   "tests": [{"stdin": "", "expected_output": "1"}],
                   "checker": {"type": "custom", "language": "c", "source": "int main( {"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "checker_error", "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("the checker does not compile"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_backend_with_the_default_limits_is_not_throttled() {
    let app = Arc::new(App::start().await);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut limited = 0;
            for _ in 0..75 {
                let (status, _) = app.get("/api/v1/languages").await;
                if status == StatusCode::TOO_MANY_REQUESTS {
                    limited += 1;
                }
            }
            limited
        }));
    }
    let mut limited = 0;
    for task in tasks {
        limited += task.await.unwrap();
    }
    assert_eq!(limited, 0, "{limited} of 300 requests answered 429");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_without_tests_compiles_and_runs_the_code() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/submit",
            json!({"code": "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["compile"], true, "{body}");
    assert_eq!(body["run"], true, "{body}");
    assert!(
        body["output"]
            .as_str()
            .unwrap_or_default()
            .contains("hello"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_student_who_exits_early_fails_the_c_exercise() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/submit",
            json!({"code": "#include <unistd.h>\nint add(int a, int b) { _exit(0); }",
                   "tests": "#include <assert.h>\nint add(int, int);\nvoid test_add(void) { assert(add(2, 3) == 5); }\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["failed_tests"], json!(["test_add"]), "{body}");
    assert_eq!(body["run"], false, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn judge0_lists_each_installed_language_version_once() {
    let app = App::start().await;
    let (status, body) = app.get("/languages").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "duplicates in {names:?}");
    let python: Vec<_> = body
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            let name = l["name"].as_str().unwrap();
            name.starts_with("Python (") && !name.contains("PyPy")
        })
        .collect();
    assert_eq!(python.len(), 1, "{python:?}");
    // The aliases are archived, not gone: clients that hard-code them still run.
    let (_, all) = app.get("/languages/all").await;
    let alias = all
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == 109)
        .unwrap();
    assert_eq!(alias["is_archived"], true, "{alias}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_judge0_callback_to_a_name_that_resolves_to_loopback_is_never_called() {
    // A receiver on loopback, named by the host's own name (which /etc/hosts
    // points at a loopback address on Debian and most distributions).
    let host = runbox_server::host_name();
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 80))
        .await
        .map(|addrs| addrs.collect())
        .unwrap_or_default();
    assert!(
        resolved.iter().any(|a| a.ip().is_loopback()),
        "this test needs the host's name ({host}) to resolve to a loopback address, as /etc/hosts does on Debian: {resolved:?}"
    );
    let loopback = resolved.iter().find(|a| a.ip().is_loopback()).unwrap().ip();
    let listener = tokio::net::TcpListener::bind((loopback, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let called = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = called.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let app = App::start_with(|c| {
        c.webhooks.allow_private_addresses = false;
        c.webhooks.backoff_ms = 10;
    })
    .await;
    let url = format!("http://{host}:{port}/hook");
    let (status, body) = app
        .post(
            "/submissions?wait=true",
            json!({"language_id": 71, "source_code": "print(1)", "callback_url": url}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    // The delivery is recorded (refused), and the receiver never hears of it.
    let mut delivery = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, native) = app.get(&format!("/api/v1/submissions/{token}")).await;
        if !native["webhook"].is_null() {
            delivery = native["webhook"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivery["delivered"], false, "{delivery}");
    assert!(
        delivery["error"]
            .as_str()
            .unwrap_or_default()
            .contains("private"),
        "{delivery}"
    );
    assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_negative_piston_timeout_is_refused() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/api/v2/execute",
            json!({"language": "python", "version": "*", "run_timeout": -5,
                   "files": [{"content": "print(1)"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("run_timeout"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_whose_tests_could_take_longer_than_the_total_wall_cap_is_refused() {
    let app = App::start_with(|c| c.requests.max_job_wall_seconds = 60).await;
    let tests: Vec<_> = (0..10)
        .map(|i| json!({"name": format!("t{i}"), "stdin": "", "limits": {"wall_time_ms": 10_000}}))
        .collect();
    let (status, body) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "source": "print(1)", "tests": tests}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "tests", "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_runs_one_box_however_many_ask() {
    let app = Arc::new(App::start().await);
    let mut asks = Vec::new();
    for _ in 0..50 {
        let app = app.clone();
        asks.push(tokio::spawn(
            async move { app.get("/api/v1/ready").await.0 },
        ));
    }
    for ask in asks {
        assert_eq!(ask.await.unwrap(), StatusCode::OK);
    }
    let (_, metrics) = app.get("/metrics").await;
    let text = metrics.as_str().unwrap_or_default().to_string();
    let checks: f64 = text
        .lines()
        .find(|l| l.starts_with("runbox_readiness_box_checks_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no readiness counter in {text}"));
    // One process, one recorder: other tests of this file may have asked once too.
    assert!(checks <= 3.0, "{checks} box checks for 50 asks");
}
