//! Many requests from concurrent clients: every answer checked, none lost, none
//! duplicated, then throughput and latency percentiles. Shared by the load and
//! fleet benchmarks.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

/// What a batch of requests measured.
pub struct Report {
    /// Requests answered.
    pub count: usize,
    /// Wall time of the whole batch.
    pub elapsed: Duration,
    /// Requests per second.
    pub throughput: f64,
    /// Latency percentiles.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Report {
    /// Wall time per request at this load: elapsed / requests.
    pub fn ms_per_job(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3 / self.count as f64
    }
}

/// Sends `n` requests from `clients` threads; `request` runs one, checks its
/// answer and returns its submission id. An error if any request failed, came back
/// twice with one id, or went unanswered.
pub fn hammer(
    n: usize,
    clients: usize,
    request: impl Fn() -> anyhow::Result<String> + Sync,
) -> anyhow::Result<Report> {
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(n));
    let ids = Mutex::new(HashSet::new());
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let outcome = request().and_then(|id| {
                        let fresh = ids
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(id.clone());
                        if fresh {
                            Ok(())
                        } else {
                            bail!("duplicate id {id}")
                        }
                    });
                    match outcome {
                        Ok(()) => latencies
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(t.elapsed()),
                        Err(e) => failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(e.to_string()),
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(first) = failures.first() {
        bail!("{} of {n} requests failed; first: {first}", failures.len());
    }
    let mut latencies = latencies.into_inner().unwrap_or_else(|p| p.into_inner());
    if latencies.len() != n || n == 0 {
        bail!("{} answers for {n} requests", latencies.len());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok(Report {
        count: n,
        elapsed,
        throughput: n as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
    })
}
