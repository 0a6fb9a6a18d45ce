//! Running jobs: at once for synchronous executes, from the store's queue for
//! submissions, with leases renewed while a job runs and results written once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use std::os::fd::OwnedFd;

use runbox_engine::{Engine, Live, LiveEvent};
use runbox_sandbox::Signaller;
use runbox_store::{ClaimedJob, Completion, JobState, NewSubmission, Store, StoreEvent, now_ms};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use crate::admission::{Admission, bucket_of};
use crate::api::convert::{
    OutputFormat, job_from_request, result_body, scrubbed_request, stored_result,
};
use crate::api::types::{ExecuteRequest, ResultBody};
use crate::auth::Caller;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::webhook::Webhooks;

/// How a job is run on the engine: at once, or live.
type RunWith = Box<
    dyn FnOnce(&Engine, &runbox_engine::Job) -> runbox_engine::Result<runbox_engine::RunResult>
        + Send,
>;

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
    /// Jobs this node runs at once.
    run_slots: Arc<Semaphore>,
    /// Synchronous jobs admitted (running or waiting for a run slot).
    admitted: Arc<Semaphore>,
    /// Jobs running now.
    running: AtomicU32,
    /// Webhook delivery.
    webhooks: Webhooks,
}

impl Runner {
    /// A runner with `workers` run slots.
    pub fn new(
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        config: Arc<ServerConfig>,
        admission: Arc<Admission>,
        node_id: String,
        workers: u32,
    ) -> Runner {
        let webhooks = Webhooks::new(store.clone(), config.webhooks.clone());
        Runner {
            run_slots: Arc::new(Semaphore::new(workers.max(1) as usize)),
            admitted: Arc::new(Semaphore::new(config.queue_capacity as usize)),
            running: AtomicU32::new(0),
            engine,
            store,
            config,
            admission,
            node_id,
            webhooks,
        }
    }

    /// How many jobs run now.
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    /// Checks a request fully (bounds, maxima, language known and installed,
    /// version, file names) without running it.
    /// The job's `language` is the catalog id (an alias resolved).
    pub fn prepare(&self, request: &ExecuteRequest) -> Result<runbox_engine::Job, ApiError> {
        let mut job = job_from_request(
            request,
            &self.config.requests,
            &self.config.run_limits,
            &self.config.compile_limits,
        )?;
        self.engine.commands(&job)?;
        let language = self.engine.catalog().get(&job.language)?;
        if let runbox_engine::Installation::Missing { missing } = self.engine.installation(language)
        {
            return Err(runbox_engine::Error::NotInstalled {
                name: language.name.clone(),
                missing,
                install: language.install_command(),
            }
            .into());
        }
        job.language = language.id.clone();
        Ok(job)
    }

    /// Runs a request now and returns its result; it is stored as a submission.
    pub async fn execute_now(
        self: &Arc<Self>,
        caller: &Caller,
        request: ExecuteRequest,
    ) -> Result<ResultBody, ApiError> {
        self.execute_with(caller, request, Box::new(|engine, job| engine.run(job)))
            .await
    }

