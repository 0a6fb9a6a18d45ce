//! Running jobs: at once for synchronous executes, from the store's queue for
//! submissions, with leases renewed while a job runs and results written once.
//!
//! The runner takes jobs the engine has checked ([`CheckedJob`]) and answers the
//! engine's [`RunResult`]; it never sees HTTP. What it keeps in the history goes
//! through a [`Codec`] given by the layer above (the wire format), so JSON is
//! only ever an opaque value here. Its refusals are typed ([`Refusal`]): the
//! routes decide what status each one is.
//!
//! A job belongs to the runner, not to the request that brought it: a
//! synchronous job runs in a task of its own that holds its permits and its
//! concurrency slot until it ends, so a client that hangs up neither frees its
//! worker while the box still runs nor leaves a row whose lease expires and runs
//! it a second time.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use runbox_engine::{CheckedJob, Engine, Job, JobError, Live, LiveEvent, RunResult};
use runbox_sandbox::{Signaller, Terminal, TerminalSize};
use runbox_store::{ClaimedJob, Completion, JobState, NewSubmission, Store, StoreEvent, now_ms};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use crate::admission::{Admission, AdmissionRefusal, bucket_of};
use crate::auth::Caller;
use crate::config::ServerConfig;
use crate::webhook::{Payload, Webhooks};

/// How the runner writes jobs and results into the history and reads stored
/// jobs back: the server's wire format, given by the layer above.
pub trait Codec: Send + Sync {
    /// A stored request back as a job, with how its result is to be written.
    fn decode_job(&self, stored: &serde_json::Value) -> Result<(Job, ResultFormat), JobError>;
    /// A result as the history (and a webhook) keeps it, outputs included.
    fn encode_result(
        &self,
        id: &str,
        result: &RunResult,
        format: ResultFormat,
    ) -> serde_json::Value;
    /// The stored form of a job that ended without a result, for a reason of the host.
    fn encode_failure(&self, id: &str, language: &str, message: &str) -> serde_json::Value;
    /// `result` without its outputs (a history that keeps none).
    fn without_output(&self, result: &serde_json::Value) -> serde_json::Value;
    /// `request` without source, files, inputs or harness files (a history that
    /// keeps no source).
    fn scrub_request(&self, request: &serde_json::Value) -> serde_json::Value;
    /// What the callback of a done submission sends (the adapter that queued it
    /// may want its own terms).
    fn callback(&self, submission: &runbox_store::Submission) -> Payload;
}

/// How a result's outputs are written when it is stored: opaque to the runner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResultFormat {
    /// Outputs in base64 (exact bytes) rather than UTF-8 text.
    pub base64: bool,
    /// Each stage's interleaved `output` too.
    pub combined: bool,
}

/// What a caller gives the runner with a checked job: what the history keeps.
#[derive(Debug, Clone)]
pub struct Record {
    /// The request as the history keeps it (the codec scrubs it when the
    /// operator keeps no source).
    pub request: serde_json::Value,
    /// How its result is written.
    pub format: ResultFormat,
    /// Where the result is POSTed when done (queued jobs only).
    pub callback_url: Option<String>,
}

/// Why the runner refused a job: the caller's mistake, a bound, or the store.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The job itself is wrong.
    #[error(transparent)]
    Job(#[from] JobError),
    /// Too many jobs are admitted or queued.
    #[error("the queue is full ({waiting} jobs waiting, at most {capacity}): try again shortly")]
    QueueFull {
        /// Jobs waiting now.
        waiting: u64,
        /// The bound.
        capacity: u32,
    },
    /// No worker freed up in time for a synchronous job.
    #[error(
        "every worker stayed busy for {} s: try again shortly, or queue the job with POST /api/v1/submissions",
        waited.as_secs()
    )]
    NoWorker {
        /// How long it waited.
        waited: Duration,
    },
    /// A rate limit or concurrency cap of the caller.
    #[error(transparent)]
    Admission(#[from] AdmissionRefusal),
    /// The node is shutting down.
    #[error("this server is shutting down: send the request to another node or try again shortly")]
    ShuttingDown,
    /// A callback URL that this server will not call.
    #[error("{0}")]
    Callback(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] runbox_store::Error),
    /// runbox itself failed while it handled the job (a task panicked).
    #[error("{0}")]
    Internal(String),
}

/// A job that ran (or failed for a reason of the host).
#[derive(Debug)]
pub struct Ran {
    /// The submission's id.
    pub id: String,
    /// The engine's result, or why the host could not produce one.
    pub result: Result<RunResult, String>,
}

