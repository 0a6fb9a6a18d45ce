//! Hostile load against the real `runbox serve` on loopback: every resource a
//! request or a connection can make the server hold is bounded, with or without
//! a key. Each test is bounded in time and count, and asserts the bound.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Options, TestServer, python};

/// The server's address as `host:port`.
fn address(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// How long `/api/v1/health` takes to answer, from a fresh connection.
fn health_latency(server: &TestServer) -> Duration {
    let started = Instant::now();
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("{}/api/v1/health", server.url))
        .send()
        .expect("health must answer");
    assert_eq!(response.status().as_u16(), 200);
    started.elapsed()
}

/// Whether the server closed `stream` (a read ends, or fails).
fn closed_by_server(mut stream: &TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        // Closed, or answered with a timeout before closing.
        Ok(read) => read == 0 || buf[..read].starts_with(b"HTTP/1.1 408"),
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn half_open_connections_are_closed_and_health_keeps_answering() {
    let server = TestServer::start_with(Options {
        env: vec![("RUNBOX_CONNECTIONS_HEADER_READ_TIMEOUT_MS", "1500".into())],
        ..Options::default()
    });
    let addr = address(&server);
    let held: Vec<TcpStream> = (0..800)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).expect("the server accepts");
            stream
                .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    // While they are held, the service answers at once.
    let latency = health_latency(&server);
    assert!(latency < Duration::from_secs(1), "health took {latency:?}");
    // After the header timeout, the server has closed every one of them.
    std::thread::sleep(Duration::from_millis(2500));
    let open = held
        .iter()
        .filter(|stream| !closed_by_server(stream))
        .count();
    assert_eq!(open, 0, "{open} half-open connections still open");
    server.stop();
}

#[test]
fn connections_over_the_bound_are_closed_at_once_and_the_service_recovers() {
    let server = TestServer::start_with(Options {
        env: vec![
            ("RUNBOX_CONNECTIONS_MAX_CONNECTIONS", "100".into()),
            ("RUNBOX_CONNECTIONS_HEADER_READ_TIMEOUT_MS", "1000".into()),
        ],
        ..Options::default()
    });
    let addr = address(&server);
    let held: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    // The 50 over the bound were closed by the server, not left hanging.
    std::thread::sleep(Duration::from_millis(300));
    let streams = held;
    let closed = streams
        .iter()
        .filter(|stream| closed_by_server(stream))
        .count();
    assert!(closed >= 50, "only {closed} of 150 connections were closed");
    drop(streams);
    std::thread::sleep(Duration::from_millis(1500));
    let latency = health_latency(&server);
    assert!(latency < Duration::from_secs(1), "health took {latency:?}");
    server.stop();
}

#[test]
fn a_keyless_request_is_refused_before_its_body_is_read() {
    let server = TestServer::start();
    server.create_key("owner", &[]);
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    // A 16 MiB body announced, 1 KiB sent, the rest held back.
    let head = format!(
        "POST /submissions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        16 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[b' '; 1024]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer).expect("an answer before the body");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.stop();
}

#[test]
fn a_body_that_never_arrives_times_out() {
    let server = TestServer::start_with(Options {
        env: vec![("RUNBOX_CONNECTIONS_BODY_READ_TIMEOUT_MS", "1000".into())],
        ..Options::default()
    });
    let mut stream = TcpStream::connect(address(&server)).unwrap();
    stream
        .write_all(
            b"POST /api/v1/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"language\"",
        )
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    server.stop();
}

#[test]
fn a_body_of_millions_of_values_is_refused_unparsed() {
    let server = TestServer::start();
    let body = format!("[{}0]", "0,".repeat(4 << 20));
    let started = Instant::now();
    let response = server
        .request(reqwest::Method::POST, "/api/v2/execute", None)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert!(started.elapsed() < Duration::from_secs(3));
    server.stop();
}

#[test]
fn a_flood_of_wrong_keys_costs_almost_no_disk_and_is_throttled() {
    let server = TestServer::start();
    server.create_key("owner", &[]);
    let db = server.data_dir.join("runbox.db");
    let size = |path: &std::path::Path| {
        std::fs::metadata(path).map_or(0, |m| m.len())
            + std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len())
    };
    let before_db = size(&db);
    let before_log = server.log().len();
    let client = reqwest::blocking::Client::new();
    let path = format!("{}/api/v1/submissions/{}", server.url, "A".repeat(60_000));
    let mut throttled = 0;
    let started = Instant::now();
    for _ in 0..1000 {
        let status = client
            .get(&path)
            .bearer_auth("rbx_wrong")
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert!(status == 401 || status == 429, "{status}");
        if status == 429 {
            throttled += 1;
        }
    }
    // Heard: the burst, then about the rate (10 per second, and the one refusal
    // that blocks the address again each time) for as long as it lasted.
    let heard = 1000 - throttled;
    let allowed = 60 + (started.elapsed().as_secs_f64() * 15.0).ceil() as usize;
    assert!(
        heard <= allowed,
        "{heard} of 1000 were heard, at most {allowed} expected"
    );
    std::thread::sleep(Duration::from_millis(500));
    let grown_db = size(&db).saturating_sub(before_db);
    let grown_log = server.log().len().saturating_sub(before_log);
    assert!(grown_db < 1 << 20, "the database grew by {grown_db} bytes");
    assert!(grown_log < 2 << 20, "the log grew by {grown_log} bytes");
    server.stop();
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb << 10
}

