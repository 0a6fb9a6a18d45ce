//! The behaviour of a store, the same on both backends: each behaviour below is an
//! async function run once against SQLite (`sqlite::...`) and once against
//! PostgreSQL (`postgres::...`, which needs `RUNBOX_TEST_POSTGRES_URL`, see
//! `scripts/postgres-test-cluster.sh`).

mod support;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use runbox_store::{Error, JobState, NewSubmission, Store, StoreEvent, WebhookDelivery, now_ms};
use support::{
    Backend, claim_everything, completion, expect_event, get, insert_queued, new_key, page, queued,
    queued_for, worker,
};

/// Runs each named behaviour against both backends, as `sqlite::NAME` and
/// `postgres::NAME`, on a multi-threaded runtime so concurrent tasks really race.
macro_rules! on_both_backends {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $behaviour() {
                    let backend = crate::support::Backend::sqlite().await;
                    crate::$behaviour(&backend).await;
                    backend.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $behaviour() {
                    let backend = crate::support::Backend::postgres().await;
                    crate::$behaviour(&backend).await;
                    backend.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    the_store_answers_and_names_its_kind,
    a_submission_is_read_back_with_every_field,
    a_missing_submission_is_none,
    listings_page_a_keys_submissions_newest_first_with_the_total,
    anonymous_submissions_are_listed_apart_from_keyed_ones,
    a_listing_reads_no_request_or_result_however_large,
    a_submission_is_deleted_once,
    a_batch_is_stored_and_queued_at_once,
    claim_hands_out_the_oldest_jobs_first_up_to_the_limit,
    concurrent_claimers_on_two_nodes_get_every_job_exactly_once,
    renewal_extends_only_the_leases_the_worker_still_holds,
    an_expired_lease_puts_the_job_back_in_the_queue,
    a_job_fails_with_a_clear_error_once_its_last_attempt_expires,
    a_duplicate_completion_from_a_worker_that_lost_its_lease_changes_nothing,
    a_worker_whose_lease_ran_out_unnoticed_still_renews_and_completes,
    completion_stores_the_result_and_the_scrubbed_request,
    a_submission_stored_as_running_is_completed_by_its_node,
    queue_depth_counts_queued_jobs_per_language,
    a_webhook_is_taken_exactly_once_under_concurrency,
    a_webhook_delivery_is_recorded,
    the_token_bucket_refuses_with_a_retry_after_and_refills,
    the_token_bucket_grants_no_more_than_its_burst_on_two_nodes_at_once,
    concurrency_slots_never_exceed_the_maximum_on_two_nodes_at_once,
    a_released_or_expired_slot_can_be_taken_again,
    a_renewed_slot_outlives_its_first_ttl,
    renewing_a_slot_that_is_not_held_is_false,
    a_key_is_created_listed_and_found_by_hash,
    a_duplicate_key_name_is_refused,
    a_key_is_revoked_by_id_or_by_name,
    the_audit_log_reads_newest_first,
    the_audit_log_cuts_long_fields_on_a_character_boundary,
    refused_requests_are_counted_in_one_row_per_minute_address_and_reason,
    audit_retention_deletes_only_what_came_before_the_cut_off,
    workers_heartbeat_are_listed_while_alive_and_removed,
    retention_deletes_only_finished_submissions_before_the_cut_off,
    subscribers_hear_queued_and_finished_jobs,
    recovery_tells_subscribers_what_it_did,
);

/// Lets a lease of a millisecond run out.
async fn let_leases_expire() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

const A_WHILE: Duration = Duration::from_secs(60);

async fn the_store_answers_and_names_its_kind(backend: &Backend) {
    backend.store.ping().await.expect("ping");
    assert!(["sqlite", "postgres"].contains(&backend.store.kind()));
}

async fn a_submission_is_read_back_with_every_field(backend: &Backend) {
    let store = &*backend.store;
    let new = NewSubmission {
        id: "s-1".into(),
        key_id: Some("k-1".into()),
        client_addr: Some("198.51.100.4".into()),
        language: "c".into(),
        request: serde_json::json!({"language": "c", "files": [{"name": "main.c", "content": "int main(){}"}],
                                    "limits": {"cpu_time_ms": 2000}, "unicode": "héllo ✓"}),
        state: JobState::Queued,
        worker_id: None,
        callback_url: Some("https://example.test/hook".into()),
        created_ms: 1_700_000_000_123,
    };
    store.insert_submission(&new).await.expect("insert");

    let stored = get(store, "s-1").await;
    assert_eq!(stored.id, "s-1");
    assert_eq!(stored.key_id.as_deref(), Some("k-1"));
    assert_eq!(stored.client_addr.as_deref(), Some("198.51.100.4"));
    assert_eq!(stored.language, "c");
    assert_eq!(stored.state, JobState::Queued);
    assert_eq!(stored.status, None);
    assert_eq!(stored.request, Some(new.request.clone()));
    assert_eq!(stored.result, None);
    assert_eq!(stored.error, None);
    assert_eq!(
        stored.callback_url.as_deref(),
        Some("https://example.test/hook")
    );
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.worker_id, None);
    assert_eq!(stored.created_ms, 1_700_000_000_123);
    assert_eq!(stored.started_ms, None);
    assert_eq!(stored.finished_ms, None);
    assert_eq!(stored.webhook, None);
}

async fn a_missing_submission_is_none(backend: &Backend) {
    assert_eq!(backend.store.submission("nope").await.expect("read"), None);
}

async fn listings_page_a_keys_submissions_newest_first_with_the_total(backend: &Backend) {
    let store = &*backend.store;
    for n in 1..=5 {
        store
            .insert_submission(&queued_for(&format!("k1-{n}"), Some("k1"), n * 10))
            .await
            .expect("insert");
    }
    store
        .insert_submission(&queued_for("k2-1", Some("k2"), 25))
        .await
        .expect("insert");

    let ids = |listing: &runbox_store::Listing| {
        listing
            .items
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };
    let first = store
        .list_submissions(Some("k1"), page(1, 2))
        .await
        .expect("list");
    assert_eq!(ids(&first), ["k1-5", "k1-4"]);
    assert_eq!(first.total, 5);
    let second = store
        .list_submissions(Some("k1"), page(2, 2))
        .await
        .expect("list");
    assert_eq!(ids(&second), ["k1-3", "k1-2"]);
    let last = store
        .list_submissions(Some("k1"), page(3, 2))
        .await
        .expect("list");
    assert_eq!(ids(&last), ["k1-1"]);
    assert_eq!(last.total, 5);
    let beyond = store
        .list_submissions(Some("k1"), page(9, 2))
        .await
        .expect("list");
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 5);
}

