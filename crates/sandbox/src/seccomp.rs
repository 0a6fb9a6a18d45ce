//! The box's seccomp-bpf policy: a deny-list of dangerous system calls.
//!
//! Everything not listed here is allowed; what is listed either lets the kernel be
//! attacked from inside the box (bpf, io_uring, keyctl, perf_event_open, userfaultfd,
//! modules, kexec, socket families other than unix, IP and netlink's route),
//! lets the program leave or reshape its box (mount family, pivot_root, new
//! namespaces, setns), reach other processes (ptrace, process_vm_*, pidfd_getfd,
//! TIOCSTI), watch or signal other boxes through the trees they share (inotify,
//! fanotify, dnotify, flock) or change the host (clock, swap, reboot).
//!
//! The policy is one hand-written classic BPF program:
//!
//! ```text
//! arch != AUDIT_ARCH_X86_64                       -> KILL_PROCESS  (i386, int 0x80)
//! nr & __X32_SYSCALL_BIT                          -> KILL_PROCESS  (x32)
//! clone3                                          -> ERRNO(ENOSYS)
//! ALWAYS_DENIED                                   -> ERRNO(EPERM)
//! clone if (u32)flags & CLONE_NEW* != 0           -> ERRNO(EPERM)
//! ioctl if (u32)cmd is TIOCSTI or TIOCLINUX       -> ERRNO(EPERM)
//! personality unless (u32)persona is 0 or ~0      -> ERRNO(EPERM)
//! fcntl if (u32)cmd is F_NOTIFY                   -> ERRNO(EPERM)
//! flock                                           -> ERRNO(0): succeeds, locks nothing
//! socket, socketpair unless (u32)family is
//!   AF_UNIX, AF_INET, AF_INET6 or AF_NETLINK      -> ERRNO(EAFNOSUPPORT)
//!   AF_NETLINK unless (u32)protocol is ROUTE      -> ERRNO(EPROTONOSUPPORT)
//! otherwise                                       -> ALLOW
//! ```
//!
//! `clone3` fails with `ENOSYS` because its flags live in a struct the filter
//! cannot read; libc then falls back to `clone`, whose flags it can read. Only the
//! low 32 bits of the `clone` flags are checked: the kernel's `clone` reads nothing
//! else (`lower_32_bits(clone_flags)` in `kernel/fork.c`), so high bits can neither
//! create a namespace nor need refusing. Likewise the kernel truncates the `ioctl`
//! and `fcntl` commands, the `personality` persona and `socket`'s `int` arguments
//! to 32 bits, and so does the filter. Refusals of sockets and locks use the errno
//! a kernel without that feature gives, so that programs degrade gracefully.
//!
//! The program is short because the kernel checks, converts and JIT-compiles it at
//! every install (once per box), at a cost that grows with its length, and also
//! runs it once per system call number to fill its seccomp action cache
//! (Linux 5.11+), at a cost that grows with the length of the path a number takes.
//! So the number is looked up in a balanced binary search tree of `JGE`
//! comparisons over the ranges of numbers that share a decision (about 60 ranges,
//! 6 comparisons deep), whose leaves jump to a few shared blocks at the end of
//! the program. The cache then lets every system call decided by its number alone
//! skip the filter entirely: only the denied ones and `clone`, `ioctl` and
//! `personality` run it, through about 15 instructions.
//!
//! The program is built once per sandbox ([`SeccompPolicy::new`]) and installed in
//! each box between `clone` and `execve` ([`SeccompPolicy::install`]), where only
//! async-signal-safe code may run.

