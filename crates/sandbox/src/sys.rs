//! Thin wrappers over the system calls the sandbox makes, safe to use after clone.
//!
//! Everything here that a box's init or program calls is async-signal-safe: no
//! allocation, no locks, only the raw call and `errno`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

/// The calling thread's `errno`.
pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// `Ok(())` for a non-negative return value, else `Err(errno)`.
pub(crate) fn check(rc: libc::c_int) -> Result<(), i32> {
    if rc < 0 { Err(errno()) } else { Ok(()) }
}

/// Writes all of `buf` to `fd`, retrying on EINTR and short writes.
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            match errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Reads until `buf` is full or end of file; returns how many bytes were read.
pub(crate) fn read_full(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
        match n {
            0 => break,
            n if n < 0 => match errno() {
                libc::EINTR => continue,
                e => return Err(e),
            },
            n => done += n as usize,
        }
    }
    Ok(done)
}

/// Closes every descriptor of this process except those in `keep`, which must be
/// sorted ascending.
pub(crate) fn close_all_except(keep: &[RawFd]) {
    let mut first: u32 = 0;
    for &fd in keep {
        let fd = fd as u32;
        if fd > first {
            // SAFETY: close_range only closes descriptors; nothing in this process
            // uses the closed ones afterwards.
            unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
        }
        first = fd + 1;
    }
    // SAFETY: as above, for the range past the last kept descriptor.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
}

/// `_exit(code)`: ends the process without running any of the parent's atexit
/// handlers or destructors.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// A pipe with both ends close-on-exec: (read end, write end).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(Error::last_os("pipe2"));
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets or clears O_NONBLOCK on `fd`.
pub(crate) fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL touch only its flags.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(Error::last_os("fcntl(O_NONBLOCK)"));
        }
    }
    Ok(())
}

/// A sealed, read-only-for-everyone-else memory file holding `data`: the box's stdin.
pub(crate) fn memfd_with(data: &[u8]) -> Result<OwnedFd> {
    let name = c"runbox-stdin";
    // SAFETY: `name` is a static NUL-terminated string.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Error::last_os("memfd_create"));
    }
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    write_all(fd.as_raw_fd(), data).map_err(|e| Error::Syscall {
        call: "write(stdin memfd)",
        source: io::Error::from_raw_os_error(e),
    })?;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: plain fcntl/lseek calls on a descriptor we own.
    unsafe {
        if libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) < 0 {
            return Err(Error::last_os("fcntl(F_ADD_SEALS)"));
        }
        if libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) < 0 {
            return Err(Error::last_os("lseek(stdin memfd)"));
        }
    }
    Ok(fd)
}

/// The mount flags a user namespace locks on the mount holding `path`; a remount
/// inside the box must repeat them or the kernel refuses it.
pub(crate) fn locked_mount_flags(path: &Path) -> Result<libc::c_ulong> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::InvalidConfig(format!("path {} contains a NUL byte", path.display()))
    })?;
    // SAFETY: statvfs fills the zeroed struct; `cpath` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid NUL-terminated path and a struct to fill.
    if unsafe { libc::statvfs(cpath.as_ptr(), &mut st) } < 0 {
        return Err(Error::io(
            "cannot stat file system of",
            path,
            io::Error::last_os_error(),
        ));
    }
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ];
    Ok(pairs
        .iter()
        .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
        .fold(0, |acc, (_, ms)| acc | ms))
}

/// The kernel's `struct mount_attr` (`mount_setattr`, Linux 5.12).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount tree at `path` (`open_tree(OPEN_TREE_CLONE)`, with
/// its submounts), every mount of it given `attributes` (`MOUNT_ATTR_*`) and made
/// private, so that nothing mounted on it in a box propagates to the host. Opened
/// by the caller (root of the host), it can be attached by a process that may not
/// look `path` up.
pub(crate) fn detached_tree(path: &Path, attributes: u64) -> Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::InvalidConfig(format!("path {} contains a NUL byte", path.display()))
    })?;
    clone_tree(libc::AT_FDCWD, &cpath, 0, path, attributes)
}

/// [`detached_tree`] of what the descriptor `at` (from [`open_in_root`]) names;
/// `path` is only for error messages.
pub(crate) fn detached_tree_of(at: &OwnedFd, path: &Path, attributes: u64) -> Result<OwnedFd> {
    clone_tree(
        at.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH as libc::c_uint,
        path,
        attributes,
    )
}

fn clone_tree(
    dirfd: RawFd,
    cpath: &CStr,
    flags: libc::c_uint,
    path: &Path,
    attributes: u64,
) -> Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let flags = flags
        | OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: open_tree reads the NUL-terminated `cpath` and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, cpath.as_ptr(), flags) };
    if fd < 0 {
        return Err(Error::io(
            "cannot open the mount tree to bind",
            path,
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: open_tree returned a fresh descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        attr_set: attributes,
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `attr` (alive, its size passed) and the empty
    // path; it changes only the detached tree.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(Error::io(
            "cannot restrict the mount tree to bind",
            path,
            io::Error::last_os_error(),
        ));
    }
    Ok(tree)
}

