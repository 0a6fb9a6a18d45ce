//! One job, start to end: lay out its files in a work volume, compile in one box,
//! run in another.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use runbox_sandbox::{
    BindMount, BoxConfig, Limits, LiveIo, Outcome, Sandbox, Status, Stream, Volume,
};

use crate::catalog::{Language, Values};
use crate::compile_cache::{CompileCache, Entry, Key, KeyBuilder};
use crate::error::{Error, JobError, Result};
use crate::job::{Job, check_file_name};
use crate::live::{Live, LiveEvent};
use crate::output_files::OutputFile;
use crate::result::{CompileStage, ResultStatus, RunResult};

/// Where the work volume appears in every box, and the working directory.
pub(crate) const WORK_DIR: &str = "/box";

/// The environment of every stage, before the language's own.
const BASE_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    // /box is read-only while the program runs: caches and dot-files go to /tmp.
    ("HOME", "/tmp"),
    ("TMPDIR", "/tmp"),
    ("LANG", "C.UTF-8"),
];

/// The job's files as the language will see them.
pub(crate) struct Layout {
    /// `(path in the work dir, contents)`, the entry first.
    files: Vec<(String, Vec<u8>)>,
    entry: String,
    stem: String,
    sources: Vec<String>,
    main: String,
    options: Vec<String>,
}

impl Layout {
    /// Names the files: the unnamed source gets the language's file name, and the
    /// entry file is renamed when the language says so (Java's public class). The
    /// harness files follow the user's; the harness may name another entry.
    pub(crate) fn new(language: &Language, job: &Job) -> Result<Layout, JobError> {
        let harness = &job.harness;
        if !job.compiler_options.is_empty() && !language.takes_compiler_options() {
            return Err(JobError::invalid(
                "compiler_options",
                format!("{} takes no compiler options", language.name),
            ));
        }
        let prelude = match (&language.rename_main, harness.rename_main) {
            (_, false) => None,
            (Some(prelude), true) => Some(prelude.as_str()),
            (None, true) => {
                return Err(JobError::invalid(
                    "harness.rename_main",
                    format!("{} cannot rename the user's main", language.name),
                ));
            }
        };
        let mut files: Vec<(String, Vec<u8>)> =
            Vec::with_capacity(job.files.len() + harness.files.len());
        let all = job
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("files[{i}].name"), f, i == 0, true))
            .chain(
                harness
                    .files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (format!("harness.files[{i}].name"), f, false, false)),
            );
        for (field, file, first, from_user) in all {
            let given = file
                .name
                .clone()
                .unwrap_or_else(|| language.source_file.clone());
            let name = if first {
                let text = String::from_utf8_lossy(&file.content);
                language.entry_file_name(&given, &text)
            } else {
                given
            };
            check_file_name(&name).map_err(|m| JobError::invalid(&field, m))?;
            if files.iter().any(|(n, _)| *n == name) {
                return Err(JobError::invalid(
                    field,
                    format!(
                        "the file name '{name}' is given twice (the entry file is named '{}' after its contents)",
                        files[0].0
                    ),
                ));
            }
            let content = match prelude {
                Some(prelude) if from_user && language.is_source(&name) => {
                    let mut text = prelude.replace("{file}", &name).into_bytes();
                    text.extend_from_slice(&file.content);
                    text
                }
                _ => file.content.clone(),
            };
            files.push((name, content));
        }
        if let Some(wanted) = &harness.entry {
            let Some(at) = files.iter().position(|(n, _)| n == wanted) else {
                return Err(JobError::invalid(
                    "harness.entry",
                    format!("the entry '{wanted}' is none of the job's or the harness's files"),
                ));
            };
            let entry = files.remove(at);
            files.insert(0, entry);
        }
        let entry = files[0].0.clone();
        let base = entry.rsplit('/').next().unwrap_or(&entry);
        let stem = match base.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem.to_string(),
            _ => base.to_string(),
        };
        let sources = files
            .iter()
            .map(|(name, _)| name)
            .filter(|name| language.is_source(name))
            .cloned()
            .collect::<Vec<_>>();
        // A source with an unusual extension is still compiled when it is the entry.
        let sources = if sources.contains(&entry) {
            sources
        } else {
            std::iter::once(entry.clone()).chain(sources).collect()
        };
        let main = language.main_name(&stem, &String::from_utf8_lossy(&files[0].1));
        Ok(Layout {
            files,
            entry,
            stem,
            sources,
            main,
            options: job.compiler_options.clone(),
        })
    }

    /// The names of every laid-out file: what the user (and the harness) sent.
    pub(crate) fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|(name, _)| name.clone()).collect()
    }

    /// The placeholder values of a stage.
    fn values<'v>(&'v self, memory_bytes: u64, args: &'v [String]) -> Values<'v> {
        Values {
            entry: &self.entry,
            stem: &self.stem,
            sources: &self.sources,
            main: &self.main,
            memory_mb: memory_bytes >> 20,
            heap_mb: heap_mb(memory_bytes),
            args,
            options: &self.options,
        }
    }

    /// Writes the files into `dir`. Directories are open to every box user: the
    /// compile box (a different host uid each time) writes into them.
    fn write(&self, dir: &Path) -> Result<()> {
        for (name, content) in &self.files {
            let path = dir.join(name);
            if let Some(parent) = path.parent()
                && parent != dir
            {
                create_dirs(dir, parent)?;
            }
            write_box_file(&path, content)?;
        }
        Ok(())
    }
}

