//! runbox-engine: the language catalog and the compile/run pipeline.
//!
//! The engine turns a [`Job`] (a language, source files, stdin, arguments, limits)
//! into a [`RunResult`]: it writes the files into a fresh size-limited work volume,
//! compiles them in one box (generous compile limits), and runs the artifact in a
//! new box (tight run limits) that sees the work volume read-only. Languages are
//! data: the [`Catalog`] is read from `languages/*.toml`, built into the binary.
//!
//! A job with [`TestCase`]s is judged: compiled once, run once per test in a fresh
//! box (in parallel over [`EngineConfig::test_workers`], or one by one), each run
//! compared by its [`Checker`]; the result lists a verdict per test. With
//! [`EngineConfig::compile_cache`], successful compiles are kept on disk and
//! reused by identical jobs (`compile_cache`).
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
//! let result = engine.check_and_run(&job)?;
//! assert_eq!(result.run.unwrap().stdout, b"hi\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod catalog;
mod check;
pub mod checker;
pub mod compile_cache;
mod error;
mod functions;
mod installation;
mod interact;
pub mod job;
mod judge;
pub mod limits;
pub mod live;
pub mod memcheck;
pub mod output_files;
mod pipeline;
pub mod result;
pub mod runtime;
mod runtime_catalog;
mod symbols;
pub mod testlib;
pub mod units;
pub mod version;
mod version_cache;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub use catalog::{Catalog, Language};
pub use check::CheckedJob;
pub use checker::{CheckOutcome, Checker, CustomChecker, CustomProgram};
pub use compile_cache::CompileCacheConfig;
pub use error::{Error, Failure, JobError, Result};
pub use installation::Installation;
pub use job::{Analysis, Harness, Job, JobBounds, JudgeOptions, SourceFile, TestCase};
pub use limits::LimitOverrides;
pub use live::{Live, LiveEvent};
pub use memcheck::{Finding, MemcheckReport};
pub use output_files::{OutputCaps, OutputFile};
pub use pipeline::Commands;
pub use result::{CompileStage, ResultStatus, RunResult, Stage, StageSummary, TestResult, Timing};

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
    /// The compile cache, when there is one: compiled artifacts kept on disk and
    /// reused by jobs with the same language, command and files.
    pub compile_cache: Option<CompileCacheConfig>,
    /// How many tests of one job run at once (default: the number of CPUs).
    pub test_workers: usize,
    /// Limits of a custom checker's run stage.
    pub checker_limits: Limits,
    /// Whether compile cache entries may keep the job's own files. Without, an
    /// entry keeps only what the compiler made, and a hit copies it beside the
    /// job's files in a fresh volume: an operator who keeps no source
    /// (`history.store_source = false`) gets no copy of it on disk.
    pub cache_keeps_sources: bool,
    /// The runtime store (`<data_dir>/runtimes`): where the catalog's entries
    /// with a `runtime` find their trees. `None`: only the host's languages.
    pub runtimes: Option<std::path::PathBuf>,
    /// Output bytes one job's tests may keep together once judged; past it,
    /// later tests' outputs are cut and flagged truncated (their verdicts stay).
    pub max_result_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            compile_limits: limits::default_compile_limits(),
            run_limits: limits::default_run_limits(),
            bounds: JobBounds::default(),
            version_cache: None,
            compile_cache: None,
            test_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            checker_limits: limits::default_checker_limits(),
            cache_keeps_sources: true,
            runtimes: None,
            max_result_bytes: 64 << 20,
        }
    }
}

/// Compiles and runs jobs in boxes of one [`Sandbox`]; share it between threads.
pub struct Engine {
    sandbox: Arc<Sandbox>,
    /// The catalog, following runtimes added or removed while the engine runs.
    catalog: runtime_catalog::RuntimeCatalog,
    config: EngineConfig,
    /// Each language's installation, detected once on first use.
    installations: Mutex<HashMap<String, Arc<OnceLock<Installation>>>>,
    /// The compile cache, when configured and usable.
    compile_cache: Option<compile_cache::CompileCache>,
    /// The runtimes languages of the catalog may run in.
    runtimes: Option<runtime::RuntimeStore>,
}

