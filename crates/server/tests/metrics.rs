//! `GET /metrics` (Prometheus' default path) and `/api/v1/metrics`: the text
//! format with a `# HELP` and `# TYPE` line for every metric, the build's version
//! and commit, and this process's own figures.

mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use support::App;
use tower::ServiceExt;

/// `GET path` as Prometheus scrapes it: the status, content type and text.
async fn scrape(app: &App, path: &str) -> (StatusCode, String, String) {
    let response = app
        .router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).expect("UTF-8 text"),
    )
}

/// The value of the sample `name` (with any labels) in `text`.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.split(['{', ' ']).next() == Some(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

/// The metric family a sample line belongs to (a histogram's `_bucket`, `_sum`
/// and `_count` belong to the histogram).
fn family<'a>(sample_name: &'a str, typed: &BTreeSet<&str>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample_name.strip_suffix(suffix)
            && typed.contains(base)
        {
            return base;
        }
    }
    sample_name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_are_served_at_the_root_as_prometheus_text() {
    let app = App::start().await;
    let (status, content_type, root) = scrape(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let (status, _, api) = scrape(&app, "/api/v1/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for text in [&root, &api] {
        assert!(text.contains("# TYPE runbox_build_info gauge"), "{text}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_has_a_help_and_a_type_line() {
    let app = App::start().await;
    // A run, a refused request and a scrape touch the runbox metrics.
    let (status, _) = app
        .post(
            "/api/v1/execute",
            json!({"language": "python", "source": "print(1)"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post("/api/v1/execute", json!({"language": "python"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    scrape(&app, "/metrics").await;
    let (_, _, text) = scrape(&app, "/metrics").await;

    let declared = |prefix: &str| -> BTreeSet<&str> {
        text.lines()
            .filter_map(|line| line.strip_prefix(prefix))
            .filter_map(|rest| rest.split(' ').next())
            .collect()
    };
    let helped = declared("# HELP ");
    let typed = declared("# TYPE ");
    let families: BTreeSet<&str> = text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(|name| family(name, &typed))
        .collect();
    for expected in [
        "runbox_build_info",
        "runbox_runs_total",
        "runbox_run_duration_seconds",
        "runbox_http_requests_total",
        "runbox_http_request_duration_seconds",
        "runbox_boxes_in_use",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(families.contains(expected), "{expected} missing:\n{text}");
    }
    let without_help: Vec<_> = families.difference(&helped).collect();
    let without_type: Vec<_> = families.difference(&typed).collect();
    assert!(
        without_help.is_empty(),
        "no # HELP for {without_help:?}:\n{text}"
    );
    assert!(
        without_type.is_empty(),
        "no # TYPE for {without_type:?}:\n{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn build_info_names_the_version_and_the_commit() {
    let app = App::start().await;
    let (_, _, text) = scrape(&app, "/metrics").await;
    let line = text
        .lines()
        .find(|line| line.starts_with("runbox_build_info{"))
        .unwrap_or_else(|| panic!("no runbox_build_info in:\n{text}"));
    assert!(line.ends_with("} 1"), "{line}");
    assert!(
        line.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    // The commit of this checkout, as `git` says (build.rs's fallback outside one).
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let commit = if git.status.success() {
        String::from_utf8_lossy(&git.stdout).trim().to_string()
    } else {
        "unknown".to_string()
    };
    assert!(line.contains(&format!("commit=\"{commit}\"")), "{line}");
    assert_eq!(runbox_server::GIT_COMMIT, commit);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn process_metrics_describe_this_process() {
    let app = App::start().await;
    let (_, _, text) = scrape(&app, "/metrics").await;
    // The same process answers: its own /proc says what the metrics should.
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let rss_kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("VmRSS");
    let resident = sample(&text, "process_resident_memory_bytes");
    assert!(
        resident > rss_kb * 1024.0 / 2.0 && resident < rss_kb * 1024.0 * 2.0,
        "resident {resident} bytes, /proc says {rss_kb} kB"
    );
    let fds = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count() as f64;
    let open = sample(&text, "process_open_fds");
    assert!(
        open >= 3.0 && (open - fds).abs() < 64.0,
        "open fds {open}, /proc has {fds}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let started = sample(&text, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "started {started}, now {now}"
    );
    // A counter holds whole seconds (metrics' counters are integers): the CPU
    // time /proc gives, rounded down, give or take the second it may cross.
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    let cpu = sample(&text, "process_cpu_seconds_total");
    assert!(
        cpu <= ticks / 100.0 && cpu >= (ticks / 100.0).floor() - 1.0,
        "cpu {cpu} s, /proc says {ticks} ticks"
    );
    app.stop().await;
}