    /// Runs a request now as a live job: `events` hears each stage and its output
    /// as they happen, the program reads `stdin`, and `signals` reach it (cancel
    /// it to stop the job). The result is returned and stored like an execute's.
    pub async fn execute_live(
        self: &Arc<Self>,
        caller: &Caller,
        request: ExecuteRequest,
        events: Box<dyn Fn(LiveEvent<'_>) + Send + Sync>,
        stdin: OwnedFd,
        signals: Signaller,
    ) -> Result<ResultBody, ApiError> {
        let run: RunWith = Box::new(move |engine, job| {
            let live = Live {
                events: &*events,
                stdin: std::sync::Mutex::new(Some(stdin)),
                signals,
            };
            engine.run_live(job, &live)
        });
        self.execute_with(caller, request, run).await
    }

    /// Admits, records and runs a request now with `run`.
    async fn execute_with(
        self: &Arc<Self>,
        caller: &Caller,
        request: ExecuteRequest,
        run: RunWith,
    ) -> Result<ResultBody, ApiError> {
        let job = self.prepare(&request)?;
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            metrics::counter!("runbox_rejected_requests_total", "reason" => "queue_full")
                .increment(1);
            return Err(ApiError::unavailable(
                "queue_full",
                format!(
                    "the queue is full ({} jobs admitted): try again shortly",
                    self.config.queue_capacity
                ),
                Duration::from_secs(1),
            ));
        };
        let id = uuid::Uuid::now_v7().to_string();
        self.admission.acquire_slot(caller, &id).await?;
        let language = job.language.clone();
        let submission = NewSubmission {
            id: id.clone(),
            key_id: caller.key_id().map(str::to_string),
            client_addr: Some(caller.addr().to_string()),
            language,
            // A synchronous job runs from memory: without stored sources it is
            // stored scrubbed from the start, so the source never reaches the disk.
            request: if self.config.history.store_source {
                serde_json::to_value(&request).unwrap_or_default()
            } else {
                scrubbed_request(&request)
            },
            state: JobState::Running,
            worker_id: Some(self.node_id.clone()),
            callback_url: None,
            created_ms: now_ms(),
        };
        if let Err(error) = self.store.insert_submission(&submission).await {
            self.admission.release_slot(&caller.bucket(), &id).await;
            return Err(error.into());
        }
        let run_slot = self.run_slots.clone().acquire_owned().await;
        let body = self
            .run_job(&id, 1, job, &request, run_slot.ok(), run)
            .await;
        drop(admitted);
        self.admission.release_slot(&caller.bucket(), &id).await;
        Ok(body)
    }

