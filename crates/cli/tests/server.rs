//! End-to-end tests of `runbox serve`: the real binary on a free loopback port,
//! real boxes, real HTTP.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{Options, TestServer, python};

#[test]
fn execute_runs_python_and_answers_the_result_contract() {
    let server = TestServer::start();
    let body = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "print(input()[::-1])", "stdin": "olleh"}),
        None,
        200,
    );
    assert_eq!(body["status"], "ok");
    assert_eq!(body["language"], "python");
    assert!(body["version"].as_str().unwrap().starts_with('3'));
    assert_eq!(body["compile"], Value::Null);
    let run = &body["run"];
    assert_eq!(run["stdout"], "hello\n");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["encoding"], "utf8");
    for field in ["cpu_time_ms", "wall_time_ms", "memory_kb"] {
        assert!(run[field].is_number(), "{field}: {body}");
    }
    // The run is in the history too.
    let id = body["id"].as_str().unwrap();
    let stored = server.get_expect(&format!("/api/v1/submissions/{id}"), None, 200);
    assert_eq!(stored["state"], "done");
    assert_eq!(stored["result"]["run"]["stdout"], "hello\n");
}

#[test]
fn compiled_languages_report_both_stages_and_compile_errors() {
    let server = TestServer::start();
    let ok = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "c", "source": "#include <stdio.h>\nint main(int c, char **v){printf(\"%s\\n\", v[1]); return 3;}", "args": ["arg1"]}),
        None,
        200,
    );
    assert_eq!(ok["status"], "runtime_error");
    assert_eq!(ok["compile"]["status"], "ok");
    assert_eq!(ok["run"]["stdout"], "arg1\n");
    assert_eq!(ok["run"]["exit_code"], 3);
    let bad = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "c", "source": "int main( {"}),
        None,
        200,
    );
    assert_eq!(bad["status"], "compile_error");
    assert_eq!(bad["run"], Value::Null);
    assert!(
        bad["compile"]["stderr"].as_str().unwrap().contains("error"),
        "{bad}"
    );
}

#[test]
fn base64_input_and_output_keep_invalid_utf8() {
    let server = TestServer::start();
    // Writes bytes 0xff 0x00 0xfe: not UTF-8.
    let source = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])";
    let body = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python",
                "files": [{"name": "main.py", "content": b64(source.as_bytes()), "encoding": "base64"}],
                "stdin": {"content": b64(&[0xfe, 0x00, 0xff]), "encoding": "base64"},
                "output_encoding": "base64"}),
        None,
        200,
    );
    assert_eq!(body["run"]["encoding"], "base64");
    assert_eq!(body["run"]["stdout"], b64(&[0xff, 0x00, 0xfe]));
}

#[test]
fn limits_are_applied_and_reported() {
    let server = TestServer::start();
    let tle = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "while True: pass", "limits": {"cpu_time_ms": 300}}),
        None,
        200,
    );
    assert_eq!(tle["status"], "time_limit_exceeded");
    assert_eq!(tle["run"]["limit_hit"], "cpu_time");
    let mle = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "x = bytearray(200 * 1024 * 1024)", "limits": {"memory_kb": 65536}}),
        None,
        200,
    );
    assert_eq!(mle["status"], "memory_limit_exceeded");
    let ole = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "print('x' * 100000)", "limits": {"output_kb": 1}}),
        None,
        200,
    );
    assert_eq!(ole["status"], "output_limit_exceeded");
    assert_eq!(ole["run"]["stdout_truncated"], true);
    assert_eq!(ole["run"]["stdout"].as_str().unwrap().len(), 1024);
}

