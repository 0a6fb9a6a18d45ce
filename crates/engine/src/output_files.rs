//! Files a run leaves in its work directory, returned with its result.
//!
//! A job names them (`output_files`: names or globs relative to the work
//! directory); the run then gets a writable copy of its work directory, and once
//! its box has ended (every process of it killed) the files that match are read
//! from the host side. The box was hostile: a name may be a symlink to a host
//! file, a FIFO that would block the reader, a directory, or a huge file. Nothing
//! is followed: the tree is walked without following links, each file is opened
//! with `openat2` beneath the work directory, refusing symlinks anywhere in the
//! path, without blocking, and checked to be a regular file after opening
//! ([`runbox_sandbox::files::read_box_file`]). What is refused or over the caps is
//! listed with its reason instead of its content.

use std::collections::HashSet;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Serialize;

/// How many files and bytes one run may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCaps {
    /// Files returned with their content.
    pub max_files: usize,
    /// Bytes of all returned files together.
    pub max_bytes: u64,
}

impl Default for OutputCaps {
    fn default() -> Self {
        OutputCaps {
            max_files: 16,
            max_bytes: 8 << 20,
        }
    }
}

/// Patterns a job may give; more is a client mistake.
pub const MAX_PATTERNS: usize = 32;

/// Entries listed per run at most (files returned and refused together): a
/// program that makes a million matching files gets a bounded result.
const MAX_LISTED: usize = 256;

/// Directory levels walked below the work directory.
const MAX_DEPTH: usize = 16;

/// One file a run was asked to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputFile {
    /// Its path relative to the work directory.
    pub name: String,
    /// Its size in bytes (0 when it is not a regular file or does not exist).
    pub size: u64,
    /// Its bytes, when returned (base64 in JSON).
    #[serde(
        rename = "content_base64",
        serialize_with = "base64_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Vec<u8>>,
    /// Why it is not returned: not found, not a regular file, over a cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

fn base64_bytes<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    match bytes {
        Some(bytes) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes)),
        None => s.serialize_none(),
    }
}

/// Checks one pattern: a relative path (globs allowed) inside the work directory.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("an output file pattern must not be empty".into());
    }
    if pattern.starts_with('/') {
        return Err(format!(
            "'{pattern}' must be relative to the work directory"
        ));
    }
    if pattern.split('/').any(|part| part == ".." || part == ".") {
        return Err(format!("'{pattern}' must not contain '.' or '..' parts"));
    }
    if pattern.contains('\0') {
        return Err("an output file pattern cannot contain a NUL byte".into());
    }
    matcher(pattern).map(|_| ())
}

/// Whether `pattern` has glob syntax (else it names one file).
fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

fn matcher(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
        .map_err(|e| format!("'{pattern}' is not a valid glob: {e}"))
}

/// The relative paths of everything below `dir` (not following links).
pub(crate) fn listing(dir: &Path) -> HashSet<String> {
    walk(dir).map(|(name, _)| name).collect()
}

/// Every entry below `dir`, with its own type (links not followed).
fn walk(dir: &Path) -> impl Iterator<Item = (String, std::fs::FileType)> + '_ {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .max_depth(MAX_DEPTH)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(move |entry| {
            let name = entry.path().strip_prefix(dir).ok()?.to_str()?.to_string();
            Some((name, entry.file_type()))
        })
}

