//! Prints what a runtime costs: the build time and disk size of a Debian runtime
//! (bookworm's essential packages), then the median start+run of `/usr/bin/true`
//! in a box on the host's /usr and in a box on that runtime, measured side by
//! side (alternating) in the same run, and their ratio.
//!
//! Usage: `cargo run --release -p runbox-bench --bin runtime-overhead -- [N]`
//! (as root, with mmdebstrap and network). The runtime is built fresh into a
//! temporary store each run, so the build time is this run's.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use runbox_engine::runtime::{Progress, RuntimeStore};
use runbox_sandbox::{BoxConfig, Sandbox, SandboxOptions, Status};

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(500);
    let dir = tempfile::tempdir()?;
    let store = RuntimeStore::open(dir.path().join("runtimes"))?;

    let started = Instant::now();
    let mut steps = 0;
    let runtime = store.add_debian("bench-bookworm", "bookworm", &[], &mut |p| {
        if matches!(p, Progress::Step(_)) {
            steps += 1;
        }
    })?;
    let build = started.elapsed();
    println!("runtime debian:bookworm (essential), built with mmdebstrap");
    println!(
        "  build time:   {:.1} s ({steps} steps)",
        build.as_secs_f64()
    );
    println!(
        "  size:         {:.1} MiB in {} files (on disk in the store: {:.1} MiB)",
        mib(runtime.manifest.size_bytes),
        runtime.manifest.files,
        mib(store.disk_usage()?)
    );

    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 4,
        ..SandboxOptions::default()
    })?;
    let lease = store.lease("bench-bookworm")?;
    let on_host = BoxConfig::new(["/usr/bin/true"]);
    let on_runtime = BoxConfig::new(["/usr/bin/true"]).with_runtime(lease.root());
    for _ in 0..n.min(20) {
        run(&sandbox, &on_host)?; // warm-up, and the runtime's layout read once
        run(&sandbox, &on_runtime)?;
    }
    let (mut host, mut rt) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        host.push(run(&sandbox, &on_host)?);
        rt.push(run(&sandbox, &on_runtime)?);
    }
    host.sort();
    rt.sort();
    println!();
    println!("box start+run of /usr/bin/true, N = {n} each, alternating");
    println!("{:<28} {:>12} {:>12}", "", "median", "p90");
    print_row("on the host's /usr", &host);
    print_row("on the runtime", &rt);
    println!(
        "runtime / host median: {:.3} (target <= 1.1)",
        ms(median(&rt)) / ms(median(&host))
    );
    drop(lease);
    Ok(())
}

fn run(sandbox: &Sandbox, config: &BoxConfig) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let outcome = sandbox.run(config)?;
    let elapsed = start.elapsed();
    ensure!(outcome.status == Status::Ok, "the box failed: {outcome:?}");
    Ok(elapsed)
}

fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn print_row(name: &str, times: &[Duration]) {
    println!(
        "{name:<28} {:>9.3} ms {:>9.3} ms",
        ms(median(times)),
        ms(times[times.len() * 9 / 10])
    );
}
