//! End-to-end tests of a fleet: API nodes (`runbox serve --workers 0`) and worker
//! nodes (`runbox worker`), real binaries, around one PostgreSQL database.
//!
//! They need a PostgreSQL server: `RUNBOX_TEST_POSTGRES_URL` (set by
//! `scripts/postgres-test-cluster.sh start`, which `scripts/test.sh` runs). Each
//! test works in a database of its own, created on that server and dropped after.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Row;
use support::{Options, TestServer, TestWorker};

/// Held by the tests that load the machine or measure time, so that they do not
/// run at the same time (the others may run beside them).
static TIMED: Mutex<()> = Mutex::new(());

/// A lease short enough for the tests to see a dead worker's jobs run again soon.
const LEASE_SECONDS: &str = "3";

/// Settings of every node of a test fleet: a short lease, and room for a
/// thousand anonymous submissions at once.
fn fleet_env() -> Vec<(&'static str, String)> {
    vec![
        ("RUNBOX_QUEUE_LEASE_SECONDS", LEASE_SECONDS.into()),
        ("RUNBOX_QUEUE_CAPACITY", "5000".into()),
        ("RUNBOX_RATE_MAX_CONCURRENT", "5000".into()),
        ("RUNBOX_RATE_PER_SECOND", "10000".into()),
        ("RUNBOX_RATE_BURST", "10000".into()),
    ]
}

/// An API node on `database` that only enqueues.
fn api_node(database: &Database) -> TestServer {
    TestServer::start_with(Options {
        args: vec!["--database", &database.url, "--workers", "0"],
        env: fleet_env(),
        ..Options::default()
    })
}

/// A worker node on `database`.
fn worker_node(database: &Database, concurrency: u32) -> TestWorker {
    TestWorker::start(&database.url, concurrency, &fleet_env())
}

/// A fresh database on the test server, dropped (with its connections) at the end.
struct Database {
    /// Its URL.
    url: String,
    name: String,
    server_url: String,
    runtime: tokio::runtime::Runtime,
    pool: sqlx::PgPool,
}

/// One submission as the store holds it.
#[derive(Debug, Clone)]
struct Stored {
    state: String,
    status: Option<String>,
    attempts: i64,
    worker_id: Option<String>,
    stdout: Option<String>,
    finished_ms: Option<i64>,
}

