//! A job: what a user asks the engine to compile and run.

use std::path::{Component, Path};

use crate::checker::{Checker, CustomProgram};
use crate::error::JobError;
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
    /// A version the user wants: exact, a prefix (`3`, `3.11`) or a range.
    pub version: Option<String>,
    /// The runtime the user wants the language from (`host`, `debian-trixie`):
    /// with several entries of one version, this one.
    pub runtime: Option<String>,
    /// The files; the first is the entry.
    pub files: Vec<SourceFile>,
    /// What the program reads on stdin.
    pub stdin: Vec<u8>,
    /// The program's arguments.
    pub args: Vec<String>,
    /// Options added to the compile command, for languages whose compile command
    /// places `{options}` (C, C++, Rust, Go, Java, ...). The compiler runs in its
    /// own box, so an option can do no more than the source itself could.
    pub compiler_options: Vec<String>,
    /// Limits of the run stage the user set.
    pub limits: LimitOverrides,
    /// Limits of the compile stage the user set.
    pub compile_limits: LimitOverrides,
    /// Test cases: with any, the program is compiled once and run once per test,
    /// each in a fresh box, and each run is judged by `checker`.
    pub tests: Vec<TestCase>,
    /// How test output is compared with the expected output.
    pub checker: Checker,
    /// An interactor: with one, each test runs the program and the interactor
    /// together, each one's stdout piped into the other's stdin; the interactor
    /// reads the test's `stdin` as its input file and decides the verdict. A
    /// test with an expected output also goes through `checker`, with what the
    /// interactor wrote to its output file as the program's output.
    pub interactor: Option<CustomProgram>,
    /// How the tests are run.
    pub judge: JudgeOptions,
    /// Files that come with the exercise rather than from the user: headers, a test
    /// driver, a test module; compiled or loaded with the user's files.
    pub harness: Harness,
    /// The program's stderr goes into its stdout pipe, in the order written
    /// (`2>&1`; Judge0's `redirect_stderr_to_stdout`); tests compare both.
    pub stderr_to_stdout: bool,
    /// The run stage may reach the internet (not the host or local networks);
    /// only on a sandbox with network. Judge0's `enable_network`.
    pub network: bool,
    /// How many times the program runs (0 and 1: once). Its times and memory are
    /// then the mean over the runs, its output that of the last; the first run
    /// that fails is the result. Judge0's `number_of_runs`; not with tests.
    pub runs: u32,
    /// Files the run leaves in its work directory to return with the result:
    /// names or globs (`out/*.png`) relative to it. With any, the run gets a
    /// writable copy of the work directory (each test its own).
    pub output_files: Vec<String>,
    /// Library functions the program may not call (C and C++: `system`,
    /// `fork`): a compiled program that imports one ends as a compile error
    /// naming it and where it is called, before any test runs.
    pub banned_functions: Vec<String>,
    /// With any, the only library functions the program may call (C and C++;
    /// reserved names, `_`-prefixed, such as the C runtime's and C++'s mangled
    /// ones, are always allowed).
    pub allowed_functions: Vec<String>,
    /// Analyses of each run beside its verdict.
    pub analysis: Analysis,
}

/// Analyses of a job's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Analysis {
    /// C and C++: run each test (or the run) under Valgrind's memcheck and
    /// report invalid accesses, uninitialised values and leaks with the user's
    /// file and line (see `memcheck.rs` for the limits it gets).
    pub memcheck: bool,
}

/// One test case of a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestCase {
    /// Its name, unique in the job (`01`, `test_add`).
    pub name: String,
    /// What the program reads on stdin.
    pub stdin: Vec<u8>,
    /// The program's arguments for this test; when empty, the job's `args`.
    pub args: Vec<String>,
    /// The expected stdout; `None` judges by the run alone (exit 0 is accepted),
    /// as a test driver does.
    pub expected_output: Option<Vec<u8>>,
    /// Limits of this test's run that replace the job's.
    pub limits: LimitOverrides,
}

