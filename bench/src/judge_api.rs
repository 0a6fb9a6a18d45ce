//! Judging through the HTTP API: a C++ solution with 50 tests as one judged
//! `POST /api/v1/execute` (compiled once, tests in parallel), against 50 separate
//! executes of the same program (each with one test; each source differs by a
//! comment, so each compiles, as 50 runs of a runner without a judge would), and
//! the identical judged request again (compile cache hit); in the same run, on a
//! release `runbox serve` with the embedded default.
//!
//! cargo build --release -p runbox -p runbox-bench && target/release/judge-api [-t 50] [-c 2]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

mod judge_data;
mod server;

use judge_data::{SOLUTION, test_data};
use server::Server;

fn main() -> anyhow::Result<()> {
    let mut count = 50usize;
    let mut clients = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-t" => count = args.next().context("-t needs a number")?.parse()?,
            "-c" => clients = args.next().context("-c needs a number")?.parse()?,
            other => bail!("unknown argument {other}: use -t TESTS -c CLIENTS"),
        }
    }
    let tests: Vec<(String, String, String)> = (0..count).map(test_data).collect();
    let server = Server::start()?;
    let judged = json!({
        "language": "cpp",
        "source": SOLUTION,
        "tests": tests.iter().map(|(name, stdin, expected)| json!({"name": name, "stdin": stdin, "expected_output": expected})).collect::<Vec<_>>(),
    });

    let t = Instant::now();
    let first = server.post("/api/v1/execute", &judged)?;
    let once = t.elapsed();
    check_accepted(&first, count, false)?;

    let t = Instant::now();
    separate(&server, &tests, clients)?;
    let separately = t.elapsed();

    let t = Instant::now();
    let again = server.post("/api/v1/execute", &judged)?;
    let cached = t.elapsed();
    check_accepted(&again, count, true)?;

    println!("C++ solution, {count} tests, through POST /api/v1/execute on a release runbox serve");
    println!();
    println!("| request(s) | total | per test | vs one judged request |");
    println!("|---|---:|---:|---:|");
    for (name, d) in [
        (
            format!("{count} separate executes (each compiling, {clients} at a time)"),
            separately,
        ),
        (
            format!("one judged request with {count} tests (compiles once)"),
            once,
        ),
        (
            "the same judged request again (compile cache hit)".to_string(),
            cached,
        ),
    ] {
        println!(
            "| {name} | {:.0} ms | {:.1} ms | {:.2}x |",
            ms(d),
            ms(d) / count as f64,
            d.as_secs_f64() / once.as_secs_f64()
        );
    }
    server.stop()
}

/// Every test accepted, and the compile cached or not as expected.
fn check_accepted(result: &Value, count: usize, cached: bool) -> anyhow::Result<()> {
    if result["status"] != "accepted" || result["passed"] != count {
        bail!("not accepted: {}", result["status"]);
    }
    if result["compile"]["cached"] != cached {
        bail!(
            "compile.cached is {}, expected {cached}",
            result["compile"]["cached"]
        );
    }
    Ok(())
}

/// The tests as separate executes, `clients` at a time, each source unique.
fn separate(
    server: &Server,
    tests: &[(String, String, String)],
    clients: usize,
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, stdin, expected)) = tests.get(i) else {
                        break;
                    };
                    let body = json!({
                        "language": "cpp",
                        "source": format!("// run {i}\n{SOLUTION}"),
                        "stdin": stdin,
                    });
                    let outcome = server.post("/api/v1/execute", &body).and_then(|r| {
                        if r["run"]["stdout"] == expected.as_str() {
                            Ok(())
                        } else {
                            bail!("test {name}: wrong output {}", r["run"]["stdout"])
                        }
                    });
                    if let Err(e) = outcome {
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        break;
                    }
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
