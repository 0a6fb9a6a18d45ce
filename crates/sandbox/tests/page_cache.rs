//! What a box reads from disk stays in the page cache after it: the next box of
//! the same slot must not find a runtime's files evicted and read them again.
//!
//! A reused box cgroup still holds the charges of the page cache an earlier box
//! brought in. Reclaiming that cache to measure the next box exactly evicted it
//! from the machine: every run of a language from a runtime root read its
//! interpreter and libraries from disk again (12 MB per Python run here).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

use runbox_sandbox::{BindMount, BoxConfig, Sandbox, SandboxOptions, Status};

const FILE_BYTES: usize = 8 << 20;

/// The share of `path`'s pages in the page cache, from `mincore` of a mapping.
fn resident_share(path: &Path) -> f64 {
    let file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    // SAFETY: a read-only shared mapping of an open file of `len` bytes, unmapped
    // below; nothing reads through it.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED, "mmap");
    let pages = len.div_ceil(4096);
    let mut vec = vec![0u8; pages];
    // SAFETY: `addr` maps `len` bytes; `vec` has one byte per page of them.
    let rc = unsafe { libc::mincore(addr, len, vec.as_mut_ptr()) };
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(addr, len) };
    assert_eq!(rc, 0, "mincore");
    vec.iter().filter(|b| *b & 1 == 1).count() as f64 / pages as f64
}

/// Writes a file on disk (not tmpfs) and drops it from the page cache.
fn uncached_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("big");
    let mut file = File::create(&path).unwrap();
    file.write_all(&vec![7u8; FILE_BYTES]).unwrap();
    file.sync_all().unwrap();
    // SAFETY: advice on an open descriptor; no memory is passed.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
    let share = resident_share(&path);
    assert!(share < 0.1, "the file should start uncached: {share}");
    path
}

/// A state directory whose mounts (the /dev template, pinned network
/// namespaces) go with it: the host's mount table is left as it was found.
struct StateDir(tempfile::TempDir);

impl StateDir {
    fn new() -> StateDir {
        StateDir(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let pins = (0..4).map(|n| self.path().join(format!("slots/{n}.netns")));
        for mount in pins.chain([self.path().join("dev")]) {
            let Ok(path) = std::ffi::CString::new(mount.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: umount2 of a NUL-terminated path; EINVAL (not a mount
            // point) and ENOENT are expected and ignored.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn run_ok(sandbox: &Sandbox, config: &BoxConfig) {
    let outcome = sandbox.run(config).unwrap();
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
}

/// Runs a box that reads the file, then two more boxes in the same slot, and
/// checks the file is still cached after each.
fn check(options: SandboxOptions, data: &Path) {
    let sandbox = Sandbox::new(options).expect("a sandbox must start here (run as root)");
    let file = uncached_file(data);
    let read = BoxConfig::new(["/bin/sh", "-c", "cat /data/big > /dev/null"])
        .with_bind(BindMount::read_only(data, "/data"));
    run_ok(&sandbox, &read);
    assert!(resident_share(&file) > 0.9, "the box read the file");
    for _ in 0..2 {
        run_ok(&sandbox, &BoxConfig::new(["/bin/true"]));
        let share = resident_share(&file);
        assert!(
            share > 0.9,
            "the next box of the slot evicted what the first read: {share:.2} of it cached"
        );
    }
}

#[test]
fn a_file_a_box_read_stays_cached_for_the_next_box_of_its_slot() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let state = StateDir::new();
    check(
        SandboxOptions {
            state_dir: state.path().to_path_buf(),
            max_boxes: 1,
            uid_base: 1_960_000,
            ..SandboxOptions::default()
        },
        dir.path(),
    );
}

#[test]
fn a_file_a_box_read_stays_cached_for_the_next_one_shot_command() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let state = StateDir::new();
    let options = || SandboxOptions {
        state_dir: state.path().to_path_buf(),
        max_boxes: 1,
        uid_base: 1_970_000,
        one_shot: true,
        ..SandboxOptions::default()
    };
    // Within one command, then in the next command on the same slot.
    check(options(), dir.path());
    let sandbox = Sandbox::new(options()).unwrap();
    run_ok(&sandbox, &BoxConfig::new(["/bin/true"]));
    let share = resident_share(&dir.path().join("big"));
    assert!(
        share > 0.9,
        "the next command evicted it: {share:.2} cached"
    );
}