/// How the tests of a job are run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JudgeOptions {
    /// Stop at the first test that fails (in test order): later tests are not listed.
    pub stop_on_first_failure: bool,
    /// Run the tests one by one instead of in parallel, for steadier timings.
    pub sequential: bool,
    /// Pin each test's box to one CPU (cpuset), so that timings are repeatable; the
    /// tests then run at most one per CPU.
    pub pin_cpu: bool,
}

/// Test harness files of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Harness {
    /// The files, each with a name; they go into the work directory beside the
    /// user's files (and are compiled with them when they are sources).
    pub files: Vec<SourceFile>,
    /// The file that is the entry (the program run, e.g. a Python test module),
    /// instead of the user's first file; a harness or a user file name.
    pub entry: Option<String>,
    /// Rename the `main` of the user's sources (to `student_main`) so that the
    /// harness's `main` is the program's; for languages whose catalog entry says how
    /// (`rename_main`: C and C++).
    pub rename_main: bool,
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
    /// Test cases per job.
    pub max_tests: usize,
    /// Bytes of all tests' stdin and expected output together.
    pub max_test_bytes: usize,
    /// Runs of one program ([`Job::runs`]).
    pub max_runs: u32,
    /// Files and bytes one run (or test) may return ([`Job::output_files`]).
    pub output: crate::output_files::OutputCaps,
}

impl Default for JobBounds {
    fn default() -> Self {
        JobBounds {
            max_files: 64,
            max_total_bytes: 8 << 20,
            max_stdin_bytes: 8 << 20,
            max_args: 256,
            max_tests: 1000,
            max_test_bytes: 256 << 20,
            max_runs: 20,
            output: crate::output_files::OutputCaps::default(),
        }
    }
}

/// Longest path of a submitted file, in bytes.
const MAX_NAME_BYTES: usize = 255;

impl Job {
    /// Checks what does not depend on the language: file names, counts, sizes.
    pub fn check(&self, bounds: &JobBounds) -> Result<(), JobError> {
        if self.files.is_empty() {
            return Err(JobError::invalid("files", "a job needs at least one file"));
        }
        if self.files.len() > bounds.max_files {
            return Err(JobError::invalid(
                "files",
                format!(
                    "{} files is too many: at most {} per job",
                    self.files.len(),
                    bounds.max_files
                ),
            ));
        }
        let harness = &self.harness.files;
        if self.files.len() + harness.len() > bounds.max_files {
            return Err(JobError::invalid(
                "harness.files",
                format!(
                    "{} files with the harness is too many: at most {} per job",
                    self.files.len() + harness.len(),
                    bounds.max_files
                ),
            ));
        }
        let total: usize = self
            .files
            .iter()
            .chain(harness)
            .map(|f| f.content.len())
            .sum();
        if total > bounds.max_total_bytes {
            return Err(JobError::invalid(
                "files",
                format!(
                    "the files hold {total} bytes, more than the {} allowed",
                    bounds.max_total_bytes
                ),
            ));
        }
        if self.stdin.len() > bounds.max_stdin_bytes {
            return Err(JobError::invalid(
                "stdin",
                format!(
                    "stdin has {} bytes, more than the {} allowed",
                    self.stdin.len(),
                    bounds.max_stdin_bytes
                ),
            ));
        }
        if self.args.len() > bounds.max_args {
            return Err(JobError::invalid(
                "args",
                format!("at most {} arguments are allowed", bounds.max_args),
            ));
        }
        check_args(&self.args, "args")?;
        if self.compiler_options.len() > bounds.max_args {
            return Err(JobError::invalid(
                "compiler_options",
                format!("at most {} compiler options are allowed", bounds.max_args),
            ));
        }
        check_args(&self.compiler_options, "compiler_options")?;
        let mut seen = std::collections::HashSet::new();
        for (i, file) in self.files.iter().enumerate() {
            let field = format!("files[{i}].name");
            match &file.name {
                None if i > 0 => {
                    return Err(JobError::invalid(
                        field,
                        "only the first file may be given without a name",
                    ));
                }
                None => {}
                Some(name) => {
                    check_file_name(name).map_err(|m| JobError::invalid(&field, m))?;
                    if !seen.insert(name.as_str()) {
                        return Err(JobError::invalid(
                            field,
                            format!("the file name '{name}' is given twice"),
                        ));
                    }
                }
            }
        }
        for (i, file) in harness.iter().enumerate() {
            let field = format!("harness.files[{i}].name");
            let Some(name) = &file.name else {
                return Err(JobError::invalid(field, "a harness file needs a name"));
            };
            check_file_name(name).map_err(|m| JobError::invalid(&field, m))?;
            if !seen.insert(name.as_str()) {
                return Err(JobError::invalid(
                    field,
                    format!("the file name '{name}' is given twice"),
                ));
            }
        }
        if self.runs > bounds.max_runs {
            return Err(JobError::invalid(
                "runs",
                format!(
                    "at most {} runs of one program are allowed",
                    bounds.max_runs
                ),
            ));
        }
        if self.runs > 1 && !self.tests.is_empty() {
            return Err(JobError::invalid(
                "runs",
                "a job with tests runs each test once: leave runs out",
            ));
        }
        self.check_tests(bounds)?;
        self.check_output_files()?;
        self.check_function_lists()?;
        self.check_checker()
    }

