//! `runbox serve` (the HTTP service) and the settings every store command shares.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use runbox_server::ServerConfig;
use runbox_server::config::LogFormat;

/// Where the configuration and the store are: flags shared by `serve`, `worker` and `keys`.
/// They are global, so `runbox keys create --database URL` works as well as
/// `runbox keys --database URL create`.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// The configuration file (default: ./runbox.toml, then /etc/runbox/runbox.toml, when present).
    #[arg(long, value_name = "FILE", env = "RUNBOX_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where the embedded database lives (default /var/lib/runbox).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The database: sqlite://PATH (default: <data-dir>/runbox.db) or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL", global = true)]
    pub database: Option<String>,
}

impl StoreArgs {
    /// The file's settings, then the environment's, then these flags.
    pub fn load(&self) -> anyhow::Result<ServerConfig> {
        let file = match &self.config {
            Some(path) => Some(path.clone()),
            None => ["runbox.toml", "/etc/runbox/runbox.toml"]
                .iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .map(Path::to_path_buf),
        };
        let mut config = ServerConfig::load(file.as_deref(), std::env::vars())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database {
            config.database = Some(url.clone());
        }
        Ok(config)
    }
}

/// Flags every node (`serve`, `worker`) takes.
#[derive(Args)]
pub struct NodeArgs {
    /// Log lines as text or json.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// A directory of language files that add to or replace the built-in ones.
    #[arg(long, value_name = "DIR")]
    languages_dir: Option<PathBuf>,
}

impl NodeArgs {
    /// Sets what these flags give over `config`.
    fn apply(&self, config: &mut ServerConfig) {
        if let Some(format) = &self.log_format {
            config.log_format = if format == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
        }
        if let Some(dir) = &self.languages_dir {
            config.languages_dir = Some(dir.clone());
        }
    }
}

/// Flags of `runbox serve`.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on (default 127.0.0.1:2358).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Local workers (default: one per CPU plus one); 0 for a node that only takes requests.
    #[arg(long, value_name = "N")]
    workers: Option<u32>,
    #[command(flatten)]
    node: NodeArgs,
    /// Print the effective configuration (file, environment and flags merged) and exit.
    #[arg(long)]
    print_config: bool,
}

impl ServeArgs {
    /// The effective configuration.
    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = self.store.load()?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(workers) = self.workers {
            config.workers = Some(workers);
        }
        self.node.apply(&mut config);
        config.validate()?;
        config.box_launcher = box_launcher()?;
        Ok(config)
    }
}

/// The launcher processes boxes are born in: this binary, unless
/// `RUNBOX_BOX_LAUNCHER=thread` has the service clone them from its own
/// threads (a fallback, and the baseline of the benchmarks).
fn box_launcher() -> anyhow::Result<Option<runbox_sandbox::LauncherProgram>> {
    match std::env::var("RUNBOX_BOX_LAUNCHER").as_deref() {
        Ok("thread") => Ok(None),
        Ok("process") | Err(std::env::VarError::NotPresent) => {
            Ok(Some(runbox_sandbox::LauncherProgram::runbox()))
        }
        Ok(other) => anyhow::bail!("RUNBOX_BOX_LAUNCHER is `process` or `thread`, not `{other}`"),
        Err(e) => anyhow::bail!("RUNBOX_BOX_LAUNCHER: {e}"),
    }
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
pub fn run(args: ServeArgs, config: ServerConfig) -> anyhow::Result<ExitCode> {
    if args.print_config {
        out!("{}", config.to_toml());
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(runbox_server::serve(config, shutdown_signal()))?;
    // Jobs still running after the grace period must not keep the process (and
    // its new boxes) alive: their blocking threads are left, and the process
    // exits, which kills their boxes with their supervisor.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM; stop runbox with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// Flags of `runbox worker`.
#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Jobs run at once (default: one per CPU plus one).
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,
    /// Address of the health and metrics listener (default 127.0.0.1:2359).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    node: NodeArgs,
}

impl WorkerArgs {
    /// The effective configuration and concurrency.
    pub fn config(&self) -> anyhow::Result<(ServerConfig, u32)> {
        let mut config = self.store.load()?;
        config.listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 2359)));
        self.node.apply(&mut config);
        config.validate()?;
        config.box_launcher = box_launcher()?;
        let concurrency = self
            .concurrency
            .unwrap_or_else(|| runbox_server::worker_count(&config));
        Ok((config, concurrency))
    }
}

/// Runs a worker node until SIGTERM or SIGINT.
pub fn work(config: ServerConfig, concurrency: u32) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(runbox_server::work(config, concurrency, shutdown_signal()))?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}
