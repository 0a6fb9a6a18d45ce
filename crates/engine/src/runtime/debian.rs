//! Debian runtimes: a suite's essential packages plus the ones a catalog needs,
//! built with mmdebstrap.
//!
//! The build uses mmdebstrap's `essential` variant (no apt, no init: what a box
//! runs is only the language's programs) with `--include` for the packages,
//! `--mode=root` (runbox runs as root, and boxes need a root-owned tree), and
//! dpkg path excludes that never unpack documentation, manual pages and
//! translations (copyright files stay). After the build, what a box never needs
//! is removed: apt's lists and caches, logs, /dev, /tmp, /run and the locales
//! other than C.UTF-8.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Progress, Result, RuntimeError};

/// Paths below /usr/share dpkg never unpacks into a runtime.
const EXCLUDED: &[&str] = &["man", "doc", "info", "locale", "lintian", "linda", "bug"];

/// Directories emptied after the build (their contents are build-time state).
const EMPTIED: &[&str] = &[
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "var/cache/ldconfig",
    "var/log",
    "dev",
    "tmp",
    "run",
];

/// The locales kept below /usr/lib/locale: a box's LANG is C.UTF-8.
const KEPT_LOCALES: &[&str] = &["C.utf8", "C.UTF-8"];

/// How much of mmdebstrap's output an error quotes.
const TAIL_LINES: usize = 12;

/// What a build measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildReport {
    /// Bytes of the tree's regular files after stripping.
    pub size_bytes: u64,
    /// How long the build took.
    pub duration: Duration,
}

/// Builds the Debian `suite` (`bookworm`, `trixie`, `sid`...) with `packages`
/// into `dest` (absent or empty), reporting each step to `progress`.
pub fn build(
    suite: &str,
    packages: &[String],
    dest: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<BuildReport> {
    let what = format!("debian:{suite}");
    check_names(&what, suite, packages)?;
    let started = Instant::now();
    let mut command = Command::new("mmdebstrap");
    command.args(["--variant=essential", "--mode=root", "--format=directory"]);
    command.arg("--aptopt=Acquire::Languages \"none\"");
    // Signatures are still checked; only the Release file's expiry is not: a
    // mirror that lags (or a frozen archive, as sid's often is on mirrors)
    // would otherwise refuse to build at all.
    command.arg("--aptopt=Acquire::Check-Valid-Until \"false\"");
    if !packages.is_empty() {
        command.arg(format!("--include={}", packages.join(",")));
    }
    for dir in EXCLUDED {
        command.arg(format!("--dpkgopt=path-exclude=/usr/share/{dir}/*"));
    }
    command.arg("--dpkgopt=path-include=/usr/share/doc/*/copyright");
    // Without man pages their directories are not there, and update-alternatives
    // (OpenJDK's postinst links java.1.gz) fails on a missing man1: keep it.
    command.arg("--setup-hook=mkdir -p \"$1/usr/share/man/man1\"");
    // No mirror given: mmdebstrap's default, deb.debian.org with the suite's
    // security and updates archives where it has them.
    command.arg(suite).arg(dest);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RuntimeError::MissingTool {
            tool: "mmdebstrap",
            install: "apt-get install mmdebstrap (or run scripts/install-deps.sh)",
        },
        _ => RuntimeError::io("cannot start mmdebstrap for", dest, e),
    })?;
    let mut lines = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if let Some(step) = line.strip_prefix("I: ") {
                progress(Progress::Step(
                    step.trim_end_matches("...").trim().to_string(),
                ));
            }
            lines.push(line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| RuntimeError::io("cannot wait for mmdebstrap building", dest, e))?;
    if !status.success() {
        return Err(failure(&what, dest, &status.to_string(), &lines));
    }
    progress(Progress::Step("removing what boxes never need".into()));
    strip(dest)?;
    Ok(BuildReport {
        size_bytes: tree_size(dest)?,
        duration: started.elapsed(),
    })
}