/// The kernel's `struct open_how` (`openat2`, Linux 5.6); libc's cannot be built
/// outside it.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `relative` below the directory `root` with `flags` (`O_PATH`,
/// `O_RDONLY`, `O_NOFOLLOW`...), resolving every component, symlinks included, as
/// if `root` were `/` (`openat2` with `RESOLVE_IN_ROOT`): a symlink in a
/// runtime's tree, which may come from an image, can never lead outside it.
/// Magic links (`/proc/self/...`) are refused.
pub(crate) fn open_in_root(root: &OwnedFd, relative: &Path, flags: i32) -> io::Result<OwnedFd> {
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    let cpath = CString::new(relative.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 reads the NUL-terminated `cpath` and `how` (alive, its size
    // passed) and returns a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const OpenHow,
            size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The status of what `fd` names (`fstat`; for an `O_PATH | O_NOFOLLOW`
/// descriptor of a symlink, the link itself).
pub(crate) fn fd_stat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat writes into `st`, which is alive and of the right type; the
    // path is the empty static string with AT_EMPTY_PATH.
    let rc = unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The target of the symlink `fd` names (an `O_PATH | O_NOFOLLOW` descriptor).
pub(crate) fn fd_read_link(fd: &OwnedFd) -> io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat writes at most `buf.len()` bytes into `buf`; the path is
    // the empty static string, which names `fd` itself.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(std::ffi::OsString::from_vec(buf).into())
}

/// How many CPUs this process may run on, asked at most once a second: std
/// reads `/proc/self/cgroup` and the cgroup's CPU quota files to answer, which
/// every box's watch would otherwise pay.
pub(crate) fn online_cpus() -> u32 {
    static ASKED: std::sync::Mutex<Option<(std::time::Instant, u32)>> = std::sync::Mutex::new(None);
    let mut asked = ASKED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match *asked {
        Some((when, cpus)) if when.elapsed() < std::time::Duration::from_secs(1) => cpus,
        _ => {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            *asked = Some((std::time::Instant::now(), cpus));
            cpus
        }
    }
}

/// Sets real, effective and saved uid and gid (group first) and clears the
/// supplementary groups, with raw system calls.
///
/// glibc's wrappers broadcast credential changes to every thread of the process
/// and wait for each to answer; in a child cloned from a multithreaded supervisor
/// those threads do not exist, and the wrapper would wait forever.
pub(crate) fn set_ids(id: u32) -> Result<(), i32> {
    // SAFETY: credential system calls with integer arguments (and a null group list
    // of length 0); they affect only the calling process.
    unsafe {
        check(
            libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) as libc::c_int,
        )?;
        check(libc::syscall(libc::SYS_setresgid, id, id, id) as libc::c_int)?;
        check(libc::syscall(libc::SYS_setresuid, id, id, id) as libc::c_int)
    }
}

/// The number of signals the kernel knows (its `_NSIG`), and the size of its
/// signal set in bytes.
const KERNEL_SIGNALS: libc::c_int = 64;
const KERNEL_SIGSET_BYTES: usize = 8;

/// Restores `signal`'s default action with the raw `rt_sigaction` call.
///
/// Not glibc's `sigaction`: since glibc 2.41 (and in musl) it takes a lock for
/// SIGABRT that `posix_spawn` holds while another thread's child starts, and a
/// box's init, a raw clone of a many-threaded supervisor, inherits that lock
/// held by a thread it does not have (it would wait for it forever).
/// SIG_DFL with no flags is an all-zero kernel `struct sigaction` on every
/// architecture, so the structure's layout never matters here.
pub(crate) fn default_signal_action(signal: libc::c_int) -> Result<(), i32> {
    let default_action = [0u64; 4];
    // SAFETY: rt_sigaction reads a zeroed kernel sigaction that outlives the
    // call and writes nothing (no old action asked for).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            default_action.as_ptr(),
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_BYTES,
        )
    };
    check(rc as libc::c_int)
}

/// Restores the default action of every signal that has one to restore
/// (SIGKILL and SIGSTOP cannot change, and fail quietly).
pub(crate) fn default_all_signal_actions() {
    for signal in 1..=KERNEL_SIGNALS {
        let _ = default_signal_action(signal);
    }
}

