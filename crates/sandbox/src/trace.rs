//! The init traces the program to learn its own memory peak.
//!
//! A box's cgroup counts memory in per-CPU batches of 64 pages and charges page
//! cache to whoever read a file first, so an empty program reads anywhere from 0
//! to 512 KiB; and `ru_maxrss` keeps, at exec, the peak of the address space the
//! program replaced (the init, a copy of runbox). The exact figure is the
//! program's own address space just before it ends: its peak resident set
//! (`VmHWM`) less the file pages it has mapped (`RssFile`, libraries and
//! binaries that are page cache, not the program's memory). The init reads it at
//! each traced thread's `PTRACE_EVENT_EXIT` stop, where the address space still
//! exists.
//!
//! The program asks to be traced (`PTRACE_TRACEME`) just before it execs, so
//! its exec stops it with SIGTRAP; the init then sets the options below. Its
//! threads are traced too (the thread that calls `exit_group` may be any of
//! them, and only that one stops at exit), but processes it starts are
//! detached at once: the first of them marks the run as several processes,
//! whose memory only the cgroup can add up. Signals pass through unchanged
//! except stops: a traced program is not stopped (its init would have to keep
//! a job-control state nobody uses in a box).
//!
//! Everything here runs in the box's init: system calls on the stack only.

use crate::sys;

/// The options set at the program's first stop (its exec).
const OPTIONS: libc::c_int = libc::PTRACE_O_TRACEEXIT
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_EXITKILL;

/// Once a first process is started, others need not be seen.
const OPTIONS_AFTER_FORK: libc::c_int =
    OPTIONS & !(libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACEVFORK);

/// Called in the program's process just before exec: asks its parent, the
/// init, to trace it. A host that refuses (Yama's `ptrace_scope` 3) leaves it
/// untraced, and its figure is the cgroup's.
pub(crate) fn trace_me() {
    // SAFETY: PTRACE_TRACEME takes no pointers and only marks this process.
    unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
}

/// What the init learns from the traced program.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tracer {
    /// Whether the program's exec stop was seen (it is traced).
    traced: bool,
    /// The program's own peak, in KiB, read at the last exit stop.
    pub peak_kb: Option<u32>,
    /// Whether the program started another process.
    pub forked: bool,
}

impl Tracer {
    /// Handles one ptrace stop of `tid` (a thread of `program`, or a process it
    /// just started) with wait status `status`, and lets it go on.
    pub(crate) fn on_stop(&mut self, program: libc::pid_t, tid: libc::pid_t, status: libc::c_int) {
        let signal = libc::WSTOPSIG(status);
        match status >> 16 {
            libc::PTRACE_EVENT_EXIT => {
                if let Some(kb) = own_peak_kb(tid) {
                    self.peak_kb = Some(kb);
                }
                resume(tid, 0);
            }
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => {
                self.forked = true;
                set_options(tid, OPTIONS_AFTER_FORK);
                resume(tid, 0);
            }
            libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_EXEC => resume(tid, 0),
            _ if tid == program && !self.traced => {
                // The first stop is the SIGTRAP of the program's exec: from now
                // on exec, exit and new threads are events, not signals.
                self.traced = true;
                set_options(tid, OPTIONS);
                resume(tid, if signal == libc::SIGTRAP { 0 } else { signal });
            }
            _ if !is_thread_of(program, tid) => {
                // A process the program started (its first stop): not traced.
                self.forked = true;
                // SAFETY: detaching a tracee in a ptrace stop; no pointers.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) };
            }
            // A new thread's first stop, or a stop signal: the program runs on.
            _ if signal == libc::SIGSTOP || is_group_stop(tid) => resume(tid, 0),
            _ => resume(tid, signal),
        }
    }
}

fn resume(tid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: PTRACE_CONT takes the signal as an integer; no pointers.
    unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0, signal as libc::c_long) };
}

fn set_options(tid: libc::pid_t, options: libc::c_int) {
    // SAFETY: PTRACE_SETOPTIONS takes the options as an integer; no pointers.
    unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, tid, 0, options as libc::c_long) };
}