/// The caller's side of a live job (see [`Runner::execute_live`]).
pub struct LiveChannels {
    /// Hears each stage and its output as they happen, on the job's thread.
    pub events: Box<dyn Fn(LiveEvent<'_>) + Send + Sync>,
    /// The read end of the program's stdin pipe.
    pub stdin: OwnedFd,
    /// Reaches the program; cancel it to stop the job.
    pub signals: Signaller,
    /// TTY mode: the program runs on a terminal of this size, resized through
    /// the handle.
    pub terminal: Option<(TerminalSize, Terminal)>,
}

/// How a job is run on the engine: at once, or live.
type RunWith = Box<dyn FnOnce(&Engine, &CheckedJob) -> runbox_engine::Result<RunResult> + Send>;

/// Runs jobs on this node's engine and keeps the store up to date.
pub struct Runner {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The settings.
    pub config: Arc<ServerConfig>,
    /// Rate limits and concurrency slots.
    pub admission: Arc<Admission>,
    /// This node's worker id.
    pub node_id: String,
    codec: Arc<dyn Codec>,
    /// Jobs this node runs at once.
    run_slots: Arc<Semaphore>,
    /// Synchronous jobs admitted (running or waiting for a run slot).
    admitted: Arc<Semaphore>,
    /// Jobs running now.
    running: Arc<AtomicU32>,
    /// Webhook delivery.
    webhooks: Arc<Webhooks>,
}

impl Runner {
    /// A runner with `workers` run slots, writing the history with `codec`.
    pub fn new(
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        config: Arc<ServerConfig>,
        admission: Arc<Admission>,
        node_id: String,
        workers: u32,
        codec: Arc<dyn Codec>,
    ) -> Runner {
        let webhooks = Arc::new(Webhooks::new(store.clone(), config.webhooks.clone()));
        Runner {
            run_slots: Arc::new(Semaphore::new(workers.max(1) as usize)),
            admitted: Arc::new(Semaphore::new(config.queue_capacity as usize)),
            running: Arc::new(AtomicU32::new(0)),
            engine,
            store,
            config,
            admission,
            node_id,
            codec,
            webhooks,
        }
    }

    /// How many jobs run now.
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    /// The webhook sender (Judge0's callbacks use it too).
    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    /// Checks a job fully (the engine's one check) off the async threads: the
    /// first check of a language may run its version command in a box.
    /// A panic of the check is runbox's failure, not the caller's.
    pub async fn check(&self, job: Job) -> Result<CheckedJob, Refusal> {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || engine.check(job)).await {
            Ok(checked) => Ok(checked?),
            Err(panic) => Err(Refusal::Internal(format!(
                "the check of this job failed: {panic}"
            ))),
        }
    }

