//! The box's seccomp-bpf policy: a deny-list of dangerous system calls.
//!
//! Everything not listed here is allowed; what is listed either lets the kernel be
//! attacked from inside the box (bpf, io_uring, keyctl, perf_event_open, userfaultfd,
//! modules, kexec), lets the program leave or reshape its box (mount family,
//! pivot_root, new namespaces, setns), reach other processes (ptrace,
//! process_vm_*, pidfd_getfd, TIOCSTI) or change the host (clock, swap, reboot).
//!
//! Two filters are installed, because one seccompiler filter can neither see the
//! x32 ABI nor return two different errnos. The kernel runs every filter on every
//! system call and keeps the most restrictive answer:
//!
//! 1. the ABI gate, a hand-written classic BPF program: a system call from another
//!    ABI (i386 through `int 0x80`, or x32) kills the process, and `clone3` fails
//!    with `ENOSYS`: its flags live in a struct the filter cannot read, and libc
//!    falls back to `clone` on `ENOSYS`, whose flags the second filter can read;
//! 2. the deny-list, compiled by seccompiler: the syscalls of [`ALWAYS_DENIED`]
//!    fail with `EPERM`, and so do those of [`DENIED_FOR_SOME_ARGUMENTS`] when their
//!    arguments ask for something dangerous (a namespace flag to `clone`, a terminal
//!    injection `ioctl`, a `personality` change).
//!
//! Both filters decide most system calls from their number alone, so the kernel's
//! seccomp action cache (Linux 5.11+) skips them entirely for the hot path.
//!
//! The filters are compiled once per sandbox ([`SeccompPolicy::new`]) and installed
//! in each box between `clone` and `execve` ([`SeccompPolicy::install`]), where only
//! async-signal-safe code may run.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// System calls refused with `EPERM` whatever their arguments.
#[cfg(target_arch = "x86_64")]
const ALWAYS_DENIED: &[(&str, i64)] = &[
    // Inspecting or controlling other processes.
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    // Reshaping the file system view, leaving the box's root.
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("open_tree", libc::SYS_open_tree),
    ("move_mount", libc::SYS_move_mount),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("fanotify_init", libc::SYS_fanotify_init),
    // New or other namespaces.
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    // Large kernel attack surface.
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("uselib", libc::SYS_uselib),
    ("_sysctl", libc::SYS__sysctl),
    // Changing the machine.
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("acct", libc::SYS_acct),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("syslog", libc::SYS_syslog),
    ("quotactl", libc::SYS_quotactl),
    ("vhangup", libc::SYS_vhangup),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
];
#[cfg(not(target_arch = "x86_64"))]
const ALWAYS_DENIED: &[(&str, i64)] = &[];

/// System calls refused with `EPERM` for some arguments only: see [`argument_rules`].
const DENIED_FOR_SOME_ARGUMENTS: &[(&str, i64)] = &[
    ("clone", libc::SYS_clone),
    ("ioctl", libc::SYS_ioctl),
    ("personality", libc::SYS_personality),
];

/// The system call the ABI gate answers with `ENOSYS`, so that libc uses `clone`.
const CLONE3: (&str, i64) = ("clone3", libc::SYS_clone3);

/// The `clone` flags that create a namespace: any one of them is refused.
const NAMESPACE_FLAGS: [libc::c_int; 8] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWTIME,
];

/// The `ioctl` commands that push input into, or control, a terminal that may be
/// shared with the world outside the box.
const TERMINAL_INJECTION_IOCTLS: [libc::Ioctl; 2] = [libc::TIOCSTI, libc::TIOCLINUX];

/// `personality(PER_LINUX)`: the default, harmless to set again.
const PER_LINUX: u64 = 0;
/// `personality(0xffffffff)` only queries the current persona.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

/// `AUDIT_ARCH_X86_64` of `<linux/audit.h>`: `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `__X32_SYSCALL_BIT`: set in the number of every x32 system call.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offset of `nr` in `struct seccomp_data`.
const SECCOMP_DATA_NR: u32 = 0;
/// Offset of `arch` in `struct seccomp_data`.
const SECCOMP_DATA_ARCH: u32 = 4;

