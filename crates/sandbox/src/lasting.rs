//! Box slots that outlive one process, for commands that run a box or two and
//! exit (`runbox sandbox`, `runbox run`), like isolate's box ids.
//!
//! A sandbox made for one command would otherwise create, for each box slot, a
//! cgroup in every hierarchy and a network namespace, and remove them on exit:
//! that costs more than the box. A lasting slot keeps them between commands:
//! - slot `n` is held through an `flock` on `<state_dir>/slots/<n>.lock`; the
//!   kernel drops the lock when its holder dies, so a killed command never keeps
//!   a slot;
//! - its empty network namespace is pinned at `<state_dir>/slots/<n>.netns` (a
//!   bind mount of the namespace, as `ip netns` pins them), one per slot: two boxes
//!   running at once never share one (abstract unix sockets live in it);
//! - its cgroup is `slot-<n>` in the group `runbox-lasting` below this process's
//!   own cgroup (see `cgroup`); whoever takes the lock kills what a dead holder
//!   left there and sets every limit again before a box is born in it;
//! - its host uids are its own, `uid_base + 2 * (LASTING_UIDS + n)`, apart from a
//!   service's slots on the same `uid_base`.
//!
//! The state directory is root's (mode 0700), so only root could plant a file
//! where a pinned namespace is expected; a pinned file is still used only when it
//! is a network namespace.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::namespaces;

/// How many lasting slots there are: commands beyond that many at once wait.
pub(crate) const LASTING_SLOTS: u32 = 64;

/// Lasting slot `n` takes the host uids of slot `LASTING_UIDS + n` of `uid_base`.
const LASTING_UIDS: u32 = 4096;

/// The name of the cgroup group that holds the lasting slots' cgroups.
pub(crate) const LASTING_GROUP: &str = "runbox-lasting";

/// `NSFS_MAGIC`: the file system of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// `NS_GET_NSTYPE` (`_IO(0xb7, 0x3)`): the type of a namespace file.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// A lasting slot held by this process.
pub(crate) struct LastingSlot {
    /// The slot's number.
    pub number: u32,
    /// The slot's empty network namespace, until the box slot takes it.
    pub netns: Option<OwnedFd>,
    /// The lock; the slot is ours while it is open.
    _lock: File,
}

impl LastingSlot {
    /// The name of the slot's cgroup in the [`LASTING_GROUP`].
    pub(crate) fn cgroup_name(&self) -> String {
        format!("slot-{}", self.number)
    }

    /// Host uids (box root, box user) of this slot.
    pub(crate) fn host_ids(&self, uid_base: u32) -> (u32, u32) {
        let first = uid_base + 2 * (LASTING_UIDS + self.number);
        (first, first + 1)
    }
}

/// Takes `count` lasting slots below `state_dir`: free ones first, else waits
/// for the busy ones in turn.
pub(crate) fn take(state_dir: &Path, count: u32) -> Result<Vec<LastingSlot>> {
    if count > LASTING_SLOTS {
        return Err(Error::InvalidConfig(format!(
            "a one-shot sandbox holds at most {LASTING_SLOTS} boxes"
        )));
    }
    let dir = slots_dir(state_dir)?;
    let mut locks: Vec<(u32, File)> = Vec::with_capacity(count as usize);
    for number in 0..LASTING_SLOTS {
        if locks.len() == count as usize {
            break;
        }
        let lock = open_lock(&dir, number)?;
        if try_lock(&lock, libc::LOCK_NB)? {
            locks.push((number, lock));
        }
    }
    // All busy: wait for slots that others hold, starting at one of our own
    // choosing so that waiters spread out.
    let start = std::process::id() % LASTING_SLOTS;
    let mut next = start;
    while locks.len() < count as usize {
        if !locks.iter().any(|(n, _)| *n == next) {
            let lock = open_lock(&dir, next)?;
            try_lock(&lock, 0)?;
            locks.push((next, lock));
        }
        next = (next + 1) % LASTING_SLOTS;
    }
    locks
        .into_iter()
        .map(|(number, lock)| {
            Ok(LastingSlot {
                number,
                netns: Some(pinned_netns(&dir, number)?),
                _lock: lock,
            })
        })
        .collect()
}