impl Database {
    /// Creates the database `runbox_fleet_<test>_<pid>`.
    fn create(test: &str) -> Database {
        let server_url = std::env::var("RUNBOX_TEST_POSTGRES_URL").expect(
            "RUNBOX_TEST_POSTGRES_URL is not set: the fleet tests need PostgreSQL; \
             run `eval \"$(scripts/postgres-test-cluster.sh start)\"` first (scripts/test.sh does)",
        );
        let name = format!("runbox_fleet_{test}_{}", std::process::id());
        let (base, _) = server_url
            .rsplit_once('/')
            .expect("RUNBOX_TEST_POSTGRES_URL names a database: postgres://USER@HOST:PORT/DB");
        let url = format!("{base}/{name}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let pool = runtime.block_on(async {
            let server = sqlx::PgPool::connect(&server_url)
                .await
                .expect("the test PostgreSQL server must answer");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&server)
                .await
                .expect("drop an old test database");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&server)
                .await
                .expect("create a test database");
            server.close().await;
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await
                .expect("connect to the test database")
        });
        Database {
            url,
            name,
            server_url,
            runtime,
            pool,
        }
    }

    /// Runs statements (after the nodes applied the migrations).
    fn execute(&self, sql: &str) {
        self.runtime.block_on(async {
            sqlx::raw_sql(sql)
                .execute(&self.pool)
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
        });
    }

    /// Counts completions from now on, by a trigger of the test's own (not the
    /// store's code): every update that leaves a row `done` adds a row to
    /// `test_completions`, so a result written twice is seen twice.
    fn count_completions(&self) {
        self.execute(
            "CREATE TABLE test_completions (id TEXT NOT NULL, worker_id TEXT, attempts BIGINT NOT NULL); \
             CREATE FUNCTION test_record_completion() RETURNS trigger LANGUAGE plpgsql AS $$ \
               BEGIN INSERT INTO test_completions VALUES (NEW.id, NEW.worker_id, NEW.attempts); RETURN NEW; END $$; \
             CREATE TRIGGER test_completion AFTER UPDATE ON submissions FOR EACH ROW \
               WHEN (NEW.state = 'done') EXECUTE FUNCTION test_record_completion();",
        );
    }

    /// The completions recorded by [`Database::count_completions`], per id:
    /// (worker id, attempts) of each.
    fn completions(&self) -> HashMap<String, Vec<(Option<String>, i64)>> {
        let rows = self.runtime.block_on(async {
            sqlx::query("SELECT id, worker_id, attempts FROM test_completions")
                .fetch_all(&self.pool)
                .await
                .expect("read the completions")
        });
        let mut by_id: HashMap<String, Vec<(Option<String>, i64)>> = HashMap::new();
        for row in rows {
            by_id
                .entry(row.get("id"))
                .or_default()
                .push((row.get("worker_id"), row.get("attempts")));
        }
        by_id
    }

    /// Every submission, by id.
    fn submissions(&self) -> HashMap<String, Stored> {
        let rows = self.runtime.block_on(async {
            sqlx::query(
                "SELECT id, state, status, attempts, worker_id, \
                        result->'run'->>'stdout' AS stdout, finished_ms FROM submissions",
            )
            .fetch_all(&self.pool)
            .await
            .expect("read the submissions")
        });
        rows.into_iter()
            .map(|row| {
                (
                    row.get("id"),
                    Stored {
                        state: row.get("state"),
                        status: row.get("status"),
                        attempts: row.get("attempts"),
                        worker_id: row.get("worker_id"),
                        stdout: row.get("stdout"),
                        finished_ms: row.get("finished_ms"),
                    },
                )
            })
            .collect()
    }

    /// How many submissions are in `state`.
    fn count(&self, state: &str) -> usize {
        self.submissions()
            .values()
            .filter(|s| s.state == state)
            .count()
    }

    /// Waits until `done` holds for the submissions, at most `timeout`.
    fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&HashMap<String, Stored>) -> bool,
    ) -> HashMap<String, Stored> {
        let deadline = Instant::now() + timeout;
        loop {
            let submissions = self.submissions();
            if done(&submissions) {
                return submissions;
            }
            if Instant::now() > deadline {
                let mut states: HashMap<&str, usize> = HashMap::new();
                for s in submissions.values() {
                    *states.entry(s.state.as_str()).or_default() += 1;
                }
                panic!("{what}: not within {timeout:?}; submissions by state: {states:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (pool, name, server_url) = (self.pool.clone(), self.name.clone(), &self.server_url);
        self.runtime.block_on(async {
            pool.close().await;
            if let Ok(server) = sqlx::PgPool::connect(server_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&server)
                    .await;
                server.close().await;
            }
        });
    }
}

/// The cgroup directories that runbox process `pid` made for its boxes
/// (`runbox-<pid>-<n>`, in every hierarchy; the boxes' cgroups are inside).
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    fn walk(dir: &Path, prefix: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(prefix) {
                found.push(entry.path());
            } else if depth > 0 && !name.starts_with("runbox-") {
                walk(&entry.path(), prefix, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        Path::new("/sys/fs/cgroup"),
        &format!("runbox-{pid}-"),
        6,
        &mut found,
    );
    found
}

/// The processes in the cgroups below `groups` (box processes), other than `pid`
/// itself (on cgroup v1 a supervisor's launcher threads sit in its box cgroups).
fn box_processes(groups: &[PathBuf], pid: u32) -> HashSet<u32> {
    fn walk(dir: &Path, out: &mut HashSet<u32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), out);
            }
        }
    }
    let mut out = HashSet::new();
    for group in groups {
        walk(group, &mut out);
    }
    out.remove(&pid);
    out
}

/// Whether process `pid` is alive and in a cgroup of runbox process `owner`.
fn in_cgroup_of(pid: u32, owner: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|text| text.contains(&format!("/runbox-{owner}-")))
}

