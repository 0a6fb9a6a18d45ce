//! Prints what a box costs: a static hello world run N times bare, in a runbox box
//! and under `bwrap --unshare-all`, in the same run; medians, ratios and throughput.
//!
//! Usage: `cargo run --release -p runbox-bench --bin sandbox-overhead -- [N] [box|launcher]`
//! (as root). With `box` or `launcher` it runs only that kind of box, N times, and
//! prints its median: a process to profile (`perf record -g -- ...`).

mod static_hello;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use runbox_sandbox::{
    BindMount, BoxConfig, LAUNCHER_ARGUMENT, LauncherProgram, Sandbox, SandboxOptions, Status,
};

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(500);
    let dir = tempfile_dir()?;
    let hello = static_hello::build(&dir)?;
    if let Some(only) = std::env::args().nth(2) {
        let result = profile_one(&only, n, &dir);
        std::fs::remove_dir_all(&dir).ok();
        return result;
    }
    println!(
        "static hello world, N = {n} runs each, {} CPUs",
        std::thread::available_parallelism()?.get()
    );

    let bare = measure(n, || run_bare(&hello))?;
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 4,
        ..SandboxOptions::default()
    })?;
    let config = BoxConfig::new(["/bench/hello"]).with_bind(BindMount::read_only(&dir, "/bench"));
    let runbox = measure(n, || run_box(&sandbox, &config))?;
    // The service's way: boxes born in a launcher process (the runbox binary
    // built beside this one).
    let launched = match runbox_binary() {
        Some(runbox) => {
            let sandbox = Sandbox::new(SandboxOptions {
                max_boxes: 4,
                launcher: Some(LauncherProgram {
                    program: runbox,
                    args: vec![LAUNCHER_ARGUMENT.into()],
                }),
                ..SandboxOptions::default()
            })?;
            Some(measure(n, || run_box(&sandbox, &config))?)
        }
        None => None,
    };
    let bwrap = if which("bwrap") {
        Some(measure(n, || run_bwrap(&hello))?)
    } else {
        None
    };

    println!();
    println!("{:<28} {:>12} {:>12}", "", "median", "p90");
    print_row("bare fork+exec", &bare);
    print_row("runbox box", &runbox);
    match &launched {
        Some(l) => print_row("runbox box, launcher process", l),
        None => println!(
            "{:<28} no runbox binary beside this one (cargo build --release)",
            "runbox box, launcher process"
        ),
    }
    match &bwrap {
        Some(b) => print_row("bwrap --unshare-all", b),
        None => println!(
            "{:<28} not installed (apt-get install bubblewrap)",
            "bwrap --unshare-all"
        ),
    }
    println!();
    let overhead = median(&runbox).saturating_sub(median(&bare));
    println!(
        "runbox overhead over bare: {:.3} ms (target <= 0.5 ms)",
        ms(overhead)
    );
    if let Some(l) = &launched {
        println!(
            "runbox overhead over bare, launcher process: {:.3} ms",
            ms(median(l).saturating_sub(median(&bare)))
        );
    }
    if let Some(b) = &bwrap {
        println!(
            "runbox / bwrap time per run: {:.2} (target <= 0.5)",
            ms(median(&runbox)) / ms(median(b))
        );
    }

    let idle = after_idle(&sandbox, &config, 20)?;
    println!(
        "runbox box after 200 ms idle: median {:.3} ms, max {:.3} ms",
        ms(median(&idle)),
        ms(idle[idle.len() - 1])
    );

    let seq = throughput(&sandbox, &config, 1, n)?;
    let par = throughput(&sandbox, &config, 2, n)?;
    println!("runbox throughput: {seq:.0} runs/s sequential, {par:.0} runs/s with 2 threads");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// Runs one kind of box only (`box`: a launcher thread; `launcher`: a launcher
/// process), for a profiler to see nothing else.
fn profile_one(only: &str, n: usize, dir: &Path) -> anyhow::Result<()> {
    let launcher = match only {
        "box" => None,
        "launcher" => Some(LauncherProgram {
            program: runbox_binary().context("no runbox binary beside this one")?,
            args: vec![LAUNCHER_ARGUMENT.into()],
        }),
        other => bail!("unknown kind of box {other:?}: box or launcher"),
    };
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 4,
        launcher,
        ..SandboxOptions::default()
    })?;
    let config = BoxConfig::new(["/bench/hello"]).with_bind(BindMount::read_only(dir, "/bench"));
    let times = measure(n, || run_box(&sandbox, &config))?;
    print_row(only, &times);
    Ok(())
}

/// The `runbox` binary of the same build, if there is one.
fn runbox_binary() -> Option<PathBuf> {
    let runbox = std::env::current_exe().ok()?.parent()?.join("runbox");
    runbox.is_file().then_some(runbox)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("runbox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn measure(n: usize, mut run: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..n.min(20) {
        run()?; // warm-up
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times)
}

fn run_bare(hello: &Path) -> anyhow::Result<()> {
    let out = Command::new(hello).stdin(Stdio::null()).output()?;
    ensure!(
        out.status.success() && out.stdout == b"hello\n",
        "bare run failed"
    );
    Ok(())
}

fn run_box(sandbox: &Sandbox, config: &BoxConfig) -> anyhow::Result<()> {
    let outcome = sandbox.run(config)?;
    if outcome.status != Status::Ok || outcome.stdout != b"hello\n" {
        bail!("box run failed: {outcome:?}");
    }
    Ok(())
}

fn run_bwrap(hello: &Path) -> anyhow::Result<()> {
    let out = Command::new("bwrap")
        .args([
            "--unshare-all",
            "--die-with-parent",
            "--ro-bind",
            "/usr",
            "/usr",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ])
        .arg("--ro-bind")
        .arg(hello)
        .arg("/hello")
        .arg("/hello")
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success() && out.stdout == b"hello\n",
        "bwrap run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Runs measured one at a time after the machine has been idle, as a service sees
/// its first request after a quiet spell.
fn after_idle(sandbox: &Sandbox, config: &BoxConfig, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        run_box(sandbox, config)?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times)
}

fn throughput(
    sandbox: &Sandbox,
    config: &BoxConfig,
    threads: usize,
    n: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| (0..n / threads).try_for_each(|_| run_box(sandbox, config))))
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
        }
        Ok(())
    })?;
    Ok((n / threads * threads) as f64 / start.elapsed().as_secs_f64())
}

fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_row(name: &str, times: &[Duration]) {
    println!(
        "{name:<28} {:>9.3} ms {:>9.3} ms",
        ms(median(times)),
        ms(times[times.len() * 9 / 10])
    );
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}
