//! `runbox sandbox`: one command in one box.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use runbox_sandbox::{BindMount, BoxConfig, Limits, Sandbox, SandboxOptions};

use runbox_engine::units::{parse_duration, parse_size};

/// Flags of `runbox sandbox`.
#[derive(Args)]
pub struct SandboxArgs {
    /// Make a host directory visible: HOST:BOX[:rw] (read-only unless :rw). A
    /// directory bound at /box replaces the box's tmpfs work directory.
    #[arg(long = "dir", value_name = "HOST:BOX[:rw]")]
    dirs: Vec<String>,
    /// CPU time of the whole box (all threads and processes).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    time_limit: Duration,
    /// Wall-clock time.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    wall_time_limit: Duration,
    /// Memory of the whole box, swap included.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    memory_limit: u64,
    /// Processes and threads alive at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    processes: u64,
    /// Bytes kept of stdout and of stderr, each.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = parse_size)]
    output_limit: u64,
    /// Largest file the program may write.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    file_size_limit: u64,
    /// Open files per process.
    #[arg(long, value_name = "N", default_value_t = 256)]
    open_files: u64,
    /// Stack size (default: the memory limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    stack_limit: Option<u64>,
    /// Size of /tmp.
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = parse_size)]
    tmp_size: u64,
    /// Size of the /box tmpfs.
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = parse_size)]
    box_size: u64,
    /// Pin the box to these CPUs (e.g. 1 or 0-1).
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Environment variable for the program (repeatable); replaces the default of the same name.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Working directory inside the box.
    #[arg(long, value_name = "PATH", default_value = "/box")]
    cwd: PathBuf,
    /// Give the box outbound network (slirp4netns), with private, loopback and
    /// link-local destinations refused.
    #[arg(long)]
    network: bool,
    /// File to feed on stdin (`-` for runbox's own stdin); default: empty.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// Print the stage result as JSON instead of passing output through.
    #[arg(long)]
    json: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Runs the command; the exit code is the program's (128 + signal when killed).
pub fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        cpu_time: args.time_limit,
        wall_time: args.wall_time_limit,
        memory_bytes: args.memory_limit,
        processes: args.processes,
        output_bytes: args.output_limit,
        file_size_bytes: args.file_size_limit,
        open_files: args.open_files,
        stack_bytes: args.stack_limit,
        tmp_bytes: args.tmp_size,
        box_bytes: args.box_size,
        ..Limits::default()
    };
    let mut config = BoxConfig::new(args.command)
        .with_limits(limits)
        .with_cwd(args.cwd);
    for dir in &args.dirs {
        config = config.with_bind(BindMount::parse(dir)?);
    }
    for pair in &args.env {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--env {pair}: expected NAME=VALUE"))?;
        config = config.with_env(key, value);
    }
    if let Some(cpus) = args.cpus {
        config = config.with_cpus(cpus);
    }
    if let Some(path) = &args.stdin {
        config = config.with_stdin(read_input(path)?);
    }
    if args.network {
        config = config.with_network();
    }
    config.validate()?;

    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 1,
        network: args.network.then(runbox_sandbox::NetworkOptions::default),
        one_shot: true,
        ..SandboxOptions::default()
    })?;
    let outcome = sandbox.run(&config)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::write_stdout(&outcome.stdout)?;
    std::io::stderr().write_all(&outcome.stderr)?;
    if outcome.status != runbox_sandbox::Status::Ok
        && outcome.status != runbox_sandbox::Status::RuntimeError
    {
        eprintln!("runbox: {}", outcome.status);
    }
    let code = outcome.shell_exit_code().clamp(0, 255) as u8;
    Ok(ExitCode::from(code))
}

/// Reads a whole input file, `-` meaning stdin.
pub fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("cannot read stdin")?;
        Ok(data)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}
