//! A job: what a user asks the engine to compile and run.

use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::limits::LimitOverrides;

/// One source file of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Its path inside the work directory (`src/util.go`); `None` for a `source`
    /// given without a name, which gets the language's default file name.
    pub name: Option<String>,
    /// Its bytes.
    pub content: Vec<u8>,
}

impl SourceFile {
    /// A file with a name.
    pub fn named(name: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        SourceFile {
            name: Some(name.into()),
            content: content.into(),
        }
    }

    /// A source without a name: the language decides it.
    pub fn unnamed(content: impl Into<Vec<u8>>) -> Self {
        SourceFile {
            name: None,
            content: content.into(),
        }
    }
}

/// A compile-and-run request.
#[derive(Debug, Clone, Default)]
pub struct Job {
    /// A catalog id or alias.
    pub language: String,
    /// A version the user wants (a prefix of the installed one, e.g. `3` or `3.11`).
    pub version: Option<String>,
    /// The files; the first is the entry.
    pub files: Vec<SourceFile>,
    /// What the program reads on stdin.
    pub stdin: Vec<u8>,
    /// The program's arguments.
    pub args: Vec<String>,
    /// Limits of the run stage the user set.
    pub limits: LimitOverrides,
    /// Limits of the compile stage the user set.
    pub compile_limits: LimitOverrides,
}

/// How many files and bytes a job may bring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobBounds {
    /// Files per job.
    pub max_files: usize,
    /// Bytes of all files together.
    pub max_total_bytes: usize,
    /// Bytes of stdin.
    pub max_stdin_bytes: usize,
    /// Arguments per job.
    pub max_args: usize,
}

impl Default for JobBounds {
    fn default() -> Self {
        JobBounds {
            max_files: 64,
            max_total_bytes: 8 << 20,
            max_stdin_bytes: 8 << 20,
            max_args: 256,
        }
    }
}

/// Longest path of a submitted file, in bytes.
const MAX_NAME_BYTES: usize = 255;

impl Job {
    /// Checks what does not depend on the language: file names, counts, sizes.
    pub fn check(&self, bounds: &JobBounds) -> Result<()> {
        if self.files.is_empty() {
            return Err(Error::invalid("files", "a job needs at least one file"));
        }
        if self.files.len() > bounds.max_files {
            return Err(Error::invalid(
                "files",
                format!(
                    "{} files is too many: at most {} per job",
                    self.files.len(),
                    bounds.max_files
                ),
            ));
        }
        let total: usize = self.files.iter().map(|f| f.content.len()).sum();
        if total > bounds.max_total_bytes {
            return Err(Error::invalid(
                "files",
                format!(
                    "the files hold {total} bytes, more than the {} allowed",
                    bounds.max_total_bytes
                ),
            ));
        }
        if self.stdin.len() > bounds.max_stdin_bytes {
            return Err(Error::invalid(
                "stdin",
                format!(
                    "stdin has {} bytes, more than the {} allowed",
                    self.stdin.len(),
                    bounds.max_stdin_bytes
                ),
            ));
        }
        if self.args.len() > bounds.max_args {
            return Err(Error::invalid(
                "args",
                format!("at most {} arguments are allowed", bounds.max_args),
            ));
        }
        if let Some(i) = self.args.iter().position(|a| a.contains('\0')) {
            return Err(Error::invalid(
                format!("args[{i}]"),
                "an argument cannot contain a NUL byte",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, file) in self.files.iter().enumerate() {
            let field = format!("files[{i}].name");
            match &file.name {
                None if i > 0 => {
                    return Err(Error::invalid(
                        field,
                        "only the first file may be given without a name",
                    ));
                }
                None => {}
                Some(name) => {
                    check_file_name(name).map_err(|m| Error::invalid(&field, m))?;
                    if !seen.insert(name.as_str()) {
                        return Err(Error::invalid(
                            field,
                            format!("the file name '{name}' is given twice"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A file name must be a plain relative path that stays inside the work directory.
pub(crate) fn check_file_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("a file name cannot be empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "the file name is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(format!(
            "the file name '{}' contains a control character",
            name.escape_debug()
        ));
    }
    if name.starts_with('/') {
        return Err(format!(
            "the file name '{name}' is absolute: give a path relative to the work directory"
        ));
    }
    if name.ends_with('/') {
        return Err(format!("the file name '{name}' names a directory"));
    }
    let plain = Path::new(name)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !plain || name.split('/').any(|part| part == "." || part.is_empty()) {
        return Err(format!(
            "the file name '{name}' must not contain '..', '.' or empty parts"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(files: Vec<SourceFile>) -> Job {
        Job {
            language: "c".into(),
            files,
            ..Job::default()
        }
    }

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidJob { field, .. } => field,
            other => panic!("not an invalid job: {other}"),
        }
    }

    #[test]
    fn plain_relative_names_with_directories_are_accepted() {
        let j = job(vec![
            SourceFile::named("main.go", "x"),
            SourceFile::named("pkg/util/util.go", "y"),
        ]);
        j.check(&JobBounds::default()).unwrap();
    }

    #[test]
    fn absolute_dotdot_and_empty_parts_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x.c",
            "a/../../x.c",
            "a//b.c",
            "./a.c",
            "a/",
            "",
        ] {
            let j = job(vec![SourceFile::named(bad, "x")]);
            let err = j.check(&JobBounds::default()).unwrap_err();
            assert_eq!(field_of(err), "files[0].name", "{bad}");
        }
    }

    #[test]
    fn duplicate_name_is_refused_with_its_index() {
        let j = job(vec![
            SourceFile::named("a.c", "x"),
            SourceFile::named("a.c", "y"),
        ]);
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "files[1].name"
        );
    }

    #[test]
    fn too_many_files_and_too_many_bytes_are_refused() {
        let bounds = JobBounds {
            max_files: 2,
            max_total_bytes: 10,
            ..JobBounds::default()
        };
        let many = job((0..3)
            .map(|i| SourceFile::named(format!("{i}.c"), ""))
            .collect());
        assert!(
            many.check(&bounds)
                .unwrap_err()
                .to_string()
                .contains("too many")
        );
        let large = job(vec![SourceFile::named("a.c", vec![b'x'; 11])]);
        assert!(
            large
                .check(&bounds)
                .unwrap_err()
                .to_string()
                .contains("11 bytes")
        );
    }

    #[test]
    fn only_the_first_file_may_be_unnamed() {
        let j = job(vec![SourceFile::unnamed("x"), SourceFile::unnamed("y")]);
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "files[1].name"
        );
    }

    #[test]
    fn empty_job_is_refused() {
        assert!(job(vec![]).check(&JobBounds::default()).is_err());
    }
}
