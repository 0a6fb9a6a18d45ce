//! Load test of `runbox serve` (loopback only, bounded in count and time): N
//! submissions of a hello world from C concurrent clients, every answer checked
//! (none lost, none duplicated, each with the right output), then throughput and
//! latency percentiles; in the same run, the bare cost of the same Python hello
//! world (fork+exec of python3, no runbox) and the efficiency
//! throughput / (cores / bare time).
//!
//! cargo build --release -p runbox && cargo run --release -p runbox-bench --bin load -- [-n 2000] [-c 32]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
// The fleet benchmark uses all of `concurrent`; this one its figures but not ms/job.
#[allow(dead_code)]
mod concurrent;
mod server;

use concurrent::{Report, hammer};
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

/// Sends `n` requests from `clients` threads; checks every answer.
fn load(
    server: &Server,
    route: &str,
    language: &str,
    source: &str,
    n: usize,
    clients: usize,
) -> anyhow::Result<Report> {
    hammer(n, clients, || server.run(route, language, source))
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