/// The names of every system call the policy refuses, always or for some arguments
/// (`clone` with a namespace flag, `ioctl` TIOCSTI/TIOCLINUX, `personality`
/// changes, `clone3` with `ENOSYS`), for `runbox doctor` and the documentation.
pub(crate) fn denied_syscalls() -> Vec<&'static str> {
    ALWAYS_DENIED
        .iter()
        .chain(DENIED_FOR_SOME_ARGUMENTS)
        .chain([&CLONE3])
        .map(|&(name, _)| name)
        .collect()
}

/// The box's seccomp policy, compiled once and installed in every box.
pub(crate) struct SeccompPolicy {
    /// Filter 1: kills other ABIs, answers `clone3` with `ENOSYS`.
    abi_gate: Vec<libc::sock_filter>,
    /// Filter 2: the deny-list, answered with `EPERM`.
    deny_list: Vec<libc::sock_filter>,
}

impl SeccompPolicy {
    /// Compiles the filters. Called once per Sandbox, before any box.
    pub fn new() -> Result<SeccompPolicy> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Error::Seccomp(format!(
                "unsupported architecture {}: the seccomp policy is written for x86_64 only",
                std::env::consts::ARCH
            )));
        }
        let policy = SeccompPolicy {
            abi_gate: abi_gate(),
            deny_list: deny_list()?,
        };
        for program in [&policy.abi_gate, &policy.deny_list] {
            if program.len() > libc::BPF_MAXINSNS as usize {
                return Err(Error::Seccomp(format!(
                    "filter has {} instructions, more than the kernel's {}",
                    program.len(),
                    libc::BPF_MAXINSNS
                )));
            }
        }
        Ok(policy)
    }

    /// Installs the filters in the calling process. MUST be async-signal-safe: it is
    /// called in a child process between clone() and execve() of a multithreaded
    /// parent, so it only makes raw system calls on data prepared in [`new`](Self::new).
    ///
    /// Precondition: `no_new_privs` is already set (or the caller has CAP_SYS_ADMIN).
    /// Returns the raw errno on failure (an [`Error`] would allocate).
    pub fn install(&self) -> Result<(), i32> {
        install_filter(&self.abi_gate)?;
        install_filter(&self.deny_list)
    }
}