/// The size of the SQLite database and its write-ahead log.
fn database_bytes(data_dir: &std::path::Path) -> u64 {
    let db = data_dir.join("runbox.db");
    std::fs::metadata(&db).map_or(0, |m| m.len())
        + std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len())
}

#[test]
fn one_request_cannot_amplify_into_an_unbounded_result() {
    let server = TestServer::start_with(Options {
        env: vec![("RUNBOX_REQUESTS_MAX_RESULT_BYTES", (4 << 20).to_string())],
        ..Options::default()
    });
    // Warm up: the first run loads what every run needs (the catalog, the
    // version of Python), which is not what this test measures.
    server.post_expect("/api/v1/execute", &python("print(1)"), None, 200);
    let rss_before = resident_bytes(server.pid());
    let db_before = database_bytes(&server.data_dir);
    // 20 tests, each printing 1 MiB on stdout and on stderr: 40 MiB of output,
    // three such requests at once.
    let tests: Vec<Value> = (0..20).map(|i| json!({"name": format!("t{i}")})).collect();
    let request = json!({"language": "python",
            "source": "import sys\nsys.stdout.write('o' * (1 << 20))\nsys.stderr.write('e' * (1 << 20))",
            "limits": {"output_kb": 1024},
            "tests": tests});
    let peak = std::sync::atomic::AtomicU64::new(rss_before);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(
                    resident_bytes(server.pid()),
                    std::sync::atomic::Ordering::Relaxed,
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let answers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| server.post("/api/v1/execute", &request, None)))
            .collect();
        for answer in answers {
            let response = answer.join().unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let bytes = response.bytes().unwrap();
            assert!(
                bytes.len() < (4 << 20) + (256 << 10),
                "the answer holds {} bytes",
                bytes.len()
            );
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            let tests = body["tests"].as_array().unwrap();
            assert_eq!(tests.len(), 20, "every test keeps its verdict");
            assert_eq!(tests[19]["stdout_truncated"], true);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // Three results of at most 4 MiB each are held and stored: the server's
    // memory and the database grow by a small multiple of that, not by the
    // 120 MiB the programs printed.
    let rss_grown = peak.into_inner().saturating_sub(rss_before);
    eprintln!("resident memory grew by {} MiB", rss_grown >> 20);
    assert!(
        rss_grown < 96 << 20,
        "the server's resident memory grew by {} MiB",
        rss_grown >> 20
    );
    // A page written since the last checkpoint is in the WAL and may also be
    // in the database file already: count the stored results twice.
    let db_grown = database_bytes(&server.data_dir).saturating_sub(db_before);
    assert!(
        db_grown < 2 * 3 * (4 << 20) + (4 << 20),
        "the database grew by {} MiB",
        db_grown >> 20
    );
    // Listing them does not load whole results.
    let started = Instant::now();
    server.get_expect("/api/v1/submissions?per_page=4", None, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    server.stop();
}

#[test]
fn clients_that_hang_up_do_not_free_workers_or_run_jobs_twice() {
    let server = TestServer::start_with(Options {
        args: vec!["--workers", "1"],
        env: vec![("RUNBOX_QUEUE_LEASE_SECONDS", "2".into())],
        ..Options::default()
    });
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    // One worker: the three jobs run one after another, never at once, and each
    // exactly once even though their leases (2 s) are shorter than their wait.
    let most_boxes = std::sync::atomic::AtomicU64::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let metrics = server.get("/metrics", None).text().unwrap_or_default();
                let in_use = metrics
                    .lines()
                    .find_map(|l| l.strip_prefix("runbox_boxes_in_use "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0);
                most_boxes.fetch_max(in_use as u64, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        for _ in 0..3 {
            let _ = impatient
                .post(format!("{}/api/v1/execute", server.url))
                .json(&json!({"language": "bash", "source": "sleep 2; echo done"}))
                .send();
        }
        std::thread::sleep(Duration::from_secs(8));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(
        most_boxes.into_inner(),
        1,
        "jobs in boxes at once, with one worker"
    );
    let listing = server.get_expect("/api/v1/submissions?per_page=10", None, 200);
    let jobs = listing["submissions"].as_array().unwrap();
    assert_eq!(jobs.len(), 3, "{listing}");
    for job in jobs {
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["status"], "ok", "{job}");
    }
    let log = server.log();
    assert!(!log.contains("lease expired"), "a job ran again:\n{log}");
    server.stop();
}

#[test]
fn sigterm_ends_a_long_job_after_the_grace_period() {
    let server = TestServer::start_with(Options {
        env: vec![("RUNBOX_SHUTDOWN_GRACE_SECONDS", "1".into())],
        ..Options::default()
    });
    let url = server.url.clone();
    let _client = std::thread::spawn(move || {
        let _ = reqwest::blocking::Client::new()
            .post(format!("{url}/api/v1/execute"))
            .json(&json!({"language": "bash", "source": "sleep 30"}))
            .send();
    });
    std::thread::sleep(Duration::from_millis(800));
    let pid = server.pid();
    let started = Instant::now();
    let _ = server.stop();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "the server took {took:?} to exit"
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn a_job_that_could_run_for_hours_is_refused_before_it_runs() {
    let server = TestServer::start();
    let tests: Vec<Value> = (0..200)
        .map(|i| json!({"name": format!("t{i}"), "limits": {"wall_time_ms": 60_000}}))
        .collect();
    let mut request = python("print(1)");
    request["tests"] = json!(tests);
    let err = server.post_expect("/api/v1/execute", &request, None, 400);
    assert_eq!(err["error"]["field"], "tests", "{err}");
    server.stop();
}
