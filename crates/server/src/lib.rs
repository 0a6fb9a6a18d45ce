//! runbox-server: the HTTP service of runbox.
//!
//! It serves the native API of DESIGN.md under `/api/v1` (synchronous executes,
//! queued submissions with history and webhooks, batches, languages, health,
//! readiness, Prometheus metrics, an OpenAPI document), authenticates API keys,
//! enforces rate limits, concurrency caps and a bounded queue, and runs jobs on an
//! in-process worker pool over the engine. Persistence goes through
//! `runbox-store` (SQLite by default, PostgreSQL for a fleet).
//!
//! Handlers stay thin: extractors authenticate and parse (`state.rs`), handlers
//! call the runner (`jobs.rs`) or the store, and [`ApiError`] is the one place that
//! turns errors into status codes and JSON bodies.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = runbox_server::ServerConfig::default();
//! runbox_server::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod admission;
pub mod api;
pub mod auth;
pub mod compat;
pub mod config;
pub mod error;
pub mod history;
pub mod intake;
pub mod listener;
pub mod logging;
pub mod playground;
pub mod prometheus;
pub mod readiness;
pub mod runner;
pub mod session;
pub mod state;
pub mod time;
pub mod webhook;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use runbox_engine::{Catalog, CompileCacheConfig, Engine, EngineConfig, JobBounds};
use runbox_sandbox::{Sandbox, SandboxOptions};
use runbox_store::{Store, WorkerInfo, now_ms};
use tokio::sync::watch;

pub use config::{ServerConfig, host_name, worker_count};
pub use error::ApiError;
pub use prometheus::{GIT_COMMIT, VERSION};

use admission::Admission;
use runner::Runner;
use state::{AppState, SharedState};

/// An engine for `config`, with a sandbox sized for its workers.
pub fn build_engine(config: &ServerConfig, workers: u32) -> anyhow::Result<Arc<Engine>> {
    let catalog = Catalog::load(config.languages_dir.as_deref())?;
    let options = SandboxOptions {
        // Room for every worker's box plus version detection beside it.
        max_boxes: workers.max(1) * 2 + 2,
        network: config
            .network
            .enabled
            .then(|| runbox_sandbox::NetworkOptions {
                deny: config.network.deny.clone(),
                deny_host_addresses: config.network.deny_host_addresses,
                ..runbox_sandbox::NetworkOptions::default()
            }),
        trace_program_memory: config.trace_program_memory,
        launcher: config.box_launcher.clone(),
        ..SandboxOptions::default()
    };
    let defaults = EngineConfig::default();
    let engine_config = EngineConfig {
        compile_limits: wire::convert::configured_defaults(
            &defaults.compile_limits,
            &config.compile_limits,
        ),
        run_limits: wire::convert::configured_defaults(&defaults.run_limits, &config.run_limits),
        bounds: JobBounds {
            max_files: config.requests.max_files,
            max_total_bytes: config.requests.max_source_bytes,
            max_stdin_bytes: config.requests.max_stdin_bytes,
            max_args: config.requests.max_args,
            max_tests: config.requests.max_tests,
            max_test_bytes: config.requests.max_body_bytes,
            max_runs: config.requests.max_runs,
            output: runbox_engine::OutputCaps {
                max_files: config.requests.max_output_files,
                max_bytes: config.requests.max_output_file_bytes,
            },
        },
        version_cache: Some(options.state_dir.join("versions")),
        cache_keeps_sources: config.history.store_source,
        runtimes: Some(
            config
                .runtimes_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("runtimes")),
        ),
        max_result_bytes: config.requests.max_result_bytes,
        compile_cache: (config.compile_cache_mb > 0).then(|| CompileCacheConfig {
            dir: config.data_dir.join("compile-cache"),
            max_bytes: config.compile_cache_mb << 20,
        }),
        ..defaults
    };
    let sandbox =
        Sandbox::new(options).context("cannot prepare the sandbox (`runbox doctor` says why)")?;
    Ok(Arc::new(Engine::new(
        Arc::new(sandbox),
        catalog,
        engine_config,
    )))
}

