//! runbox-sandbox: run one command in a fresh, isolated, limited box and measure it.
//!
//! A box is a short-lived Linux container built for one run: new user, PID, mount,
//! IPC, UTS and cgroup namespaces, an empty network namespace, a tmpfs root with
//! read-only system directories, a cgroup that limits and measures the whole box,
//! dropped capabilities, `no_new_privs` and a seccomp filter. The program runs as an
//! unprivileged user under an init process that reaps it; when it ends or hits a
//! limit, everything in the box is killed and removed.
//!
//! This crate knows nothing of languages, HTTP or databases: it runs a command.
//!
//! ```no_run
//! use runbox_sandbox::{BoxConfig, Sandbox, SandboxOptions, Status};
//!
//! let sandbox = Sandbox::new(SandboxOptions::default())?;
//! let outcome = sandbox.run(&BoxConfig::new(["sh", "-c", "echo hi"]))?;
//! assert_eq!(outcome.status, Status::Ok);
//! assert_eq!(outcome.stdout, b"hi\n");
//! # Ok::<(), runbox_sandbox::Error>(())
//! ```
//!
//! The details live one file away: [`config`] (what a box looks like), `mounts` (its
//! root), `system` (the host's /usr or a runtime's under it), `namespaces`, `cgroup` (v1 and v2), `seccomp`, `init` (the box's PID 1),
//! `run` (the supervisor's side of one run) and [`outcome`] (what is measured).

mod cgroup;
pub mod config;
mod confinement;
pub mod doctor;
mod error;
pub mod files;
mod init;
mod lasting;
mod launcher;
pub mod live;
mod mounts;
mod namespaces;
pub mod network;
pub mod outcome;
mod run;
mod seccomp;
mod sys;
mod system;
mod teardown;
mod trace;
pub mod tty;
mod volume;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub use config::{BindMount, BoxConfig, Limits, SYSTEM_PATH_ROOTS, is_system_path};
pub use error::{Error, Result};
pub use launcher::{
    LAUNCHER_ARGUMENT, LauncherProgram, run_box_launcher, run_box_launcher_ending_after_each_clone,
};
pub use live::{LiveIo, OutputChunk, OutputSink, Signaller, Stream};
pub use network::NetworkOptions;
pub use outcome::{LimitHit, MEMORY_SLACK_BYTES, MEMORY_SLACK_KB, Outcome, Status};
pub use system::check_runtime;
pub use tty::{Terminal, TerminalSize};
pub use volume::Volume;

use cgroup::CgroupManager;
use namespaces::Slots;
use seccomp::SeccompPolicy;

/// Host-wide settings of a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// A directory for the sandbox's own state (the empty mount point of box roots).
    pub state_dir: PathBuf,
    /// How many boxes may run at once; more callers wait for a free slot.
    pub max_boxes: u32,
    /// The first host uid of the range given to boxes (two per box slot).
    pub uid_base: u32,
    /// Refuse to start without a usable cgroup hierarchy (memory limits and whole-box
    /// CPU accounting need one). When false, limits fall back to rlimits.
    pub require_cgroups: bool,
    /// Outbound network for boxes that ask for it ([`BoxConfig::with_network`]);
    /// `None`, the default: no box has any network.
    pub network: Option<NetworkOptions>,
    /// For a process that runs a box or a few and exits (a command line): hold
    /// `max_boxes` numbered slots shared with other such processes, whose cgroups
    /// and empty network namespaces outlive each process, instead of making and
    /// removing its own (like isolate's box ids). Waits while all 64 are held.
    pub one_shot: bool,
    /// Report a single-process program's own memory peak, exact to the page,
    /// by tracing it (see docs/judging.md, "The memory figure"); otherwise
    /// every figure is the box cgroup's. On by default.
    pub trace_program_memory: bool,
    /// Clone boxes in a launcher process per slot, started from this program,
    /// instead of from a thread of this process (see docs/benchmarks-box-birth.md).
    /// A long-lived, many-threaded service wants one: no box is then a copy of
    /// its memory. `None`, the default, suits a command that runs a box or two.
    pub launcher: Option<LauncherProgram>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            state_dir: default_state_dir(),
            max_boxes: 64,
            uid_base: 1_500_000,
            require_cgroups: true,
            network: None,
            one_shot: false,
            trace_program_memory: true,
            launcher: None,
        }
    }
}

/// Where the sandbox keeps its state unless told otherwise.
fn default_state_dir() -> PathBuf {
    if Path::new("/run").is_dir() {
        PathBuf::from("/run/runbox")
    } else {
        std::env::temp_dir().join("runbox")
    }
}

/// The host side of runbox's boxes: prepared once, then [`Sandbox::run`] any number
/// of times, from any number of threads.
pub struct Sandbox {
    shared: Arc<Shared>,
    /// Buries finished boxes in the background; dropping it waits for all of them,
    /// and it holds its own reference to `shared`, so cgroups outlive their boxes.
    reaper: teardown::Reaper,
}

/// What every box of a sandbox shares, also held by the reaper thread.
pub(crate) struct Shared {
    cgroups: Option<CgroupManager>,
    seccomp: SeccompPolicy,
    slots: Slots,
    root_dir: PathBuf,
    host_layout: mounts::HostLayout,
    cap_last: u32,
    volumes_dir: PathBuf,
    network: Option<network::Network>,
    /// How many slots there are.
    max_boxes: u32,
    /// [`SandboxOptions::trace_program_memory`].
    trace_program_memory: bool,
    /// Held while a pair of boxes takes its two slots (see `run::run_pair`).
    pair_turn: std::sync::Mutex<()>,
    /// What starts the slots' launcher processes, if boxes are born in them.
    /// Dropped after the slots (their launchers), and its thread last of all:
    /// the boxes' inits are that thread's children.
    launcher: Option<launcher::Starter>,
}

