//! Records the git commit runbox is built from as `RUNBOX_GIT_COMMIT`, for
//! `runbox --version` and the `runbox_build_info` metric.
//!
//! The commit comes from `RUNBOX_GIT_COMMIT` when the builder sets it (a
//! container build without `.git`), else from `git rev-parse`, else it is
//! `unknown`. The script reruns only when HEAD or the branch it names moves, so
//! a build stays fresh until the next commit or checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUNBOX_GIT_COMMIT");
    let commit = std::env::var("RUNBOX_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(commit_of_checkout)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=RUNBOX_GIT_COMMIT={}", commit.trim());
}

/// The short commit of the checkout this crate is in, watching the files that
/// change when it moves.
fn commit_of_checkout() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let commit = git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"])?;
    // HEAD changes on a checkout; the branch's ref (loose, or packed) on a commit.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&manifest_dir, &["rev-parse", "--git-path", &name]) {
            let path = manifest_dir.join(path);
            // A path that does not exist would make cargo rerun the script on
            // every build.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(commit)
}

/// `git ARGS` run in `dir`: its trimmed output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
