//! Judge0 CE's API on a real `runbox serve`: statuses, limits, base64, batches,
//! polling, validation errors, auth, callbacks, the multi-file language.

mod compat_support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use compat_support::{Server, Value, b64, json};

fn submit_wait(server: &Server, body: &Value, query: &str) -> Value {
    let (status, answer) = server.post(&format!("/submissions?wait=true{query}"), body, &[]);
    assert_eq!(status, 201, "{answer}");
    answer
}

fn status_id(answer: &Value) -> u64 {
    answer["status"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no status in {answer}"))
}

#[test]
fn python_with_the_expected_output_is_accepted_and_with_another_is_wrong_answer() {
    let server = Server::start(&[]);
    let program = "print(int(input()) * 2)";
    let accepted = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": program, "stdin": "21", "expected_output": "42"}),
        "",
    );
    assert_eq!(
        accepted["status"],
        json!({"id": 3, "description": "Accepted"})
    );
    assert_eq!(accepted["stdout"], "42\n");
    assert!(accepted["time"].as_str().unwrap().parse::<f64>().unwrap() < 1.0);
    assert!(
        accepted["memory"].as_u64().unwrap() > 1000,
        "memory is in KB: {accepted}"
    );
    let wrong = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": program, "stdin": "21", "expected_output": "41"}),
        "",
    );
    assert_eq!(
        wrong["status"],
        json!({"id": 4, "description": "Wrong Answer"})
    );
}

#[test]
fn base64_fields_carry_any_bytes_both_ways() {
    let server = Server::start(&[]);
    let answer = submit_wait(
        &server,
        &json!({"language_id": 46, "source_code": b64("read x; printf '%s\\xff' \"$x\""), "stdin": b64("héllo")}),
        "&base64_encoded=true&fields=stdout,status,language_id",
    );
    assert_eq!(status_id(&answer), 3);
    assert_eq!(
        answer["stdout"], "aMOpbGxv/w==",
        "héllo then a 0xff byte, in base64"
    );
    assert_eq!(answer["language_id"], 46);
    assert_eq!(
        answer.as_object().unwrap().len(),
        3,
        "only the fields asked for: {answer}"
    );
}

#[test]
fn a_c_compile_error_is_status_6_with_the_compiler_output() {
    let server = Server::start(&[]);
    let answer = submit_wait(
        &server,
        &json!({"language_id": 50, "source_code": "int main() { return x; }"}),
        "",
    );
    assert_eq!(
        answer["status"],
        json!({"id": 6, "description": "Compilation Error"})
    );
    assert!(
        answer["compile_output"]
            .as_str()
            .unwrap()
            .contains("undeclared"),
        "{answer}"
    );
    assert_eq!(answer["stdout"], Value::Null);
}

#[test]
fn signals_and_exit_codes_map_to_judge0_runtime_error_ids() {
    let server = Server::start(&[]);
    for (source, id, message) in [
        (
            "int main(){volatile int *p = 0; return *p;}",
            7,
            "Caught fatal signal 11",
        ),
        (
            "#include <stdlib.h>\nint main(){abort();}",
            10,
            "Caught fatal signal 6",
        ),
        (
            "int main(){volatile int z = 0; return 7 / z;}",
            9,
            "Caught fatal signal 8",
        ),
        ("int main(){return 3;}", 11, "Exited with error status 3"),
    ] {
        let answer = submit_wait(
            &server,
            &json!({"language_id": 50, "source_code": source}),
            "&fields=status,message,exit_code,exit_signal",
        );
        assert_eq!(status_id(&answer), id, "{source}: {answer}");
        assert_eq!(answer["message"], message, "{source}");
    }
}

#[test]
fn a_busy_loop_past_cpu_time_limit_is_time_limit_exceeded() {
    let server = Server::start(&[]);
    let answer = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": "while True: pass", "cpu_time_limit": 0.5, "cpu_extra_time": 0.2}),
        "&fields=status,time,message",
    );
    assert_eq!(
        answer["status"],
        json!({"id": 5, "description": "Time Limit Exceeded"})
    );
    assert_eq!(answer["message"], "Time limit exceeded");
    let time: f64 = answer["time"].as_str().unwrap().parse().unwrap();
    assert!((0.5..1.2).contains(&time), "{answer}");
}