/// Creates `path` (which must not exist) with `content`, readable by every box
/// user: mode 0644 set exactly, whatever the service's umask (a unit's
/// `UMask=0077` would leave it 0600, unreadable to the box).
pub(crate) fn write_box_file(path: &Path, content: &[u8]) -> Result<()> {
    let failed = |source| Error::WorkDir {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(failed)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(failed)?;
    file.write_all(content).map_err(failed)
}

/// What a job would run, without boxes: for tools that compare against bare runs.
#[derive(Debug, Clone)]
pub struct Commands {
    /// The files as laid out in the work directory: `(path, contents)`.
    pub files: Vec<(String, Vec<u8>)>,
    /// The compile command, for compiled languages.
    pub compile: Option<Vec<String>>,
    /// The run command, the user's arguments included.
    pub run: Vec<String>,
    /// The environment of both stages (`HOME` and `TMPDIR` are `/tmp`).
    pub env: Vec<(String, String)>,
}

impl Layout {
    /// The commands of `language` for this layout.
    pub(crate) fn commands(
        &self,
        language: &Language,
        limits: &StageLimits,
        args: &[String],
    ) -> Commands {
        let values = self.values(limits.compile.memory_bytes, &[]);
        let mut env: Vec<(String, String)> = BASE_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (key, value) in &language.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        Commands {
            files: self
                .files
                .iter()
                .map(|(name, content)| (name.clone(), content.to_vec()))
                .collect(),
            compile: language.compile.as_ref().map(|c| c.expand(&values)),
            run: language
                .run
                .expand(&self.values(limits.run.memory_bytes, args)),
            env,
        }
    }
}

/// Copies what `from` holds and `to` does not (a cache entry's artifacts into a
/// volume holding the job's files), without following links.
fn copy_missing(from: &Path, to: &Path) -> Result<()> {
    let entries = fs::read_dir(from).map_err(|source| Error::WorkDir {
        path: from.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::WorkDir {
            path: from.to_path_buf(),
            source,
        })?;
        let (source_path, target) = (entry.path(), to.join(entry.file_name()));
        let failed = |source| Error::WorkDir {
            path: target.clone(),
            source,
        };
        let kind = entry.file_type().map_err(failed)?;
        if kind.is_dir() {
            if !target.exists() {
                fs::DirBuilder::new()
                    .mode(0o777)
                    .create(&target)
                    .map_err(failed)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(0o777)).map_err(failed)?;
            }
            copy_missing(&source_path, &target)?;
        } else if fs::symlink_metadata(&target).is_ok() {
            continue;
        } else if kind.is_symlink() {
            let link = fs::read_link(&source_path).map_err(failed)?;
            std::os::unix::fs::symlink(link, &target).map_err(failed)?;
        } else if kind.is_file() {
            fs::copy(&source_path, &target).map_err(failed)?;
        }
    }
    Ok(())
}

