//! Work volumes: size-limited tmpfs directories on the host, bound into boxes.
//!
//! A compile stage writes its artifacts into a volume and a later run stage reads
//! them, so the volume must outlive one box; it cannot be the box's own `/box`
//! tmpfs. A plain host directory would let a program fill the host's disk (a
//! compiler may run user code: macros, templates, `staticExec`), so every volume
//! is its own tmpfs with a size limit. Its pages are charged to the memory cgroup
//! of the box that writes them, and freed when the volume is dropped (unmounted).
//!
//! Volumes live in `<state_dir>/volumes/<pid>-<n>-<random>`. The box's own root
//! (a mapped uid, not the host's root) must reach them to bind them, so the
//! directory is `0711`: anyone may pass through, nobody but root may list it, and
//! the random part of each name keeps other host users from guessing a path. A new
//! sandbox unmounts and removes the volumes of processes that are gone.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::sys;

/// A size-limited tmpfs directory on the host; unmounted and removed on drop.
#[derive(Debug)]
pub struct Volume {
    path: PathBuf,
}

impl Volume {
    /// Mounts a fresh, empty tmpfs of `size_bytes` below `volumes_dir`.
    pub(crate) fn create(volumes_dir: &Path, size_bytes: u64) -> Result<Volume> {
        if size_bytes == 0 {
            return Err(Error::InvalidConfig(
                "a volume must be larger than zero bytes".into(),
            ));
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}-{:016x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            random_u64()?
        );
        let path = volumes_dir.join(name);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|e| Error::io("cannot create volume directory", &path, e))?;
        if let Err(err) = mount_tmpfs(&path, size_bytes) {
            let _ = fs::remove_dir(&path);
            return Err(err);
        }
        Ok(Volume { path })
    }

    /// The volume's directory on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        if let Err(err) = unmount(&self.path) {
            tracing::warn!("cannot unmount volume {}: {err}", self.path.display());
            return;
        }
        if let Err(err) = fs::remove_dir(&self.path) {
            tracing::warn!("cannot remove volume {}: {err}", self.path.display());
        }
    }
}

/// 64 random bits from the kernel.
fn random_u64() -> Result<u64> {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(Error::last_os("getrandom"));
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// Makes `<state_dir>/volumes` (mode 0711) and removes what dead processes left in it.
pub(crate) fn prepare_dir(state_dir: &Path) -> Result<PathBuf> {
    let dir = state_dir.join("volumes");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&dir)
        .map_err(|e| Error::io("cannot create", &dir, e))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o711))
        .map_err(|e| Error::io("cannot restrict", &dir, e))?;
    sweep(&dir);
    Ok(dir)
}

/// Unmounts and removes the volumes of processes that no longer exist.
fn sweep(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id() as i32;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == own || sys::process_alive(pid) {
            continue;
        }
        let path = entry.path();
        // EINVAL: not a mount point (the mount never happened); remove it anyway.
        match unmount(&path) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => {
                tracing::warn!("cannot unmount stale volume {}: {e}", path.display());
                continue;
            }
        }
        if let Err(e) = fs::remove_dir(&path) {
            tracing::warn!("cannot remove stale volume {}: {e}", path.display());
        }
    }
}

/// Mounts a tmpfs of `size_bytes` at `path`: no setuid, no devices, root's 0755.
fn mount_tmpfs(path: &Path, size_bytes: u64) -> Result<()> {
    let target = c_path(path)?;
    let options = CString::new(format!("size={size_bytes},mode=0755"))
        .map_err(|_| Error::InvalidConfig("bad tmpfs options".into()))?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            c"runbox-volume".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if rc < 0 {
        return Err(Error::io(
            "cannot mount volume tmpfs at",
            path,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Detaches the mount at `path`: boxes that still see it keep it until they end.
fn unmount(path: &Path) -> io::Result<()> {
    let target = c_path(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `target` is NUL-terminated and outlives the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig(format!("path {} contains a NUL byte", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_is_a_size_limited_tmpfs_removed_on_drop() {
        let state = tempfile::tempdir().unwrap();
        let dir = prepare_dir(state.path()).unwrap();
        let volume = Volume::create(&dir, 1 << 20).unwrap();
        let path = volume.path().to_path_buf();
        fs::write(path.join("small"), vec![0u8; 512 << 10]).unwrap();
        let err = fs::write(path.join("large"), vec![0u8; 1 << 20]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        drop(volume);
        assert!(!path.exists());
    }

    #[test]
    fn another_host_user_can_neither_list_volumes_nor_write_into_one() {
        use std::os::unix::process::CommandExt;
        let state = tempfile::tempdir().unwrap();
        fs::set_permissions(state.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let dir = prepare_dir(state.path()).unwrap();
        let a = Volume::create(&dir, 1 << 20).unwrap();
        let b = Volume::create(&dir, 1 << 20).unwrap();
        assert_ne!(a.path(), b.path());
        crate::cgroup::settle_for_tests();
        let as_nobody = |script: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap()
        };
        let list = as_nobody(&format!("ls {}", dir.display()));
        assert!(!list.status.success(), "nobody listed the volumes");
        let write = as_nobody(&format!("echo x > {}/planted", a.path().display()));
        assert!(!write.status.success(), "nobody wrote into a volume");
        assert!(!a.path().join("planted").exists());
    }

    #[test]
    fn volumes_of_dead_processes_are_swept() {
        let state = tempfile::tempdir().unwrap();
        let dir = prepare_dir(state.path()).unwrap();
        // A pid far above pid_max belongs to no process.
        let stale = dir.join("2147483000-0-0");
        fs::create_dir(&stale).unwrap();
        mount_tmpfs(&stale, 1 << 20).unwrap();
        let ours = dir.join(format!("{}-999999-0", std::process::id()));
        fs::create_dir(&ours).unwrap();
        prepare_dir(state.path()).unwrap();
        assert!(!stale.exists());
        assert!(ours.exists(), "a live process's volume is kept");
        fs::remove_dir(&ours).unwrap();
    }
}
