//! `runbox runtimes`: list, add, remove, collect and verify the runtimes of the
//! data directory (`<data-dir>/runtimes`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use runbox_engine::runtime::{Progress, RuntimeError, RuntimeSource, RuntimeStore};

use super::serve::StoreArgs;

/// Flags of `runbox runtimes`.
#[derive(Args)]
pub struct RuntimesArgs {
    #[command(subcommand)]
    command: RuntimesCommand,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum RuntimesCommand {
    /// List the stored runtimes with their sizes on disk.
    List {
        /// Print JSON (the manifests).
        #[arg(long)]
        json: bool,
    },
    /// Build a runtime and store it: `debian:SUITE` (bookworm, trixie, sid...).
    Add {
        /// Where it comes from: debian:SUITE.
        source: String,
        /// Packages to install beside the suite's essential ones (comma-separated).
        #[arg(long, value_delimiter = ',')]
        packages: Vec<String>,
        /// Its name in the store [default: debian-SUITE].
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a runtime (refused while a box uses it).
    Remove {
        /// The runtime's name.
        name: String,
    },
    /// Remove stored files no runtime uses any more.
    Gc,
    /// Recompute runtimes' digests and compare them with their manifests.
    Verify {
        /// The runtime's name [default: every runtime].
        name: Option<String>,
    },
}

/// Runs the subcommand against `<data-dir>/runtimes`.
pub fn run(args: RuntimesArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.store.load()?.data_dir;
    let store = RuntimeStore::open(data_dir.join("runtimes"))?;
    match args.command {
        RuntimesCommand::List { json } => list(&store, json),
        RuntimesCommand::Add {
            source,
            packages,
            name,
        } => add(&store, &source, packages, name),
        RuntimesCommand::Remove { name } => {
            store.remove(&name)?;
            println!("removed {name} (`runbox runtimes gc` frees the files it alone used)");
            Ok(ExitCode::SUCCESS)
        }
        RuntimesCommand::Gc => {
            let report = store.gc()?;
            println!(
                "removed {} unused files, {}",
                report.objects,
                HumanBytes(report.bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
        RuntimesCommand::Verify { name } => verify(&store, name),
    }
}

fn list(store: &RuntimeStore, json: bool) -> anyhow::Result<ExitCode> {
    let runtimes = store.list()?;
    if json {
        let manifests: Vec<_> = runtimes.iter().map(|r| &r.manifest).collect();
        println!("{}", serde_json::to_string_pretty(&manifests)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<16} {:>10} {:>10}  {:<19} PACKAGES",
        "NAME", "SOURCE", "SIZE", "OWN", "DIGEST"
    );
    println!(
        "{:<24} {:<16} {:>10} {:>10}  {:<19} -",
        "host", "host /usr", "-", "-", "-"
    );
    for runtime in &runtimes {
        let m = &runtime.manifest;
        let RuntimeSource::Debian { packages, .. } = &m.source;
        println!(
            "{:<24} {:<16} {:>10} {:>10}  {:<19} {}",
            m.name,
            m.source.to_string(),
            HumanBytes(m.size_bytes).to_string(),
            HumanBytes(m.new_bytes).to_string(),
            m.digest.get(..19).unwrap_or(&m.digest),
            if packages.is_empty() {
                "-".to_string()
            } else {
                packages.join(",")
            },
        );
    }
    println!(
        "on disk: {} (files shared between runtimes count once)",
        HumanBytes(store.disk_usage()?)
    );
    Ok(ExitCode::SUCCESS)
}

fn add(
    store: &RuntimeStore,
    source: &str,
    packages: Vec<String>,
    name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let Some(suite) = source.strip_prefix("debian:") else {
        bail!("unknown runtime source '{source}': use debian:SUITE (bookworm, trixie, sid...)");
    };
    let name = name.unwrap_or_else(|| format!("debian-{suite}"));
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("building {name} from {source}"));
    let started = Instant::now();
    let mut on_progress = |progress: Progress| match progress {
        Progress::Step(step) => bar.set_message(format!("{name}: {step}")),
        Progress::Storing { done, total } => {
            if bar.length() != Some(total) {
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {msg} {bar:30} {pos}/{len} files",
                    )
                    .expect("a valid template"),
                );
                bar.set_length(total);
                bar.set_message(format!("{name}: storing"));
            }
            bar.set_position(done);
        }
    };
    let added = store.add_debian(&name, suite, &packages, &mut on_progress);
    bar.finish_and_clear();
    let runtime = added.map_err(|e| match e {
        RuntimeError::Exists { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(other).context(format!("cannot add {name}")),
    })?;
    let m = &runtime.manifest;
    println!(
        "added {} ({}) in {}: {} in {} files, {} new on disk, {}",
        m.name,
        m.source,
        HumanDuration(started.elapsed()),
        HumanBytes(m.size_bytes),
        m.files,
        HumanBytes(m.new_bytes),
        m.digest
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(store: &RuntimeStore, name: Option<String>) -> anyhow::Result<ExitCode> {
    let names = match name {
        Some(name) => vec![name],
        None => store.list()?.into_iter().map(|r| r.manifest.name).collect(),
    };
    let mut failed = false;
    for name in names {
        match store.verify(&name) {
            Ok(runtime) => println!("{name}: ok {}", runtime.manifest.digest),
            Err(e @ RuntimeError::DigestMismatch { .. }) => {
                failed = true;
                println!("{name}: CHANGED: {e}");
            }
            Err(e) => return Err(e).with_context(|| format!("cannot verify {name}")),
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
