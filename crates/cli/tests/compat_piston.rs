//! Piston v2's REST API on a real `runbox serve`.

mod compat_support;

use compat_support::{Server, Value, json};

#[test]
fn runtimes_list_installed_languages_with_piston_names() {
    let server = Server::start(&[]);
    let (status, runtimes) = server.get("/api/v2/runtimes", &[]);
    assert_eq!(status, 200);
    let cpp = runtimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "c++")
        .expect("c++ is listed");
    assert_eq!(cpp["runtime"], "gcc");
    assert!(cpp["aliases"].as_array().unwrap().contains(&json!("cpp")));
    assert!(
        runtimes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["language"] == "python")
    );
}

#[test]
fn a_compiled_program_answers_compile_and_run_stages() {
    let server = Server::start(&[]);
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "c++", "version": "*", "files": [{"name": "main.cpp",
            "content": "#include <iostream>\n#include <vector>\nint main(int c, char **v){std::vector<char> mib(1 << 20, 1); std::string s; std::cin >> s; std::cout << s << v[1] << std::flush; std::cerr << \"E\"; return mib[7] + 3;}"}],
            "stdin": "in", "args": ["A"]}),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["language"], "c++");
    assert_eq!(answer["compile"]["code"], 0);
    assert_eq!(answer["run"]["stdout"], "inA");
    assert_eq!(answer["run"]["stderr"], "E");
    assert_eq!(answer["run"]["output"], "inAE");
    assert_eq!(answer["run"]["code"], 4);
    assert_eq!(answer["run"]["status"], "RE");
    assert!(
        // The program touches 1 MiB: more than 512 Ki in bytes (in KiB, that
        // would be 512 MiB). A program that allocates nothing may read as 0:
        // see docs/judging.md on the figure's granularity.
        answer["run"]["memory"].as_u64().unwrap() > 512 << 10,
        "memory is in bytes: {answer}"
    );
}

#[test]
fn files_in_base64_and_hex_and_semver_selectors_are_accepted() {
    let server = Server::start(&[]);
    for (content, encoding) in [
        ("cHJpbnQoJ2hpJyk=", "base64"),
        ("7072696e7428276869272920", "hex"),
    ] {
        let (status, answer) = server.post(
            "/api/v2/execute",
            &json!({"language": "py", "version": ">=3.0 <4", "files": [{"content": content, "encoding": encoding}]}),
            &[],
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["run"]["stdout"], "hi\n", "{encoding}");
        assert_eq!(answer["run"]["status"], json!(null));
    }
}

#[test]
fn unknown_runtimes_and_limits_above_the_maximum_get_piston_messages() {
    let server = Server::start(&[]);
    let file = json!([{"content": "print(1)"}]);
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "version": "2.7", "files": file}),
        &[],
    );
    assert_eq!(
        (status, answer),
        (400, json!({"message": "python-2.7 runtime is unknown"}))
    );
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "version": "3", "files": file, "run_timeout": 999_999}),
        &[],
    );
    assert_eq!(
        (status, answer),
        (
            400,
            json!({"message": "run_timeout cannot exceed the configured limit of 60000"})
        )
    );
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "files": file}),
        &[],
    );
    assert_eq!(
        (status, answer),
        (400, json!({"message": "version is required as a string"}))
    );
}

#[test]
fn a_timeout_is_status_to_and_a_body_over_100_kb_is_accepted() {
    let server = Server::start(&[]);
    let padding = "#".repeat(200 * 1024);
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "version": "3", "run_timeout": 500,
            "files": [{"content": format!("{padding}\nwhile True: pass\n")}]}),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["run"]["status"], "TO");
    assert_eq!(answer["run"]["signal"], "SIGKILL");
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let server = Server::start(&[("RUNBOX_QUEUE_CAPACITY", "1")]);
    let slow = json!({"language": "python", "version": "3", "run_timeout": 3000, "files": [{"content": "import time; time.sleep(2)"}]});
    let url = format!("{}/api/v2/execute", server.url);
    let first = std::thread::spawn({
        let slow = slow.clone();
        move || {
            reqwest::blocking::Client::new()
                .post(url)
                .json(&slow)
                .send()
                .map(|r| r.status().as_u16())
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    let response = server
        .request(reqwest::Method::POST, "/api/v2/execute", &[])
        .json(&slow)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(first.join().unwrap().unwrap(), 200);
}

/// A WebSocket session with the server's `/api/v2/connect`.
struct Session {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
}

impl Session {
    fn open(server: &Server, key: Option<&str>) -> Result<Session, tungstenite::Error> {
        use tungstenite::client::IntoClientRequest;
        let url = format!("{}/api/v2/connect", server.url.replace("http://", "ws://"));
        let mut request = url.into_client_request()?;
        if let Some(key) = key {
            request
                .headers_mut()
                .insert("X-API-Key", key.parse().expect("a header value"));
        }
        let (socket, _) = tungstenite::connect(request)?;
        Ok(Session { socket })
    }

    fn send(&mut self, message: Value) {
        self.socket
            .send(tungstenite::Message::text(message.to_string()))
            .expect("the message is sent");
    }

    /// The next JSON message, or the close code.
    fn next(&mut self) -> Result<Value, u16> {
        loop {
            match self.socket.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    return Ok(serde_json::from_str(text.as_str()).expect("JSON"));
                }
                Ok(tungstenite::Message::Close(frame)) => {
                    return Err(frame.map_or(0, |f| u16::from(f.code)));
                }
                Ok(_) => continue,
                Err(error) => panic!("the socket broke: {error}"),
            }
        }
    }

    /// Reads until stdout holds `wanted`.
    fn wait_for_stdout(&mut self, wanted: &str) {
        let mut stdout = String::new();
        while !stdout.contains(wanted) {
            let message = self.next().expect("the session goes on");
            if message["type"] == "data" && message["stream"] == "stdout" {
                stdout.push_str(message["data"].as_str().unwrap());
            }
        }
    }
}

