//! The runtime store and Debian runtimes: sharing, atomicity, verification,
//! leases; and a box on a trixie runtime runs trixie's Python, not the host's.
//!
//! The Debian runtime is built once (about a minute on a cold cache) into a
//! store under `<target>/tmp/test-runtimes/store` and reused by later runs.
//! Without mmdebstrap or network its tests fail with the reason.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runbox_engine::runtime::{Runtime, RuntimeError, RuntimeSource, RuntimeStore};
use runbox_sandbox::{BoxConfig, Sandbox, SandboxOptions, Status};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 4,
            uid_base: 2_100_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

/// A source for runtimes made by hand in these tests.
fn source() -> RuntimeSource {
    RuntimeSource::Debian {
        suite: "test".into(),
        packages: vec![],
    }
}

/// When the packages of every test runtime were built.
const PACKAGED: SystemTime = UNIX_EPOCH;

/// Stores a small hand-made tree as `name`: `usr/bin/tool` with `tool`, and
/// `usr/share/common` the same in every runtime (content and time, as one
/// package's file is).
fn add_small(store: &RuntimeStore, name: &str, tool: &str) -> Result<Runtime, RuntimeError> {
    add_common_from(store, name, tool, PACKAGED)
}

/// [`add_small`] with `usr/share/common` modified at `modified`.
fn add_common_from(
    store: &RuntimeStore,
    name: &str,
    tool: &str,
    modified: SystemTime,
) -> Result<Runtime, RuntimeError> {
    let tool = tool.to_string();
    store.add(name, source(), &mut |_| {}, move |root, _| {
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr/share")).unwrap();
        std::fs::write(root.join("usr/bin/tool"), tool).unwrap();
        let common = root.join("usr/share/common");
        std::fs::write(&common, "the same everywhere\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&common)
            .and_then(|f| f.set_modified(modified))
            .unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        Ok(())
    })
}

fn store() -> (tempfile::TempDir, RuntimeStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RuntimeStore::open(dir.path().join("runtimes")).unwrap();
    (dir, store)
}

#[test]
fn identical_files_of_two_runtimes_are_stored_once() {
    let (_dir, store) = store();
    let one = add_small(&store, "one", "first\n").unwrap();
    let two = add_small(&store, "two", "second\n").unwrap();
    let inode = |r: &Runtime, p: &str| std::fs::metadata(r.root.join(p)).unwrap().ino();
    assert_eq!(
        inode(&one, "usr/share/common"),
        inode(&two, "usr/share/common")
    );
    assert_ne!(inode(&one, "usr/bin/tool"), inode(&two, "usr/bin/tool"));
    assert_eq!(two.manifest.new_bytes, "second\n".len() as u64);
    assert_ne!(one.manifest.digest, two.manifest.digest);
}

#[test]
fn a_file_of_the_same_content_but_another_time_keeps_its_own_time() {
    // Guile, Racket and Python decide from these times whether their compiled
    // files are stale: a source that took another runtime's newer time made
    // trixie's Guile and Racket recompile their libraries at every start.
    let (_dir, store) = store();
    let older = PACKAGED + Duration::from_secs(1_700_000_000);
    let newer = older + Duration::from_secs(86_400);
    let sid = add_common_from(&store, "sid", "sid\n", newer).unwrap();
    let trixie = add_common_from(&store, "trixie", "trixie\n", older).unwrap();
    let modified = |r: &Runtime| {
        std::fs::metadata(r.root.join("usr/share/common"))
            .unwrap()
            .modified()
            .unwrap()
    };
    assert_eq!(modified(&sid), newer);
    assert_eq!(modified(&trixie), older);
}

#[test]
fn the_same_tree_has_the_same_digest_in_any_store() {
    let (_a, first) = store();
    let (_b, second) = store();
    let one = add_small(&first, "x", "same\n").unwrap();
    let other = add_small(&second, "y", "same\n").unwrap();
    assert_eq!(one.manifest.digest, other.manifest.digest);
    assert!(one.manifest.digest.starts_with("sha256:"));
}

#[test]
fn a_failed_build_leaves_nothing_under_its_name_nor_in_progress() {
    let (_dir, store) = store();
    let err = store
        .add("broken", source(), &mut |_| {}, |root, _| {
            std::fs::create_dir_all(root.join("usr")).unwrap();
            Err(RuntimeError::Network {
                what: "debian:test".into(),
                detail: "unreachable".into(),
            })
        })
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Network { .. }), "{err:?}");
    assert!(matches!(
        store.get("broken"),
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.dir().join(".tmp")).unwrap().count(),
        0
    );
}

#[test]
fn a_tree_without_usr_is_refused_as_unusable() {
    let (_dir, store) = store();
    let err = store
        .add("empty", source(), &mut |_| {}, |root, _| {
            std::fs::create_dir_all(root).unwrap();
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Unusable(_)), "{err:?}");
}

#[test]
fn what_an_interrupted_build_left_is_removed_when_the_store_opens() {
    let (dir, store) = store();
    // A build whose process is gone: pid 0 is never a process of ours.
    let left = store.dir().join(".tmp/0-interrupted-1/root/usr");
    std::fs::create_dir_all(&left).unwrap();
    RuntimeStore::open(dir.path().join("runtimes")).unwrap();
    assert!(!store.dir().join(".tmp/0-interrupted-1").exists());
}

#[test]
fn a_name_taken_is_refused() {
    let (_dir, store) = store();
    add_small(&store, "one", "a\n").unwrap();
    let err = add_small(&store, "one", "b\n").unwrap_err();
    assert!(matches!(err, RuntimeError::Exists { .. }), "{err:?}");
}

