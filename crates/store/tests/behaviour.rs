//! The behaviour of a store, the same on both backends: each behaviour below is an
//! async function run once against SQLite (`sqlite::...`) and once against
//! PostgreSQL (`postgres::...`, which needs `RUNBOX_TEST_POSTGRES_URL`, see
//! `scripts/postgres-test-cluster.sh`).

mod support;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use runbox_store::{
    Error, JobState, NewSubmission, Page, Store, StoreEvent, WebhookDelivery, now_ms,
};
use support::{Backend, completion, expect_event, new_key, queued, queued_for, worker};

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
    a_submission_is_deleted_once,
    a_batch_is_stored_and_queued_at_once,
    claim_hands_out_the_oldest_jobs_first_up_to_the_limit,
    concurrent_claimers_get_every_job_exactly_once,
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
    the_token_bucket_grants_no_more_than_its_burst_under_concurrency,
    concurrency_slots_never_exceed_the_maximum_under_concurrency,
    a_released_or_expired_slot_can_be_taken_again,
    a_key_is_created_listed_and_found_by_hash,
    a_duplicate_key_name_is_refused,
    a_key_is_revoked_by_id_or_by_name,
    the_audit_log_reads_newest_first,
    workers_heartbeat_are_listed_while_alive_and_removed,
    retention_deletes_only_finished_submissions_before_the_cut_off,
    subscribers_hear_queued_and_finished_jobs,
    recovery_tells_subscribers_what_it_did,
);

/// The submission `id`, which must exist.
async fn get(store: &dyn Store, id: &str) -> runbox_store::Submission {
    store
        .submission(id)
        .await
        .expect("read a submission")
        .unwrap_or_else(|| panic!("submission {id} is missing"))
}

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
        .list_submissions(
            Some("k1"),
            Page {
                page: 1,
                per_page: 2,
            },
        )
        .await
        .expect("list");
    assert_eq!(ids(&first), ["k1-5", "k1-4"]);
    assert_eq!(first.total, 5);
    let second = store
        .list_submissions(
            Some("k1"),
            Page {
                page: 2,
                per_page: 2,
            },
        )
        .await
        .expect("list");
    assert_eq!(ids(&second), ["k1-3", "k1-2"]);
    let last = store
        .list_submissions(
            Some("k1"),
            Page {
                page: 3,
                per_page: 2,
            },
        )
        .await
        .expect("list");
    assert_eq!(ids(&last), ["k1-1"]);
    assert_eq!(last.total, 5);
    let beyond = store
        .list_submissions(
            Some("k1"),
            Page {
                page: 9,
                per_page: 2,
            },
        )
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
        .list_submissions(
            None,
            Page {
                page: 1,
                per_page: 10,
            },
        )
        .await
        .expect("list");
    let ids: Vec<_> = anonymous.items.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["anon-2", "anon-1"]);
    assert_eq!(anonymous.total, 2);
}

async fn a_submission_is_deleted_once(backend: &Backend) {
    let store = &*backend.store;
    store
        .insert_submission(&queued("gone", "python", 1))
        .await
        .expect("insert");
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
    for (id, created) in [("c", 30), ("a", 10), ("b", 20), ("d", 40)] {
        store
            .insert_submission(&queued(id, "python", created))
            .await
            .expect("insert");
    }
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

/// Claims until the queue is empty from `tasks` concurrent claimers spread over
/// `stores`; returns every claimed id with its attempt.
pub(crate) async fn claim_everything(
    stores: &[Arc<dyn Store>],
    tasks: usize,
) -> Vec<(String, u32)> {
    let mut claimers = tokio::task::JoinSet::new();
    for n in 0..tasks {
        let store = Arc::clone(&stores[n % stores.len()]);
        claimers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = store
                    .claim(&format!("worker-{n}"), A_WHILE, 3)
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

async fn concurrent_claimers_get_every_job_exactly_once(backend: &Backend) {
    let store = &*backend.store;
    let jobs: Vec<_> = (0..200)
        .map(|n| queued(&format!("j-{n:03}"), "python", n))
        .collect();
    store.insert_submissions(&jobs).await.expect("insert");

    let claimed = claim_everything(&[Arc::clone(&backend.store)], 8).await;
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
    for (id, created) in [("a", 1), ("b", 2)] {
        store
            .insert_submission(&queued(id, "python", created))
            .await
            .expect("insert");
    }
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
    store
        .insert_submission(&queued("c", "python", 3))
        .await
        .expect("insert");
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
    store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
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
    store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
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
    store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
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
    for (id, created) in [("renewed", 1), ("completed", 2)] {
        store
            .insert_submission(&queued(id, "python", created))
            .await
            .expect("insert");
    }
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
    store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
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
    store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
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
    store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
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

async fn the_token_bucket_grants_no_more_than_its_burst_under_concurrency(backend: &Backend) {
    let mut takers = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let store = Arc::clone(&backend.store);
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

async fn concurrency_slots_never_exceed_the_maximum_under_concurrency(backend: &Backend) {
    let mut takers = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = Arc::clone(&backend.store);
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

async fn a_released_or_expired_slot_can_be_taken_again(backend: &Backend) {
    let store = &*backend.store;
    assert!(
        store
            .acquire_slot("b", "one", 2, A_WHILE)
            .await
            .expect("acquire")
    );
    assert!(
        store
            .acquire_slot("b", "two", 2, A_WHILE)
            .await
            .expect("acquire")
    );
    assert!(
        !store
            .acquire_slot("b", "three", 2, A_WHILE)
            .await
            .expect("acquire")
    );
    assert!(
        store
            .acquire_slot("b", "two", 2, A_WHILE)
            .await
            .expect("acquire"),
        "a holder keeps its slot"
    );
    assert!(
        store
            .acquire_slot("other", "three", 2, A_WHILE)
            .await
            .expect("acquire"),
        "buckets are apart"
    );

    store.release_slot("b", "one").await.expect("release");
    assert!(
        store
            .acquire_slot("b", "three", 2, A_WHILE)
            .await
            .expect("acquire")
    );

    assert!(
        store
            .acquire_slot("short", "one", 1, Duration::from_millis(400))
            .await
            .expect("acquire")
    );
    assert!(
        !store
            .acquire_slot("short", "two", 1, A_WHILE)
            .await
            .expect("acquire")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        store
            .acquire_slot("short", "two", 1, A_WHILE)
            .await
            .expect("acquire"),
        "expired"
    );
    assert!(
        !store
            .acquire_slot("none", "one", 0, A_WHILE)
            .await
            .expect("acquire")
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
    for (id, created) in [("old-done", 1), ("new-done", 2), ("old-queued", 3)] {
        store
            .insert_submission(&queued(id, "python", created))
            .await
            .expect("insert");
    }
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
    store
        .insert_submission(&queued("j", "python", 1))
        .await
        .expect("insert");
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
    store
        .insert_submission(&queued("again", "python", 1))
        .await
        .expect("insert");
    store
        .insert_submission(&queued("failed", "python", 2))
        .await
        .expect("insert");
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

    store
        .insert_submission(&queued("requeued", "python", 3))
        .await
        .expect("insert");
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
