//! Box birth: what clones a box's init.
//!
//! Two launchers do it the same way. A [launcher process](process) is a small
//! program exec'd once per slot (the `runbox` binary itself, or
//! `runbox-box-launcher`), single-threaded, which clones every box of its slot
//! from its own small address space on the service's request: the service never
//! clones itself, so no box copies the service's memory, page tables or another
//! thread's lock. It clones with `CLONE_PARENT`, so each box's init is still the
//! service's child: the service keeps its pidfd, its exit and its parent-death
//! signal. A [launcher thread](thread) clones from inside the supervisor's own
//! process, for a command that runs a box or two and exits.

mod process;
mod serve;
mod thread;
pub(crate) mod wire;

use std::ffi::OsString;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use crate::Shared;
use crate::cgroup::BoxCgroup;
use crate::error::{Error, Result};
use crate::init::{self, ChildFds, ChildPlan, ProgramSpec};
use crate::mounts::MountPlan;
use crate::teardown::Child;

pub(crate) use process::Starter;
pub use serve::{run_box_launcher, run_box_launcher_ending_after_each_clone};
pub(crate) use thread::Worker;

/// The argument that makes the `runbox` binary a box launcher (see
/// [`LauncherProgram::runbox`]).
pub const LAUNCHER_ARGUMENT: &str = "__box-launcher";

/// The program a sandbox starts as each slot's launcher process: one whose
/// `main` calls [`run_box_launcher`] at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LauncherProgram {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl LauncherProgram {
    /// The running executable itself, with [`LAUNCHER_ARGUMENT`]: for the
    /// `runbox` binary, whose `main` checks for it before anything else.
    pub fn runbox() -> LauncherProgram {
        LauncherProgram {
            // The running binary even once replaced on disk by an upgrade.
            program: PathBuf::from("/proc/self/exe"),
            args: vec![LAUNCHER_ARGUMENT.into()],
        }
    }

    /// A program that is nothing but a launcher (`runbox-box-launcher`).
    pub fn dedicated(program: impl Into<PathBuf>) -> LauncherProgram {
        LauncherProgram {
            program: program.into(),
            args: Vec::new(),
        }
    }
}

/// Namespaces every box gets; the network namespace is joined, not created.
const NAMESPACES: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// `CLONE_INTO_CGROUP` (Linux 5.7), not yet in every libc release.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Stack size for the program's process between clone and exec.
const PROGRAM_STACK: usize = 256 << 10;

/// The kernel's `struct clone_args` (version 2, with the cgroup field).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What the supervisor prepared for one box's birth.
pub(crate) struct Birth<'a> {
    pub mounts: &'a MountPlan,
    pub program: &'a ProgramSpec,
    pub fds: ChildFds,
    /// On cgroup v2, the box cgroup's directory, for `CLONE_INTO_CGROUP`.
    pub cgroup: Option<BorrowedFd<'a>>,
    /// Whether the box gets a network namespace of its own.
    pub network: bool,
}

/// A slot's launcher: a process, or a thread of the supervisor.
pub(crate) enum Launcher {
    Thread(thread::LauncherThread),
    Process(process::LauncherProcess),
}

impl Launcher {
    /// Starts the slot's launcher in `netns`, placed in `cgroup` when the cgroup
    /// version lets it be (v1): a process when the sandbox has a launcher
    /// program, else a thread.
    pub(crate) fn start(
        shared: &Shared,
        netns: &OwnedFd,
        cgroup: Option<&BoxCgroup>,
    ) -> Result<Launcher> {
        match &shared.launcher {
            Some(launcher) => Ok(Launcher::Process(process::LauncherProcess::start(
                launcher, netns, cgroup,
            )?)),
            None => Ok(Launcher::Thread(thread::LauncherThread::start(
                netns, cgroup,
            )?)),
        }
    }

    /// Whether the launcher sits in the slot's cgroup, so boxes are born there.
    pub(crate) fn placed(&self) -> bool {
        match self {
            Launcher::Thread(t) => t.placed,
            Launcher::Process(p) => p.placed,
        }
    }

