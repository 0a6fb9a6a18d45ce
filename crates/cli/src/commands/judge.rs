//! `runbox judge`: compile a solution once and run it on a directory of tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use runbox_engine::checker::DEFAULT_EPSILON;
use runbox_engine::{
    Checker, CustomChecker, CustomProgram, Harness, Job, JudgeOptions, ResultStatus, RunResult,
    TestCase,
};

use super::job::{LimitArgs, kib, language_of, millis, read_sources};
use super::{CacheArgs, CatalogArgs};

/// Exit code when the solution does not compile.
const EXIT_COMPILE_ERROR: u8 = 120;
/// Exit code when a test is not accepted.
const EXIT_NOT_ACCEPTED: u8 = 1;

/// Flags of `runbox judge`.
#[derive(Args)]
pub struct JudgeArgs {
    /// The solution, then any other files of it; the first is the entry.
    #[arg(required = true, value_name = "SOLUTION")]
    files: Vec<PathBuf>,
    /// The tests: `NAME.in` with `NAME.out` or `NAME.ans` (the expected output), and
    /// optionally `NAME.args` (one argument per line). A test with no expected
    /// output is accepted when the program exits with 0.
    #[arg(long, value_name = "DIR")]
    tests: PathBuf,
    /// lines (default), exact, tokens, float[:EPSILON], case_insensitive, or
    /// custom:FILE (a testlib-style checker in any language: FILE input output answer).
    #[arg(long, value_name = "CHECKER", default_value = "lines")]
    checker: String,
    /// The language of the solution: a catalog id or alias.
    #[arg(short, long, value_name = "LANG")]
    language: Option<String>,
    /// The language of a custom checker (default: from its extension).
    #[arg(long, value_name = "LANG")]
    checker_language: Option<String>,
    /// An interactor (an interactive problem): run beside the solution on each
    /// test, joined to its stdin and stdout, with NAME.in as its input file;
    /// its exit code decides (testlib's registerInteraction; C++ gets testlib.h).
    #[arg(long, value_name = "FILE")]
    interactor: Option<PathBuf>,
    /// The language of the interactor (default: from its extension).
    #[arg(long, value_name = "LANG")]
    interactor_language: Option<String>,
    /// Test harness files (headers, a test driver): compiled with the solution.
    #[arg(long, value_name = "FILE")]
    harness: Vec<PathBuf>,
    /// The file that is run (e.g. a Python test module), instead of the solution.
    #[arg(long, value_name = "NAME")]
    entry: Option<String>,
    /// Rename the solution's main (to student_main) so the harness's main is run.
    #[arg(long)]
    rename_main: bool,
    /// Stop at the first test that is not accepted.
    #[arg(long)]
    stop_on_first_failure: bool,
    /// Run the tests one by one (steadier timings) instead of in parallel.
    #[arg(long)]
    sequential: bool,
    /// Pin each test's box to one CPU.
    #[arg(long)]
    pin_cpu: bool,
    /// C and C++: run each test under Valgrind's memcheck and show what it
    /// found (invalid reads and writes, uninitialised values, leaks) by line.
    #[arg(long)]
    memcheck: bool,
    /// C and C++: a library function the solution may not call (repeat for
    /// more); a call to one is a compile error naming where it is called.
    #[arg(long = "banned-function", value_name = "NAME")]
    banned_functions: Vec<String>,
    /// C and C++: the only library functions the solution may call (repeat).
    #[arg(long = "allowed-function", value_name = "NAME")]
    allowed_functions: Vec<String>,
    /// How many tests run at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    jobs: Option<u32>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    cache: CacheArgs,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    catalog: CatalogArgs,
}

