//! The `runbox` command: a thin layer that parses flags, calls the libraries and prints.

mod commands;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// runbox: compile and run untrusted code, isolated and measured.
#[derive(Parser)]
#[command(name = "runbox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one command in a box (the low-level tool, like `isolate --run`).
    Sandbox(Box<commands::sandbox::SandboxArgs>),
    /// Check what this host supports and how each limit is enforced.
    Doctor(commands::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sandbox(args) => commands::sandbox::run(*args),
        Command::Doctor(args) => commands::doctor::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("runbox: {error:#}");
            ExitCode::from(commands::EXIT_RUNBOX_ERROR)
        }
    }
}
