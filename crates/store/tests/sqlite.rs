//! What only the SQLite store does: its URLs, its file, several stores opening one
//! new file. (Several stores on one file racing for jobs and limits is part of the
//! behaviour suite, as two nodes.)

mod support;

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
