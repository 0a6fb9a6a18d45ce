//! What only the PostgreSQL store does: several nodes on one database, wake-ups
//! through LISTEN/NOTIFY. Each test opens two stores on its own database, as two
//! nodes of a fleet would.

mod support;

use std::sync::Arc;
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
async fn two_nodes_claiming_at_once_never_share_a_job() {
    let backend = Backend::postgres().await;
    let nodes = [Arc::clone(&backend.store), backend.another_node().await];
    let jobs: Vec<_> = (0..200)
        .map(|n| queued(&format!("j-{n:03}"), "python", n))
        .collect();
    nodes[0].insert_submissions(&jobs).await.expect("insert");

    let mut claimers = tokio::task::JoinSet::new();
    for n in 0..8 {
        let store = Arc::clone(&nodes[n % 2]);
        claimers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = store
                    .claim(&format!("w-{n}"), A_WHILE, 3)
                    .await
                    .expect("claim");
                if jobs.is_empty() {
                    return mine;
                }
                mine.extend(jobs.into_iter().map(|j| j.id));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = claimers.join_next().await {
        all.extend(mine.expect("a claimer panicked"));
    }
    all.sort();
    let claimed = all.len();
    all.dedup();
    assert_eq!((claimed, all.len()), (200, 200));
    drop(nodes);
    backend.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_limits_hold_across_nodes() {
    let backend = Backend::postgres().await;
    let nodes = [Arc::clone(&backend.store), backend.another_node().await];
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = Arc::clone(&nodes[n % 2]);
        tasks.spawn(async move {
            let slot = store
                .acquire_slot("key:k", &format!("job-{n}"), 3, A_WHILE)
                .await
                .expect("acquire");
            let token = store
                .take_token("key:k", 1.0 / 3600.0, 4)
                .await
                .expect("take")
                .is_none();
            (slot, token)
        });
    }
    let (mut slots, mut tokens) = (0, 0);
    while let Some(got) = tasks.join_next().await {
        let (slot, token) = got.expect("a task panicked");
        slots += usize::from(slot);
        tokens += usize::from(token);
    }
    assert_eq!((slots, tokens), (3, 4));
    drop(nodes);
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