    /// Whether the launcher can still clone boxes (a process may have died).
    pub(crate) fn usable(&self) -> bool {
        match self {
            Launcher::Thread(_) => true,
            Launcher::Process(p) => !p.is_broken(),
        }
    }

    /// Clones the box `birth` describes and returns its init.
    pub(crate) fn clone_box(&mut self, shared: &Shared, birth: &Birth<'_>) -> Result<Child> {
        match self {
            Launcher::Thread(launcher) => {
                let prepared = SendPlan { birth, shared };
                let (pid, pidfd) = launcher.run(move |stack_top| {
                    let plan = prepared.plan(stack_top);
                    clone_init(
                        &plan,
                        prepared.birth.cgroup.map(raw),
                        prepared.birth.network,
                        None,
                    )
                })??;
                Ok(Child::new(pid, pidfd))
            }
            Launcher::Process(launcher) => launcher.clone_box(birth),
        }
    }
}

fn raw(fd: BorrowedFd<'_>) -> RawFd {
    std::os::fd::AsRawFd::as_raw_fd(&fd)
}

/// A birth handed to the launcher thread for the duration of one clone.
struct SendPlan<'b, 'a> {
    birth: &'b Birth<'a>,
    shared: &'b Shared,
}

impl SendPlan<'_, '_> {
    fn plan(&self, stack_top: *mut libc::c_void) -> ChildPlan<'_> {
        ChildPlan::new(
            self.birth.mounts,
            &self.shared.seccomp,
            self.birth.program,
            self.birth.fds,
            self.shared.cap_last,
            stack_top,
        )
    }
}

// SAFETY: the birth and the sandbox are only read, by one thread at a time (the
// caller waits while the launcher thread clones); the raw descriptors they
// name stay open until the clone has returned.
unsafe impl Send for SendPlan<'_, '_> {}

/// The 16-byte aligned top of a program stack (x86_64 stacks grow down), to
/// hand to the thread that clones.
#[derive(Clone, Copy)]
struct StackTop(*mut libc::c_void);

impl StackTop {
    fn of(stack: &mut [u8]) -> StackTop {
        let end = stack.as_mut_ptr_range().end as usize;
        StackTop((end & !15) as *mut libc::c_void)
    }

    /// The pointer. A method, so that closures capture the whole `StackTop`.
    fn get(self) -> *mut libc::c_void {
        self.0
    }
}

// SAFETY: the stack belongs to the launcher, which clones one box at a time;
// only the cloned init writes to it, in its own copy of memory.
unsafe impl Send for StackTop {}

/// Clones the box's init into fresh namespaces and, on v2, straight into its
/// cgroup. Runs on a launcher, which sits in the slot's network namespace (and
/// on v1 in its cgroup), so the box is born in them. `sibling_record`, for a
/// launcher process, makes the init a child of the launcher's parent
/// (`CLONE_PARENT`) and has the kernel write its pid there before the call
/// returns. Returns the init's pid and pidfd.
fn clone_init(
    plan: &ChildPlan<'_>,
    cgroup_fd: Option<RawFd>,
    network: bool,
    sibling_record: Option<*mut i32>,
) -> Result<(libc::pid_t, OwnedFd)> {
    let mut pidfd: RawFd = -1;
    // A box with network gets a network namespace of its own; the others stay in
    // the slot's empty one.
    let own_netns = if network {
        libc::CLONE_NEWNET as u64
    } else {
        0
    };
    let mut args = CloneArgs {
        flags: NAMESPACES | own_netns | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    if let Some(record) = sibling_record {
        // The exit signal of a sibling is the launcher's own (SIGCHLD); clone3
        // wants none given with CLONE_PARENT.
        args.flags |= (libc::CLONE_PARENT | libc::CLONE_PARENT_SETTID) as u64;
        args.parent_tid = record as u64;
        args.exit_signal = 0;
    }
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a copy of this
    // address space and continues on a copy of this stack. The child runs only
    // `box_init`, which makes system calls on the prepared plan and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        init::box_init(plan);
    }
    if pid < 0 {
        return Err(Error::last_os("clone3"));
    }
    // SAFETY: clone3 with CLONE_PIDFD stored a fresh descriptor that nothing else owns.
    Ok((pid as libc::pid_t, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}