/// Installs one classic BPF program as a seccomp filter of the calling thread.
/// Async-signal-safe: no allocation, no lock, one system call.
fn install_filter(program: &[libc::sock_filter]) -> Result<(), i32> {
    let fprog = libc::sock_fprog {
        // `new` checked that every program has at most BPF_MAXINSNS (4096) instructions.
        len: program.len() as libc::c_ushort,
        // The kernel only reads the program (it copies it); `mut` is the C API's.
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog) reads `fprog` and the
    // `fprog.len` instructions it points to, both alive and initialised for the
    // whole call; it writes no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            0 as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

/// The calling thread's errno, read without allocating.
fn errno() -> i32 {
    // SAFETY: __errno_location returns a valid, aligned pointer to the calling
    // thread's errno, which lives as long as the thread.
    unsafe { *libc::__errno_location() }
}

/// Filter 1, written by hand because seccompiler cannot express it:
///
/// ```text
/// arch != AUDIT_ARCH_X86_64   -> KILL_PROCESS   (i386 through int 0x80)
/// nr & __X32_SYSCALL_BIT      -> KILL_PROCESS   (x32)
/// nr == clone3                -> ERRNO(ENOSYS)
/// otherwise                   -> ALLOW
/// ```
fn abi_gate() -> Vec<libc::sock_filter> {
    use libc::{SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS};
    vec![
        load_word(SECCOMP_DATA_ARCH),
        jump_if_equal(AUDIT_ARCH_X86_64, 1, 0),
        ret(SECCOMP_RET_KILL_PROCESS),
        load_word(SECCOMP_DATA_NR),
        jump_if_any_bit(X32_SYSCALL_BIT, 0, 1),
        ret(SECCOMP_RET_KILL_PROCESS),
        jump_if_equal(CLONE3.1 as u32, 0, 1),
        ret(SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        ret(SECCOMP_RET_ALLOW),
    ]
}

/// `A = seccomp_data[offset]` (32 bits).
fn load_word(offset: u32) -> libc::sock_filter {
    bpf(
        (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        0,
        0,
        offset,
    )
}

/// `if A == value` skip `then` instructions, else skip `otherwise`.
fn jump_if_equal(value: u32, then: u8, otherwise: u8) -> libc::sock_filter {
    bpf(
        (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        then,
        otherwise,
        value,
    )
}

/// `if A & bits != 0` skip `then` instructions, else skip `otherwise`.
fn jump_if_any_bit(bits: u32, then: u8, otherwise: u8) -> libc::sock_filter {
    bpf(
        (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
        then,
        otherwise,
        bits,
    )
}

/// `return action`.
fn ret(action: u32) -> libc::sock_filter {
    bpf((libc::BPF_RET | libc::BPF_K) as u16, 0, 0, action)
}

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Filter 2: [`ALWAYS_DENIED`] and [`DENIED_FOR_SOME_ARGUMENTS`] -> `EPERM`.
fn deny_list() -> Result<Vec<libc::sock_filter>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &(name, nr) in ALWAYS_DENIED {
        // No rule: the system call matches whatever its arguments.
        if rules.insert(nr, Vec::new()).is_some() {
            return Err(Error::Seccomp(format!("{name} is listed twice")));
        }
    }
    for &(name, nr) in DENIED_FOR_SOME_ARGUMENTS {
        let argument_rules = argument_rules(nr).map_err(|e| compile_error(name, e))?;
        if rules.insert(nr, argument_rules).is_some() {
            return Err(Error::Seccomp(format!("{name} is listed twice")));
        }
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::x86_64,
    )
    .map_err(|e| compile_error("the deny-list", e))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e| compile_error("the deny-list", e))?;
    Ok(program
        .into_iter()
        .map(|insn| bpf(insn.code, insn.jt, insn.jf, insn.k))
        .collect())
}

/// The rules under which a system call of [`DENIED_FOR_SOME_ARGUMENTS`] is refused;
/// it is refused when any one rule matches, and a rule matches when all its
/// conditions hold.
fn argument_rules(nr: i64) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    use SeccompCmpArgLen::{Dword, Qword};
    use SeccompCmpOp::{MaskedEq, Ne};
    let condition = SeccompCondition::new;
    match nr {
        // clone(flags, ...) with any namespace flag set.
        libc::SYS_clone => NAMESPACE_FLAGS
            .iter()
            .map(|&flag| {
                let flag = flag as u64;
                SeccompRule::new(vec![condition(0, Qword, MaskedEq(flag), flag)?])
            })
            .collect(),
        // ioctl(fd, cmd, ...): the kernel keeps the low 32 bits of cmd, so
        // 0xffffffff00005412 is TIOCSTI too.
        libc::SYS_ioctl => TERMINAL_INJECTION_IOCTLS
            .iter()
            .map(|&cmd| {
                #[allow(clippy::unnecessary_cast, reason = "libc::Ioctl is c_int on musl")]
                let cmd = cmd as u64;
                SeccompRule::new(vec![condition(1, Qword, MaskedEq(0xffff_ffff), cmd)?])
            })
            .collect(),
        // personality(persona), an unsigned int: anything but PER_LINUX or a query.
        libc::SYS_personality => Ok(vec![SeccompRule::new(vec![
            condition(0, Dword, Ne, PER_LINUX)?,
            condition(0, Dword, Ne, PERSONALITY_QUERY)?,
        ])?]),
        _ => unreachable!("system call {nr} is in DENIED_FOR_SOME_ARGUMENTS without rules"),
    }
}

fn compile_error(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Seccomp(format!("cannot compile the rules of {what}: {error}"))
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    //! Each behaviour is checked in a forked child twice: without the filters the
    //! attempt must NOT give the expected outcome, with them it must. So no test can
    //! pass because the host already refuses the call (sysctl, container, kernel).

    use std::ffi::{CStr, c_char};
    use std::sync::OnceLock;

    use super::*;

    /// How a child process ended.
    #[derive(Debug, PartialEq, Eq)]
    enum Ended {
        Exited(i32),
        KilledBy(i32),
    }

    /// `PER_LINUX32` of `<linux/personality.h>`: a 32-bit address space.
    const PER_LINUX32: libc::c_ulong = 0x0008;

    /// Exit code of an attempt whose system call succeeded.
    const SUCCEEDED: i32 = 0;
    /// Exit codes of a child that could not set itself up (above every errno).
    const SETUP_FAILED: i32 = 250;
    const INSTALL_FAILED: i32 = 251;

    /// The exit code reporting a raw system call's return value: [`SUCCEEDED`] or errno.
    fn report(ret: libc::c_long) -> i32 {
        if ret == -1 { errno() } else { SUCCEEDED }
    }

    fn policy() -> &'static SeccompPolicy {
        static POLICY: OnceLock<SeccompPolicy> = OnceLock::new();
        POLICY.get_or_init(|| SeccompPolicy::new().expect("the policy compiles"))
    }

    /// Runs `attempt` in a forked child, with the policy installed if `filtered`;
    /// the child exits with what `attempt` returns. Stdin is /dev/null.
    ///
    /// The test process is multithreaded: `attempt` must only make raw system
    /// calls (no allocation, no locks, no panics).
    fn run_in_child(filtered: bool, attempt: fn() -> i32) -> Ended {
        let policy = policy();
        // SAFETY: the child only makes raw system calls and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: raw system calls on constant, valid arguments; _exit never returns.
            unsafe {
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null < 0
                    || libc::dup2(null, 0) < 0
                    || libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                {
                    libc::_exit(SETUP_FAILED);
                }
                if filtered && policy.install().is_err() {
                    libc::_exit(INSTALL_FAILED);
                }
                libc::_exit(attempt());
            }
        }
        wait_for(pid)
    }

    fn wait_for(pid: libc::pid_t) -> Ended {
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid place for waitpid to write to.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            if rc == pid {
                break;
            }
            assert_eq!(errno(), libc::EINTR, "waitpid failed");
        }
        if libc::WIFEXITED(status) {
            Ended::Exited(libc::WEXITSTATUS(status))
        } else {
            Ended::KilledBy(libc::WTERMSIG(status))
        }
    }

    /// Asserts that the policy, and only the policy, turns `attempt` into `expected`.
    fn assert_policy_turns(attempt: fn() -> i32, expected: Ended) {
        let without = run_in_child(false, attempt);
        assert_ne!(without, Ended::Exited(SETUP_FAILED));
        assert_ne!(
            without, expected,
            "the host alone already gives this outcome"
        );
        assert_eq!(run_in_child(true, attempt), expected);
    }

    fn assert_refused_with(errno: i32, attempt: fn() -> i32) {
        assert_policy_turns(attempt, Ended::Exited(errno));
    }

    fn assert_still_works(attempt: fn() -> i32) {
        assert_eq!(run_in_child(true, attempt), Ended::Exited(SUCCEEDED));
    }

    /// Waits for a process forked by an attempt, so that none is left behind.
    fn reap(pid: libc::c_long) {
        if pid > 0 {
            // SAFETY: waitpid with a null status pointer writes no memory.
            unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
        }
    }

    /// clone(flags) as fork does: the new child leaves at once, the caller reaps it.
    fn clone_with(flags: libc::c_int) -> libc::c_long {
        // SAFETY: without CLONE_VM the child gets a copy of the address space and
        // only calls _exit; null stack and tid pointers are allowed.
        let ret = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD, 0, 0, 0, 0) };
        if ret == 0 {
            // SAFETY: _exit is always safe to call; it never returns.
            unsafe { libc::_exit(SUCCEEDED) };
        }
        reap(ret);
        ret
    }

    #[test]
    fn unsharing_a_user_namespace_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            // SAFETY: unshare takes an integer and touches no memory of ours.
            report(unsafe { libc::unshare(libc::CLONE_NEWUSER) }.into())
        });
    }

    #[test]
    fn cloning_into_a_new_user_namespace_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || report(clone_with(libc::CLONE_NEWUSER)));
    }

    #[test]
    fn cloning_with_any_namespace_flag_is_refused_with_eperm() {
        // Exits with the number of namespace flags that were refused with EPERM.
        let refusals = || {
            let refused = |&flag: &libc::c_int| clone_with(flag) == -1 && errno() == libc::EPERM;
            NAMESPACE_FLAGS.iter().filter(|flag| refused(flag)).count() as i32
        };
        assert_policy_turns(refusals, Ended::Exited(NAMESPACE_FLAGS.len() as i32));
    }

    #[test]
    fn clone3_fails_with_enosys_so_that_libc_falls_back_to_clone() {
        assert_refused_with(libc::ENOSYS, || {
            // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, ...
            let mut args = [0u64; 11];
            args[4] = libc::SIGCHLD as u64;
            // SAFETY: a plain fork: the kernel reads `args` (alive, 88 bytes), the
            // child gets a copy of the address space and only calls _exit.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    args.as_ptr(),
                    std::mem::size_of_val(&args),
                )
            };
            if ret == 0 {
                // SAFETY: _exit is always safe to call; it never returns.
                unsafe { libc::_exit(SUCCEEDED) };
            }
            reap(ret);
            report(ret)
        });
    }

    #[test]
    fn plain_fork_still_works() {
        assert_eq!(
            run_in_child(true, || {
                let pid = clone_with(0);
                if pid > 0 { 42 } else { report(pid) }
            }),
            Ended::Exited(42)
        );
    }

    #[test]
    fn ptrace_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            // SAFETY: PTRACE_TRACEME ignores its other arguments and touches no memory.
            report(unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0) })
        });
    }

    #[test]
    fn mount_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            // SAFETY: valid C strings; the target does not exist, so even an
            // unfiltered root child mounts nothing.
            report(unsafe {
                libc::syscall(
                    libc::SYS_mount,
                    c"none".as_ptr(),
                    c"/nonexistent/runbox-seccomp-test".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    0,
                )
            })
        });
    }

    #[test]
    fn bpf_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            let attr = [0u8; 64];
            // SAFETY: BPF_MAP_CREATE reads the zeroed, alive `attr` and fails (EINVAL).
            report(unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_ptr(), attr.len()) })
        });
    }

    #[test]
    fn io_uring_setup_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            let mut params = [0u8; 120];
            // SAFETY: struct io_uring_params is 120 bytes; `params` is alive and writable.
            report(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) })
        });
    }

    #[test]
    fn keyctl_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            // SAFETY: KEYCTL_GET_KEYRING_ID (0) takes integers and writes no memory.
            report(unsafe { libc::syscall(libc::SYS_keyctl, 0, libc::KEY_SPEC_SESSION_KEYRING, 0) })
        });
    }

    #[test]
    fn perf_event_open_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            // A software task-clock counter on this process (type 1, config 1).
            let mut attr = [0u32; 32];
            attr[1] = 128;
            attr[2] = 1;
            // SAFETY: `attr` is an alive 128-byte perf_event_attr; the kernel reads it.
            report(unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 0) })
        });
    }

    #[test]
    fn userfaultfd_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            // SAFETY: userfaultfd takes integer flags and touches no memory of ours.
            report(unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) })
        });
    }

    #[test]
    fn switching_to_a_32_bit_personality_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            // SAFETY: personality takes an integer and touches no memory.
            report(unsafe { libc::syscall(libc::SYS_personality, PER_LINUX32) })
        });
    }

    #[test]
    fn querying_or_resetting_the_personality_still_works() {
        assert_still_works(|| {
            // SAFETY: personality takes an integer and touches no memory.
            let query = unsafe { libc::syscall(libc::SYS_personality, PERSONALITY_QUERY) };
            // SAFETY: as above.
            let reset = unsafe { libc::syscall(libc::SYS_personality, PER_LINUX) };
            if query == -1 { errno() } else { report(reset) }
        });
    }

    #[test]
    fn tiocsti_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            let byte = b'x';
            // SAFETY: fd 0 is /dev/null; TIOCSTI would read one byte from `byte`.
            report(unsafe { libc::syscall(libc::SYS_ioctl, 0, libc::TIOCSTI, &byte) })
        });
    }

    #[test]
    fn tiocsti_with_garbage_in_the_high_bits_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            let byte = b'x';
            let cmd = 0xffff_ffff_0000_0000 | libc::TIOCSTI;
            // SAFETY: fd 0 is /dev/null; TIOCSTI would read one byte from `byte`.
            report(unsafe { libc::syscall(libc::SYS_ioctl, 0, cmd, &byte) })
        });
    }

    #[test]
    fn tioclinux_is_refused_with_eperm() {
        assert_refused_with(libc::EPERM, || {
            let subcode = 0u8;
            // SAFETY: fd 0 is /dev/null; TIOCLINUX would read its subcode byte.
            report(unsafe { libc::syscall(libc::SYS_ioctl, 0, libc::TIOCLINUX, &subcode) })
        });
    }

    #[test]
    fn other_ioctls_still_work() {
        assert_still_works(|| {
            // SAFETY: FIOCLEX on fd 0 (/dev/null) takes no argument and touches no memory.
            report(unsafe { libc::syscall(libc::SYS_ioctl, 0, libc::FIOCLEX) })
        });
    }

    #[test]
    fn x32_syscalls_kill_the_process() {
        assert_policy_turns(
            || {
                let x32_getpid = libc::SYS_getpid | libc::c_long::from(X32_SYSCALL_BIT);
                // SAFETY: getpid through the x32 ABI takes no argument, touches no memory.
                report(unsafe { libc::syscall(x32_getpid) })
            },
            Ended::KilledBy(libc::SIGSYS),
        );
    }

    #[test]
    fn i386_syscalls_kill_the_process() {
        assert_policy_turns(
            || {
                let ret: i32;
                // SAFETY: getpid (20) through the i386 entry point takes no argument
                // and touches no memory; r8-r11 are declared clobbered because
                // older kernels did not preserve them across int 0x80.
                unsafe {
                    std::arch::asm!(
                        "int 0x80",
                        inlateout("eax") 20 => ret,
                        lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
                        options(nostack),
                    );
                }
                if ret > 0 { SUCCEEDED } else { -ret }
            },
            Ended::KilledBy(libc::SIGSYS),
        );
    }

    #[test]
    fn getpid_write_and_read_still_work() {
        assert_still_works(|| {
            let mut fds = [0; 2];
            let mut buf = [0u8; 5];
            // SAFETY: raw system calls on alive, correctly sized local buffers.
            unsafe {
                if libc::syscall(libc::SYS_getpid) != libc::c_long::from(libc::getpid()) {
                    return 1;
                }
                if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                    return errno();
                }
                if libc::write(fds[1], b"hello".as_ptr().cast(), 5) != 5 {
                    return 2;
                }
                if libc::read(fds[0], buf.as_mut_ptr().cast(), 5) != 5 || &buf != b"hello" {
                    return 3;
                }
            }
            SUCCEEDED
        });
    }

    /// Set in the environment of [`threads_probe`] when it runs under the filter.
    const PROBE_ENV: &CStr = c"RUNBOX_SECCOMP_THREADS_PROBE=1";
    const PROBE_ENV_NAME: &str = "RUNBOX_SECCOMP_THREADS_PROBE";
    /// What [`threads_probe`] exits with when it passed under the filter.
    const PROBE_PASSED: i32 = 77;

    #[test]
    fn threads_start_under_the_filter() {
        // Re-executes this test binary under the filter to run `threads_probe`:
        // glibc's pthread_create tries clone3 first and must fall back to clone.
        let ended = run_in_child(true, || {
            let argv: [*const c_char; 7] = [
                c"threads-probe".as_ptr(),
                c"--exact".as_ptr(),
                c"seccomp::tests::threads_probe".as_ptr(),
                c"--ignored".as_ptr(),
                c"--test-threads=1".as_ptr(),
                c"--quiet".as_ptr(),
                std::ptr::null(),
            ];
            let envp: [*const c_char; 2] = [PROBE_ENV.as_ptr(), std::ptr::null()];
            // SAFETY: stdout to /dev/null (fd 0), then execve with null-terminated
            // arrays of valid C strings; on failure execve returns and we report errno.
            unsafe {
                libc::dup2(0, 1);
                libc::execve(c"/proc/self/exe".as_ptr(), argv.as_ptr(), envp.as_ptr());
            }
            errno()
        });
        assert_eq!(ended, Ended::Exited(PROBE_PASSED));
    }

    #[test]
    #[ignore = "run under the filter by threads_start_under_the_filter"]
    fn threads_probe() {
        let under_filter = std::env::var_os(PROBE_ENV_NAME).is_some();
        if under_filter {
            // SAFETY: unshare takes an integer and touches no memory of ours.
            let ret = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
            assert_eq!(
                (ret, errno()),
                (-1, libc::EPERM),
                "the filter is not active"
            );
        }
        let thread = std::thread::spawn(|| 6 * 7);
        assert_eq!(thread.join().unwrap(), 42);
        if under_filter {
            std::process::exit(PROBE_PASSED);
        }
    }

    #[test]
    fn the_policy_is_shared_between_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<SeccompPolicy>();
    }

    #[test]
    fn denied_syscalls_name_every_rule() {
        let names = denied_syscalls();
        for name in [
            "ptrace",
            "mount",
            "unshare",
            "bpf",
            "clone",
            "ioctl",
            "personality",
            "clone3",
        ] {
            assert!(names.contains(&name), "{name} is missing");
        }
        assert_eq!(
            names.len(),
            ALWAYS_DENIED.len() + DENIED_FOR_SOME_ARGUMENTS.len() + 1
        );
    }
}
