//! The native session API, `GET /api/v1/sessions`, against a real `runbox serve`
//! (sessions need a socket and real boxes): pipes and terminals, a REPL, resize,
//! Ctrl-C, a client that leaves or never reads, limits and keys.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Options, TestServer};

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// One session: its socket, and what arrived so far.
struct Session {
    socket: Socket,
    /// The subprotocol the server chose.
    protocol: Option<String>,
    output: String,
}

impl Session {
    /// Opens a session; `protocols` is the Sec-WebSocket-Protocol offer.
    fn open(server: &TestServer, protocols: Option<&str>) -> Result<Session, tungstenite::Error> {
        use tungstenite::client::IntoClientRequest;
        let url = format!("{}/api/v1/sessions", server.url.replace("http://", "ws://"));
        let mut request = url.into_client_request()?;
        if let Some(offer) = protocols {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", offer.parse().unwrap());
        }
        let (socket, response) = tungstenite::connect(request)?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        Ok(Session {
            socket,
            protocol,
            output: String::new(),
        })
    }

    fn send(&mut self, message: Value) {
        self.socket
            .send(tungstenite::Message::text(message.to_string()))
            .expect("the message is sent");
    }

    fn stdin(&mut self, text: &str) {
        self.send(json!({"type": "stdin", "data": text}));
    }

    /// The next JSON message, or the close code and reason.
    fn next(&mut self) -> Result<Value, (u16, String)> {
        loop {
            match self.socket.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                    if message["type"] == "output" && message["stage"] == "run" {
                        self.output.push_str(message["data"].as_str().unwrap());
                    }
                    return Ok(message);
                }
                Ok(tungstenite::Message::Close(frame)) => {
                    return Err(frame.map_or((0, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    }));
                }
                Ok(_) => continue,
                Err(error) => panic!("the socket broke: {error}"),
            }
        }
    }

    /// Reads until the program's output holds `wanted`; what came before it is
    /// dropped from `output`.
    fn expect(&mut self, wanted: &str) {
        while !self.output.contains(wanted) {
            if let Err(close) = self.next() {
                panic!(
                    "closed {close:?} before {wanted:?}; output {:?}",
                    self.output
                );
            }
        }
        let at = self.output.find(wanted).unwrap() + wanted.len();
        self.output.drain(..at);
    }

    /// Reads to the end: the result message, and the close code.
    fn result(&mut self) -> (Value, u16) {
        let mut result = Value::Null;
        loop {
            match self.next() {
                Ok(message) if message["type"] == "result" => result = message["result"].clone(),
                Ok(message) if message["type"] == "error" => result = message,
                Ok(_) => {}
                Err((code, _)) => return (result, code),
            }
        }
    }
}

fn start(language: &str, source: &str, tty: bool) -> Value {
    json!({"type": "start", "language": language, "source": source, "tty": tty,
        "limits": {"wall_time_ms": 30000}})
}

#[test]
fn a_session_on_pipes_streams_output_and_ends_with_the_result() {
    let server = TestServer::start();
    let mut session = Session::open(&server, None).unwrap();
    session.send(start(
        "python",
        "import sys\nprint('name?', flush=True)\nname = input()\nprint('hi', name, sys.stdin.isatty())\nprint('oops', file=sys.stderr)",
        false,
    ));
    let started = session.next().unwrap();
    assert_eq!(started["type"], "started", "{started}");
    assert_eq!(started["tty"], false);
    session.expect("name?\n");
    session.stdin("Ada\n");
    session.expect("hi Ada False\n");
    let (result, code) = session.result();
    assert_eq!(code, 1000);
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["run"]["stdout"], "name?\nhi Ada False\n");
    assert_eq!(result["run"]["stderr"], "oops\n");
}

#[test]
fn a_session_on_a_terminal_echoes_and_the_program_sees_a_tty() {
    let server = TestServer::start();
    let mut session = Session::open(&server, None).unwrap();
    session.send(start(
        "python",
        "import sys\nname = input('Name? ')\nprint('Hello,', name, sys.stdin.isatty(), sys.stdout.isatty())",
        true,
    ));
    assert_eq!(session.next().unwrap()["tty"], true);
    session.expect("Name? ");
    session.stdin("Ada\r");
    session.expect("Ada\r\nHello, Ada True True\r\n");
    let (result, code) = session.result();
    assert_eq!(
        (result["status"].as_str(), code),
        (Some("ok"), 1000),
        "{result}"
    );
}