/// Whether a process `pid` exists (a zombie counts) in our pid namespace.
/// `kill(pid, 0)` rather than `/proc/<pid>`, which `hidepid` may hide.
pub(crate) fn process_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 sends nothing and has no memory arguments.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Drops from this process's resident set the pages of the read-only segments
/// of its executable and libraries: their code, their constants and the tables
/// the dynamic loader read once at start-up. They are clean pages of files,
/// which stay in the page cache and come back, without a read from disk, when
/// touched again. For a process that runs a small part of a large executable (a
/// box launcher, exec'd from the whole `runbox` binary) this leaves only what
/// it uses. Writable segments (relocated data) are never touched, nor the vDSO.
pub(crate) fn trim_executable_residency() {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => return,
    };
    // SAFETY: dl_iterate_phdr calls `trim_object` once per loaded object, with
    // `page` as its data; the callback only reads what it is given.
    unsafe { libc::dl_iterate_phdr(Some(trim_object), (&raw const page).cast_mut().cast()) };
}

/// [`trim_executable_residency`] for one loaded object.
unsafe extern "C" fn trim_object(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr passes a valid info for the object and our data.
    let (info, page) = unsafe { (&*info, *data.cast::<usize>()) };
    // SAFETY: a loaded object's name is a NUL-terminated string (empty for the
    // executable itself).
    let name = unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) };
    if info.dlpi_phdr.is_null() || name.to_bytes().starts_with(b"linux-vdso") {
        return 0;
    }
    // SAFETY: the loader keeps an object's program headers mapped while it is loaded.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    // An object with text relocations had its read-only pages written by the
    // loader: those pages are its own copies and must stay.
    // SAFETY: a loaded object's dynamic section is mapped at its address.
    if unsafe { has_text_relocations(info.dlpi_addr as usize, headers) } {
        return 0;
    }
    let read_only = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0);
    for segment in read_only {
        let first = info.dlpi_addr as usize + segment.p_vaddr as usize;
        let start = first.next_multiple_of(page);
        // Whole pages only: a page shared with a neighbouring segment stays.
        let end = (first + segment.p_memsz as usize) & !(page - 1);
        if end > start {
            // SAFETY: MADV_DONTNEED on pages of a read-only, never-written
            // mapping of a file: it only drops page-table entries, which the
            // next access re-creates from the page cache with the same content.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
    0
}

/// Whether an object's dynamic section asks for text relocations (`DT_TEXTREL`,
/// or `DF_TEXTREL` in `DT_FLAGS`).
///
/// # Safety
/// `base` and `headers` must be a loaded object's address and program headers.
unsafe fn has_text_relocations(base: usize, headers: &[libc::Elf64_Phdr]) -> bool {
    const DT_NULL: i64 = 0;
    const DT_TEXTREL: i64 = 22;
    const DT_FLAGS: i64 = 30;
    const DF_TEXTREL: u64 = 0x4;
    let Some(dynamic) = headers.iter().find(|h| h.p_type == libc::PT_DYNAMIC) else {
        return false;
    };
    /// An `Elf64_Dyn`.
    #[repr(C)]
    struct DynamicEntry {
        tag: i64,
        value: u64,
    }
    let mut entry = (base + dynamic.p_vaddr as usize) as *const DynamicEntry;
    loop {
        // SAFETY: the dynamic section is an array of entries ended by DT_NULL,
        // mapped while the object is loaded.
        let dyn_entry = unsafe { &*entry };
        match dyn_entry.tag {
            DT_NULL => return false,
            DT_TEXTREL => return true,
            DT_FLAGS if dyn_entry.value & DF_TEXTREL != 0 => return true,
            _ => {}
        }
        // SAFETY: not past DT_NULL, so the next entry is within the array.
        entry = unsafe { entry.add(1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RssFile` of this process, in KiB: its resident pages of mapped files.
    fn resident_file_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn trimming_drops_resident_code_and_the_process_runs_on() {
        let before = resident_file_kb();
        trim_executable_residency();
        let after = resident_file_kb();
        assert!(
            after < before,
            "RssFile {before} KiB before, {after} KiB after"
        );
        // Code, constants and library calls come back from the page cache.
        let mut words: Vec<String> = (0..1000).map(|n| format!("word {n}")).collect();
        words.sort();
        assert_eq!(words[0], "word 0");
        assert!(std::fs::read_to_string("/proc/self/status").is_ok());
    }

    /// The disposition of `signal` now.
    fn disposition(signal: libc::c_int) -> libc::sighandler_t {
        // SAFETY: sigaction only writes the old action into a local.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut old);
            old.sa_sigaction
        }
    }

    #[test]
    fn a_raw_reset_restores_the_default_action() {
        // SIGUSR2: nothing else in this test process uses it.
        // SAFETY: ignoring a signal nobody sends changes nothing else.
        unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
        assert_eq!(disposition(libc::SIGUSR2), libc::SIG_IGN);
        default_signal_action(libc::SIGUSR2).unwrap();
        assert_eq!(disposition(libc::SIGUSR2), libc::SIG_DFL);
        assert_eq!(default_signal_action(libc::SIGKILL), Err(libc::EINVAL));
    }
}