/// What kind of thing a non-regular entry is, for a refusal.
fn kind_of(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        "a symbolic link (never followed)"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Collects the files `patterns` name in `dir` once the run's box has ended.
/// A plain name is looked up whatever it is (and refused if it is no regular
/// file); a glob matches the regular files, links and special files the run
/// made (not what was there before it, in `before`), never a directory.
pub(crate) fn collect(
    dir: &Path,
    patterns: &[String],
    before: &HashSet<String>,
    caps: OutputCaps,
) -> Vec<OutputFile> {
    let globs: Vec<GlobMatcher> = patterns
        .iter()
        .filter(|p| is_glob(p))
        .filter_map(|p| matcher(p).ok())
        .collect();
    let exact: Vec<&str> = patterns
        .iter()
        .filter(|p| !is_glob(p))
        .map(|p| p.trim_end_matches('/'))
        .collect();
    let mut found: Vec<(String, std::fs::FileType)> = Vec::new();
    let mut seen_exact = HashSet::new();
    for (name, kind) in walk(dir) {
        let named = exact.contains(&name.as_str());
        let globbed =
            !kind.is_dir() && !before.contains(&name) && globs.iter().any(|g| g.is_match(&name));
        if named {
            seen_exact.insert(name.clone());
        }
        if named || globbed {
            found.push((name, kind));
        }
        if found.len() >= MAX_LISTED {
            break;
        }
    }
    let mut files = Vec::new();
    for name in exact {
        if !seen_exact.contains(name) && files.len() < MAX_LISTED {
            files.push(OutputFile {
                name: name.to_string(),
                size: 0,
                content: None,
                refused: Some("no such file after the run".into()),
            });
        }
    }
    let (mut returned, mut bytes) = (0usize, 0u64);
    for (name, kind) in found {
        let mut file = OutputFile {
            name,
            size: 0,
            content: None,
            refused: None,
        };
        if !kind.is_file() {
            file.refused = Some(format!("refused: it is {}", kind_of(kind)));
            files.push(file);
            continue;
        }
        file.size = std::fs::symlink_metadata(dir.join(&file.name)).map_or(0, |m| m.len());
        let left = caps.max_bytes - bytes;
        if returned >= caps.max_files {
            file.refused = Some(format!(
                "not returned: a run returns at most {} files",
                caps.max_files
            ));
        } else if file.size > left {
            file.refused = Some(format!(
                "not returned: {} bytes is more than the {left} bytes left of the {}-byte limit for output files",
                file.size, caps.max_bytes
            ));
        } else {
            match runbox_sandbox::files::read_box_file(dir, Path::new(&file.name), left) {
                Ok(content) => {
                    file.size = content.len() as u64;
                    bytes += file.size;
                    returned += 1;
                    file.content = Some(content);
                }
                Err(err) => file.refused = Some(format!("refused: {err}")),
            }
        }
        files.push(file);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[OutputFile]) -> Vec<&str> {
        files.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn patterns_stay_inside_the_work_directory() {
        assert!(check_pattern("out/*.png").is_ok());
        assert!(check_pattern("plot.png").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "./a", "a[", "x\0"] {
            assert!(check_pattern(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn globs_match_new_files_only_and_names_match_anything() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.c"), "old").unwrap();
        let before = listing(dir.path());
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.txt"), "bb").unwrap();
        let patterns = ["*".to_string(), "sub/*.txt".into(), "main.c".into()];
        let files = collect(dir.path(), &patterns, &before, OutputCaps::default());
        assert_eq!(names(&files), ["a.txt", "main.c", "sub/b.txt"]);
        assert_eq!(files[2].content.as_deref(), Some(&b"bb"[..]));
    }

    #[test]
    fn links_fifos_and_directories_are_refused_with_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        let patterns = ["link".into(), "fifo".into(), "dir".into(), "gone".into()];
        let files = collect(
            dir.path(),
            &patterns,
            &HashSet::new(),
            OutputCaps::default(),
        );
        let reason = |name: &str| {
            files
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.refused.clone())
                .unwrap_or_default()
        };
        assert!(reason("link").contains("symbolic link"), "{files:?}");
        assert!(reason("fifo").contains("FIFO"), "{files:?}");
        assert!(reason("dir").contains("directory"), "{files:?}");
        assert!(reason("gone").contains("no such file"), "{files:?}");
        assert!(files.iter().all(|f| f.content.is_none()));
    }

    #[test]
    fn the_count_and_byte_caps_hold_with_a_reason_per_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [("a", 4), ("b", 4), ("c", 4), ("d", 20)] {
            std::fs::write(dir.path().join(name), vec![b'x'; size]).unwrap();
        }
        let caps = OutputCaps {
            max_files: 2,
            max_bytes: 10,
        };
        let files = collect(dir.path(), &["*".into()], &HashSet::new(), caps);
        let returned: Vec<&str> = files
            .iter()
            .filter(|f| f.content.is_some())
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(returned, ["a", "b"]);
        assert!(
            files[2]
                .refused
                .as_deref()
                .unwrap()
                .contains("at most 2 files")
        );
        let caps = OutputCaps {
            max_files: 10,
            max_bytes: 10,
        };
        let files = collect(dir.path(), &["d".into()], &HashSet::new(), caps);
        assert_eq!(files[0].size, 20);
        assert!(
            files[0]
                .refused
                .as_deref()
                .unwrap()
                .contains("10-byte limit")
        );
    }
}