use std::mem::offset_of;

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
    // Linux 6.15: open_tree with mount attributes, the mount API again.
    ("open_tree_attr", SYS_OPEN_TREE_ATTR),
    // Linux 6.8: the mount table by id. A box's own table only, but what they show
    // of it (bind sources) is what /proc/self/mountinfo is trimmed of, and no
    // program needs them.
    ("statmount", SYS_STATMOUNT),
    ("listmount", SYS_LISTMOUNT),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    // Watching files: /usr and other read-only trees are shared by every box, so a
    // watch there sees what other tenants run (inotify, fanotify; dnotify is
    // fcntl's F_NOTIFY, refused with the fcntl rules). Runtimes only use them for
    // optional file watching (Node's fs.watch, Java's WatchService).
    ("fanotify_init", libc::SYS_fanotify_init),
    ("inotify_init", libc::SYS_inotify_init),
    ("inotify_init1", libc::SYS_inotify_init1),
    // Which pages of a file are cached: another tenant's reads of shared files.
    ("cachestat", SYS_CACHESTAT),
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
    ("quotactl_fd", libc::SYS_quotactl_fd),
    // Linux 6.8: the LSM attributes of this process and the list of LSMs. Nothing
    // a program needs; what they reveal is the host's security set-up.
    ("lsm_get_self_attr", SYS_LSM_GET_SELF_ATTR),
    ("lsm_set_self_attr", SYS_LSM_SET_SELF_ATTR),
    ("lsm_list_modules", SYS_LSM_LIST_MODULES),
    // Linux 6.17: inode attributes by path, new code no runtime uses yet (their
    // FS_IOC_FS[GS]ETXATTR ioctls stay allowed).
    ("file_getattr", SYS_FILE_GETATTR),
    ("file_setattr", SYS_FILE_SETATTR),
    ("vhangup", libc::SYS_vhangup),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
];
#[cfg(not(target_arch = "x86_64"))]
const ALWAYS_DENIED: &[(&str, i64)] = &[];

// x86_64 numbers of system calls newer than some libc releases.
const SYS_CACHESTAT: i64 = 451;
const SYS_STATMOUNT: i64 = 457;
const SYS_LISTMOUNT: i64 = 458;
const SYS_LSM_GET_SELF_ATTR: i64 = 459;
const SYS_LSM_SET_SELF_ATTR: i64 = 460;
const SYS_LSM_LIST_MODULES: i64 = 461;
const SYS_OPEN_TREE_ATTR: i64 = 467;
const SYS_FILE_GETATTR: i64 = 468;
const SYS_FILE_SETATTR: i64 = 469;

/// `flock`, answered "done" without taking any lock.
///
/// A `flock` lock needs no write access: one box could lock a file of /usr (or
/// of any read-only tree boxes share) and another box would see `EWOULDBLOCK`,
/// a channel between tenants and a way to stall anything that locks that file.
/// The kernel cannot be told which files to allow, and seccomp cannot see paths.
/// Refusing it (`ENOLCK`) breaks toolchains that lock their caches (Go 1.24's
/// build cache fails the build), so every `flock` succeeds and locks nothing: a
/// box is one tenant, and a lock between boxes is what must not exist.
const FLOCK: (&str, i64) = ("flock", libc::SYS_flock);

/// System calls refused with `EPERM` for some arguments only, with the block of
/// the program that checks their arguments.
const DENIED_FOR_SOME_ARGUMENTS: &[(&str, i64, Decision)] = &[
    ("clone", libc::SYS_clone, Decision::CheckClone),
    ("ioctl", libc::SYS_ioctl, Decision::CheckIoctl),
    (
        "personality",
        libc::SYS_personality,
        Decision::CheckPersonality,
    ),
    ("socket", libc::SYS_socket, Decision::CheckSocket),
    ("socketpair", libc::SYS_socketpair, Decision::CheckSocket),
    ("fcntl", libc::SYS_fcntl, Decision::CheckFcntl),
];

