//! The code that runs inside a box: its init (PID 1) and the program's last steps
//! before exec.
//!
//! Both run in a child cloned from a possibly multithreaded supervisor, so they may
//! only make system calls on data prepared beforehand in a [`ChildPlan`]: no
//! allocation, no locks, no formatting, no panics.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::c_char;
use serde::{Deserialize, Serialize};

use crate::mounts::{BOX_UID, MountPlan};
use crate::seccomp::SeccompPolicy;
use crate::sys;
use crate::trace::{self, Tracer};
use crate::tty::{self, TerminalSize};

/// The file mode creation mask of everything in a box, whatever the supervisor's.
pub(crate) const BOX_UMASK: libc::mode_t = 0o022;

/// What the init reports to the supervisor, one fixed-size record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// A setup step failed: the step (a mount plan index or a [`Step`] code) and errno.
    SetupFailed { step: u32, errno: i32 },
    /// The program could not be executed.
    ExecFailed { errno: i32 },
    /// The program ended with this wait status.
    Exited {
        wait_status: i32,
        /// The program's own memory peak in KiB, when its tracing saw it end
        /// (see `crate::trace`).
        peak_kb: Option<u32>,
        /// Whether the program started other processes (then its peak is not
        /// all of the box's memory).
        forked: bool,
    },
}

/// Size of one encoded report.
pub(crate) const REPORT_LEN: usize = 20;

/// Flags of an [`Report::Exited`] record.
const PEAK_KNOWN: u32 = 1;
const FORKED: u32 = 2;

impl Report {
    fn encode(self) -> [u8; REPORT_LEN] {
        let (kind, a, b, c): (u32, u32, i32, u32) = match self {
            Report::SetupFailed { step, errno } => (1, step, errno, 0),
            Report::ExecFailed { errno } => (2, 0, errno, 0),
            Report::Exited {
                wait_status,
                peak_kb,
                forked,
            } => {
                let flags = if peak_kb.is_some() { PEAK_KNOWN } else { 0 }
                    | if forked { FORKED } else { 0 };
                (3, flags, wait_status, peak_kb.unwrap_or(0))
            }
        };
        let mut out = [0u8; REPORT_LEN];
        out[0..4].copy_from_slice(&kind.to_ne_bytes());
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..12].copy_from_slice(&b.to_ne_bytes());
        out[12..16].copy_from_slice(&c.to_ne_bytes());
        out
    }

    /// Decodes a record written by [`Report::encode`].
    pub(crate) fn decode(raw: &[u8; REPORT_LEN]) -> Option<Report> {
        let word = |i: usize| [raw[i], raw[i + 1], raw[i + 2], raw[i + 3]];
        let (kind, a, b, c) = (
            u32::from_ne_bytes(word(0)),
            u32::from_ne_bytes(word(4)),
            i32::from_ne_bytes(word(8)),
            u32::from_ne_bytes(word(12)),
        );
        match kind {
            1 => Some(Report::SetupFailed { step: a, errno: b }),
            2 => Some(Report::ExecFailed { errno: b }),
            3 => Some(Report::Exited {
                wait_status: b,
                peak_kb: (a & PEAK_KNOWN != 0).then_some(c),
                forked: a & FORKED != 0,
            }),
            _ => None,
        }
    }
}

/// Setup steps outside the mount plan, numbered from the top of the u32 range so
/// they never collide with mount plan indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Step {
    BecomeBoxRoot = u32::MAX - 16,
    CreatePipe,
    ForkProgram,
    StartSession,
    RedirectStdio,
    SetLimit,
    ChangeDirectory,
    DropCapabilities,
    BecomeBoxUser,
    NoNewPrivileges,
    InstallSeccomp,
    OpenTerminal,
    SendTerminal,
    TakeTerminal,
}

