//! Reading what a box left behind without trusting it.
//!
//! A program controls every file in a writable box directory: a result file can be
//! a symlink to /etc/shadow, a FIFO that blocks the reader forever, or a huge file.
//! [`read_box_file`] refuses all three.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::error::{Error, Result};

/// The kernel's `struct open_how` for openat2.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// Reads the regular file `name` (relative, no `..`) below the host directory `dir`,
/// at most `max_bytes`. Symlinks anywhere in the path, FIFOs, devices and
/// directories are refused; a longer file is an error, not a truncation.
pub fn read_box_file(dir: &Path, name: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    if name.is_absolute()
        || name
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(Error::InvalidConfig(format!(
            "'{}' must be a plain relative path",
            name.display()
        )));
    }
    let dir_file = File::open(dir).map_err(|e| Error::io("cannot open box directory", dir, e))?;
    let cname = std::ffi::CString::new(name.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig("file name contains a NUL byte".into()))?;
    let how = OpenHow {
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        flags: (libc::O_RDONLY
            | libc::O_NOFOLLOW
            | libc::O_NONBLOCK
            | libc::O_CLOEXEC
            | libc::O_NOCTTY) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: openat2 reads `how` (a valid struct of the size passed) and the
    // NUL-terminated name; the directory fd is open for the whole call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir_file.as_raw_fd(),
            cname.as_ptr(),
            &how as *const OpenHow,
            size_of::<OpenHow>(),
        )
    };
    let path = dir.join(name);
    if fd < 0 {
        return Err(Error::io(
            "refusing to read box file",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot stat box file", &path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::io(
            "refusing to read box file",
            path,
            std::io::Error::other("not a regular file"),
        ));
    }
    if meta.len() > max_bytes {
        return Err(Error::io(
            "refusing to read box file",
            path,
            std::io::Error::other(format!(
                "{} bytes is over the {max_bytes}-byte limit",
                meta.len()
            )),
        ));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // The file may still grow (a process of another box cannot write here, but be exact).
    file.take(max_bytes + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io("cannot read box file", &path, e))?;
    if data.len() as u64 > max_bytes {
        return Err(Error::io(
            "refusing to read box file",
            path,
            std::io::Error::other("file grew past the limit"),
        ));
    }
    Ok(data)
}