    fn check_tests(&self, bounds: &JobBounds) -> Result<(), JobError> {
        if self.tests.len() > bounds.max_tests {
            return Err(JobError::invalid(
                "tests",
                format!(
                    "{} tests is too many: at most {} per job",
                    self.tests.len(),
                    bounds.max_tests
                ),
            ));
        }
        let bytes: usize = self
            .tests
            .iter()
            .map(|t| t.stdin.len() + t.expected_output.as_ref().map_or(0, Vec::len))
            .sum();
        if bytes > bounds.max_test_bytes {
            return Err(JobError::invalid(
                "tests",
                format!(
                    "the tests hold {bytes} bytes of input and expected output, more than the {} allowed",
                    bounds.max_test_bytes
                ),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, test) in self.tests.iter().enumerate() {
            if test.name.is_empty() || test.name.chars().any(char::is_control) {
                return Err(JobError::invalid(
                    format!("tests[{i}].name"),
                    "a test needs a name without control characters",
                ));
            }
            if !names.insert(test.name.as_str()) {
                return Err(JobError::invalid(
                    format!("tests[{i}].name"),
                    format!("the test name '{}' is given twice", test.name),
                ));
            }
            if test.stdin.len() > bounds.max_stdin_bytes {
                return Err(JobError::invalid(
                    format!("tests[{i}].stdin"),
                    format!(
                        "stdin has {} bytes, more than the {} allowed",
                        test.stdin.len(),
                        bounds.max_stdin_bytes
                    ),
                ));
            }
            if test.args.len() > bounds.max_args {
                return Err(JobError::invalid(
                    format!("tests[{i}].args"),
                    format!("at most {} arguments are allowed", bounds.max_args),
                ));
            }
            check_args(&test.args, &format!("tests[{i}].args"))?;
        }
        Ok(())
    }

    fn check_function_lists(&self) -> Result<(), JobError> {
        for (field, names) in [
            ("banned_functions", &self.banned_functions),
            ("allowed_functions", &self.allowed_functions),
        ] {
            if names.len() > 1024 {
                return Err(JobError::invalid(field, "at most 1024 function names"));
            }
            for (i, name) in names.iter().enumerate() {
                let valid = !name.is_empty()
                    && name.len() <= 255
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(JobError::invalid(
                        format!("{field}[{i}]"),
                        format!("'{name}' is not a function name (letters, digits, _)"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_output_files(&self) -> Result<(), JobError> {
        let max = crate::output_files::MAX_PATTERNS;
        if self.output_files.len() > max {
            return Err(JobError::invalid(
                "output_files",
                format!("at most {max} output file patterns are allowed"),
            ));
        }
        for (i, pattern) in self.output_files.iter().enumerate() {
            crate::output_files::check_pattern(pattern)
                .map_err(|m| JobError::invalid(format!("output_files[{i}]"), m))?;
        }
        if !self.output_files.is_empty() && self.interactor.is_some() {
            return Err(JobError::invalid(
                "output_files",
                "an interactive job returns no output files",
            ));
        }
        Ok(())
    }

    fn check_checker(&self) -> Result<(), JobError> {
        match &self.checker {
            Checker::Float { epsilon } if !(epsilon.is_finite() && *epsilon >= 0.0) => {
                Err(JobError::invalid(
                    "checker.epsilon",
                    format!("epsilon must be a number >= 0, not {epsilon}"),
                ))
            }
            Checker::Custom(custom) if custom.language.is_empty() => Err(JobError::invalid(
                "checker.language",
                "a custom checker needs a language",
            )),
            Checker::Custom(custom) if custom.files.is_empty() => Err(JobError::invalid(
                "checker.source",
                "a custom checker needs its source",
            )),
            _ => Ok(()),
        }?;
        match &self.interactor {
            Some(interactor) if interactor.language.is_empty() => Err(JobError::invalid(
                "interactor.language",
                "an interactor needs a language",
            )),
            Some(interactor) if interactor.files.is_empty() => Err(JobError::invalid(
                "interactor.source",
                "an interactor needs its source",
            )),
            Some(_) if self.tests.is_empty() => Err(JobError::invalid(
                "interactor",
                "an interactor needs tests: each test's stdin is the interactor's input",
            )),
            _ => Ok(()),
        }
    }
}

/// Arguments must not contain NUL bytes.
fn check_args(args: &[String], field: &str) -> Result<(), JobError> {
    match args.iter().position(|a| a.contains('\0')) {
        Some(i) => Err(JobError::invalid(
            format!("{field}[{i}]"),
            "an argument cannot contain a NUL byte",
        )),
        None => Ok(()),
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

    fn field_of(err: JobError) -> String {
        match err {
            JobError::Invalid { field, .. } => field,
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
    fn duplicate_and_empty_test_names_are_refused_with_their_index() {
        let mut j = job(vec![SourceFile::named("a.c", "x")]);
        j.tests = vec![
            TestCase {
                name: "t1".into(),
                ..TestCase::default()
            },
            TestCase {
                name: "t1".into(),
                ..TestCase::default()
            },
        ];
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "tests[1].name"
        );
        j.tests[1].name = String::new();
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "tests[1].name"
        );
    }

    #[test]
    fn a_harness_file_needs_a_name_that_no_user_file_has() {
        let mut j = job(vec![SourceFile::named("a.c", "x")]);
        j.harness.files = vec![SourceFile::unnamed("y")];
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "harness.files[0].name"
        );
        j.harness.files = vec![SourceFile::named("a.c", "y")];
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "harness.files[0].name"
        );
    }

    #[test]
    fn a_float_checker_needs_a_finite_epsilon() {
        let mut j = job(vec![SourceFile::named("a.c", "x")]);
        j.checker = Checker::Float { epsilon: f64::NAN };
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "checker.epsilon"
        );
        j.checker = Checker::Float { epsilon: -1.0 };
        assert_eq!(
            field_of(j.check(&JobBounds::default()).unwrap_err()),
            "checker.epsilon"
        );
    }

    #[test]
    fn empty_job_is_refused() {
        assert!(job(vec![]).check(&JobBounds::default()).is_err());
    }
}