#[test]
fn memory_limit_exceeded_is_runtime_error_other_with_extended_status_15() {
    let server = Server::start(&[]);
    let answer = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": "x = bytearray(200 * 1024 * 1024)", "memory_limit": 65536}),
        "&fields=status,message,extended_status",
    );
    assert_eq!(
        answer["status"],
        json!({"id": 12, "description": "Runtime Error (Other)"})
    );
    assert_eq!(answer["message"], "Memory limit exceeded");
    assert_eq!(
        answer["extended_status"],
        json!({"id": 15, "description": "Memory Limit Exceeded"})
    );
}

#[test]
fn invalid_fields_are_422_with_messages_by_field() {
    let server = Server::start(&[]);
    let (status, answer) = server.post(
        "/submissions",
        &json!({"language_id": 9999, "source_code": "", "memory_limit": 100, "wall_time_limit": "soon", "enable_network": true}),
        &[],
    );
    assert_eq!(status, 422);
    assert_eq!(
        answer["language_id"],
        json!(["language with id 9999 doesn't exist"])
    );
    assert_eq!(answer["source_code"], json!(["can't be blank"]));
    assert_eq!(
        answer["memory_limit"],
        json!(["must be greater than or equal to 2048"])
    );
    assert_eq!(answer["wall_time_limit"], json!(["is not a number"]));
    assert!(
        answer["enable_network"][0]
            .as_str()
            .unwrap()
            .starts_with("enabling network is not allowed")
    );
}