/// Whether `tid` is a thread of the process `program` (tgkill with signal 0
/// only checks).
fn is_thread_of(program: libc::pid_t, tid: libc::pid_t) -> bool {
    // SAFETY: tgkill with signal 0 sends nothing.
    unsafe { libc::syscall(libc::SYS_tgkill, program, tid, 0) == 0 }
}

/// Whether the stop of `tid` is a group stop rather than a signal about to be
/// delivered: only the latter has a siginfo.
fn is_group_stop(tid: libc::pid_t) -> bool {
    // SAFETY: a zeroed siginfo_t is valid; ptrace writes one into it.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            0,
            &mut info as *mut libc::siginfo_t,
        ) < 0
    }
}

/// Reads `/proc/TID/status` (the box's /proc) and returns the peak less the
/// mapped file pages, in KiB.
fn own_peak_kb(tid: libc::pid_t) -> Option<u32> {
    let mut path = [0u8; 32];
    let path = proc_status_path(tid, &mut path)?;
    // SAFETY: `path` is NUL-terminated; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut text = [0u8; 8192];
    let read = sys::read_full(fd, &mut text);
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    let kb = own_peak_from_status(&text[..read.ok()?])?;
    u32::try_from(kb).ok()
}

/// `/proc/TID/status` with its NUL, written into `buf`.
fn proc_status_path(tid: libc::pid_t, buf: &mut [u8; 32]) -> Option<&[u8]> {
    let mut digits = [0u8; 10];
    let mut n = u32::try_from(tid).ok()?;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"/proc/");
    for i in (0..len).rev() {
        put(&digits[i..=i]);
    }
    put(b"/status\0");
    Some(&buf[..at])
}

/// `VmHWM` less `RssFile` from the text of a `/proc/PID/status`, in KiB.
fn own_peak_from_status(text: &[u8]) -> Option<u64> {
    let peak = status_field_kb(text, b"VmHWM:")?;
    let files = status_field_kb(text, b"RssFile:")?;
    Some(peak.saturating_sub(files))
}

/// The number after `name` on its line of a `/proc/PID/status` (in kB there).
fn status_field_kb(text: &[u8], name: &[u8]) -> Option<u64> {
    let line = text
        .split(|&b| b == b'\n')
        .find(|line| line.starts_with(name))?;
    let mut value: Option<u64> = None;
    for &b in &line[name.len()..] {
        match b {
            b'0'..=b'9' => {
                value = Some(value.unwrap_or(0).checked_mul(10)? + u64::from(b - b'0'));
            }
            b' ' | b'\t' if value.is_none() => {}
            _ => break,
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &[u8] = b"Name:\tmain\nVmPeak:\t    2560 kB\nVmHWM:\t    1280 kB\n\
        VmRSS:\t    1200 kB\nRssAnon:\t     148 kB\nRssFile:\t    1052 kB\nRssShmem:\t       0 kB\n";

    #[test]
    fn the_own_peak_is_the_peak_less_the_mapped_files() {
        assert_eq!(own_peak_from_status(STATUS), Some(1280 - 1052));
    }

    #[test]
    fn a_status_without_memory_lines_has_no_peak() {
        // A zombie's status has no Vm lines.
        assert_eq!(
            own_peak_from_status(b"Name:\tmain\nState:\tZ (zombie)\n"),
            None
        );
        assert_eq!(status_field_kb(b"VmHWM:\t  x kB\n", b"VmHWM:"), None);
    }

    #[test]
    fn the_status_path_names_the_thread() {
        let mut buf = [0u8; 32];
        assert_eq!(
            proc_status_path(4_194_304, &mut buf),
            Some(&b"/proc/4194304/status\0"[..])
        );
        assert_eq!(
            proc_status_path(1, &mut buf),
            Some(&b"/proc/1/status\0"[..])
        );
        assert_eq!(proc_status_path(-1, &mut buf), None);
    }

    #[test]
    fn this_process_has_a_peak_at_least_its_anonymous_memory() {
        let held = vec![1u8; 8 << 20];
        // SAFETY: gettid takes no arguments.
        let tid = unsafe { libc::gettid() };
        let kb = own_peak_kb(tid).expect("this process's status is readable");
        assert!(kb >= 8 * 1024, "{kb} KiB while holding 8 MiB");
        assert_eq!(held.iter().map(|&b| u64::from(b)).sum::<u64>(), 8 << 20);
    }
}
