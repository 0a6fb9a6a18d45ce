//! The static hello world the sandbox benchmarks run: no loader, no libc
//! start-up beyond the minimum, so what is measured is the box.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

const HELLO_C: &str = "#include <unistd.h>\nint main(void){write(1,\"hello\\n\",6);return 0;}\n";

/// Compiles the static hello world into `dir` and returns its path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let source = dir.join("hello.c");
    let binary = dir.join("hello");
    std::fs::write(&source, HELLO_C)?;
    let status = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .context("gcc")?;
    ensure!(
        status.success(),
        "gcc -static failed (install gcc and libc6-dev)"
    );
    Ok(binary)
}
