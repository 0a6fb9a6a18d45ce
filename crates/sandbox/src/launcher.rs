//! One thread per box slot that clones the slot's boxes.
//!
//! The thread lives in the slot's empty network namespace and, on cgroup v1, in the
//! slot's cgroup, so every box it clones is born in both: no `setns` per run, and
//! no move into a v1 cgroup, which after an idle spell waits ~10 ms for an RCU
//! grace period (cgroup v1 lets one thread of a process sit in another cgroup; on
//! v2 boxes are cloned straight into their cgroup with `CLONE_INTO_CGROUP`).
//!
//! The thread moves itself (it writes `0` to the cgroup's `tasks`): a thread that
//! moves itself is spared the kernel's global threadgroup lock, whose first
//! writer after an idle spell waits for an RCU grace period (10-30 ms on a busy
//! VM), where a move of another thread by its id does wait. A sandbox made for
//! one command (`runbox sandbox`) places a fresh thread every time.

use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::cgroup::BoxCgroup;
use crate::error::{Error, Result};
use crate::namespaces;

/// Work sent to the launcher thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A slot's launcher thread.
pub(crate) struct Launcher {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Whether the thread sits in the slot's cgroup, so boxes are born there.
    pub placed: bool,
}

impl Launcher {
    /// Starts a launcher in `netns`, placed in `cgroup` when the cgroup version
    /// allows a single thread to be.
    pub(crate) fn start(netns: &OwnedFd, cgroup: Option<&BoxCgroup>) -> Result<Launcher> {
        let netns = netns.try_clone().map_err(|e| Error::Syscall {
            call: "dup(netns)",
            source: e,
        })?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel::<Result<()>>(1);
        let thread = std::thread::Builder::new()
            .name("runbox-launcher".into())
            .spawn(move || {
                block_forward_signal();
                let entered = namespaces::enter_netns(&netns);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    queue.into_iter().for_each(|job| job());
                }
            })
            .map_err(|e| Error::Syscall {
                call: "spawn launcher thread",
                source: e,
            })?;
        let mut launcher = Launcher {
            jobs: Some(jobs),
            thread: Some(thread),
            placed: false,
        };
        ready.recv().map_err(|_| Error::Syscall {
            call: "launcher start",
            source: std::io::Error::other("thread died"),
        })??;
        if let Some(cg) = cgroup {
            launcher.placed = launcher.run(|| cg.place_current_thread())??;
        }
        Ok(launcher)
    }

    /// Runs `f` on the launcher thread and returns its result.
    pub(crate) fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        let (reply, result) = mpsc::sync_channel::<R>(1);
        let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
            let _ = reply.send(f());
        });
        // SAFETY: `job` may borrow from the caller's stack. This function does not
        // return until the job has run (its reply arrives) or has been dropped
        // unrun (the thread is gone, so `reply` is dropped and `recv` fails): no
        // borrow outlives its owner.
        let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
        let gone = || Error::Syscall {
            call: "launcher",
            source: std::io::Error::other("launcher thread is gone"),
        };
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        result.recv().map_err(|_| gone())
    }
}

/// Blocks the carrier of forwarded signals in this thread, so a box's init is born
/// with it blocked: one queued before the init has its handler waits for it (a
/// PID namespace's init would silently drop a signal it has no handler for).
fn block_forward_signal() {
    // SAFETY: pthread_sigmask on a local set changes only this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, crate::live::forward_signal());
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