impl Step {
    /// Describes a non-mount step code, if it is one.
    pub(crate) fn describe(code: u32) -> Option<&'static str> {
        let steps = [
            (Step::BecomeBoxRoot, "switch to the box's root user"),
            (Step::CreatePipe, "create the exec status pipe"),
            (Step::ForkProgram, "fork the program"),
            (Step::StartSession, "start a new session"),
            (Step::RedirectStdio, "redirect stdin/stdout/stderr"),
            (Step::SetLimit, "set resource limits"),
            (Step::ChangeDirectory, "enter the working directory"),
            (Step::DropCapabilities, "drop capabilities"),
            (Step::BecomeBoxUser, "switch to the box user"),
            (Step::NoNewPrivileges, "set no_new_privs"),
            (Step::InstallSeccomp, "install the seccomp filter"),
            (Step::OpenTerminal, "open the box's terminal"),
            (Step::SendTerminal, "hand the terminal to the supervisor"),
            (
                Step::TakeTerminal,
                "make the terminal the program's controlling terminal",
            ),
        ];
        steps
            .iter()
            .find(|(s, _)| *s as u32 == code)
            .map(|(_, d)| *d)
    }
}

/// Descriptor numbers the child inherits from the supervisor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildFds {
    pub go: RawFd,
    pub report: RawFd,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// In TTY mode, the init's end of the socket that carries the terminal's
    /// master to the supervisor; -1 otherwise.
    pub terminal: RawFd,
}

/// What a box runs and how: plain data the supervisor prepares, which a
/// launcher process can receive as it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProgramSpec {
    /// Paths to try for the program, in order (PATH lookup done in advance).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: CString,
    pub rlimits: Vec<Rlimit>,
    /// TTY mode: the size of the terminal the program runs on.
    pub tty: Option<TerminalSize>,
    /// Whether the init traces the program for its memory peak (never on a
    /// terminal: a signal typed there before the exec would stop the traced
    /// program while the init still waits for that exec).
    pub trace: bool,
}

/// One resource limit of the program.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// Everything the box's init and program need, prepared before clone.
pub(crate) struct ChildPlan<'a> {
    pub mounts: &'a MountPlan,
    pub seccomp: &'a SeccompPolicy,
    pub fds: ChildFds,
    /// The descriptors the init keeps, sorted: [`ChildFds`] and the mount plan's trees.
    pub init_keep: Vec<RawFd>,
    pub program: &'a ProgramSpec,
    pub argv_ptrs: Vec<*const c_char>,
    pub envp_ptrs: Vec<*const c_char>,
    pub cap_last: u32,
    /// The real-time signal that carries a forwarded signal (see `crate::live`).
    pub forward_signal: libc::c_int,
    /// Top of the stack the program's process starts on (see `spawn_program`).
    pub program_stack_top: *mut libc::c_void,
}

impl<'a> ChildPlan<'a> {
    /// The plan of a box that runs `program` in the root `mounts` build, with the
    /// descriptors `fds`, its program started on the stack whose top is
    /// `program_stack_top`.
    pub(crate) fn new(
        mounts: &'a MountPlan,
        seccomp: &'a SeccompPolicy,
        program: &'a ProgramSpec,
        fds: ChildFds,
        cap_last: u32,
        program_stack_top: *mut libc::c_void,
    ) -> ChildPlan<'a> {
        let mut init_keep = vec![fds.go, fds.report, fds.stdin, fds.stdout, fds.stderr];
        if fds.terminal >= 0 {
            init_keep.push(fds.terminal);
        }
        init_keep.extend(mounts.tree_fds());
        init_keep.sort_unstable();
        ChildPlan {
            mounts,
            seccomp,
            fds,
            init_keep,
            argv_ptrs: null_terminated(&program.argv),
            envp_ptrs: null_terminated(&program.envp),
            program,
            cap_last,
            forward_signal: crate::live::forward_signal(),
            program_stack_top,
        }
    }
}

/// Pointers to `strings`, then a null pointer, as execve takes them.
fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

fn report(fd: RawFd, r: Report) {
    // Nothing useful is left to do if the supervisor is gone.
    let _ = sys::write_all(fd, &r.encode());
}

fn fail(fd: RawFd, step: u32, errno: i32) -> ! {
    report(fd, Report::SetupFailed { step, errno });
    sys::exit(1)
}

