//! One job, start to end: lay out its files in a work volume, compile in one box,
//! run in another.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use runbox_sandbox::{BindMount, BoxConfig, Limits, Outcome, Sandbox, Status, Volume};

use crate::catalog::{Language, Values};
use crate::error::{Error, Result};
use crate::job::{Job, check_file_name};
use crate::result::{ResultStatus, RunResult};

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
pub(crate) struct Layout<'a> {
    /// `(path in the work dir, contents)`, the entry first.
    files: Vec<(String, &'a [u8])>,
    entry: String,
    stem: String,
    sources: Vec<String>,
    main: String,
}

impl<'a> Layout<'a> {
    /// Names the files: the unnamed source gets the language's file name, and the
    /// entry file is renamed when the language says so (Java's public class).
    pub(crate) fn new(language: &Language, job: &'a Job) -> Result<Layout<'a>> {
        let mut files: Vec<(String, &'a [u8])> = Vec::with_capacity(job.files.len());
        for (i, file) in job.files.iter().enumerate() {
            let given = file
                .name
                .clone()
                .unwrap_or_else(|| language.source_file.clone());
            let name = if i == 0 {
                let text = String::from_utf8_lossy(&file.content);
                language.entry_file_name(&given, &text)
            } else {
                given
            };
            check_file_name(&name).map_err(|m| Error::invalid(format!("files[{i}].name"), m))?;
            if files.iter().any(|(n, _)| *n == name) {
                return Err(Error::invalid(
                    format!("files[{i}].name"),
                    format!(
                        "the file name '{name}' is given twice (the entry file is named '{}' after its contents)",
                        files[0].0
                    ),
                ));
            }
            files.push((name, &file.content));
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
            .filter(|name| {
                Path::new(name)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| {
                        language
                            .extensions
                            .iter()
                            .any(|x| x.eq_ignore_ascii_case(e))
                    })
            })
            .cloned()
            .collect::<Vec<_>>();
        // A source with an unusual extension is still compiled when it is the entry.
        let sources = if sources.contains(&entry) {
            sources
        } else {
            std::iter::once(entry.clone()).chain(sources).collect()
        };
        let main = language.main_name(&stem, &String::from_utf8_lossy(files[0].1));
        Ok(Layout {
            files,
            entry,
            stem,
            sources,
            main,
        })
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
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
                .map_err(|source| Error::WorkDir {
                    path: path.clone(),
                    source,
                })?;
            file.write_all(content)
                .map_err(|source| Error::WorkDir { path, source })?;
        }
        Ok(())
    }
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

impl Layout<'_> {
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
    for path in &language.binds {
        config = config.with_bind(BindMount::read_only(path, path));
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
    ) -> Result<StageLimits> {
        let compile = job
            .compile_limits
            .apply(&language.compile_limits.apply(compile_defaults));
        let run = job.limits.apply(&language.run_limits.apply(run_defaults));
        compile
            .validate()
            .map_err(|e| Error::invalid("compile_limits", e.to_string()))?;
        run.validate()
            .map_err(|e| Error::invalid("limits", e.to_string()))?;
        Ok(StageLimits { compile, run })
    }
}

/// Runs the stages of one job in `sandbox`; the version is filled in by the caller.
pub(crate) fn execute(
    sandbox: &Sandbox,
    language: &Language,
    job: &Job,
    layout: &Layout<'_>,
    limits: &StageLimits,
) -> Result<RunResult> {
    let volume: Volume =
        sandbox
            .volume(limits.compile.box_bytes)
            .map_err(|source| Error::Sandbox {
                stage: "setup",
                source,
            })?;
    layout.write(volume.path())?;
    let mut result = RunResult {
        id: uuid::Uuid::now_v7().to_string(),
        language: language.id.clone(),
        version: None,
        status: ResultStatus::InternalError,
        compile: None,
        run: None,
    };
    if let Some(compile) = &language.compile {
        let argv = compile.expand(&layout.values(limits.compile.memory_bytes, &[]));
        let config = box_config(language, argv, limits.compile.clone())
            .with_bind(BindMount::writable(volume.path(), WORK_DIR));
        let outcome = stage(sandbox, "compile", &config)?;
        let failed = outcome.status != Status::Ok;
        result.compile = Some(outcome);
        if failed {
            result.status = ResultStatus::CompileError;
            return Ok(result);
        }
    }
    let argv = language
        .run
        .expand(&layout.values(limits.run.memory_bytes, &job.args));
    let config = box_config(language, argv, limits.run.clone())
        .with_bind(BindMount::read_only(volume.path(), WORK_DIR))
        .with_stdin(job.stdin.clone());
    let outcome = stage(sandbox, "run", &config)?;
    result.status = outcome.status.into();
    result.run = Some(outcome);
    Ok(result)
}

/// Runs one box.
fn stage(sandbox: &Sandbox, name: &'static str, config: &BoxConfig) -> Result<Outcome> {
    sandbox.run(config).map_err(|source| Error::Sandbox {
        stage: name,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::SourceFile;

    fn java() -> Language {
        Language::parse(
            r#"
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
"#,
            "test",
        )
        .unwrap()
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

    #[test]
    fn heap_is_half_of_small_limits_and_most_of_large_ones() {
        assert_eq!(heap_mb(256 << 20), 128);
        assert_eq!(heap_mb(1024 << 20), 896);
    }
}
