//! Judging: a C++ solution with 50 tests as one judged job (compiled once, tests in
//! parallel), against 50 separate jobs of the same code (each compiling), and a
//! second identical judged job served from the compile cache; in the same run.
//!
//! cargo run --release -p runbox-bench --bin judge -- [-r 3] [-t 50]
//!
//! Each figure is the median of the repetitions (-r) of the whole batch's wall time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use runbox_engine::{
    Catalog, CompileCacheConfig, Engine, EngineConfig, Job, ResultStatus, SourceFile, TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions};

mod judge_data;

use judge_data::{SOLUTION, test_data};

/// Test `i` as the engine takes it.
fn test_case(i: usize) -> TestCase {
    let (name, stdin, expected) = test_data(i);
    TestCase {
        name,
        stdin: stdin.into_bytes(),
        expected_output: Some(expected.into_bytes()),
        ..TestCase::default()
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let mut repeats = 3usize;
    let mut count = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-r" => repeats = args.next().context("-r needs a number")?.parse()?,
            "-t" => count = args.next().context("-t needs a number")?.parse()?,
            other => bail!("unknown argument {other}: use -r N, -t N"),
        }
    }
    if repeats < 1 || count < 1 {
        bail!("-r and -t must be at least 1");
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sandbox = Arc::new(Sandbox::new(SandboxOptions {
        max_boxes: cpus as u32 + 1,
        ..SandboxOptions::default()
    })?);
    let cache_dir = tempfile::tempdir()?;
    let engine = |cache: bool| {
        let config = EngineConfig {
            compile_cache: cache.then(|| CompileCacheConfig::new(cache_dir.path().join("cache"))),
            test_workers: cpus,
            ..EngineConfig::default()
        };
        Catalog::embedded().map(|c| Engine::new(sandbox.clone(), c, config))
    };
    let tests: Vec<TestCase> = (0..count).map(test_case).collect();
    let judged = Job {
        language: "cpp".into(),
        files: vec![SourceFile::unnamed(SOLUTION)],
        tests: tests.clone(),
        ..Job::default()
    };
    let plain = engine(false)?;
    // Warm up: the version is detected, the compiler's files are in the page cache.
    plain.check_and_run(&Job {
        tests: Vec::new(),
        ..judged.clone()
    })?;

    let (mut one_job, mut separate, mut from_cache) = (Vec::new(), Vec::new(), Vec::new());
    let mut compile_ms = Vec::new();
    for round in 0..repeats {
        // One judged job, compiled once (a fresh cache each round: a miss).
        let _ = std::fs::remove_dir_all(cache_dir.path().join("cache"));
        let cached_engine = engine(true)?;
        let started = Instant::now();
        let result = cached_engine.check_and_run(&judged)?;
        one_job.push(started.elapsed());
        if result.status != ResultStatus::Accepted {
            bail!("the judged job was not accepted: {:?}", result.failed_tests);
        }
        let compile = result.compile.as_ref().context("no compile stage")?;
        if compile.cached {
            bail!("round {round}: the first judged job hit the cache");
        }
        compile_ms.push(compile.wall_time);
        // The same submission again: the compile comes from the cache.
        let started = Instant::now();
        let again = cached_engine.check_and_run(&judged)?;
        from_cache.push(started.elapsed());
        if !again.compile.as_ref().is_some_and(|c| c.cached) {
            bail!("the second judged job did not hit the cache");
        }
        // 50 separate jobs of the same code, each compiling, as many at once as CPUs.
        let next = AtomicUsize::new(0);
        let started = Instant::now();
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let workers: Vec<_> = (0..cpus)
                .map(|_| {
                    scope.spawn(|| -> anyhow::Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(test) = tests.get(i) else {
                                return Ok(());
                            };
                            let job = Job {
                                language: "cpp".into(),
                                files: vec![SourceFile::unnamed(SOLUTION)],
                                stdin: test.stdin.clone(),
                                ..Job::default()
                            };
                            let result = plain.check_and_run(&job)?;
                            let out = result.run.as_ref().map(|r| r.stdout.clone());
                            if out.as_ref() != test.expected_output.as_ref() {
                                bail!("separate job {i} printed {out:?}");
                            }
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
            }
            Ok(())
        })?;
        separate.push(started.elapsed());
    }
    let (one, sep, hit) = (median(one_job), median(separate), median(from_cache));
    println!(
        "C++ (g++ -O2), {count} tests, {cpus} CPUs, median of {repeats} rounds (wall time of the whole batch)"
    );
    println!();
    println!("| batch | total | per test | vs one judged job |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, d: Duration| {
        println!(
            "| {name} | {:.0} ms | {:.1} ms | {:.2}x |",
            ms(d),
            ms(d) / count as f64,
            ms(d) / ms(one)
        );
    };
    row(&format!("{count} separate jobs, each compiling"), sep);
    row(
        &format!("one judged job with {count} tests (compiles once)"),
        one,
    );
    row("the same judged job again (compile cache hit)", hit);
    println!();
    println!(
        "compile stage: {:.0} ms wall; separate / judged: {:.1}x; judged / cached: {:.1}x",
        ms(median(compile_ms)),
        ms(sep) / ms(one),
        ms(one) / ms(hit)
    );
    Ok(())
}
