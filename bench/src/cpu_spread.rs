//! CPU time spread: the same CPU-bound C program judged 20 times (20 identical
//! tests, one by one), first on an idle machine, then beside a parallel load
//! (one busy thread per CPU), unpinned and pinned to a CPU; in the same run.
//! Prints min / median / max CPU time of each and the spread (max / min), and
//! each median against the idle one. See docs/judging.md, "Steady times", for
//! what tightens it on a judging host.
//!
//! cargo run --release -p runbox-bench --bin cpu-spread -- [-n 20]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use runbox_engine::{
    Catalog, Engine, EngineConfig, Job, JudgeOptions, ResultStatus, SourceFile, TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions};

/// About 100 ms of integer work, whose result is printed so it is not elided.
const PROGRAM: &str = r#"
#include <stdio.h>
int main(void) {
    unsigned long x = 1;
    for (unsigned long i = 0; i < 150000000UL; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    printf("%lu\n", x & 1);
    return 0;
}
"#;

fn figures(engine: &Engine, runs: usize, pinned: bool) -> anyhow::Result<Vec<Duration>> {
    let job = Job {
        language: "c".into(),
        files: vec![SourceFile::named("spin.c", PROGRAM)],
        tests: (0..runs)
            .map(|i| TestCase {
                name: format!("{i}"),
                ..TestCase::default()
            })
            .collect(),
        judge: JudgeOptions {
            sequential: true,
            pin_cpu: pinned,
            ..JudgeOptions::default()
        },
        ..Job::default()
    };
    let result = engine.check_and_run(&job)?;
    if result.status != ResultStatus::Accepted {
        bail!("the program did not run: {:?}", result.status);
    }
    let mut times: Vec<Duration> = result
        .tests
        .context("tests")?
        .iter()
        .map(|t| t.run.cpu_time)
        .collect();
    times.sort();
    Ok(times)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(name: &str, times: &[Duration], idle_median: Duration) {
    let (min, median, max) = (times[0], times[times.len() / 2], times[times.len() - 1]);
    println!(
        "{name:<22} min {:>7.1} ms  median {:>7.1} ms  max {:>7.1} ms  spread {:>5.1}%  median/idle {:.2}",
        ms(min),
        ms(median),
        ms(max),
        (ms(max) / ms(min) - 1.0) * 100.0,
        ms(median) / ms(idle_median)
    );
}

fn main() -> anyhow::Result<()> {
    let mut runs = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" => runs = args.next().context("-n needs a number")?.parse()?,
            other => bail!("unknown argument {other}: use -n N"),
        }
    }
    if runs < 2 {
        bail!("-n must be at least 2");
    }
    let sandbox = Arc::new(Sandbox::new(SandboxOptions {
        max_boxes: 2,
        ..SandboxOptions::default()
    })?);
    let engine = Engine::new(sandbox, Catalog::embedded()?, EngineConfig::default());
    // Warm up: version detected, compiler in the page cache.
    figures(&engine, 2, false)?;
    let idle = figures(&engine, runs, false)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..cpus)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
            })
        })
        .collect();
    let loaded = figures(&engine, runs, false);
    let pinned = figures(&engine, runs, true);
    stop.store(true, Ordering::Relaxed);
    for thread in load {
        let _ = thread.join();
    }
    let (loaded, pinned) = (loaded?, pinned?);
    println!(
        "CPU time of one CPU-bound C program, {runs} runs each ({cpus} CPUs, load: {cpus} busy threads)"
    );
    let idle_median = idle[idle.len() / 2];
    report("idle", &idle, idle_median);
    report("under load", &loaded, idle_median);
    report("under load, pinned", &pinned, idle_median);
    Ok(())
}