async fn anonymous_submissions_are_listed_apart_from_keyed_ones(backend: &Backend) {
    let store = &*backend.store;
    store
        .insert_submission(&queued_for("anon-1", None, 1))
        .await
        .expect("insert");
    store
        .insert_submission(&queued_for("anon-2", None, 2))
        .await
        .expect("insert");
    store
        .insert_submission(&queued_for("keyed", Some("k1"), 3))
        .await
        .expect("insert");

    let anonymous = store
        .list_submissions(None, page(1, 10))
        .await
        .expect("list");
    let ids: Vec<_> = anonymous.items.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["anon-2", "anon-1"]);
    assert_eq!(anonymous.total, 2);
}

async fn a_submission_is_deleted_once(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("gone", 1)]).await;
    assert!(store.delete_submission("gone").await.expect("delete"));
    assert!(!store.delete_submission("gone").await.expect("delete again"));
    assert_eq!(store.submission("gone").await.expect("read"), None);
}

async fn a_batch_is_stored_and_queued_at_once(backend: &Backend) {
    let store = &*backend.store;
    let batch: Vec<_> = (0..5)
        .map(|n| queued(&format!("b-{n}"), "python", n))
        .collect();
    store
        .insert_submissions(&batch)
        .await
        .expect("insert a batch");
    let claimed = store.claim("w", A_WHILE, 10).await.expect("claim");
    let ids: Vec<_> = claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["b-0", "b-1", "b-2", "b-3", "b-4"]);

    // A batch with a clash is stored not at all.
    let clash = vec![queued("b-new", "python", 9), queued("b-0", "python", 9)];
    assert!(store.insert_submissions(&clash).await.is_err());
    assert_eq!(store.submission("b-new").await.expect("read"), None);
}

async fn claim_hands_out_the_oldest_jobs_first_up_to_the_limit(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("c", 30), ("a", 10), ("b", 20), ("d", 40)]).await;
    let first = store.claim("w-1", A_WHILE, 2).await.expect("claim");
    let ids: Vec<_> = first.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(first.iter().all(|j| j.attempt == 1));
    assert_eq!(
        first[0].request,
        serde_json::json!({"language": "python", "source": "run a"})
    );
    assert_eq!(first[0].created_ms, 10);

    let running = get(store, "a").await;
    assert_eq!(running.state, JobState::Running);
    assert_eq!(running.worker_id.as_deref(), Some("w-1"));
    assert_eq!(running.attempts, 1);
    assert!(running.started_ms.is_some());

    let rest = store.claim("w-2", A_WHILE, 10).await.expect("claim");
    let ids: Vec<_> = rest.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["c", "d"]);
    assert!(
        store
            .claim("w-3", A_WHILE, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        store
            .claim("w-3", A_WHILE, 0)
            .await
            .expect("claim none")
            .is_empty()
    );
}

async fn concurrent_claimers_on_two_nodes_get_every_job_exactly_once(backend: &Backend) {
    // Two stores on one database stand for two nodes (for SQLite, two processes
    // sharing only the file lock); four claimers race on each.
    let nodes = [Arc::clone(&backend.store), backend.another_node().await];
    let jobs: Vec<_> = (0..200)
        .map(|n| queued(&format!("j-{n:03}"), "python", n))
        .collect();
    nodes[0].insert_submissions(&jobs).await.expect("insert");

    let claimed = claim_everything(&nodes, 8).await;
    assert_eq!(
        claimed.len(),
        200,
        "every job is claimed once, no more, no less"
    );
    let distinct: HashSet<_> = claimed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(distinct.len(), 200, "no job went to two claimers");
    assert!(claimed.iter().all(|(_, attempt)| *attempt == 1));
}