/// Runs `runbox doctor`, which sweeps the cgroups of runbox processes that are gone.
fn doctor() {
    let out = std::process::Command::new(support::runbox_binary())
        .arg("doctor")
        .output()
        .expect("runbox doctor must start");
    assert!(
        out.status.success(),
        "runbox doctor failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A bash program that sleeps a little (so that some jobs are mid-run when a
/// worker dies) and prints `index`.
fn indexed(index: usize) -> Value {
    json!({"language": "bash", "source": format!("sleep 0.1; echo {index}")})
}

/// Queues `count` indexed programs in batches; returns their ids by index.
fn submit_indexed(api: &TestServer, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let batch: Vec<Value> = (ids.len()..count.min(ids.len() + 20))
            .map(indexed)
            .collect();
        let created = api.post_expect(
            "/api/v1/submissions/batch",
            &json!({"submissions": batch}),
            None,
            202,
        );
        ids.extend(
            created["submissions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string()),
        );
    }
    ids
}

#[test]
fn a_thousand_submissions_complete_once_each_when_a_worker_is_killed_mid_run() {
    let _alone = TIMED.lock().unwrap_or_else(|p| p.into_inner());
    let database = Database::create("crash");
    let api = api_node(&database);
    database.count_completions();
    let mut doomed = worker_node(&database, 4);
    let survivor = worker_node(&database, 4);
    let doomed_pid = doomed.pid();
    let doomed_groups = cgroups_of(doomed_pid);
    assert!(
        !doomed_groups.is_empty(),
        "a worker makes cgroups for its boxes (runbox-{doomed_pid}-N)"
    );
    let started = Instant::now();
    let ids = submit_indexed(&api, 1000);
    assert_eq!(ids.len(), 1000);

    // Mid-way, while the doomed worker runs jobs of its own: SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let submissions = database.submissions();
        let done = submissions.values().filter(|s| s.state == "done").count();
        let running_on_doomed = submissions
            .values()
            .filter(|s| s.state == "running" && s.worker_id.as_deref() == Some(&doomed.id))
            .count();
        if done >= 300 && running_on_doomed > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "300 jobs were not done in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    let boxes = box_processes(&doomed_groups, doomed_pid);
    doomed.kill();
    let killed_at = started.elapsed();
    // Statements the dead worker had sent are finished by PostgreSQL meanwhile;
    // its leases (3 s) do not expire yet.
    std::thread::sleep(Duration::from_millis(500));
    let orphans: HashSet<String> = database
        .submissions()
        .into_iter()
        .filter(|(_, s)| s.state == "running" && s.worker_id.as_deref() == Some(&doomed.id))
        .map(|(id, _)| id)
        .collect();
    assert!(
        (1..=4).contains(&orphans.len()),
        "the killed worker held 1 to 4 jobs (its concurrency), not {}",
        orphans.len()
    );
    // Its cgroups stay behind until the next runbox starts and sweeps them.
    assert_eq!(cgroups_of(doomed_pid), doomed_groups);

    let replacement = worker_node(&database, 4);
    assert_eq!(
        cgroups_of(doomed_pid),
        Vec::<PathBuf>::new(),
        "the replacement worker sweeps the killed worker's cgroups at start"
    );
    for pid in &boxes {
        assert!(
            !in_cgroup_of(*pid, doomed_pid),
            "box process {pid} of the killed worker still runs"
        );
    }

    let submissions = database.wait_until("every submission done", Duration::from_secs(90), |s| {
        s.len() == 1000 && s.values().all(|s| s.state == "done")
    });
    let elapsed = started.elapsed();
    let completions = database.completions();
    for (index, id) in ids.iter().enumerate() {
        let stored = &submissions[id];
        assert_eq!(stored.status.as_deref(), Some("ok"), "{index}: {stored:?}");
        assert_eq!(
            stored.stdout.as_deref(),
            Some(format!("{index}\n").as_str()),
            "{index}: {stored:?}"
        );
        if orphans.contains(id) {
            // Claimed by the dead worker, then run again elsewhere.
            assert_eq!(stored.attempts, 2, "{index}: {stored:?}");
            assert_ne!(stored.worker_id.as_deref(), Some(doomed.id.as_str()));
        } else {
            assert_eq!(stored.attempts, 1, "{index}: {stored:?}");
        }
        // Exactly one result was ever written, by the attempt that held the lease.
        assert_eq!(
            completions.get(id).map(Vec::as_slice),
            Some(&[(stored.worker_id.clone(), stored.attempts)][..]),
            "{index} was completed other than once"
        );
    }
    // Every worker still alive ran some, the dead one's results before it died.
    let by_worker = |worker: &str| {
        submissions
            .values()
            .filter(|s| s.worker_id.as_deref() == Some(worker))
            .count()
    };
    assert!(by_worker(&doomed.id) > 0);
    assert!(by_worker(&survivor.id) > 0);
    assert!(by_worker(&replacement.id) > 0);
    assert_eq!(
        by_worker(&doomed.id) + by_worker(&survivor.id) + by_worker(&replacement.id),
        1000
    );
    for log in [survivor.log(), replacement.log()] {
        assert!(!log.contains("lease was lost"), "{log}");
    }
    assert_eq!(database.count("queued") + database.count("running"), 0);
    eprintln!(
        "1000 submissions: worker killed at {killed_at:?} with {} running, all done at {elapsed:?}",
        orphans.len()
    );

    // Nothing of the fleet is left: no process, no cgroup.
    let pids = [api.pid(), survivor.pid(), replacement.pid(), doomed_pid];
    assert!(api.stop().success());
    assert!(survivor.stop().success());
    assert!(replacement.stop().success());
    doctor();
    for pid in pids {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{pid} runs");
        assert_eq!(cgroups_of(pid), Vec::<PathBuf>::new(), "cgroups of {pid}");
    }
}

#[test]
fn a_worker_frozen_past_its_lease_cannot_complete_jobs_another_worker_took_over() {
    let database = Database::create("frozen");
    let api = api_node(&database);
    database.count_completions();
    let frozen = worker_node(&database, 2);
    let slow = |i: usize| json!({"language": "bash", "source": format!("sleep 1; echo {i}")});
    let created = api.post_expect(
        "/api/v1/submissions/batch",
        &json!({"submissions": [slow(0), slow(1)]}),
        None,
        202,
    );
    let ids: Vec<String> = created["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    database.wait_until(
        "both running on the first worker",
        Duration::from_secs(30),
        |s| {
            s.values()
                .filter(|s| s.state == "running" && s.worker_id.as_deref() == Some(&frozen.id))
                .count()
                == 2
        },
    );
    // Frozen (SIGSTOP): it stops renewing, its leases expire and an API node's
    // recovery queues the jobs again.
    frozen.signal("STOP");
    database.wait_until("both queued again", Duration::from_secs(30), |s| {
        s.values().all(|s| s.state == "queued" && s.attempts == 1)
    });
    let other = worker_node(&database, 2);
    let done = database.wait_until(
        "both done by the other worker",
        Duration::from_secs(30),
        |s| s.values().all(|s| s.state == "done"),
    );
    // Thawed, the first worker finishes its runs and tries to complete them: each
    // try is either refused (and logged) or, if leases did not hold, lands as a
    // second completion.
    frozen.signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    let tried = |id: &String| {
        let refused = frozen
            .log()
            .lines()
            .any(|l| l.contains("result discarded") && l.contains(id.as_str()));
        refused || database.completions().get(id).is_some_and(|c| c.len() > 1)
    };
    while !ids.iter().all(tried) {
        assert!(
            Instant::now() < deadline,
            "the thawed worker did not try to complete both jobs: {}",
            frozen.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = database.submissions();
    let completions = database.completions();
    for (i, id) in ids.iter().enumerate() {
        let stored = &after[id];
        assert_eq!(stored.worker_id.as_deref(), Some(other.id.as_str()));
        assert_eq!(stored.attempts, 2);
        assert_eq!(stored.stdout.as_deref(), Some(format!("{i}\n").as_str()));
        assert_eq!(
            stored.finished_ms, done[id].finished_ms,
            "the result changed"
        );
        assert_eq!(
            completions[id],
            [(Some(other.id.clone()), 2)],
            "only the second attempt completed"
        );
    }
}

#[test]
fn a_waiting_request_answers_as_soon_as_a_worker_finishes() {
    let _alone = TIMED.lock().unwrap_or_else(|p| p.into_inner());
    let database = Database::create("wait");
    let api = api_node(&database);
    let _worker = worker_node(&database, 1);
    let program = |i: usize| json!({"language": "bash", "source": format!("echo {i}")});
    // The first run pays for version detection.
    api.post_expect(
        "/api/v1/submissions?wait=true&timeout=30",
        &program(0),
        None,
        200,
    );
    let mut waits = Vec::new();
    for i in 1..=10 {
        let started = Instant::now();
        let done = api.post_expect(
            "/api/v1/submissions?wait=true&timeout=10",
            &program(i),
            None,
            200,
        );
        waits.push(started.elapsed());
        assert_eq!(done["state"], "done");
        assert_eq!(done["result"]["run"]["stdout"], format!("{i}\n"));
        // Let the worker go back to sleep on its wake-ups.
        std::thread::sleep(Duration::from_millis(150));
    }
    waits.sort();
    let median = waits[waits.len() / 2];
    eprintln!("wait=true answered in {waits:?}");
    // Without wake-ups, an idle worker looks for jobs once a second, counted from
    // its last look, right after the previous job: each of these jobs, sent some
    // 150 ms later, would wait about 800 ms. The API node does not poll at all:
    // without its wake-up it would answer 202 after the timeout.
    assert!(
        median < Duration::from_millis(400),
        "wait=true answered in {waits:?}: the wake-ups are not working"
    );
}

#[test]
fn a_rate_limit_holds_across_two_api_nodes() {
    let database = Database::create("rate");
    let first = api_node(&database);
    let second = api_node(&database);
    let key = support::create_key_in(
        &["--database", &database.url],
        "slow",
        &["--rate", "1/m", "--burst", "2"],
    );
    first.get_expect("/api/v1/languages", Some(&key), 200);
    second.get_expect("/api/v1/languages", Some(&key), 200);
    for node in [&first, &second] {
        let response = node.get("/api/v1/languages", Some(&key));
        assert_eq!(response.status().as_u16(), 429);
        assert!(response.headers().contains_key("retry-after"));
    }
}

#[test]
fn a_webhook_is_sent_once_by_a_fleet_of_two_api_nodes_and_two_workers() {
    let database = Database::create("webhook");
    let apis = [api_node(&database), api_node(&database)];
    let _workers = [worker_node(&database, 2), worker_node(&database, 2)];
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    {
        let received = received.clone();
        std::thread::spawn(move || {
            for stream in receiver.incoming().flatten() {
                let (headers, body) = read_request(stream);
                let id = headers
                    .get("x-runbox-submission")
                    .cloned()
                    .unwrap_or_default();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                received.lock().unwrap().push((id, body));
            }
        });
    }
    let mut ids = Vec::new();
    for i in 0..10 {
        let created = apis[i % 2].post_expect(
            "/api/v1/submissions",
            &json!({"language": "bash", "source": format!("echo {i}"),
                    "callback_url": format!("http://127.0.0.1:{port}/hook")}),
            None,
            202,
        );
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let s = apis[0].get_expect(&format!("/api/v1/submissions/{id}"), None, 200);
            if s["webhook"]["delivered"] == true {
                assert_eq!(s["webhook"]["attempts"], 1);
                break;
            }
            assert!(Instant::now() < deadline, "webhook not delivered: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Time for a second delivery, if any node were to send one.
    std::thread::sleep(Duration::from_secs(2));
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 10, "{received:?}");
    for (i, id) in ids.iter().enumerate() {
        let hooks: Vec<&Value> = received
            .iter()
            .filter(|(got, _)| got == id)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(
            hooks.len(),
            1,
            "submission {i} got {} webhooks",
            hooks.len()
        );
        assert_eq!(hooks[0]["id"], id.as_str());
        assert_eq!(hooks[0]["run"]["stdout"], format!("{i}\n"));
    }
}

/// Reads one HTTP request (headers lower-cased, body by Content-Length) and answers 200.
fn read_request(stream: std::net::TcpStream) -> (HashMap<String, String>, Vec<u8>) {
    let mut reader = BufReader::new(stream);
    let mut headers = HashMap::new();
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
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
    let _ = reader.read_exact(&mut body);
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    (headers, body)
}