/// Judges the solution; exit 0 only when every test is accepted.
pub fn run(args: JudgeArgs) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.catalog()?;
    let files = read_sources(&args.files)?;
    let language = language_of(&catalog, args.language.as_deref(), &files, &args.files[0])?;
    let (tests, warnings) = read_tests(&args.tests)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if tests.is_empty() {
        bail!(
            "{} holds no tests: put NAME.in and NAME.out (or NAME.ans) files there",
            args.tests.display()
        );
    }
    let checker = match parse_checker(&args.checker)? {
        Parsed::Builtin(checker) => checker,
        Parsed::Custom(path) => {
            let files = read_sources(std::slice::from_ref(&path))?;
            let language = language_of(&catalog, args.checker_language.as_deref(), &files, &path)?;
            Checker::Custom(CustomChecker { language, files })
        }
    };
    let interactor = match &args.interactor {
        Some(path) => {
            let files = read_sources(std::slice::from_ref(path))?;
            let language =
                language_of(&catalog, args.interactor_language.as_deref(), &files, path)?;
            Some(CustomProgram { language, files })
        }
        None => None,
    };
    let harness = Harness {
        files: read_sources(&args.harness)?,
        entry: args.entry.clone(),
        rename_main: args.rename_main,
    };
    let count = tests.len();
    let job = Job {
        language,
        files,
        limits: args.limits.run(),
        compile_limits: args.limits.compile(),
        tests,
        checker,
        interactor,
        judge: JudgeOptions {
            stop_on_first_failure: args.stop_on_first_failure,
            sequential: args.sequential,
            pin_cpu: args.pin_cpu,
        },
        harness,
        banned_functions: args.banned_functions.clone(),
        allowed_functions: args.allowed_functions.clone(),
        analysis: runbox_engine::Analysis {
            memcheck: args.memcheck,
        },
        ..Job::default()
    };
    let workers = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    // A box per test worker (two with an interactor), and one for the version
    // check beside the compile.
    let per_test = if job.interactor.is_some() { 2 } else { 1 };
    let engine = super::engine(catalog, workers.max(1) * per_test + 1, Some(&args.cache))?;
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(count as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} tests · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("compiling");
    let checked = engine.check(job)?;
    let result = engine.run_with_progress(&checked, &|test| {
        bar.set_message(format!("{}: {}", test.name, test.verdict));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let result = result?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_report(&result)?;
    }
    Ok(ExitCode::from(match result.status {
        ResultStatus::Accepted => 0,
        ResultStatus::CompileError => EXIT_COMPILE_ERROR,
        _ => EXIT_NOT_ACCEPTED,
    }))
}

enum Parsed {
    Builtin(Checker),
    Custom(PathBuf),
}

/// `lines`, `float:1e-9`, `custom:check.py`, ...
fn parse_checker(text: &str) -> anyhow::Result<Parsed> {
    let (name, value) = match text.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (text, None),
    };
    let builtin = match (name, value) {
        ("exact", None) => Checker::Exact,
        ("lines", None) => Checker::Lines,
        ("tokens", None) => Checker::Tokens,
        ("case_insensitive" | "case-insensitive", None) => Checker::CaseInsensitive,
        ("float", None) => Checker::Float {
            epsilon: DEFAULT_EPSILON,
        },
        ("float", Some(eps)) => {
            let epsilon: f64 = eps
                .parse()
                .ok()
                .filter(|e: &f64| e.is_finite() && *e >= 0.0)
                .with_context(|| format!("'{eps}' is not an epsilon such as 1e-6"))?;
            Checker::Float { epsilon }
        }
        ("custom", Some(file)) if !file.is_empty() => {
            return Ok(Parsed::Custom(PathBuf::from(file)));
        }
        _ => bail!(
            "unknown checker '{text}': use lines, exact, tokens, float[:EPSILON], case_insensitive or custom:FILE"
        ),
    };
    Ok(Parsed::Builtin(builtin))
}

