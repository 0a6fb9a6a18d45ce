//! What only the PostgreSQL store does: wake-ups through LISTEN/NOTIFY between
//! nodes, and its connection errors. Each test opens two stores on its own
//! database, as two nodes of a fleet would. (Nodes racing for jobs and limits is
//! part of the behaviour suite, on both backends.)

mod support;

use std::time::Duration;

use runbox_store::{Error, StoreEvent};
use support::{Backend, completion, expect_event, queued};

const A_WHILE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wake_ups_cross_from_one_node_to_another() {
    let backend = Backend::postgres().await;
    let (api, worker) = (&backend.store, backend.another_node().await);
    let mut worker_hears = worker.subscribe();
    let mut api_hears = api.subscribe();

    api.insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
    expect_event(&mut worker_hears, StoreEvent::JobQueued { id: "j".into() }).await;
    let job = worker
        .claim("w", A_WHILE, 1)
        .await
        .expect("claim")
        .remove(0);
    assert!(
        worker
            .complete(&completion("j", "w", job.attempt, "ok"))
            .await
            .expect("complete")
    );
    expect_event(&mut api_hears, StoreEvent::JobFinished { id: "j".into() }).await;
    drop(worker);
    backend.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_completion_wakes_nobody() {
    let backend = Backend::postgres().await;
    let other = backend.another_node().await;
    let mut hears = other.subscribe();
    backend
        .store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
    expect_event(&mut hears, StoreEvent::JobQueued { id: "j".into() }).await;
    assert!(
        !backend
            .store
            .complete(&completion("j", "nobody", 1, "ok"))
            .await
            .expect("complete")
    );
    // A marker sent after the refusal arrives first: nothing was sent for it.
    backend
        .store
        .insert_submission(&queued("marker", "python", 2))
        .await
        .expect("insert");
    let next = tokio::time::timeout(Duration::from_secs(5), hears.recv()).await;
    assert_eq!(
        next.expect("an event").expect("open"),
        StoreEvent::JobQueued {
            id: "marker".into()
        }
    );
    drop(other);
    backend.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_listens_again_after_losing_its_connection() {
    let backend = Backend::postgres().await;
    let node = backend.another_node().await;
    let mut hears = node.subscribe();

    // Cut every listening connection of this database (the other store's too).
    let pool = sqlx::PgPool::connect(backend.url()).await.expect("connect");
    let cut: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&pool)
    .await
    .expect("find the listeners");
    assert_eq!(cut.len(), 2, "one listening connection per store");
    for pid in cut {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&pool)
            .await
            .expect("terminate");
    }

    // Wake-ups sent while it reconnects are lost; those after arrive.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("after-{n}");
        backend
            .store
            .insert_submission(&queued(&id, "python", n))
            .await
            .expect("insert");
        match tokio::time::timeout(Duration::from_millis(500), hears.recv()).await {
            Ok(Ok(StoreEvent::JobQueued { .. })) => break,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) if tokio::time::Instant::now() < deadline => {}
            Err(_) => panic!("no wake-up within 15 s of the listener's connection being cut"),
        }
    }
    pool.close().await;
    drop(node);
    backend.finish().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    match runbox_store::open("postgres://runbox:hunter2@127.0.0.1:1/runbox").await {
        Err(Error::Connect { url, .. }) => {
            assert_eq!(url, "postgres://runbox:***@127.0.0.1:1/runbox")
        }
        Err(other) => panic!("expected a Connect error, got {other}"),
        Ok(_) => panic!("connected to nothing"),
    }
}