async fn renewal_extends_only_the_leases_the_worker_still_holds(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("a", 1), ("b", 2)]).await;
    store
        .claim("w-1", Duration::from_millis(150), 2)
        .await
        .expect("claim");
    let ids = vec!["a".to_string(), "b".to_string(), "unknown".to_string()];
    let renewed: BTreeSet<_> = store
        .renew("w-1", &ids, A_WHILE)
        .await
        .expect("renew")
        .into_iter()
        .collect();
    assert_eq!(renewed, BTreeSet::from(["a".to_string(), "b".to_string()]));
    assert!(
        store
            .renew("w-2", &ids, A_WHILE)
            .await
            .expect("renew")
            .is_empty(),
        "not w-2's jobs"
    );
    assert!(
        store
            .renew("w-1", &[], A_WHILE)
            .await
            .expect("renew nothing")
            .is_empty()
    );

    // The renewed leases outlive the first ones.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.recover_expired(3).await.expect("recover").is_empty());

    // A lease that expired and went to another worker is no longer renewable.
    insert_queued(store, &[("c", 3)]).await;
    store
        .claim("w-1", Duration::from_millis(1), 1)
        .await
        .expect("claim");
    let_leases_expire().await;
    store.recover_expired(3).await.expect("recover");
    let again = store.claim("w-2", A_WHILE, 1).await.expect("claim");
    assert_eq!(again[0].id, "c");
    assert!(
        store
            .renew("w-1", &["c".to_string()], A_WHILE)
            .await
            .expect("renew")
            .is_empty()
    );
    assert_eq!(
        store
            .renew("w-2", &["c".to_string()], A_WHILE)
            .await
            .expect("renew"),
        ["c"]
    );
}

async fn an_expired_lease_puts_the_job_back_in_the_queue(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("j", 1)]).await;
    store
        .claim("w-dead", Duration::from_millis(1), 1)
        .await
        .expect("claim");
    let_leases_expire().await;

    let recovered = store.recover_expired(3).await.expect("recover");
    assert_eq!(
        recovered,
        [runbox_store::Recovery {
            id: "j".into(),
            worker_id: Some("w-dead".into()),
            requeued: true
        }]
    );
    let job = get(store, "j").await;
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.attempts, 1);
    assert!(
        store
            .recover_expired(3)
            .await
            .expect("recover again")
            .is_empty()
    );

    let again = store.claim("w-2", A_WHILE, 1).await.expect("claim");
    assert_eq!(again[0].id, "j");
    assert_eq!(again[0].attempt, 2);
}

async fn a_job_fails_with_a_clear_error_once_its_last_attempt_expires(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("j", 1)]).await;
    for worker in ["w-1", "w-2"] {
        store
            .claim(worker, Duration::from_millis(1), 1)
            .await
            .expect("claim");
        let_leases_expire().await;
        store.recover_expired(2).await.expect("recover");
    }
    let job = get(store, "j").await;
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.status.as_deref(), Some("internal_error"));
    assert_eq!(job.attempts, 2);
    assert_eq!(job.result, None);
    assert!(job.finished_ms.is_some());
    let error = job.error.expect("an error saying why there is no result");
    assert!(error.contains("2 of 2 attempts"), "{error}");
    assert!(error.contains("w-2"), "{error}");
    assert!(
        store
            .claim("w-3", A_WHILE, 1)
            .await
            .expect("claim")
            .is_empty(),
        "it is not retried"
    );
}

async fn a_duplicate_completion_from_a_worker_that_lost_its_lease_changes_nothing(
    backend: &Backend,
) {
    let store = &*backend.store;
    insert_queued(store, &[("j", 1)]).await;
    store
        .claim("w-slow", Duration::from_millis(1), 1)
        .await
        .expect("claim");
    let_leases_expire().await;
    store.recover_expired(3).await.expect("recover");
    store.claim("w-new", A_WHILE, 1).await.expect("claim");

    assert!(
        !store
            .complete(&completion("j", "w-slow", 1, "ok"))
            .await
            .expect("complete")
    );
    let job = get(store, "j").await;
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.worker_id.as_deref(), Some("w-new"));
    assert_eq!(job.result, None);

    // The right worker, but a stale attempt number, is refused too.
    assert!(
        !store
            .complete(&completion("j", "w-new", 1, "ok"))
            .await
            .expect("complete")
    );
    assert!(
        store
            .complete(&completion("j", "w-new", 2, "accepted"))
            .await
            .expect("complete")
    );
    assert!(
        !store
            .complete(&completion("j", "w-new", 2, "wrong_answer"))
            .await
            .expect("complete twice")
    );
    let job = get(store, "j").await;
    assert_eq!(job.status.as_deref(), Some("accepted"));
    assert_eq!(job.result.expect("a result")["by"], "w-new");
}