/// The tests of `dir`, in natural order of their names (`2` before `10`), and
/// warnings about files that look meant for a test but are not read.
fn read_tests(dir: &Path) -> anyhow::Result<(Vec<TestCase>, Vec<String>)> {
    #[derive(Default)]
    struct Parts {
        input: Option<PathBuf>,
        output: Option<PathBuf>,
        answer: Option<PathBuf>,
        args: Option<PathBuf>,
        /// Files of the test's name with an extension that means nothing here.
        unknown: Vec<PathBuf>,
    }
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the tests in {}", dir.display()))?;
    let mut tests: BTreeMap<String, Parts> = BTreeMap::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read the tests in {}", dir.display()))?
            .path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let parts = tests.entry(stem.to_string()).or_default();
        match ext {
            "in" => parts.input = Some(path),
            "out" => parts.output = Some(path),
            "ans" => parts.answer = Some(path),
            "args" => parts.args = Some(path),
            _ => parts.unknown.push(path),
        }
    }
    let mut names: Vec<&String> = tests.keys().collect();
    names.sort_by_key(|name| natural_key(name));
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut cases = Vec::new();
    let mut warnings = Vec::new();
    for name in names {
        let parts = &tests[name];
        if parts.input.is_none() && parts.args.is_none() {
            continue; // an .out without .in is not a test
        }
        if parts.output.is_none() && parts.answer.is_none() {
            for path in &parts.unknown {
                warnings.push(format!(
                    "test {name} has no expected output: {} is not read (name it {name}.out or {name}.ans); the test is judged by its exit code alone",
                    path.display()
                ));
            }
        }
        let args = match &parts.args {
            Some(path) => String::from_utf8(read(path)?)
                .with_context(|| format!("{} is not UTF-8", path.display()))?
                .lines()
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        };
        cases.push(TestCase {
            name: name.clone(),
            stdin: parts
                .input
                .as_deref()
                .map(read)
                .transpose()?
                .unwrap_or_default(),
            args,
            expected_output: parts
                .output
                .as_ref()
                .or(parts.answer.as_ref())
                .map(|p| read(p))
                .transpose()?,
            ..TestCase::default()
        });
    }
    Ok((cases, warnings))
}

/// Sorts `test10` after `test9`: digit runs compare as numbers.
fn natural_key(name: &str) -> Vec<(u8, u128, String)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits > 0 {
            let (number, tail) = rest.split_at(digits);
            key.push((0, number.parse().unwrap_or(u128::MAX), String::new()));
            rest = tail;
        } else {
            let text = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (word, tail) = rest.split_at(text);
            key.push((1, 0, word.to_string()));
            rest = tail;
        }
    }
    key
}

/// Why a test failed, in one line: the first line of what the checker (or
/// interactor) said, else of a crashed run's stderr.
fn why(test: &runbox_engine::TestResult) -> String {
    let first_line = |text: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_string()
    };
    match &test.comment {
        Some(comment) => first_line(comment),
        None if test.verdict == ResultStatus::RuntimeError => {
            first_line(&String::from_utf8_lossy(&test.run.stderr))
        }
        None => String::new(),
    }
}

/// memcheck's findings under a test's row: one line each, at the user's line.
fn print_memcheck(width: usize, report: &runbox_engine::MemcheckReport) -> anyhow::Result<()> {
    if report.findings.is_empty() {
        outln!("{:<width$}  memcheck: clean", "");
        return Ok(());
    }
    for finding in &report.findings {
        let place = match (&finding.file, finding.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: "),
            _ => String::new(),
        };
        outln!("{:<width$}  memcheck: {place}{}", "", finding.what);
    }
    Ok(())
}

