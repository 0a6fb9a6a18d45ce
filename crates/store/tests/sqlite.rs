//! What only the SQLite store does: its URLs, its file, several stores opening one
//! new file. (Several stores on one file racing for jobs and limits is part of the
//! behaviour suite, as two nodes.)

mod support;

use std::str::FromStr;
use std::sync::Arc;

use runbox_store::{Error, JobState, SqliteStore, Store};
use support::queued;

#[tokio::test]
async fn an_in_memory_database_is_one_database_for_every_query() {
    let store = runbox_store::open("sqlite::memory:").await.expect("open");
    assert_eq!(store.kind(), "sqlite");
    for n in 0..20 {
        store
            .insert_submission(&queued(&format!("j-{n}"), "python", n))
            .await
            .expect("insert");
    }
    // Reads and writes from many tasks at once all see the one database.
    let mut readers = tokio::task::JoinSet::new();
    for n in 0..8 {
        let store = Arc::clone(&store);
        readers.spawn(async move {
            store
                .submission(&format!("j-{n}"))
                .await
                .expect("read")
                .is_some()
        });
    }
    while let Some(found) = readers.join_next().await {
        assert!(found.expect("a reader panicked"));
    }
    assert_eq!(
        store
            .claim("w", std::time::Duration::from_secs(30), 100)
            .await
            .expect("claim")
            .len(),
        20
    );

    let other = runbox_store::open("sqlite::memory:")
        .await
        .expect("open another");
    assert_eq!(
        other.submission("j-0").await.expect("read"),
        None,
        "each in-memory store is its own"
    );
}

#[tokio::test]
async fn a_file_database_is_created_with_its_directory_and_reopened_with_its_data() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("data").join("deeper").join("runbox.db");
    let url = format!("sqlite://{}", path.display());
    {
        let store = SqliteStore::connect(&url).await.expect("create");
        store
            .insert_submission(&queued("kept", "python", 1))
            .await
            .expect("insert");
    }
    assert!(path.exists());
    // Opening again applies no migration twice and keeps the data.
    let store = runbox_store::open(&url).await.expect("reopen");
    let kept = store.submission("kept").await.expect("read").expect("kept");
    assert_eq!(kept.state, JobState::Queued);

    let journal: String = {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let mut conn = sqlx::ConnectOptions::connect(&options)
            .await
            .expect("connect");
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .expect("pragma")
    };
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn a_url_of_no_supported_database_is_refused_with_the_password_hidden() {
    match runbox_store::open("mysql://root:hunter2@db/runbox").await {
        Err(Error::UnsupportedUrl(url)) => assert_eq!(url, "mysql://root:***@db/runbox"),
        Err(other) => panic!("expected UnsupportedUrl, got {other}"),
        Ok(_) => panic!("a MySQL URL was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_opening_a_new_file_at_once_all_open_it() {
    // As `runbox serve` and `runbox keys create` started together on a fresh data
    // directory: both find no schema and both try to create it.
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("runbox.db").display());
        let mut openers = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let url = url.clone();
            openers.spawn(async move { SqliteStore::connect(&url).await.map(|_| ()) });
        }
        while let Some(opened) = openers.join_next().await {
            opened.expect("an opener panicked").expect("open");
        }
    }
}

#[tokio::test]
async fn a_database_of_the_old_column_order_keeps_its_submissions_when_reordered() {
    // A file as runbox left it before migration 0004 (request and result stored
    // in the middle of the row), with a finished submission in it.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).expect("a migrations directory");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .expect("the SQLite migrations")
    {
        let path = entry.expect("a migration").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if name.as_str() < "0004" {
            std::fs::copy(&path, old.join(&name)).expect("copy a migration");
        }
    }
    let url = format!("sqlite://{}", dir.path().join("runbox.db").display());
    {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .expect("a URL")
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .expect("the old migrations")
            .run(&pool)
            .await
            .expect("migrate to 0003");
        sqlx::query(
            "INSERT INTO submissions (id, key_id, language, state, status, request, result, \
             attempts, worker_id, created_ms, finished_ms, webhook_taken) \
             VALUES ('old', 'k', 'c', 'done', 'ok', '{\"source\":1}', '{\"stdout\":\"hi\"}', \
             1, 'w', 10, 20, 1)",
        )
        .execute(&pool)
        .await
        .expect("insert an old submission");
        pool.close().await;
    }

    let store = SqliteStore::connect(&url).await.expect("open and migrate");
    let kept = store.submission("old").await.expect("read").expect("kept");
    assert_eq!(kept.state, JobState::Done);
    assert_eq!(kept.key_id.as_deref(), Some("k"));
    assert_eq!(kept.request, Some(serde_json::json!({"source": 1})));
    assert_eq!(kept.result, Some(serde_json::json!({"stdout": "hi"})));
    assert_eq!((kept.created_ms, kept.finished_ms), (10, Some(20)));
    assert!(
        !store.take_webhook("old").await.expect("take"),
        "still taken"
    );
    let listing = store
        .list_submissions(Some("k"), support::page(1, 10))
        .await
        .expect("list");
    assert_eq!(listing.total, 1);
}