async fn a_worker_whose_lease_ran_out_unnoticed_still_renews_and_completes(backend: &Backend) {
    // Nobody recovered the job meanwhile, so it is still the worker's own.
    let store = &*backend.store;
    insert_queued(store, &[("renewed", 1), ("completed", 2)]).await;
    store
        .claim("w", Duration::from_millis(1), 2)
        .await
        .expect("claim");
    let_leases_expire().await;
    let renewed = store
        .renew("w", &["renewed".to_string()], A_WHILE)
        .await
        .expect("renew");
    assert_eq!(renewed, ["renewed"]);
    assert!(
        store
            .complete(&completion("completed", "w", 1, "ok"))
            .await
            .expect("complete")
    );
    assert!(store.recover_expired(3).await.expect("recover").is_empty());
}

async fn completion_stores_the_result_and_the_scrubbed_request(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("j", 1)]).await;
    let job = store.claim("w", A_WHILE, 1).await.expect("claim").remove(0);
    let mut done = completion("j", "w", job.attempt, "ok");
    done.finished_ms = 1_800_000_000_000;
    done.scrubbed_request = Some(serde_json::json!({"language": "python"}));
    assert!(store.complete(&done).await.expect("complete"));

    let job = get(store, "j").await;
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.status.as_deref(), Some("ok"));
    assert_eq!(job.result, Some(done.result));
    assert_eq!(job.request, Some(serde_json::json!({"language": "python"})));
    assert_eq!(job.finished_ms, Some(1_800_000_000_000));
    assert_eq!(job.error, None);
    assert!(
        store.recover_expired(1).await.expect("recover").is_empty(),
        "done jobs hold no lease"
    );
}

async fn a_submission_stored_as_running_is_completed_by_its_node(backend: &Backend) {
    let store = &*backend.store;
    let now = runbox_store::now_ms();
    let running = NewSubmission {
        state: JobState::Running,
        worker_id: Some("api-1".into()),
        ..queued("sync", "python", now)
    };
    store.insert_submission(&running).await.expect("insert");
    let stored = get(store, "sync").await;
    assert_eq!(stored.state, JobState::Running);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.worker_id.as_deref(), Some("api-1"));
    assert_eq!(stored.started_ms, Some(now));
    assert!(
        store
            .claim("w", A_WHILE, 5)
            .await
            .expect("claim")
            .is_empty(),
        "not queued"
    );
    assert!(
        store.recover_expired(1).await.expect("recover").is_empty(),
        "its first lease runs for a minute"
    );

    assert!(
        store
            .complete(&completion("sync", "api-1", 1, "ok"))
            .await
            .expect("complete")
    );
    assert!(
        !store
            .complete(&completion("sync", "api-1", 1, "ok"))
            .await
            .expect("complete twice")
    );
    assert_eq!(get(store, "sync").await.state, JobState::Done);
}

async fn queue_depth_counts_queued_jobs_per_language(backend: &Backend) {
    let store = &*backend.store;
    assert!(store.queue_depth().await.expect("depth").is_empty());
    for (id, language, created) in [
        ("p1", "python", 1),
        ("c1", "c", 2),
        ("p2", "python", 3),
        ("p3", "python", 4),
    ] {
        store
            .insert_submission(&queued(id, language, created))
            .await
            .expect("insert");
    }
    store.claim("w", A_WHILE, 1).await.expect("claim p1");
    assert_eq!(
        store.queue_depth().await.expect("depth"),
        [("c".to_string(), 1), ("python".to_string(), 2)]
    );
}

async fn a_webhook_is_taken_exactly_once_under_concurrency(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("j", 1)]).await;
    assert!(
        !store.take_webhook("j").await.expect("take"),
        "not before the job is done"
    );
    store.claim("w", A_WHILE, 1).await.expect("claim");
    store
        .complete(&completion("j", "w", 1, "ok"))
        .await
        .expect("complete");

    let mut takers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = Arc::clone(&backend.store);
        takers.spawn(async move { store.take_webhook("j").await.expect("take") });
    }
    let mut taken = 0;
    while let Some(got) = takers.join_next().await {
        taken += usize::from(got.expect("a taker panicked"));
    }
    assert_eq!(taken, 1);
    assert!(!store.take_webhook("missing").await.expect("take"));
}

async fn a_webhook_delivery_is_recorded(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("j", 1)]).await;
    let delivery = WebhookDelivery {
        url: "https://example.test/hook".into(),
        attempts: 3,
        status_code: Some(502),
        delivered: false,
        error: Some("bad gateway".into()),
        at_ms: 42,
    };
    store.record_webhook("j", &delivery).await.expect("record");
    assert_eq!(get(store, "j").await.webhook, Some(delivery));
}

async fn the_token_bucket_refuses_with_a_retry_after_and_refills(backend: &Backend) {
    let store = &*backend.store;
    // Two tokens a second, two at once: the three takes have half a second before
    // the bucket refills by one, plenty even on a loaded machine.
    assert_eq!(store.take_token("ip:1", 2.0, 2).await.expect("take"), None);
    assert_eq!(store.take_token("ip:1", 2.0, 2).await.expect("take"), None);
    let wait = store
        .take_token("ip:1", 2.0, 2)
        .await
        .expect("take")
        .expect("the third is refused");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    assert_eq!(
        store.take_token("ip:2", 2.0, 2).await.expect("take"),
        None,
        "buckets are apart"
    );

    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    assert_eq!(
        store.take_token("ip:1", 2.0, 2).await.expect("take"),
        None,
        "refilled"
    );
    assert!(
        store
            .take_token("ip:1", 2.0, 2)
            .await
            .expect("take")
            .is_some()
    );
}