/// Tries a call; on failure, `$fail(fd, step, errno)` reports it and exits.
macro_rules! or_fail {
    ($fail:ident, $fd:expr, $step:expr, $call:expr) => {
        if let Err(errno) = $call {
            $fail($fd, $step as u32, errno);
        }
    };
}

/// Tries a call of the init; reports `step` to the supervisor on failure.
macro_rules! step {
    ($fd:expr, $step:expr, $call:expr) => {
        or_fail!(fail, $fd, $step, $call)
    };
}

/// Runs as PID 1 of a new box. Never returns.
pub(crate) fn box_init(plan: &ChildPlan<'_>) -> ! {
    let mut fds = plan.fds;
    // SAFETY: prctl and umask with integer arguments only change this process's
    // attributes.
    unsafe {
        // If the supervisor dies, so does the box (and with PID 1, everything in it).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        // The init is a copy of the supervisor's memory: nobody may read it via /proc.
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        // A name of its own, not the supervisor's or the launcher's.
        libc::prctl(libc::PR_SET_NAME, c"runbox-init".as_ptr());
        // The supervisor's umask (a unit's `UMask=0077`) is not the box's: the
        // directories the mount plan makes and the files the program writes get
        // the usual modes, or a compiler's output is unreadable to the run box.
        libc::umask(BOX_UMASK);
    }
    reset_signals(plan.forward_signal);
    sys::close_all_except(&plan.init_keep);
    // Done while the supervisor writes the uid map: the bounding set limits what any
    // exec in the box can ever gain, and the init's own capabilities are unaffected.
    for cap in 0..=plan.cap_last {
        // SAFETY: prctl with integer arguments changes only this process.
        let dropped = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) };
        step!(fds.report, Step::DropCapabilities, sys::check(dropped));
    }

    // The supervisor says "mapped" once our uid map is written, and "placed" once we
    // are in the box's cgroup; end of file means it died first.
    wait_for(fds.go, GO_MAPPED);
    step!(fds.report, Step::BecomeBoxRoot, sys::set_ids(0));
    // Changing credentials cleared the parent-death signal: set it again, then make
    // sure the supervisor did not die in between (it holds the go pipe open for the
    // whole run, so a hang-up means it is gone).
    // SAFETY: prctl with integer arguments changes only this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if supervisor_gone(fds.go) {
        sys::exit(1);
    }
    // The root is built while the supervisor places us in the cgroup.
    if let Err((index, errno)) = plan.mounts.apply() {
        fail(fds.report, index, errno);
    }
    // The trees are attached: their descriptors are of no more use.
    for tree in plan.mounts.tree_fds() {
        // SAFETY: closing a descriptor this process no longer uses.
        unsafe { libc::close(tree) };
    }
    wait_for(fds.go, GO_PLACED);
    // SAFETY: closing a descriptor this process no longer uses.
    unsafe { libc::close(fds.go) };

    let mut exec_pipe = [0 as RawFd; 2];
    // SAFETY: `exec_pipe` has room for the two descriptors.
    let piped = unsafe { libc::pipe2(exec_pipe.as_mut_ptr(), libc::O_CLOEXEC) };
    step!(fds.report, Step::CreatePipe, sys::check(piped));

    if let Some(size) = plan.program.tty {
        fds = on_terminal(fds, size);
    }
    let program = spawn_program(plan, fds, exec_pipe[1]);
    if program < 0 {
        fail(fds.report, Step::ForkProgram as u32, sys::errno());
    }

    // The init holds no end of the program's stdio, so end of file means the box is
    // done (in TTY mode the three are one slave: closed once, the others EBADF).
    // SAFETY: closing descriptors this process no longer uses.
    unsafe {
        libc::close(fds.stdin);
        libc::close(fds.stdout);
        libc::close(fds.stderr);
        libc::close(exec_pipe[1]);
    }
    let mut failure = [0u8; 8];
    if let Ok(8) = sys::read_full(exec_pipe[0], &mut failure) {
        let step = u32::from_ne_bytes([failure[0], failure[1], failure[2], failure[3]]);
        let errno = i32::from_ne_bytes([failure[4], failure[5], failure[6], failure[7]]);
        if step == EXEC_STEP {
            report(fds.report, Report::ExecFailed { errno });
        } else {
            report(fds.report, Report::SetupFailed { step, errno });
        }
        sys::exit(1);
    }
    // The program runs: signals the supervisor forwards may reach it now.
    forward_signals_to(program, plan.forward_signal);

    // Reap everything and let the traced program's stops go on; when the program
    // itself ends, report and exit, and the kernel kills whatever is left in the
    // PID namespace (daemons, double forks).
    let mut tracer = Tracer::default();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if pid > 0 && libc::WIFSTOPPED(status) {
            tracer.on_stop(program, pid, status);
            continue;
        }
        if pid == program {
            report(
                fds.report,
                Report::Exited {
                    wait_status: status,
                    peak_kb: tracer.peak_kb,
                    forked: tracer.forked,
                },
            );
            sys::exit(0);
        }
        if pid < 0 && sys::errno() != libc::EINTR {
            fail(fds.report, Step::ForkProgram as u32, sys::errno());
        }
    }
}