#[test]
fn a_submission_without_wait_is_polled_until_done_then_deleted() {
    let server = Server::start(&[]);
    let (status, created) = server.post(
        "/submissions",
        &json!({"language_id": 71, "source_code": "import time; time.sleep(0.3); print('done')"}),
        &[],
    );
    assert_eq!(status, 201);
    let token = created["token"].as_str().unwrap().to_string();
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let done = loop {
        let (status, answer) = server.get(&format!("/submissions/{token}"), &[]);
        assert_eq!(status, 200);
        let id = status_id(&answer);
        if !seen.contains(&id) {
            seen.push(id);
        }
        if id > 2 {
            break answer;
        }
        assert!(Instant::now() < deadline, "not done: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(done["stdout"], "done\n");
    assert!(
        seen.first().is_some_and(|id| *id <= 2),
        "it was in queue or processing first: {seen:?}"
    );
    let (status, deleted) =
        server.delete(&format!("/submissions/{token}?fields=token,status"), &[]);
    assert_eq!(status, 200);
    assert_eq!(deleted["token"], token);
    assert_eq!(server.get(&format!("/submissions/{token}"), &[]).0, 404);
}

#[test]
fn a_batch_answers_a_token_or_errors_per_entry_and_is_read_back_in_order() {
    let server = Server::start(&[]);
    let (status, created) = server.post(
        "/submissions/batch",
        &json!({"submissions": [
            {"language_id": 71, "source_code": "print(1)"},
            {"language_id": 71},
            {"language_id": 63, "source_code": "console.log(2)"},
        ]}),
        &[],
    );
    assert_eq!(status, 201);
    assert_eq!(created[1], json!({"source_code": ["can't be blank"]}));
    let tokens = [
        created[0]["token"].as_str().unwrap(),
        created[2]["token"].as_str().unwrap(),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = server.get(
            &format!(
                "/submissions/batch?tokens={}&fields=token,stdout,status_id",
                tokens.join(",")
            ),
            &[],
        );
        assert_eq!(status, 200);
        let list = answer["submissions"].as_array().unwrap();
        assert_eq!(list[0]["token"], tokens[0]);
        if list.iter().all(|s| s["status_id"].as_u64() > Some(2)) {
            assert_eq!(list[0]["stdout"], "1\n");
            assert_eq!(list[1]["stdout"], "2\n");
            break;
        }
        assert!(Instant::now() < deadline, "{answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn once_a_key_exists_x_auth_token_is_required_and_checked() {
    let server = Server::start(&[]);
    let key = server.create_key("judge0-client", "execute");
    let body = json!({"language_id": 71, "source_code": "print(1)"});
    let (status, answer) = server.post("/submissions", &body, &[]);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].is_string(),
        "Judge0's error shape: {answer}"
    );
    assert_eq!(
        server
            .post("/submissions", &body, &[("X-Auth-Token", "rbx_wrong")])
            .0,
        401
    );
    assert_eq!(
        server
            .post("/submissions", &body, &[("X-Auth-Token", &key)])
            .0,
        201
    );
    assert_eq!(
        server
            .post("/authenticate", &json!({}), &[("X-Auth-Token", &key)])
            .0,
        200
    );
    assert_eq!(
        server
            .post("/authorize", &json!({}), &[("X-Auth-User", &key)])
            .0,
        403
    );
}

#[test]
fn a_multi_file_program_is_built_by_its_compile_script_and_started_by_run() {
    let server = Server::start(&[]);
    let python = "import io, zipfile, base64, sys\nb = io.BytesIO()\nz = zipfile.ZipFile(b, 'w')\nz.writestr('compile', 'gcc -o hello main.c')\nz.writestr('run', './hello \"$@\"')\nz.writestr('main.c', '#include <stdio.h>\\nint main(int c, char **v){printf(\"hi %s\\\\n\", c > 1 ? v[1] : \"-\");}')\nz.close()\nprint(base64.b64encode(b.getvalue()).decode())";
    let out = std::process::Command::new("python3")
        .args(["-c", python])
        .output()
        .expect("python3 makes the zip");
    let zip = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let answer = submit_wait(
        &server,
        &json!({"language_id": 89, "additional_files": zip, "command_line_arguments": "there"}),
        "",
    );
    assert_eq!(status_id(&answer), 3, "{answer}");
    assert_eq!(answer["stdout"], "hi there\n");
}

#[test]
fn a_callback_url_receives_the_finished_submission_by_put() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&request).contains("\"status\"") {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let server = Server::start(&[]);
    let (status, _) = server.post(
        "/submissions",
        &json!({"language_id": 71, "source_code": "print(7)", "callback_url": format!("http://127.0.0.1:{port}/judge0")}),
        &[],
    );
    assert_eq!(status, 201);
    let request = receiver.join().unwrap();
    assert!(request.starts_with("PUT /judge0 "), "{request}");
    assert!(request.contains("\"stdout\":\"7\\n\""), "{request}");
    assert!(request.contains("\"id\":3"), "{request}");
}

#[test]
fn languages_statuses_and_config_info_answer_in_judge0_shapes() {
    let server = Server::start(&[]);
    let (_, languages) = server.get("/languages", &[]);
    let python = languages
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == 71)
        .expect("71 is listed");
    assert!(
        python["name"].as_str().unwrap().starts_with("Python (3."),
        "{python}"
    );
    let (status, one) = server.get("/languages/52", &[]);
    assert_eq!(status, 200);
    assert_eq!(one["source_file"], "main.cpp");
    assert_eq!(one["is_archived"], false);
    // Another id of the same installed C++ still runs, listed as an archived alias.
    let (_, alias) = server.get("/languages/54", &[]);
    assert_eq!(alias["is_archived"], true);
    let (_, statuses) = server.get("/statuses", &[]);
    assert_eq!(statuses.as_array().unwrap().len(), 14);
    assert_eq!(
        statuses[13],
        json!({"id": 14, "description": "Exec Format Error"})
    );
    let (_, config) = server.get("/config_info", &[]);
    assert_eq!(config["cpu_time_limit"], 5.0);
    assert_eq!(config["max_submission_batch_size"], 20);
    assert_eq!(config["allow_enable_network"], false);
    let (_, about) = server.get("/about", &[]);
    assert_eq!(about["version"], "1.13.1");
}