async fn the_token_bucket_grants_no_more_than_its_burst_on_two_nodes_at_once(backend: &Backend) {
    let nodes = [Arc::clone(&backend.store), backend.another_node().await];
    let mut takers = tokio::task::JoinSet::new();
    for n in 0..24 {
        let store = Arc::clone(&nodes[n % 2]);
        // A token an hour: nothing refills during the test.
        takers.spawn(async move {
            store
                .take_token("key:k", 1.0 / 3600.0, 5)
                .await
                .expect("take")
        });
    }
    let mut granted = 0;
    while let Some(got) = takers.join_next().await {
        match got.expect("a taker panicked") {
            None => granted += 1,
            Some(wait) => assert!(wait > Duration::from_secs(60), "{wait:?}"),
        }
    }
    assert_eq!(granted, 5);
}

async fn concurrency_slots_never_exceed_the_maximum_on_two_nodes_at_once(backend: &Backend) {
    let nodes = [Arc::clone(&backend.store), backend.another_node().await];
    let mut takers = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = Arc::clone(&nodes[n % 2]);
        takers.spawn(async move {
            store
                .acquire_slot("key:k", &format!("job-{n}"), 3, A_WHILE)
                .await
                .expect("acquire")
        });
    }
    let mut taken = 0;
    while let Some(got) = takers.join_next().await {
        taken += usize::from(got.expect("a taker panicked"));
    }
    assert_eq!(taken, 3);
}

/// Whether `holder` gets one of `max` slots of `bucket` for `ttl`.
async fn slot(store: &dyn Store, bucket: &str, holder: &str, max: u32, ttl: Duration) -> bool {
    store
        .acquire_slot(bucket, holder, max, ttl)
        .await
        .expect("acquire a slot")
}

async fn a_released_or_expired_slot_can_be_taken_again(backend: &Backend) {
    let store = &*backend.store;
    assert!(slot(store, "b", "one", 2, A_WHILE).await);
    assert!(slot(store, "b", "two", 2, A_WHILE).await);
    assert!(!slot(store, "b", "three", 2, A_WHILE).await);
    assert!(
        slot(store, "b", "two", 2, A_WHILE).await,
        "a holder keeps its slot"
    );
    assert!(
        slot(store, "other", "three", 2, A_WHILE).await,
        "buckets are apart"
    );

    store.release_slot("b", "one").await.expect("release");
    assert!(slot(store, "b", "three", 2, A_WHILE).await);

    assert!(slot(store, "short", "one", 1, Duration::from_millis(400)).await);
    assert!(!slot(store, "short", "two", 1, A_WHILE).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(slot(store, "short", "two", 1, A_WHILE).await, "expired");
    assert!(!slot(store, "none", "one", 0, A_WHILE).await);
}

async fn a_renewed_slot_outlives_its_first_ttl(backend: &Backend) {
    let store = &*backend.store;
    assert!(slot(store, "b", "long-job", 1, Duration::from_millis(300)).await);
    // Renewed twice while "running", well past its first expiry.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            store
                .renew_slot("b", "long-job", Duration::from_millis(300))
                .await
                .expect("renew")
        );
    }
    assert!(
        !slot(store, "b", "other", 1, A_WHILE).await,
        "still held 400 ms after a first TTL of 300 ms"
    );
    // Once renewals stop, it expires as any slot does.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(slot(store, "b", "other", 1, A_WHILE).await);
}

