//! Rows as both databases return them, and their conversion into the crate's
//! records.
//!
//! Every integer column is 64-bit on both backends (BIGINT on PostgreSQL, INTEGER
//! on SQLite) and JSON decodes into `serde_json::Value` from JSONB and from TEXT
//! alike, so one row struct per table decodes from either database; the checks
//! that a stored value makes sense (a known state, a count that fits) live here
//! once.

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::types::{
    ApiKey, AuditRecord, ClaimedJob, JobState, RefusalCount, Scope, Submission, WebhookDelivery,
    WorkerInfo,
};

/// The columns of [`SubmissionRow`], for `SELECT` and `RETURNING` lists.
pub(crate) const SUBMISSION_COLUMNS: &str = "id, key_id, client_addr, language, state, status, \
     request, result, error, callback_url, attempts, worker_id, created_ms, started_ms, \
     finished_ms, webhook";

/// The columns of [`SubmissionRow`] for a listing: the request and the result,
/// which may be hundreds of megabytes, are not read (they come back `NULL`).
pub(crate) const SUMMARY_COLUMNS: &str = "id, key_id, client_addr, language, state, status, \
     NULL AS request, NULL AS result, error, callback_url, attempts, worker_id, created_ms, \
     started_ms, finished_ms, webhook";

/// The columns of [`ClaimedRow`].
pub(crate) const CLAIMED_COLUMNS: &str =
    "id, request, attempts, key_id, client_addr, callback_url, created_ms";

/// The columns of [`KeyRow`].
pub(crate) const KEY_COLUMNS: &str = "id, name, hash, scope, rate_per_second, rate_burst, \
     max_concurrent, webhook_secret, created_ms, revoked_ms";

/// The columns of [`WorkerRow`].
pub(crate) const WORKER_COLUMNS: &str =
    "id, host, concurrency, running, started_ms, last_heartbeat_ms, version";

/// The columns of [`AuditRow`].
pub(crate) const AUDIT_COLUMNS: &str = "id, at_ms, kind, key_id, client_addr, detail";

/// The columns of [`RefusalRow`].
pub(crate) const REFUSAL_COLUMNS: &str = "minute_ms, client_addr, reason, count, last_ms";

/// A `submissions` row.
#[derive(sqlx::FromRow)]
pub(crate) struct SubmissionRow {
    id: String,
    key_id: Option<String>,
    client_addr: Option<String>,
    language: String,
    state: String,
    status: Option<String>,
    request: Option<Value>,
    result: Option<Value>,
    error: Option<String>,
    callback_url: Option<String>,
    attempts: i64,
    worker_id: Option<String>,
    created_ms: i64,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
    webhook: Option<Value>,
}

impl TryFrom<SubmissionRow> for Submission {
    type Error = Error;

    fn try_from(row: SubmissionRow) -> Result<Submission> {
        let state = JobState::parse(&row.state).ok_or_else(|| Error::Corrupt {
            what: "submission state",
            message: format!("submission {} has state '{}'", row.id, row.state),
        })?;
        let webhook = match row.webhook {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                serde_json::from_value::<WebhookDelivery>(value).map_err(|e| Error::Corrupt {
                    what: "webhook delivery",
                    message: format!("submission {}: {e}", row.id),
                })?,
            ),
        };
        Ok(Submission {
            attempts: count(row.attempts, "submission attempts")?,
            id: row.id,
            key_id: row.key_id,
            client_addr: row.client_addr,
            language: row.language,
            state,
            status: row.status,
            request: row.request,
            result: row.result,
            error: row.error,
            callback_url: row.callback_url,
            worker_id: row.worker_id,
            created_ms: row.created_ms,
            started_ms: row.started_ms,
            finished_ms: row.finished_ms,
            webhook,
        })
    }
}

/// A claimed job, as `UPDATE ... RETURNING` gives it back.
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    id: String,
    request: Option<Value>,
    attempts: i64,
    key_id: Option<String>,
    client_addr: Option<String>,
    callback_url: Option<String>,
    created_ms: i64,
}

impl TryFrom<ClaimedRow> for ClaimedJob {
    type Error = Error;

    fn try_from(row: ClaimedRow) -> Result<ClaimedJob> {
        Ok(ClaimedJob {
            attempt: count(row.attempts, "submission attempts")?,
            id: row.id,
            // A queued job always has its request (it is only scrubbed on completion);
            // a missing one is handed over as `null` for the worker to refuse as a bad
            // request, rather than failing the whole claim (its jobs are taken already).
            request: row.request.unwrap_or(Value::Null),
            key_id: row.key_id,
            client_addr: row.client_addr,
            callback_url: row.callback_url,
            created_ms: row.created_ms,
        })
    }
}

/// Puts claimed jobs oldest first: `RETURNING` gives rows in no particular order.
pub(crate) fn oldest_first(rows: Vec<ClaimedRow>) -> Result<Vec<ClaimedJob>> {
    let mut jobs = rows
        .into_iter()
        .map(ClaimedJob::try_from)
        .collect::<Result<Vec<_>>>()?;
    jobs.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(jobs)
}