/// `<state_dir>/slots`, mode 0700.
fn slots_dir(state_dir: &Path) -> Result<PathBuf> {
    let dir = state_dir.join("slots");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io("cannot create", &dir, e))?;
    Ok(dir)
}

fn open_lock(dir: &Path, number: u32) -> Result<File> {
    let path = dir.join(format!("{number}.lock"));
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io("cannot open slot lock", path, e))
}

/// `flock(LOCK_EX | extra)`: `Ok(false)` when `LOCK_NB` is given and it is held.
fn try_lock(lock: &File, extra: libc::c_int) -> Result<bool> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | extra) } == 0 {
            return Ok(true);
        }
        match crate::sys::errno() {
            libc::EWOULDBLOCK => return Ok(false),
            libc::EINTR => {}
            _ => return Err(Error::last_os("flock(slot lock)")),
        }
    }
}

/// The slot's pinned empty network namespace, made and pinned when missing
/// (the caller holds the slot's lock, so no one else pins it meanwhile).
fn pinned_netns(dir: &Path, number: u32) -> Result<OwnedFd> {
    let path = dir.join(format!("{number}.netns"));
    if let Ok(file) = File::open(&path) {
        if is_netns(&file)? {
            return Ok(file.into());
        }
        // A plain file, or a mount of something else: unmount what is there.
        let cpath = cpath(&path)?;
        // SAFETY: umount2 with a NUL-terminated path.
        unsafe { libc::umount2(cpath.as_ptr(), libc::MNT_DETACH) };
    }
    let netns = namespaces::new_empty_netns()?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("cannot create", &path, e))?;
    let source = format!("/proc/self/fd/{}", netns.as_raw_fd());
    let csource = cpath(Path::new(&source))?;
    let ctarget = cpath(&path)?;
    // SAFETY: a bind mount between two NUL-terminated paths; no data argument.
    let rc = unsafe {
        libc::mount(
            csource.as_ptr(),
            ctarget.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        // Unpinned, the namespace still serves this process.
        tracing::debug!(
            "cannot pin a network namespace at {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(netns)
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig(format!("path '{}' contains a NUL byte", path.display())))
}

/// Whether `file` is a network namespace (a file of nsfs of that type).
fn is_netns(file: &File) -> Result<bool> {
    // SAFETY: an all-zero statfs is a valid value for fstatfs to overwrite.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs on a descriptor we own, into a local.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } < 0 {
        return Err(Error::last_os("fstatfs(pinned netns)"));
    }
    if fs.f_type as i64 != NSFS_MAGIC {
        return Ok(false);
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the namespace type.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    Ok(kind == libc::CLONE_NEWNET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exclusive_and_their_namespaces_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let first = take(dir.path(), 2).unwrap();
        assert_eq!(first.iter().map(|s| s.number).collect::<Vec<_>>(), [0, 1]);
        let second = take(dir.path(), 1).unwrap();
        assert_eq!(second[0].number, 2, "held slots are skipped");
        let pinned = File::open(dir.path().join("slots/0.netns")).unwrap();
        assert!(is_netns(&pinned).unwrap());
        drop(first);
        let again = take(dir.path(), 1).unwrap();
        assert_eq!(again[0].number, 0, "a released slot is free again");
        let same = File::open(dir.path().join("slots/0.netns")).unwrap();
        assert_eq!(
            crate::sys::fd_stat(&OwnedFd::from(same)).unwrap().st_ino,
            crate::sys::fd_stat(&OwnedFd::from(pinned)).unwrap().st_ino,
            "the namespace outlives its holder"
        );
        for n in 0..3 {
            let path = dir.path().join(format!("slots/{n}.netns"));
            let cpath = cpath(&path).unwrap();
            // SAFETY: umount2 with a NUL-terminated path.
            unsafe { libc::umount2(cpath.as_ptr(), libc::MNT_DETACH) };
        }
    }

    #[test]
    fn a_plain_file_is_not_taken_for_a_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"").unwrap();
        assert!(!is_netns(&File::open(&path).unwrap()).unwrap());
    }
}
