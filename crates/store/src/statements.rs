//! The statements both dialects speak, written once.
//!
//! Most of what the store says to a database is the same SQL on SQLite and on
//! PostgreSQL: sqlx's SQLite driver takes PostgreSQL's numbered parameters (`$1`,
//! mapped by number, so one may appear twice or out of order), both databases know
//! `RETURNING`, `ON CONFLICT ... DO UPDATE` with `excluded`, `true`/`false` and
//! `count(*)`, and [`crate::rows`] decodes the rows of either. What really differs
//! stays in the dialect's own module: claiming (`FOR UPDATE SKIP LOCKED`), wake-ups
//! (`NOTIFY` against an in-process channel), whose clock times leases and limits
//! (the database's for a fleet), the token bucket, slots, connecting and migrating.
//!
//! This file is compiled twice, as `sqlite::statements` and
//! `postgres::statements`, each against its parent's `Db` (the sqlx database
//! type) and the few dialect hooks named `super::...` below. That keeps this plain,
//! concrete sqlx code. The alternatives were weighed: `sqlx::Any` decodes no JSON
//! and hides the dialects' own features; functions generic over `sqlx::Database`
//! need a dozen higher-ranked bounds (`for<'q> i64: Encode<'q, DB>`, executors of
//! `&mut DB::Connection`, a row-count trait sqlx lacks) that Rust does not carry
//! from one trait to its users, so every function would repeat them, and their
//! futures trip the `Send` checks of `async_trait`.

use std::time::Duration;

use sqlx::Executor;
use sqlx::query::Query;

use super::Db;
use crate::audit;
use crate::error::{Error, Result};
use crate::rows::{
    self, AUDIT_COLUMNS, AuditRow, KEY_COLUMNS, KeyRow, REFUSAL_COLUMNS, RefusalRow,
    SUBMISSION_COLUMNS, SUMMARY_COLUMNS, SubmissionRow, WORKER_COLUMNS, WorkerRow,
};
use crate::types::{
    ApiKey, AuditEvent, AuditRecord, Completion, Listing, NewApiKey, NewSubmission, Page,
    RefusalCount, Submission, WebhookDelivery, WorkerInfo, now_ms,
};

/// A query of this dialect with its arguments.
type Statement<'q> = Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// The error of a failed query, saying what the store was doing.
pub(crate) fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Query { action, source }
}

/// Checks that the database answers.
pub(crate) async fn ping<'e>(db: impl Executor<'e, Database = Db>) -> Result<()> {
    db.execute("SELECT 1")
        .await
        .map_err(query("check that the database answers"))?;
    Ok(())
}

// --- submissions -------------------------------------------------------------------

/// Inserts a submission: the arguments are bound by [`bind_new_submission`].
pub(crate) const INSERT_SUBMISSION: &str = "INSERT INTO submissions (id, key_id, client_addr, \
     language, state, request, callback_url, attempts, worker_id, created_ms, started_ms, \
     finished_ms, lease_expires_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// Binds `$1` to `$13` of [`INSERT_SUBMISSION`].
pub(crate) fn bind_new_submission<'q>(
    statement: Statement<'q>,
    submission: &'q NewSubmission,
) -> Statement<'q> {
    let (attempts, started_ms, finished_ms) = rows::initial_attempt(submission);
    statement
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
}