/// This node's id: host name, process id and a random part.
fn node_id() -> String {
    format!(
        "{}-{}-{}",
        host_name(),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

/// Opens the store a configuration names, creating the data directory for SQLite.
pub async fn open_store(config: &ServerConfig) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    runbox_store::open(&url).await.with_context(|| {
        format!(
            "cannot open the database {}",
            runbox_store::redact_url(&url)
        )
    })
}

/// Serves the API on `config.listen` until `shutdown` completes, then shuts down
/// gracefully: stops accepting, lets running jobs finish within the grace period,
/// and stops the workers.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    listener::raise_descriptor_limit();
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let workers = worker_count(&config);
    let engine = build_engine(&config, workers)?;
    let node = Node::start(config.clone(), store.clone(), engine.clone(), workers).await?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let loopback = local.ip().is_loopback();
    let state = node.state(config.clone(), engine.clone(), store.clone(), loopback)?;
    let keys = store.active_key_count().await?;
    if keys == 0 && loopback {
        tracing::warn!(listen = %local, "no API key exists and the listener is loopback: anonymous use is allowed (create a key with `runbox keys create --name NAME` to require keys)");
    } else if keys == 0 {
        tracing::warn!(listen = %local, "no API key exists: every request will be refused until one is created with `runbox keys create --name NAME`");
    }
    tracing::info!(listen = %local, database = %runbox_store::redact_url(&config.database_url()), workers, "runbox is serving");
    // The line scripts and tests wait for.
    println!("runbox listening on http://{local}");

    let app = router(state, &config);
    let shutdown_tx = node.shutdown_tx.clone();
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let server = listener::serve(listener, app, &config.connections, async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; waiting for running jobs");
        let _ = shutdown_tx.send(true);
    });
    let mut stopping = node.shutdown_rx.clone();
    let drain = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        _ = server => {}
        _ = drain => tracing::warn!("requests still open after the grace period: closing them"),
    }
    node.stop(grace).await;
    Ok(())
}

/// The whole service in this process, for tests that call the router without a
/// socket (`router.oneshot(request)`): its router, with anonymous use allowed as
/// on a loopback listener while no key exists, and its node (stop it when done).
pub async fn in_process(config: ServerConfig) -> anyhow::Result<(axum::Router, Node)> {
    config.validate()?;
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let workers = worker_count(&config);
    let engine = build_engine(&config, workers)?;
    let node = Node::start(config.clone(), store.clone(), engine.clone(), workers).await?;
    let state = node.state(config.clone(), engine, store, true)?;
    Ok((router(state, &config), node))
}

/// Runs a worker node: claims jobs from the shared queue with `concurrency` local
/// workers, and serves only `/health`, `/ready` and `/metrics` on `listen`, until
/// `shutdown` completes; then stops claiming and lets running jobs finish within
/// the grace period.
pub async fn work(
    config: ServerConfig,
    concurrency: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    if concurrency == 0 {
        anyhow::bail!("a worker needs --concurrency of at least 1");
    }
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let engine = build_engine(&config, concurrency)?;
    let node = Node::start(config.clone(), store.clone(), engine.clone(), concurrency).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let state = node.state(config.clone(), engine, store, local.ip().is_loopback())?;
    let app = axum::Router::new()
        .route("/health", axum::routing::get(api::health))
        .route("/ready", axum::routing::get(api::ready))
        .route("/metrics", axum::routing::get(api::metrics_text))
        .fallback(|| async {
            ApiError::not_found("a worker serves only /health, /ready and /metrics")
        })
        .with_state(state);
    tracing::info!(listen = %local, database = %runbox_store::redact_url(&config.database_url()), concurrency, worker = %node.runner.node_id, "runbox worker is running");
    println!(
        "runbox worker {} listening on http://{local}",
        node.runner.node_id
    );
    let shutdown_tx = node.shutdown_tx.clone();
    listener::serve(listener, app, &config.connections, async move {
        shutdown.await;
        tracing::info!("shutting down: no new jobs are claimed; waiting for running ones");
        let _ = shutdown_tx.send(true);
    })
    .await;
    node.stop(Duration::from_secs(config.shutdown_grace_seconds))
        .await;
    Ok(())
}

/// The whole HTTP surface: routes, fallbacks and layers.
pub fn router(state: SharedState, config: &ServerConfig) -> axum::Router {
    api::routes()
        .merge(compat::routes())
        .merge(playground::routes())
        .fallback(|| async { ApiError::not_found("no such route: see /api/v1/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "this route does not take that method: see /api/v1/openapi.json".into(),
                field: None,
                retry_after: None,
            }
        })
        .layer(DefaultBodyLimit::max(config.requests.max_body_bytes))
        .layer(axum::middleware::from_fn(logging::log_request))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("a handler panicked"))
        }))
        .with_state(state)
}