/// Creates `target` and its parents below `root`, each with mode 0777.
fn create_dirs(root: &Path, target: &Path) -> Result<()> {
    let mut current = root.to_path_buf();
    let rest = target.strip_prefix(root).unwrap_or(target);
    for part in rest.components() {
        current.push(part);
        match fs::DirBuilder::new().mode(0o777).create(&current) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                // The umask trimmed the mode; set it exactly.
                fs::set_permissions(&current, fs::Permissions::from_mode(0o777)).map_err(
                    |source| Error::WorkDir {
                        path: current.clone(),
                        source,
                    },
                )?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && current.is_dir() => {}
            Err(source) => {
                return Err(Error::WorkDir {
                    path: current,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// A heap size for managed runtimes: half the memory, or all but 128 MiB when
/// that is more (their own code, threads and metadata need room beside the heap).
pub(crate) fn heap_mb(memory_bytes: u64) -> u64 {
    let mb = memory_bytes >> 20;
    (mb / 2).max(mb.saturating_sub(128)).max(1)
}

/// A box for one stage of `language`: its command, environment, binds and limits.
pub(crate) fn box_config(language: &Language, argv: Vec<String>, limits: Limits) -> BoxConfig {
    let mut config = BoxConfig::new(argv)
        .with_empty_env()
        .with_limits(limits)
        .with_cwd(WORK_DIR);
    for (key, value) in BASE_ENV {
        config = config.with_env(*key, *value);
    }
    for (key, value) in &language.env {
        config = config.with_env(key, value);
    }
    if let Some(root) = language.runtime_root() {
        config = config.with_runtime(root);
    }
    for path in &language.binds {
        // System paths (below /etc, /var/lib, /opt) are the box's system tree's:
        // its runtime's, resolved inside it, or the host's. On a runtime every
        // bind is one (the catalog refuses others, and the sandbox refuses what is
        // not a system path), so nothing of the host's reaches such a box.
        config = if language.runtime.is_some() || runbox_sandbox::is_system_path(path) {
            config.with_system_path(path)
        } else {
            config.with_bind(BindMount::read_only(path, path))
        };
    }
    config
}

/// The limits of both stages, checked.
pub(crate) struct StageLimits {
    pub compile: Limits,
    pub run: Limits,
}

impl StageLimits {
    /// Engine defaults, then the language's, then the user's.
    pub(crate) fn resolve(
        language: &Language,
        job: &Job,
        compile_defaults: &Limits,
        run_defaults: &Limits,
    ) -> Result<StageLimits, JobError> {
        let compile = job
            .compile_limits
            .apply(&language.compile_limits.apply(compile_defaults));
        let run = job.limits.apply(&language.run_limits.apply(run_defaults));
        compile
            .validate()
            .map_err(|e| JobError::invalid("compile_limits", e.to_string()))?;
        run.validate()
            .map_err(|e| JobError::invalid("limits", e.to_string()))?;
        Ok(StageLimits { compile, run })
    }
}

/// Where a job's program runs from: its own work volume, or a compile cache entry.
pub(crate) enum WorkDir {
    /// The volume the files were written into (and the compiler wrote).
    Volume(Volume),
    /// A compile cache hit, kept from eviction while this lives.
    Cached(Entry),
}

impl WorkDir {
    /// The host directory bound read-only at /box for the run boxes.
    pub(crate) fn path(&self) -> &Path {
        match self {
            WorkDir::Volume(v) => v.path(),
            WorkDir::Cached(e) => e.path(),
        }
    }
}

/// The outcome of the compile step of a job.
pub(crate) enum Build {
    /// Ready to run: the work directory and, for compiled languages, the compile stage.
    Ready(WorkDir, Option<CompileStage>),
    /// The compile failed.
    Failed(CompileStage),
}

/// What the compile cache needs to know of a job: the cache, and the identity of
/// the installed language (id, version, tools).
pub(crate) struct CacheUse<'c> {
    pub cache: &'c CompileCache,
    pub identity: String,
    /// Whether the entry may keep the job's source files.
    pub keep_sources: bool,
}

/// Writes the files and compiles them (when the language compiles), or takes the
/// artifacts of an identical earlier compile from the cache.
pub(crate) fn build(
    sandbox: &Sandbox,
    language: &Language,
    layout: &Layout,
    limits: &StageLimits,
    cache: Option<CacheUse<'_>>,
    live: Option<&Live<'_>>,
) -> Result<Build> {
    let Some(compile) = &language.compile else {
        let volume = new_volume(sandbox, limits)?;
        layout.write(volume.path())?;
        return Ok(Build::Ready(WorkDir::Volume(volume), None));
    };
    let argv = compile.expand(&layout.values(limits.compile.memory_bytes, &[]));
    let Some(CacheUse {
        cache,
        identity,
        keep_sources,
    }) = cache
    else {
        return compile_in_volume(sandbox, language, layout, limits, argv, live);
    };
    let key = cache_key(&identity, language, layout, &argv);
    let flight = cache.flight(&key);
    // Identical jobs wait here for the first to finish, then find its entry.
    let mut earlier_failure = flight.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(outcome) = &*earlier_failure {
        replay(live, "compile", outcome, limits.compile.wall_time);
        return Ok(Build::Failed(CompileStage {
            outcome: outcome.clone(),
            cached: true,
        }));
    }
    if let Some(entry) = cache.lookup(&key) {
        let stage = CompileStage {
            outcome: entry.compile().clone(),
            cached: true,
        };
        replay(live, "compile", &stage.outcome, limits.compile.wall_time);
        if keep_sources {
            return Ok(Build::Ready(WorkDir::Cached(entry), Some(stage)));
        }
        // The entry holds the artifacts only: the job's own files join them in
        // a volume of its own, as a compile would have left them.
        let volume = new_volume(sandbox, limits)?;
        layout.write(volume.path())?;
        copy_missing(entry.path(), volume.path())?;
        return Ok(Build::Ready(WorkDir::Volume(volume), Some(stage)));
    }
    let build = compile_in_volume(sandbox, language, layout, limits, argv, live)?;
    match &build {
        Build::Ready(work, Some(stage)) => {
            let sources: Vec<String> = if keep_sources {
                Vec::new()
            } else {
                layout.file_names()
            };
            if let Err(err) = cache.store(&key, work.path(), &stage.outcome, &sources) {
                tracing::warn!("compile not cached: {err}");
            }
        }
        Build::Failed(stage) => *earlier_failure = Some(stage.outcome.clone()),
        Build::Ready(_, None) => {}
    }
    Ok(build)
}

/// The compile cache key of a job.
fn cache_key(identity: &str, language: &Language, layout: &Layout, argv: &[String]) -> Key {
    let mut key = KeyBuilder::new();
    key.part(identity.as_bytes());
    key.part(b"argv");
    for arg in argv {
        key.part(arg.as_bytes());
    }
    key.part(b"env");
    for (k, v) in BASE_ENV
        .iter()
        .map(|(k, v)| (*k, *v))
        .chain(language.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        key.part(k.as_bytes()).part(v.as_bytes());
    }
    key.part(b"binds");
    for bind in &language.binds {
        key.part(bind.as_os_str().as_encoded_bytes());
    }
    key.part(b"files");
    for (name, content) in &layout.files {
        key.part(name.as_bytes()).part(content);
    }
    key.finish()
}

fn new_volume(sandbox: &Sandbox, limits: &StageLimits) -> Result<Volume> {
    sandbox
        .volume(limits.compile.box_bytes)
        .map_err(|source| Error::Sandbox {
            stage: "setup",
            source,
        })
}

/// Writes the files into a fresh volume and runs the compiler there.
fn compile_in_volume(
    sandbox: &Sandbox,
    language: &Language,
    layout: &Layout,
    limits: &StageLimits,
    argv: Vec<String>,
    live: Option<&Live<'_>>,
) -> Result<Build> {
    let volume = new_volume(sandbox, limits)?;
    layout.write(volume.path())?;
    let config = box_config(language, argv, limits.compile.clone())
        .with_bind(BindMount::writable(volume.path(), WORK_DIR));
    let outcome = stage(sandbox, "compile", &config, live, None)?;
    let stage = CompileStage {
        cached: false,
        outcome,
    };
    if stage.status != Status::Ok {
        return Ok(Build::Failed(stage));
    }
    Ok(Build::Ready(WorkDir::Volume(volume), Some(stage)))
}

/// A compiled program ready to run: the solution, a custom checker or an interactor.
pub(crate) struct Program<'a> {
    pub language: &'a Language,
    pub layout: &'a Layout,
    pub work: &'a Path,
    pub limits: &'a Limits,
}

/// What one run of a [`Program`] gets besides the program.
#[derive(Default)]
pub(crate) struct RunInput<'a> {
    /// Limits in place of the program's own (a test's).
    pub limits: Option<&'a Limits>,
    /// What the program reads, unless a live caller gives a pipe.
    pub stdin: &'a [u8],
    pub args: &'a [String],
    /// More host directories to bind (a checker's files).
    pub extra: &'a [BindMount],
    /// The CPU to pin the box to.
    pub cpu: Option<u32>,
    /// stderr into the stdout pipe, in order.
    pub stderr_to_stdout: bool,
    /// Outbound network for the program.
    pub network: bool,
    /// The caller of a live job.
    pub live: Option<&'a Live<'a>>,
    /// Files to return once the run has ended ([`Job::output_files`]): the run
    /// then gets a writable copy of the work directory.
    pub output_files: &'a [String],
    /// How many files and bytes may come back.
    pub output_caps: crate::output_files::OutputCaps,
    /// Run under Valgrind's memcheck (with its limits raised).
    pub memcheck: bool,
}

/// What one run gave: its outcome, the files asked for, memcheck's report.
pub(crate) struct Collected {
    pub outcome: Outcome,
    pub files: Option<Vec<OutputFile>>,
    pub memcheck: Option<crate::memcheck::MemcheckReport>,
}

/// One run of the program in a fresh box that sees its work directory read-only
/// at /box.
pub(crate) fn run_program(
    sandbox: &Sandbox,
    program: &Program<'_>,
    input: RunInput<'_>,
) -> Result<Outcome> {
    let mut config = program_box(program, &input);
    if let Some((size, _)) = input.live.and_then(|live| live.terminal.as_ref()) {
        config = config.with_tty(*size);
    }
    let pipe = input.live.and_then(Live::take_stdin);
    stage(sandbox, "run", &config, input.live, pipe)
}

/// One run of the program that returns the files the input names: the run
/// gets a fresh volume holding a copy of the work directory, bound writable at
/// /box, and the files are read from the host side once every process of the
/// box is gone (the sandbox kills what is left of a box with a writable bind
/// before it returns). Without names, a plain [`run_program`].
pub(crate) fn run_collecting(
    sandbox: &Sandbox,
    program: &Program<'_>,
    input: RunInput<'_>,
) -> Result<Collected> {
    if input.output_files.is_empty() && !input.memcheck {
        return Ok(Collected {
            outcome: run_program(sandbox, program, input)?,
            files: None,
            memcheck: None,
        });
    }
    let limits = input.limits.unwrap_or(program.limits);
    let volume = sandbox
        .volume(limits.box_bytes.max(1 << 20))
        .map_err(|source| Error::Sandbox {
            stage: "setup",
            source,
        })?;
    copy_missing(program.work, volume.path())?;
    let mut before = crate::output_files::listing(volume.path());
    before.insert(crate::memcheck::XML_FILE.to_string());
    let own = Program {
        work: volume.path(),
        ..*program
    };
    let config = program_box(&own, &input);
    let pipe = input.live.and_then(Live::take_stdin);
    let outcome = stage(sandbox, "run", &config, input.live, pipe)?;
    let files = (!input.output_files.is_empty()).then(|| {
        crate::output_files::collect(
            volume.path(),
            input.output_files,
            &before,
            input.output_caps,
        )
    });
    let memcheck = input.memcheck.then(|| memcheck_report(volume.path()));
    Ok(Collected {
        outcome,
        files,
        memcheck,
    })
}

/// Reads and parses what Valgrind wrote in the run's work directory; a run
/// that left no report (Valgrind did not start, the program was killed before
/// the report) gets an empty one, with the reason in the log.
fn memcheck_report(dir: &Path) -> crate::memcheck::MemcheckReport {
    use crate::memcheck::{MAX_XML_BYTES, XML_FILE, parse};
    let read = runbox_sandbox::files::read_box_file(dir, Path::new(XML_FILE), MAX_XML_BYTES)
        .map_err(|e| e.to_string())
        .and_then(|xml| parse(&String::from_utf8_lossy(&xml), WORK_DIR));
    read.unwrap_or_else(|err| {
        tracing::warn!("no memcheck report: {err}");
        crate::memcheck::MemcheckReport::default()
    })
}

/// The box of one run of the program (its stdin the input's bytes).
pub(crate) fn program_box(program: &Program<'_>, input: &RunInput<'_>) -> BoxConfig {
    let mut limits = input.limits.unwrap_or(program.limits).clone();
    let mut argv = program
        .language
        .run
        .expand(&program.layout.values(limits.memory_bytes, input.args));
    if input.memcheck {
        argv = crate::memcheck::wrap(argv, WORK_DIR);
        limits.cpu_time *= crate::memcheck::TIME_FACTOR;
        limits.wall_time *= crate::memcheck::TIME_FACTOR;
        limits.memory_bytes += crate::memcheck::EXTRA_MEMORY;
    }
    // Only a run that returns files (or a memcheck report) writes to its own
    // copy of the work directory.
    let work = if input.output_files.is_empty() && !input.memcheck {
        BindMount::read_only(program.work, WORK_DIR)
    } else {
        BindMount::writable(program.work, WORK_DIR)
    };
    let mut config = box_config(program.language, argv, limits)
        .with_bind(work)
        .with_stdin(input.stdin.to_vec());
    for bind in input.extra {
        config = config.with_bind(bind.clone());
    }
    if let Some(cpu) = input.cpu {
        config = config.with_cpus(cpu.to_string());
    }
    if input.stderr_to_stdout {
        config = config.with_stderr_to_stdout();
    }
    if input.network {
        config = config.with_network();
    }
    config
}

/// A result with nothing run yet.
pub(crate) fn empty_result(language: &Language) -> RunResult {
    RunResult {
        id: uuid::Uuid::now_v7().to_string(),
        language: language.id.clone(),
        version: None,
        status: ResultStatus::InternalError,
        compile: None,
        run: None,
        output_files: None,
        memcheck: None,
        tests: None,
        passed: None,
        failed: None,
        failed_tests: None,
        score: None,
        timing: None,
        message: None,
    }
}

/// Runs one box; for a live job, announces it, passes its output on and lets
/// the caller signal it.
fn stage(
    sandbox: &Sandbox,
    name: &'static str,
    config: &BoxConfig,
    live: Option<&Live<'_>>,
    stdin: Option<std::os::fd::OwnedFd>,
) -> Result<Outcome> {
    let failed = |source| Error::Sandbox {
        stage: name,
        source,
    };
    let Some(live) = live else {
        return sandbox.run(config).map_err(failed);
    };
    if live.signals.is_cancelled() {
        return Err(Error::Cancelled);
    }
    (live.events)(LiveEvent::Stage(name));
    let mut forward = |stream: Stream, data: &[u8], deadline: Instant| {
        (live.events)(LiveEvent::Output {
            stage: name,
            stream,
            data,
            deadline,
        })
    };
    let io = LiveIo {
        stdin,
        stdout: None,
        output: Some(&mut forward),
        signals: Some(&live.signals),
        // Attached only by a box that runs on a terminal.
        terminal: live.terminal.as_ref().map(|(_, handle)| handle),
    };
    let outcome = sandbox.run_live(config, io).map_err(failed)?;
    if live.signals.is_cancelled() {
        // Killed because its caller left: not a result of the program's.
        return Err(Error::Cancelled);
    }
    (live.events)(LiveEvent::Exit {
        stage: name,
        outcome: &outcome,
    });
    Ok(outcome)
}

/// Tells a live caller about a stage that did not run in a box (a cached
/// compile); the caller may take as long with its output as the stage's wall
/// limit would have allowed.
fn replay(live: Option<&Live<'_>>, name: &'static str, outcome: &Outcome, wall_time: Duration) {
    let Some(live) = live else { return };
    (live.events)(LiveEvent::Stage(name));
    let deadline = Instant::now() + wall_time;
    for (stream, data) in [
        (Stream::Stdout, &outcome.stdout),
        (Stream::Stderr, &outcome.stderr),
    ] {
        if !data.is_empty() {
            (live.events)(LiveEvent::Output {
                stage: name,
                stream,
                data,
                deadline,
            });
        }
    }
    (live.events)(LiveEvent::Exit {
        stage: name,
        outcome,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::SourceFile;

    /// A Java entry as the catalog writes one.
    const JAVA: &str = r#"
id = "java"
name = "Java"
extensions = ["java"]
packages = ["default-jdk-headless"]
source_file = "Main.java"
entry_name = { pattern = 'public\s+class\s+(\w+)', name = "{1}.java" }
main = { pattern = 'public\s+class\s+(\w+)', default = "{stem}" }
compile = ["javac", "{sources}"]
run = ["java", "{main}"]
version = ["javac", "-version"]
"#;

    fn java() -> Language {
        java_with("")
    }

    #[test]
    fn unnamed_source_gets_the_language_file_name_then_its_class_name() {
        let job = Job {
            files: vec![SourceFile::unnamed("public class Solver {}")],
            ..Job::default()
        };
        let layout = Layout::new(&java(), &job).unwrap();
        assert_eq!(layout.entry, "Solver.java");
        assert_eq!(layout.main, "Solver");
        assert_eq!(layout.sources, ["Solver.java"]);
    }

    #[test]
    fn renamed_entry_that_clashes_with_another_file_is_refused() {
        let job = Job {
            files: vec![
                SourceFile::named("a.java", "public class B {}"),
                SourceFile::named("B.java", "class C {}"),
            ],
            ..Job::default()
        };
        let err = Layout::new(&java(), &job).err().unwrap();
        assert!(err.to_string().contains("'B.java' is given twice"), "{err}");
    }

    #[test]
    fn only_files_of_the_language_are_sources() {
        let job = Job {
            files: vec![
                SourceFile::named("Main.java", "class Main {}"),
                SourceFile::named("data/input.txt", "1 2"),
                SourceFile::named("util/Util.java", "class Util {}"),
            ],
            ..Job::default()
        };
        let layout = Layout::new(&java(), &job).unwrap();
        assert_eq!(layout.sources, ["Main.java", "util/Util.java"]);
    }

    #[test]
    fn files_are_written_with_open_directories() {
        let dir = tempfile::tempdir().unwrap();
        let job = Job {
            files: vec![
                SourceFile::named("Main.java", "class Main {}"),
                SourceFile::named("a/b/c.txt", "x"),
            ],
            ..Job::default()
        };
        Layout::new(&java(), &job)
            .unwrap()
            .write(dir.path())
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o777);
        assert_eq!(fs::read(dir.path().join("a/b/c.txt")).unwrap(), b"x");
    }

    /// `java()` with these extra TOML lines.
    fn java_with(extra: &str) -> Language {
        Language::parse(&format!("{JAVA}\n{extra}"), "test").unwrap()
    }

    #[test]
    fn a_runtime_entry_takes_every_bind_from_its_system_tree() {
        let language = java_with(
            "runtime = \"debian-sid\"\nbinds = [\"/var/lib/ghc\", \"/etc/java-26-openjdk\"]",
        );
        let config = box_config(&language, vec!["java".into()], Limits::default());
        assert_eq!(
            config.system_paths(),
            [
                std::path::Path::new("/var/lib/ghc"),
                std::path::Path::new("/etc/java-26-openjdk")
            ]
        );
        assert!(config.binds().is_empty(), "{:?}", config.binds());
    }

    #[test]
    fn a_host_entry_binds_system_paths_from_the_system_tree_and_others_from_the_host() {
        let language = java_with("binds = [\"/var/lib/chicken\", \"/srv/data\"]");
        let config = box_config(&language, vec!["java".into()], Limits::default());
        assert_eq!(
            config.system_paths(),
            [std::path::Path::new("/var/lib/chicken")]
        );
        assert_eq!(
            config.binds(),
            [BindMount::read_only("/srv/data", "/srv/data")]
        );
    }

    #[test]
    fn heap_is_half_of_small_limits_and_most_of_large_ones() {
        assert_eq!(heap_mb(256 << 20), 128);
        assert_eq!(heap_mb(1024 << 20), 896);
    }
}