async fn renewing_a_slot_that_is_not_held_is_false(backend: &Backend) {
    let store = &*backend.store;
    assert!(
        !store
            .renew_slot("b", "never", A_WHILE)
            .await
            .expect("renew"),
        "never taken"
    );
    assert!(slot(store, "b", "released", 1, A_WHILE).await);
    store.release_slot("b", "released").await.expect("release");
    assert!(
        !store
            .renew_slot("b", "released", A_WHILE)
            .await
            .expect("renew"),
        "given back"
    );
    // Expired and freed by another's acquire: the slot is the other's now.
    assert!(slot(store, "b", "expired", 1, Duration::from_millis(1)).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(slot(store, "b", "taker", 1, A_WHILE).await);
    assert!(
        !store
            .renew_slot("b", "expired", A_WHILE)
            .await
            .expect("renew"),
        "freed"
    );
    assert!(
        !store
            .renew_slot("other-bucket", "taker", A_WHILE)
            .await
            .expect("renew"),
        "buckets are apart"
    );
}

async fn a_key_is_created_listed_and_found_by_hash(backend: &Backend) {
    let store = &*backend.store;
    let mut first = new_key("key-1", "alice");
    first.created_ms = 100;
    let created = store.create_key(&first).await.expect("create");
    assert_eq!(created.id, "key-1");
    assert_eq!(created.name, "alice");
    assert_eq!(created.hash, "hash-of-key-1");
    assert_eq!(created.scope, runbox_store::Scope::Execute);
    assert_eq!(created.rate_per_second, Some(2.5));
    assert_eq!(created.rate_burst, Some(10));
    assert_eq!(created.max_concurrent, Some(4));
    assert_eq!(created.webhook_secret, "secret-of-key-1");
    assert_eq!(created.created_ms, 100);
    assert_eq!(created.revoked_ms, None);

    let second = runbox_store::NewApiKey {
        scope: runbox_store::Scope::Admin,
        rate_per_second: None,
        rate_burst: None,
        max_concurrent: None,
        created_ms: 200,
        ..new_key("key-2", "bob")
    };
    store.create_key(&second).await.expect("create");

    let names: Vec<_> = store
        .list_keys()
        .await
        .expect("list")
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let found = store
        .key_by_hash("hash-of-key-2")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id, "key-2");
    assert_eq!(found.scope, runbox_store::Scope::Admin);
    assert_eq!(found.rate_burst, None);
    assert_eq!(
        store.key_by_hash("hash-of-nobody").await.expect("find"),
        None
    );
    let by_id = store
        .key_by_id("key-1")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(by_id.name, "alice");
    assert_eq!(store.key_by_id("nobody").await.expect("find"), None);
    assert_eq!(store.active_key_count().await.expect("count"), 2);
}

async fn a_duplicate_key_name_is_refused(backend: &Backend) {
    let store = &*backend.store;
    store
        .create_key(&new_key("key-1", "alice"))
        .await
        .expect("create");
    match store.create_key(&new_key("key-2", "alice")).await {
        Err(Error::DuplicateKeyName(name)) => assert_eq!(name, "alice"),
        other => panic!("expected DuplicateKeyName, got {other:?}"),
    }
    // A clash of ids is a different error.
    let clash = store.create_key(&new_key("key-1", "carol")).await;
    assert!(matches!(clash, Err(Error::Query { .. })), "{clash:?}");
    assert_eq!(store.list_keys().await.expect("list").len(), 1);
}

async fn a_key_is_revoked_by_id_or_by_name(backend: &Backend) {
    let store = &*backend.store;
    store
        .create_key(&new_key("key-1", "alice"))
        .await
        .expect("create");
    store
        .create_key(&new_key("key-2", "bob"))
        .await
        .expect("create");

    let by_id = store
        .revoke_key("key-1")
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(by_id.name, "alice");
    let revoked_at = by_id.revoked_ms.expect("revoked");
    let by_name = store
        .revoke_key("bob")
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(by_name.id, "key-2");
    assert!(by_name.revoked_ms.is_some());
    assert_eq!(store.revoke_key("nobody").await.expect("revoke"), None);

    let again = store
        .revoke_key("alice")
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(
        again.revoked_ms,
        Some(revoked_at),
        "revoking twice keeps the first time"
    );
    let found = store
        .key_by_hash("hash-of-key-1")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(
        found.revoked_ms,
        Some(revoked_at),
        "a revoked key is still found, as revoked"
    );
    assert_eq!(store.active_key_count().await.expect("count"), 0);
}

async fn the_audit_log_reads_newest_first(backend: &Backend) {
    let store = &*backend.store;
    for (n, kind) in ["key_created", "request_rejected", "key_revoked"]
        .into_iter()
        .enumerate()
    {
        store
            .audit(&runbox_store::AuditEvent {
                at_ms: 1000 + n as i64,
                kind: kind.into(),
                key_id: Some("key-1".into()),
                client_addr: (n == 1).then(|| "203.0.113.9".into()),
                detail: serde_json::json!({"n": n}),
            })
            .await
            .expect("audit");
    }
    let log = store.audit_log(2).await.expect("read");
    let kinds: Vec<_> = log.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["key_revoked", "request_rejected"]);
    assert!(log[0].id > log[1].id);
    assert_eq!(log[1].at_ms, 1001);
    assert_eq!(log[1].client_addr.as_deref(), Some("203.0.113.9"));
    assert_eq!(log[1].detail, serde_json::json!({"n": 1}));
    assert_eq!(store.audit_log(10).await.expect("read").len(), 3);
}

async fn workers_heartbeat_are_listed_while_alive_and_removed(backend: &Backend) {
    let store = &*backend.store;
    let now = now_ms();
    store
        .heartbeat(&worker("w-old", 0, now - 600_000))
        .await
        .expect("heartbeat");
    store
        .heartbeat(&worker("w-1", 1, now - 1000))
        .await
        .expect("heartbeat");
    store
        .heartbeat(&worker("w-2", 2, now))
        .await
        .expect("heartbeat");
    let ids = |workers: Vec<runbox_store::WorkerInfo>| {
        workers.into_iter().map(|w| w.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.workers(A_WHILE).await.expect("list")),
        ["w-2", "w-1"]
    );

    store
        .heartbeat(&worker("w-1", 3, now + 10))
        .await
        .expect("heartbeat");
    let listed = store.workers(A_WHILE).await.expect("list");
    assert_eq!(listed[0], worker("w-1", 3, now + 10));

    store.remove_worker("w-1").await.expect("remove");
    store
        .remove_worker("w-unknown")
        .await
        .expect("remove nothing");
    assert_eq!(ids(store.workers(A_WHILE).await.expect("list")), ["w-2"]);
}