/// TTY mode: opens the box's terminal, hands its master to the supervisor and
/// returns `fds` with the slave as the program's stdio (the pipes the
/// supervisor gave are closed: the terminal replaces them).
fn on_terminal(fds: ChildFds, size: TerminalSize) -> ChildFds {
    let (master, slave) = match tty::open_pair(size) {
        Ok(pair) => pair,
        Err(errno) => fail(fds.report, Step::OpenTerminal as u32, errno),
    };
    step!(
        fds.report,
        Step::SendTerminal,
        tty::send_fd(fds.terminal, master)
    );
    // SAFETY: closing descriptors this process no longer uses; the supervisor
    // holds the master now, the program gets the slave.
    unsafe {
        libc::close(master);
        libc::close(fds.terminal);
        libc::close(fds.stdin);
        libc::close(fds.stdout);
        if fds.stderr != fds.stdout {
            libc::close(fds.stderr);
        }
    }
    ChildFds {
        stdin: slave,
        stdout: slave,
        stderr: slave,
        terminal: -1,
        ..fds
    }
}

/// The supervisor's first word on the go pipe: the uid map is written.
pub(crate) const GO_MAPPED: u8 = b'm';
/// The supervisor's second word: the init is in the box's cgroup.
pub(crate) const GO_PLACED: u8 = b'p';

/// Waits for `word` on the go pipe; exits when the supervisor is gone instead.
fn wait_for(go: RawFd, word: u8) {
    let mut got = [0u8; 1];
    if sys::read_full(go, &mut got) != Ok(1) || got[0] != word {
        sys::exit(1);
    }
}

/// Whether the write end of the go pipe is closed, without waiting.
fn supervisor_gone(go: RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd: go,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd with a zero timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready != 0 && poll.revents & libc::POLLHUP != 0
}

/// Where the program's descriptors are moved before stdio is set up.
const LIFTED_FDS: RawFd = 100;

/// Code sent on the exec pipe for an execve failure (other codes are [`Step`]s).
const EXEC_STEP: u32 = 0;

fn program_fail(fd: RawFd, step: u32, errno: i32) -> ! {
    let mut msg = [0u8; 8];
    msg[0..4].copy_from_slice(&step.to_ne_bytes());
    msg[4..8].copy_from_slice(&errno.to_ne_bytes());
    let _ = sys::write_all(fd, &msg);
    sys::exit(127)
}

/// Tries a call of the program's process; reports `step` on the exec pipe on failure.
macro_rules! prog_step {
    ($fd:expr, $step:expr, $call:expr) => {
        or_fail!(program_fail, $fd, $step, $call)
    };
}