/// One submission, or `None`.
pub(crate) async fn submission<'e>(
    db: impl Executor<'e, Database = Db>,
    id: &str,
) -> Result<Option<Submission>> {
    let row: Option<SubmissionRow> = sqlx::query_as(&format!(
        "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
    .map_err(query("read a submission"))?;
    row.map(Submission::try_from).transpose()
}

/// A page of a key's (or the anonymous) submissions and their total, read on one
/// connection: the caller makes it a transaction, so both come from one snapshot.
/// Only the summary columns are read: a stored result may be hundreds of
/// megabytes, and a listing shows none.
pub(crate) async fn list_submissions(
    db: &mut <Db as sqlx::Database>::Connection,
    key_id: Option<&str>,
    page: Page,
) -> Result<Listing> {
    // Two spellings, so that each is a plain index lookup; the dialect spells the
    // anonymous one (it must still name `$1` on PostgreSQL).
    let filter = if key_id.is_some() {
        "key_id = $1"
    } else {
        super::ANONYMOUS_FILTER
    };
    let (limit, offset) = rows::limit_offset(page);
    let items: Vec<SubmissionRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM submissions WHERE {filter} \
         ORDER BY created_ms DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(key_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *db)
    .await
    .map_err(query("list submissions"))?;
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM submissions WHERE {filter}"))
            .bind(key_id)
            .fetch_one(&mut *db)
            .await
            .map_err(query("count submissions"))?;
    Ok(Listing {
        items: items
            .into_iter()
            .map(Submission::try_from)
            .collect::<Result<_>>()?,
        total: rows::total(total, "submission count")?,
    })
}

/// Deletes one submission; false when there was none.
pub(crate) async fn delete_submission<'e>(
    db: impl Executor<'e, Database = Db>,
    id: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM submissions WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map_err(query("delete a submission"))?;
    Ok(done.rows_affected() > 0)
}

/// Completes a job while its worker holds the lease of that attempt: the
/// arguments are bound by [`bind_completion`].
pub(crate) const COMPLETE: &str = "UPDATE submissions SET state = 'done', status = $1, \
     result = $2, error = NULL, finished_ms = $3, lease_expires_ms = NULL, \
     request = COALESCE($4, request) \
     WHERE id = $5 AND worker_id = $6 AND attempts = $7 AND state = 'running'";

/// Binds `$1` to `$7` of [`COMPLETE`].
pub(crate) fn bind_completion<'q>(
    statement: Statement<'q>,
    completion: &'q Completion,
) -> Statement<'q> {
    statement
        .bind(&completion.status)
        .bind(&completion.result)
        .bind(completion.finished_ms)
        .bind(&completion.scrubbed_request)
        .bind(&completion.id)
        .bind(&completion.worker_id)
        .bind(i64::from(completion.attempt))
}

/// Queued jobs per language.
pub(crate) async fn queue_depth<'e>(
    db: impl Executor<'e, Database = Db>,
) -> Result<Vec<(String, u64)>> {
    let depths: Vec<(String, i64)> = sqlx::query_as(
        "SELECT language, count(*) FROM submissions WHERE state = 'queued' \
         GROUP BY language ORDER BY language",
    )
    .fetch_all(db)
    .await
    .map_err(query("measure the queue"))?;
    depths
        .into_iter()
        .map(|(language, n)| Ok((language, rows::total(n, "queue depth")?)))
        .collect()
}

/// Marks the webhook of a finished submission as taken; true for the one caller
/// whose update found it untaken.
pub(crate) async fn take_webhook<'e>(
    db: impl Executor<'e, Database = Db>,
    id: &str,
) -> Result<bool> {
    let taken = sqlx::query(
        "UPDATE submissions SET webhook_taken = true \
         WHERE id = $1 AND webhook_taken = false AND state = 'done'",
    )
    .bind(id)
    .execute(db)
    .await
    .map_err(query("take a webhook"))?;
    Ok(taken.rows_affected() > 0)
}

/// Records the outcome of delivering a submission's webhook.
pub(crate) async fn record_webhook<'e>(
    db: impl Executor<'e, Database = Db>,
    id: &str,
    delivery: &WebhookDelivery,
) -> Result<()> {
    sqlx::query("UPDATE submissions SET webhook = $1 WHERE id = $2")
        .bind(rows::webhook_json(delivery)?)
        .bind(id)
        .execute(db)
        .await
        .map_err(query("record a webhook delivery"))?;
    Ok(())
}

/// Deletes finished submissions older than `before_ms`.
pub(crate) async fn delete_finished_before<'e>(
    db: impl Executor<'e, Database = Db>,
    before_ms: i64,
) -> Result<u64> {
    let deleted = sqlx::query("DELETE FROM submissions WHERE state = 'done' AND finished_ms < $1")
        .bind(before_ms)
        .execute(db)
        .await
        .map_err(query("delete old submissions"))?;
    Ok(deleted.rows_affected())
}

