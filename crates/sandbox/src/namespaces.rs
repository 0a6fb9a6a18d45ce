//! Namespaces prepared once and shared out per box: empty network namespaces and
//! host uid ranges, one of each per box slot.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, PoisonError};

use crate::error::{Error, Result};

/// One slot: the resources a running box holds exclusively.
pub(crate) struct Slot {
    /// Host uid (and gid) that uid 0 of the box maps to.
    pub host_root: u32,
    /// Host uid (and gid) that the program's uid maps to.
    pub host_user: u32,
    /// An empty network namespace, made once for this slot and joined by every box
    /// that uses it: creating one per run costs the kernel more than the whole run.
    pub netns: Option<OwnedFd>,
    /// The thread or process that clones this slot's boxes (see `launcher`). Declared before
    /// `cgroup`: it must leave the cgroup before the cgroup can go.
    pub launcher: Option<crate::launcher::Launcher>,
    /// On cgroup v1, the slot's own cgroup, kept across runs with the launcher in
    /// it; for a lasting slot, its lasting cgroup (either version).
    pub cgroup: Option<crate::cgroup::BoxCgroup>,
    /// The lasting slot this one is, in a one-shot sandbox (see `lasting`).
    pub lasting: Option<crate::lasting::LastingSlot>,
}

/// A fixed set of slots handed out to concurrent boxes.
pub(crate) struct Slots {
    free: Mutex<Vec<Slot>>,
    returned: Condvar,
}

impl Slots {
    /// `count` slots whose uids start at `uid_base`, two uids per slot.
    pub(crate) fn new(count: u32, uid_base: u32) -> Slots {
        let free = (0..count)
            .rev()
            .map(|index| Slot {
                host_root: uid_base + 2 * index,
                host_user: uid_base + 2 * index + 1,
                netns: None,
                launcher: None,
                cgroup: None,
                lasting: None,
            })
            .collect();
        Slots {
            free: Mutex::new(free),
            returned: Condvar::new(),
        }
    }

    /// One slot per lasting slot held, with its uids and pinned network namespace.
    pub(crate) fn lasting(held: Vec<crate::lasting::LastingSlot>, uid_base: u32) -> Slots {
        let free = held
            .into_iter()
            .rev()
            .map(|mut lasting| {
                let (host_root, host_user) = lasting.host_ids(uid_base);
                Slot {
                    host_root,
                    host_user,
                    netns: lasting.netns.take(),
                    launcher: None,
                    cgroup: None,
                    lasting: Some(lasting),
                }
            })
            .collect();
        Slots {
            free: Mutex::new(free),
            returned: Condvar::new(),
        }
    }

    /// Takes a free slot, waiting for one if all are busy.
    pub(crate) fn take(&self) -> Slot {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(slot) = free.pop() {
                return slot;
            }
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Takes every slot out, for the sandbox's shutdown.
    pub(crate) fn drain(&self) -> Vec<Slot> {
        std::mem::take(&mut *self.free.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Gives a slot back.
    pub(crate) fn give_back(&self, slot: Slot) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(slot);
        self.returned.notify_one();
    }
}

/// Creates an empty network namespace (loopback only, and down) and returns a
/// descriptor that keeps it alive.
pub(crate) fn new_empty_netns() -> Result<OwnedFd> {
    // unshare(CLONE_NEWNET) moves only the calling thread, so do it in a throwaway
    // thread and keep a descriptor of the namespace.
    std::thread::spawn(|| -> Result<OwnedFd> {
        // SAFETY: unshare only changes the namespaces of this short-lived thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
            return Err(Error::last_os("unshare(CLONE_NEWNET)"));
        }
        let file = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::io("cannot open", "/proc/thread-self/ns/net", e))?;
        Ok(OwnedFd::from(file))
    })
    .join()
    .map_err(|_| Error::Syscall {
        call: "netns thread",
        source: std::io::Error::other("thread panicked"),
    })?
}

/// Moves the calling thread into the network namespace `fd`.
pub(crate) fn enter_netns(fd: &OwnedFd) -> Result<()> {
    // SAFETY: setns on a namespace descriptor we own; it changes only this thread.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(Error::last_os("setns(CLONE_NEWNET)"));
    }
    Ok(())
}

/// Writes the box's uid and gid maps: box uid 0 and the box user, nothing else, so
/// no host id (root least of all) exists inside.
pub(crate) fn write_id_maps(pid: libc::pid_t, slot: &Slot, box_uid: u32) -> Result<()> {
    let map = format!("0 {} 1\n{box_uid} {} 1\n", slot.host_root, slot.host_user);
    for file in ["uid_map", "gid_map"] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &map).map_err(|e| Error::io("cannot write", path, e))?;
    }
    Ok(())
}

/// The highest capability number this kernel knows.
pub(crate) fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Whether unprivileged user namespaces can be made here (for `doctor`).
pub(crate) fn user_namespaces_available() -> bool {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .map(|s| s.trim() != "0")
        .unwrap_or(false)
}
