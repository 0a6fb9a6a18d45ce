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

use crate::error::{Error, Result};
use crate::limits;
use crate::rows::{
    self, AUDIT_COLUMNS, AuditRow, CLAIMED_COLUMNS, ClaimedRow, KEY_COLUMNS, KeyRow,
    SUBMISSION_COLUMNS, SubmissionRow, WORKER_COLUMNS, WorkerRow,
};
use crate::types::{
    ApiKey, AuditEvent, AuditRecord, ClaimedJob, Completion, JobState, Listing, NewApiKey,
    NewSubmission, Page, Recovery, StoreEvent, Submission, WebhookDelivery, WorkerInfo, now_ms,
};

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

/// The error of a failed query, saying what the store was doing.
fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Query { action, source }
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
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        let (attempts, started_ms, finished_ms) = rows::initial_attempt(submission);
        sqlx::query(
            "INSERT INTO submissions (id, key_id, client_addr, language, state, request, \
             callback_url, attempts, worker_id, created_ms, started_ms, finished_ms, lease_expires_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .bind(&submission.id)
        .bind(&submission.key_id)
        .bind(&submission.client_addr)
        .bind(&submission.language)
        .bind(submission.state.as_str())
        .bind(&submission.request)
        .bind(&submission.callback_url)
        .bind(attempts)
        .bind(&submission.worker_id)
        .bind(submission.created_ms)
        .bind(started_ms)
        .bind(finished_ms)
        .bind(rows::initial_lease(submission))
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
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(query("check that the database answers"))?;
        Ok(())
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
        let row: Option<SubmissionRow> = sqlx::query_as(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(query("read a submission"))?;
        row.map(Submission::try_from).transpose()
    }

    async fn list_submissions(&self, key_id: Option<&str>, page: Page) -> Result<Listing> {
        // Two spellings rather than `key_id IS ?`, so each is a plain index lookup.
        let filter = if key_id.is_some() {
            "key_id = ?1"
        } else {
            "key_id IS NULL"
        };
        let (limit, offset) = rows::limit_offset(page);
        let mut read = self
            .reader
            .begin()
            .await
            .map_err(query("begin listing submissions"))?;
        // One read transaction: the page and the total come from the same snapshot.
        let items: Vec<SubmissionRow> = sqlx::query_as(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE {filter} \
             ORDER BY created_ms DESC, id DESC LIMIT ?2 OFFSET ?3"
        ))
        .bind(key_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *read)
        .await
        .map_err(query("list submissions"))?;
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM submissions WHERE {filter}"))
                .bind(key_id)
                .fetch_one(&mut *read)
                .await
                .map_err(query("count submissions"))?;
        read.commit()
            .await
            .map_err(query("end listing submissions"))?;
        Ok(Listing {
            items: items
                .into_iter()
                .map(Submission::try_from)
                .collect::<Result<_>>()?,
            total: rows::total(total, "submission count")?,
        })
    }

    async fn delete_submission(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM submissions WHERE id = ?1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(query("delete a submission"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim(&self, worker_id: &str, lease: Duration, limit: u32) -> Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        // One statement is atomic and takes the write lock before it reads, so two
        // claimers (even in two processes) never pick the same job.
        let claimed: Vec<ClaimedRow> = sqlx::query_as(&format!(
            "UPDATE submissions SET state = 'running', worker_id = ?1, attempts = attempts + 1, \
             started_ms = ?2, lease_expires_ms = ?3 \
             WHERE id IN (SELECT id FROM submissions WHERE state = 'queued' \
                          ORDER BY created_ms, id LIMIT ?4) \
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
        // The ids travel as one JSON array, whatever their number.
        let ids = serde_json::to_string(ids).map_err(|e| Error::Corrupt {
            what: "job ids",
            message: e.to_string(),
        })?;
        let renewed: Vec<String> = sqlx::query_scalar(
            "UPDATE submissions SET lease_expires_ms = ?1 \
             WHERE worker_id = ?2 AND state = 'running' \
               AND id IN (SELECT value FROM json_each(?3)) \
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
        let done = sqlx::query(
            "UPDATE submissions SET state = 'done', status = ?1, result = ?2, error = NULL, \
             finished_ms = ?3, lease_expires_ms = NULL, request = COALESCE(?4, request) \
             WHERE id = ?5 AND worker_id = ?6 AND attempts = ?7 AND state = 'running'",
        )
        .bind(&completion.status)
        .bind(&completion.result)
        .bind(completion.finished_ms)
        .bind(&completion.scrubbed_request)
        .bind(&completion.id)
        .bind(&completion.worker_id)
        .bind(i64::from(completion.attempt))
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
        let error = rows::abandoned_error_sql("?1");
        let recovered: Vec<(String, Option<String>, String)> = sqlx::query_as(&format!(
            "UPDATE submissions SET \
               state = CASE WHEN attempts >= ?1 THEN 'done' ELSE 'queued' END, \
               status = CASE WHEN attempts >= ?1 THEN 'internal_error' ELSE status END, \
               error = CASE WHEN attempts >= ?1 THEN {error} ELSE error END, \
               finished_ms = CASE WHEN attempts >= ?1 THEN ?2 ELSE finished_ms END, \
               lease_expires_ms = NULL \
             WHERE state = 'running' AND lease_expires_ms < ?2 \
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
        let depths: Vec<(String, i64)> = sqlx::query_as(
            "SELECT language, count(*) FROM submissions WHERE state = 'queued' \
             GROUP BY language ORDER BY language",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(query("measure the queue"))?;
        depths
            .into_iter()
            .map(|(language, n)| Ok((language, rows::total(n, "queue depth")?)))
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    async fn take_webhook(&self, id: &str) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE submissions SET webhook_taken = 1 \
             WHERE id = ?1 AND webhook_taken = 0 AND state = 'done'",
        )
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(query("take a webhook"))?;
        Ok(taken.rows_affected() > 0)
    }

    async fn record_webhook(&self, id: &str, delivery: &WebhookDelivery) -> Result<()> {
        sqlx::query("UPDATE submissions SET webhook = ?1 WHERE id = ?2")
            .bind(rows::webhook_json(delivery)?)
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(query("record a webhook delivery"))?;
        Ok(())
    }

    async fn delete_finished_before(&self, before_ms: i64) -> Result<u64> {
        let deleted =
            sqlx::query("DELETE FROM submissions WHERE state = 'done' AND finished_ms < ?1")
                .bind(before_ms)
                .execute(&self.writer)
                .await
                .map_err(query("delete old submissions"))?;
        Ok(deleted.rows_affected())
    }

    async fn create_key(&self, key: &NewApiKey) -> Result<ApiKey> {
        let row: KeyRow = sqlx::query_as(&format!(
            "INSERT INTO api_keys (id, name, hash, scope, rate_per_second, rate_burst, \
             max_concurrent, webhook_secret, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {KEY_COLUMNS}"
        ))
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.hash)
        .bind(key.scope.as_str())
        .bind(key.rate_per_second)
        .bind(key.rate_burst.map(i64::from))
        .bind(key.max_concurrent.map(i64::from))
        .bind(&key.webhook_secret)
        .bind(key.created_ms)
        .fetch_one(&self.writer)
        .await
        .map_err(|source| {
            // SQLite names the column, not the constraint, in its message.
            let on_name = source
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation() && e.message().contains("api_keys.name"));
            if on_name {
                Error::DuplicateKeyName(key.name.clone())
            } else {
                Error::Query {
                    action: "create a key",
                    source,
                }
            }
        })?;
        ApiKey::try_from(row)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        let keys: Vec<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_ms, id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(query("list keys"))?;
        keys.into_iter().map(ApiKey::try_from).collect()
    }

    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKey>> {
        // By id first: an id that is also another key's name means the id.
        let revoked: Option<KeyRow> = sqlx::query_as(&format!(
            "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, ?2) \
             WHERE id = COALESCE((SELECT id FROM api_keys WHERE id = ?1), \
                                 (SELECT id FROM api_keys WHERE name = ?1)) \
             RETURNING {KEY_COLUMNS}"
        ))
        .bind(id_or_name)
        .bind(now_ms())
        .fetch_optional(&self.writer)
        .await
        .map_err(query("revoke a key"))?;
        revoked.map(ApiKey::try_from).transpose()
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let key: Option<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1"
        ))
        .bind(hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(query("look a key up"))?;
        key.map(ApiKey::try_from).transpose()
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>> {
        let key: Option<KeyRow> =
            sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))
                .bind(id)
                .fetch_optional(&self.reader)
                .await
                .map_err(query("look a key up by id"))?;
        key.map(ApiKey::try_from).transpose()
    }

    async fn active_key_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE revoked_ms IS NULL")
            .fetch_one(&self.reader)
            .await
            .map_err(query("count keys"))?;
        rows::total(n, "key count")
    }

    async fn audit(&self, event: &AuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at_ms, kind, key_id, client_addr, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(event.at_ms)
        .bind(&event.kind)
        .bind(&event.key_id)
        .bind(&event.client_addr)
        .bind(&event.detail)
        .execute(&self.writer)
        .await
        .map_err(query("append to the audit log"))?;
        Ok(())
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        let records: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(query("read the audit log"))?;
        Ok(records.into_iter().map(AuditRecord::from).collect())
    }

    async fn heartbeat(&self, worker: &WorkerInfo) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (id, host, concurrency, running, started_ms, \
             last_heartbeat_ms, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, \
               concurrency = excluded.concurrency, running = excluded.running, \
               started_ms = excluded.started_ms, \
               last_heartbeat_ms = excluded.last_heartbeat_ms, version = excluded.version",
        )
        .bind(&worker.id)
        .bind(&worker.host)
        .bind(i64::from(worker.concurrency))
        .bind(i64::from(worker.running))
        .bind(worker.started_ms)
        .bind(worker.last_heartbeat_ms)
        .bind(&worker.version)
        .execute(&self.writer)
        .await
        .map_err(query("record a heartbeat"))?;
        Ok(())
    }

    async fn workers(&self, within: Duration) -> Result<Vec<WorkerInfo>> {
        let workers: Vec<WorkerRow> = sqlx::query_as(&format!(
            "SELECT {WORKER_COLUMNS} FROM workers WHERE last_heartbeat_ms >= ?1 \
             ORDER BY last_heartbeat_ms DESC, id"
        ))
        .bind(now_ms().saturating_sub(rows::millis(within)))
        .fetch_all(&self.reader)
        .await
        .map_err(query("list workers"))?;
        workers.into_iter().map(WorkerInfo::try_from).collect()
    }

    async fn remove_worker(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM workers WHERE id = ?1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(query("remove a worker"))?;
        Ok(())
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
            "INSERT INTO rate_buckets (bucket, tokens, updated_ms) VALUES (?1, ?3 - 1, ?4) \
             ON CONFLICT (bucket) DO UPDATE SET \
               tokens = min(?3, tokens + max(0, ?4 - updated_ms) * ?2 / 1000.0) - 1, \
               updated_ms = max(updated_ms, ?4) \
             WHERE min(?3, tokens + max(0, ?4 - updated_ms) * ?2 / 1000.0) >= 1 \
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
            sqlx::query_as("SELECT tokens, updated_ms FROM rate_buckets WHERE bucket = ?1")
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
        sqlx::query("DELETE FROM concurrency_slots WHERE bucket = ?1 AND expires_ms <= ?2")
            .bind(bucket)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query("free expired slots"))?;
        // A holder that has a slot already keeps it (and its expiry moves on).
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO concurrency_slots (bucket, holder, expires_ms) \
             SELECT ?1, ?2, ?3 WHERE (SELECT count(*) FROM concurrency_slots \
                                      WHERE bucket = ?1 AND holder <> ?2) < ?4 \
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

    async fn release_slot(&self, bucket: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM concurrency_slots WHERE bucket = ?1 AND holder = ?2")
            .bind(bucket)
            .bind(holder)
            .execute(&self.writer)
            .await
            .map_err(query("give a slot back"))?;
        Ok(())
    }
}
