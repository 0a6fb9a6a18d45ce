//! runbox-store: everything runbox keeps, behind one [`Store`] trait.
//!
//! Two implementations share one schema (migrations in `migrations/sqlite` and
//! `migrations/postgres`, one directory per dialect, embedded and applied at
//! start-up): [`SqliteStore`], the embedded default of a single node, and
//! [`PostgresStore`], shared by API and worker nodes of a fleet. The store keeps
//! submissions with their results, API keys (hashed), an audit log, the job queue
//! with leases, worker heartbeats and shared rate-limit state. The statements both
//! databases speak are written once (`src/statements.rs`, compiled for each
//! dialect); `sqlite.rs` and `postgres.rs` hold only what differs.
//!
//! It knows nothing of languages, boxes or HTTP: requests and results are opaque
//! JSON documents to it, and times are Unix milliseconds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), runbox_store::Error> {
//! let store = runbox_store::open("sqlite:///var/lib/runbox/runbox.db").await?;
//! let claimed = store.claim("worker-1", std::time::Duration::from_secs(30), 4).await?;
//! # Ok(()) }
//! ```

mod audit;
mod error;
mod limits;
mod postgres;
mod rows;
mod sqlite;
mod types;

use std::sync::Arc;
use std::time::Duration;

pub use audit::{AUDIT_DETAIL_MAX_BYTES, AUDIT_FIELD_MAX_BYTES, TRUNCATION_MARK};
pub use error::{Error, Result};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use types::*;