impl Engine {
    /// An engine for `catalog`, running its boxes in `sandbox`. A compile cache
    /// directory that cannot be created is reported and the engine runs without it.
    pub fn new(sandbox: Arc<Sandbox>, catalog: Catalog, config: EngineConfig) -> Engine {
        let compile_cache = config.compile_cache.as_ref().and_then(|c| {
            compile_cache::CompileCache::open(c)
                .map_err(|err| {
                    tracing::warn!(
                        "no compile cache: cannot prepare {}: {err}",
                        c.dir.display()
                    )
                })
                .ok()
        });
        let runtimes = config.runtimes.as_ref().and_then(|dir| {
            runtime::RuntimeStore::open(dir)
                .map_err(|err| tracing::warn!("no runtimes: cannot open {}: {err}", dir.display()))
                .ok()
        });
        Engine {
            sandbox,
            catalog: runtime_catalog::RuntimeCatalog::new(catalog, runtimes.clone()),
            config,
            installations: Mutex::new(HashMap::new()),
            compile_cache,
            runtimes,
        }
    }

    /// The runtime store, when the engine has one.
    pub fn runtimes(&self) -> Option<&runtime::RuntimeStore> {
        self.runtimes.as_ref()
    }

    /// The catalog, its runtime entries pointing at the runtimes installed now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.get()
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
                // Before the cache: a remembered version stands for the tools
                // its key names, not for the files and binds the language also
                // needs.
                if let Some(missing) = installation::first_missing(language) {
                    return Installation::Missing { missing };
                }
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
        // A runtime built again under the same name is another installation.
        let key = match &language.root {
            Some((_, digest)) => format!("{} {digest}", language.key()),
            None => language.key(),
        };
        map.entry(key).or_default().clone()
    }

    /// Every catalog language with its installation, detected in parallel.
    pub fn installations(&self) -> Vec<(Arc<Language>, Installation)> {
        let catalog = self.catalog();
        let languages = catalog.languages();
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

    /// Compiles (when the language compiles) and runs one checked job: once, or
    /// once per test case with a verdict for each.
    ///
    /// `Ok` whatever the program did (a compile error, a crash, a limit, a wrong
    /// answer, a checker that does not compile); `Err` only when the host failed
    /// (a box could not be run, the work directory could not be written).
    pub fn run(&self, job: &CheckedJob) -> Result<RunResult> {
        self.run_with_progress(job, &|_| {})
    }

    /// [`Engine::check`] then [`Engine::run`]: for callers that hold a job once
    /// (the CLI, tests), with both kinds of failure kept apart.
    pub fn check_and_run(&self, job: &Job) -> std::result::Result<RunResult, Failure> {
        let checked = self.check(job.clone())?;
        Ok(self.run(&checked)?)
    }

    /// [`Engine::run`], calling `progress` with each test's result as it is judged
    /// (from the test workers' threads, in completion order).
    pub fn run_with_progress(
        &self,
        job: &CheckedJob,
        progress: &(dyn Fn(&TestResult) + Sync),
    ) -> Result<RunResult> {
        self.run_inner(job, progress, None)
    }

    /// [`Engine::run`] for a caller that talks to the program while it runs: each
    /// stage is announced, its output passed on as it is read, the run stage reads
    /// the caller's stdin pipe, and the caller's signals reach the program. A live
    /// job has no tests and runs once (checked by [`Engine::check_live`]).
    pub fn run_live(&self, job: &CheckedJob, live: &Live<'_>) -> Result<RunResult> {
        self.run_inner(job, &|_| {}, Some(live))
    }

    /// [`Engine::check`] for a live job, which has no tests and runs once.
    pub fn check_live(&self, job: Job) -> std::result::Result<CheckedJob, JobError> {
        if !job.tests.is_empty() {
            return Err(JobError::invalid("tests", "a live job cannot have tests"));
        }
        if job.runs > 1 {
            return Err(JobError::invalid("runs", "a live job runs once"));
        }
        self.check(job)
    }

    fn run_inner(
        &self,
        checked: &CheckedJob,
        progress: &(dyn Fn(&TestResult) + Sync),
        live: Option<&Live<'_>>,
    ) -> Result<RunResult> {
        let job = &checked.job;
        let language = &checked.language;
        let layout = &checked.layout;
        let limits = &checked.limits;
        // The runtimes the job's boxes use cannot be removed before it ends.
        let _runtimes = (
            self.lease(language)?,
            checked
                .checker
                .as_ref()
                .map(|c| self.lease(&c.language))
                .transpose()?,
        );
        let cached = self.cache_use(language);
        let build = pipeline::build(&self.sandbox, language, layout, limits, cached, live)?;
        let mut result = pipeline::empty_result(language);
        result.version = self.installation(language).version().map(str::to_string);
        let work = match build {
            pipeline::Build::Failed(stage) => {
                result.status = ResultStatus::CompileError;
                result.compile = Some(stage);
                return Ok(result);
            }
            pipeline::Build::Ready(work, stage) => {
                result.compile = stage;
                work
            }
        };
        if let Some(refusal) = functions::refusal(job, work.path()) {
            result.status = ResultStatus::CompileError;
            if let Some(compile) = result.compile.as_mut() {
                compile.outcome.stderr.extend_from_slice(refusal.as_bytes());
                compile.outcome.stderr.push(b'\n');
            }
            result.message = Some(refusal);
            return Ok(result);
        }
        let program = pipeline::Program {
            language,
            layout,
            work: work.path(),
            limits: &limits.run,
        };
        if job.tests.is_empty() {
            let run_once = || {
                pipeline::run_collecting(
                    &self.sandbox,
                    &program,
                    pipeline::RunInput {
                        stdin: &job.stdin,
                        args: &job.args,
                        stderr_to_stdout: job.stderr_to_stdout,
                        network: job.network,
                        live,
                        output_files: &job.output_files,
                        output_caps: self.config.bounds.output,
                        memcheck: job.analysis.memcheck,
                        ..pipeline::RunInput::default()
                    },
                )
            };
            // More runs measure more steadily: the result is the last (or the
            // first that failed), with the mean times and memory of all of them.
            let pipeline::Collected {
                mut outcome,
                mut files,
                mut memcheck,
            } = run_once()?;
            let (mut cpu, mut wall, mut memory, mut count) =
                (outcome.cpu_time, outcome.wall_time, outcome.memory_kb, 1u32);
            while count < job.runs && outcome.status == runbox_sandbox::Status::Ok {
                pipeline::Collected {
                    outcome,
                    files,
                    memcheck,
                } = run_once()?;
                cpu += outcome.cpu_time;
                wall += outcome.wall_time;
                memory += outcome.memory_kb;
                count += 1;
            }
            if outcome.status == runbox_sandbox::Status::Ok {
                outcome.cpu_time = cpu / count;
                outcome.wall_time = wall / count;
                outcome.memory_kb = memory / u64::from(count);
            }
            result.status = outcome.status.into();
            result.run = Some(outcome);
            result.output_files = files;
            result.memcheck = memcheck;
            return Ok(result);
        }
        self.judge(checked, &program, &mut result, progress)?;
        Ok(result)
    }

    /// Runs the tests of `job` and fills in the verdicts.
    fn judge(
        &self,
        checked: &CheckedJob,
        program: &pipeline::Program<'_>,
        result: &mut RunResult,
        progress: &(dyn Fn(&TestResult) + Sync),
    ) -> Result<()> {
        let job = &checked.job;
        let options = job.judge;
        let pinned = options.pin_cpu && self.sandbox.can_pin_cpus();
        let mut workers = if options.sequential {
            1
        } else {
            self.config.test_workers.max(1)
        };
        let cpus = if pinned {
            // The last CPUs first: CPU 0 usually takes more of the host's interrupts.
            let mut cpus = judge::allowed_cpus();
            cpus.reverse();
            workers = workers.min(cpus.len());
            cpus.truncate(workers);
            cpus
        } else {
            Vec::new()
        };
        let spread = judge::Spread {
            workers,
            cpus,
            progress,
            output_budget: self.config.max_result_bytes,
        };
        // The checker and the interactor compile once, before any test runs.
        let mut helpers = Vec::with_capacity(2);
        for (helper, role) in [
            (&checked.checker, "checker"),
            (&checked.interactor, "interactor"),
        ] {
            let work = match helper {
                Some(helper) => match self.build_helper(helper, role)? {
                    Ok(work) => Some(work),
                    Err(message) => {
                        result.status = ResultStatus::CheckerError;
                        result.message = Some(message);
                        return Ok(());
                    }
                },
                None => None,
            };
            helpers.push(work);
        }
        let interactor_work = helpers.pop().flatten();
        let checker_work = helpers.pop().flatten();
        let judging = judge::Judging {
            checker: match helper_program(checked.checker.as_ref(), checker_work.as_ref()) {
                Some(program) => judge::Judge::Program(program),
                None => judge::Judge::Builtin(&job.checker),
            },
            interactor: helper_program(checked.interactor.as_ref(), interactor_work.as_ref()),
            output_caps: self.config.bounds.output,
        };
        let tests = judge::run_tests(&self.sandbox, program, job, &judging, &spread)?;
        let failed_tests: Vec<String> = tests
            .iter()
            .filter(|t| t.verdict != ResultStatus::Accepted)
            .map(|t| t.name.clone())
            .collect();
        result.status = tests
            .iter()
            .map(|t| t.verdict)
            .find(|v| *v != ResultStatus::Accepted)
            .unwrap_or(ResultStatus::Accepted);
        result.passed = Some(tests.len() - failed_tests.len());
        result.score = Some(tests.iter().map(|t| t.score).sum());
        result.failed = Some(failed_tests.len());
        result.failed_tests = Some(failed_tests);
        result.timing = Some(Timing {
            cpu_time: if self.sandbox.cgroup_version().is_some() {
                "cgroup"
            } else {
                "rusage"
            },
            pinned,
            parallel: spread.workers.min(tests.len()).max(1),
        });
        result.tests = Some(tests);
        Ok(())
    }

    /// A lease on the runtime `language` runs in, if it runs in one.
    fn lease(&self, language: &Language) -> Result<Option<runtime::RuntimeLease>> {
        let (Some(name), Some(store)) = (&language.runtime, &self.runtimes) else {
            return Ok(None);
        };
        store.lease(name).map(Some).map_err(|error| Error::Runtime {
            name: name.clone(),
            message: error.to_string(),
        })
    }

    /// Compiles a custom checker or an interactor (`role`): its work directory,
    /// or, when it does not compile, the message that says so with the
    /// compiler's words (the request's program is at fault, not the solution and
    /// not the host).
    fn build_helper(
        &self,
        helper: &check::CheckedProgram,
        role: &str,
    ) -> Result<std::result::Result<pipeline::WorkDir, String>> {
        let cached = self.cache_use(&helper.language);
        match pipeline::build(
            &self.sandbox,
            &helper.language,
            &helper.layout,
            &helper.limits,
            cached,
            None,
        )? {
            pipeline::Build::Ready(work, _) => Ok(Ok(work)),
            pipeline::Build::Failed(stage) => {
                let mut messages = String::from_utf8_lossy(&stage.stderr).into_owned();
                messages.push_str(&String::from_utf8_lossy(&stage.stdout));
                Ok(Err(format!(
                    "the {role} does not compile ({}): {}",
                    stage.status,
                    messages.trim()
                )))
            }
        }
    }

    /// The compile cache and the identity of `language`, for a compiled language
    /// when there is a cache. Learning the identity may detect the version.
    fn cache_use(&self, language: &Language) -> Option<pipeline::CacheUse<'_>> {
        let cache = self.compile_cache.as_ref()?;
        if !language.is_compiled() {
            return None;
        }
        let installation = self.installation(language);
        let identity = format!(
            "{}\n{}\n{}",
            language.id,
            installation.version().unwrap_or(""),
            version_cache::key(language).unwrap_or_default()
        );
        Some(pipeline::CacheUse {
            cache,
            identity,
            keep_sources: self.config.cache_keeps_sources,
        })
    }

    /// The files and commands `job` would run, without running them.
    pub fn commands(&self, job: &CheckedJob) -> Commands {
        job.layout
            .commands(&job.language, &job.limits, &job.job.args)
    }
}

/// A compiled checker or interactor, ready to run.
fn helper_program<'a>(
    checked: Option<&'a check::CheckedProgram>,
    work: Option<&'a pipeline::WorkDir>,
) -> Option<pipeline::Program<'a>> {
    let (checked, work) = (checked?, work?);
    Some(pipeline::Program {
        language: &checked.language,
        layout: &checked.layout,
        work: work.path(),
        limits: &checked.limits.run,
    })
}
