//! Prints what one `runbox sandbox` command costs from a shell, the way judges
//! that call a sandbox per run pay it: a static hello world under
//! `runbox sandbox`, under `bwrap --unshare-all` with the same binds, and bare,
//! plus `runbox --version` alone, all in one hyperfine run.
//!
//! Usage: `cargo build --release -p runbox -p runbox-bench && target/release/oneshot [RUNS]`
//! (as root; needs hyperfine, bwrap and gcc). The runbox binary is the one beside
//! this benchmark's, or `$RUNBOX`.

mod static_hello;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()
        .context("RUNS must be a number")?
        .unwrap_or(300);
    let runbox = runbox_binary()?;
    let dir = std::env::temp_dir().join(format!("runbox-oneshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = compare(&runbox, &dir, runs);
    std::fs::remove_dir_all(&dir).ok();
    result
}

/// Runs hyperfine over the four commands and prints the table and the ratios.
fn compare(runbox: &Path, dir: &Path, runs: usize) -> anyhow::Result<()> {
    let hello = static_hello::build(dir)?;
    let d = dir.display();
    let rb = runbox.display();
    let commands = [
        ("bare", format!("{}", hello.display())),
        ("runbox --version", format!("{rb} --version")),
        (
            "runbox sandbox",
            format!("{rb} sandbox --dir {d}:/box -- /box/hello"),
        ),
        (
            "bwrap --unshare-all",
            format!(
                "bwrap --unshare-all --die-with-parent --ro-bind /usr /usr \
                 --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin \
                 --proc /proc --dev /dev --tmpfs /tmp --ro-bind {d} /box --chdir /box /box/hello"
            ),
        ),
    ];
    let json = dir.join("hyperfine.json");
    let mut hyperfine = Command::new("hyperfine");
    hyperfine
        .args([
            "-N",
            "--warmup",
            "20",
            "--runs",
            &runs.to_string(),
            "--style",
            "none",
        ])
        .arg("--export-json")
        .arg(&json);
    for (name, command) in &commands {
        hyperfine.args(["-n", name, command]);
    }
    let status = hyperfine
        .status()
        .context("cannot start hyperfine (apt-get install hyperfine)")?;
    ensure!(status.success(), "hyperfine failed");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let results = report["results"]
        .as_array()
        .context("hyperfine's JSON has no results")?;
    let median = |name: &str| -> anyhow::Result<(f64, f64, f64)> {
        let r = results
            .iter()
            .find(|r| r["command"] == name)
            .with_context(|| format!("no result for {name}"))?;
        let mut times: Vec<f64> = r["times"]
            .as_array()
            .context("no times")?
            .iter()
            .filter_map(|t| t.as_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize] * 1e3;
        Ok((at(0.5), at(0.9), r["user"].as_f64().unwrap_or(0.0) * 1e3))
    };
    println!(
        "\nstatic hello world, {runs} runs each, one hyperfine run, {} CPUs\n",
        std::thread::available_parallelism()?.get()
    );
    println!(
        "| {:<20} | {:>10} | {:>10} | {:>12} |",
        "command", "median", "p90", "mean user"
    );
    println!("|{:-<22}|{:->12}|{:->12}|{:->14}|", "", "", "", "");
    for (name, _) in &commands {
        let (p50, p90, user) = median(name)?;
        println!("| {name:<20} | {p50:>7.3} ms | {p90:>7.3} ms | {user:>9.3} ms |");
    }
    let (sandbox, _, _) = median("runbox sandbox")?;
    let (bwrap, _, _) = median("bwrap --unshare-all")?;
    let (version, _, _) = median("runbox --version")?;
    println!(
        "\nrunbox sandbox / bwrap (median): {:.2} (target <= 1)",
        sandbox / bwrap
    );
    println!("runbox --version median: {version:.3} ms (target <= 1 ms)");
    Ok(())
}

/// The runbox binary to measure: `$RUNBOX`, else the one beside this program.
fn runbox_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("RUNBOX") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe()?;
    let beside = me.with_file_name("runbox");
    if !beside.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p runbox) or set RUNBOX",
            beside.display()
        );
    }
    Ok(beside)
}
