//! Shared set-up for the sandbox's integration tests: one sandbox per test binary,
//! and attack programs compiled once from C source.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runbox_sandbox::{
    BindMount, BoxConfig, LauncherProgram, Limits, LiveIo, Outcome, Sandbox, SandboxOptions,
    Signaller, Stream, Terminal,
};

/// The host uid range boxes of the test sandbox use.
pub const UID_BASE: u32 = 1_700_000;
/// Slots of the test sandbox.
pub const MAX_BOXES: u32 = 64;

/// The launcher process the test sandbox starts, as the service does.
pub fn launcher() -> LauncherProgram {
    LauncherProgram::dedicated(env!("CARGO_BIN_EXE_runbox-box-launcher"))
}

/// The sandbox all tests of this binary share, as a service would: its boxes
/// are born in launcher processes.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxOptions {
            max_boxes: MAX_BOXES,
            uid_base: UID_BASE,
            launcher: Some(launcher()),
            ..SandboxOptions::default()
        })
        .expect("the sandbox must start on this host (run the tests as root)")
    })
}

/// A command to run on the host (gcc, mmdebstrap, a canary), built only once the
/// shared sandbox is up. On a pure cgroup v2 host the first sandbox moves this
/// process into its `runbox-supervisor` leaf, which it may do only while no
/// other process shares its cgroup: a child started earlier by a parallel test
/// (a compiler) would make it refuse. Children started later are born in the leaf.
pub fn host_command(program: &str) -> Command {
    sandbox();
    Command::new(program)
}

/// The host directory holding compiled attack programs, bound at /attacks.
pub fn programs_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("runbox-attacks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create attack dir");
        dir
    })
}

/// Compiles `source` (C) once as /attacks/`name` and returns its path inside the box.
pub fn program(name: &str, source: &str) -> String {
    static BUILT: OnceLock<Mutex<HashMap<String, ()>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if !built.contains_key(name) {
        let dir = programs_dir();
        let src = dir.join(format!("{name}.c"));
        std::fs::write(&src, source).unwrap();
        let out = host_command("gcc")
            .args(["-O1", "-pthread", "-o"])
            .arg(dir.join(name))
            .arg(&src)
            .output()
            .expect("gcc must be installed for the attack suite");
        assert!(
            out.status.success(),
            "gcc failed for {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        built.insert(name.to_string(), ());
    }
    format!("/attacks/{name}")
}

/// A box running the compiled attack `name` with `args`, the attack dir bound read-only.
pub fn attack(name: &str, source: &str, args: &[&str]) -> BoxConfig {
    let path = program(name, source);
    let command: Vec<String> = std::iter::once(path)
        .chain(args.iter().map(|s| s.to_string()))
        .collect();
    BoxConfig::new(command).with_bind(BindMount::read_only(programs_dir(), "/attacks"))
}

/// The Debian runtime of the `attacks_on_runtime` suite: bookworm's essential
/// packages plus sqlite3, built once with mmdebstrap and kept in
/// `<target>/tmp/test-runtimes/` for later runs (about 25 s and 110 MB on a cold
/// cache). Bookworm is the suite CI runs on, so the attack programs compiled here
/// find the glibc they were built against in the runtime. Panics with the reason
/// when it cannot be built (no mmdebstrap, no network): the suite never passes
/// without its runtime.
pub fn debian_runtime() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-runtimes");
        // The name changes with the recipe below, so a changed recipe rebuilds.
        let root = dir.join("bookworm-essential-sqlite3-v1");
        if root.join("usr").is_dir() {
            return root;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let partial = dir.join(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        let mut command = host_command("mmdebstrap");
        command.args(["--variant=essential", "--mode=root", "--include=sqlite3", "--quiet"]);
        for excluded in ["man", "doc", "info", "locale", "lintian"] {
            command.arg(format!("--dpkgopt=path-exclude=/usr/share/{excluded}/*"));
        }
        command.args(["bookworm"]).arg(&partial).arg("http://deb.debian.org/debian");
        let out = command.output().unwrap_or_else(|e| {
            panic!("cannot start mmdebstrap to build the test runtime ({e}): run scripts/install-deps.sh")
        });
        assert!(
            out.status.success(),
            "mmdebstrap could not build the test runtime (is deb.debian.org reachable?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another test binary may have finished the same build first: keep its tree.
        if std::fs::rename(&partial, &root).is_err() {
            std::fs::remove_dir_all(&partial).unwrap();
        }
        root
    })
}

/// Runs a box and fails the test on a runbox error.
pub fn run(config: &BoxConfig) -> Outcome {
    sandbox()
        .run(config)
        .unwrap_or_else(|e| panic!("box failed to run: {e}"))
}

/// Runs a shell script in a box.
pub fn sh(script: &str) -> Outcome {
    run(&BoxConfig::new(["/bin/sh", "-c", script]))
}

/// Default limits with changes.
pub fn limits(change: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    change(&mut l);
    l
}

/// stdout as text.
pub fn stdout(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Host pids of processes whose real uid belongs to the test sandbox's box range.
pub fn box_processes() -> Vec<u32> {
    let range = UID_BASE..UID_BASE + 2 * MAX_BOXES;
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if uid.is_some_and(|u| range.contains(&u)) {
            pids.push(pid);
        }
    }
    pids
}

/// `/bin/sh -c script` with 20 s of wall time: room for a test that types slowly.
/// A box running on its own thread, with its stdin pipe, its output as a
/// channel of chunks and a signaller.
pub struct LiveBox {
    pub stdin: Option<std::io::PipeWriter>,
    pub output: mpsc::Receiver<(Stream, Vec<u8>)>,
    pub signals: Signaller,
    pub done: std::thread::JoinHandle<Outcome>,
}

impl LiveBox {
    pub fn start(config: BoxConfig) -> LiveBox {
        LiveBox::start_on(config, None)
    }

    /// [`LiveBox::start`], its program on `terminal` when one is given (the
    /// config then has `with_tty`).
    pub fn start_on(config: BoxConfig, terminal: Option<Terminal>) -> LiveBox {
        let (reader, writer) = std::io::pipe().unwrap();
        let (chunks, output) = mpsc::channel();
        let signals = Signaller::new();
        let attached = signals.clone();
        let done = std::thread::spawn(move || {
            let mut forward = move |stream: Stream, data: &[u8], _deadline: Instant| {
                let _ = chunks.send((stream, data.to_vec()));
            };
            sandbox()
                .run_live(
                    &config,
                    LiveIo {
                        stdin: Some(OwnedFd::from(reader)),
                        stdout: None,
                        output: Some(&mut forward),
                        signals: Some(&attached),
                        terminal: terminal.as_ref(),
                    },
                )
                .unwrap_or_else(|e| panic!("box failed to run: {e}"))
        });
        LiveBox {
            stdin: Some(writer),
            output,
            signals,
            done,
        }
    }

    /// Reads chunks of `stream` until what arrived ends with `wanted`.
    pub fn expect(&self, stream: Stream, wanted: &str) {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&seen).ends_with(wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok((s, data)) if s == stream => seen.extend_from_slice(&data),
                Ok(_) => {}
                Err(e) => panic!(
                    "no {wanted:?} on {stream:?} ({e}); got {:?}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
    }

    pub fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }

    pub fn finish(mut self) -> Outcome {
        self.stdin = None;
        self.done.join().unwrap()
    }
}

pub fn shell_box(script: &str) -> BoxConfig {
    BoxConfig::new(["/bin/sh", "-c", script]).with_limits(limits(|l| {
        l.wall_time = Duration::from_secs(20);
    }))
}