async fn retention_deletes_only_finished_submissions_before_the_cut_off(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(
        store,
        &[("old-done", 1), ("new-done", 2), ("old-queued", 3)],
    )
    .await;
    let claimed = store.claim("w", A_WHILE, 2).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    let mut old = completion("old-done", "w", 1, "ok");
    old.finished_ms = 1_000;
    let mut new = completion("new-done", "w", 1, "ok");
    new.finished_ms = 9_000;
    store.complete(&old).await.expect("complete");
    store.complete(&new).await.expect("complete");

    assert_eq!(
        store.delete_finished_before(5_000).await.expect("delete"),
        1
    );
    assert_eq!(store.submission("old-done").await.expect("read"), None);
    assert!(store.submission("new-done").await.expect("read").is_some());
    assert!(
        store
            .submission("old-queued")
            .await
            .expect("read")
            .is_some(),
        "not finished"
    );
}

async fn subscribers_hear_queued_and_finished_jobs(backend: &Backend) {
    let store = &*backend.store;
    let mut events = store.subscribe();
    insert_queued(store, &[("j", 1)]).await;
    expect_event(&mut events, StoreEvent::JobQueued { id: "j".into() }).await;
    store
        .insert_submissions(&[queued("b", "python", 2)])
        .await
        .expect("insert");
    expect_event(&mut events, StoreEvent::JobQueued { id: "b".into() }).await;

    store.claim("w", A_WHILE, 1).await.expect("claim");
    store
        .complete(&completion("j", "w", 1, "ok"))
        .await
        .expect("complete");
    expect_event(&mut events, StoreEvent::JobFinished { id: "j".into() }).await;
}

async fn recovery_tells_subscribers_what_it_did(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("again", 1), ("failed", 2)]).await;
    // Both expire once and are requeued; then `again` is held on a long lease and
    // `failed` expires on its second (and last) attempt.
    store
        .claim("w", Duration::from_millis(1), 2)
        .await
        .expect("claim");
    let_leases_expire().await;
    store.recover_expired(2).await.expect("recover");
    store.claim("w", A_WHILE, 1).await.expect("claim again");
    store
        .claim("w", Duration::from_millis(1), 1)
        .await
        .expect("claim failed");
    let_leases_expire().await;

    let mut events = store.subscribe();
    let recovered = store.recover_expired(2).await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert!(!recovered[0].requeued);
    expect_event(
        &mut events,
        StoreEvent::JobFinished {
            id: "failed".into(),
        },
    )
    .await;

    insert_queued(store, &[("requeued", 3)]).await;
    expect_event(
        &mut events,
        StoreEvent::JobQueued {
            id: "requeued".into(),
        },
    )
    .await;
    store
        .claim("w-2", Duration::from_millis(1), 1)
        .await
        .expect("claim");
    let_leases_expire().await;
    let recovered = store.recover_expired(2).await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert!(recovered[0].requeued);
    expect_event(
        &mut events,
        StoreEvent::JobQueued {
            id: "requeued".into(),
        },
    )
    .await;
}

async fn a_listing_reads_no_request_or_result_however_large(backend: &Backend) {
    let store = &*backend.store;
    insert_queued(store, &[("big", 1), ("small-1", 2), ("small-2", 3)]).await;
    let job = store.claim("w", A_WHILE, 1).await.expect("claim").remove(0);
    assert_eq!(job.id, "big");
    // Sixteen megabytes of output, as a red team stored to slow listings down.
    let mut done = completion("big", "w", job.attempt, "ok");
    done.result = serde_json::json!({"stdout": "x".repeat(16 << 20)});
    assert!(store.complete(&done).await.expect("complete"));

    let started = std::time::Instant::now();
    for _ in 0..20 {
        let listing = store
            .list_submissions(None, page(1, 10))
            .await
            .expect("list");
        assert_eq!(listing.total, 3);
        let big = listing
            .items
            .iter()
            .find(|s| s.id == "big")
            .expect("listed");
        assert_eq!(big.state, JobState::Done);
        assert_eq!(big.status.as_deref(), Some("ok"));
        assert!(
            listing
                .items
                .iter()
                .all(|s| s.result.is_none() && s.request.is_none()),
            "a listing carries summaries only"
        );
    }
    // Reading the result twenty times would take seconds; the summaries take
    // milliseconds. The bound is loose, for a loaded machine.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "20 listings took {elapsed:?}"
    );

    let whole = get(store, "big").await;
    assert_eq!(whole.result, Some(done.result), "a single read has it all");
    assert!(whole.request.is_some());
}

