//! Threads that run work for the sandbox: a slot's launcher thread, which clones
//! the slot's boxes when no launcher process is used, and the thread that starts
//! launcher processes.
//!
//! A launcher thread lives in the slot's empty network namespace and, on cgroup
//! v1, in the slot's cgroup, so every box it clones is born in both: no `setns`
//! per run, and no move into a v1 cgroup, which after an idle spell waits ~10 ms
//! for an RCU grace period (cgroup v1 lets one thread of a process sit in another
//! cgroup; on v2 boxes are cloned straight into their cgroup with
//! `CLONE_INTO_CGROUP`).
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

/// Work sent to a worker thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A named thread that runs the jobs it is given, one at a time, in order.
pub(crate) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a thread named `name` that runs `setup`, then the jobs it is given;
    /// fails with `setup`'s error.
    pub(crate) fn start(
        name: &str,
        setup: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel::<Result<()>>(1);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let set_up = setup();
                let ok = set_up.is_ok();
                let _ = ready_tx.send(set_up);
                if ok {
                    queue.into_iter().for_each(|job| job());
                }
            })
            .map_err(|e| Error::Syscall {
                call: "spawn a worker thread",
                source: e,
            })?;
        let worker = Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        };
        ready.recv().map_err(|_| Error::Syscall {
            call: "worker thread start",
            source: std::io::Error::other("thread died"),
        })??;
        Ok(worker)
    }

    /// Runs `f` on the worker thread and returns its result.
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
            call: "worker thread",
            source: std::io::Error::other("the worker thread is gone"),
        };
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        result.recv().map_err(|_| gone())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A slot's launcher thread, with the stack its boxes' programs start on.
pub(crate) struct LauncherThread {
    worker: Worker,
    /// The program's pre-exec stack, reused box after box: only this thread
    /// clones, one box at a time.
    stack: Vec<u8>,
    /// Whether the thread sits in the slot's cgroup, so boxes are born there.
    pub placed: bool,
}

impl LauncherThread {
    /// Starts a launcher in `netns`, placed in `cgroup` when the cgroup version
    /// allows a single thread to be.
    pub(crate) fn start(netns: &OwnedFd, cgroup: Option<&BoxCgroup>) -> Result<LauncherThread> {
        let netns = netns.try_clone().map_err(|e| Error::Syscall {
            call: "dup(netns)",
            source: e,
        })?;
        let worker = Worker::start("runbox-launcher", move || {
            block_forward_signal();
            namespaces::enter_netns(&netns)
        })?;
        let placed = match cgroup {
            Some(cg) => worker.run(|| cg.place_current_thread())??,
            None => false,
        };
        Ok(LauncherThread {
            worker,
            stack: vec![0u8; super::PROGRAM_STACK],
            placed,
        })
    }

    /// Runs `f` on the launcher thread, given the top of the program stack.
    pub(crate) fn run<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(*mut libc::c_void) -> R + Send,
    ) -> Result<R> {
        let top = super::StackTop::of(&mut self.stack);
        self.worker.run(move || f(top.get()))
    }
}

/// Blocks the carrier of forwarded signals in this thread, so a box's init is born
/// with it blocked: one queued before the init has its handler waits for it (a
/// PID namespace's init would silently drop a signal it has no handler for).
pub(crate) fn block_forward_signal() {
    // SAFETY: pthread_sigmask on a local set changes only this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, crate::live::forward_signal());
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
