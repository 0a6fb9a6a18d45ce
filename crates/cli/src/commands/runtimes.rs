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
    /// Build or import a runtime and store it: `debian:SUITE` (bookworm, trixie,
    /// sid...), `oci:IMAGE` (a registry), `oci-layout:DIR[:TAG]`, `docker-archive:FILE`.
    Add {
        /// Where it comes from.
        source: String,
        /// The image's platform (OCI sources) [default: this host's].
        #[arg(long, value_name = "OS/ARCH")]
        platform: Option<String>,
        /// Registry user (OCI sources); the password is read from RUNBOX_REGISTRY_PASSWORD.
        #[arg(long)]
        username: Option<String>,
        /// Registries to reach over plain HTTP (a registry on loopback).
        #[arg(long, value_delimiter = ',')]
        insecure_registry: Vec<String>,
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
            platform,
            username,
            insecure_registry,
        } => {
            // Every box user reads a runtime's tree: what its build creates without
            // a mode of its own (mmdebstrap's directories, an image's implied
            // parent directories) must not follow a root umask such as 077.
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
            if source.starts_with("debian:") {
                add(&store, &source, packages, name)
            } else {
                let registry = Registry {
                    platform,
                    username,
                    insecure: insecure_registry,
                };
                add_image(&store, &source, name, &registry)
            }
        }
        RuntimesCommand::Remove { name } => {
            store.remove(&name)?;
            outln!("removed {name} (`runbox runtimes gc` frees the files it alone used)");
            Ok(ExitCode::SUCCESS)
        }
        RuntimesCommand::Gc => {
            let report = store.gc()?;
            outln!(
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
        outln!("{}", serde_json::to_string_pretty(&manifests)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<24} {:<16} {:>10} {:>10}  {:<19} PACKAGES",
        "NAME",
        "SOURCE",
        "SIZE",
        "OWN",
        "DIGEST"
    );
    outln!(
        "{:<24} {:<16} {:>10} {:>10}  {:<19} -",
        "host",
        "host /usr",
        "-",
        "-",
        "-"
    );
    for runtime in &runtimes {
        let m = &runtime.manifest;
        let packages = match &m.source {
            RuntimeSource::Debian { packages, .. } => packages.clone(),
            RuntimeSource::Oci { platform, .. } => vec![format!("({platform} image)")],
        };
        outln!(
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
    for runtime in runtimes
        .iter()
        .filter(|r| r.manifest.store_format < runbox_engine::runtime::STORE_FORMAT)
    {
        eprintln!(
            "runtime {} was stored before files kept their own modification times: \
             Guile, Racket or Python may recompile their libraries in it at every start; \
             build it again (runbox runtimes remove, then add, or scripts/install-languages.sh --runtime {})",
            runtime.manifest.name, runtime.manifest.name
        );
    }
    outln!(
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
    outln!(
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

/// How an image is taken from a registry.
struct Registry {
    platform: Option<String>,
    username: Option<String>,
    insecure: Vec<String>,
}

/// Imports an OCI image (a registry, a layout directory or a `docker save`
/// archive) as the runtime `name`.
fn add_image(
    store: &RuntimeStore,
    source: &str,
    name: Option<String>,
    registry: &Registry,
) -> anyhow::Result<ExitCode> {
    use runbox_engine::runtime::oci;
    let platform = match &registry.platform {
        Some(text) => text
            .parse::<oci::Platform>()
            .map_err(|e| anyhow::anyhow!("--platform {text}: {e}"))?,
        None => oci::Platform::host(),
    };
    let (kind, what) = source.split_once(':').unwrap_or(("", source));
    if !matches!(kind, "oci" | "oci-layout" | "docker-archive") {
        bail!(
            "unknown runtime source '{source}': use debian:SUITE, oci:IMAGE, oci-layout:DIR[:TAG] or docker-archive:FILE"
        );
    }
    let name = name.unwrap_or_else(|| default_image_name(what));
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("importing {name} from {source}"));
    let started = Instant::now();
    let pulled: std::cell::RefCell<Option<oci::PulledImage>> = std::cell::RefCell::new(None);
    let mut on_progress = |progress: Progress| match progress {
        Progress::Step(step) => bar.set_message(format!("{name}: {step}")),
        Progress::Storing { done, total } => {
            bar.set_message(format!("{name}: storing {done}/{total} files"))
        }
    };
    let source_record = RuntimeSource::Oci {
        reference: source.to_string(),
        digest: None,
        platform: platform.to_string(),
    };
    let added = store.add(&name, source_record, &mut on_progress, |root, _progress| {
        let image = match kind {
            "oci" => {
                let credentials = match &registry.username {
                    Some(username) => oci::Credentials::Basic {
                        username: username.clone(),
                        password: std::env::var("RUNBOX_REGISTRY_PASSWORD").unwrap_or_default(),
                    },
                    None => oci::Credentials::Anonymous,
                };
                let options = oci::PullOptions {
                    platform: platform.clone(),
                    credentials,
                    plain_http: registry.insecure.clone(),
                    ..oci::PullOptions::default()
                };
                let runtime = tokio::runtime::Runtime::new().map_err(|e| RuntimeError::Io {
                    action: "cannot start the async runtime for",
                    path: root.to_path_buf(),
                    source: e,
                })?;
                runtime.block_on(oci::pull(what, &options, root, &|p| {
                    if let oci::Progress::Downloaded { digest, bytes } = p {
                        bar.set_message(format!(
                            "downloaded {} ({})",
                            digest.get(..19).unwrap_or(&digest),
                            HumanBytes(bytes)
                        ));
                    }
                }))
            }
            "oci-layout" => {
                let (dir, tag) = match what.rsplit_once(':') {
                    Some((dir, tag)) if !tag.contains('/') => (dir, Some(tag)),
                    _ => (what, None),
                };
                oci::from_layout(std::path::Path::new(dir), tag, &platform, root)
            }
            _ => oci::from_docker_archive(std::path::Path::new(what), root),
        };
        let image = image.map_err(|e| RuntimeError::Import {
            what: source.to_string(),
            source: e,
        })?;
        *pulled.borrow_mut() = Some(image);
        Ok(())
    });
    bar.finish_and_clear();
    let runtime = added.map_err(|e| anyhow::Error::new(e).context(format!("cannot add {name}")))?;
    let m = &runtime.manifest;
    let skipped = pulled.borrow().as_ref().map_or(0, |p| p.skipped.len());
    outln!(
        "added {} ({}) in {}: {} in {} files, {} new on disk, {}{}",
        m.name,
        m.source,
        HumanDuration(started.elapsed()),
        HumanBytes(m.size_bytes),
        m.files,
        HumanBytes(m.new_bytes),
        m.digest,
        if skipped > 0 {
            format!(" ({skipped} device nodes or FIFOs left out)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// A runtime name from an image reference: `docker.io/library/python:3.13` is
/// `python-3.13`.
fn default_image_name(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let last = last.split('@').next().unwrap_or(last);
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

fn verify(store: &RuntimeStore, name: Option<String>) -> anyhow::Result<ExitCode> {
    let names = match name {
        Some(name) => vec![name],
        None => store.list()?.into_iter().map(|r| r.manifest.name).collect(),
    };
    let mut failed = false;
    for name in names {
        match store.verify(&name) {
            Ok(runtime) => outln!("{name}: ok {}", runtime.manifest.digest),
            Err(e @ RuntimeError::DigestMismatch { .. }) => {
                failed = true;
                outln!("{name}: CHANGED: {e}");
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