fn bash_init(script: &str) -> Value {
    json!({"type": "init", "language": "bash", "version": "*",
        "files": [{"content": script}], "run_timeout": 60000, "run_cpu_time": 10000})
}

#[test]
fn the_websocket_needs_a_key_once_keys_exist() {
    let server = Server::start(&[]);
    let key = server.create_key("ws", "execute");
    match Session::open(&server, None) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        Err(other) => panic!("expected a 401, got {other}"),
        Ok(_) => panic!("a session opened without a key"),
    }
    let mut session = Session::open(&server, Some(&key)).expect("a session with the key");
    session.send(bash_init("echo hi"));
    assert_eq!(session.next().unwrap()["type"], "runtime");
}

#[test]
fn leaving_a_session_kills_its_program_and_records_the_job() {
    let server = Server::start(&[]);
    let mut session = Session::open(&server, None).expect("a session");
    session.send(bash_init("echo ready; sleep 60; echo never"));
    session.wait_for_stdout("ready\n");
    let left = std::time::Instant::now();
    drop(session);
    let deadline = left + std::time::Duration::from_secs(10);
    let submission = loop {
        let (status, page) = server.get("/api/v1/submissions?per_page=1", &[]);
        assert_eq!(status, 200, "{page}");
        let first = page["submissions"][0].clone();
        if first["state"] == "done" {
            break first;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {page}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(left.elapsed() < std::time::Duration::from_secs(5));
    let path = format!("/api/v1/submissions/{}", submission["id"].as_str().unwrap());
    let (status, submission) = server.get(&path, &[]);
    assert_eq!(status, 200, "{submission}");
    assert_eq!(submission["language"], "bash");
    assert_eq!(submission["status"], "internal_error");
    assert!(
        submission["result"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cancelled by its caller"),
        "{submission}"
    );
}

#[test]
fn a_signal_that_finds_the_program_ending_leaves_the_session_whole() {
    let server = Server::start(&[]);
    let mut session = Session::open(&server, None).expect("a session");
    // The program ignores SIGTERM, so whether the signal still finds it running
    // or finds the box gone, the job ends the same way.
    session.send(bash_init("trap '' TERM; echo 'the end'"));
    session.wait_for_stdout("the end\n");
    session.send(json!({"type": "signal", "signal": "SIGTERM"}));
    let (mut exit, mut close) = (None, None);
    while close.is_none() {
        match session.next() {
            Ok(message) if message["type"] == "exit" => exit = Some(message),
            Ok(message) => assert_ne!(message["type"], "error", "{message}"),
            Err(code) => close = Some(code),
        }
    }
    assert_eq!(exit.expect("an exit event")["code"], 0);
    assert_eq!(close, Some(4999));
}

#[test]
fn stdin_beyond_the_servers_limit_ends_the_session_with_an_error() {
    let server = Server::start(&[("RUNBOX_REQUESTS_MAX_STDIN_BYTES", "1000")]);
    let mut session = Session::open(&server, None).expect("a session");
    session.send(bash_init("echo ready; sleep 30"));
    session.wait_for_stdout("ready\n");
    session.send(json!({"type": "data", "stream": "stdin", "data": "x".repeat(1001)}));
    let error = loop {
        let message = session.next().expect("an error message before the close");
        if message["type"] == "error" {
            break message;
        }
    };
    assert_eq!(error["message"], "stdin is limited to 1000 bytes");
    assert_eq!(session.next(), Err(4002));
}

#[test]
fn output_interleaves_stdout_and_stderr_in_the_order_written() {
    let server = Server::start(&[]);
    let program = "import sys, time\nsys.stderr.write('first\\n'); sys.stderr.flush()\ntime.sleep(0.1)\nprint('second', flush=True)\ntime.sleep(0.1)\nsys.stderr.write('third\\n')";
    let (status, answer) = server.post(
        "/api/v2/execute",
        &json!({"language": "python", "version": "*", "files": [{"content": program}]}),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["run"]["stdout"], "second\n");
    assert_eq!(answer["run"]["stderr"], "first\nthird\n");
    assert_eq!(answer["run"]["output"], "first\nsecond\nthird\n");
}