/// An `api_keys` row.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    id: String,
    name: String,
    hash: String,
    scope: String,
    rate_per_second: Option<f64>,
    rate_burst: Option<i64>,
    max_concurrent: Option<i64>,
    webhook_secret: String,
    created_ms: i64,
    revoked_ms: Option<i64>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = Error;

    fn try_from(row: KeyRow) -> Result<ApiKey> {
        let scope = Scope::parse(&row.scope).ok_or_else(|| Error::Corrupt {
            what: "key scope",
            message: format!("key {} has scope '{}'", row.id, row.scope),
        })?;
        Ok(ApiKey {
            rate_burst: row
                .rate_burst
                .map(|n| count(n, "key rate burst"))
                .transpose()?,
            max_concurrent: row
                .max_concurrent
                .map(|n| count(n, "key concurrency"))
                .transpose()?,
            id: row.id,
            name: row.name,
            hash: row.hash,
            scope,
            rate_per_second: row.rate_per_second,
            webhook_secret: row.webhook_secret,
            created_ms: row.created_ms,
            revoked_ms: row.revoked_ms,
        })
    }
}

/// An `audit_log` row.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    at_ms: i64,
    kind: String,
    key_id: Option<String>,
    client_addr: Option<String>,
    detail: Value,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> AuditRecord {
        AuditRecord {
            id: row.id,
            at_ms: row.at_ms,
            kind: row.kind,
            key_id: row.key_id,
            client_addr: row.client_addr,
            detail: row.detail,
        }
    }
}

/// An `audit_refusals` row.
#[derive(sqlx::FromRow)]
pub(crate) struct RefusalRow {
    minute_ms: i64,
    client_addr: String,
    reason: String,
    count: i64,
    last_ms: i64,
}

impl TryFrom<RefusalRow> for RefusalCount {
    type Error = Error;

    fn try_from(row: RefusalRow) -> Result<RefusalCount> {
        Ok(RefusalCount {
            count: total(row.count, "refusal count")?,
            minute_ms: row.minute_ms,
            client_addr: row.client_addr,
            reason: row.reason,
            last_ms: row.last_ms,
        })
    }
}

/// The start of the minute `at_ms` falls in (refusals are counted per minute).
pub(crate) fn minute_of(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(60_000)
}

/// A `workers` row.
#[derive(sqlx::FromRow)]
pub(crate) struct WorkerRow {
    id: String,
    host: String,
    concurrency: i64,
    running: i64,
    started_ms: i64,
    last_heartbeat_ms: i64,
    version: String,
}

impl TryFrom<WorkerRow> for WorkerInfo {
    type Error = Error;

    fn try_from(row: WorkerRow) -> Result<WorkerInfo> {
        Ok(WorkerInfo {
            concurrency: count(row.concurrency, "worker concurrency")?,
            running: count(row.running, "worker running jobs")?,
            id: row.id,
            host: row.host,
            started_ms: row.started_ms,
            last_heartbeat_ms: row.last_heartbeat_ms,
            version: row.version,
        })
    }
}

/// A stored count as the `u32` the records carry.
pub(crate) fn count(value: i64, what: &'static str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Corrupt {
        what,
        message: format!("{value} is not a count"),
    })
}

/// A stored count as `u64` (results of `count(*)`).
pub(crate) fn total(value: i64, what: &'static str) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::Corrupt {
        what,
        message: format!("{value} is not a count"),
    })
}

/// The longest duration the store adds to a time: a hundred years, so that
/// `now + lease` can never overflow a 64-bit column however long a caller asks.
const LONGEST_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// A duration in whole milliseconds, as stored.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).map_or(LONGEST_MS, |ms| ms.min(LONGEST_MS))
}

/// The JSON stored for a webhook delivery.
pub(crate) fn webhook_json(delivery: &WebhookDelivery) -> Result<Value> {
    serde_json::to_value(delivery).map_err(|e| Error::Corrupt {
        what: "webhook delivery",
        message: e.to_string(),
    })
}

/// The `(LIMIT, OFFSET)` of a page; page 0 is read as page 1.
pub(crate) fn limit_offset(page: crate::types::Page) -> (i64, i64) {
    let per_page = i64::from(page.per_page);
    let offset = i64::from(page.page.max(1) - 1).saturating_mul(per_page);
    (per_page, offset)
}

/// The attempts and start time a new submission is stored with: one stored as
/// running is on its first attempt, started when it arrived.
pub(crate) fn initial_attempt(
    submission: &crate::types::NewSubmission,
) -> (i64, Option<i64>, Option<i64>) {
    match submission.state {
        JobState::Queued => (0, None, None),
        JobState::Running => (1, Some(submission.created_ms), None),
        JobState::Done => (0, None, Some(submission.created_ms)),
    }
}

/// The first lease of a submission stored as running: its runner renews it while
/// the job runs, so a job whose node died before the first renewal is still found
/// and run again.
pub(crate) const RUNNING_INSERT_LEASE_MS: i64 = 60_000;

/// The lease expiry a new submission starts with.
pub(crate) fn initial_lease(submission: &crate::types::NewSubmission) -> Option<i64> {
    (submission.state == JobState::Running)
        .then_some(submission.created_ms + RUNNING_INSERT_LEASE_MS)
}

/// The error a job that used up its attempts is ended with, as a SQL expression
/// over the row (`attempts`, `worker_id`) and the bound maximum `max`; the same
/// words on both backends.
pub(crate) fn abandoned_error_sql(max: &str) -> String {
    format!(
        "'gave up after ' || attempts || ' of ' || {max} || ' attempts: the lease of worker ' \
         || COALESCE(worker_id, '(none)') || ', the last to run it, expired without a result \
         (its workers died, hung or lost the database)'"
    )
}