    /// [`Runner::check`] for a live job (no tests, one run).
    pub async fn check_live(&self, job: Job) -> Result<CheckedJob, Refusal> {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || engine.check_live(job)).await {
            Ok(checked) => Ok(checked?),
            Err(panic) => Err(Refusal::Internal(format!(
                "the check of this job failed: {panic}"
            ))),
        }
    }

    /// Runs a checked job now and returns its result; it is stored as a submission.
    pub async fn execute_now(
        self: &Arc<Self>,
        caller: &Caller,
        job: CheckedJob,
        record: Record,
    ) -> Result<Ran, Refusal> {
        self.execute_with(caller, job, record, Box::new(|engine, job| engine.run(job)))
            .await
    }

    /// Runs a checked job now as a live job, talking to it through `channels`.
    /// The result is returned and stored like an execute's.
    pub async fn execute_live(
        self: &Arc<Self>,
        caller: &Caller,
        job: CheckedJob,
        record: Record,
        channels: LiveChannels,
    ) -> Result<Ran, Refusal> {
        let run: RunWith = Box::new(move |engine, job| {
            let live = Live {
                events: &*channels.events,
                stdin: std::sync::Mutex::new(Some(channels.stdin)),
                signals: channels.signals,
                terminal: channels.terminal,
            };
            engine.run_live(job, &live)
        });
        self.execute_with(caller, job, record, run).await
    }

    /// Admits, records and runs a job now with `run`, in a task that owns it.
    async fn execute_with(
        self: &Arc<Self>,
        caller: &Caller,
        job: CheckedJob,
        record: Record,
        run: RunWith,
    ) -> Result<Ran, Refusal> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            metrics::counter!("runbox_rejected_requests_total", "reason" => "queue_full")
                .increment(1);
            return Err(Refusal::QueueFull {
                waiting: u64::from(self.config.queue_capacity),
                capacity: self.config.queue_capacity,
            });
        };
        let id = uuid::Uuid::now_v7().to_string();
        self.admission.acquire_slot(caller, &id).await?;
        let bucket = caller.bucket();
        let submission = NewSubmission {
            id: id.clone(),
            key_id: caller.key_id().map(str::to_string),
            client_addr: Some(caller.addr().to_string()),
            language: job.job().language.clone(),
            // A synchronous job runs from memory: without stored sources it is
            // stored scrubbed from the start, so the source never reaches the disk.
            request: if self.config.history.store_source {
                record.request.clone()
            } else {
                self.codec.scrub_request(&record.request)
            },
            state: JobState::Running,
            worker_id: Some(self.node_id.clone()),
            callback_url: None,
            created_ms: now_ms(),
        };
        if let Err(error) = self.store.insert_submission(&submission).await {
            self.admission.release_slot(&bucket, &id).await;
            return Err(error.into());
        }
        // From here the job is the runner's: a task of its own runs it to its
        // end, whether or not the caller still waits for it (dropping the
        // handle detaches the task, it does not cancel it).
        let runner = self.clone();
        let wait_limit = Duration::from_secs(self.config.queue.sync_wait_seconds);
        let task = tokio::spawn(async move {
            let renewing = runner.renew_while_running(id.clone(), bucket.clone());
            let slot =
                tokio::time::timeout(wait_limit, runner.run_slots.clone().acquire_owned()).await;
            let outcome = match slot {
                Ok(Ok(slot)) => {
                    let ran = runner.run_job(&id, 1, job, &record, Some(slot), run).await;
                    Ok(ran)
                }
                _ => {
                    let message = format!("no worker freed up within {} s", wait_limit.as_secs());
                    runner
                        .complete_failed(&id, 1, &job.job().language, &message)
                        .await;
                    Err(Refusal::NoWorker { waited: wait_limit })
                }
            };
            let _ = renewing.send(true);
            drop(admitted);
            runner.admission.release_slot(&bucket, &id).await;
            outcome
        });
        match task.await {
            Ok(outcome) => outcome,
            Err(error) if error.is_cancelled() => Err(Refusal::ShuttingDown),
            Err(panic) => Err(Refusal::Internal(format!("the job's task failed: {panic}"))),
        }
    }

    /// Runs one job under a renewed lease and writes its result.
    async fn run_job(
        self: &Arc<Self>,
        id: &str,
        attempt: u32,
        job: CheckedJob,
        record: &Record,
        _run_slot: Option<OwnedSemaphorePermit>,
        run: RunWith,
    ) -> Ran {
        let language = job.job().language.clone();
        self.running.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("runbox_boxes_in_use").increment(1.0);
        let started = Instant::now();
        let engine = self.engine.clone();
        let outcome = tokio::task::spawn_blocking(move || run(&engine, &job)).await;
        metrics::gauge!("runbox_boxes_in_use").decrement(1.0);
        self.running.fetch_sub(1, Ordering::Relaxed);
        let result = match outcome {
            Ok(Ok(mut result)) => {
                // One result answers, is stored and may be sent to a webhook:
                // its outputs together stay within the configured bound.
                result.cap_outputs(self.config.requests.max_result_bytes);
                Ok(result)
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(panic) => Err(format!("the job panicked: {panic}")),
        };
        let status = match &result {
            Ok(result) => result.status,
            Err(_) => runbox_engine::ResultStatus::InternalError,
        };
        metrics::counter!("runbox_runs_total", "language" => language.clone(), "status" => status.as_str())
            .increment(1);
        metrics::histogram!("runbox_run_duration_seconds", "language" => language.clone())
            .record(started.elapsed().as_secs_f64());
        let stored = match &result {
            Ok(result) => self.codec.encode_result(id, result, record.format),
            Err(message) => self.codec.encode_failure(id, &language, message),
        };
        let completion = Completion {
            id: id.to_string(),
            worker_id: self.node_id.clone(),
            attempt,
            status: status.as_str().to_string(),
            result: if self.config.history.store_output {
                stored.clone()
            } else {
                self.codec.without_output(&stored)
            },
            finished_ms: now_ms(),
            scrubbed_request: (!self.config.history.store_source)
                .then(|| self.codec.scrub_request(&record.request)),
        };
        match self.store.complete(&completion).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                id,
                "the lease was lost: another worker owns this job now; result discarded"
            ),
            Err(error) => tracing::error!(id, %error, "cannot store a result"),
        }
        Ran {
            id: id.to_string(),
            result,
        }
    }

    /// Renews the lease of `id` every third of the lease time until the returned
    /// sender says stop.
    /// The caller's concurrency slot (`bucket`) is renewed with it, so a cap
    /// holds for as long as the job runs, however long that is.
    fn renew_while_running(self: &Arc<Self>, job: String, bucket: String) -> watch::Sender<bool> {
        let (stop, mut stopped) = watch::channel(false);
        let lease = Duration::from_secs(self.config.queue.lease_seconds);
        let runner = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        match runner.store.renew(&runner.node_id, std::slice::from_ref(&job), lease).await {
                            Ok(held) if held.is_empty() => {
                                tracing::warn!(id = job, "lease lost while running");
                                break;
                            }
                            Ok(_) => {}
                            Err(error) => tracing::warn!(id = job, %error, "cannot renew a lease"),
                        }
                        if let Err(error) = runner.store.renew_slot(&bucket, &job, crate::admission::SLOT_TTL).await {
                            tracing::warn!(id = job, %error, "cannot renew a concurrency slot");
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
        });
        stop
    }

    /// Queues checked jobs as submissions, all or none; returns their ids.
    pub async fn enqueue(
        &self,
        caller: &Caller,
        jobs: Vec<(CheckedJob, Record)>,
    ) -> Result<Vec<String>, Refusal> {
        let depth: u64 = self.store.queue_depth().await?.iter().map(|(_, n)| n).sum();
        if depth + jobs.len() as u64 > u64::from(self.config.queue_capacity) {
            metrics::counter!("runbox_rejected_requests_total", "reason" => "queue_full")
                .increment(1);
            return Err(Refusal::QueueFull {
                waiting: depth,
                capacity: self.config.queue_capacity,
            });
        }
        let submissions: Vec<NewSubmission> = jobs
            .into_iter()
            .map(|(job, record)| NewSubmission {
                id: uuid::Uuid::now_v7().to_string(),
                key_id: caller.key_id().map(str::to_string),
                client_addr: Some(caller.addr().to_string()),
                language: job.job().language.clone(),
                request: record.request,
                state: JobState::Queued,
                worker_id: None,
                callback_url: record.callback_url,
                created_ms: now_ms(),
            })
            .collect();
        let mut taken: Vec<String> = Vec::new();
        for submission in &submissions {
            if let Err(error) = self.admission.acquire_slot(caller, &submission.id).await {
                for id in &taken {
                    self.admission.release_slot(&caller.bucket(), id).await;
                }
                return Err(error.into());
            }
            taken.push(submission.id.clone());
        }
        let stored = if submissions.len() == 1 {
            self.store.insert_submission(&submissions[0]).await
        } else {
            self.store.insert_submissions(&submissions).await
        };
        if let Err(error) = stored {
            for id in &taken {
                self.admission.release_slot(&caller.bucket(), id).await;
            }
            return Err(error.into());
        }
        Ok(taken)
    }

    /// Claims queued jobs while this node has free run slots, until `shutdown`.
    pub async fn work(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut events = self.store.subscribe();
        let lease = Duration::from_secs(self.config.queue.lease_seconds);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let permit = tokio::select! {
                permit = self.run_slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = shutdown.changed() => break,
            };
            match self.store.claim(&self.node_id, lease, 1).await {
                Ok(mut jobs) if !jobs.is_empty() => {
                    let job = jobs.remove(0);
                    let runner = self.clone();
                    tokio::spawn(async move { runner.run_claimed(job, permit).await });
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot claim jobs"),
            }
            drop(permit);
            // Nothing queued: sleep until a job arrives (or a second passes, in case
            // a wake-up was missed).
            tokio::select! {
                event = events.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = event {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => break,
            }
        }
    }

    /// Runs a claimed job, then releases its slot and sends its webhook.
    async fn run_claimed(self: Arc<Self>, claimed: ClaimedJob, permit: OwnedSemaphorePermit) {
        let bucket = bucket_of(claimed.key_id.as_deref(), claimed.client_addr.as_deref());
        let renewing = self.renew_while_running(claimed.id.clone(), bucket.clone());
        let stored = match self.codec.decode_job(&claimed.request) {
            Ok((job, format)) => {
                let language = job.language.clone();
                match self.check(job).await {
                    Ok(checked) => Ok((checked, format)),
                    // The catalog may have changed since the job was queued.
                    Err(error) => Err((language, error.to_string())),
                }
            }
            Err(error) => Err((
                String::new(),
                format!("the stored request cannot be read: {error}"),
            )),
        };
        let payload = match stored {
            Ok((checked, format)) => {
                let record = Record {
                    request: claimed.request.clone(),
                    format,
                    callback_url: None,
                };
                let run: RunWith = Box::new(|engine, job| engine.run(job));
                let ran = self
                    .run_job(
                        &claimed.id,
                        claimed.attempt,
                        checked,
                        &record,
                        Some(permit),
                        run,
                    )
                    .await;
                match &ran.result {
                    Ok(result) => self.codec.encode_result(&claimed.id, result, format),
                    Err(message) => {
                        self.codec
                            .encode_failure(&claimed.id, &ran_language(&claimed), message)
                    }
                }
            }
            Err((language, message)) => {
                drop(permit);
                self.complete_failed(&claimed.id, claimed.attempt, &language, &message)
                    .await
            }
        };
        let _ = renewing.send(true);
        self.admission.release_slot(&bucket, &claimed.id).await;
        if let Some(url) = &claimed.callback_url {
            self.send_callback(&claimed.id, url, claimed.key_id.as_deref(), payload)
                .await;
        }
    }

    /// Sends the callback of a done submission, in the terms of whoever queued it.
    async fn send_callback(
        &self,
        id: &str,
        url: &str,
        key_id: Option<&str>,
        fallback: serde_json::Value,
    ) {
        let payload = match self.store.submission(id).await {
            Ok(Some(submission)) => self.codec.callback(&submission),
            _ => Payload::post(fallback),
        };
        self.webhooks.send_once(id, url, key_id, &payload).await;
    }

    /// Ends a job that cannot run with an `internal_error` result; its stored form.
    async fn complete_failed(
        &self,
        id: &str,
        attempt: u32,
        language: &str,
        message: &str,
    ) -> serde_json::Value {
        let stored = self.codec.encode_failure(id, language, message);
        let completion = Completion {
            id: id.to_string(),
            worker_id: self.node_id.clone(),
            attempt,
            status: runbox_engine::ResultStatus::InternalError
                .as_str()
                .to_string(),
            result: stored.clone(),
            finished_ms: now_ms(),
            scrubbed_request: None,
        };
        if let Err(error) = self.store.complete(&completion).await {
            tracing::error!(id, %error, "cannot store a failure");
        }
        stored
    }

    /// Requeues jobs whose worker stopped renewing, every few seconds, until `shutdown`.
    pub async fn recover(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_secs((self.config.queue.lease_seconds / 3).max(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => break,
            }
            match self
                .store
                .recover_expired(self.config.queue.max_attempts)
                .await
            {
                Ok(recovered) => {
                    for job in recovered {
                        if job.requeued {
                            tracing::warn!(id = job.id, worker = ?job.worker_id, "lease expired: job queued again");
                        } else {
                            tracing::error!(id = job.id, worker = ?job.worker_id, "lease expired too often: job failed");
                            self.release_failed(&job.id).await;
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot recover expired leases"),
            }
        }
    }

    /// Releases the slot of a job the store failed, and sends its webhook.
    async fn release_failed(&self, id: &str) {
        let Ok(Some(submission)) = self.store.submission(id).await else {
            return;
        };
        self.admission
            .release_slot(
                &bucket_of(
                    submission.key_id.as_deref(),
                    submission.client_addr.as_deref(),
                ),
                id,
            )
            .await;
        if let Some(url) = &submission.callback_url {
            let payload = submission.result.clone().unwrap_or_else(|| {
                self.codec.encode_failure(
                    id,
                    &submission.language,
                    submission
                        .error
                        .as_deref()
                        .unwrap_or("the job ended without a result"),
                )
            });
            self.send_callback(id, url, submission.key_id.as_deref(), payload)
                .await;
        }
    }

    /// Waits until submission `id` is done, at most `timeout`; true when it is.
    pub async fn wait_done(&self, id: &str, timeout: Duration) -> Result<bool, Refusal> {
        let mut events = self.store.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(s) = self.store.submission(id).await?
                && s.state == JobState::Done
            {
                return Ok(true);
            }
            // Woken by the store's events; the store is looked at again every
            // second too, in case a wake-up was lost (a listener reconnecting).
            let recheck = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
            loop {
                match tokio::time::timeout_at(recheck, events.recv()).await {
                    Err(_) if recheck >= deadline => return Ok(false),
                    Err(_) => break,
                    Ok(Ok(StoreEvent::JobFinished { id: done })) if done == id => break,
                    Ok(Ok(_)) => continue,
                    // Lagged or closed: look at the store again.
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(broadcast::error::RecvError::Closed)) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
            }
        }
    }

    /// Waits, at most `grace`, for running jobs to finish.
    pub async fn drain(&self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        while self.running() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

/// The language a claimed job was stored with, for its failure record.
fn ran_language(claimed: &ClaimedJob) -> String {
    claimed
        .request
        .get("language")
        .and_then(|l| l.as_str())
        .unwrap_or_default()
        .to_string()
}
