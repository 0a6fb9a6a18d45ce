//! `runbox doctor`: what this host supports and how each limit is enforced.

use std::process::ExitCode;

use clap::Args;
use runbox_sandbox::SandboxOptions;
use runbox_sandbox::doctor::diagnose;

/// Flags of `runbox doctor`.
#[derive(Args)]
pub struct DoctorArgs {
    /// Print the diagnosis as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the checks; exits non-zero when boxes cannot be safe here.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let diagnosis = diagnose(&SandboxOptions::default());
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&diagnosis)?);
    } else {
        let width = diagnosis
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        match crate::scope::outcome() {
            Some(crate::scope::Scope::Moved { unit, shared_with }) => outln!(
                "runbox's cgroup was shared (pids {}): runbox asked systemd for {unit}, a \
                 delegated scope of its own, as it does from any shell\n",
                shared_with
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(crate::scope::Scope::Failed { reason }) => outln!("{reason}\n"),
            None => {}
        }
        outln!("{:width$}  {:4}  DETAIL", "CHECK", "OK");
        for check in &diagnosis.checks {
            let mark = match (check.ok, check.required) {
                (true, _) => "yes",
                (false, true) => "NO",
                (false, false) => "no",
            };
            outln!("{:width$}  {mark:4}  {}", check.name, check.detail);
            if let Some(fix) = &check.fix {
                outln!("{:width$}        fix: {fix}", "");
            }
        }
        outln!();
        let width = diagnosis
            .enforcement
            .iter()
            .map(|e| e.limit.len())
            .max()
            .unwrap_or(0);
        outln!("{:width$}  ENFORCED BY", "LIMIT");
        for e in &diagnosis.enforcement {
            outln!("{:width$}  {}", e.limit, e.mechanism);
        }
        outln!();
        if diagnosis.is_safe() {
            outln!("boxes are safe on this host");
        } else {
            outln!("boxes are NOT safe on this host: fix the checks marked NO");
        }
    }
    Ok(if diagnosis.is_safe() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
