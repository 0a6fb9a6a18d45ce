//! The PostgreSQL store: one database shared by the API and worker nodes of a
//! fleet.
//!
//! Everything that several nodes race for is decided by the database in one
//! statement or one locked transaction: claims take rows `FOR UPDATE SKIP LOCKED`
//! (claimers skip each other's rows instead of waiting for them), a completion only
//! lands while its worker still holds the lease of that attempt, a webhook is taken
//! by a conditional `UPDATE`, a token bucket is one upsert, and concurrency slots
//! are counted under a transaction-scoped advisory lock per bucket. Leases, buckets
//! and slots are timed by the database's clock (`runbox_now_ms()`), not by the
//! nodes', which may disagree.
//!
//! Wake-ups travel by `NOTIFY` on the channel [`CHANNEL`] (payloads `queued:<id>`
//! and `finished:<id>`), sent in the same statement or transaction as the change,
//! so they are only heard once it is committed. Each store listens on its own
//! connection in a background task and forwards what it hears to its broadcast
//! channel: a node hears its own changes the same way as other nodes', once each.
//! A lost listening connection is opened again; what was sent meanwhile is lost,
//! which the trait allows (callers re-check the store).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::broadcast;

use self::statements::{KeyColumn, query};
use crate::error::{Error, Result};
use crate::limits;
use crate::rows::{self, CLAIMED_COLUMNS, ClaimedRow};
use crate::types::{
    ApiKey, AuditEvent, AuditRecord, ClaimedJob, Completion, Listing, NewApiKey, NewSubmission,
    Page, Recovery, RefusalCount, StoreEvent, Submission, WebhookDelivery, WorkerInfo,
};

/// The statements PostgreSQL shares with SQLite, compiled for PostgreSQL.
#[path = "statements.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per dialect on purpose: see the module's doc"
)]
mod statements;

/// The database the shared statements are compiled for.
type Db = sqlx::Postgres;

/// How the shared listing selects anonymous submissions. It must name `$1`
/// (PostgreSQL refuses a parameter it cannot type), which is NULL here; spelt
/// apart from `key_id = $1` rather than `IS NOT DISTINCT FROM`, which no index
/// serves.
const ANONYMOUS_FILTER: &str = "($1::TEXT IS NULL AND key_id IS NULL)";

/// Whether `error` is a clash of key names (by the constraint's name).
fn is_duplicate_key_name(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation() && e.constraint() == Some("api_keys_name_unique"))
}

/// The `LISTEN`/`NOTIFY` channel of job wake-ups.
pub(crate) const CHANNEL: &str = "runbox_jobs";

/// Connections per store (per node). Queries are short; a worker node holds one
/// only while it claims, renews or completes.
const MAX_CONNECTIONS: u32 = 10;

/// How long a query waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 1024;

/// The longest pause between two attempts to listen again.
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(5);