#[test]
fn submissions_are_queued_polled_waited_for_and_listed() {
    let server = TestServer::start();
    let created = server.post_expect("/api/v1/submissions", &python("print(6*7)"), None, 202);
    assert_eq!(created["state"], "queued");
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let s = server.get_expect(&format!("/api/v1/submissions/{id}"), None, 200);
        if s["state"] == "done" {
            break s;
        }
        assert!(Instant::now() < deadline, "never done: {s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(done["result"]["run"]["stdout"], "42\n");
    assert_eq!(done["status"], "ok");

    let waited = server.post_expect(
        "/api/v1/submissions?wait=true",
        &python("print('w')"),
        None,
        200,
    );
    assert_eq!(waited["state"], "done");
    assert_eq!(waited["result"]["run"]["stdout"], "w\n");

    let page = server.get_expect("/api/v1/submissions?page=1&per_page=1", None, 200);
    assert_eq!(page["total"], 2);
    assert_eq!(page["submissions"].as_array().unwrap().len(), 1);
    // Newest first.
    assert_eq!(page["submissions"][0]["id"], waited["id"]);
    let second = server.get_expect("/api/v1/submissions?page=2&per_page=1", None, 200);
    assert_eq!(second["submissions"][0]["id"], id.as_str());
    server.get_expect("/api/v1/submissions/no-such-id", None, 404);
}

#[test]
fn a_batch_queues_every_submission_in_order() {
    let server = TestServer::start();
    let batch = json!({"submissions": [python("print(1)"), python("print(2)"), {"language": "bash", "source": "echo 3"}]});
    let created = server.post_expect("/api/v1/submissions/batch", &batch, None, 202);
    let ids: Vec<String> = created["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    for (i, id) in ids.iter().enumerate() {
        let done = wait_done(&server, id, None);
        assert_eq!(done["result"]["run"]["stdout"], format!("{}\n", i + 1));
    }
    // An invalid entry names its index, and nothing of the batch is queued.
    let bad = json!({"submissions": [python("print(1)"), {"language": "nope", "source": ""}]});
    let err = server.post_expect("/api/v1/submissions/batch", &bad, None, 400);
    assert_eq!(err["error"]["field"], "submissions[1].language");
    let page = server.get_expect("/api/v1/submissions", None, 200);
    assert_eq!(page["total"], 3);
}

#[test]
fn languages_health_ready_metrics_and_openapi_answer() {
    let server = TestServer::start();
    let languages = server.get_expect("/api/v1/languages", None, 200);
    let python = languages
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "python")
        .expect("python in the catalog");
    assert_eq!(python["installed"], true);
    assert!(languages.as_array().unwrap().len() >= 35);
    assert_eq!(
        server.get_expect("/api/v1/health", None, 200)["status"],
        "ok"
    );
    let ready = server.get_expect("/api/v1/ready", None, 200);
    assert_eq!(ready["sandbox"], true);
    assert_eq!(ready["database"], true);

    server.post_expect(
        "/api/v1/execute",
        &json!({"language": "bash", "source": "exit 0"}),
        None,
        200,
    );
    let metrics = server.get("/api/v1/metrics", None).text().unwrap();
    assert!(
        metrics.contains("runbox_runs_total{language=\"bash\",status=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("runbox_run_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("runbox_http_requests_total"), "{metrics}");
    assert!(metrics.contains("runbox_boxes_in_use"), "{metrics}");

    let doc = server.get_expect("/api/v1/openapi.json", None, 200);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/execute",
        "/api/v1/submissions",
        "/api/v1/submissions/{id}",
        "/api/v1/submissions/batch",
        "/api/v1/languages",
        "/api/v1/health",
        "/api/v1/ready",
        "/api/v1/metrics",
        "/api/v1/openapi.json",
        "/api/v1/workers",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "ExecuteRequest",
        "ResultBody",
        "StageBody",
        "ErrorBody",
        "SubmissionBody",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
    let request = schemas["ExecuteRequest"]["properties"].as_object().unwrap();
    for field in [
        "compiler_options",
        "network",
        "stderr_to_stdout",
        "combined_output",
        "runs",
    ] {
        assert!(
            request.contains_key(field),
            "ExecuteRequest.{field} missing"
        );
    }
}

#[test]
fn with_a_key_in_the_store_every_request_needs_a_valid_key() {
    let server = TestServer::start();
    let key = server.create_key("alice", &[]);
    let err = server.post_expect("/api/v1/execute", &python("print(1)"), None, 401);
    assert_eq!(err["error"]["code"], "unauthorized");
    server.post_expect(
        "/api/v1/execute",
        &python("print(1)"),
        Some("rbx_wrong"),
        401,
    );
    let ok = server.post_expect("/api/v1/execute", &python("print(1)"), Some(&key), 200);
    assert_eq!(ok["run"]["stdout"], "1\n");
    // X-API-Key works too.
    let response = server
        .request(reqwest::Method::GET, "/api/v1/languages", None)
        .header("X-API-Key", &key)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Health stays open for load balancers.
    server.get_expect("/api/v1/health", None, 200);
}

#[test]
fn scopes_history_and_revocation_are_enforced() {
    let server = TestServer::start();
    let alice = server.create_key("alice", &[]);
    let bob = server.create_key("bob", &[]);
    let admin = server.create_key("ops", &["--scope", "admin"]);
    let mine = server.post_expect("/api/v1/execute", &python("print('a')"), Some(&alice), 200);
    let id = mine["id"].as_str().unwrap();
    // Bob cannot see Alice's submission; the admin can.
    server.get_expect(&format!("/api/v1/submissions/{id}"), Some(&bob), 404);
    server.get_expect(&format!("/api/v1/submissions/{id}"), Some(&admin), 200);
    assert_eq!(
        server.get_expect("/api/v1/submissions", Some(&bob), 200)["total"],
        0
    );
    assert_eq!(
        server.get_expect("/api/v1/submissions", Some(&alice), 200)["total"],
        1
    );
    // Fleet and audit need the admin scope.
    let err = server.get_expect("/api/v1/workers", Some(&alice), 403);
    assert_eq!(err["error"]["code"], "forbidden");
    let workers = server.get_expect("/api/v1/workers", Some(&admin), 200);
    assert_eq!(workers.as_array().unwrap().len(), 1);
    // Revoked keys stop working at once.
    let out = std::process::Command::new(support::runbox_binary())
        .args(["keys", "--data-dir"])
        .arg(&server.data_dir)
        .args(["revoke", "bob"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = server.post_expect("/api/v1/execute", &python("print(1)"), Some(&bob), 401);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let audit = server.get_expect("/api/v1/audit", Some(&admin), 200);
    let kinds: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"key_created"), "{kinds:?}");
    assert!(kinds.contains(&"key_revoked"), "{kinds:?}");
}

#[test]
fn a_listener_off_loopback_never_allows_anonymous_use() {
    let server = TestServer::start_with(Options {
        args: vec!["--listen", "0.0.0.0:0"],
        ..Options::default()
    });
    // The server printed 0.0.0.0:PORT; talk to it over loopback.
    let url = server.url.replace("0.0.0.0", "127.0.0.1");
    let response = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/execute"))
        .json(&python("print(1)"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[test]
fn over_the_rate_limit_answers_429_with_retry_after() {
    let server = TestServer::start();
    let key = server.create_key("slow", &["--rate", "1/m", "--burst", "2"]);
    for _ in 0..2 {
        server.get_expect("/api/v1/languages", Some(&key), 200);
    }
    let response = server.get("/api/v1/languages", Some(&key));
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another key has its own bucket.
    let other = server.create_key("other", &[]);
    server.get_expect("/api/v1/languages", Some(&other), 200);
}

#[test]
fn a_key_over_its_concurrency_cap_gets_429() {
    let server = TestServer::start();
    let key = server.create_key("one-at-a-time", &["--max-concurrent", "1"]);
    let slow = json!({"language": "bash", "source": "sleep 2"});
    let created = server.post_expect("/api/v1/submissions", &slow, Some(&key), 202);
    let response = server.post("/api/v1/submissions", &slow, Some(&key));
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    wait_done(&server, created["id"].as_str().unwrap(), Some(&key));
    // Once it is done, the slot is free again.
    server.post_expect("/api/v1/submissions", &python("print(1)"), Some(&key), 202);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = TestServer::start_with(Options {
        args: vec!["--workers", "1"],
        env: vec![("RUNBOX_QUEUE_CAPACITY", "1".into())],
        ..Options::default()
    });
    let slow = json!({"language": "bash", "source": "sleep 2"});
    let busy = {
        let url = server.url.clone();
        let slow = slow.clone();
        std::thread::spawn(move || {
            reqwest::blocking::Client::new()
                .post(format!("{url}/api/v1/execute"))
                .json(&slow)
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let response = server.post("/api/v1/execute", &slow, None);
    assert_eq!(response.status().as_u16(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a full queue must answer at once"
    );
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "queue_full");
    // Queued submissions are bounded too.
    server.post_expect("/api/v1/submissions", &slow, None, 202);
    let body = server.post_expect("/api/v1/submissions", &slow, None, 503);
    assert_eq!(body["error"]["code"], "queue_full");
    assert_eq!(busy.join().unwrap(), 200);
}

#[test]
fn every_validation_error_is_a_clear_json_4xx() {
    let server = TestServer::start_with(Options {
        env: vec![("RUNBOX_REQUESTS_MAX_BODY_BYTES", "2000000".into())],
        ..Options::default()
    });
    let raw = |body: &str, content_type: &str| {
        let response = server
            .request(reqwest::Method::POST, "/api/v1/execute", None)
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };
    let (status, body) = raw("{not json", "application/json");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, body) = raw(
        "{\"language\": \"python\", \"source\": \"\", \"colour\": 1}",
        "application/json",
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{body}"
    );
    let (status, body) = raw(
        "{\"language\": \"python\", \"source\": 3}",
        "application/json",
    );
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("source"))
    );
    let (status, body) = raw("print(1)", "text/plain");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unsupported_media_type"))
    );

    let unknown = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "pythn", "source": ""}),
        None,
        400,
    );
    assert_eq!(unknown["error"]["code"], "unknown_language");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean python")
    );
    let missing = server.post_expect("/api/v1/execute", &json!({"language": "python"}), None, 400);
    assert_eq!(missing["error"]["field"], "source");
    let limit = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "", "limits": {"memory_kb": 99999999}}),
        None,
        400,
    );
    assert_eq!(limit["error"]["field"], "limits.memory_kb");
    assert!(
        limit["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum of 1048576 KiB")
    );
    let name = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "files": [{"name": "../x.py", "content": ""}]}),
        None,
        400,
    );
    assert_eq!(name["error"]["field"], "files[0].name");
    let source = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "#".repeat((1 << 20) + 1)}),
        None,
        413,
    );
    assert_eq!(source["error"]["field"], "source");
    let stdin = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "", "stdin": {"content": "@@", "encoding": "base64"}}),
        None,
        400,
    );
    assert_eq!(stdin["error"]["field"], "stdin");
    let (status, body) = raw(
        &format!(
            "{{\"language\": \"python\", \"source\": \"{}\"}}",
            "#".repeat(2_100_000)
        ),
        "application/json",
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    let page = server.get_expect("/api/v1/submissions?per_page=1000", None, 400);
    assert_eq!(page["error"]["field"], "per_page");
    let query = server.get_expect("/api/v1/submissions?page=minus", None, 400);
    assert_eq!(query["error"]["code"], "invalid_query");
    let route = server.get_expect("/api/v1/nothing-here", None, 404);
    assert_eq!(route["error"]["code"], "not_found");
    let method = server.get_expect("/api/v1/execute", None, 405);
    assert_eq!(method["error"]["code"], "method_not_allowed");
    let callback = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "", "callback_url": "http://example.org/"}),
        None,
        400,
    );
    assert_eq!(callback["error"]["field"], "callback_url");
}