/// The socket families a box may open; the others fail with `EAFNOSUPPORT`, as on
/// a kernel built without them, so that programs degrade gracefully.
///
/// Unix sockets are how processes of one box talk; IPv4 and IPv6 are the network
/// (in a box without network they reach only the box's own loopback). Everything
/// else is kernel attack surface a program never needs, or worse: `AF_VSOCK`
/// shares its port space with the host, `AF_PACKET`, `AF_KEY`, `AF_BLUETOOTH`,
/// `AF_ALG` (the kernel's crypto), `AF_TIPC`, `AF_XDP`, `AF_CAN`... Netlink is
/// checked by protocol, see [`NETLINK_PROTOCOLS`].
const SOCKET_FAMILIES: [libc::c_int; 3] = [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6];

/// The netlink protocols a box may open; the others fail with `EPROTONOSUPPORT`.
///
/// Only `NETLINK_ROUTE`: glibc's `getaddrinfo` (`AI_ADDRCONFIG`), `getifaddrs` and
/// `if_nameindex`, libuv's and Go's and Java's interface lists read it. It shows
/// only the box's own network namespace, and changing anything there needs
/// `CAP_NET_ADMIN`, which no box has. The others are refused, notably
/// `NETLINK_KOBJECT_UEVENT`: the slot's network namespace belongs to the host's
/// user namespace, so a box bound to it received the host's device events.
const NETLINK_PROTOCOLS: [libc::c_int; 1] = [libc::NETLINK_ROUTE];

/// `fcntl(F_NOTIFY)`: dnotify, refused with `EPERM` like inotify.
///
/// fcntl's record locks (`F_SETLK`, `F_SETLKW`, `F_GETLK` and their `F_OFD_`
/// twins) stay allowed, unlike `flock`: SQLite locks every database file with
/// them (refused, the `sqlite3` shell and Python's `sqlite3` fail with "database
/// is locked" even in /tmp), and seccomp cannot tell /tmp from /usr. They are
/// also much less of a channel: a write lock needs the file open for writing,
/// which no box can do in a read-only tree, and read locks never conflict with
/// each other. What remains is `F_GETLK` telling a box that another holds a read
/// lock on a shared file: a covert channel between two cooperating programs,
/// like CPU or page-cache contention, not a way to watch or stall a victim.
/// The exception is the device nodes of /dev (null, zero...), which every box
/// may open for writing and which all boxes share: a write lock on /dev/null is
/// seen by the others. That channel too is one between cooperating programs.
const FCNTL_NOTIFY: libc::c_int = libc::F_NOTIFY;

/// The system call answered with `ENOSYS`, so that libc uses `clone`.
const CLONE3: (&str, i64) = ("clone3", libc::SYS_clone3);

/// The `clone` flags that create a namespace: any one of them is refused. All are
/// in the low 32 bits, the only ones the kernel's `clone` reads. (`CLONE_NEWTIME`
/// overlaps the exit signal byte of `clone`: refusing it refuses exit signals of
/// 128 and more, which the kernel refuses anyway.)
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
const SECCOMP_DATA_NR: u32 = offset_of!(libc::seccomp_data, nr) as u32;
/// Offset of `arch` in `struct seccomp_data`.
const SECCOMP_DATA_ARCH: u32 = offset_of!(libc::seccomp_data, arch) as u32;

/// Offset in `struct seccomp_data` of the low 32 bits of argument `index`
/// (little-endian: the first half of the 64-bit `args[index]`).
const fn low_half_of_argument(index: u32) -> u32 {
    offset_of!(libc::seccomp_data, args) as u32 + 8 * index
}

