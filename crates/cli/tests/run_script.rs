//! `scripts/run.sh`: it installs once, builds only when a source changed, and runs
//! runbox in the caller's directory, so `scripts/run.sh run hello.py` works from
//! anywhere.
//!
//! The script runs in a copy of the checkout's layout whose install scripts and
//! `cargo` are stand-ins that record each call: the test checks the script's own
//! decisions without apt and without a release build (CI builds debug only).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// A checkout layout around the real `scripts/run.sh`, with stand-ins.
struct Layout {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    bin: PathBuf,
    calls: PathBuf,
    /// Where the caller stands: not the checkout.
    caller: PathBuf,
}

fn write_executable(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
    fs::write(path, text).expect("a file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("executable");
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().expect("a directory");
        let repo = dir.path().join("checkout");
        let bin = dir.path().join("bin");
        let calls = dir.path().join("calls");
        let caller = dir.path().join("elsewhere");
        fs::create_dir_all(&caller).expect("the caller's directory");
        fs::write(caller.join("hello.py"), "print('hi')\n").expect("a file");
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/run.sh");
        write_executable(
            &repo.join("scripts/run.sh"),
            &fs::read_to_string(real).expect("scripts/run.sh"),
        );
        let record =
            |what: &str| format!("#!/bin/sh\necho \"{what} $*\" >>'{}'\n", calls.display());
        write_executable(
            &repo.join("scripts/install-deps.sh"),
            &record("install-deps"),
        );
        write_executable(
            &repo.join("scripts/install-languages.sh"),
            &record("install-languages"),
        );
        // cargo "builds" a runbox that says where it runs and with what.
        let built = dir.path().join("built-runbox");
        write_executable(&built, "#!/bin/sh\necho \"cwd=$(pwd) args=$*\"\n");
        let runbox = repo.join("target/release/runbox");
        write_executable(
            &bin.join("cargo"),
            &format!(
                "#!/bin/sh\necho \"cargo $*\" >>'{}'\nmkdir -p '{}'\ncp '{}' '{}'\n",
                calls.display(),
                runbox.parent().expect("a parent").display(),
                built.display(),
                runbox.display(),
            ),
        );
        fs::create_dir_all(repo.join("languages")).expect("languages");
        fs::write(repo.join("languages/python.toml"), "id = \"python\"\n").expect("a file");
        fs::write(repo.join("Cargo.toml"), "[workspace]\n").expect("a file");
        fs::write(repo.join("Cargo.lock"), "").expect("a file");
        fs::create_dir_all(repo.join("crates/cli/src")).expect("crates");
        fs::write(repo.join("crates/cli/src/main.rs"), "fn main() {}\n").expect("a file");
        Layout {
            _dir: dir,
            repo,
            bin,
            calls,
            caller,
        }
    }

    /// `scripts/run.sh ARGS` from the caller's directory; its stdout, and the
    /// calls of the stand-ins it made.
    fn run(&self, args: &[&str]) -> (String, Vec<String>) {
        let _ = fs::remove_file(&self.calls);
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(self.repo.join("scripts/run.sh"))
            .args(args)
            .current_dir(&self.caller)
            .env("PATH", path)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("bash runs scripts/run.sh");
        assert!(
            out.status.success(),
            "scripts/run.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = fs::read_to_string(&self.calls).unwrap_or_default();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            calls.lines().map(|l| l.trim().to_string()).collect(),
        )
    }

    /// Marks `file` (in the checkout) as changed after the last build.
    fn touch_later(&self, file: &str) {
        let now = SystemTime::now();
        let set = |path: PathBuf, time: SystemTime| {
            fs::File::options()
                .append(true)
                .open(path)
                .and_then(|f| f.set_modified(time))
                .expect("an mtime");
        };
        set(
            self.repo.join("target/release/runbox"),
            now - Duration::from_secs(10),
        );
        set(self.repo.join(file), now - Duration::from_secs(5));
    }
}

#[test]
fn the_first_call_installs_and_builds_then_runs_in_the_callers_directory() {
    let layout = Layout::new();
    let (out, calls) = layout.run(&["run", "hello.py"]);
    assert_eq!(
        out,
        format!("cwd={} args=run hello.py", layout.caller.display())
    );
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0], "install-deps");
    assert_eq!(calls[1], "install-languages --core");
    assert!(
        calls[2].starts_with("cargo build --release --quiet --manifest-path")
            && calls[2].ends_with("-p runbox"),
        "{calls:?}"
    );
}

#[test]
fn later_calls_neither_install_nor_build_when_nothing_changed() {
    let layout = Layout::new();
    layout.run(&["doctor"]);
    let (out, calls) = layout.run(&["run", "hello.py"]);
    assert!(calls.is_empty(), "{calls:?}");
    assert!(out.ends_with("args=run hello.py"), "{out}");
    let (out, calls) = layout.run(&[]);
    assert!(calls.is_empty(), "{calls:?}");
    assert!(out.ends_with("args=serve"), "no arguments serve: {out}");
}

#[test]
fn a_changed_source_is_built_again_without_installing() {
    let layout = Layout::new();
    layout.run(&["doctor"]);
    layout.touch_later("crates/cli/src/main.rs");
    let (_, calls) = layout.run(&["doctor"]);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].starts_with("cargo build"), "{calls:?}");
    let (_, calls) = layout.run(&["doctor"]);
    assert!(calls.is_empty(), "built once per change: {calls:?}");
}

#[test]
fn a_changed_install_script_or_catalog_installs_again() {
    let layout = Layout::new();
    layout.run(&["doctor"]);
    fs::write(
        layout.repo.join("languages/ruby.toml"),
        "id = \"ruby\"\ncore = true\n",
    )
    .expect("a file");
    let (_, calls) = layout.run(&["doctor"]);
    assert_eq!(calls[..2], ["install-deps", "install-languages --core"]);
}
