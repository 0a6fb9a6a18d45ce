//! runbox-engine: the language catalog and the compile/run pipeline.
//!
//! The engine turns a [`Job`] (a language, source files, stdin, arguments, limits)
//! into a [`RunResult`]: it writes the files into a fresh size-limited work volume,
//! compiles them in one box (generous compile limits), and runs the artifact in a
//! new box (tight run limits) that sees the work volume read-only. Languages are
//! data: the [`Catalog`] is read from `languages/*.toml`, built into the binary.
//!
//! It knows nothing of HTTP or the command line.
//!
//! ```no_run
//! use std::sync::Arc;
//! use runbox_engine::{Catalog, Engine, EngineConfig, Job, SourceFile};
//! use runbox_sandbox::{Sandbox, SandboxOptions};
//!
//! let sandbox = Arc::new(Sandbox::new(SandboxOptions::default())?);
//! let engine = Engine::new(sandbox, Catalog::embedded()?, EngineConfig::default());
//! let job = Job {
//!     language: "python".into(),
//!     files: vec![SourceFile::unnamed("print(input())")],
//!     stdin: b"hi\n".to_vec(),
//!     ..Job::default()
//! };
//! let result = engine.run(&job)?;
//! assert_eq!(result.run.unwrap().stdout, b"hi\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod catalog;
mod error;
mod installation;
pub mod job;
pub mod limits;
mod pipeline;
pub mod result;
pub mod units;
mod version_cache;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub use catalog::{Catalog, Language};
pub use error::{Error, Result};
pub use installation::Installation;
pub use job::{Job, JobBounds, SourceFile};
pub use limits::LimitOverrides;
pub use pipeline::Commands;
pub use result::{ResultStatus, RunResult, Stage};

use runbox_sandbox::{Limits, Sandbox};

/// The engine's settings: default limits of each stage and the bounds of a job.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Limits of a compile stage that neither the language nor the user set.
    pub compile_limits: Limits,
    /// Limits of a run stage that neither the language nor the user set.
    pub run_limits: Limits,
    /// How many files and bytes a job may bring.
    pub bounds: JobBounds,
    /// A directory where detected versions are remembered across processes, so
    /// that a command does not start a JVM just to learn its version.
    pub version_cache: Option<std::path::PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            compile_limits: limits::default_compile_limits(),
            run_limits: limits::default_run_limits(),
            bounds: JobBounds::default(),
            version_cache: None,
        }
    }
}

/// Compiles and runs jobs in boxes of one [`Sandbox`]; share it between threads.
pub struct Engine {
    sandbox: Arc<Sandbox>,
    catalog: Catalog,
    config: EngineConfig,
    /// Each language's installation, detected once on first use.
    installations: Mutex<HashMap<String, Arc<OnceLock<Installation>>>>,
}

impl Engine {
    /// An engine for `catalog`, running its boxes in `sandbox`.
    pub fn new(sandbox: Arc<Sandbox>, catalog: Catalog, config: EngineConfig) -> Engine {
        Engine {
            sandbox,
            catalog,
            config,
            installations: Mutex::new(HashMap::new()),
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The sandbox the engine runs its boxes in.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// Whether and which version of `language` is installed; detected on first use
    /// (its version command runs in a box), then remembered.
    pub fn installation(&self, language: &Language) -> Installation {
        self.installation_cell(language)
            .get_or_init(|| {
                let cache = self
                    .config
                    .version_cache
                    .as_ref()
                    .map(version_cache::VersionCache::new);
                if let Some(found) = cache.as_ref().and_then(|c| c.get(language)) {
                    return found;
                }
                let detected =
                    installation::detect(&self.sandbox, language, &self.config.compile_limits);
                if let Some(cache) = &cache {
                    cache.put(language, &detected);
                }
                detected
            })
            .clone()
    }

    /// Where the installation of `language` is (or will be) remembered.
    fn installation_cell(&self, language: &Language) -> Arc<OnceLock<Installation>> {
        let mut map = self
            .installations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(language.id.clone()).or_default().clone()
    }

    /// Every catalog language with its installation, detected in parallel.
    pub fn installations(&self) -> Vec<(Arc<Language>, Installation)> {
        let languages = self.catalog.languages();
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8);
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..workers.min(languages.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(language) = languages.get(i) else {
                            break;
                        };
                        self.installation(language);
                    }
                });
            }
        });
        languages
            .iter()
            .map(|l| (l.clone(), self.installation(l)))
            .collect()
    }

    /// Compiles (when the language compiles) and runs one job.
    ///
    /// `Ok` whatever the program did (a compile error, a crash, a limit); `Err` when
    /// the job is malformed, the language unknown or not installed, or a box could
    /// not be run.
    pub fn run(&self, job: &Job) -> Result<RunResult> {
        job.check(&self.config.bounds)?;
        let language = self.catalog.get(&job.language)?.clone();
        if let Some(missing) = installation::first_missing(&language) {
            return Err(Error::NotInstalled {
                name: language.name.clone(),
                missing,
                install: language.install_command(),
            });
        }
        if !language.accepts_args && !job.args.is_empty() {
            return Err(Error::invalid(
                "args",
                format!("{} programs cannot be given arguments", language.name),
            ));
        }
        let limits = pipeline::StageLimits::resolve(
            &language,
            job,
            &self.config.compile_limits,
            &self.config.run_limits,
        )?;
        let layout = pipeline::Layout::new(&language, job)?;
        if let Some(wanted) = &job.version {
            self.check_version(&language, wanted)?;
        }
        let known = self.installation_cell(&language).get().is_some();
        let mut result = if known {
            pipeline::execute(&self.sandbox, &language, job, &layout, &limits)?
        } else {
            // The first job of a language finds its version in a box beside it.
            std::thread::scope(|scope| {
                scope.spawn(|| self.installation(&language));
                pipeline::execute(&self.sandbox, &language, job, &layout, &limits)
            })?
        };
        result.version = self.installation(&language).version().map(str::to_string);
        Ok(result)
    }

    /// The files and commands `job` would run, without running them.
    pub fn commands(&self, job: &Job) -> Result<Commands> {
        job.check(&self.config.bounds)?;
        let language = self.catalog.get(&job.language)?;
        let limits = pipeline::StageLimits::resolve(
            language,
            job,
            &self.config.compile_limits,
            &self.config.run_limits,
        )?;
        let layout = pipeline::Layout::new(language, job)?;
        Ok(layout.commands(language, &limits, &job.args))
    }

    /// Refuses a job that asks for a version this host does not have.
    fn check_version(&self, language: &Language, wanted: &str) -> Result<()> {
        let installation = self.installation(language);
        let installed = installation.version().unwrap_or("an unknown version");
        if installation::version_matches(wanted, installed) {
            return Ok(());
        }
        Err(Error::VersionUnavailable {
            name: language.name.clone(),
            wanted: wanted.to_string(),
            installed: installed.to_string(),
        })
    }
}