/// The classic BPF instructions the program is made of (`BPF_K`: against `k`).
/// `A = seccomp_data[k]`, 32 bits.
const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
/// `if A == k` jump `jt` instructions, else `jf`.
const JUMP_IF_EQUAL: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
/// `if A >= k` (unsigned) jump `jt` instructions, else `jf`.
const JUMP_IF_AT_LEAST: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
/// `if A & k != 0` jump `jt` instructions, else `jf`.
const JUMP_IF_ANY_BIT: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
/// `return k`.
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The names of every system call the policy refuses, always or for some arguments
/// (`clone` with a namespace flag, `ioctl` TIOCSTI/TIOCLINUX, `personality`
/// changes, `clone3` with `ENOSYS`), for `runbox doctor` and the documentation.
pub(crate) fn denied_syscalls() -> Vec<&'static str> {
    ALWAYS_DENIED
        .iter()
        .map(|&(name, _)| name)
        .chain(DENIED_FOR_SOME_ARGUMENTS.iter().map(|&(name, _, _)| name))
        .chain([CLONE3.0, FLOCK.0])
        .collect()
}

/// The box's seccomp policy, compiled once and installed in every box.
pub(crate) struct SeccompPolicy {
    /// The classic BPF program, at most `BPF_MAXINSNS` instructions.
    program: Vec<libc::sock_filter>,
}

impl SeccompPolicy {
    /// Builds the program. Called once per Sandbox, before any box.
    pub fn new() -> Result<SeccompPolicy> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Error::Seccomp(format!(
                "unsupported architecture {}: the seccomp policy is written for x86_64 only",
                std::env::consts::ARCH
            )));
        }
        let program = program()?;
        if program.len() > libc::BPF_MAXINSNS as usize {
            return Err(Error::Seccomp(format!(
                "filter has {} instructions, more than the kernel's {}",
                program.len(),
                libc::BPF_MAXINSNS
            )));
        }
        Ok(SeccompPolicy { program })
    }

    /// Installs the filter in the calling process. MUST be async-signal-safe: it is
    /// called in a child process between clone() and execve() of a multithreaded
    /// parent, so it only makes one raw system call on data prepared in
    /// [`new`](Self::new).
    ///
    /// Precondition: `no_new_privs` is already set (or the caller has CAP_SYS_ADMIN).
    /// Returns the raw errno on failure (an [`Error`] would allocate).
    pub fn install(&self) -> Result<(), i32> {
        let fprog = libc::sock_fprog {
            // `new` checked that the program has at most BPF_MAXINSNS (4096) instructions.
            len: self.program.len() as libc::c_ushort,
            // The kernel only reads the program (it copies it); `mut` is the C API's.
            filter: self.program.as_ptr().cast_mut(),
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
}

/// The calling thread's errno, read without allocating.
fn errno() -> i32 {
    // SAFETY: __errno_location returns a valid, aligned pointer to the calling
    // thread's errno, which lives as long as the thread.
    unsafe { *libc::__errno_location() }
}

/// What the program does with a system call: each decision is one block of
/// instructions at the end of the program, the target of the search tree's leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Let the system call run.
    Allow,
    /// Fail it with `EPERM`.
    Deny,
    /// Fail it with `ENOSYS` (`clone3`).
    Enosys,
    /// Kill the process (a system call of another ABI).
    Kill,
    /// `clone(flags, ...)`: [`Deny`](Self::Deny) if `flags` has a namespace flag.
    CheckClone,
    /// `ioctl(fd, cmd, ...)`: [`Deny`](Self::Deny) if `cmd` injects into a terminal.
    CheckIoctl,
    /// `personality(persona)`: [`Deny`](Self::Deny) unless `persona` is
    /// `PER_LINUX` or a query.
    CheckPersonality,
    /// `socket(family, type, protocol)` and `socketpair`: [`NoFamily`](Self::NoFamily)
    /// unless `family` is in [`SOCKET_FAMILIES`] or netlink, a netlink socket
    /// [`NoProtocol`](Self::NoProtocol) unless its protocol is in [`NETLINK_PROTOCOLS`].
    CheckSocket,
    /// `fcntl(fd, cmd, ...)`: [`Deny`](Self::Deny) for `F_NOTIFY`.
    CheckFcntl,
    /// Answer success without doing it (`flock`).
    NoLocks,
    /// Fail it with `EAFNOSUPPORT` (a socket family).
    NoFamily,
    /// Fail it with `EPROTONOSUPPORT` (a netlink protocol).
    NoProtocol,
}