#[test]
fn random_bodies_never_get_a_5xx() {
    let server = TestServer::start();
    // A deterministic generator: JSON fragments, shuffled and truncated.
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"language\"",
        ":",
        ",",
        "\"python\"",
        "\"source\"",
        "\"files\"",
        "null",
        "1e999",
        "-1",
        "\"\\ud800\"",
        "\"limits\"",
        "{\"cpu_time_ms\": 0}",
        "\"stdin\"",
        "{\"content\": 1}",
        "\"encoding\"",
        "\"base64\"",
        "true",
        "\"tests\"",
        "[{}]",
        "\"name\"",
        "\"../../etc\"",
        "18446744073709551616",
        "\u{0}",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..150 {
        let n = (next() % 12) as usize;
        let body: String = (0..n)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        for path in [
            "/api/v1/execute",
            "/api/v1/submissions",
            "/api/v1/submissions/batch",
        ] {
            let response = server
                .request(reqwest::Method::POST, path, None)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .unwrap();
            let status = response.status().as_u16();
            assert!(
                status < 500,
                "{path} answered {status} to {body:?}: {}",
                response.text().unwrap_or_default()
            );
        }
    }
}

#[test]
fn a_webhook_delivers_the_result_with_a_verifiable_signature() {
    let server = TestServer::start();
    let key = server.create_key("hooks", &[]);
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let got = std::thread::spawn(move || {
        // The first try is answered 500, the second 200: the retry must happen.
        let mut requests = Vec::new();
        for status in ["500 Internal Server Error", "200 OK"] {
            let (stream, _) = receiver.accept().unwrap();
            requests.push(read_request(stream, status));
        }
        requests
    });
    let created = server.post_expect(
        "/api/v1/submissions",
        &json!({"language": "python", "source": "print('hooked')", "callback_url": format!("http://127.0.0.1:{port}/hook")}),
        Some(&key),
        202,
    );
    let requests = got.join().unwrap();
    let (headers, body) = &requests[1];
    let result: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(result["id"], created["id"]);
    assert_eq!(result["run"]["stdout"], "hooked\n");
    let secret = hex::encode(Sha256::digest(format!("runbox-webhook:{key}").as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers.get("x-runbox-signature"), Some(&expected));
    let id = created["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = server.get_expect(&format!("/api/v1/submissions/{id}"), Some(&key), 200);
        if s["webhook"]["delivered"] == true {
            assert_eq!(s["webhook"]["attempts"], 2);
            break;
        }
        assert!(Instant::now() < deadline, "delivery not recorded: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn callbacks_to_private_addresses_are_refused_by_default() {
    let server = TestServer::start_with(Options {
        env: vec![("RUNBOX_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "false".into())],
        ..Options::default()
    });
    let err = server.post_expect(
        "/api/v1/submissions",
        &json!({"language": "python", "source": "", "callback_url": "http://169.254.169.254/latest/meta-data"}),
        None,
        400,
    );
    assert_eq!(err["error"]["field"], "callback_url");
}

#[test]
fn a_restart_with_the_same_database_keeps_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    };
    let server = TestServer::start_with(options.clone());
    let body = server.post_expect("/api/v1/execute", &python("print('kept')"), None, 200);
    assert!(server.stop().success());
    let again = TestServer::start_with(options);
    let id = body["id"].as_str().unwrap();
    let stored = again.get_expect(&format!("/api/v1/submissions/{id}"), None, 200);
    assert_eq!(stored["result"], body);
}

#[test]
fn sigterm_lets_a_running_job_finish_then_exits_cleanly() {
    let server = TestServer::start();
    let url = server.url.clone();
    let running = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{url}/api/v1/execute"))
            .json(&json!({"language": "bash", "source": "sleep 1; echo finished"}))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(400));
    let pid = server.pid();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let body = running.join().unwrap();
    assert_eq!(body["run"]["stdout"], "finished\n");
    // Nothing of the server is left: no process, no box.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn sources_and_outputs_are_not_kept_when_switched_off() {
    let server = TestServer::start_with(Options {
        env: vec![
            ("RUNBOX_HISTORY_STORE_SOURCE", "false".into()),
            ("RUNBOX_HISTORY_STORE_OUTPUT", "false".into()),
        ],
        ..Options::default()
    });
    let body = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "print('secret')", "stdin": "x"}),
        None,
        200,
    );
    assert_eq!(body["run"]["stdout"], "secret\n");
    let db = std::fs::read(server.data_dir.join("runbox.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("runbox.db-wal")).unwrap_or_default();
    let all = [db, wal].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(!text.contains("print('secret')"), "the source was stored");
    assert!(!text.contains("secret\\n"), "the output was stored");
}

#[test]
fn without_kept_sources_no_copy_of_a_source_or_harness_reaches_the_disk() {
    let server = TestServer::start_with(Options {
        env: vec![("RUNBOX_HISTORY_STORE_SOURCE", "false".into())],
        ..Options::default()
    });
    let request = json!({"language": "c",
        "files": [{"name": "main.c", "content": "int secret_function_name(void) { return 0; }\nint main(void) { return secret_function_name(); }"}],
        "harness": {"files": [{"name": "harness_secret.h", "content": "/* harness secret text */"}]}});
    server.post_expect("/api/v1/execute", &request, None, 200);
    let second = server.post_expect("/api/v1/execute", &request, None, 200);
    assert_eq!(second["compile"]["cached"], true, "{second}");
    // Not in the compile cache...
    let mut found = Vec::new();
    let mut stack = vec![server.data_dir.join("compile-cache")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                if text.contains("secret_function_name(void) {")
                    || text.contains("harness secret text")
                {
                    found.push(path);
                }
            }
        }
    }
    assert!(found.is_empty(), "sources kept in {found:?}");
    // ... nor in the database.
    let db = std::fs::read(server.data_dir.join("runbox.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("runbox.db-wal")).unwrap_or_default();
    let text = String::from_utf8_lossy(&[db, wal].concat()).into_owned();
    assert!(
        !text.contains("harness secret text"),
        "the harness was stored"
    );
    assert!(
        !text.contains("secret_function_name(void) {"),
        "the source was stored"
    );
}

#[test]
fn json_logs_have_one_line_per_request() {
    let server = TestServer::start_with(Options {
        args: vec!["--log-format", "json"],
        ..Options::default()
    });
    server.post_expect("/api/v1/execute", &python("print(1)"), None, 200);
    let line = server
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["path"] == "/api/v1/execute")
        .expect("a JSON request line");
    assert_eq!(line["fields"]["status"], 200);
    assert_eq!(line["fields"]["language"], "python");
    assert_eq!(line["fields"]["job_status"], "ok");
    assert_eq!(line["fields"]["key"], "anonymous");
    assert!(line["fields"]["request_id"].is_string());
}

