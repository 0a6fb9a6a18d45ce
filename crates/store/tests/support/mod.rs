//! Stores to test against: a fresh SQLite file, or a fresh PostgreSQL database on
//! the throwaway cluster `scripts/postgres-test-cluster.sh` starts.

#![allow(dead_code)] // each test binary uses a part of it

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runbox_store::{
    Completion, JobState, NewApiKey, NewSubmission, Page, Scope, SqliteStore, Store, StoreEvent,
    Submission, WorkerInfo, now_ms,
};
use sqlx::Connection;

/// The variable naming the test cluster (a database on it to create others from).
pub const POSTGRES_URL_VAR: &str = "RUNBOX_TEST_POSTGRES_URL";

/// One store under test and how to open a second one on the same database (a
/// second node).
pub struct Backend {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The URL of its database.
    url: String,
    /// The SQLite file's directory, removed at the end.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database this test has to itself.
    postgres: Option<String>,
}

impl Backend {
    /// A store on a new SQLite file in a temporary directory.
    pub async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("runbox.db").display());
        let store = SqliteStore::connect(&url)
            .await
            .expect("open a SQLite store");
        Backend {
            store: Arc::new(store),
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A store on a database of the test cluster that no other running test uses,
    /// so the tests run in parallel, and NOTIFY (scoped to a database) stays within a
    /// test. Databases are made as needed and emptied for the next test when a test
    /// finishes (making one costs far more than emptying it).
    pub async fn postgres() -> Backend {
        let cluster = postgres_url();
        let free = FREE_DATABASES.lock().map_or(None, |mut free| free.pop());
        let name = match free {
            Some(name) => name,
            None => {
                let name = unique_name();
                let mut admin = sqlx::PgConnection::connect(&cluster)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot connect to the test cluster at {cluster}: {e}")
                    });
                if !SWEPT.swap(true, Ordering::Relaxed) {
                    drop_databases_of_finished_runs(&mut admin).await;
                }
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
                let _ = admin.close().await;
                name
            }
        };
        let url = with_database(&cluster, &name);
        let store = runbox_store::open(&url)
            .await
            .expect("open a PostgreSQL store");
        Backend {
            store,
            url,
            _dir: None,
            postgres: Some(name),
        }
    }

    /// The URL of the store's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A second store on the same database, as another node would open it.
    pub async fn another_node(&self) -> Arc<dyn Store> {
        runbox_store::open(&self.url)
            .await
            .expect("open a second store on the same database")
    }

    /// Closes the store and empties its database for the next test (a failed test
    /// never gets here: its database stays on the throwaway cluster, to look at).
    pub async fn finish(self) {
        drop(self.store);
        if let Some(name) = self.postgres {
            let mut db = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect to empty the test database");
            sqlx::query(
                "TRUNCATE submissions, api_keys, audit_log, audit_refusals, workers, \
                 rate_buckets, concurrency_slots RESTART IDENTITY",
            )
            .execute(&mut db)
            .await
            .expect("empty the test database");
            let _ = db.close().await;
            if let Ok(mut free) = FREE_DATABASES.lock() {
                free.push(name);
            }
        }
    }
}

/// Test databases of this test binary that no running test uses.
static FREE_DATABASES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether this test binary dropped the databases earlier runs left.
static SWEPT: AtomicBool = AtomicBool::new(false);

