//! `runbox run`: compile and run source files, with the program's output passed through.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use runbox_engine::units::{parse_duration, parse_size};
use runbox_engine::{Job, LimitOverrides, ResultStatus, RunResult, SourceFile, Stage};

use super::CatalogArgs;

/// Exit code of `runbox run` when the compile failed.
pub const EXIT_COMPILE_ERROR: u8 = 120;
/// Exit code when the output (or a file) went past its limit.
pub const EXIT_OUTPUT_LIMIT: u8 = 121;
/// Exit code when the memory limit was hit.
pub const EXIT_MEMORY_LIMIT: u8 = 122;
/// Exit code when the CPU or wall time limit was hit (as timeout(1) does).
pub const EXIT_TIME_LIMIT: u8 = 124;

/// Flags of `runbox run`.
#[derive(Args)]
pub struct RunArgs {
    /// Source files; the first is the entry. The language comes from its extension
    /// (or its #! line) unless --language is given.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The language: a catalog id or alias (`runbox languages` lists them).
    #[arg(short, long, value_name = "LANG")]
    language: Option<String>,
    /// Require this version of the language (a prefix such as 3 or 3.11).
    #[arg(long = "language-version", value_name = "VERSION")]
    version: Option<String>,
    /// File to feed on stdin (`-` for runbox's own stdin); default: empty.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// CPU time of the program (the whole box).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    time_limit: Option<Duration>,
    /// Wall-clock time of the program.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wall_time_limit: Option<Duration>,
    /// Memory of the program (the whole box).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory_limit: Option<u64>,
    /// Processes and threads of the program.
    #[arg(long, value_name = "N")]
    processes: Option<u64>,
    /// Bytes kept of stdout and of stderr, each.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    output_limit: Option<u64>,
    /// CPU time of the compiler.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    compile_time_limit: Option<Duration>,
    /// Memory of the compiler.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    compile_memory_limit: Option<u64>,
    /// Print the result as JSON instead of passing output through.
    #[arg(long)]
    json: bool,
    /// No summary line on stderr.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Arguments for the program: everything after --args.
    #[arg(long, num_args = 0.., allow_hyphen_values = true, value_name = "ARG")]
    args: Vec<String>,
}

/// Runs the job. The exit code is the program's (128 + signal when killed by
/// one), or one of the EXIT_* codes for a compile error or a limit.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.catalog()?;
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let content = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: no such file", path.display()),
            _ => anyhow::anyhow!("cannot read {}: {e}", path.display()),
        })?;
        files.push(SourceFile::named(job_file_name(path)?, content));
    }
    let language = match &args.language {
        Some(name) => catalog.get(name)?.id.clone(),
        None => {
            let first = &files[0];
            let name = first.name.as_deref().unwrap_or_default();
            match catalog.detect(name, &first.content) {
                Some(language) => language.id.clone(),
                None => bail!(
                    "cannot tell the language of {}: give --language (`runbox languages` lists them)",
                    &args.files[0].display()
                ),
            }
        }
    };
    let stdin = match &args.stdin {
        Some(path) => super::sandbox::read_input(path)?,
        None => Vec::new(),
    };
    let job = Job {
        language,
        version: args.version.clone(),
        files,
        stdin,
        args: args.args.clone(),
        limits: LimitOverrides {
            cpu_time: args.time_limit,
            wall_time: args.wall_time_limit,
            memory_bytes: args.memory_limit,
            processes: args.processes,
            output_bytes: args.output_limit,
            ..LimitOverrides::default()
        },
        compile_limits: LimitOverrides {
            cpu_time: args.compile_time_limit,
            memory_bytes: args.compile_memory_limit,
            ..LimitOverrides::default()
        },
    };
    // Two boxes at once at most: a stage, and the version check beside it.
    let engine = super::engine(catalog, 2)?;
    let result = engine.run(&job)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(exit_code(&result));
    }
    pass_through(&result)?;
    if !args.quiet {
        eprintln!("{}", summary(&result));
    }
    Ok(exit_code(&result))
}

/// The name a file gets in the work directory: its path as given when that is a
/// plain relative path (so `src/util.go` keeps its directory), else its file name.
fn job_file_name(path: &Path) -> anyhow::Result<String> {
    let plain = path.is_relative() && path.components().all(|c| matches!(c, Component::Normal(_)));
    let name = if plain {
        path.to_str()
    } else {
        path.file_name().and_then(|n| n.to_str())
    };
    name.map(str::to_string)
        .with_context(|| format!("{}: the file name must be UTF-8", path.display()))
}

/// Writes what the program (or the failed compiler) printed to our stdout/stderr.
fn pass_through(result: &RunResult) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    match (&result.run, &result.compile) {
        (Some(run), _) => {
            stdout.write_all(&run.stdout)?;
            stdout.flush()?;
            stderr.write_all(&run.stderr)?;
        }
        (None, Some(compile)) => {
            // A compiler's messages are for the user, wherever it printed them.
            stderr.write_all(&compile.stdout)?;
            stderr.write_all(&compile.stderr)?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// One line: language, status, exit, CPU time, wall time, memory.
fn summary(result: &RunResult) -> String {
    let language = match &result.version {
        Some(version) => format!("{} {version}", result.language),
        None => result.language.clone(),
    };
    let Some(stage) = result.last_stage() else {
        return format!("runbox: {language} · {}", result.status);
    };
    let what = match result.status {
        ResultStatus::CompileError if stage.status != runbox_sandbox::Status::RuntimeError => {
            format!("compile error ({})", stage.status)
        }
        ResultStatus::CompileError => "compile error".to_string(),
        status => status.to_string(),
    };
    let ending = match (&stage.exit_code, &stage.signal) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by {signal}"),
        (None, None) => "no exit status".to_string(),
    };
    let mut line = format!(
        "runbox: {language} · {what} · {ending} · cpu {} · wall {} · memory {}",
        millis(stage.cpu_time),
        millis(stage.wall_time),
        kib(stage.memory_kb)
    );
    if stage.stdout_truncated || stage.stderr_truncated {
        line.push_str(" · output truncated");
    }
    line
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn kib(kb: u64) -> String {
    if kb >= 10 * 1024 {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    } else {
        format!("{kb} KiB")
    }
}

/// The exit code for a result.
fn exit_code(result: &RunResult) -> ExitCode {
    let code = match result.status {
        ResultStatus::Ok | ResultStatus::RuntimeError => result
            .run
            .as_ref()
            .map_or(1, Stage::shell_exit_code)
            .clamp(0, 255) as u8,
        ResultStatus::CompileError => EXIT_COMPILE_ERROR,
        ResultStatus::OutputLimitExceeded => EXIT_OUTPUT_LIMIT,
        ResultStatus::MemoryLimitExceeded => EXIT_MEMORY_LIMIT,
        ResultStatus::TimeLimitExceeded => EXIT_TIME_LIMIT,
        ResultStatus::InternalError => super::EXIT_RUNBOX_ERROR,
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_keep_their_directories_and_others_their_file_name() {
        assert_eq!(
            job_file_name(Path::new("src/util.go")).unwrap(),
            "src/util.go"
        );
        assert_eq!(job_file_name(Path::new("/tmp/x/main.c")).unwrap(), "main.c");
        assert_eq!(job_file_name(Path::new("../main.c")).unwrap(), "main.c");
        assert_eq!(job_file_name(Path::new("./main.c")).unwrap(), "main.c");
    }
}
