//! One module per subcommand.

/// `println!` for a command's output: a closed stdout (`runbox ... | head`) is
/// [`StdoutClosed`], which the command returns and `main` ends quietly on, not a
/// panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::commands::stdout_error)?
    }};
}

/// `print!` for a command's output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*).map_err($crate::commands::stdout_error)?
    }};
}

pub mod doctor;
pub mod interactive;
pub mod job;
pub mod judge;
pub mod keys;
pub mod languages;
pub mod run;
pub mod runtimes;
pub mod sandbox;
pub mod serve;

/// Exit code when runbox itself fails (bad flags, host problem), as distinct from the
/// program's own exit code.
pub const EXIT_RUNBOX_ERROR: u8 = 125;

/// Exit code when whoever read runbox's output closed it first (`runbox ... |
/// head`): 128 + SIGPIPE, what a shell shows for a tool that signal ended.
pub const EXIT_STDOUT_CLOSED: u8 = 141;

/// Whoever read runbox's standard output closed it before runbox was done.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// The error of a failed write to standard output: [`StdoutClosed`] when its
/// reader has gone, else the write's own error.
pub fn stdout_error(error: std::io::Error) -> anyhow::Error {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(error).context("cannot write to standard output")
    }
}

/// Writes `bytes` to standard output and flushes it (see [`stdout_error`]).
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(stdout_error)
}

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use runbox_engine::{Catalog, CompileCacheConfig, Engine, EngineConfig};
use runbox_sandbox::{Sandbox, SandboxOptions};

/// Where the catalog comes from: the embedded files plus an operator's directory.
#[derive(Args, Clone, Debug)]
pub struct CatalogArgs {
    /// A directory of language files (`*.toml`) that add to or replace the built-in ones.
    #[arg(long, value_name = "DIR", env = "RUNBOX_LANGUAGES_DIR")]
    pub languages_dir: Option<PathBuf>,
}

impl CatalogArgs {
    /// The catalog these flags describe.
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        Ok(Catalog::load(self.languages_dir.as_deref())?)
    }
}

/// Where the compile cache of `runbox run` and `runbox judge` lives.
#[derive(Args, Clone, Debug)]
pub struct CacheArgs {
    /// The compile cache directory [default: /var/cache/runbox/compile, or
    /// <state dir>/compile-cache when /var/cache is not writable].
    #[arg(long, value_name = "DIR", env = "RUNBOX_COMPILE_CACHE")]
    pub compile_cache: Option<PathBuf>,
    /// The size bound of the compile cache (least recently used entries go first).
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = runbox_engine::units::parse_size)]
    pub compile_cache_size: u64,
    /// Compile every time: neither use nor fill the compile cache.
    #[arg(long)]
    pub no_compile_cache: bool,
}

impl CacheArgs {
    /// The cache these flags describe, `None` when turned off.
    pub fn config(&self, state_dir: &std::path::Path) -> Option<CompileCacheConfig> {
        if self.no_compile_cache {
            return None;
        }
        let dir = self.compile_cache.clone().unwrap_or_else(|| {
            let var_cache = std::path::Path::new("/var/cache");
            let writable = std::fs::metadata(var_cache).is_ok_and(|m| m.is_dir())
                && std::fs::create_dir_all(var_cache.join("runbox")).is_ok();
            if writable {
                var_cache.join("runbox/compile")
            } else {
                state_dir.join("compile-cache")
            }
        });
        Some(CompileCacheConfig {
            dir,
            max_bytes: self.compile_cache_size,
        })
    }
}

/// An engine with its own sandbox of `max_boxes` slots, and the compile cache
/// `cache` describes (none when `None`).
pub fn engine(
    catalog: Catalog,
    max_boxes: u32,
    cache: Option<&CacheArgs>,
) -> anyhow::Result<Engine> {
    let options = SandboxOptions {
        max_boxes,
        // A command's few boxes take lasting slots shared with other commands; a
        // judge with many workers holds its own rather than most of them.
        one_shot: max_boxes <= 16,
        // The server's setting of the same name, from the same variable.
        trace_program_memory: !std::env::var("RUNBOX_TRACE_PROGRAM_MEMORY")
            .is_ok_and(|v| v == "false" || v == "0"),
        // A judge with many workers runs long: its boxes are born in launcher
        // processes, not copied from its own threads.
        launcher: (max_boxes > 16).then(runbox_sandbox::LauncherProgram::runbox),
        ..SandboxOptions::default()
    };
    // The runtimes `runbox runtimes` keeps in the default data directory (or
    // RUNBOX_DATA_DIR's), when there are any.
    let runtimes = std::env::var_os("RUNBOX_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/runbox"))
        .join("runtimes");
    let config = EngineConfig {
        runtimes: runtimes.is_dir().then_some(runtimes),
        version_cache: Some(options.state_dir.join("versions")),
        compile_cache: cache.and_then(|c| c.config(&options.state_dir)),
        // One slot is for the version check beside the compile.
        test_workers: max_boxes.saturating_sub(1).max(1) as usize,
        ..EngineConfig::default()
    };
    let sandbox = Sandbox::new(options).context("cannot prepare the sandbox")?;
    Ok(Engine::new(Arc::new(sandbox), catalog, config))
}