/// Drops the test databases of test processes that are gone (named by
/// [`unique_name`] after their process id): the emptied ones a run keeps for reuse,
/// and those of failed tests once there was a run to look at them.
async fn drop_databases_of_finished_runs(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name
            .split('_')
            .nth(1)
            .and_then(|pid| pid.parse::<u32>().ok());
        let gone = pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if gone {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// The test cluster's URL. A test that needs PostgreSQL fails without it, never
/// passes silently.
pub fn postgres_url() -> String {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => panic!(
            "{POSTGRES_URL_VAR} is not set on CI: scripts/test.sh starts the test cluster \
             (scripts/postgres-test-cluster.sh) before cargo test; run the tests through it"
        ),
        _ => panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL store tests need a server. Start a \
             throwaway one with `eval \"$(scripts/postgres-test-cluster.sh start)\"` (stop it \
             with `scripts/postgres-test-cluster.sh stop`), or run scripts/test.sh"
        ),
    }
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A database name no other test (of this run or another) uses.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A queued submission of `language` that arrived at `created_ms`.
pub fn queued(id: &str, language: &str, created_ms: i64) -> NewSubmission {
    NewSubmission {
        id: id.to_string(),
        key_id: None,
        client_addr: Some("192.0.2.7".to_string()),
        language: language.to_string(),
        request: serde_json::json!({"language": language, "source": format!("run {id}")}),
        state: JobState::Queued,
        worker_id: None,
        callback_url: None,
        created_ms,
    }
}

/// A queued submission of key `key_id`.
pub fn queued_for(id: &str, key_id: Option<&str>, created_ms: i64) -> NewSubmission {
    NewSubmission {
        key_id: key_id.map(str::to_string),
        ..queued(id, "python", created_ms)
    }
}

/// The completion of attempt `attempt` of job `id` by `worker`.
pub fn completion(id: &str, worker: &str, attempt: u32, status: &str) -> Completion {
    Completion {
        id: id.to_string(),
        worker_id: worker.to_string(),
        attempt,
        status: status.to_string(),
        result: serde_json::json!({"id": id, "status": status, "by": worker}),
        finished_ms: now_ms(),
        scrubbed_request: None,
    }
}

/// A key named `name`.
pub fn new_key(id: &str, name: &str) -> NewApiKey {
    NewApiKey {
        id: id.to_string(),
        name: name.to_string(),
        hash: format!("hash-of-{id}"),
        scope: Scope::Execute,
        rate_per_second: Some(2.5),
        rate_burst: Some(10),
        max_concurrent: Some(4),
        webhook_secret: format!("secret-of-{id}"),
        created_ms: now_ms(),
    }
}

/// A worker's heartbeat at `last_heartbeat_ms`.
pub fn worker(id: &str, running: u32, last_heartbeat_ms: i64) -> WorkerInfo {
    WorkerInfo {
        id: id.to_string(),
        host: "node-1".to_string(),
        concurrency: 4,
        running,
        started_ms: last_heartbeat_ms - 1000,
        last_heartbeat_ms,
        version: "0.1.0".to_string(),
    }
}

/// Waits (up to five seconds) for `wanted` on `events`, skipping other events.
pub async fn expect_event(
    events: &mut tokio::sync::broadcast::Receiver<StoreEvent>,
    wanted: StoreEvent,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if event == wanted => return,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("the event channel closed while waiting for {wanted:?}: {e}"),
            Err(_) => panic!("no {wanted:?} within five seconds"),
        }
    }
}

/// Stores queued `python` submissions, given as `(id, created_ms)`, one by one.
pub async fn insert_queued(store: &dyn Store, jobs: &[(&str, i64)]) {
    for &(id, created_ms) in jobs {
        store
            .insert_submission(&queued(id, "python", created_ms))
            .await
            .unwrap_or_else(|e| panic!("cannot store submission {id}: {e}"));
    }
}

/// The submission `id`, which must exist.
pub async fn get(store: &dyn Store, id: &str) -> Submission {
    store
        .submission(id)
        .await
        .expect("read a submission")
        .unwrap_or_else(|| panic!("submission {id} is missing"))
}

/// Page `page` of `per_page` items.
pub fn page(page: u32, per_page: u32) -> Page {
    Page { page, per_page }
}

/// Claims until the queue is empty from `tasks` concurrent claimers spread over
/// `stores` (nodes), three jobs at a time; returns every claimed id with its
/// attempt.
pub async fn claim_everything(stores: &[Arc<dyn Store>], tasks: usize) -> Vec<(String, u32)> {
    let mut claimers = tokio::task::JoinSet::new();
    for n in 0..tasks {
        let store = Arc::clone(&stores[n % stores.len()]);
        claimers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = store
                    .claim(&format!("worker-{n}"), Duration::from_secs(60), 3)
                    .await
                    .expect("claim");
                if jobs.is_empty() {
                    return mine;
                }
                mine.extend(jobs.into_iter().map(|j| (j.id, j.attempt)));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = claimers.join_next().await {
        all.extend(mine.expect("a claimer panicked"));
    }
    all
}