#[test]
fn a_python_repl_answers_expressions() {
    let server = TestServer::start();
    let mut session = Session::open(&server, None).unwrap();
    session.send(start("bash", "exec python3 -i -q", true));
    session.expect(">>> ");
    session.stdin("6 * 7\r");
    session.expect("42\r\n>>> ");
    session.stdin("'ab' * 3\r");
    session.expect("'ababab'\r\n>>> ");
    session.send(json!({"type": "stdin", "eof": true}));
    let (result, code) = session.result();
    assert_eq!(
        (result["status"].as_str(), code),
        (Some("ok"), 1000),
        "{result}"
    );
}

#[test]
fn a_resize_reaches_the_program() {
    let server = TestServer::start();
    let mut session = Session::open(&server, None).unwrap();
    let mut begin = start("bash", "stty size; echo ready; read line; stty size", true);
    begin["rows"] = json!(30);
    begin["cols"] = json!(100);
    session.send(begin);
    session.expect("30 100\r\nready\r\n");
    session.send(json!({"type": "resize", "rows": 40, "cols": 120}));
    session.stdin("\r");
    session.expect("40 120\r\n");
    assert_eq!(session.result().1, 1000);
}

#[test]
fn ctrl_c_on_the_terminal_and_a_signal_message_interrupt_the_program() {
    let server = TestServer::start();
    let trap = "trap 'echo caught; exit 3' INT; echo ready; while :; do sleep 0.05; done";
    let mut typed = Session::open(&server, None).unwrap();
    typed.send(start("bash", trap, true));
    typed.expect("ready\r\n");
    typed.stdin("\u{3}");
    typed.expect("caught\r\n");
    let (result, _) = typed.result();
    assert_eq!(result["run"]["exit_code"], 3, "{result}");

    let mut signalled = Session::open(&server, None).unwrap();
    signalled.send(start("bash", trap, false));
    signalled.expect("ready\n");
    signalled.send(json!({"type": "signal", "signal": "SIGINT"}));
    let (result, _) = signalled.result();
    assert_eq!(result["run"]["exit_code"], 3, "{result}");
}

/// The host pid of a process with exactly this command line, if one runs.
fn pid_of(command_line: &str) -> Option<u32> {
    let wanted: Vec<u8> = command_line.replace(' ', "\0").into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (cmdline.strip_suffix(b"\0") == Some(&wanted[..]))
                .then(|| entry.file_name().to_str()?.parse().ok())
                .flatten()
        })
}

/// Whether a process with exactly this command line runs on the host.
fn running(command_line: &str) -> bool {
    pid_of(command_line).is_some()
}

