//! The `runbox` command: a thin layer that parses flags, calls the libraries and prints.

mod commands;
mod scope;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// runbox: compile and run untrusted code, isolated and measured.
#[derive(Parser)]
#[command(name = "runbox", version = version_line(), about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile and run source files in boxes; output passes through.
    Run(Box<commands::run::RunArgs>),
    /// Compile a solution once and run it on a directory of tests, with verdicts.
    Judge(Box<commands::judge::JudgeArgs>),
    /// List the catalog's languages with their installed versions.
    Languages(commands::languages::LanguagesArgs),
    /// List, add, remove, collect and verify runtimes (the trees boxes run on).
    Runtimes(Box<commands::runtimes::RuntimesArgs>),
    /// Run one command in a box (the low-level tool, like `isolate --run`).
    Sandbox(Box<commands::sandbox::SandboxArgs>),
    /// Check what this host supports and how each limit is enforced.
    Doctor(commands::doctor::DoctorArgs),
    /// Serve the HTTP API (embedded SQLite and local workers by default).
    Serve(Box<commands::serve::ServeArgs>),
    /// Run jobs from a shared queue (a worker node of a fleet around PostgreSQL).
    Worker(Box<commands::serve::WorkerArgs>),
    /// Create, list and revoke API keys.
    Keys(Box<commands::keys::KeysArgs>),
}

fn main() -> ExitCode {
    // A box launcher the service started from this binary: nothing else runs.
    if std::env::args_os().nth(1).as_deref() == Some(runbox_sandbox::LAUNCHER_ARGUMENT.as_ref()) {
        runbox_sandbox::run_box_launcher();
    }
    let cli = Cli::parse();
    if cli.command.makes_boxes() {
        scope::leave_a_shared_cgroup();
    }
    let result = match cli.command {
        Command::Serve(args) => args.config().and_then(|config| {
            init_logging(
                "info",
                config.log_format == runbox_server::config::LogFormat::Json,
            );
            commands::serve::run(*args, config)
        }),
        Command::Worker(args) => args.config().and_then(|(config, concurrency)| {
            init_logging(
                "info",
                config.log_format == runbox_server::config::LogFormat::Json,
            );
            commands::serve::work(config, concurrency)
        }),
        Command::Run(args) => quiet(commands::run::run, *args),
        Command::Judge(args) => quiet(commands::judge::run, *args),
        Command::Languages(args) => quiet(commands::languages::run, args),
        Command::Runtimes(args) => quiet(commands::runtimes::run, *args),
        Command::Sandbox(args) => quiet(commands::sandbox::run, *args),
        Command::Doctor(args) => quiet(commands::doctor::run, args),
        Command::Keys(args) => quiet(commands::keys::run, *args),
    };
    match result {
        Ok(code) => code,
        // Whoever read our output stopped (`runbox ... | head`): end quietly, with
        // the status a shell shows for a process SIGPIPE ended.
        Err(error) if stdout_closed(&error) => ExitCode::from(commands::EXIT_STDOUT_CLOSED),
        Err(error) => {
            eprintln!("runbox: {}", message(&error));
            ExitCode::from(commands::EXIT_RUNBOX_ERROR)
        }
    }
}

/// What `runbox --version` prints after the name: the release and the git commit
/// it was built from.
fn version_line() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        format!(
            "{} (commit {})",
            runbox_server::VERSION,
            runbox_server::GIT_COMMIT
        )
    })
}

impl Command {
    /// Whether the command runs boxes, and so needs a cgroup of its own.
    fn makes_boxes(&self) -> bool {
        !matches!(
            self,
            Command::Languages(_) | Command::Runtimes(_) | Command::Keys(_)
        )
    }
}

/// Runs a command that logs only errors (its output is what the user reads).
fn quiet<A>(command: fn(A) -> anyhow::Result<ExitCode>, args: A) -> anyhow::Result<ExitCode> {
    init_logging("error", false);
    command(args)
}

/// Logs to stderr at `default_level` unless `RUST_LOG` says otherwise.
fn init_logging(default_level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_allowed(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Whether log lines may be coloured: only on a terminal (a file or a journal
/// would keep the escape codes), and not when `NO_COLOR` is set to anything but
/// the empty string (<https://no-color.org/>).
fn colour_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Whether `error` is (or was caused by) a write to a closed standard output.
fn stdout_closed(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.is::<commands::StdoutClosed>())
}

/// The error and its causes on one line, skipping a cause that the message before
/// it already quotes (library errors include their source in their text).
fn message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::colour_allowed;

    #[test]
    fn only_a_closed_stdout_ends_quietly() {
        let broken = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let closed = crate::commands::stdout_error(broken()).context("printing the result");
        assert!(super::stdout_closed(&closed));
        // A broken pipe elsewhere (a registry's connection, a child's stdin) is
        // an error the user must see.
        let elsewhere = anyhow::Error::new(broken()).context("cannot pull the image");
        assert!(!super::stdout_closed(&elsewhere));
        let other =
            crate::commands::stdout_error(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(!super::stdout_closed(&other));
    }

    #[test]
    fn colour_is_for_terminals_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(OsStr::new(""))));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
        assert!(!colour_allowed(false, Some(OsStr::new(""))));
    }
}