/// The system call numbers from `first` up to the next range's `first`, all
/// decided alike.
#[derive(Clone, Copy, Debug)]
struct Range {
    first: u32,
    decision: Decision,
}

/// Splits the system call numbers into ranges of numbers decided alike, in
/// increasing order, each decided unlike its neighbours. The last range is allowed
/// and runs up to `u32::MAX`: the kernel fails unknown numbers with `ENOSYS` (and
/// those with the x32 bit never reach the search tree).
fn ranges() -> Result<Vec<Range>> {
    let mut calls = ALWAYS_DENIED
        .iter()
        .map(|&(name, nr)| (name, nr, Decision::Deny))
        .chain(DENIED_FOR_SOME_ARGUMENTS.iter().copied())
        .chain([(CLONE3.0, CLONE3.1, Decision::Enosys)])
        .chain([(FLOCK.0, FLOCK.1, Decision::NoLocks)])
        .map(|(name, nr, decision)| match u32::try_from(nr) {
            Ok(nr) if nr & X32_SYSCALL_BIT == 0 => Ok((nr, name, decision)),
            _ => Err(Error::Seccomp(format!("{name} has an odd number {nr}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    calls.sort_unstable_by_key(|&(nr, _, _)| nr);
    if let Some(pair) = calls.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(Error::Seccomp(format!(
            "{} and {} are both listed as number {}",
            pair[0].1, pair[1].1, pair[0].0
        )));
    }
    let mut ranges = Vec::new();
    let mut start = |first: u32, decision: Decision| {
        // A range emptied by the next one is dropped, one decided like the previous
        // one extends it.
        if ranges
            .last()
            .is_some_and(|range: &Range| range.first == first)
        {
            ranges.pop();
        }
        if ranges
            .last()
            .is_none_or(|range: &Range| range.decision != decision)
        {
            ranges.push(Range { first, decision });
        }
    };
    start(0, Decision::Allow);
    for (nr, _, decision) in calls {
        start(nr, decision);
        // Below X32_SYSCALL_BIT, so no overflow.
        start(nr + 1, Decision::Allow);
    }
    Ok(ranges)
}

/// Where a jump of the program under construction goes.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The next instruction; also what instructions other than jumps carry.
    Next,
    /// The instruction at this index.
    At(usize),
    /// The first instruction of the block of this decision.
    Block(Decision),
}

/// An instruction whose jump offsets are not known yet.
struct Pending {
    code: u16,
    k: u32,
    then: Target,
    otherwise: Target,
}

/// Builds a program, then turns its targets into jump offsets.
#[derive(Default)]
struct Builder {
    program: Vec<Pending>,
    blocks: Vec<(Decision, usize)>,
}

impl Builder {
    fn emit(&mut self, code: u16, k: u32, then: Target, otherwise: Target) -> usize {
        self.program.push(Pending {
            code,
            k,
            then,
            otherwise,
        });
        self.program.len() - 1
    }

    /// `A = seccomp_data[offset]`, 32 bits.
    fn load(&mut self, offset: u32) {
        self.emit(LOAD_WORD, offset, Target::Next, Target::Next);
    }

    /// A conditional jump, to `then` if the condition holds, else to `otherwise`.
    fn jump(&mut self, code: u16, k: u32, then: Target, otherwise: Target) -> usize {
        self.emit(code, k, then, otherwise)
    }

    /// `return action`.
    fn ret(&mut self, action: u32) {
        self.emit(RETURN, action, Target::Next, Target::Next);
    }

    /// Starts the block of `decision` here.
    fn block(&mut self, decision: Decision) {
        self.blocks.push((decision, self.program.len()));
    }

    /// Emits a balanced binary search tree that sends the system call number in `A`
    /// to the block of its range; returns where the tree starts. A tree of one
    /// range is no instruction: just that range's block.
    fn search_tree(&mut self, ranges: &[Range]) -> Target {
        if let [range] = ranges {
            return Target::Block(range.decision);
        }
        let middle = ranges.len() / 2;
        let node = self.jump(
            JUMP_IF_AT_LEAST,
            ranges[middle].first,
            Target::Next,
            Target::Next,
        );
        // Pre-order, so that every jump goes forward, as classic BPF requires.
        let below = self.search_tree(&ranges[..middle]);
        let above = self.search_tree(&ranges[middle..]);
        self.program[node].then = above;
        self.program[node].otherwise = below;
        Target::At(node)
    }

    /// The finished program: every target turned into a forward jump offset.
    fn finish(self) -> Result<Vec<libc::sock_filter>> {
        let offset = |target: Target, at: usize| {
            let index = match target {
                // Also the offsets, unused, of instructions other than jumps.
                Target::Next => return Ok(0),
                Target::At(index) => Some(index),
                Target::Block(decision) => self
                    .blocks
                    .iter()
                    .find(|&&(block, _)| block == decision)
                    .map(|&(_, index)| index),
            };
            index
                .filter(|&index| index < self.program.len())
                .and_then(|index| index.checked_sub(at + 1))
                .and_then(|offset| u8::try_from(offset).ok())
                .ok_or_else(|| {
                    Error::Seccomp(format!("instruction {at} cannot jump to {target:?}"))
                })
        };
        self.program
            .iter()
            .enumerate()
            .map(|(at, insn)| {
                Ok(libc::sock_filter {
                    code: insn.code,
                    jt: offset(insn.then, at)?,
                    jf: offset(insn.otherwise, at)?,
                    k: insn.k,
                })
            })
            .collect()
    }
}

/// The whole policy as one classic BPF program (see the module documentation).
fn program() -> Result<Vec<libc::sock_filter>> {
    use Decision::*;
    use Target::{Block, Next};
    let mut b = Builder::default();

    // Other ABIs: i386 (another arch), x32 (native arch, numbers with the x32 bit).
    b.load(SECCOMP_DATA_ARCH);
    b.jump(JUMP_IF_EQUAL, AUDIT_ARCH_X86_64, Next, Block(Kill));
    b.load(SECCOMP_DATA_NR);
    let x32 = b.jump(JUMP_IF_ANY_BIT, X32_SYSCALL_BIT, Block(Kill), Next);
    b.program[x32].otherwise = b.search_tree(&ranges()?);

    // The blocks the tree's leaves jump to, those that read arguments first so
    // that they can jump forward to the shared returns.
    b.block(CheckClone);
    b.load(low_half_of_argument(0));
    let namespace_flags = NAMESPACE_FLAGS
        .iter()
        .fold(0, |all, &flag| all | flag as u32);
    b.jump(JUMP_IF_ANY_BIT, namespace_flags, Block(Deny), Block(Allow));

    b.block(CheckIoctl);
    b.load(low_half_of_argument(1));
    let [first, last] = TERMINAL_INJECTION_IOCTLS.map(|cmd| cmd as u32);
    b.jump(JUMP_IF_EQUAL, first, Block(Deny), Next);
    b.jump(JUMP_IF_EQUAL, last, Block(Deny), Block(Allow));

    b.block(CheckPersonality);
    b.load(low_half_of_argument(0));
    b.jump(JUMP_IF_EQUAL, PER_LINUX as u32, Block(Allow), Next);
    b.jump(
        JUMP_IF_EQUAL,
        PERSONALITY_QUERY as u32,
        Block(Allow),
        Block(Deny),
    );

    b.block(CheckSocket);
    b.load(low_half_of_argument(0));
    for family in SOCKET_FAMILIES {
        b.jump(JUMP_IF_EQUAL, family as u32, Block(Allow), Next);
    }
    b.jump(
        JUMP_IF_EQUAL,
        libc::AF_NETLINK as u32,
        Next,
        Block(NoFamily),
    );
    b.load(low_half_of_argument(2));
    let [route] = NETLINK_PROTOCOLS;
    b.jump(JUMP_IF_EQUAL, route as u32, Block(Allow), Block(NoProtocol));

    b.block(CheckFcntl);
    b.load(low_half_of_argument(1));
    b.jump(
        JUMP_IF_EQUAL,
        FCNTL_NOTIFY as u32,
        Block(Deny),
        Block(Allow),
    );

    b.block(Allow);
    b.ret(libc::SECCOMP_RET_ALLOW);
    b.block(Deny);
    b.ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    b.block(Enosys);
    b.ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    b.block(NoLocks);
    // SECCOMP_RET_ERRNO with errno 0: the call returns 0 and does nothing.
    b.ret(libc::SECCOMP_RET_ERRNO);
    b.block(NoFamily);
    b.ret(libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32);
    b.block(NoProtocol);
    b.ret(libc::SECCOMP_RET_ERRNO | libc::EPROTONOSUPPORT as u32);
    b.block(Kill);
    b.ret(libc::SECCOMP_RET_KILL_PROCESS);

    b.finish()
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
        crate::cgroup::settle_for_tests();
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
            "flock",
            "socket",
            "fcntl",
            "open_tree_attr",
            "inotify_init1",
        ] {
            assert!(names.contains(&name), "{name} is missing");
        }
        assert_eq!(
            names.len(),
            ALWAYS_DENIED.len() + DENIED_FOR_SOME_ARGUMENTS.len() + 2
        );
    }

    #[test]
    fn the_program_stays_short() {
        let length = policy().program.len();
        assert!(length < 120, "the program has {length} instructions");
    }

    #[test]
    fn the_kernel_accepts_the_program() {
        // The child exits with INSTALL_FAILED if seccomp() refuses the program.
        assert_eq!(run_in_child(true, || SUCCEEDED), Ended::Exited(SUCCEEDED));
    }

    /// Runs `program` on `data` as the kernel would, for the instructions it uses.
    fn run_program(program: &[libc::sock_filter], data: &libc::seccomp_data) -> u32 {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend(data.nr.to_le_bytes());
        bytes.extend(data.arch.to_le_bytes());
        bytes.extend(data.instruction_pointer.to_le_bytes());
        data.args
            .iter()
            .for_each(|arg| bytes.extend(arg.to_le_bytes()));
        let mut a = 0u32;
        let mut pc = 0;
        loop {
            let insn = program[pc];
            pc += 1;
            let taken = match insn.code {
                LOAD_WORD => {
                    let at = insn.k as usize;
                    a = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
                    continue;
                }
                RETURN => return insn.k,
                JUMP_IF_EQUAL => a == insn.k,
                JUMP_IF_AT_LEAST => a >= insn.k,
                JUMP_IF_ANY_BIT => a & insn.k != 0,
                code => panic!("unexpected instruction code {code:#x}"),
            };
            pc += usize::from(if taken { insn.jt } else { insn.jf });
        }
    }

    /// What the policy must answer, written from the tables without the program.
    #[allow(clippy::unnecessary_cast, reason = "libc::Ioctl is c_int on musl")]
    fn expected_action(arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        if arch != AUDIT_ARCH_X86_64 || nr & X32_SYSCALL_BIT != 0 {
            return libc::SECCOMP_RET_KILL_PROCESS;
        }
        let nr = i64::from(nr);
        if nr == CLONE3.1 {
            return libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        }
        if nr == FLOCK.1 {
            return libc::SECCOMP_RET_ERRNO;
        }
        if nr == libc::SYS_socket || nr == libc::SYS_socketpair {
            let family = (args[0] & 0xffff_ffff) as libc::c_int;
            let protocol = (args[2] & 0xffff_ffff) as libc::c_int;
            return if SOCKET_FAMILIES.contains(&family)
                || family == libc::AF_NETLINK && NETLINK_PROTOCOLS.contains(&protocol)
            {
                libc::SECCOMP_RET_ALLOW
            } else if family == libc::AF_NETLINK {
                libc::SECCOMP_RET_ERRNO | libc::EPROTONOSUPPORT as u32
            } else {
                libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32
            };
        }
        let refused = ALWAYS_DENIED.iter().any(|&(_, denied)| denied == nr)
            || match nr {
                libc::SYS_clone => NAMESPACE_FLAGS
                    .iter()
                    .any(|&flag| args[0] & flag as u64 != 0),
                libc::SYS_ioctl => TERMINAL_INJECTION_IOCTLS
                    .iter()
                    .any(|&cmd| args[1] & 0xffff_ffff == cmd as u64),
                libc::SYS_personality => {
                    ![PER_LINUX, PERSONALITY_QUERY].contains(&(args[0] & 0xffff_ffff))
                }
                libc::SYS_fcntl => args[1] & 0xffff_ffff == FCNTL_NOTIFY as u64,
                _ => false,
            };
        if refused {
            EPERM
        } else {
            libc::SECCOMP_RET_ALLOW
        }
    }

    #[test]
    #[allow(clippy::unnecessary_cast, reason = "libc::Ioctl is c_int on musl")]
    fn the_program_decides_every_system_call_as_the_tables_say() {
        const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
        let program = &policy().program;
        let high = 0xffff_ffff_0000_0000u64;
        let mut values = vec![0, 1, high, u64::MAX, PER_LINUX, PERSONALITY_QUERY];
        values.extend([8, 0x1_0000_0008, libc::SIGCHLD as u64]);
        for flag in NAMESPACE_FLAGS {
            values.extend([flag as u64, flag as u64 | high, !(flag as u64)]);
        }
        for cmd in TERMINAL_INJECTION_IOCTLS.map(|cmd| cmd as u64) {
            values.extend([cmd, cmd | high, cmd + 1, cmd - 1, libc::FIOCLEX as u64]);
        }
        let notify = FCNTL_NOTIFY as u64;
        values.extend([notify, notify | high, notify + 1, libc::F_SETLK as u64]);
        for family in SOCKET_FAMILIES.into_iter().chain([libc::AF_NETLINK]) {
            let family = family as u64;
            values.extend([family, family | high, family + 1]);
        }
        values.extend([libc::AF_VSOCK as u64, libc::NETLINK_KOBJECT_UEVENT as u64]);
        let numbers = (0..1024).chain([
            0x3fff_ffff,
            0x4000_0000,
            0x4000_0000 | libc::SYS_getpid as u32,
            0x7fff_ffff,
            0x8000_0000,
            0xbfff_ffff,
            0xffff_ffff,
        ]);
        let mut checked = 0;
        for nr in numbers {
            let argument_checked = DENIED_FOR_SOME_ARGUMENTS
                .iter()
                .any(|&(_, number, _)| i64::from(nr) == number);
            let firsts: &[u64] = if argument_checked {
                &values
            } else {
                &[0, u64::MAX]
            };
            for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0] {
                for &arg0 in firsts {
                    for &arg1 in firsts {
                        // The third argument is socket's protocol: the second's
                        // values again, so that each pair is tried.
                        let args = [arg0, arg1, arg1, 0, 0, 0];
                        let data = libc::seccomp_data {
                            nr: nr as i32,
                            arch,
                            instruction_pointer: 0,
                            args,
                        };
                        assert_eq!(
                            run_program(program, &data),
                            expected_action(arch, nr, args),
                            "arch {arch:#x}, nr {nr:#x}, args {arg0:#x} {arg1:#x}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 3 * 1024);
    }
}
