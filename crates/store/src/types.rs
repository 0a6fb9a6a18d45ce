//! The records the store keeps. Times are Unix milliseconds; documents are JSON.

use serde::{Deserialize, Serialize};

/// Where a submission is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// A worker holds its lease and runs it.
    Running,
    /// Finished: it has a result, or an error saying why it has none.
    Done,
}

impl JobState {
    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(name: &str) -> Option<JobState> {
        match name {
            "queued" => Some(JobState::Queued),
            "running" => Some(JobState::Running),
            "done" => Some(JobState::Done),
            _ => None,
        }
    }
}

/// A submission to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubmission {
    /// Its id (a UUID chosen by the caller).
    pub id: String,
    /// The API key it came with; `None` for anonymous use.
    pub key_id: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The catalog id of its language (for queue depth per language).
    pub language: String,
    /// The request, as the worker needs it to run the job.
    pub request: serde_json::Value,
    /// [`JobState::Queued`] to enqueue it, [`JobState::Running`] when the caller runs
    /// it at once (then `worker_id` names the caller).
    pub state: JobState,
    /// Who runs it, for a submission stored as running.
    pub worker_id: Option<String>,
    /// Where to POST the result when it is done.
    pub callback_url: Option<String>,
    /// When it arrived.
    pub created_ms: i64,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submission {
    /// Its id.
    pub id: String,
    /// The API key it came with.
    pub key_id: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The catalog id of its language.
    pub language: String,
    /// Where it is in its life.
    pub state: JobState,
    /// The result's top status once done (`ok`, `accepted`, `internal_error`, ...).
    pub status: Option<String>,
    /// The request (possibly scrubbed of source and stdin after the run).
    pub request: Option<serde_json::Value>,
    /// The result document once done.
    pub result: Option<serde_json::Value>,
    /// Why a job that is done has no result (e.g. its workers kept dying).
    pub error: Option<String>,
    /// Where its result is POSTed.
    pub callback_url: Option<String>,
    /// How many times a worker claimed it.
    pub attempts: u32,
    /// The worker that holds (or last held) it.
    pub worker_id: Option<String>,
    /// When it arrived.
    pub created_ms: i64,
    /// When a worker last started it.
    pub started_ms: Option<i64>,
    /// When it was done.
    pub finished_ms: Option<i64>,
    /// The last webhook delivery, if any.
    pub webhook: Option<WebhookDelivery>,
}

/// A job a worker claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    /// The submission's id.
    pub id: String,
    /// The request to run.
    pub request: serde_json::Value,
    /// Which attempt this is, from 1; a completion must name it.
    pub attempt: u32,
    /// The API key it came with.
    pub key_id: Option<String>,
    /// The client's address (anonymous callers' limits count per address).
    pub client_addr: Option<String>,
    /// Where its result is POSTed.
    pub callback_url: Option<String>,
    /// When it arrived.
    pub created_ms: i64,
}

/// The result of one attempt at a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The submission's id.
    pub id: String,
    /// The worker that ran it; must still hold the lease.
    pub worker_id: String,
    /// The attempt it ran (from [`ClaimedJob::attempt`]).
    pub attempt: u32,
    /// The result's top status.
    pub status: String,
    /// The result document.
    pub result: serde_json::Value,
    /// When it finished.
    pub finished_ms: i64,
    /// When set, replaces the stored request (the operator keeps no source).
    pub scrubbed_request: Option<serde_json::Value>,
}

/// What [`Store::recover_expired`](crate::Store::recover_expired) did to a job
/// whose lease expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The submission's id.
    pub id: String,
    /// The worker whose lease expired.
    pub worker_id: Option<String>,
    /// True when it went back in the queue; false when it was ended as failed
    /// because it used up its attempts.
    pub requeued: bool,
}

/// A page of a listing, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The page number, from 1.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
}

