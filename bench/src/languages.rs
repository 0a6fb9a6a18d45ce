//! Per language: the median wall time of hello world through `runbox run` (the
//! whole command: start, compile box, run box) against the same program compiled
//! and run bare on the host with the same commands, in the same run.
//!
//! cargo run --release -p runbox-bench --bin languages -- [-n 20] [LANG...]
//!
//! Prints a Markdown table. Languages that are not installed are listed and skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use runbox_engine::{Catalog, Engine, EngineConfig, Job, SourceFile};
use runbox_sandbox::{Sandbox, SandboxOptions};

fn main() -> anyhow::Result<()> {
    let mut n = 20usize;
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" => n = args.next().context("-n needs a number")?.parse()?,
            other => only.push(other.to_string()),
        }
    }
    if n < 1 {
        bail!("-n must be at least 1");
    }
    let runbox = runbox_binary()?;
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../languages/tests");
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 8,
        ..SandboxOptions::default()
    })?;
    let engine = Engine::new(
        Arc::new(sandbox),
        Catalog::embedded()?,
        EngineConfig::default(),
    );
    let mut skipped = Vec::new();
    println!("hello world, N={n} per column, medians of the whole command's wall time");
    println!();
    println!("| language | version | bare | runbox run | overhead | ratio |");
    println!("|---|---|---:|---:|---:|---:|");
    for (language, installation) in engine.installations() {
        if !only.is_empty() && !only.contains(&language.id) {
            continue;
        }
        if !installation.is_installed() {
            skipped.push(language.id.clone());
            continue;
        }
        let hello = hello_program(&tests.join(&language.id))?;
        let job = Job {
            language: language.id.clone(),
            files: vec![SourceFile::named(
                file_name(&hello)?,
                std::fs::read(&hello).with_context(|| format!("reading {}", hello.display()))?,
            )],
            ..Job::default()
        };
        let commands = engine.commands(&engine.check(job)?);
        let bare = measure(n, || run_bare(&commands))
            .with_context(|| format!("{}: bare run", language.id))?;
        let boxed = measure(n, || run_runbox(&runbox, &language.id, &hello))
            .with_context(|| format!("{}: runbox run", language.id))?;
        let (bare, boxed) = (median(&bare), median(&boxed));
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:+.1} ms | {:.2} |",
            language.name,
            installation.version().unwrap_or("?"),
            ms(bare),
            ms(boxed),
            ms(boxed) - ms(bare),
            ms(boxed) / ms(bare)
        );
    }
    if !skipped.is_empty() {
        println!();
        println!("not installed, skipped: {}", skipped.join(", "));
    }
    Ok(())
}

/// The release `runbox` beside this benchmark's binary.
fn runbox_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name("runbox");
    if !path.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p runbox`",
            path.display()
        );
    }
    Ok(path)
}

fn hello_program(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_stem().is_some_and(|s| s == "hello"))
        .with_context(|| format!("no hello.* in {}", dir.display()))
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .context("file name is not UTF-8")
}

fn measure(n: usize, mut run: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
    run()?; // Warm the page cache.
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed());
    }
    Ok(times)
}

/// Compiles and runs in a fresh temporary directory, as the engine would in boxes.
fn run_bare(commands: &runbox_engine::Commands) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (name, content) in &commands.files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
    }
    let tmp = dir.path().join(".tmp");
    std::fs::create_dir(&tmp)?;
    let stages = commands
        .compile
        .iter()
        .chain(std::iter::once(&commands.run));
    for argv in stages {
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(dir.path())
            .env_clear()
            .envs(commands.env.iter().map(|(k, v)| (k, v)))
            .env("HOME", &tmp)
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = command
            .output()
            .with_context(|| format!("starting {}", argv[0]))?;
        if !out.status.success() {
            bail!(
                "{:?} failed: {}",
                argv,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

fn run_runbox(runbox: &Path, language: &str, hello: &Path) -> anyhow::Result<()> {
    let out = Command::new(runbox)
        .args(["run", "-q", "--language", language])
        .arg(hello)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() || out.stdout != b"Hello, World!\n" {
        bail!(
            "runbox run {} failed: {}",
            hello.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