#[test]
fn redirected_stderr_is_in_stdout_in_the_order_written_and_judged_with_it() {
    let server = Server::start(&[]);
    // Unbuffered on purpose: each line is its own write, in this order.
    let program = "import sys\nprint('out1', flush=True)\nsys.stderr.write('err1\\n')\nprint('out2', flush=True)";
    let answer = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": program, "redirect_stderr_to_stdout": true,
            "expected_output": "out1\nerr1\nout2"}),
        "",
    );
    assert_eq!(status_id(&answer), 3, "{answer}");
    assert_eq!(answer["stdout"], "out1\nerr1\nout2\n");
    assert_eq!(answer["stderr"], Value::Null);
}

#[test]
fn number_of_runs_runs_the_program_that_often_and_reports_the_mean_time() {
    let server = Server::start(&[]);
    let program = "import time\ntime.sleep(0.3)\nprint('done')";
    let started = Instant::now();
    let answer = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": program, "number_of_runs": 3}),
        "&fields=status,number_of_runs,wall_time",
    );
    let elapsed = started.elapsed();
    assert_eq!(status_id(&answer), 3, "{answer}");
    assert_eq!(answer["number_of_runs"], 3, "{answer}");
    let wall: f64 = answer["wall_time"].as_str().unwrap().parse().unwrap();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!((0.3..0.8).contains(&wall), "one run's wall time: {answer}");
}

#[test]
fn compiler_options_reach_the_compiler_and_a_language_without_them_says_so() {
    let server = Server::start(&[]);
    let program = "#include <stdio.h>\nint main(void){ puts(GREETING); return LEVEL; }";
    let answer = submit_wait(
        &server,
        &json!({"language_id": 50, "source_code": program,
            "compiler_options": "-DGREETING='\"hi there\"' -DLEVEL=0 -O0"}),
        "",
    );
    assert_eq!(status_id(&answer), 3, "{answer}");
    assert_eq!(answer["stdout"], "hi there\n");

    let (status, answer) = server.post(
        "/submissions?wait=true",
        &json!({"language_id": 71, "source_code": "print(1)", "compiler_options": "-O"}),
        &[],
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["compiler_options"],
        json!(["Python takes no compiler options"])
    );
}

/// A TCP server on all of this host's addresses that greets each connection, and
/// the host's address on its default route (not loopback, so a box reaches it
/// only through its own network).
fn greeter() -> (std::net::IpAddr, u16) {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"hello");
        }
    });
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("192.0.2.254:9").unwrap();
    (probe.local_addr().unwrap().ip(), port)
}

#[test]
fn enable_network_reaches_the_internet_only_where_the_operator_allows_it() {
    let (host, port) = greeter();
    // This test's "internet" is the host's own address, so the operator's deny
    // list is emptied and the host's addresses allowed; the sandbox tests check
    // the defaults.
    let server = Server::start(&[
        ("RUNBOX_NETWORK_ENABLED", "true"),
        ("RUNBOX_NETWORK_DENY", "[]"),
        ("RUNBOX_NETWORK_DENY_HOST_ADDRESSES", "false"),
    ]);
    let program = format!(
        "import socket\ntry:\n    s = socket.create_connection(('{host}', {port}), timeout=3)\n    print(s.recv(5).decode())\nexcept OSError as e:\n    print('no network:', type(e).__name__)"
    );
    let with = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": program, "enable_network": true}),
        "",
    );
    assert_eq!(with["stdout"], "hello\n", "{with}");
    let without = submit_wait(
        &server,
        &json!({"language_id": 71, "source_code": program}),
        "",
    );
    assert!(
        without["stdout"]
            .as_str()
            .unwrap()
            .starts_with("no network:"),
        "{without}"
    );
    let (status, config) = server.get("/config_info", &[]);
    assert_eq!(status, 200);
    assert_eq!(config["allow_enable_network"], true);
}
