//! The SQLite store: the embedded default of a single node.
//!
//! One file in WAL mode (readers never block the writer), `synchronous=NORMAL` (a
//! power cut may lose the last transactions, never corrupt the file), a busy
//! timeout for other processes on the same file (`runbox keys` next to a running
//! server) and foreign keys on.
//!
//! Writes go through a pool of one connection: SQLite has one writer at a time
//! anyway, and queueing writers on the pool (fairly, in-process) is faster and more
//! predictable than letting several connections fight over the file lock with
//! busy-waits. Transactions that read before they write begin `IMMEDIATE`, taking
//! the write lock up front, so another process cannot slip a write between the read
//! and the write. Reads use their own pool and run beside the writer.
//!
//! `sqlite::memory:` (for tests) is one database per connection, so it gets a
//! single connection, kept open for the store's life, for reads and writes alike.
//!
//! Events are an in-process broadcast channel: with SQLite, every producer and
//! consumer of jobs lives in this process.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::broadcast;

use self::statements::{KeyColumn, query};
use crate::error::{Error, Result};
use crate::limits;
use crate::rows::{self, CLAIMED_COLUMNS, ClaimedRow};
use crate::types::{
    ApiKey, AuditEvent, AuditRecord, ClaimedJob, Completion, JobState, Listing, NewApiKey,
    NewSubmission, Page, Recovery, RefusalCount, StoreEvent, Submission, WebhookDelivery,
    WorkerInfo, now_ms,
};

/// The statements SQLite shares with PostgreSQL, compiled for SQLite.
#[path = "statements.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per dialect on purpose: see the module's doc"
)]
mod statements;

/// The database the shared statements are compiled for.
type Db = sqlx::Sqlite;

/// How the shared listing selects anonymous submissions: `key_id IS NULL` alone is
/// a plain index lookup (SQLite ignores the unused `$1`).
const ANONYMOUS_FILTER: &str = "key_id IS NULL";

/// Whether `error` is a clash of key names: SQLite names the column, not the
/// constraint, in its message.
fn is_duplicate_key_name(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation() && e.message().contains("api_keys.name"))
}

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 1024;

/// Connections that read (a file database; writes have their own one).
const READERS: u32 = 4;

/// The store in one SQLite database.
pub struct SqliteStore {
    /// The one connection that writes.
    writer: SqlitePool,
    /// Connections that only read (the writer itself for an in-memory database).
    reader: SqlitePool,
    /// Wake-ups for this process's subscribers.
    events: broadcast::Sender<StoreEvent>,
}