/// The store in one PostgreSQL database.
pub struct PostgresStore {
    /// Connections for queries.
    pool: PgPool,
    /// Wake-ups heard on [`CHANNEL`], for this node's subscribers.
    events: broadcast::Sender<StoreEvent>,
    /// The task that listens; stopped with the store.
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`),
    /// applies the migrations (several nodes starting at once apply them once: sqlx
    /// holds an advisory lock meanwhile) and starts listening for wake-ups before it
    /// returns, so no change made after it returns goes unheard.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let connect_error = |source| Error::Connect {
            url: crate::redact_url(url),
            source,
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(connect_error)?
            .application_name("runbox");
        // One connection first, tried once: a wrong URL or a server that is down
        // fails at once with the driver's reason (the pool would retry until its
        // acquire timeout). It applies the migrations.
        let mut first = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(connect_error)?;
        sqlx::migrate!("migrations/postgres")
            .run(&mut first)
            .await?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());

        let listener = listen(&options).await.map_err(connect_error)?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let listener = tokio::spawn(forward_wake_ups(listener, options, events.clone()));
        Ok(PostgresStore {
            pool,
            events,
            listener,
        })
    }

    /// Inserts one submission and, when it is queued, notifies in the same
    /// statement (the notification is sent when that commits).
    async fn insert_one<'e, E>(executor: E, submission: &NewSubmission) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = Db>,
    {
        let insert = format!(
            "WITH stored AS ({} RETURNING id, state) \
             SELECT pg_notify($14, 'queued:' || id) FROM stored WHERE state = 'queued'",
            statements::INSERT_SUBMISSION
        );
        statements::bind_new_submission(sqlx::query(&insert), submission)
            .bind(CHANNEL)
            .execute(executor)
            .await
            .map_err(query("store a submission"))?;
        Ok(())
    }
}

/// A listener on [`CHANNEL`], on a connection of its own (a pool of one, so that
/// dropping the listener closes the connection and its `LISTEN` with it).
async fn listen(options: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications to `events` for as long as the store lives, listening
/// again (with a growing pause) whenever the connection fails.
async fn forward_wake_ups(
    mut listener: PgListener,
    options: PgConnectOptions,
    events: broadcast::Sender<StoreEvent>,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Some(event) = event_of(notification.payload()) {
                    let _ = events.send(event);
                }
                pause = Duration::from_millis(100);
            }
            // The connection was lost and sqlx opened another and listens again.
            Ok(None) => {
                tracing::warn!("lost the connection listening for job wake-ups; listening again")
            }
            Err(error) => {
                // sqlx only reconnects by itself on some I/O errors: start afresh.
                tracing::warn!(%error, "listening for job wake-ups failed; retrying in {pause:?}");
                loop {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LISTEN_RETRY_MAX);
                    match listen(&options).await {
                        Ok(fresh) => {
                            listener = fresh;
                            break;
                        }
                        Err(error) => tracing::warn!(%error, "cannot listen for job wake-ups"),
                    }
                }
            }
        }
    }
}

/// The event a notification's payload stands for.
fn event_of(payload: &str) -> Option<StoreEvent> {
    match payload.split_once(':') {
        Some(("queued", id)) => Some(StoreEvent::JobQueued { id: id.to_string() }),
        Some(("finished", id)) => Some(StoreEvent::JobFinished { id: id.to_string() }),
        _ => {
            tracing::warn!(payload, "unknown job wake-up");
            None
        }
    }
}

#[async_trait::async_trait]
impl crate::Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        statements::ping(&self.pool).await
    }

    async fn insert_submission(&self, submission: &NewSubmission) -> Result<()> {
        Self::insert_one(&self.pool, submission).await
    }

    async fn insert_submissions(&self, submissions: &[NewSubmission]) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin storing a batch"))?;
        for submission in submissions {
            Self::insert_one(&mut *tx, submission).await?;
        }
        tx.commit().await.map_err(query("commit a batch"))?;
        Ok(())
    }

    async fn submission(&self, id: &str) -> Result<Option<Submission>> {
        statements::submission(&self.pool, id).await
    }

    async fn list_submissions(&self, key_id: Option<&str>, page: Page) -> Result<Listing> {
        // One snapshot for the page and the total.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin listing submissions"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(query("begin listing submissions"))?;
        let listing = statements::list_submissions(&mut tx, key_id, page).await?;
        tx.commit()
            .await
            .map_err(query("end listing submissions"))?;
        Ok(listing)
    }

    async fn delete_submission(&self, id: &str) -> Result<bool> {
        statements::delete_submission(&self.pool, id).await
    }

    async fn claim(&self, worker_id: &str, lease: Duration, limit: u32) -> Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // SKIP LOCKED: concurrent claimers each lock different queued rows instead
        // of queueing behind one another on the oldest ones.
        let claimed: Vec<ClaimedRow> = sqlx::query_as(&format!(
            "WITH picked AS ( \
               SELECT id FROM submissions WHERE state = 'queued' \
               ORDER BY created_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE submissions s SET state = 'running', worker_id = $1, \
               attempts = s.attempts + 1, started_ms = runbox_now_ms(), \
               lease_expires_ms = runbox_now_ms() + $2 \
             FROM picked WHERE s.id = picked.id \
             RETURNING {}",
            prefixed(CLAIMED_COLUMNS, "s.")
        ))
        .bind(worker_id)
        .bind(rows::millis(lease))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query("claim jobs"))?;
        rows::oldest_first(claimed)
    }

    async fn renew(&self, worker_id: &str, ids: &[String], lease: Duration) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let renewed: Vec<String> = sqlx::query_scalar(
            "UPDATE submissions SET lease_expires_ms = runbox_now_ms() + $1 \
             WHERE id = ANY($3) AND worker_id = $2 AND state = 'running' \
             RETURNING id",
        )
        .bind(rows::millis(lease))
        .bind(worker_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(query("renew leases"))?;
        Ok(renewed)
    }

    async fn complete(&self, completion: &Completion) -> Result<bool> {
        // The row count of the SELECT is the number of rows updated: 0 or 1.
        let complete = format!(
            "WITH done AS ({} RETURNING id) SELECT pg_notify($8, 'finished:' || id) FROM done",
            statements::COMPLETE
        );
        let done = statements::bind_completion(sqlx::query(&complete), completion)
            .bind(CHANNEL)
            .execute(&self.pool)
            .await
            .map_err(query("store a job's result"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn recover_expired(&self, max_attempts: u32) -> Result<Vec<Recovery>> {
        let error = rows::abandoned_error_sql("$1");
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin recovering jobs"))?;
        // SKIP LOCKED: a job being completed right now is left to its completion, and
        // two nodes recovering at once split the jobs between them.
        let recovered: Vec<(String, Option<String>, String)> = sqlx::query_as(&format!(
            "UPDATE submissions SET \
               state = CASE WHEN attempts >= $1 THEN 'done' ELSE 'queued' END, \
               status = CASE WHEN attempts >= $1 THEN 'internal_error' ELSE status END, \
               error = CASE WHEN attempts >= $1 THEN {error} ELSE error END, \
               finished_ms = CASE WHEN attempts >= $1 THEN runbox_now_ms() ELSE finished_ms END, \
               lease_expires_ms = NULL \
             WHERE id IN (SELECT id FROM submissions \
                          WHERE state = 'running' AND lease_expires_ms < runbox_now_ms() \
                          FOR UPDATE SKIP LOCKED) \
             RETURNING id, worker_id, state"
        ))
        .bind(i64::from(max_attempts))
        .fetch_all(&mut *tx)
        .await
        .map_err(query("recover jobs whose lease expired"))?;
        let recoveries: Vec<Recovery> = recovered
            .into_iter()
            .map(|(id, worker_id, state)| Recovery {
                id,
                worker_id,
                requeued: state == "queued",
            })
            .collect();
        if !recoveries.is_empty() {
            let payloads: Vec<String> = recoveries
                .iter()
                .map(|r| {
                    let what = if r.requeued { "queued" } else { "finished" };
                    format!("{what}:{}", r.id)
                })
                .collect();
            sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::TEXT[]) AS payload")
                .bind(CHANNEL)
                .bind(&payloads)
                .execute(&mut *tx)
                .await
                .map_err(query("announce recovered jobs"))?;
        }
        tx.commit().await.map_err(query("commit recovered jobs"))?;
        Ok(recoveries)
    }

    async fn queue_depth(&self) -> Result<Vec<(String, u64)>> {
        statements::queue_depth(&self.pool).await
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    async fn take_webhook(&self, id: &str) -> Result<bool> {
        statements::take_webhook(&self.pool, id).await
    }

    async fn record_webhook(&self, id: &str, delivery: &WebhookDelivery) -> Result<()> {
        statements::record_webhook(&self.pool, id, delivery).await
    }

    async fn delete_finished_before(&self, before_ms: i64) -> Result<u64> {
        statements::delete_finished_before(&self.pool, before_ms).await
    }

    async fn create_key(&self, key: &NewApiKey) -> Result<ApiKey> {
        statements::create_key(&self.pool, key).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        statements::list_keys(&self.pool).await
    }

    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKey>> {
        statements::revoke_key(&self.pool, id_or_name).await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        statements::key_by(&self.pool, KeyColumn::Hash, hash).await
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>> {
        statements::key_by(&self.pool, KeyColumn::Id, id).await
    }

    async fn active_key_count(&self) -> Result<u64> {
        statements::active_key_count(&self.pool).await
    }

    async fn audit(&self, event: &AuditEvent) -> Result<()> {
        statements::audit(&self.pool, event).await
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        statements::audit_log(&self.pool, limit).await
    }

    async fn audit_refusal(&self, client_addr: &str, reason: &str, at_ms: i64) -> Result<()> {
        statements::audit_refusal(&self.pool, client_addr, reason, at_ms).await
    }

    async fn audit_refusals(&self, limit: u32) -> Result<Vec<RefusalCount>> {
        statements::audit_refusals(&self.pool, limit).await
    }

    async fn delete_audit_before(&self, before_ms: i64) -> Result<u64> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin deleting old audit rows"))?;
        let deleted = statements::delete_audit_before(&mut tx, before_ms).await?;
        tx.commit()
            .await
            .map_err(query("commit deleting old audit rows"))?;
        Ok(deleted)
    }

    async fn heartbeat(&self, worker: &WorkerInfo) -> Result<()> {
        statements::heartbeat(&self.pool, worker).await
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>> {
        statements::workers(&self.pool, within).await
    }

    async fn remove_worker(&self, id: &str) -> Result<()> {
        statements::remove_worker(&self.pool, id).await
    }

    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: u32,
    ) -> Result<Option<Duration>> {
        let (rate, capacity) = (limits::rate(per_second), limits::capacity(burst));
        // See `limits`: a row comes back when a token was taken. The upsert locks the
        // bucket's row, so API nodes taking tokens at once see each other's takes.
        let taken: Option<f64> = sqlx::query_scalar(
            "INSERT INTO rate_buckets AS b (bucket, tokens, updated_ms) \
             VALUES ($1, $3::FLOAT8 - 1, runbox_now_ms()) \
             ON CONFLICT (bucket) DO UPDATE SET \
               tokens = least($3::FLOAT8, b.tokens + greatest(0, EXCLUDED.updated_ms - b.updated_ms) \
                        * $2::FLOAT8 / 1000.0) - 1, \
               updated_ms = greatest(b.updated_ms, EXCLUDED.updated_ms) \
             WHERE least($3::FLOAT8, b.tokens + greatest(0, EXCLUDED.updated_ms - b.updated_ms) \
                   * $2::FLOAT8 / 1000.0) >= 1 \
             RETURNING tokens",
        )
        .bind(bucket)
        .bind(rate)
        .bind(capacity)
        .fetch_optional(&self.pool)
        .await
        .map_err(query("take a rate-limit token"))?;
        if taken.is_some() {
            return Ok(None);
        }
        let state: Option<(f64, i64, i64)> = sqlx::query_as(
            "SELECT tokens, updated_ms, runbox_now_ms() FROM rate_buckets WHERE bucket = $1",
        )
        .bind(bucket)
        .fetch_optional(&self.pool)
        .await
        .map_err(query("read a rate-limit bucket"))?;
        let (tokens, updated_ms, now) = state.unwrap_or((0.0, 0, 0));
        Ok(Some(limits::retry_after(tokens, updated_ms, now, rate)))
    }

    async fn acquire_slot(
        &self,
        bucket: &str,
        holder: &str,
        max: u32,
        ttl: Duration,
    ) -> Result<bool> {
        if max == 0 {
            return Ok(false);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin taking a slot"))?;
        // One taker per bucket at a time, across nodes: the count below then sees
        // every slot taken before (the lock is released at commit). Row locks could
        // not do this: there is no row to lock for a slot not yet taken.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('runbox_slots:' || $1, 0))")
            .bind(bucket)
            .execute(&mut *tx)
            .await
            .map_err(query("lock a slot bucket"))?;
        sqlx::query(
            "DELETE FROM concurrency_slots WHERE bucket = $1 AND expires_ms <= runbox_now_ms()",
        )
        .bind(bucket)
        .execute(&mut *tx)
        .await
        .map_err(query("free expired slots"))?;
        // A holder that has a slot already keeps it (and its expiry moves on).
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO concurrency_slots (bucket, holder, expires_ms) \
             SELECT $1, $2, runbox_now_ms() + $3 \
             WHERE (SELECT count(*) FROM concurrency_slots WHERE bucket = $1 AND holder <> $2) < $4 \
             ON CONFLICT (bucket, holder) DO UPDATE SET expires_ms = EXCLUDED.expires_ms \
             RETURNING holder",
        )
        .bind(bucket)
        .bind(holder)
        .bind(rows::millis(ttl))
        .bind(i64::from(max))
        .fetch_optional(&mut *tx)
        .await
        .map_err(query("take a slot"))?;
        tx.commit().await.map_err(query("commit taking a slot"))?;
        Ok(taken.is_some())
    }

    async fn renew_slot(&self, bucket: &str, holder: &str, ttl: Duration) -> Result<bool> {
        // Timed by the database's clock, as acquiring is. An acquirer freeing expired
        // slots locks the row first: then this finds it gone and answers false; or
        // this commits first and the acquirer sees the new expiry and keeps it.
        let renewed = sqlx::query(
            "UPDATE concurrency_slots SET expires_ms = runbox_now_ms() + $3 \
             WHERE bucket = $1 AND holder = $2",
        )
        .bind(bucket)
        .bind(holder)
        .bind(rows::millis(ttl))
        .execute(&self.pool)
        .await
        .map_err(query("renew a slot"))?;
        Ok(renewed.rows_affected() > 0)
    }

    async fn release_slot(&self, bucket: &str, holder: &str) -> Result<()> {
        statements::release_slot(&self.pool, bucket, holder).await
    }
}

/// `columns` (a comma-separated list) with each name prefixed by `table`.
fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{table}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_event_and_the_job() {
        assert_eq!(
            event_of("queued:a:b"),
            Some(StoreEvent::JobQueued { id: "a:b".into() })
        );
        assert_eq!(
            event_of("finished:x"),
            Some(StoreEvent::JobFinished { id: "x".into() })
        );
        assert_eq!(event_of("other:x"), None);
        assert_eq!(event_of("nonsense"), None);
    }

    #[test]
    fn columns_are_prefixed_one_by_one() {
        assert_eq!(
            prefixed("id, request,attempts", "s."),
            "s.id, s.request, s.attempts"
        );
    }
}