/// The compile line, a table of the tests, and a summary.
fn print_report(result: &RunResult) -> anyhow::Result<()> {
    let language = match &result.version {
        Some(version) => format!("{} {version}", result.language),
        None => result.language.clone(),
    };
    if let Some(compile) = &result.compile {
        let how = if compile.cached {
            "cached".to_string()
        } else {
            format!("cpu {}", millis(compile.cpu_time))
        };
        outln!("compile: {language} · {} · {how}", compile.status);
        if result.status == ResultStatus::CompileError {
            out!("{}", String::from_utf8_lossy(&compile.stdout));
            out!("{}", String::from_utf8_lossy(&compile.stderr));
            outln!("compile_error");
            return Ok(());
        }
    }
    let tests = result.tests.as_deref().unwrap_or_default();
    let width = tests.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    outln!(
        "{:<width$}  {:<22}  {:>10}  {:>10}  {:>10}  comment",
        "test",
        "verdict",
        "cpu",
        "wall",
        "memory"
    );
    for test in tests {
        let verdict = match (&test.run.signal, test.run.exit_code) {
            _ if test.verdict != ResultStatus::RuntimeError => test.verdict.to_string(),
            (Some(signal), _) => format!("runtime_error ({signal})"),
            (None, Some(code)) => format!("runtime_error (exit {code})"),
            (None, None) => test.verdict.to_string(),
        };
        let comment = why(test);
        outln!(
            "{:<width$}  {:<22}  {:>10}  {:>10}  {:>10}  {comment}",
            test.name,
            verdict,
            millis(test.run.cpu_time),
            millis(test.run.wall_time),
            kib(test.run.memory_kb)
        );
        if let Some(report) = &test.memcheck {
            print_memcheck(width, report)?;
        }
    }
    let passed = result.passed.unwrap_or(0);
    let mut summary = format!("{}: {passed}/{} passed", result.status, tests.len());
    if let Some(score) = result
        .score
        .filter(|_| tests.iter().any(|t| t.verdict == ResultStatus::Partial))
    {
        summary.push_str(&format!(" · score {score}"));
    }
    if let Some(failed) = result.failed_tests.as_ref().filter(|f| !f.is_empty()) {
        summary.push_str(&format!(" · failed: {}", failed.join(", ")));
    }
    if let Some(timing) = &result.timing {
        summary.push_str(&format!(
            " · cpu time: {}{}",
            timing.cpu_time,
            if timing.pinned { ", pinned" } else { "" }
        ));
    }
    outln!("{summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_flags_parse_with_their_epsilon_or_file() {
        assert!(matches!(
            parse_checker("lines").unwrap(),
            Parsed::Builtin(Checker::Lines)
        ));
        assert!(matches!(
            parse_checker("float:1e-9").unwrap(),
            Parsed::Builtin(Checker::Float { epsilon }) if epsilon == 1e-9
        ));
        assert!(matches!(
            parse_checker("float").unwrap(),
            Parsed::Builtin(Checker::Float { epsilon }) if epsilon == DEFAULT_EPSILON
        ));
        assert!(
            matches!(parse_checker("custom:check.py").unwrap(), Parsed::Custom(p) if p == Path::new("check.py"))
        );
        assert!(parse_checker("float:abc").is_err());
        assert!(parse_checker("float:-1").is_err());
        assert!(parse_checker("fuzzy").is_err());
        assert!(parse_checker("custom:").is_err());
    }

    #[test]
    fn tests_are_read_in_natural_order_with_out_or_ans() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("10.in", "ten"),
            ("10.out", "10"),
            ("2.in", "two"),
            ("2.ans", "2"),
            ("b.args", "x\ny z"),
            ("orphan.out", "x"),
            ("README", "not a test"),
        ] {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let (tests, warnings) = read_tests(dir.path()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["2", "10", "b"]);
        assert_eq!(tests[0].expected_output.as_deref(), Some(&b"2"[..]));
        assert_eq!(tests[1].stdin, b"ten");
        assert_eq!(tests[2].args, ["x", "y z"]);
        assert_eq!(tests[2].expected_output, None);
    }

    #[test]
    fn an_answer_file_with_an_unknown_extension_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("a.in", "1"),
            ("a.expected", "2"),
            ("b.in", "1"),
            ("b.out", "2"),
            ("b.txt", "notes"),
        ] {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let (tests, warnings) = read_tests(dir.path()).unwrap();
        assert_eq!(tests[0].expected_output, None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("test a has no expected output:")
                && warnings[0].contains("a.expected is not read (name it a.out or a.ans)"),
            "{}",
            warnings[0]
        );
    }
}