/// Suite and package names as Debian defines them, so that none can pass for
/// one of mmdebstrap's options.
fn check_names(what: &str, suite: &str, packages: &[String]) -> Result<()> {
    let invalid = |reason: String| RuntimeError::InvalidSource {
        what: what.to_string(),
        reason,
    };
    let suite_ok = suite.starts_with(|c: char| c.is_ascii_lowercase())
        && suite
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !suite_ok {
        return Err(invalid(format!("'{suite}' is not a Debian suite name")));
    }
    for package in packages {
        // Debian policy 5.6.1: lower case letters, digits, + - . ; at least two
        // characters, starting with a letter or digit.
        let ok = package.len() >= 2
            && package.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && package
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        if !ok {
            return Err(invalid(format!("'{package}' is not a Debian package name")));
        }
    }
    Ok(())
}

/// The typed error for a failed mmdebstrap run, from its output.
fn failure(what: &str, dest: &Path, status: &str, lines: &[String]) -> RuntimeError {
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    if has("No space left on device") {
        return RuntimeError::DiskFull {
            path: dest.to_path_buf(),
        };
    }
    if let Some(line) = lines
        .iter()
        .find(|l| l.contains("Unable to locate package"))
    {
        return RuntimeError::InvalidSource {
            what: what.to_string(),
            reason: line.trim().to_string(),
        };
    }
    let network = [
        "Temporary failure resolving",
        "Could not resolve",
        "Failed to fetch",
        "Unable to connect",
        "Connection failed",
        "Network is unreachable",
    ];
    if let Some(line) = lines.iter().find(|l| network.iter().any(|n| l.contains(n))) {
        return RuntimeError::Network {
            what: what.to_string(),
            detail: line.trim().to_string(),
        };
    }
    RuntimeError::Build {
        what: what.to_string(),
        status: status.to_string(),
        detail: tail,
    }
}

/// Removes what a box never needs from a built tree.
fn strip(root: &Path) -> Result<()> {
    for dir in EMPTIED {
        empty_dir(&root.join(dir), &[])?;
    }
    empty_dir(&root.join("usr/lib/locale"), KEPT_LOCALES)?;
    Ok(())
}

/// Removes the contents of `dir` but the names in `keep`, never crossing into
/// another file system.
fn empty_dir(dir: &Path, keep: &[&str]) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if keep.iter().any(|k| entry.file_name() == *k) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => remove_dir_same_fs(&path),
            _ => std::fs::remove_file(&path),
        };
        removed.map_err(|e| RuntimeError::io("cannot remove", &path, e))?;
    }
    Ok(())
}

fn remove_dir_same_fs(dir: &Path) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(dir)
        .same_file_system(true)
        .contents_first(true)
    {
        let entry = entry.map_err(std::io::Error::from)?;
        if entry.file_type().is_dir() {
            std::fs::remove_dir(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Bytes of the regular files of the tree at `root`.
fn tree_size(root: &Path) -> Result<u64> {
    let mut bytes = 0;
    for entry in walkdir::WalkDir::new(root).same_file_system(true) {
        let entry = entry.map_err(|e| {
            let path = e.path().map(Path::to_path_buf).unwrap_or_default();
            RuntimeError::io("cannot walk", path, std::io::Error::from(e))
        })?;
        if entry.file_type().is_file() {
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_that_could_be_options_are_refused() {
        for bad in ["--hook-dir=/x", "Python3", "a", "x,y", "py thon"] {
            let err = check_names("debian:trixie", "trixie", &[bad.to_string()]).unwrap_err();
            assert!(matches!(err, RuntimeError::InvalidSource { .. }), "{bad}");
        }
        check_names(
            "debian:trixie",
            "trixie",
            &["python3".into(), "g++-14".into(), "libstdc++6".into()],
        )
        .unwrap();
    }

    #[test]
    fn a_suite_name_that_could_be_an_option_is_refused() {
        assert!(check_names("debian:-x", "--variant=extract", &[]).is_err());
    }

    #[test]
    fn a_resolver_failure_is_a_network_error() {
        let lines = ["W: Failed to fetch http://deb.debian.org/debian/dists/trixie/InRelease  Temporary failure resolving 'deb.debian.org'".to_string()];
        let err = failure("debian:trixie", Path::new("/x"), "exit status: 1", &lines);
        assert!(matches!(err, RuntimeError::Network { .. }), "{err:?}");
    }

    #[test]
    fn an_unknown_package_names_the_package() {
        let lines = ["E: Unable to locate package pyhton3".to_string()];
        let err = failure("debian:trixie", Path::new("/x"), "exit status: 1", &lines);
        assert!(err.to_string().contains("pyhton3"), "{err}");
    }
}