/// The program's process: last restrictions, then exec. Never returns.
fn run_program(plan: &ChildPlan<'_>, fds: ChildFds, exec_fd: RawFd) -> ! {
    // Any of these may sit on 0, 1 or 2 (the init closed its own stdio before making
    // the exec pipe): lift them all above the stdio numbers before dup2 overwrites them.
    let lift = |fd: RawFd| {
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor this process owns.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, LIFTED_FDS) };
        if new < 0 { sys::exit(127) } else { new }
    };
    let exec_fd = lift(exec_fd);
    let sources = [lift(fds.stdin), lift(fds.stdout), lift(fds.stderr)];
    // SAFETY: setsid, dup2 and ioctl(TIOCSCTTY) take integers only.
    unsafe {
        // A new session: no controlling terminal (in TTY mode, only the box's own).
        prog_step!(exec_fd, Step::StartSession, sys::check(libc::setsid()));
        for (to, from) in sources.into_iter().enumerate() {
            prog_step!(
                exec_fd,
                Step::RedirectStdio,
                sys::check(libc::dup2(from, to as RawFd))
            );
        }
        if plan.program.tty.is_some() {
            // The session leader takes the box's terminal: Ctrl-C typed into it
            // becomes SIGINT for the foreground process group, and /dev/tty is it.
            prog_step!(
                exec_fd,
                Step::TakeTerminal,
                sys::check(libc::ioctl(0, libc::TIOCSCTTY, 0))
            );
        }
    }
    let mut keep = [0, 1, 2, exec_fd];
    keep.sort_unstable();
    sys::close_all_except(&keep);
    // The init's mask blocked the forwarding carrier; the program starts with none.
    // SAFETY: sigprocmask on a local, empty set.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }

    for limit in &plan.program.rlimits {
        let value = libc::rlimit {
            rlim_cur: limit.soft,
            rlim_max: limit.hard,
        };
        // SAFETY: `value` is a valid rlimit on this stack.
        let limited = unsafe { libc::setrlimit(limit.resource, &value) };
        prog_step!(exec_fd, Step::SetLimit, sys::check(limited));
    }
    // SAFETY: `cwd` is a NUL-terminated string owned by the plan.
    let changed = unsafe { libc::chdir(plan.program.cwd.as_ptr()) };
    prog_step!(exec_fd, Step::ChangeDirectory, sys::check(changed));

    // SAFETY: prctl and id calls with integer arguments change only this process.
    unsafe {
        let clear_ambient = libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        prog_step!(exec_fd, Step::DropCapabilities, sys::check(clear_ambient));
        // Leaving uid 0 of the namespace clears every remaining capability.
        prog_step!(exec_fd, Step::BecomeBoxUser, sys::set_ids(BOX_UID));
        prog_step!(
            exec_fd,
            Step::NoNewPrivileges,
            sys::check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        );
    }
    if plan.program.trace {
        trace::trace_me();
    }
    prog_step!(exec_fd, Step::InstallSeccomp, plan.seccomp.install());

    let mut errno = libc::ENOENT;
    for path in &plan.program.candidates {
        // SAFETY: `path` and both pointer arrays are NUL-terminated and owned by the plan.
        unsafe {
            libc::execve(
                path.as_ptr(),
                plan.argv_ptrs.as_ptr(),
                plan.envp_ptrs.as_ptr(),
            )
        };
        // Keep the most telling error: a file that exists but cannot run beats "not found".
        let e = sys::errno();
        if e != libc::ENOENT && e != libc::ENOTDIR {
            errno = e;
        }
    }
    program_fail(exec_fd, EXEC_STEP, errno)
}

/// Restores every signal to its default action and unblocks all but `carrier`:
/// the supervisor's handlers and ignored signals (Rust ignores SIGPIPE) must not
/// leak into the box. The carrier of forwarded signals stays blocked (the launcher
/// thread blocked it, so it was never deliverable) until the program runs.
fn reset_signals(carrier: libc::c_int) {
    // System calls, not glibc's sigaction: see `default_signal_action`.
    sys::default_all_signal_actions();
    // SAFETY: sigprocmask with a zeroed, valid set.
    unsafe {
        let mut only_carrier: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut only_carrier);
        libc::sigaddset(&mut only_carrier, carrier);
        libc::sigprocmask(libc::SIG_SETMASK, &only_carrier, std::ptr::null_mut());
    }
}