/// The background side of a node: its workers, lease recovery, heartbeats and
/// retention.
pub struct Node {
    /// Runs and queues jobs.
    pub runner: Arc<Runner>,
    shutdown_tx: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    store: Arc<dyn Store>,
}

impl Node {
    /// Starts `workers` local workers (none with 0) and the background tasks.
    pub async fn start(
        config: Arc<ServerConfig>,
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        workers: u32,
    ) -> anyhow::Result<Node> {
        let shared_limits = store.kind() == "postgres";
        let admission = Arc::new(Admission::new(
            store.clone(),
            config.rate.clone(),
            shared_limits,
        ));
        let id = node_id();
        let codec = history::WireCodec::new(config.clone()).with_callback(
            compat::judge0::callback_renderer(config.clone(), engine.clone()),
        );
        let runner = Arc::new(Runner::new(
            engine,
            store.clone(),
            config.clone(),
            admission,
            id.clone(),
            workers,
            Arc::new(codec),
        ));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        if workers > 0 {
            tasks.push(tokio::spawn(runner.clone().work(shutdown_rx.clone())));
        }
        tasks.push(tokio::spawn(runner.clone().recover(shutdown_rx.clone())));
        tasks.push(tokio::spawn(heartbeat(
            store.clone(),
            runner.clone(),
            id,
            workers,
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(retention(
            store.clone(),
            config.clone(),
            shutdown_rx.clone(),
        )));
        Ok(Node {
            runner,
            shutdown_tx,
            shutdown_rx,
            tasks,
            store,
        })
    }

    /// The handlers' state for this node.
    fn state(
        &self,
        config: Arc<ServerConfig>,
        engine: Arc<Engine>,
        store: Arc<dyn Store>,
        loopback: bool,
    ) -> anyhow::Result<SharedState> {
        Ok(Arc::new(AppState {
            config,
            engine: engine.clone(),
            store,
            runner: self.runner.clone(),
            admission: self.runner.admission.clone(),
            metrics: prometheus::Exposition::installed()?,
            started: Instant::now(),
            loopback,
            shutting_down: self.shutdown_rx.clone(),
            readiness: Arc::new(readiness::SandboxReadiness::new(engine.clone())),
        }))
    }

    /// A receiver that turns true when the node stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.shutdown_rx.clone()
    }

    /// Stops claiming, waits at most `grace` for running jobs, stops the tasks.
    pub async fn stop(self, grace: Duration) {
        let _ = self.shutdown_tx.send(true);
        if !self.runner.drain(grace).await {
            tracing::warn!(
                running = self.runner.running(),
                "jobs still running after the grace period: their boxes die with the process and queued ones are claimed again after their lease"
            );
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        let _ = self.store.remove_worker(&self.runner.node_id).await;
        tracing::info!("stopped");
    }
}

/// Says every few seconds that this node is alive, with how busy it is.
async fn heartbeat(
    store: Arc<dyn Store>,
    runner: Arc<Runner>,
    id: String,
    workers: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    let started_ms = now_ms();
    let host = host_name();
    loop {
        let info = WorkerInfo {
            id: id.clone(),
            host: host.clone(),
            concurrency: workers,
            running: runner.running(),
            started_ms,
            last_heartbeat_ms: now_ms(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        if let Err(error) = store.heartbeat(&info).await {
            tracing::warn!(%error, "cannot record a heartbeat");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Deletes finished submissions past the retention period, hourly.
async fn retention(
    store: Arc<dyn Store>,
    config: Arc<ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let days = config.history.retention_days;
    if days == 0 {
        return;
    }
    loop {
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
        match store.delete_finished_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                days,
                "deleted submissions past the retention period"
            ),
            Err(error) => tracing::warn!(%error, "cannot delete old submissions"),
        }
        // The audit log keeps its own retention: refusals aggregated per minute
        // and address, and events, deleted past the same period.
        match store.delete_audit_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                days,
                "deleted audit events past the retention period"
            ),
            Err(error) => tracing::warn!(%error, "cannot delete old audit events"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => break,
        }
    }
}
