//! The end of a box: its init process, the slot and cgroup it holds, and the
//! background reaper that tears boxes down after their result is known.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::Shared;
use crate::cgroup::BoxCgroup;
use crate::namespaces::Slot;
use crate::sys;

/// A box's init process, as the supervisor holds it. Dropping it kills and reaps it.
pub(crate) struct Child {
    pub pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

impl Child {
    /// Wraps a freshly cloned init.
    pub(crate) fn new(pid: libc::pid_t, pidfd: OwnedFd) -> Child {
        Child {
            pid,
            pidfd,
            reaped: false,
        }
    }

    /// The pidfd, readable once the init has exited.
    pub(crate) fn pidfd(&self) -> RawFd {
        self.pidfd.as_raw_fd()
    }

    /// A second descriptor of the pidfd, for a [`crate::Signaller`].
    pub(crate) fn pidfd_clone(&self) -> crate::Result<OwnedFd> {
        self.pidfd
            .try_clone()
            .map_err(|source| crate::Error::Syscall {
                call: "dup(pidfd)",
                source,
            })
    }

    /// SIGKILL to the box's init: the kernel then kills everything in its PID namespace.
    pub(crate) fn kill(&self) {
        // SAFETY: pidfd_send_signal on a pidfd we own; it cannot hit a reused pid.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                0,
                0,
            )
        };
    }

    /// Waits for the init to end, and with it every process of the box (the kernel
    /// empties a PID namespace before its init is reaped); returns the rusage of the
    /// init and everything it reaped.
    pub(crate) fn reap(&mut self) -> libc::rusage {
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut status = 0;
        loop {
            // SAFETY: wait4 on our own child, writing into locals.
            let rc = unsafe { libc::wait4(self.pid, &mut status, libc::__WALL, &mut usage) };
            if rc >= 0 || sys::errno() != libc::EINTR {
                break;
            }
        }
        self.reaped = true;
        usage
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            self.reap();
        }
    }
}

/// The exclusive resources of one running box: given back when dropped.
pub(crate) struct Lease {
    shared: Arc<Shared>,
    pub slot: Option<Slot>,
    pub cgroup: Option<BoxCgroup>,
}

impl Lease {
    /// Takes a free slot (waiting for one if all are busy).
    pub(crate) fn take(shared: &Arc<Shared>) -> Lease {
        let slot = shared.slots.take();
        Lease {
            shared: Arc::clone(shared),
            slot: Some(slot),
            cgroup: None,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(cg), Some(manager)) = (self.cgroup.take(), &self.shared.cgroups) {
            manager.release(cg);
        }
        if let Some(slot) = self.slot.take() {
            self.shared.slots.give_back(slot);
        }
    }
}

/// A box whose result is known and whose remains must go: the init is killed and
/// reaped, then the cgroup and slot are given back for the next box.
pub(crate) struct Remains {
    pub child: Child,
    pub lease: Lease,
    /// The go pipe's write end: held until the init is gone (see `init`).
    pub go: OwnedFd,
    /// The box's link to the outside, when it has network.
    pub network: Option<crate::network::Link>,
}

impl Remains {
    fn bury(self) {
        let Remains {
            mut child,
            lease,
            go,
            network,
        } = self;
        child.kill();
        child.reap();
        drop(network);
        drop(go);
        drop(lease);
    }
}

/// A thread that buries boxes in the background, so a run returns its result
/// without waiting for the kernel to tear its namespaces down.
pub(crate) struct Reaper {
    queue: Option<mpsc::Sender<Remains>>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Starts the reaper thread.
    pub(crate) fn start() -> std::io::Result<Reaper> {
        let (queue, pending) = mpsc::channel::<Remains>();
        let thread = std::thread::Builder::new()
            .name("runbox-reaper".into())
            .spawn(move || pending.into_iter().for_each(Remains::bury))?;
        Ok(Reaper {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Buries `remains` in the background (or here, if the reaper is gone).
    pub(crate) fn bury(&self, remains: Remains) {
        let refused = match &self.queue {
            Some(queue) => queue.send(remains).err().map(|e| e.0),
            None => Some(remains),
        };
        if let Some(remains) = refused {
            remains.bury();
        }
    }
}

impl Drop for Reaper {
    /// Waits until every box handed over is buried.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