/// The program's process group, once it runs; 0 before. Read by the init's
/// signal handler.
static PROGRAM_GROUP: AtomicI32 = AtomicI32::new(0);

/// Installs the handler that passes each `carrier` signal's value on to the
/// program's process group, then lets the carrier in (signals queued while it was
/// blocked are delivered now).
fn forward_signals_to(program: libc::pid_t, carrier: libc::c_int) {
    // The program called setsid: its process group has its pid.
    PROGRAM_GROUP.store(program, Ordering::SeqCst);
    // SAFETY: sigaction with a zeroed struct naming a handler that only makes
    // async-signal-safe calls; sigprocmask on a local set.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = forward as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        // glibc's sigaction (it supplies the restorer a handler needs) takes
        // no lock for a real-time signal; only SIGABRT's would wait.
        libc::sigaction(carrier, &action, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, carrier);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// The init's handler of the carrier signal: sends the signal named by its value
/// to the program's process group. Only the supervisor can queue it (the program
/// runs as another user, which may not signal the init); the kernel also marks a
/// signal from an ancestor PID namespace with sender pid 0, which is checked too.
extern "C" fn forward(_carrier: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let saved = sys::errno();
    let group = PROGRAM_GROUP.load(Ordering::SeqCst);
    if group > 0 && !info.is_null() {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let (code, pid, value) = unsafe { ((*info).si_code, (*info).si_pid(), (*info).si_value()) };
        let signal = value.sival_ptr as usize as libc::c_int;
        // Queued from outside the namespace, the sender's pid reads as 0 here.
        if code == libc::SI_QUEUE && pid == 0 && (1..=31).contains(&signal) {
            // SAFETY: kill is async-signal-safe; the group is the program's.
            unsafe { libc::kill(-group, signal) };
        }
    }
    // SAFETY: restoring this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = saved };
}

/// What the program's process needs from the init, passed through clone.
struct ProgramStart<'p, 'a> {
    plan: &'p ChildPlan<'a>,
    fds: ChildFds,
    exec_fd: RawFd,
}

/// Starts the program the way posix_spawn does: CLONE_VM|CLONE_VFORK shares the
/// init's memory until exec instead of copying its page tables (the init is a copy
/// of the whole supervisor, so a fork would cost a copy of all its mappings), and
/// the init sleeps until the program has exec'd or failed.
fn spawn_program(plan: &ChildPlan<'_>, fds: ChildFds, exec_fd: RawFd) -> libc::pid_t {
    let start = ProgramStart { plan, fds, exec_fd };
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: the stack is a dedicated, writable region prepared for this child
    // (its top 16-byte aligned); `start` lives on this stack frame, which stays
    // untouched while CLONE_VFORK suspends the init until the child execs or exits.
    // The child shares memory but not descriptors, and only makes system calls.
    unsafe {
        libc::clone(
            program_main,
            plan.program_stack_top,
            flags,
            (&start as *const ProgramStart).cast_mut().cast(),
        )
    }
}

extern "C" fn program_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ProgramStart` of `spawn_program`, alive while the init
    // is suspended by CLONE_VFORK.
    let start = unsafe { &*(arg as *const ProgramStart) };
    run_program(start.plan, start.fds, start.exec_fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_survive_encoding() {
        for r in [
            Report::SetupFailed {
                step: 7,
                errno: libc::EPERM,
            },
            Report::ExecFailed {
                errno: libc::ENOENT,
            },
            Report::Exited {
                wait_status: 0x0b,
                peak_kb: None,
                forked: false,
            },
            Report::Exited {
                wait_status: 0,
                peak_kb: Some(148),
                forked: true,
            },
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
    }

    #[test]
    fn step_codes_have_descriptions() {
        assert_eq!(
            Step::describe(Step::InstallSeccomp as u32),
            Some("install the seccomp filter")
        );
        assert_eq!(Step::describe(3), None);
    }
}
