//! One language in several versions side by side: the host's Python and a
//! Debian trixie runtime's, chosen by exact version, prefix, range or default.
//! The runtime is built once (mmdebstrap) and kept under
//! `<target>/tmp/test-runtimes/store`, shared with the runtime tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runbox_engine::runtime::{RuntimeSource, RuntimeStore};
use runbox_engine::{
    Catalog, Engine, EngineConfig, Failure, Job, JobError, ResultStatus, SourceFile,
};
use runbox_sandbox::{Sandbox, SandboxOptions};

/// The runtime the test's catalog entry names: trixie with python3.
const RUNTIME: &str = "trixie-python3";

fn store_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-runtimes/store")
}

/// The store with the trixie runtime in it, built when missing.
fn store_with_trixie() -> PathBuf {
    RuntimeStore::open(store_dir())
        .and_then(|store| store.ensure_debian(RUNTIME, "trixie", &["python3".into()], &mut |_| {}))
        .unwrap_or_else(|e| {
            panic!("cannot build the trixie runtime (network to deb.debian.org?): {e}")
        });
    store_dir()
}

/// An engine whose catalog has the host's Python and trixie's.
fn engine() -> Engine {
    engine_on(store_with_trixie())
}

/// An engine whose catalog has the host's Python and trixie's, the latter
/// looked up in the store in `runtimes`.
fn engine_on(runtimes: PathBuf) -> Engine {
    let languages = tempfile::tempdir().unwrap();
    std::fs::write(
        languages.path().join("python@trixie.toml"),
        format!("id = \"python\"\nruntime = \"{RUNTIME}\"\npackages = [\"python3\"]\n"),
    )
    .unwrap();
    let catalog = Catalog::load(Some(languages.path())).unwrap();
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 4,
        ..SandboxOptions::default()
    })
    .unwrap();
    let config = EngineConfig {
        runtimes: Some(runtimes),
        ..EngineConfig::default()
    };
    Engine::new(Arc::new(sandbox), catalog, config)
}

fn version_job(version: Option<&str>) -> Job {
    Job {
        language: "python".into(),
        version: version.map(str::to_string),
        files: vec![SourceFile::unnamed(
            "import sys; print('%d.%d' % sys.version_info[:2])",
        )],
        ..Job::default()
    }
}

fn ran(engine: &Engine, version: Option<&str>) -> (String, String) {
    let result = engine.check_and_run(&version_job(version)).unwrap();
    assert_eq!(result.status, ResultStatus::Ok, "{result:?}");
    let printed = String::from_utf8_lossy(&result.run.unwrap().stdout)
        .trim()
        .to_string();
    (printed, result.version.unwrap_or_default())
}

#[test]
fn both_versions_are_listed_each_detected_in_its_own_tree() {
    let engine = engine();
    let pythons: Vec<_> = engine
        .installations()
        .into_iter()
        .filter(|(l, i)| l.id == "python" && i.is_installed())
        .map(|(l, i)| {
            (
                l.variant().to_string(),
                i.version().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(pythons.len(), 2, "{pythons:?}");
    assert!(
        pythons
            .iter()
            .any(|(v, ver)| v == "host" && ver.starts_with("3.11")),
        "{pythons:?}"
    );
    assert!(
        pythons
            .iter()
            .any(|(v, ver)| v == RUNTIME && ver.starts_with("3.13")),
        "{pythons:?}"
    );
}

#[test]
fn a_version_is_chosen_by_prefix_range_or_exactly() {
    let engine = engine();
    assert_eq!(ran(&engine, Some("3.13")).0, "3.13");
    assert_eq!(ran(&engine, Some("3.11")).0, "3.11");
    assert_eq!(ran(&engine, Some(">=3.12")).0, "3.13");
    assert_eq!(ran(&engine, Some("<3.12")).0, "3.11");
    let (_, exact) = ran(&engine, Some("3.11"));
    assert_eq!(ran(&engine, Some(&exact)).0, "3.11");
}

#[test]
fn without_a_version_the_newest_installed_runs() {
    let engine = engine();
    let (printed, version) = ran(&engine, None);
    assert_eq!(printed, "3.13");
    assert!(version.starts_with("3.13"), "{version}");
}

#[test]
fn a_version_no_runtime_has_is_refused_naming_the_installed_ones() {
    let engine = engine();
    match engine.check_and_run(&version_job(Some("3.12"))) {
        Err(Failure::Job(JobError::VersionUnavailable { installed, .. })) => {
            assert!(
                installed.contains("3.13") && installed.contains("3.11"),
                "{installed}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_runtime_added_or_removed_while_the_engine_runs_is_seen_without_a_restart() {
    let trixie = RuntimeStore::open(store_with_trixie())
        .unwrap()
        .get(RUNTIME)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = RuntimeStore::open(dir.path().join("runtimes")).unwrap();
    let engine = engine_on(store.dir().to_path_buf());
    let unavailable = |engine: &Engine| {
        matches!(
            engine.check(version_job(Some("3.13"))),
            Err(JobError::VersionUnavailable { .. })
        )
    };
    assert!(unavailable(&engine), "no runtime is installed yet");

    let source = RuntimeSource::Debian {
        suite: "trixie".into(),
        packages: vec!["python3".into()],
    };
    store
        .add(RUNTIME, source, &mut |_| {}, |root, _| {
            let copied = std::process::Command::new("cp")
                .arg("-a")
                .arg(&trixie.root)
                .arg(root)
                .status()
                .unwrap();
            assert!(copied.success(), "cp -a of the trixie tree failed");
            Ok(())
        })
        .unwrap();
    // The engine looks at the store at most once a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(ran(&engine, Some("3.13")).0, "3.13");

    store.remove(RUNTIME).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(
        unavailable(&engine),
        "the removed runtime is no longer offered"
    );
    assert_eq!(ran(&engine, None).0, "3.11", "the host's Python remains");
}
