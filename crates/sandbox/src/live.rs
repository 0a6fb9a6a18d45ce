//! Talking to a box while it runs: stdin from a pipe the caller writes, output
//! handed over chunk by chunk as it is read, and signals that reach the program.
//!
//! A signal is not sent to the program directly (the supervisor does not know its
//! pid, and a pid could be reused): it is queued to the box's init, through the
//! init's pidfd, as the real-time signal [`forward_signal`] carrying the wanted
//! signal's number. The init's handler sends that signal to the program's process
//! group, as a terminal's Ctrl-C would. The init blocks the carrier signal until the
//! program has started, so a signal sent early waits for it instead of being lost.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::outcome::signal_name;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
}

/// A run of bytes of one stream, in the order the supervisor read them: with
/// [`Outcome::interleaved`](crate::Outcome::interleaved) they rebuild the output as
/// a terminal would have shown it (to the precision of one read of a pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputChunk {
    /// The stream.
    pub stream: Stream,
    /// How many bytes of that stream, following the previous chunk of it.
    pub len: usize,
}

/// Where a live run's output goes as it is read: the stream, the new bytes (one
/// read of a pipe, at most 64 KiB), and the box's wall deadline.
///
/// The box's output is read only when the sink returns, so a sink may wait (for
/// a slow reader of its own) to hold the program back: the pipe fills and the
/// program blocks on its writes. It must not wait past the deadline: the limits
/// are checked, and the box killed at them, between calls.
pub type OutputSink<'a> = &'a mut (dyn FnMut(Stream, &[u8], Instant) + Send);

/// The connections of one live run: see [`crate::Sandbox::run_live`].
#[derive(Default)]
pub struct LiveIo<'a> {
    /// The read end of a pipe the program gets as stdin, in place of the
    /// configured bytes; the caller keeps the write end.
    pub stdin: Option<OwnedFd>,
    /// The write end of a pipe the program gets as stdout, in place of the
    /// captured one: what it writes goes straight to the reader (another box, in
    /// [`crate::Sandbox::run_pair`]), so it is neither kept in the outcome nor
    /// counted against the output limit. With `stderr_to_stdout`, stderr goes
    /// there too.
    pub stdout: Option<OwnedFd>,
    /// Called with every chunk of output as soon as it is read (only what is kept
    /// under the output limit).
    pub output: Option<OutputSink<'a>>,
    /// Attached to the box for the length of the run, so that its holder can
    /// signal the program.
    pub signals: Option<&'a Signaller>,
    /// For a box in TTY mode ([`crate::BoxConfig::with_tty`]): attached to its
    /// terminal for the length of the run, so that its holder can resize it.
    pub terminal: Option<&'a crate::Terminal>,
}

/// The real-time signal that carries a forwarded signal to a box's init.
pub(crate) fn forward_signal() -> libc::c_int {
    // SIGRTMIN itself is left to programs that pick "the first free" one.
    libc::SIGRTMIN() + 1
}

/// Signals the program of whichever box it is attached to; cloned handles share
/// the box. Without a box attached, signals are dropped (and say so).
#[derive(Clone, Default)]
pub struct Signaller {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// The pidfd of the attached box's init.
    target: Mutex<Option<OwnedFd>>,
    /// Once set, every box attached is killed at once.
    cancelled: AtomicBool,
}

impl Signaller {
    /// A handle attached to no box yet.
    pub fn new() -> Signaller {
        Signaller::default()
    }

    /// Sends `signal` (1 to 31) to the program's process group. `Ok(false)` when no
    /// box is attached (none started yet, or it has ended).
    pub fn send(&self, signal: i32) -> Result<bool> {
        if !(1..=31).contains(&signal) {
            return Err(Error::InvalidConfig(format!(
                "signal {signal} cannot be forwarded: only signals 1 to 31 can"
            )));
        }
        let target = self.target();
        let Some(pidfd) = target.as_ref() else {
            return Ok(false);
        };
        let delivered = queue_to_init(pidfd, signal).map_err(|source| Error::Syscall {
            call: "pidfd_send_signal",
            source,
        })?;
        if delivered {
            tracing::debug!("forwarded {} to a box", signal_name(signal));
        }
        Ok(delivered)
    }