// --- API keys ----------------------------------------------------------------------

/// Stores a new key; a name that is taken is [`Error::DuplicateKeyName`] (the
/// dialect's `is_duplicate_key_name` tells, as the databases word it differently).
pub(crate) async fn create_key<'e>(
    db: impl Executor<'e, Database = Db>,
    key: &NewApiKey,
) -> Result<ApiKey> {
    let row: KeyRow = sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, name, hash, scope, rate_per_second, rate_burst, \
         max_concurrent, webhook_secret, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {KEY_COLUMNS}"
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
    .fetch_one(db)
    .await
    .map_err(|source| {
        if super::is_duplicate_key_name(&source) {
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

/// Every key, oldest first.
pub(crate) async fn list_keys<'e>(db: impl Executor<'e, Database = Db>) -> Result<Vec<ApiKey>> {
    let keys: Vec<KeyRow> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_ms, id"
    ))
    .fetch_all(db)
    .await
    .map_err(query("list keys"))?;
    keys.into_iter().map(ApiKey::try_from).collect()
}

/// Revokes the key with this id, or else this name.
pub(crate) async fn revoke_key<'e>(
    db: impl Executor<'e, Database = Db>,
    id_or_name: &str,
) -> Result<Option<ApiKey>> {
    // By id first: an id that is also another key's name means the id.
    let revoked: Option<KeyRow> = sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, $2) \
         WHERE id = COALESCE((SELECT id FROM api_keys WHERE id = $1), \
                             (SELECT id FROM api_keys WHERE name = $1)) \
         RETURNING {KEY_COLUMNS}"
    ))
    .bind(id_or_name)
    .bind(now_ms())
    .fetch_optional(db)
    .await
    .map_err(query("revoke a key"))?;
    revoked.map(ApiKey::try_from).transpose()
}

/// The key whose `column` (`id` or `hash`) is `value`.
pub(crate) async fn key_by<'e>(
    db: impl Executor<'e, Database = Db>,
    column: KeyColumn,
    value: &str,
) -> Result<Option<ApiKey>> {
    let (column, action) = match column {
        KeyColumn::Id => ("id", "look a key up by id"),
        KeyColumn::Hash => ("hash", "look a key up"),
    };
    let key: Option<KeyRow> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE {column} = $1"
    ))
    .bind(value)
    .fetch_optional(db)
    .await
    .map_err(query(action))?;
    key.map(ApiKey::try_from).transpose()
}

/// The columns a key is looked up by.
pub(crate) enum KeyColumn {
    /// Its public id.
    Id,
    /// The hash of its secret.
    Hash,
}

/// How many keys are not revoked.
pub(crate) async fn active_key_count<'e>(db: impl Executor<'e, Database = Db>) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE revoked_ms IS NULL")
        .fetch_one(db)
        .await
        .map_err(query("count keys"))?;
    rows::total(n, "key count")
}

// --- audit log ---------------------------------------------------------------------

/// Appends an event, cut to the audit log's bounds.
pub(crate) async fn audit<'e>(
    db: impl Executor<'e, Database = Db>,
    event: &AuditEvent,
) -> Result<()> {
    let event = audit::bounded(event);
    sqlx::query(
        "INSERT INTO audit_log (at_ms, kind, key_id, client_addr, detail) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.at_ms)
    .bind(&event.kind)
    .bind(&event.key_id)
    .bind(&event.client_addr)
    .bind(&event.detail)
    .execute(db)
    .await
    .map_err(query("append to the audit log"))?;
    Ok(())
}

/// The newest `limit` audit events.
pub(crate) async fn audit_log<'e>(
    db: impl Executor<'e, Database = Db>,
    limit: u32,
) -> Result<Vec<AuditRecord>> {
    let records: Vec<AuditRow> = sqlx::query_as(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(query("read the audit log"))?;
    Ok(records.into_iter().map(AuditRecord::from).collect())
}

/// Counts one refused request in its minute's row.
pub(crate) async fn audit_refusal<'e>(
    db: impl Executor<'e, Database = Db>,
    client_addr: &str,
    reason: &str,
    at_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_refusals (minute_ms, client_addr, reason, count, last_ms) \
         VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (minute_ms, client_addr, reason) DO UPDATE SET \
           count = audit_refusals.count + 1, \
           last_ms = CASE WHEN excluded.last_ms > audit_refusals.last_ms \
                     THEN excluded.last_ms ELSE audit_refusals.last_ms END",
    )
    .bind(rows::minute_of(at_ms))
    .bind(audit::cut(client_addr, audit::AUDIT_FIELD_MAX_BYTES))
    .bind(audit::cut(reason, audit::AUDIT_FIELD_MAX_BYTES))
    .bind(at_ms)
    .execute(db)
    .await
    .map_err(query("count a refused request"))?;
    Ok(())
}

