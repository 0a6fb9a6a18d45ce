//! Whether a language is installed on this host, and which version.
//!
//! The check has two steps: the programs its commands start and the paths it binds
//! must exist where the box looks for them (cheap, on the host); then its version
//! command runs in a box, which proves that the box can start it at all.

use std::os::unix::ffi::OsStrExt;
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
    if let Some(runtime) = &language.runtime
        && language.runtime_root().is_none()
    {
        return Some(format!("the runtime '{runtime}'"));
    }
    let root = language.runtime_root();
    for program in tools(language) {
        if find_program(root, program).is_none() {
            return Some(program.to_string());
        }
    }
    // A runtime without its compiler's files (node without tsc.js, java without
    // the language's jar) is not this language: its version command would fail, or
    // worse, print the runtime's version.
    if let Some(file) = language
        .version
        .named_files()
        .find(|f| stat_in(root, Path::new(f)).is_none())
    {
        return Some(file.to_string());
    }
    if let Some(path) = language
        .binds
        .iter()
        .find(|path| stat_in(root, path).is_none())
    {
        return Some(path.display().to_string());
    }
    let needs = &language.needs_one_of;
    if !needs.is_empty() && !needs.iter().any(|pattern| pattern_exists(root, pattern)) {
        return Some(needs.join(" or "));
    }
    None
}

/// Whether a path matching `pattern` (absolute, `*` and the like within one
/// component) exists in the system tree `root` (`None`: the host's). Directories
/// are listed as the box would see them: links resolved within the tree.
fn pattern_exists(root: Option<&Path>, pattern: &str) -> bool {
    let mut candidates = vec![PathBuf::from("/")];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        if !component.contains(['*', '?', '[']) {
            candidates.iter_mut().for_each(|dir| dir.push(component));
            continue;
        }
        let Ok(glob) = globset::Glob::new(component) else {
            return false;
        };
        let matcher = glob.compile_matcher();
        candidates = candidates
            .iter()
            .flat_map(|dir| {
                list_in(root, dir)
                    .into_iter()
                    .filter(|name| matcher.is_match(name))
                    .map(move |name| dir.join(name))
            })
            .collect();
    }
    candidates.iter().any(|path| stat_in(root, path).is_some())
}

/// The names in directory `dir` of the system tree `root`; none when it cannot
/// be read.
fn list_in(root: Option<&Path>, dir: &Path) -> Vec<std::ffi::OsString> {
    use rustix::fs::OFlags;
    let Some(fd) = open_in(root, dir, OFlags::RDONLY | OFlags::DIRECTORY) else {
        return Vec::new();
    };
    let Ok(entries) = rustix::fs::Dir::read_from(&fd) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| std::ffi::OsStr::from_bytes(entry.file_name().to_bytes()).to_owned())
        .filter(|name| name != "." && name != "..")
        .collect()
}

/// The programs `language` starts that must be installed: a relative path
/// (`./main`) is an artifact of the compile stage, not a tool.
pub(crate) fn tools(language: &Language) -> impl Iterator<Item = &str> {
    language
        .programs()
        .into_iter()
        .filter(|p| p.starts_with('/') || !p.contains('/'))
}

/// The path of `program` (inside the box) as the box's PATH would find it in the
/// system tree `root` (`None`: the host's), with its status.
pub(crate) fn find_program(root: Option<&Path>, program: &str) -> Option<(PathBuf, Stat)> {
    if program.contains('/') {
        let path = Path::new(program);
        return stat_in(root, path)
            .filter(is_executable)
            .map(|stat| (path.to_path_buf(), stat));
    }
    BOX_PATH.iter().find_map(|dir| {
        let path = Path::new(dir).join(program);
        stat_in(root, &path)
            .filter(is_executable)
            .map(|stat| (path, stat))
    })
}

/// The status of `path` as a box on the system tree `root` sees it: inside a
/// runtime, every link (absolute ones too) is resolved within its tree, never
/// on the host (`openat2` with `RESOLVE_IN_ROOT`).
pub(crate) fn stat_in(root: Option<&Path>, path: &Path) -> Option<Stat> {
    let file = open_in(root, path, rustix::fs::OFlags::PATH)?;
    rustix::fs::fstat(&file).ok()
}