/// Opens the store a URL names (`sqlite://PATH`, `sqlite::memory:`, `postgres://...`),
/// creating the database file if needed and applying the migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(Error::UnsupportedUrl(redact_url(url)))
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// What runbox keeps, and its job queue. One implementation per database; share it
/// as `Arc<dyn Store>` between the HTTP handlers and the workers.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;

    /// Checks that the database answers (for `GET /ready`).
    async fn ping(&self) -> Result<()>;

    // --- submissions and the queue -------------------------------------------------

    /// Stores a new submission. With `state` [`JobState::Queued`] it joins the queue
    /// and every subscriber hears [`StoreEvent::JobQueued`]; with
    /// [`JobState::Running`] it is recorded as being run by `worker` (synchronous
    /// executes, run at once by the node that took them): it is on attempt 1 (complete
    /// it with `attempt: 1` and that `worker_id`), started at `created_ms`, with a first
    /// lease of a minute from `created_ms` that its node [`renew`](Store::renew)s
    /// while it runs; if the node dies, [`Store::recover_expired`] queues it again.
    /// An id that exists is an error.
    async fn insert_submission(&self, submission: &NewSubmission) -> Result<()>;

    /// Stores many queued submissions in one transaction (a batch): all or none.
    async fn insert_submissions(&self, submissions: &[NewSubmission]) -> Result<()>;

    /// One submission, or `None`.
    async fn submission(&self, id: &str) -> Result<Option<Submission>>;

    /// Submissions of one key (or the anonymous ones, with `None`), newest first
    /// (ties by id); page 0 reads as page 1. Items are summaries: their `request`
    /// and `result` are `None`, never read from the database (see [`Listing`]).
    async fn list_submissions(&self, key_id: Option<&str>, page: Page) -> Result<Listing>;

    /// Deletes one submission; false when there was none.
    async fn delete_submission(&self, id: &str) -> Result<bool>;

    /// Claims up to `limit` queued jobs for `worker_id`, oldest first, each with a
    /// lease of `lease`; concurrent claimers never get the same job
    /// (`FOR UPDATE SKIP LOCKED` on PostgreSQL, one writer on SQLite). Each claim
    /// counts as an attempt.
    async fn claim(&self, worker_id: &str, lease: Duration, limit: u32) -> Result<Vec<ClaimedJob>>;

    /// Extends the leases `worker_id` holds on `ids`; returns the ids it still holds
    /// (a job whose lease expired and was claimed again is no longer its own; one
    /// whose lease expired but that nobody took yet still is).
    async fn renew(&self, worker_id: &str, ids: &[String], lease: Duration) -> Result<Vec<String>>;

    /// Writes the result of a job exactly once. Returns false, and changes nothing,
    /// when `worker_id` no longer holds the lease of this attempt (a duplicate
    /// completion). Subscribers hear [`StoreEvent::JobFinished`].
    async fn complete(&self, completion: &Completion) -> Result<bool>;

    /// Puts jobs whose lease expired back in the queue, or ends them as failed once
    /// they used `max_attempts` (state done, status `internal_error`, no result, an
    /// `error` naming the attempts and the last worker); returns what it did to each.
    /// Subscribers hear [`StoreEvent::JobQueued`] for the requeued and
    /// [`StoreEvent::JobFinished`] for the failed.
    async fn recover_expired(&self, max_attempts: u32) -> Result<Vec<Recovery>>;

    /// Queued jobs per language.
    async fn queue_depth(&self) -> Result<Vec<(String, u64)>>;

    /// Wake-ups: new jobs and finished jobs, from this node and (PostgreSQL) others.
    /// A lagging receiver may miss events, and so may every receiver of a PostgreSQL
    /// node while it re-opens a lost listening connection (a warning is logged);
    /// callers re-check the store after a lag, and now and then in any case.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StoreEvent>;

    /// Marks the webhook of a finished submission as taken by the caller; exactly one
    /// caller across every node gets `true`. False for a submission not done yet.
    async fn take_webhook(&self, id: &str) -> Result<bool>;

    /// Records the outcome of delivering a submission's webhook.
    async fn record_webhook(&self, id: &str, delivery: &WebhookDelivery) -> Result<()>;

    /// Deletes finished submissions older than `before_ms`; returns how many.
    async fn delete_finished_before(&self, before_ms: i64) -> Result<u64>;

    // --- API keys ------------------------------------------------------------------

    /// Stores a new key (its hash, never the key itself).
    async fn create_key(&self, key: &NewApiKey) -> Result<ApiKey>;

    /// Every key, revoked ones included, oldest first.
    async fn list_keys(&self) -> Result<Vec<ApiKey>>;

    /// Revokes the key with this id or name (the id wins when a name is another
    /// key's id); `None` when none matched. Revoking again keeps the first time.
    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKey>>;

    /// The key whose hash this is, revoked or not.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;

    /// The key with this id, revoked or not.
    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>>;

    /// How many keys are not revoked.
    async fn active_key_count(&self) -> Result<u64>;

    // --- audit log -----------------------------------------------------------------

    /// Appends an event to the audit log, bounded: each string (kind, key id,
    /// address, and every string in the detail) is cut to [`AUDIT_FIELD_MAX_BYTES`]
    /// on a character boundary and ends with [`TRUNCATION_MARK`]; a detail still
    /// larger than [`AUDIT_DETAIL_MAX_BYTES`] is stored as
    /// `{"truncated_detail": "<the start of its JSON text>"}`.
    async fn audit(&self, event: &AuditEvent) -> Result<()>;

    /// The newest `limit` audit events, newest first.
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>>;

    /// Counts one refused request from `client_addr` for `reason` at `at_ms` in the
    /// row of its minute (one row per minute, address and reason, however many
    /// requests), instead of one audit event each: a flood of refusals stays
    /// small. Address and reason are cut like [`Store::audit`]'s fields.
    async fn audit_refusal(&self, client_addr: &str, reason: &str, at_ms: i64) -> Result<()>;

    /// The newest `limit` refusal counts: newest minute first, then the largest
    /// count.
    async fn audit_refusals(&self, limit: u32) -> Result<Vec<RefusalCount>>;

    /// Deletes audit events from before `before_ms`, and refusal counts of minutes
    /// that began before it; returns how many rows it deleted.
    async fn delete_audit_before(&self, before_ms: i64) -> Result<u64>;

    // --- fleet ---------------------------------------------------------------------

    /// Records that a worker is alive, with what it runs.
    async fn heartbeat(&self, worker: &WorkerInfo) -> Result<()>;

    /// Workers seen within `within` of now, newest heartbeat first.
    async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>>;

    /// Removes a worker's row (on clean shutdown).
    async fn remove_worker(&self, id: &str) -> Result<()>;

    // --- shared limits (hold across API nodes) -------------------------------------

    /// Takes one token from the bucket `bucket` (refilled at `per_second`, at most
    /// `burst` tokens; a new bucket is full). `Ok(None)` when taken; `Ok(Some(wait))`
    /// when empty, with how long until a token is available (never zero; at most a
    /// day, which is also the answer for a rate of zero). A burst of 0 counts as 1.
    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: u32,
    ) -> Result<Option<Duration>>;

    /// Takes one of `max` concurrency slots of `bucket` for `holder` until `ttl`
    /// passes or [`Store::release_slot`]; false when all are taken. A holder that has
    /// a slot keeps it, its expiry moved to `ttl` from now.
    async fn acquire_slot(
        &self,
        bucket: &str,
        holder: &str,
        max: u32,
        ttl: Duration,
    ) -> Result<bool>;

    /// Moves the expiry of `holder`'s slot of `bucket` to `ttl` from now, for a job
    /// that runs longer than the slot's first `ttl`; false when `holder` holds no
    /// slot there (released, or expired and freed by an acquirer; one that expired
    /// but that nobody freed yet is still its own, as with job leases).
    async fn renew_slot(&self, bucket: &str, holder: &str, ttl: Duration) -> Result<bool>;

    /// Gives a slot back.
    async fn release_slot(&self, bucket: &str, holder: &str) -> Result<()>;
}
