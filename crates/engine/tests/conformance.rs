//! The conformance suite: every catalog language runs its programs of
//! `languages/tests/<id>/` through the engine, and stdout, exit code and status
//! are checked exactly.
//!
//! A language that is not installed is skipped, except a core one: CI installs
//! those (`scripts/install-languages.sh --core`), so a missing core language fails.
//! `RUNBOX_CONFORMANCE=python,java` limits the run to those languages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use runbox_engine::{
    Catalog, Engine, EngineConfig, Installation, Job, Language, ResultStatus, SourceFile,
};
use runbox_sandbox::{Sandbox, SandboxOptions};

const STDIN: &str = "line one\nline two\n\n  spaced  \n";
const ARGS: &[&str] = &["one", "two words", "3"];

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../languages/tests")
}

/// The program of `dir` whose file stem is `stem`, if there is one.
fn program(dir: &Path, stem: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_stem().is_some_and(|s| s == stem) && p.extension().is_some())
}

/// The programs a language must have.
fn required(language: &Language) -> Vec<&'static str> {
    let mut stems = vec!["hello", "echo", "exit3"];
    if language.accepts_args {
        stems.push("args");
    }
    if language.is_compiled() {
        stems.push("compile_error");
    }
    stems
}

fn selected(catalog: &Catalog) -> Vec<Arc<Language>> {
    let only: Option<Vec<String>> = std::env::var("RUNBOX_CONFORMANCE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    catalog
        .languages()
        .iter()
        .filter(|l| only.as_ref().is_none_or(|o| o.contains(&l.id)))
        .cloned()
        .collect()
}

#[test]
fn every_language_has_its_conformance_programs() {
    let catalog = Catalog::embedded().unwrap();
    let mut missing = Vec::new();
    for language in catalog.languages() {
        let dir = tests_dir().join(&language.id);
        for stem in required(language) {
            if program(&dir, stem).is_none() {
                missing.push(format!("{}/{stem}.*", language.id));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing conformance programs: {missing:?}"
    );
}

/// Runs one program and says what is wrong with its result, if anything.
fn check(engine: &Engine, language: &Language, path: &Path, stem: &str) -> Option<String> {
    let name = path.file_name()?.to_str()?.to_string();
    let content = std::fs::read(path).ok()?;
    let mut job = Job {
        language: language.id.clone(),
        runtime: Some(language.variant().to_string()),
        files: vec![SourceFile::named(name, content)],
        ..Job::default()
    };
    let (want_stdout, want_status, want_code) = match stem {
        "hello" => ("Hello, World!\n", ResultStatus::Ok, Some(0)),
        "echo" => {
            job.stdin = STDIN.as_bytes().to_vec();
            (STDIN, ResultStatus::Ok, Some(0))
        }
        "args" => {
            job.args = ARGS.iter().map(|s| s.to_string()).collect();
            ("one\ntwo words\n3\n", ResultStatus::Ok, Some(0))
        }
        "exit3" => ("", ResultStatus::RuntimeError, Some(3)),
        "compile_error" => ("", ResultStatus::CompileError, None),
        _ => unreachable!("unknown program {stem}"),
    };
    let result = match engine.check_and_run(&job) {
        Ok(result) => result,
        Err(err) => return Some(format!("{}/{stem}: error: {err}", language.id)),
    };
    let stage = result.last_stage();
    let got_stdout = result
        .run
        .as_ref()
        .map(|r| String::from_utf8_lossy(&r.stdout).into_owned())
        .unwrap_or_default();
    let got_code = result.run.as_ref().and_then(|r| r.exit_code);
    let wrong = result.status != want_status
        || got_stdout != want_stdout
        || (want_code.is_some() && got_code != want_code);
    wrong.then(|| {
        let stderr = stage
            .map(|s| String::from_utf8_lossy(&s.stderr).chars().take(600).collect::<String>())
            .unwrap_or_default();
        format!(
            "{}/{stem}: status {} (want {want_status}), exit {got_code:?} (want {want_code:?}), stdout {got_stdout:?} (want {want_stdout:?}), stderr: {stderr}",
            language.id, result.status
        )
    })
}

#[test]
fn every_installed_language_passes_its_conformance_programs() {
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 4,
        uid_base: 1_900_000,
        ..SandboxOptions::default()
    })
    .unwrap();
    let catalog = Catalog::embedded().unwrap();
    let languages = selected(&catalog);
    // The runtimes `scripts/install-languages.sh --all` built (in the default
    // data directory, or RUNBOX_DATA_DIR's): each of their languages is tested too.
    let runtimes = std::env::var_os("RUNBOX_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/lib/runbox".into())
        .join("runtimes");
    let config = EngineConfig {
        runtimes: runtimes.is_dir().then_some(runtimes),
        ..EngineConfig::default()
    };
    let engine = Engine::new(Arc::new(sandbox), catalog, config);
    let languages: Vec<_> = languages
        .iter()
        .map(|l| {
            engine
                .catalog()
                .variants(&l.id)
                .ok()
                .and_then(|v| v.into_iter().find(|x| x.variant() == l.variant()).cloned())
                .unwrap_or_else(|| l.clone())
        })
        .collect();
    let failures = Mutex::new(Vec::new());
    let skipped = Mutex::new(Vec::new());
    let tested = Mutex::new(Vec::new());
    let programs = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(language) = languages.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let installation = engine.installation(language);
                    match &installation {
                        Installation::Installed { .. } => {}
                        Installation::Missing { missing }
                            if !language.core || language.runtime.is_some() =>
                        {
                            skipped.lock().unwrap().push(format!(
                                "{}@{} ({missing})",
                                language.id,
                                language.variant()
                            ));
                            continue;
                        }
                        other => {
                            failures.lock().unwrap().push(format!(
                                "{}: {other:?}{}",
                                language.id,
                                if language.core {
                                    " — a core language: run scripts/install-languages.sh --core"
                                } else {
                                    ""
                                }
                            ));
                            continue;
                        }
                    }
                    let dir = tests_dir().join(&language.id);
                    for stem in required(language) {
                        let Some(path) = program(&dir, stem) else {
                            continue; // Reported by every_language_has_its_conformance_programs.
                        };
                        programs.fetch_add(1, Ordering::Relaxed);
                        if let Some(failure) = check(&engine, language, &path, stem) {
                            failures.lock().unwrap().push(failure);
                        }
                    }
                    tested.lock().unwrap().push(format!(
                        "{} {} ({})",
                        language.id,
                        installation.version().unwrap_or("?"),
                        language.variant()
                    ));
                }
            });
        }
    });
    let mut tested = tested.into_inner().unwrap();
    let mut skipped = skipped.into_inner().unwrap();
    tested.sort();
    skipped.sort();
    let summary = format!(
        "conformance: {} languages tested ({} programs), {} skipped (not installed)\n  tested: {}\n  skipped: {}\n",
        tested.len(),
        programs.load(Ordering::Relaxed),
        skipped.len(),
        tested.join(", "),
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        }
    );
    eprint!("{summary}");
    // cargo test hides a passing test's output: scripts/test.sh prints this file.
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-summary.txt");
    std::fs::write(&file, &summary).unwrap();
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