/// Opens `path` of the system tree `root` (`None`: the host's) with `flags`,
/// every link resolved within the tree.
fn open_in(
    root: Option<&Path>,
    path: &Path,
    flags: rustix::fs::OFlags,
) -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = flags | OFlags::CLOEXEC;
    let Some(root) = root else {
        return rustix::fs::open(path, flags, Mode::empty()).ok();
    };
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let inside = path.strip_prefix("/").unwrap_or(path);
    rustix::fs::openat2(&dir, inside, flags, Mode::empty(), ResolveFlags::IN_ROOT).ok()
}

/// A file's status, as `rustix` reads it.
pub(crate) type Stat = rustix::fs::Stat;

fn is_executable(stat: &Stat) -> bool {
    let mode = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    mode == rustix::fs::FileType::RegularFile && stat.st_mode & 0o111 != 0
}

/// Runs the version command of `language`, which [`first_missing`] found
/// complete, in a box, with the language's compile limits over
/// `compile_defaults`.
pub(crate) fn detect(
    sandbox: &Sandbox,
    language: &Language,
    compile_defaults: &runbox_sandbox::Limits,
) -> Installation {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_box_path_only() {
        assert!(find_program(None, "sh").is_some());
        assert!(find_program(None, "/bin/sh").is_some());
        assert!(find_program(None, "no-such-program-runbox").is_none());
    }

    #[test]
    fn a_language_whose_needed_file_matches_no_path_is_missing() {
        let language = |needs: &str| {
            Language::parse(
                &format!(
                    "id = \"t\"\nname = \"T\"\nextensions = [\"t\"]\npackages = [\"t\"]\n\
                     source_file = \"main.t\"\nrun = [\"/bin/sh\", \"{{entry}}\"]\n\
                     version = [\"/bin/sh\", \"--version\"]\nneeds_one_of = {needs}\n"
                ),
                "test",
            )
            .unwrap()
        };
        // gcc's driver without gobjc: no cc1obj below any gcc directory.
        let missing = language("[\"/usr/lib/gcc/*/*/no-such-runbox-cc1\", \"/no/such/*\"]");
        assert_eq!(
            first_missing(&missing).as_deref(),
            Some("/usr/lib/gcc/*/*/no-such-runbox-cc1 or /no/such/*")
        );
        let present = language("[\"/no/such/*\", \"/usr/bin/s?\"]");
        assert_eq!(first_missing(&present), None);
        let relative = Language::parse(
            "id = \"t\"\nname = \"T\"\nextensions = [\"t\"]\npackages = [\"t\"]\n\
             source_file = \"main.t\"\nrun = [\"/bin/sh\"]\nversion = [\"/bin/sh\"]\n\
             needs_one_of = [\"usr/bin/sh\"]\n",
            "test",
        );
        assert!(relative.is_err());
    }

    #[test]
    fn a_pattern_is_matched_within_a_runtime_tree_through_its_absolute_links() {
        // The runtime's /usr/libexec links to /usr/lib: absolute, so meant
        // inside the tree; its directories are not the host's.
        let root = tempfile::tempdir().unwrap();
        let compiler = root.path().join("usr/lib/gcc/some-arch/9");
        std::fs::create_dir_all(&compiler).unwrap();
        std::fs::write(compiler.join("cc1runboxtest"), "").unwrap();
        std::os::unix::fs::symlink("/usr/lib", root.path().join("usr/libexec")).unwrap();
        let tree = Some(root.path());
        assert!(pattern_exists(tree, "/usr/libexec/gcc/*/*/cc1runboxtest"));
        assert!(pattern_exists(tree, "/usr/lib/gcc/some-*/?/cc1runbox*"));
        assert!(!pattern_exists(tree, "/usr/lib/gcc/*/*/cc1obj-none"));
        assert!(!pattern_exists(None, "/usr/lib/gcc/*/*/cc1runboxtest"));
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