impl Drop for Shared {
    /// Stops the slots' launchers, then hands their cgroups back so the
    /// manager can remove them.
    fn drop(&mut self) {
        for mut slot in self.slots.drain() {
            slot.launcher = None;
            if let (Some(cg), Some(manager)) = (slot.cgroup.take(), &self.cgroups) {
                manager.release(cg);
            }
        }
    }
}

impl Sandbox {
    /// Checks the host and prepares what every box shares: the cgroup parent, the
    /// compiled seccomp filter, the uid slots.
    pub fn new(options: SandboxOptions) -> Result<Sandbox> {
        if options.max_boxes == 0 {
            return Err(Error::InvalidConfig("max_boxes must be at least 1".into()));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::InvalidConfig(
                "runbox must run as root to create boxes (it drops to an unprivileged uid inside each box); run `runbox doctor` for details".into(),
            ));
        }
        let root_dir = mounts::root_mountpoint(&options.state_dir);
        std::fs::create_dir_all(&root_dir).map_err(|e| Error::io("cannot create", &root_dir, e))?;
        let meta = std::fs::symlink_metadata(&root_dir)
            .map_err(|e| Error::io("cannot stat", &root_dir, e))?;
        if !meta.is_dir() {
            return Err(Error::InvalidConfig(format!(
                "{} must be a directory",
                root_dir.display()
            )));
        }
        let (cgroups, slots) = if options.one_shot {
            let held = lasting::take(&options.state_dir, options.max_boxes)?;
            (
                CgroupManager::detect_lasting(lasting::LASTING_GROUP)?,
                Slots::lasting(held, options.uid_base),
            )
        } else {
            // Unique per sandbox, so that several in one process never share a cgroup.
            static INSTANCES: AtomicU32 = AtomicU32::new(0);
            let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
            let group = format!("runbox-{}-{instance}", std::process::id());
            (
                CgroupManager::detect(&group)?,
                Slots::new(options.max_boxes, options.uid_base),
            )
        };
        if cgroups.is_none() && options.require_cgroups {
            return Err(Error::Cgroup(
                "no writable cgroup hierarchy with memory, pids and cpu accounting below this process's cgroup; run `runbox doctor`".into(),
            ));
        }
        let network = options.network.map(network::Network::prepare).transpose()?;
        let shared = Shared {
            cgroups,
            seccomp: SeccompPolicy::new()?,
            slots,
            root_dir,
            host_layout: mounts::HostLayout::detect(&options.state_dir)?,
            cap_last: namespaces::last_capability(),
            volumes_dir: volume::prepare_dir(&options.state_dir)?,
            network,
            max_boxes: options.max_boxes,
            trace_program_memory: options.trace_program_memory,
            pair_turn: std::sync::Mutex::new(()),
            launcher: options.launcher.map(launcher::Starter::new).transpose()?,
        };
        let reaper = teardown::Reaper::start().map_err(|e| Error::Syscall {
            call: "spawn reaper thread",
            source: e,
        })?;
        Ok(Sandbox {
            shared: Arc::new(shared),
            reaper,
        })
    }

    /// Runs one box to its end and reports what happened. A program that fails or
    /// hits a limit is an `Ok(Outcome)`; `Err` means the box could not be run.
    pub fn run(&self, config: &BoxConfig) -> Result<Outcome> {
        run::run(&self.shared, &self.reaper, config, LiveIo::default())
    }

    /// [`Sandbox::run`] for a program someone talks to while it runs: stdin from
    /// the caller's pipe, each chunk of output passed on as it is read, and a
    /// [`Signaller`] that reaches the program while the box lives.
    pub fn run_live(&self, config: &BoxConfig, io: LiveIo<'_>) -> Result<Outcome> {
        run::run(&self.shared, &self.reaper, config, io)
    }

    /// Runs two boxes at once, joined by pipes: the first one's stdout is the
    /// second one's stdin and the second one's stdout the first one's stdin (an
    /// interactor and a solution). Each box keeps its own limits, measures and
    /// stderr; their stdouts are not kept. When one ends, the other reads the end
    /// of its input (or is sent SIGPIPE when it writes), so neither outlives its
    /// own wall time waiting for the other. Both slots are taken before either
    /// box starts; the sandbox needs `max_boxes` of 2 or more.
    pub fn run_pair(&self, first: &BoxConfig, second: &BoxConfig) -> Result<(Outcome, Outcome)> {
        run::run_pair(&self.shared, &self.reaper, first, second)
    }

    /// A fresh, empty tmpfs directory of at most `size_bytes` on the host, to bind
    /// into boxes (writable for one, read-only for the next). It is unmounted and
    /// removed when dropped.
    pub fn volume(&self, size_bytes: u64) -> Result<Volume> {
        Volume::create(&self.shared.volumes_dir, size_bytes)
    }

    /// Whether boxes can be pinned to CPUs ([`BoxConfig::with_cpus`]): the cpuset
    /// controller is available.
    pub fn can_pin_cpus(&self) -> bool {
        self.shared.cgroups.as_ref().is_some_and(|m| m.has_cpuset())
    }

    /// Whether boxes may have network ([`BoxConfig::with_network`]).
    pub fn has_network(&self) -> bool {
        self.shared.network.is_some()
    }

    /// Which cgroup version boxes use, if any.
    pub fn cgroup_version(&self) -> Option<&'static str> {
        self.shared.cgroups.as_ref().map(|m| match m.version() {
            cgroup::CgroupVersion::V1 => "v1",
            cgroup::CgroupVersion::V2 => "v2",
        })
    }
}
