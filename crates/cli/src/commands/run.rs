//! `runbox run`: compile and run source files, with the program's output passed through.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use runbox_engine::{Job, ResultStatus, RunResult, SourceFile, Stage};

use super::job::{LimitArgs, kib, language_of, millis, read_sources};
use super::{CacheArgs, CatalogArgs};

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
    /// (or its #! line) unless --language is given. `-` reads the code from stdin
    /// (with --language).
    #[arg(
        required_unless_present = "eval",
        conflicts_with = "eval",
        value_name = "FILE"
    )]
    files: Vec<PathBuf>,
    /// The code to run, given inline (with --language): `runbox run -l python -e 'print(1)'`.
    #[arg(short = 'e', long = "eval", value_name = "CODE", requires = "language")]
    eval: Option<String>,
    /// The language: a catalog id or alias (`runbox languages` lists them).
    #[arg(short, long, value_name = "LANG")]
    language: Option<String>,
    /// The version of the language: exact, a prefix such as 3 or 3.13, or a range
    /// such as '>=3.12' (default: the catalog's default, else the newest installed).
    #[arg(
        long = "version",
        visible_alias = "language-version",
        value_name = "VERSION"
    )]
    version: Option<String>,
    /// File to feed on stdin (`-` for runbox's own stdin). Without it the
    /// program reads runbox's stdin as it runs: on a terminal, the program runs
    /// on one too (prompts show as they are printed, Ctrl-C reaches it);
    /// piped, it reads the pipe.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    cache: CacheArgs,
    /// A file the program writes in its work directory to return: a name or a
    /// glob (`out/*.png`); repeat for more.
    #[arg(long = "output-file", value_name = "GLOB")]
    output_files: Vec<String>,
    /// Where returned files are written (under their names); without it,
    /// each is printed on stdout after the program's output.
    #[arg(long, value_name = "DIR", requires = "output_files")]
    output_dir: Option<PathBuf>,
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
    let code_from_stdin = args.files.first().is_some_and(|f| f.as_os_str() == "-");
    let (files, first) = match (&args.eval, code_from_stdin) {
        (Some(code), _) => (
            vec![SourceFile::unnamed(code.as_bytes())],
            PathBuf::from("-e"),
        ),
        (None, true) => {
            if args.language.is_none() {
                anyhow::bail!("code read from stdin needs --language");
            }
            let code = super::sandbox::read_input(Path::new("-"))?;
            (vec![SourceFile::unnamed(code)], PathBuf::from("-"))
        }
        (None, false) => (read_sources(&args.files)?, args.files[0].clone()),
    };
    let language = language_of(&catalog, args.language.as_deref(), &files, &first)?;
    // The program talks to runbox's stdin as it runs, unless stdin is taken
    // (by the code, or --stdin) or the result is wanted whole (as one JSON
    // document, or with the files it wrote).
    let input = match &args.stdin {
        Some(path) => Input::Bytes(super::sandbox::read_input(path)?),
        None if code_from_stdin => Input::Bytes(Vec::new()),
        // Files out come with a whole result, which a live run does not make.
        None if args.json || !args.output_files.is_empty() => {
            Input::Bytes(super::sandbox::read_input(Path::new("-"))?)
        }
        None if std::io::stdin().is_terminal() => Input::Terminal,
        None => Input::Pipe,
    };
    let stdin = match &input {
        Input::Bytes(bytes) => bytes.clone(),
        Input::Terminal | Input::Pipe => Vec::new(),
    };
    let job = Job {
        language,
        version: args.version.clone(),
        files,
        stdin,
        args: args.args.clone(),
        limits: args.limits.run(),
        compile_limits: args.limits.compile(),
        output_files: args.output_files.clone(),
        ..Job::default()
    };
    // Two boxes at once at most: a stage, and the version check beside it.
    let engine = super::engine(catalog, 2, Some(&args.cache))?;
    let result = match input {
        Input::Bytes(_) => engine.check_and_run(&job)?,
        Input::Terminal | Input::Pipe => {
            let checked = engine.check_live(job)?;
            let result =
                super::interactive::run(&engine, &checked, matches!(input, Input::Terminal))?;
            if !args.quiet {
                eprintln!("{}", summary(&result));
            }
            return Ok(exit_code(&result));
        }
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(exit_code(&result));
    }
    pass_through(&result)?;
    deliver_files(&result, args.output_dir.as_deref())?;
    if !args.quiet {
        eprintln!("{}", summary(&result));
    }
    Ok(exit_code(&result))
}

/// Where the program's stdin comes from.
enum Input {
    /// These bytes, all known before it starts.
    Bytes(Vec<u8>),
    /// runbox's own stdin, a terminal: the program runs on a terminal too.
    Terminal,
    /// runbox's own stdin, read as the program runs.
    Pipe,
}

/// Writes what the program (or the failed compiler) printed to our stdout/stderr.
fn pass_through(result: &RunResult) -> anyhow::Result<()> {
    let mut stderr = std::io::stderr().lock();
    match (&result.run, &result.compile) {
        (Some(run), _) => {
            super::write_stdout(&run.stdout)?;
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

/// Writes the returned files into `dir`, or prints each on stdout after a
/// line on stderr that names it; says on stderr why a file was not returned.
fn deliver_files(result: &RunResult, dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    for file in result.output_files.iter().flatten() {
        let Some(content) = &file.content else {
            let why = file.refused.as_deref().unwrap_or("not returned");
            eprintln!("runbox: output file {}: {why}", file.name);
            continue;
        };
        match dir {
            Some(dir) => {
                // The engine lists only plain relative paths found in the work dir.
                let path = dir.join(&file.name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, content)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                eprintln!(
                    "runbox: output file {} ({} bytes) -> {}",
                    file.name,
                    file.size,
                    path.display()
                );
            }
            None => {
                eprintln!("runbox: output file {} ({} bytes):", file.name, file.size);
                super::write_stdout(content)?;
            }
        }
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
    if result.compile.as_ref().is_some_and(|c| c.cached) {
        line.push_str(" · compile cached");
    }
    line
}

/// The exit code for a result.
fn exit_code(result: &RunResult) -> ExitCode {
    let code = match result.status {
        ResultStatus::Accepted => 0,
        ResultStatus::WrongAnswer | ResultStatus::PresentationError | ResultStatus::Partial => 1,
        ResultStatus::Ok | ResultStatus::RuntimeError => result
            .run
            .as_ref()
            .map_or(1, Stage::shell_exit_code)
            .clamp(0, 255) as u8,
        ResultStatus::CompileError => EXIT_COMPILE_ERROR,
        ResultStatus::OutputLimitExceeded => EXIT_OUTPUT_LIMIT,
        ResultStatus::MemoryLimitExceeded => EXIT_MEMORY_LIMIT,
        ResultStatus::TimeLimitExceeded => EXIT_TIME_LIMIT,
        ResultStatus::InternalError | ResultStatus::CheckerError => super::EXIT_RUNBOX_ERROR,
    };
    ExitCode::from(code)
}