/// Applies the migrations. Processes opening a new file at once (`runbox serve` and
/// `runbox keys create` on a fresh data directory) both find no schema and both
/// try to create it; SQLite has no lock for sqlx to hold meanwhile, so the loser
/// fails ("table already exists") and tries again, then finds the schema there.
async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut tries = 0;
    loop {
        match sqlx::migrate!("migrations/sqlite").run(pool).await {
            Ok(()) => return Ok(()),
            Err(_) if tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with its directory) the database `url` names
    /// (`sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`) and applies the
    /// migrations.
    pub async fn connect(url: &str) -> Result<SqliteStore> {
        let connect_error = |source| Error::Connect {
            url: crate::redact_url(url),
            source,
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect_error)?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // The file is created if missing; its directory too (a fresh --data-dir).
        if let Some(dir) = options.get_filename().parent()
            && !in_memory
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| connect_error(sqlx::Error::Io(e)))?;
        }

        let (writer, reader) = if in_memory {
            // One connection, never closed: the database lives as long as it does.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(connect_error)?;
            migrate(&pool).await?;
            (pool.clone(), pool)
        } else {
            // Kept open for the store's life: no reconnect on the write path, and
            // the WAL files stay in place for the readers (SQLite removes them when
            // the last connection closes).
            let writer_options = options
                .clone()
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            // Switching a new file to WAL takes an exclusive lock that SQLite's busy
            // handler does not wait for: when several processes open a new file at
            // once, the losers see "database is locked" and try again.
            let mut tries = 0;
            let writer = loop {
                let opened = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(writer_options.clone())
                    .await;
                match opened {
                    Err(sqlx::Error::Database(e))
                        if tries < 100 && matches!(e.code().as_deref(), Some("5" | "6")) =>
                    {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    other => break other.map_err(connect_error)?,
                }
            };
            migrate(&writer).await?;
            // Opened after the writer created the file and switched it to WAL (a
            // property of the file, so readers need not set it).
            let reader = SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options.read_only(true))
                .await
                .map_err(connect_error)?;
            (writer, reader)
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(SqliteStore {
            writer,
            reader,
            events,
        })
    }

    /// Tells this process's subscribers (none listening is fine).
    fn publish(&self, event: StoreEvent) {
        let _ = self.events.send(event);
    }

    /// Inserts one submission inside a transaction or on the writer.
    async fn insert_one<'e, E>(executor: E, submission: &NewSubmission) -> Result<()>
    where
        E: sqlx::Executor<'e, Database = Db>,
    {
        statements::bind_new_submission(sqlx::query(statements::INSERT_SUBMISSION), submission)
            .execute(executor)
            .await
            .map_err(query("store a submission"))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        statements::ping(&self.reader).await
    }

    async fn insert_submission(&self, submission: &NewSubmission) -> Result<()> {
        Self::insert_one(&self.writer, submission).await?;
        if submission.state == JobState::Queued {
            self.publish(StoreEvent::JobQueued {
                id: submission.id.clone(),
            });
        }
        Ok(())
    }

    async fn insert_submissions(&self, submissions: &[NewSubmission]) -> Result<()> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query("begin storing a batch"))?;
        for submission in submissions {
            Self::insert_one(&mut *tx, submission).await?;
        }
        tx.commit().await.map_err(query("commit a batch"))?;
        for submission in submissions {
            if submission.state == JobState::Queued {
                self.publish(StoreEvent::JobQueued {
                    id: submission.id.clone(),
                });
            }
        }
        Ok(())
    }

    async fn submission(&self, id: &str) -> Result<Option<Submission>> {
        statements::submission(&self.reader, id).await
    }

    async fn list_submissions(&self, key_id: Option<&str>, page: Page) -> Result<Listing> {
        // One read transaction: the page and the total come from the same snapshot.
        let mut read = self
            .reader
            .begin()
            .await
            .map_err(query("begin listing submissions"))?;
        let listing = statements::list_submissions(&mut read, key_id, page).await?;
        read.commit()
            .await
            .map_err(query("end listing submissions"))?;
        Ok(listing)
    }

    async fn delete_submission(&self, id: &str) -> Result<bool> {
        statements::delete_submission(&self.writer, id).await
    }

    async fn claim(&self, worker_id: &str, lease: Duration, limit: u32) -> Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        // One statement is atomic and takes the write lock before it reads, so two
        // claimers (even in two processes) never pick the same job.
        let claimed: Vec<ClaimedRow> = sqlx::query_as(&format!(
            "UPDATE submissions SET state = 'running', worker_id = $1, attempts = attempts + 1, \
             started_ms = $2, lease_expires_ms = $3 \
             WHERE id IN (SELECT id FROM submissions WHERE state = 'queued' \
                          ORDER BY created_ms, id LIMIT $4) \
             RETURNING {CLAIMED_COLUMNS}"
        ))
        .bind(worker_id)
        .bind(now)
        .bind(now.saturating_add(rows::millis(lease)))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(query("claim jobs"))?;
        rows::oldest_first(claimed)
    }

    async fn renew(&self, worker_id: &str, ids: &[String], lease: Duration) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids travel as one JSON array, whatever their number (SQLite has no
        // array parameters).
        let ids = serde_json::to_string(ids).map_err(|e| Error::Corrupt {
            what: "job ids",
            message: e.to_string(),
        })?;
        let renewed: Vec<String> = sqlx::query_scalar(
            "UPDATE submissions SET lease_expires_ms = $1 \
             WHERE worker_id = $2 AND state = 'running' \
               AND id IN (SELECT value FROM json_each($3)) \
             RETURNING id",
        )
        .bind(now_ms().saturating_add(rows::millis(lease)))
        .bind(worker_id)
        .bind(ids)
        .fetch_all(&self.writer)
        .await
        .map_err(query("renew leases"))?;
        Ok(renewed)
    }

    async fn complete(&self, completion: &Completion) -> Result<bool> {
        let done = statements::bind_completion(sqlx::query(statements::COMPLETE), completion)
            .execute(&self.writer)
            .await
            .map_err(query("store a job's result"))?;
        let completed = done.rows_affected() > 0;
        if completed {
            self.publish(StoreEvent::JobFinished {
                id: completion.id.clone(),
            });
        }
        Ok(completed)
    }

    async fn recover_expired(&self, max_attempts: u32) -> Result<Vec<Recovery>> {
        let error = rows::abandoned_error_sql("$1");
        let recovered: Vec<(String, Option<String>, String)> = sqlx::query_as(&format!(
            "UPDATE submissions SET \
               state = CASE WHEN attempts >= $1 THEN 'done' ELSE 'queued' END, \
               status = CASE WHEN attempts >= $1 THEN 'internal_error' ELSE status END, \
               error = CASE WHEN attempts >= $1 THEN {error} ELSE error END, \
               finished_ms = CASE WHEN attempts >= $1 THEN $2 ELSE finished_ms END, \
               lease_expires_ms = NULL \
             WHERE state = 'running' AND lease_expires_ms < $2 \
             RETURNING id, worker_id, state"
        ))
        .bind(i64::from(max_attempts))
        .bind(now_ms())
        .fetch_all(&self.writer)
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
        for recovery in &recoveries {
            let id = recovery.id.clone();
            self.publish(if recovery.requeued {
                StoreEvent::JobQueued { id }
            } else {
                StoreEvent::JobFinished { id }
            });
        }
        Ok(recoveries)
    }

    async fn queue_depth(&self) -> Result<Vec<(String, u64)>> {
        statements::queue_depth(&self.reader).await
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    async fn take_webhook(&self, id: &str) -> Result<bool> {
        statements::take_webhook(&self.writer, id).await
    }

    async fn record_webhook(&self, id: &str, delivery: &WebhookDelivery) -> Result<()> {
        statements::record_webhook(&self.writer, id, delivery).await
    }

    async fn delete_finished_before(&self, before_ms: i64) -> Result<u64> {
        statements::delete_finished_before(&self.writer, before_ms).await
    }

    async fn create_key(&self, key: &NewApiKey) -> Result<ApiKey> {
        statements::create_key(&self.writer, key).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        statements::list_keys(&self.reader).await
    }

    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKey>> {
        statements::revoke_key(&self.writer, id_or_name).await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        statements::key_by(&self.reader, KeyColumn::Hash, hash).await
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>> {
        statements::key_by(&self.reader, KeyColumn::Id, id).await
    }

    async fn active_key_count(&self) -> Result<u64> {
        statements::active_key_count(&self.reader).await
    }

    async fn audit(&self, event: &AuditEvent) -> Result<()> {
        statements::audit(&self.writer, event).await
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        statements::audit_log(&self.reader, limit).await
    }

    async fn audit_refusal(&self, client_addr: &str, reason: &str, at_ms: i64) -> Result<()> {
        statements::audit_refusal(&self.writer, client_addr, reason, at_ms).await
    }

    async fn audit_refusals(&self, limit: u32) -> Result<Vec<RefusalCount>> {
        statements::audit_refusals(&self.reader, limit).await
    }

    async fn delete_audit_before(&self, before_ms: i64) -> Result<u64> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query("begin deleting old audit rows"))?;
        let deleted = statements::delete_audit_before(&mut tx, before_ms).await?;
        tx.commit()
            .await
            .map_err(query("commit deleting old audit rows"))?;
        Ok(deleted)
    }

    async fn heartbeat(&self, worker: &WorkerInfo) -> Result<()> {
        statements::heartbeat(&self.writer, worker).await
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>> {
        statements::workers(&self.reader, within).await
    }

    async fn remove_worker(&self, id: &str) -> Result<()> {
        statements::remove_worker(&self.writer, id).await
    }

    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: u32,
    ) -> Result<Option<Duration>> {
        let (rate, capacity, now) = (limits::rate(per_second), limits::capacity(burst), now_ms());
        // See `limits`: a row comes back when a token was taken.
        let taken: Option<f64> = sqlx::query_scalar(
            "INSERT INTO rate_buckets (bucket, tokens, updated_ms) VALUES ($1, $3 - 1, $4) \
             ON CONFLICT (bucket) DO UPDATE SET \
               tokens = min($3, tokens + max(0, $4 - updated_ms) * $2 / 1000.0) - 1, \
               updated_ms = max(updated_ms, $4) \
             WHERE min($3, tokens + max(0, $4 - updated_ms) * $2 / 1000.0) >= 1 \
             RETURNING tokens",
        )
        .bind(bucket)
        .bind(rate)
        .bind(capacity)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(query("take a rate-limit token"))?;
        if taken.is_some() {
            return Ok(None);
        }
        let state: Option<(f64, i64)> =
            sqlx::query_as("SELECT tokens, updated_ms FROM rate_buckets WHERE bucket = $1")
                .bind(bucket)
                .fetch_optional(&self.writer)
                .await
                .map_err(query("read a rate-limit bucket"))?;
        let (tokens, updated_ms) = state.unwrap_or((0.0, now));
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
        let now = now_ms();
        // IMMEDIATE: the count and the insert see the same slots, whatever other
        // processes do.
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query("begin taking a slot"))?;
        sqlx::query("DELETE FROM concurrency_slots WHERE bucket = $1 AND expires_ms <= $2")
            .bind(bucket)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query("free expired slots"))?;
        // A holder that has a slot already keeps it (and its expiry moves on).
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO concurrency_slots (bucket, holder, expires_ms) \
             SELECT $1, $2, $3 WHERE (SELECT count(*) FROM concurrency_slots \
                                      WHERE bucket = $1 AND holder <> $2) < $4 \
             ON CONFLICT (bucket, holder) DO UPDATE SET expires_ms = excluded.expires_ms \
             RETURNING holder",
        )
        .bind(bucket)
        .bind(holder)
        .bind(now.saturating_add(rows::millis(ttl)))
        .bind(i64::from(max))
        .fetch_optional(&mut *tx)
        .await
        .map_err(query("take a slot"))?;
        tx.commit().await.map_err(query("commit taking a slot"))?;
        Ok(taken.is_some())
    }

    async fn renew_slot(&self, bucket: &str, holder: &str, ttl: Duration) -> Result<bool> {
        // One statement on the one writer: it cannot interleave with an acquirer's
        // freeing of expired slots.
        let renewed = sqlx::query(
            "UPDATE concurrency_slots SET expires_ms = $3 WHERE bucket = $1 AND holder = $2",
        )
        .bind(bucket)
        .bind(holder)
        .bind(now_ms().saturating_add(rows::millis(ttl)))
        .execute(&self.writer)
        .await
        .map_err(query("renew a slot"))?;
        Ok(renewed.rows_affected() > 0)
    }

    async fn release_slot(&self, bucket: &str, holder: &str) -> Result<()> {
        statements::release_slot(&self.writer, bucket, holder).await
    }
}
