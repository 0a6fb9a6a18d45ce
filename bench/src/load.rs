//! Load test of `runbox serve` (loopback only, bounded in count and time): N
//! submissions of a hello world from C concurrent clients, every answer checked
//! (none lost, none duplicated, each with the right output), then throughput and
//! latency percentiles; in the same run, the bare cost of the same Python hello
//! world (fork+exec of python3, no runbox) and the efficiency
//! throughput / (cores / bare time).
//!
//! cargo build --release -p runbox && cargo run --release -p runbox-bench --bin load -- [-n 2000] [-c 32]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
mod server;

use server::Server;

const PYTHON_HELLO: &str = "print('Hello, World!')\n";
const C_HELLO: &str = "#include <stdio.h>\nint main(void) { puts(\"Hello, World!\"); return 0; }\n";

fn main() -> anyhow::Result<()> {
    let mut n = 2000usize;
    let mut clients = 32usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" => n = args.next().context("-n needs a number")?.parse()?,
            "-c" => clients = args.next().context("-c needs a number")?.parse()?,
            other => bail!("unknown argument {other}: use -n N -c CLIENTS"),
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let bare = bare_python(200)?;
    println!("machine: {cores} CPUs; {n} requests per row, {clients} concurrent clients, loopback");
    println!(
        "bare python3 hello world (fork+exec, no runbox): median {:.2} ms, so at most {:.0} runs/s on {cores} CPUs",
        ms(bare),
        cores as f64 / bare.as_secs_f64()
    );
    println!();
    let server = Server::start()?;
    println!(
        "| workload | route | requests | throughput | p50 | p90 | p99 | p99/p50 | efficiency |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, language, source, route) in [
        ("python hello", "python", PYTHON_HELLO, "/api/v1/execute"),
        (
            "python hello",
            "python",
            PYTHON_HELLO,
            "/api/v1/submissions?wait=true",
        ),
        ("C hello (compile + run)", "c", C_HELLO, "/api/v1/execute"),
    ] {
        // Warm up: the first run of a language detects its version.
        server.run(route, language, source)?;
        let report = load(&server, route, language, source, n, clients)?;
        let efficiency = if language == "python" {
            format!(
                "{:.2}",
                report.throughput * bare.as_secs_f64() / cores as f64
            )
        } else {
            "-".into()
        };
        println!(
            "| {name} | `{}` | {} | {:.1}/s | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} | {efficiency} |",
            route.split('?').next().unwrap_or(route),
            report.count,
            report.throughput,
            ms(report.p50),
            ms(report.p90),
            ms(report.p99),
            report.p99.as_secs_f64() / report.p50.as_secs_f64(),
        );
    }
    let total = server.total_submissions()?;
    println!();
    println!("stored submissions: {total} (every request and warm-up stored exactly once)");
    server.stop()
}

/// What one row measured.
struct Report {
    count: usize,
    throughput: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

/// Sends `n` requests from `clients` threads; checks every answer.
fn load(
    server: &Server,
    route: &str,
    language: &str,
    source: &str,
    n: usize,
    clients: usize,
) -> anyhow::Result<Report> {
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let ids = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            let (next, latencies, ids, failures) = (
                next.clone(),
                latencies.clone(),
                ids.clone(),
                failures.clone(),
            );
            scope.spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    match server.run(route, language, source) {
                        Ok(id) => {
                            latencies
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(t.elapsed());
                            if !ids
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(id.clone())
                            {
                                failures
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(format!("duplicate id {id}"));
                            }
                        }
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
    let failures = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if !failures.is_empty() {
        bail!(
            "{} of {n} requests failed; first: {}",
            failures.len(),
            failures[0]
        );
    }
    let mut latencies = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if latencies.len() != n {
        bail!("{} answers for {n} requests", latencies.len());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok(Report {
        count: n,
        throughput: n as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
    })
}

/// The median wall time of `python3 -B hello.py`, run bare `n` times.
fn bare_python(n: usize) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("main.py");
    std::fs::write(&file, PYTHON_HELLO)?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let out = Command::new("/usr/bin/python3")
            .arg("-B")
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .context("python3 must be installed")?;
        times.push(t.elapsed());
        if out.stdout != b"Hello, World!\n" {
            bail!(
                "bare python printed {:?}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    times.sort();
    Ok(times[n / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