/// The newest `limit` refusal counts.
pub(crate) async fn audit_refusals<'e>(
    db: impl Executor<'e, Database = Db>,
    limit: u32,
) -> Result<Vec<RefusalCount>> {
    let counts: Vec<RefusalRow> = sqlx::query_as(&format!(
        "SELECT {REFUSAL_COLUMNS} FROM audit_refusals \
         ORDER BY minute_ms DESC, count DESC, client_addr, reason LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(query("read the refused requests"))?;
    counts.into_iter().map(RefusalCount::try_from).collect()
}

/// Deletes audit events (and refusal counts of minutes that began) before
/// `before_ms`, in one transaction; returns how many rows went.
pub(crate) async fn delete_audit_before(
    db: &mut <Db as sqlx::Database>::Connection,
    before_ms: i64,
) -> Result<u64> {
    let events = sqlx::query("DELETE FROM audit_log WHERE at_ms < $1")
        .bind(before_ms)
        .execute(&mut *db)
        .await
        .map_err(query("delete old audit events"))?;
    let counts = sqlx::query("DELETE FROM audit_refusals WHERE minute_ms < $1")
        .bind(before_ms)
        .execute(&mut *db)
        .await
        .map_err(query("delete old refusal counts"))?;
    Ok(events.rows_affected() + counts.rows_affected())
}

// --- fleet -------------------------------------------------------------------------

/// Records that a worker is alive.
pub(crate) async fn heartbeat<'e>(
    db: impl Executor<'e, Database = Db>,
    worker: &WorkerInfo,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workers (id, host, concurrency, running, started_ms, \
         last_heartbeat_ms, version) VALUES ($1, $2, $3, $4, $5, $6, $7) \
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
    .execute(db)
    .await
    .map_err(query("record a heartbeat"))?;
    Ok(())
}

/// Workers seen within `within` of now, newest first.
pub(crate) async fn workers<'e>(
    db: impl Executor<'e, Database = Db>,
    within: Duration,
) -> Result<Vec<WorkerInfo>> {
    // Heartbeats carry the workers' own clocks, so "within" is measured by this
    // node's clock too, not the database's.
    let workers: Vec<WorkerRow> = sqlx::query_as(&format!(
        "SELECT {WORKER_COLUMNS} FROM workers WHERE last_heartbeat_ms >= $1 \
         ORDER BY last_heartbeat_ms DESC, id"
    ))
    .bind(now_ms().saturating_sub(rows::millis(within)))
    .fetch_all(db)
    .await
    .map_err(query("list workers"))?;
    workers.into_iter().map(WorkerInfo::try_from).collect()
}

/// Removes a worker's row.
pub(crate) async fn remove_worker<'e>(
    db: impl Executor<'e, Database = Db>,
    id: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM workers WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map_err(query("remove a worker"))?;
    Ok(())
}

// --- shared limits -----------------------------------------------------------------

/// Gives a slot back.
pub(crate) async fn release_slot<'e>(
    db: impl Executor<'e, Database = Db>,
    bucket: &str,
    holder: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM concurrency_slots WHERE bucket = $1 AND holder = $2")
        .bind(bucket)
        .bind(holder)
        .execute(db)
        .await
        .map_err(query("give a slot back"))?;
    Ok(())
}