#[test]
fn a_client_that_leaves_takes_its_box_with_it_within_a_second() {
    let server = TestServer::start();
    for tty in [false, true] {
        let mut session = Session::open(&server, None).unwrap();
        // A number no other test sleeps for, to find the program on the host.
        let marker = if tty { "sleep 3607" } else { "sleep 3608" };
        session.send(start("bash", &format!("echo ready; exec {marker}"), tty));
        session.expect("ready");
        // "ready" comes before the exec: the sleep shows up a moment later.
        let asked = Instant::now();
        while !running(marker) {
            assert!(
                asked.elapsed() < Duration::from_secs(5),
                "the program runs (tty: {tty})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(session);
        let left = Instant::now();
        while running(marker) {
            assert!(
                left.elapsed() < Duration::from_secs(1),
                "the box outlived its client by a second (tty: {tty})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The server's resident memory, in KiB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How many bytes a process has written so far (to pipes too).
fn written_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let line = io.lines().find(|l| l.starts_with("wchar:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_never_reads_holds_the_program_back_not_the_servers_memory() {
    // Up to 1 GiB of output allowed, by default too (Piston's requests cannot
    // ask for it): only backpressure keeps it out of memory.
    let config = tempfile::NamedTempFile::new().unwrap();
    let limit = 1 << 20;
    let settings = format!("[run_limits]\noutput_kb = {limit}\nmax_output_kb = {limit}\n");
    std::fs::write(config.path(), settings).unwrap();
    let server = TestServer::start_with(Options {
        args: vec!["--config", config.path().to_str().unwrap()],
        ..Options::default()
    });
    let wall = Duration::from_secs(8);
    let wall_ms = wall.as_millis() as u64;
    let script = |program: &str| format!("echo ready; exec {program}");
    let (native, piston) = (
        "yes runbox-native-never-read",
        "yes runbox-piston-never-read",
    );
    // Piston's connect shares the relay: a client of it gets the same treatment.
    let sessions = [
        (
            "/api/v1/sessions",
            native,
            json!({"type": "start", "language": "bash", "source": script(native),
                "limits": {"wall_time_ms": wall_ms}}),
        ),
        (
            "/api/v2/connect",
            piston,
            json!({"type": "init", "language": "bash", "version": "*",
                "files": [{"content": script(piston)}], "run_timeout": wall_ms}),
        ),
    ];
    for (path, program, start) in sessions {
        use tungstenite::client::IntoClientRequest;
        let url = format!("{}{path}", server.url.replace("http://", "ws://"));
        let (mut socket, _) = tungstenite::connect(url.into_client_request().unwrap()).unwrap();
        socket
            .send(tungstenite::Message::text(start.to_string()))
            .unwrap();
        // Reads until the program is about to flood, then never again.
        while !socket
            .read()
            .unwrap_or_else(|error| panic!("{path}: the socket broke: {error}"))
            .to_text()
            .is_ok_and(|text| text.contains("ready"))
        {}
        let started = Instant::now();
        let before = rss_kb(server.pid());
        // The program could write gigabytes in this time.
        std::thread::sleep(Duration::from_secs(4));
        let after = rss_kb(server.pid());
        let pid = pid_of(program).unwrap_or_else(|| panic!("{path}: the program runs"));
        let written = written_bytes(pid);
        eprintln!("{path}: server RSS {before} -> {after} KiB; the program wrote {written} bytes");
        assert!(
            after.saturating_sub(before) < 24 << 10,
            "{path}: the server grew from {before} KiB to {after} KiB"
        );
        // Held back: blocked on its writes once the socket's kernel buffers
        // (a few MiB) and 16 chunks are full.
        assert!(
            written < 32 << 20,
            "{path}: the program wrote {written} bytes"
        );
        // Waiting for the client does not stretch the program's wall limit.
        while running(program) {
            assert!(
                started.elapsed() < wall + Duration::from_secs(1),
                "{path}: the program outlived its wall limit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(socket);
    }
}

#[test]
fn a_session_needs_a_key_once_keys_exist_and_browsers_offer_it_as_a_subprotocol() {
    let server = TestServer::start();
    let key = server.create_key("sessions", &[]);
    match Session::open(&server, None) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        Err(other) => panic!("expected a 401, got {other}"),
        Ok(_) => panic!("a session opened without a key"),
    }
    let offer = format!("runbox.v1, runbox.key.{key}");
    let mut session = Session::open(&server, Some(&offer)).expect("a session with the key");
    assert_eq!(session.protocol.as_deref(), Some("runbox.v1"));
    session.send(start("bash", "echo keyed", false));
    session.expect("keyed\n");
    assert_eq!(session.result().1, 1000);
}

#[test]
fn bad_starts_get_an_error_and_a_close_code_of_4000_plus_the_http_status() {
    let server = TestServer::start();
    let cases = [
        // Not a start first.
        json!({"type": "stdin", "data": "x"}),
        json!({"type": "start", "language": "no-such-language", "source": ""}),
        // Limits above the server's maxima.
        json!({"type": "start", "language": "bash", "source": "", "limits": {"wall_time_ms": 99_999_999}}),
        // Tests are for /execute.
        json!({"type": "start", "language": "bash", "source": "", "tests": [{"stdin": ""}]}),
        json!({"type": "start", "language": "bash", "source": "", "tty": true, "rows": 0}),
    ];
    for message in cases {
        let mut session = Session::open(&server, None).unwrap();
        session.send(message.clone());
        let error = session.next().unwrap();
        assert_eq!(error["type"], "error", "{message} -> {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        let (code, _) = session.next().unwrap_err();
        assert_eq!(code, 4400, "{message} -> {error}");
    }
}

#[test]
fn a_second_start_closes_with_4409() {
    let server = TestServer::start();
    let mut session = Session::open(&server, None).unwrap();
    session.send(start("bash", "echo ready; read line", false));
    session.expect("ready");
    session.send(start("bash", "true", false));
    loop {
        match session.next() {
            Ok(_) => continue,
            Err((code, _)) => {
                assert_eq!(code, 4409);
                break;
            }
        }
    }
}