async fn the_audit_log_cuts_long_fields_on_a_character_boundary(backend: &Backend) {
    let store = &*backend.store;
    let long_path = format!("/{}", "é".repeat(5000));
    store
        .audit(&runbox_store::AuditEvent {
            at_ms: 1000,
            kind: "request_rejected".into(),
            key_id: None,
            client_addr: Some("203.0.113.9".repeat(100)),
            detail: serde_json::json!({"reason": "unauthorized", "path": long_path,
                                       "headers": ["a".repeat(1000)]}),
        })
        .await
        .expect("audit");
    let many: serde_json::Map<String, serde_json::Value> = (0..2000)
        .map(|n| (format!("field-{n}"), serde_json::Value::from(n)))
        .collect();
    store
        .audit(&runbox_store::AuditEvent {
            at_ms: 1001,
            kind: "k".repeat(1000),
            key_id: Some("key-1".into()),
            client_addr: None,
            detail: serde_json::Value::Object(many),
        })
        .await
        .expect("audit");

    let log = store.audit_log(2).await.expect("read");
    let cut_ok = |s: &str| {
        s.len() <= runbox_store::AUDIT_FIELD_MAX_BYTES && s.ends_with(runbox_store::TRUNCATION_MARK)
    };
    let (many_fields, rejected) = (&log[0], &log[1]);
    assert_eq!(rejected.kind, "request_rejected", "short fields are kept");
    assert_eq!(rejected.detail["reason"], "unauthorized");
    let path = rejected.detail["path"].as_str().expect("a path");
    assert!(cut_ok(path), "{} bytes: {path}", path.len());
    assert!(path.starts_with("/éé"));
    let headers = rejected.detail["headers"][0].as_str().expect("a header");
    assert!(cut_ok(headers), "strings inside arrays are cut too");
    assert!(cut_ok(rejected.client_addr.as_deref().expect("an address")));

    assert!(cut_ok(&many_fields.kind));
    assert_eq!(many_fields.key_id.as_deref(), Some("key-1"));
    let text = many_fields.detail["truncated_detail"]
        .as_str()
        .expect("a detail too large is replaced by the start of its text");
    assert!(cut_ok(text), "{text}");
}

/// A minute's start, as Unix milliseconds.
const MINUTE: i64 = 28_333_334 * 60_000;

async fn refused_requests_are_counted_in_one_row_per_minute_address_and_reason(backend: &Backend) {
    let mut refusals = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = Arc::clone(&backend.store);
        refusals.spawn(async move {
            store
                .audit_refusal("203.0.113.9", "rate_limited", MINUTE + n * 1000)
                .await
                .expect("count a refusal")
        });
    }
    while let Some(done) = refusals.join_next().await {
        done.expect("a refusal panicked");
    }
    let store = &*backend.store;
    for (addr, reason, at) in [
        ("203.0.113.9", "unauthorized", MINUTE + 5),
        ("203.0.113.9", "unauthorized", MINUTE + 59_999),
        ("198.51.100.1", "rate_limited", MINUTE + 7),
        ("203.0.113.9", "rate_limited", MINUTE + 60_000),
    ] {
        store
            .audit_refusal(addr, reason, at)
            .await
            .expect("count a refusal");
    }

    let counts: Vec<_> = store
        .audit_refusals(10)
        .await
        .expect("read")
        .into_iter()
        .map(|c| (c.minute_ms, c.client_addr, c.reason, c.count, c.last_ms))
        .collect();
    let row = |minute, addr: &str, reason: &str, count, last| {
        (minute, addr.to_string(), reason.to_string(), count, last)
    };
    assert_eq!(
        counts,
        [
            row(
                MINUTE + 60_000,
                "203.0.113.9",
                "rate_limited",
                1,
                MINUTE + 60_000
            ),
            row(MINUTE, "203.0.113.9", "rate_limited", 20, MINUTE + 19_000),
            row(MINUTE, "203.0.113.9", "unauthorized", 2, MINUTE + 59_999),
            row(MINUTE, "198.51.100.1", "rate_limited", 1, MINUTE + 7),
        ]
    );
    assert!(
        store.audit_log(10).await.expect("read").is_empty(),
        "no audit event per refusal"
    );
}

async fn audit_retention_deletes_only_what_came_before_the_cut_off(backend: &Backend) {
    let store = &*backend.store;
    for at_ms in [MINUTE + 1000, MINUTE + 2000, MINUTE + 3000] {
        store
            .audit(&runbox_store::AuditEvent {
                at_ms,
                kind: "key_created".into(),
                key_id: None,
                client_addr: None,
                detail: serde_json::json!({}),
            })
            .await
            .expect("audit");
    }
    for at_ms in [MINUTE + 10, MINUTE + 60_000] {
        store
            .audit_refusal("203.0.113.9", "unauthorized", at_ms)
            .await
            .expect("count a refusal");
    }

    assert_eq!(
        store
            .delete_audit_before(MINUTE + 2500)
            .await
            .expect("delete"),
        3,
        "two events and the count of the minute that began before the cut-off"
    );
    let left: Vec<_> = store
        .audit_log(10)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(left, [MINUTE + 3000]);
    let counts = store.audit_refusals(10).await.expect("read");
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].minute_ms, MINUTE + 60_000);
    assert_eq!(store.delete_audit_before(0).await.expect("delete"), 0);
}
