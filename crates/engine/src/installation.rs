//! Whether a language is installed on this host, and which version.
//!
//! The check has two steps: the programs its commands start and the paths it binds
//! must exist where the box looks for them (cheap, on the host); then its version
//! command runs in a box, which proves that the box can start it at all.

use std::path::{Path, PathBuf};

use runbox_sandbox::{BoxConfig, Sandbox, Status};
use serde::Serialize;

use crate::catalog::{Language, Values};
use crate::pipeline::box_config;

/// What this host has of a language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Installation {
    /// It runs; `version` is what its version command printed, when it matched.
    Installed {
        /// The version, e.g. `3.11.2`.
        version: Option<String>,
    },
    /// A program or path it needs is missing: its packages are not installed.
    Missing {
        /// The first missing program or path.
        missing: String,
    },
    /// It is there, but its version command fails in a box.
    Broken {
        /// What went wrong.
        reason: String,
    },
}

impl Installation {
    /// The installed version, if known.
    pub fn version(&self) -> Option<&str> {
        match self {
            Installation::Installed { version } => version.as_deref(),
            _ => None,
        }
    }

    /// Whether the language can be used.
    pub fn is_installed(&self) -> bool {
        matches!(self, Installation::Installed { .. })
    }
}

/// Where the box looks for programs (its PATH), as host paths: the box's /usr is
/// the host's, and /bin is a link to /usr/bin on merged-usr hosts.
const BOX_PATH: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin"];

/// The first program or bind path of `language` that the box would not find.
pub(crate) fn first_missing(language: &Language) -> Option<String> {
    for program in tools(language) {
        if find_program(program).is_none() {
            return Some(program.to_string());
        }
    }
    // A runtime without its compiler's files (node without tsc.js, java without
    // the language's jar) is not this language: its version command would fail, or
    // worse, print the runtime's version.
    if let Some(file) = language
        .version
        .named_files()
        .find(|f| !Path::new(f).exists())
    {
        return Some(file.to_string());
    }
    language
        .binds
        .iter()
        .find(|path| !path.exists())
        .map(|path| path.display().to_string())
}

/// The programs `language` starts that must be installed: a relative path
/// (`./main`) is an artifact of the compile stage, not a tool.
pub(crate) fn tools(language: &Language) -> impl Iterator<Item = &str> {
    language
        .programs()
        .into_iter()
        .filter(|p| p.starts_with('/') || !p.contains('/'))
}

/// The host path of `program` as the box's PATH would find it.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = Path::new(program);
        return is_executable(path).then(|| path.to_path_buf());
    }
    BOX_PATH
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks `language` and runs its version command in a box, with the language's
/// compile limits over `compile_defaults`.
pub(crate) fn detect(
    sandbox: &Sandbox,
    language: &Language,
    compile_defaults: &runbox_sandbox::Limits,
) -> Installation {
    if let Some(missing) = first_missing(language) {
        return Installation::Missing { missing };
    }
    let limits = language.compile_limits.apply(compile_defaults);
    let argv = language.version.expand(&Values {
        memory_mb: limits.memory_bytes >> 20,
        heap_mb: crate::pipeline::heap_mb(limits.memory_bytes),
        ..Values::default()
    });
    let config: BoxConfig = box_config(language, argv, limits);
    let outcome = match sandbox.run(&config) {
        Ok(outcome) => outcome,
        Err(err) => {
            return Installation::Broken {
                reason: err.to_string(),
            };
        }
    };
    let text = [outcome.stdout.as_slice(), outcome.stderr.as_slice()].concat();
    let text = String::from_utf8_lossy(&text);
    let version = language.version_in(&text).map(str::to_string);
    match (version, outcome.status) {
        (Some(version), _) => Installation::Installed {
            version: Some(version),
        },
        (None, Status::Ok) => Installation::Installed { version: None },
        (None, status) => Installation::Broken {
            reason: format!(
                "`{}` ended with {status}: {}",
                language.version,
                text.lines().next().unwrap_or("no output")
            ),
        },
    }
}

/// Whether `wanted` names the installed `version`: equal, or a prefix that ends at
/// a dot (`3` and `3.11` match `3.11.2`; `3.1` does not).
pub(crate) fn version_matches(wanted: &str, version: &str) -> bool {
    let wanted = wanted.trim();
    wanted.is_empty()
        || wanted == "*"
        || wanted == version
        || version
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_matches_only_whole_components() {
        assert!(version_matches("3", "3.11.2"));
        assert!(version_matches("3.11", "3.11.2"));
        assert!(version_matches("3.11.2", "3.11.2"));
        assert!(version_matches("*", "3.11.2"));
        assert!(!version_matches("3.1", "3.11.2"));
        assert!(!version_matches("2", "3.11.2"));
    }

    #[test]
    fn programs_are_found_on_the_box_path_only() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("no-such-program-runbox").is_none());
    }

    #[test]
    fn a_runtime_without_the_file_its_version_command_names_is_missing() {
        let language = |version: &str| {
            Language::parse(
                &format!(
                    "id = \"t\"\nname = \"T\"\nextensions = [\"t\"]\npackages = [\"t\"]\n\
                     source_file = \"main.t\"\nrun = [\"/bin/sh\", \"{{entry}}\"]\nversion = {version}\n"
                ),
                "test",
            )
            .unwrap()
        };
        let missing =
            language("[\"/bin/sh\", \"/usr/share/no-such-runbox-compiler.js\", \"--version\"]");
        assert_eq!(
            first_missing(&missing).as_deref(),
            Some("/usr/share/no-such-runbox-compiler.js")
        );
        let present = language("[\"/bin/sh\", \"/bin/sh\", \"--version\"]");
        assert_eq!(first_missing(&present), None);
    }
}
