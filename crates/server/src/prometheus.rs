//! The Prometheus exposition: the process-wide recorder, a description (`# HELP`)
//! of every metric runbox records, `runbox_build_info`, and the process metrics
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_open_fds`, `process_start_time_seconds`, ...) read from `/proc` at
//! each scrape.
//!
//! Process metrics come from `metrics-process`, which reads `/proc/self` through
//! `procfs` and uses the names and units of Prometheus' own client libraries, so
//! dashboards made for any exporter work unchanged.

use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The version runbox is built as.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit runbox is built from (`unknown` outside a git checkout; see
/// `build.rs`).
pub const GIT_COMMIT: &str = env!("RUNBOX_GIT_COMMIT");

/// Renders the metrics of this process.
#[derive(Clone)]
pub struct Exposition {
    handle: PrometheusHandle,
}

impl Exposition {
    /// The recorder of this process, installed on first use (two services in one
    /// process, as in tests, share it).
    pub fn installed() -> anyhow::Result<Exposition> {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        static INSTALLING: Mutex<()> = Mutex::new(());
        let _installing = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = HANDLE.get() {
            return Ok(Exposition {
                handle: handle.clone(),
            });
        }
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ],
            )
            .context("cannot configure the metrics buckets")?
            .install_recorder()
            .context("cannot install the metrics recorder")?;
        describe();
        process_collector().describe();
        metrics::gauge!("runbox_build_info", "version" => VERSION, "commit" => GIT_COMMIT).set(1.0);
        Ok(Exposition {
            handle: HANDLE.get_or_init(|| handle).clone(),
        })
    }

    /// The text format, with the process metrics read now.
    pub fn render(&self) -> String {
        process_collector().collect();
        self.handle.render()
    }
}

/// The one collector of process metrics.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Describes every metric runbox records, so each has its `# HELP` line.
fn describe() {
    describe_gauge!(
        "runbox_build_info",
        "Always 1; the labels say which version and git commit this process runs."
    );
    describe_counter!(
        "runbox_runs_total",
        "Jobs run to the end, by language and result status."
    );
    describe_histogram!(
        "runbox_run_duration_seconds",
        Unit::Seconds,
        "Time from a job's start on a worker to its result, by language."
    );
    describe_gauge!(
        "runbox_boxes_in_use",
        "Jobs running in boxes on this node now."
    );
    describe_gauge!(
        "runbox_queue_depth",
        "Jobs waiting for a worker, by language (the whole fleet's queue, read at each scrape)."
    );
    describe_counter!(
        "runbox_http_requests_total",
        "HTTP requests answered, by route and status."
    );
    describe_histogram!(
        "runbox_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route."
    );
    describe_counter!(
        "runbox_rejected_requests_total",
        "Requests refused before running, by reason (unauthorized, rate_limited, queue_full)."
    );
    describe_counter!(
        "runbox_rejected_connections_total",
        "Connections closed at once because connections.max_connections were open."
    );
    describe_counter!(
        "runbox_readiness_box_checks_total",
        "Boxes run by the readiness check."
    );
    describe_counter!(
        "runbox_webhooks_total",
        "Webhook deliveries finished, by outcome (delivered, failed)."
    );
}