/// One page of submissions and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The page's submissions, newest first, as summaries: their `request` and
    /// `result` are always `None` (never read: a result may be hundreds of
    /// megabytes); read one whole with [`Store::submission`](crate::Store::submission).
    pub items: Vec<Submission>,
    /// How many submissions match, on every page.
    pub total: u64,
}

/// A webhook delivery's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Where it was sent.
    pub url: String,
    /// How many tries it took (or were made).
    pub attempts: u32,
    /// The last HTTP status received.
    pub status_code: Option<u16>,
    /// Whether a 2xx answer came back.
    pub delivered: bool,
    /// The last error, when it was not delivered.
    pub error: Option<String>,
    /// When the last try ended.
    pub at_ms: i64,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Run code and read its own submissions.
    Execute,
    /// Everything, including other keys' submissions and the fleet.
    Admin,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Execute => "execute",
            Scope::Admin => "admin",
        }
    }

    /// The scope a stored name stands for.
    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "execute" => Some(Scope::Execute),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A key to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    /// Its id (public; shown in listings and logs).
    pub id: String,
    /// A name its owner chose; unique among keys.
    pub name: String,
    /// SHA-256 of the secret key, hex.
    pub hash: String,
    /// What it may do.
    pub scope: Scope,
    /// Requests per second it may make (`None`: the server's default).
    pub rate_per_second: Option<f64>,
    /// How many requests may come at once above the rate.
    pub rate_burst: Option<u32>,
    /// Jobs it may have running at once (`None`: the server's default).
    pub max_concurrent: Option<u32>,
    /// The secret webhook bodies are signed with (HMAC-SHA256).
    pub webhook_secret: String,
    /// When it was made.
    pub created_ms: i64,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// SHA-256 of the secret key, hex.
    #[serde(skip)]
    pub hash: String,
    /// What it may do.
    pub scope: Scope,
    /// Requests per second.
    pub rate_per_second: Option<f64>,
    /// Burst above the rate.
    pub rate_burst: Option<u32>,
    /// Jobs at once.
    pub max_concurrent: Option<u32>,
    /// The webhook signing secret.
    #[serde(skip)]
    pub webhook_secret: String,
    /// When it was made.
    pub created_ms: i64,
    /// When it was revoked.
    pub revoked_ms: Option<i64>,
}

/// An entry for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// When it happened.
    pub at_ms: i64,
    /// What happened: `key_created`, `key_revoked`, `request_rejected`, ...
    pub kind: String,
    /// The key concerned or used.
    pub key_id: Option<String>,
    /// The client's address, for requests.
    pub client_addr: Option<String>,
    /// Details (the reason of a rejection, the route, ...).
    pub detail: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Its sequence number.
    pub id: i64,
    /// When it happened.
    pub at_ms: i64,
    /// What happened.
    pub kind: String,
    /// The key concerned or used.
    pub key_id: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// Details.
    pub detail: serde_json::Value,
}

/// How many requests from one address were refused for one reason in one minute
/// (see [`Store::audit_refusal`](crate::Store::audit_refusal)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalCount {
    /// The start of the minute, Unix milliseconds (a multiple of 60 000).
    pub minute_ms: i64,
    /// The client's address (cut to [`AUDIT_FIELD_MAX_BYTES`](crate::AUDIT_FIELD_MAX_BYTES)).
    pub client_addr: String,
    /// Why they were refused, e.g. `rate_limited` (cut like the address).
    pub reason: String,
    /// How many were refused.
    pub count: u64,
    /// When the last of them was refused.
    pub last_ms: i64,
}

/// A worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its id (host name, process id and a random part).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// How many jobs it runs at once.
    pub concurrency: u32,
    /// How many it runs now.
    pub running: u32,
    /// When it started.
    pub started_ms: i64,
    /// When it last said it is alive.
    pub last_heartbeat_ms: i64,
    /// The runbox version it runs.
    pub version: String,
}

/// A wake-up from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A job joined the queue.
    JobQueued {
        /// The submission's id.
        id: String,
    },
    /// A job is done (completed, or failed after its attempts).
    JobFinished {
        /// The submission's id.
        id: String,
    },
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