    /// Kills the attached box, and every box attached from now on: for a caller
    /// that has gone away.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Some(pidfd) = self.target().as_ref() {
            kill_init(pidfd);
        }
    }

    /// Whether [`Signaller::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Attaches the box whose init has this pidfd (a duplicate the signaller
    /// owns) until the returned guard is dropped.
    pub(crate) fn attach(&self, pidfd: OwnedFd) -> Attached<'_> {
        let mut target = self.target();
        if self.is_cancelled() {
            kill_init(&pidfd);
        }
        let fd = pidfd.as_raw_fd();
        *target = Some(pidfd);
        Attached {
            signaller: self,
            fd,
        }
    }

    fn target(&self) -> MutexGuard<'_, Option<OwnedFd>> {
        self.inner
            .target
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A box attached to a [`Signaller`]; dropping it detaches the box (it has
/// ended, or its run failed), so no signal is sent to what is left of it.
pub(crate) struct Attached<'a> {
    signaller: &'a Signaller,
    /// The attached pidfd's number: a box attached later (the signaller moved on
    /// to the next stage) is not detached by this one's end.
    fd: RawFd,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        let mut target = self.signaller.target();
        if target.as_ref().map(AsRawFd::as_raw_fd) == Some(self.fd) {
            *target = None;
        }
    }
}

/// The kernel's `siginfo_t` for `SI_QUEUE` as 64-bit Linux lays it out (x86_64,
/// aarch64): three ints, padding, the sender's pid and uid, the value; 128 bytes.
#[cfg(target_pointer_width = "64")]
#[repr(C)]
struct QueuedInfo {
    signo: libc::c_int,
    errno: libc::c_int,
    code: libc::c_int,
    _pad: libc::c_int,
    pid: libc::pid_t,
    uid: libc::uid_t,
    value: usize,
    _rest: [u8; 128 - 32],
}

// The layout above, checked when it is built.
const _: () = assert!(size_of::<QueuedInfo>() == size_of::<libc::siginfo_t>());

/// Queues the carrier signal, with `signal` as its value, to the init behind
/// `pidfd`; false when the box has already ended.
fn queue_to_init(pidfd: &OwnedFd, signal: i32) -> std::io::Result<bool> {
    let carrier = forward_signal();
    let info = QueuedInfo {
        signo: carrier,
        errno: 0,
        code: libc::SI_QUEUE,
        _pad: 0,
        // SAFETY: getpid and getuid have no preconditions.
        pid: unsafe { libc::getpid() },
        // SAFETY: as above.
        uid: unsafe { libc::getuid() },
        value: signal as usize,
        _rest: [0; 96],
    };
    // SAFETY: pidfd_send_signal reads a siginfo of the kernel's size from `info`,
    // which lives for the call; the pidfd is owned, so it cannot name a reused pid.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            carrier,
            &info as *const QueuedInfo,
            0,
        )
    };
    if rc < 0 {
        let error = std::io::Error::last_os_error();
        // The box ended between its attachment and now: nothing to signal.
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(false);
        }
        return Err(error);
    }
    Ok(true)
}

fn kill_init(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal on an owned pidfd, without siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            0,
            0,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_info_has_the_kernel_size() {
        assert_eq!(size_of::<QueuedInfo>(), size_of::<libc::siginfo_t>());
        assert_eq!(std::mem::offset_of!(QueuedInfo, value), 24);
    }

    #[test]
    fn signals_outside_the_standard_range_are_refused() {
        let signaller = Signaller::new();
        assert!(signaller.send(0).is_err());
        assert!(signaller.send(forward_signal()).is_err());
        assert!(!signaller.send(libc::SIGINT).unwrap());
    }
}