    /// Runs one job under a renewed lease and writes its result.
    async fn run_job(
        self: &Arc<Self>,
        id: &str,
        attempt: u32,
        job: runbox_engine::Job,
        request: &ExecuteRequest,
        _run_slot: Option<OwnedSemaphorePermit>,
        run: RunWith,
    ) -> ResultBody {
        let renewing = self.renew_while_running(id.to_string());
        self.running.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("runbox_boxes_in_use").increment(1.0);
        let started = Instant::now();
        let engine = self.engine.clone();
        let outcome = tokio::task::spawn_blocking(move || run(&engine, &job)).await;
        metrics::gauge!("runbox_boxes_in_use").decrement(1.0);
        self.running.fetch_sub(1, Ordering::Relaxed);
        let _ = renewing.send(true);
        let mut body = match outcome {
            Ok(Ok(result)) => result_body(&result, OutputFormat::of(request)),
            Ok(Err(error)) => internal_result(id, &request.language, error.to_string()),
            Err(panic) => {
                internal_result(id, &request.language, format!("the job panicked: {panic}"))
            }
        };
        body.id = id.to_string();
        metrics::counter!("runbox_runs_total", "language" => body.language.clone(), "status" => body.status.clone())
            .increment(1);
        metrics::histogram!("runbox_run_duration_seconds", "language" => body.language.clone())
            .record(started.elapsed().as_secs_f64());
        let completion = Completion {
            id: id.to_string(),
            worker_id: self.node_id.clone(),
            attempt,
            status: body.status.clone(),
            result: stored_result(&body, self.config.history.store_output),
            finished_ms: now_ms(),
            scrubbed_request: (!self.config.history.store_source)
                .then(|| scrubbed_request(request)),
        };
        match self.store.complete(&completion).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                id,
                "the lease was lost: another worker owns this job now; result discarded"
            ),
            Err(error) => tracing::error!(id, %error, "cannot store a result"),
        }
        body
    }

    /// Renews the lease of `id` every third of the lease time until the returned
    /// sender says stop.
    fn renew_while_running(self: &Arc<Self>, job: String) -> watch::Sender<bool> {
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
                    }
                    _ = stopped.changed() => break,
                }
            }
        });
        stop
    }

    /// Checks and queues requests as submissions, all or none; returns their ids.
    pub async fn enqueue(
        &self,
        caller: &Caller,
        requests: &[ExecuteRequest],
    ) -> Result<Vec<String>, ApiError> {
        self.enqueue_checked(caller, requests, false).await
    }

    /// As [`Runner::enqueue`], for a batch: an error names `submissions[i]`.
    pub async fn enqueue_batch(
        &self,
        caller: &Caller,
        requests: &[ExecuteRequest],
    ) -> Result<Vec<String>, ApiError> {
        self.enqueue_checked(caller, requests, true).await
    }

    async fn enqueue_checked(
        &self,
        caller: &Caller,
        requests: &[ExecuteRequest],
        batch: bool,
    ) -> Result<Vec<String>, ApiError> {
        let depth: u64 = self.store.queue_depth().await?.iter().map(|(_, n)| n).sum();
        if depth + requests.len() as u64 > u64::from(self.config.queue_capacity) {
            metrics::counter!("runbox_rejected_requests_total", "reason" => "queue_full")
                .increment(1);
            return Err(ApiError::unavailable(
                "queue_full",
                format!(
                    "the queue is full ({depth} jobs waiting, at most {}): try again shortly",
                    self.config.queue_capacity
                ),
                Duration::from_secs(2),
            ));
        }
        let mut submissions = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            let checked = self.prepare(request).and_then(|job| {
                if let Some(url) = &request.callback_url {
                    crate::webhook::check_url(url, self.config.webhooks.allow_private_addresses)?;
                }
                Ok(job)
            });
            // In a batch, the error names the submission it is about.
            let job = checked.map_err(|mut e| {
                if batch {
                    e.field = Some(format!(
                        "submissions[{i}].{}",
                        e.field.as_deref().unwrap_or("")
                    ));
                    e.message = format!("submissions[{i}]: {}", e.message);
                }
                e
            })?;
            let language = job.language;
            submissions.push(NewSubmission {
                id: uuid::Uuid::now_v7().to_string(),
                key_id: caller.key_id().map(str::to_string),
                client_addr: Some(caller.addr().to_string()),
                language,
                request: serde_json::to_value(request).unwrap_or_default(),
                state: JobState::Queued,
                worker_id: None,
                callback_url: request.callback_url.clone(),
                created_ms: now_ms(),
            });
        }
        let mut taken: Vec<String> = Vec::new();
        for submission in &submissions {
            if let Err(error) = self.admission.acquire_slot(caller, &submission.id).await {
                for id in &taken {
                    self.admission.release_slot(&caller.bucket(), id).await;
                }
                return Err(error);
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
        let request: Result<ExecuteRequest, _> = serde_json::from_value(claimed.request.clone());
        let body = match request {
            Ok(request) => match self.prepare(&request) {
                Ok(job) => {
                    let run: RunWith = Box::new(|engine, job| engine.run(job));
                    self.run_job(
                        &claimed.id,
                        claimed.attempt,
                        job,
                        &request,
                        Some(permit),
                        run,
                    )
                    .await
                }
                Err(error) => self.fail(&claimed, &request.language, error.message).await,
            },
            Err(error) => {
                self.fail(
                    &claimed,
                    "",
                    format!("the stored request cannot be read: {error}"),
                )
                .await
            }
        };
        self.admission
            .release_slot(
                &bucket_of(claimed.key_id.as_deref(), claimed.client_addr.as_deref()),
                &claimed.id,
            )
            .await;
        if let Some(url) = &claimed.callback_url {
            self.webhooks
                .send_once(&claimed.id, url, claimed.key_id.as_deref(), &body)
                .await;
        }
    }

    /// Ends a claimed job that cannot run with an `internal_error` result.
    async fn fail(&self, claimed: &ClaimedJob, language: &str, message: String) -> ResultBody {
        let body = internal_result(&claimed.id, language, message);
        let completion = Completion {
            id: claimed.id.clone(),
            worker_id: self.node_id.clone(),
            attempt: claimed.attempt,
            status: body.status.clone(),
            result: serde_json::to_value(&body).unwrap_or_default(),
            finished_ms: now_ms(),
            scrubbed_request: None,
        };
        if let Err(error) = self.store.complete(&completion).await {
            tracing::error!(id = claimed.id, %error, "cannot store a failure");
        }
        body
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
            let body = crate::api::submission_result(&submission);
            if let Some(body) = body {
                self.webhooks
                    .send_once(id, url, submission.key_id.as_deref(), &body)
                    .await;
            }
        }
    }

    /// Waits until submission `id` is done, at most `timeout`; true when it is.
    pub async fn wait_done(&self, id: &str, timeout: Duration) -> Result<bool, ApiError> {
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

/// A result for a job that could not run.
pub fn internal_result(id: &str, language: &str, message: String) -> ResultBody {
    ResultBody {
        id: id.to_string(),
        language: language.to_string(),
        version: None,
        status: "internal_error".to_string(),
        compile: None,
        run: None,
        tests: None,
        passed: None,
        failed: None,
        failed_tests: None,
        timing: None,
        error: Some(message),
    }
}