#[test]
fn verify_finds_a_file_changed_on_disk() {
    let (_dir, store) = store();
    let runtime = add_small(&store, "one", "original\n").unwrap();
    store.verify("one").unwrap();
    std::fs::write(runtime.root.join("usr/bin/tool"), "tampered\n").unwrap();
    let err = store.verify("one").unwrap_err();
    assert!(
        matches!(err, RuntimeError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn a_runtime_in_use_is_not_removed_until_its_lease_ends() {
    let (_dir, store) = store();
    add_small(&store, "one", "a\n").unwrap();
    let lease = store.lease("one").unwrap();
    let err = store.remove("one").unwrap_err();
    assert!(matches!(err, RuntimeError::InUse { .. }), "{err:?}");
    assert!(lease.root().join("usr/bin/tool").is_file());
    drop(lease);
    store.remove("one").unwrap();
    assert!(matches!(
        store.get("one"),
        Err(RuntimeError::NotFound { .. })
    ));
}

#[test]
fn gc_removes_only_objects_no_runtime_uses() {
    let (_dir, store) = store();
    add_small(&store, "one", "only in one\n").unwrap();
    let two = add_small(&store, "two", "only in two\n").unwrap();
    assert_eq!(store.gc().unwrap().objects, 0);
    store.remove("one").unwrap();
    let report = store.gc().unwrap();
    assert_eq!(
        (report.objects, report.bytes),
        (1, "only in one\n".len() as u64)
    );
    store.verify("two").unwrap();
    assert!(two.root.join("usr/share/common").is_file());
}

// ---- Debian runtimes (built with mmdebstrap, cached) ----

/// The test store of Debian runtimes, kept across runs.
fn debian_store() -> RuntimeStore {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-runtimes/store");
    RuntimeStore::open(dir).expect("the test runtime store opens")
}

/// trixie with python3, built once and reused. Panics with the reason when it
/// cannot be built.
fn trixie_python() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            debian_store()
                .ensure_debian("trixie-python3", "trixie", &["python3".into()], &mut |_| {})
                .unwrap_or_else(|e| panic!("cannot build the trixie runtime: {e}"))
                .root
        })
        .clone()
}

fn run_on_trixie(command: &[&str]) -> runbox_sandbox::Outcome {
    let store = debian_store();
    let root = trixie_python();
    let lease = store.lease("trixie-python3").unwrap();
    assert_eq!(lease.root(), root);
    SANDBOX
        .run(&BoxConfig::new(command.iter().copied()).with_runtime(lease.root()))
        .expect("the box runs")
}

#[test]
fn python_in_a_trixie_runtime_is_3_13_while_the_hosts_is_3_11() {
    let host = std::process::Command::new("/usr/bin/python3")
        .arg("--version")
        .output()
        .expect("the host has python3");
    assert!(
        String::from_utf8_lossy(&host.stdout).starts_with("Python 3.11."),
        "this test expects a bookworm host: {host:?}"
    );
    let o = run_on_trixie(&["python3", "--version"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert!(out.starts_with("Python 3.13."), "{out}");
}

#[test]
fn the_hosts_usr_is_not_visible_in_a_box_on_a_runtime() {
    // rustc and gcc are on this host (the build needs them) and not in the runtime.
    assert!(Path::new("/usr/bin/gcc").exists());
    let o = run_on_trixie(&[
        "/bin/sh",
        "-c",
        "for p in /usr/bin/gcc /usr/bin/rustc /usr/bin/psql; do test -e $p && echo $p; done; grep CODENAME /etc/os-release || grep CODENAME /usr/lib/os-release",
    ]);
    assert_eq!(
        (o.status, String::from_utf8_lossy(&o.stdout).as_ref()),
        (Status::Ok, "VERSION_CODENAME=trixie\n"),
        "{o:?}"
    );
}

#[test]
fn a_built_debian_runtime_is_stripped_and_verifies() {
    let root = trixie_python();
    let store = debian_store();
    let runtime = store.verify("trixie-python3").unwrap();
    assert_eq!(
        runtime.manifest.source,
        RuntimeSource::Debian {
            suite: "trixie".into(),
            packages: vec!["python3".into()]
        }
    );
    // Stripped trees keep no file there (empty directories stay: update-alternatives
    // needs man1 to exist).
    for stripped in ["usr/share/man", "usr/share/doc/python3/changelog.Debian.gz"] {
        let left = walkdir::WalkDir::new(root.join(stripped))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| !e.file_type().is_dir())
            .count();
        assert_eq!(left, 0, "{stripped} must hold no file");
    }
    assert_eq!(
        std::fs::read_dir(root.join("var/lib/apt/lists"))
            .unwrap()
            .count(),
        0
    );
    assert!(
        runtime.manifest.size_bytes < 200 << 20,
        "{:?}",
        runtime.manifest
    );
}

#[test]
fn hard_links_within_a_tree_are_stored_and_verify() {
    let (_dir, store) = store();
    let runtime = store
        .add("links", source(), &mut |_| {}, |root, _| {
            std::fs::create_dir_all(root.join("usr/bin")).unwrap();
            std::fs::write(root.join("usr/bin/perl"), "perl\n").unwrap();
            std::fs::hard_link(root.join("usr/bin/perl"), root.join("usr/bin/perl5.40")).unwrap();
            Ok(())
        })
        .unwrap();
    let names: Vec<_> = std::fs::read_dir(runtime.root.join("usr/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    store.verify("links").unwrap();
}