#[test]
fn print_config_merges_file_environment_and_flags_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runbox.toml");
    std::fs::write(
        &file,
        "queue_capacity = 7\nworkers = 3\n[rate]\nburst = 9\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::runbox_binary())
        .args(["serve", "--print-config", "--workers", "5", "--config"])
        .arg(&file)
        .env("RUNBOX_WORKERS", "4")
        .env("RUNBOX_RATE_BURST", "11")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: toml::Table = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    assert_eq!(printed["queue_capacity"].as_integer(), Some(7));
    assert_eq!(printed["workers"].as_integer(), Some(5));
    assert_eq!(printed["rate"]["burst"].as_integer(), Some(11));
    assert_eq!(printed["listen"].as_str(), Some("127.0.0.1:2358"));
}

#[test]
fn retention_deletes_old_finished_submissions_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    };
    let server = TestServer::start_with(options.clone());
    let old = server.post_expect("/api/v1/execute", &python("print(1)"), None, 200);
    assert!(server.stop().success());
    // Pretend the run is 40 days old.
    age_submission(
        &dir.path().join("runbox.db"),
        old["id"].as_str().unwrap(),
        40,
    );
    let again = TestServer::start_with(Options {
        env: vec![("RUNBOX_HISTORY_RETENTION_DAYS", "30".into())],
        ..options
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = old["id"].as_str().unwrap();
    while again
        .get(&format!("/api/v1/submissions/{id}"), None)
        .status()
        .as_u16()
        != 404
    {
        assert!(
            Instant::now() < deadline,
            "the old submission was not deleted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Moves a stored submission's times `days` back, in the database file itself.
fn age_submission(db: &std::path::Path, id: &str, days: i64) {
    let shift = days * 86_400_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let changed = sqlx::query(
            "UPDATE submissions SET created_ms = created_ms - ?1, finished_ms = finished_ms - ?1 WHERE id = ?2",
        )
        .bind(shift)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(changed, 1);
        pool.close().await;
    });
}

fn wait_done(server: &TestServer, id: &str, key: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = server.get_expect(&format!("/api/v1/submissions/{id}"), key, 200);
        if s["state"] == "done" {
            return s;
        }
        assert!(Instant::now() < deadline, "never done: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads one HTTP request (headers lower-cased, body by Content-Length) and answers `status`.
fn read_request(
    stream: std::net::TcpStream,
    status: &str,
) -> (std::collections::HashMap<String, String>, Vec<u8>) {
    let mut reader = BufReader::new(stream);
    let mut headers = std::collections::HashMap::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    (headers, body)
}

#[test]
fn judged_jobs_report_verdicts_failed_tests_and_a_cached_compile() {
    let server = TestServer::start();
    let job = json!({
        "language": "cpp",
        "source": "#include <iostream>\nint main(){long a,b; std::cin>>a>>b; if(a<0) return 3; std::cout<<a+b<<\"  \\n\";}",
        "tests": [
            {"name": "small", "stdin": "1 2", "expected_output": "3"},
            {"name": "wrong", "stdin": "2 2", "expected_output": "5"},
            {"name": "crash", "stdin": "-1 0", "expected_output": "-1"},
            {"name": "big", "stdin": {"content": b64(b"1000000000 1000000000"), "encoding": "base64"}, "expected_output": "2000000000"}
        ],
        "checker": {"type": "lines"}
    });
    let first = server.post_expect("/api/v1/execute", &job, None, 200);
    assert_eq!(first["status"], "wrong_answer", "{first}");
    assert_eq!(first["run"], Value::Null);
    assert_eq!(first["passed"], 2);
    assert_eq!(first["failed"], 2);
    assert_eq!(first["failed_tests"], json!(["wrong", "crash"]));
    let verdicts: Vec<&str> = first["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["accepted", "wrong_answer", "runtime_error", "accepted"]
    );
    assert_eq!(first["tests"][2]["exit_code"], 3);
    assert_eq!(first["timing"]["cpu_time"], "cgroup");
    assert_eq!(first["compile"]["cached"], false);
    // The same code again: served from the compile cache.
    let second = server.post_expect("/api/v1/execute", &job, None, 200);
    assert_eq!(second["compile"]["cached"], true);
    assert_eq!(second["failed_tests"], first["failed_tests"]);
    // A custom checker in another language than the solution.
    let custom = server.post_expect(
        "/api/v1/execute",
        &json!({
            "language": "bash",
            "source": "read n; echo $((n * 2))",
            "tests": [{"name": "double", "stdin": "21", "expected_output": "42"}],
            "checker": {"type": "custom", "language": "python",
                        "source": "import sys\nout = open(sys.argv[2]).read().split()\nans = open(sys.argv[3]).read().split()\nprint('compared', out, ans)\nsys.exit(0 if out == ans else 1)"}
        }),
        None,
        200,
    );
    assert_eq!(custom["status"], "accepted", "{custom}");
    assert!(
        custom["tests"][0]["comment"]
            .as_str()
            .unwrap()
            .starts_with("compared"),
        "{custom}"
    );
    let bad = server.post_expect(
        "/api/v1/execute",
        &json!({"language": "python", "source": "", "tests": [{"stdin": ""}], "checker": {"type": "fuzzy"}}),
        None,
        400,
    );
    assert_eq!(bad["error"]["field"], "checker.type");
}

#[test]
fn combined_output_interleaves_and_runs_are_bounded() {
    let server = TestServer::start();
    let program = "import sys, time\nsys.stderr.write('a\\n'); sys.stderr.flush()\ntime.sleep(0.1)\nprint('b')";
    let body = json!({"language": "python", "source": program, "combined_output": true});
    let result = server.post_expect("/api/v1/execute", &body, None, 200);
    assert_eq!(result["run"]["output"], "a\nb\n", "{result}");
    let plain = server.post_expect("/api/v1/execute", &python("print(1)"), None, 200);
    assert!(plain["run"].get("output").is_none(), "{plain}");

    for (runs, message) in [(0, "at least 1"), (21, "at most 20")] {
        let body = json!({"language": "python", "source": "print(1)", "runs": runs});
        let error = server.post_expect("/api/v1/execute", &body, None, 400);
        assert_eq!(error["error"]["field"], "runs", "{error}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{text}");
    }
}

#[test]
fn a_data_dir_under_a_private_directory_serves_compile_cache_hits() {
    // The data directory sits in a 0700 directory that the boxes' users cannot
    // enter: the second, identical C++ run comes from the compile cache.
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        private.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let server = TestServer::start_with(Options {
        data_dir: Some(private.path().join("runbox")),
        ..Options::default()
    });
    let request = json!({"language": "cpp",
        "source": "#include <iostream>\nint main() { std::cout << \"cached\" << std::endl; }"});
    let first = server.post_expect("/api/v1/execute", &request, None, 200);
    assert_eq!(first["status"], "ok", "{first}");
    assert_eq!(first["compile"]["cached"], false, "{first}");
    let second = server.post_expect("/api/v1/execute", &request, None, 200);
    assert_eq!(second["status"], "ok", "{second}");
    assert_eq!(second["compile"]["cached"], true, "{second}");
    assert_eq!(second["run"]["stdout"], "cached\n", "{second}");
    server.stop();
}

/// The children of process `pid` (from all its threads), with their names.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in list
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            found.push((child, comm.trim().to_string()));
        }
    }
    found
}

#[test]
fn boxes_are_born_in_launcher_processes_the_service_started_from_its_own_binary() {
    let server = TestServer::start();
    for _ in 0..3 {
        let body = server.post_expect("/api/v1/execute", &python("print(6 * 7)"), None, 200);
        assert_eq!(body["run"]["stdout"], "42\n", "{body}");
    }
    let launchers: Vec<u32> = children_of(server.pid())
        .into_iter()
        .filter(|(_, comm)| comm == "runbox-launcher")
        .map(|(pid, _)| pid)
        .collect();
    assert!(
        !launchers.is_empty(),
        "no launcher: {:?}",
        children_of(server.pid())
    );
    let service_exe = std::fs::read_link(format!("/proc/{}/exe", server.pid())).unwrap();
    for pid in &launchers {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(exe, service_exe, "a launcher is the runbox binary itself");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let threads = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
        assert_eq!(threads.split_whitespace().nth(1), Some("1"), "{status}");
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(environ.is_empty(), "a launcher gets no environment");
    }
    // Launchers die (killed, or out of memory): the next request is still answered.
    for pid in &launchers {
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
    }
    let body = server.post_expect("/api/v1/execute", &python("print(6 * 7)"), None, 200);
    assert_eq!(body["run"]["stdout"], "42\n", "{body}");
}
