//! The box's root filesystem: planned by the supervisor, applied inside the box.
//!
//! [`MountPlan::build`] turns a [`BoxConfig`] into a list of steps with every path
//! and option already a C string; [`MountPlan::apply`] runs them in the box's init
//! process between clone and exec, where allocating is not allowed.
//!
//! Every bind of a host path is cloned by the supervisor, as root of the host,
//! into a detached mount tree (`open_tree(OPEN_TREE_CLONE)`) already made
//! read-only, nosuid, nodev and private (`mount_setattr`); the box's init only
//! attaches it (`move_mount`). The init runs as the box's mapped uid, which may not
//! be allowed to look the path up (a data directory below a 0700 parent): with a
//! tree opened beforehand, any path the supervisor can reach can be bound.
//!
//! What `/proc/self/mountinfo` shows in a box: mount points as the box sees them,
//! and for each mount its root *within its file system*. The kernel prints that
//! root from the mounted dentry (`show_mountinfo` in `fs/proc_namespace.c`), so no
//! way of binding hides it: a bind of the host directory `/srv/data/x` on the root
//! file system shows `/srv/data/x`, whether it was mounted by path, from an
//! `O_PATH` descriptor or from a detached tree. Only a file system of its own
//! shows `/`: the box's tmpfs mounts, work volumes, and the /dev template, which
//! is a tmpfs of its own for that reason. Callers that must not show a host path
//! bind a volume or a directory on a file system mounted for the purpose.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_ulong;
use serde::{Deserialize, Serialize};

use crate::config::BoxConfig;
use crate::error::{Error, Result};
use crate::sys;
use crate::system::{Entry, Layouts, System};

/// The uid and gid of the program inside the box.
pub const BOX_UID: u32 = 1000;
/// The box's host name.
const HOSTNAME: &CStr = c"runbox";

/// Facts about the host's file system and the runtimes boxes use, read once per
/// sandbox (per runtime) rather than per box.
#[derive(Debug)]
pub(crate) struct HostLayout {
    /// What boxes reproduce of the host's system tree and of each runtime's.
    layouts: Layouts,
    /// A host directory holding the box's /dev (device nodes, links, shm), when the
    /// state directory's file system allows device nodes.
    dev_template: Option<PathBuf>,
}

impl HostLayout {
    /// Reads the host's layout and prepares the /dev template below `state_dir`.
    pub(crate) fn detect(state_dir: &Path) -> Result<HostLayout> {
        let dev_template = prepare_dev_template(&state_dir.join("dev"))?;
        Ok(HostLayout {
            layouts: Layouts::detect()?,
            dev_template,
        })
    }
}

/// Makes `dir` a copy of a box's /dev: the device nodes of [`DEVICES`] (same
/// numbers and modes as the host's), the [`DEV_LINKS`] and an empty `shm`. Returns
/// `None` when the file system there is mounted nodev, where nodes would not work.
fn prepare_dev_template(dir: &Path) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    own_tmpfs(dir)?;
    if sys::locked_mount_flags(dir)? & libc::MS_NODEV != 0 {
        return Ok(None);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("cannot chmod", dir, e))?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let meta = std::fs::metadata(&host).map_err(|e| Error::io("cannot stat", &host, e))?;
        if !meta.file_type().is_char_device() {
            return Err(Error::InvalidConfig(format!(
                "{} is not a character device",
                host.display()
            )));
        }
        let node = dir.join(name);
        let current = std::fs::symlink_metadata(&node).ok();
        if current.is_some_and(|m| {
            m.file_type().is_char_device() && m.rdev() == meta.rdev() && m.mode() == meta.mode()
        }) {
            continue;
        }
        let _ = std::fs::remove_file(&node);
        let path = cpath(&node)?;
        // SAFETY: mknod with a NUL-terminated path, the host node's mode and number.
        if unsafe { libc::mknod(path.as_ptr(), meta.mode(), meta.rdev()) } < 0 {
            return Err(Error::io(
                "cannot create device node",
                node,
                std::io::Error::last_os_error(),
            ));
        }
        // mknod applies the umask: set the host's permissions exactly.
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| Error::io("cannot chmod", &node, e))?;
    }
    for (link, target) in DEV_LINKS {
        let path = dir.join(link);
        if std::fs::read_link(&path).ok().as_deref() != Some(Path::new(target)) {
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(target, &path)
                .map_err(|e| Error::io("cannot create link", &path, e))?;
        }
    }
    for name in DEV_DIRS {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).map_err(|e| Error::io("cannot create", &sub, e))?;
    }
    Ok(Some(dir.to_path_buf()))
}

/// Mounts a small tmpfs on `dir` unless one is there already, so that a box's
/// mountinfo shows its /dev as `/` of a tmpfs rather than the template's host
/// path (see the module docs). The mount stays for the next sandbox. Where the
/// host refuses (no right to mount), the plain directory serves, path and all.
fn own_tmpfs(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let device = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.dev())
            .map_err(|e| Error::io("cannot stat", path, e))
    };
    if device(dir)? != device(parent)? {
        return Ok(());
    }
    let target = cpath(dir)?;
    // SAFETY: NUL-terminated static strings and `target`, alive for the call.
    let rc = unsafe {
        libc::mount(
            c"runbox-dev".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"size=64k,mode=755".as_ptr().cast(),
        )
    };
    if rc < 0 {
        tracing::debug!(
            "cannot mount a tmpfs on {}: {}; boxes will see its path in mountinfo",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Device nodes bound from the host into the box's /dev.
/// `tty` opens the caller's controlling terminal: none at all (ENXIO) but in TTY
/// mode, where it is the box's own.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Symlinks of every box's /dev.
const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    // The multiplexer of the box's own devpts, mounted on /dev/pts in TTY mode
    // (see `crate::tty`); dangling otherwise.
    ("ptmx", "pts/ptmx"),
];

/// Empty directories of every box's /dev: mount points.
const DEV_DIRS: [&str; 2] = ["shm", "pts"];

/// One step of building the root.
#[derive(Debug, Serialize, Deserialize)]
enum Step {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    Touch {
        path: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    WriteFile {
        path: CString,
        #[serde(with = "serde_bytes")]
        content: Vec<u8>,
    },
    /// Attaches a detached mount tree the supervisor cloned (see the module docs).
    Attach {
        /// The tree's index among the plan's trees.
        tree: usize,
        target: CString,
    },
    PivotRoot {
        new_root: CString,
    },
    Hostname,
}

/// The prepared steps, and a description of each for when it fails.
///
/// A plan crosses to a launcher process as data; its trees cross beside it as
/// descriptors (see [`MountPlan::with_trees`]).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MountPlan {
    steps: Vec<Step>,
    /// What each step does, for the supervisor's error messages: not sent to
    /// a launcher.
    #[serde(skip)]
    descriptions: Vec<String>,
    /// The detached trees the [`Step::Attach`] steps attach, closed with the plan
    /// (a tree never attached is then unmounted by the kernel).
    #[serde(skip)]
    trees: Vec<OwnedFd>,
}

/// Flags every mount gets unless it holds device nodes.
const SAFE: c_ulong = libc::MS_NOSUID | libc::MS_NODEV;

/// `mount_setattr` attributes of `<linux/mount.h>`.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// `move_mount` flag: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

impl MountPlan {
    /// Plans the root for `config`, built on the empty host directory `root`.
    pub(crate) fn build(config: &BoxConfig, root: &Path, host: &HostLayout) -> Result<MountPlan> {
        let mut plan = MountPlan {
            steps: Vec::new(),
            descriptions: Vec::new(),
            trees: Vec::new(),
        };
        let r = |inside: &str| root.join(inside.trim_start_matches('/'));
        let limits = &config.limits;

        // No "make / private" step: a mount namespace owned by a new user namespace
        // already receives host mounts as slaves (mount_namespaces(7)), so nothing
        // mounted here can propagate back to the host.
        plan.tmpfs(root, 0o755, 1 << 20, "", "mount the root tmpfs")?;

        // The system tree: the host's, or the runtime's with nothing of the host's.
        let system = System::open(config.runtime.as_deref())?;
        let layout = host.layouts.of(&system)?;
        plan.bind_system(&system, Path::new("/usr"), root)?;
        for (name, entry) in &layout.usr_links {
            plan.reproduce(&system, &Path::new("/").join(name), root, entry)?;
        }

        plan.mkdir(&r("/etc"))?;
        for (name, content) in etc_files(config.network) {
            plan.push(
                Step::WriteFile {
                    path: cpath(&r(&format!("/etc/{name}")))?,
                    content: content.into_bytes(),
                },
                format!("write /etc/{name}"),
            );
        }
        for (path, entry) in &layout.etc {
            plan.reproduce(&system, Path::new(path), root, entry)?;
        }
        // A box that talks to the internet needs the CA certificates for TLS.
        let certs = Path::new("/etc/ssl/certs");
        if config.network && system.is_dir(certs) && !config.system_paths.iter().any(|p| p == certs)
        {
            plan.bind_system(&system, certs, root)?;
        }
        for path in &config.system_paths {
            plan.bind_system(&system, path, root)?;
        }

        plan.mkdir(&r("/proc"))?;
        plan.push(
            Step::Mount {
                source: Some(c("proc")?),
                target: cpath(&r("/proc"))?,
                fstype: Some(c("proc")?),
                flags: SAFE | libc::MS_NOEXEC,
                // Other users' processes (the box's init) are invisible to the program.
                data: Some(c("hidepid=2")?),
            },
            "mount /proc",
        );

        plan.mkdir(&r("/dev"))?;
        match &host.dev_template {
            Some(template) => {
                // One bind of a prepared directory of device nodes instead of a tmpfs
                // and a bind per device: fewer mounts, faster boxes. Not nodev, or
                // the nodes would be useless; noexec instead.
                let attributes = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
                plan.attach(template, &r("/dev"), attributes, "bind the /dev template")?;
            }
            None => plan.dev_per_device(&r("/dev"))?,
        }
        plan.tmpfs(
            &r("/dev/shm"),
            0o1777,
            limits.shm_bytes,
            "",
            "mount /dev/shm",
        )?;

        if config.tty.is_some() {
            // A devpts instance of the box's own: none of the host's terminals.
            plan.push(
                Step::Mount {
                    source: Some(c("devpts")?),
                    target: cpath(&r("/dev/pts"))?,
                    fstype: Some(c("devpts")?),
                    flags: libc::MS_NOSUID | libc::MS_NOEXEC,
                    data: Some(crate::tty::DEVPTS_OPTIONS.to_owned()),
                },
                "mount the box's own /dev/pts",
            );
        }

        plan.mkdir(&r("/tmp"))?;
        plan.tmpfs(&r("/tmp"), 0o1777, limits.tmp_bytes, "", "mount /tmp")?;

        let box_dir_bound = config.binds.iter().any(|b| b.inside == Path::new("/box"));
        plan.mkdir(&r("/box"))?;
        if !box_dir_bound {
            let owner = format!(",uid={BOX_UID},gid={BOX_UID}");
            plan.tmpfs(&r("/box"), 0o755, limits.box_bytes, &owner, "mount /box")?;
        }
        for bind in &config.binds {
            let inside = r(&bind.inside.to_string_lossy());
            plan.mkdir_all(root, &inside)?;
            plan.bind_anything(&bind.host, &inside, bind.writable)?;
        }

        plan.push(
            Step::PivotRoot {
                new_root: cpath(root)?,
            },
            "pivot_root into the box",
        );
        plan.remount_read_only(Path::new("/"), SAFE, "make / read-only")?;
        plan.push(Step::Hostname, "set the host name");
        Ok(plan)
    }

    /// Applies every step. Runs in the box's init, between clone and exec: only
    /// system calls on prepared data. On failure returns the index of the failed
    /// step and the errno.
    pub(crate) fn apply(&self) -> Result<(), (u32, i32)> {
        for (index, step) in self.steps.iter().enumerate() {
            apply_step(step, &self.trees).map_err(|errno| (index as u32, errno))?;
        }
        Ok(())
    }

    /// The description of step `index`, for error messages.
    pub(crate) fn describe(&self, index: u32) -> &str {
        self.descriptions
            .get(index as usize)
            .map_or("unknown step", String::as_str)
    }

    /// Reproduces `inside` of the system tree in the box's `root` as `entry` says.
    fn reproduce(
        &mut self,
        system: &System,
        inside: &Path,
        root: &Path,
        entry: &Entry,
    ) -> Result<()> {
        let target = in_root(root, inside);
        match entry {
            Entry::Link(to) => {
                self.push(
                    Step::Symlink {
                        target: cpath(to)?,
                        link: cpath(&target)?,
                    },
                    format!("link {}", inside.display()),
                );
            }
            Entry::Copy(content) => {
                self.push(
                    Step::WriteFile {
                        path: cpath(&target)?,
                        content: content.clone(),
                    },
                    format!("copy {}", inside.display()),
                );
            }
            Entry::BindDir => self.bind_system(system, inside, root)?,
        }
        Ok(())
    }

    /// Binds `inside` of the system tree (a directory or a file) read-only,
    /// nosuid and nodev at the same place in the box's `root`, creating the
    /// mount point of the right kind and its missing parents.
    fn bind_system(&mut self, system: &System, inside: &Path, root: &Path) -> Result<()> {
        let attributes = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY;
        let (tree, is_dir) = system.tree(inside, attributes)?;
        let target = in_root(root, inside);
        if let Some(parent) = target.parent() {
            self.mkdir_all(root, parent)?;
        }
        if is_dir {
            self.mkdir(&target)?;
        } else {
            self.push(
                Step::Touch {
                    path: cpath(&target)?,
                },
                format!("create {}", target.display()),
            );
        }
        self.push(
            Step::Attach {
                tree: self.trees.len(),
                target: cpath(&target)?,
            },
            format!("bind {} of the system tree", inside.display()),
        );
        self.trees.push(tree);
        Ok(())
    }

    fn push(&mut self, step: Step, what: impl Into<String>) {
        self.steps.push(step);
        self.descriptions.push(what.into());
    }

    fn mkdir(&mut self, path: &Path) -> Result<()> {
        self.push(
            Step::Mkdir {
                path: cpath(path)?,
                mode: 0o755,
            },
            format!("create {}", path.display()),
        );
        Ok(())
    }

    /// Creates `path` and every missing parent below `root`.
    fn mkdir_all(&mut self, root: &Path, path: &Path) -> Result<()> {
        let relative = path.strip_prefix(root).unwrap_or(path);
        let mut current = root.to_path_buf();
        for part in relative.components() {
            current.push(part);
            self.mkdir(&current)?;
        }
        Ok(())
    }

    fn tmpfs(
        &mut self,
        target: &Path,
        mode: u32,
        size: u64,
        extra: &str,
        what: &str,
    ) -> Result<()> {
        let data = format!("size={size},mode={mode:o}{extra}");
        self.push(
            Step::Mount {
                source: Some(c("tmpfs")?),
                target: cpath(target)?,
                fstype: Some(c("tmpfs")?),
                flags: SAFE,
                data: Some(c(&data)?),
            },
            what,
        );
        Ok(())
    }

    /// Binds a file or a directory, creating the mount point of the right kind.
    fn bind_anything(&mut self, host: &Path, target: &Path, writable: bool) -> Result<()> {
        let meta =
            std::fs::metadata(host).map_err(|e| Error::io("cannot use host path", host, e))?;
        if meta.is_dir() {
            self.mkdir(target)?;
        } else {
            self.push(
                Step::Touch {
                    path: cpath(target)?,
                },
                format!("create {}", target.display()),
            );
        }
        self.bind(host, target, writable)
    }

    /// A recursive bind, nosuid, nodev and (unless `writable`) read-only.
    fn bind(&mut self, host: &Path, target: &Path, writable: bool) -> Result<()> {
        let read_only = if writable { 0 } else { MOUNT_ATTR_RDONLY };
        let what = format!("bind {} to {}", host.display(), target.display());
        self.attach(
            host,
            target,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | read_only,
            what,
        )
    }

    /// Clones the mount tree at `host` now, as the supervisor, with `attributes`
    /// set on every mount of it, and plans its attachment at `target`.
    fn attach(
        &mut self,
        host: &Path,
        target: &Path,
        attributes: u64,
        what: impl Into<String>,
    ) -> Result<()> {
        let tree = sys::detached_tree(host, attributes)?;
        self.push(
            Step::Attach {
                tree: self.trees.len(),
                target: cpath(target)?,
            },
            what,
        );
        self.trees.push(tree);
        Ok(())
    }

    /// The descriptors of the detached trees, which the init must keep open until
    /// it has applied the plan.
    pub(crate) fn tree_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.trees.iter().map(AsRawFd::as_raw_fd)
    }

    /// The detached trees, in the order the attach steps name them.
    pub(crate) fn trees(&self) -> &[OwnedFd] {
        &self.trees
    }

    /// A plan received without its trees, given the trees that came beside it.
    /// A step naming a tree that did not come fails when applied (`EBADF`).
    pub(crate) fn with_trees(self, trees: Vec<OwnedFd>) -> MountPlan {
        MountPlan { trees, ..self }
    }

    /// The fallback /dev when no template directory can hold device nodes: a tmpfs
    /// with each device bound from the host, then made read-only.
    fn dev_per_device(&mut self, dev: &Path) -> Result<()> {
        self.tmpfs(dev, 0o755, 64 << 10, "", "mount the /dev tmpfs")?;
        for name in DEVICES {
            let target = dev.join(name);
            self.push(
                Step::Touch {
                    path: cpath(&target)?,
                },
                format!("create /dev/{name}"),
            );
            // Device nodes keep their host mount's flags: nodev would make them useless.
            self.push(
                Step::Mount {
                    source: Some(cpath(&Path::new("/dev").join(name))?),
                    target: cpath(&target)?,
                    fstype: None,
                    flags: libc::MS_BIND,
                    data: None,
                },
                format!("bind /dev/{name}"),
            );
        }
        for (link, target) in DEV_LINKS {
            self.push(
                Step::Symlink {
                    target: c(target)?,
                    link: cpath(&dev.join(link))?,
                },
                format!("link /dev/{link}"),
            );
        }
        for name in DEV_DIRS {
            self.mkdir(&dev.join(name))?;
        }
        self.remount_read_only(
            dev,
            libc::MS_NOSUID | libc::MS_NOEXEC,
            "make /dev read-only",
        )
    }

    fn remount_read_only(&mut self, target: &Path, flags: c_ulong, what: &str) -> Result<()> {
        self.push(
            Step::Mount {
                source: None,
                target: cpath(target)?,
                fstype: None,
                flags: libc::MS_REMOUNT | libc::MS_RDONLY | flags,
                data: None,
            },
            what,
        );
        Ok(())
    }
}

/// The generated /etc: the box's users and hosts, nothing of the host's; with
/// network, a resolver that asks slirp4netns's forwarder.
fn etc_files(network: bool) -> Vec<(&'static str, String)> {
    let hosts_from = if network { "files dns" } else { "files" };
    let mut files = vec![
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\nrunbox:x:{BOX_UID}:{BOX_UID}:runbox:/box:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        (
            "group",
            format!("root:x:0:\nrunbox:x:{BOX_UID}:\nnogroup:x:65534:\n"),
        ),
        (
            "hosts",
            "127.0.0.1\tlocalhost runbox\n::1\tlocalhost\n".to_string(),
        ),
        ("hostname", "runbox\n".to_string()),
        (
            "nsswitch.conf",
            format!("passwd: files\ngroup: files\nhosts: {hosts_from}\n"),
        ),
    ];
    if network {
        files.push((
            "resolv.conf",
            format!("nameserver {}\n", crate::network::DNS_SERVER),
        ));
    }
    files
}

/// Where the box path `inside` is below the box's `root` on the host.
fn in_root(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

fn c(s: &str) -> Result<CString> {
    CString::new(s)
        .map_err(|_| Error::InvalidConfig(format!("'{}' contains a NUL byte", s.escape_debug())))
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig(format!("path '{}' contains a NUL byte", p.display())))
}

fn ptr_or_null(s: &Option<CString>) -> *const libc::c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Runs one step; async-signal-safe.
fn apply_step(step: &Step, trees: &[OwnedFd]) -> Result<(), i32> {
    match step {
        Step::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => {
            // SAFETY: every pointer is a NUL-terminated string owned by the plan (or
            // null where mount(2) allows it), alive for the whole call.
            let rc = unsafe {
                libc::mount(
                    ptr_or_null(source),
                    target.as_ptr(),
                    ptr_or_null(fstype),
                    *flags,
                    ptr_or_null(data).cast(),
                )
            };
            sys::check(rc)
        }
        Step::Mkdir { path, mode } => {
            // SAFETY: `path` is a NUL-terminated string owned by the plan.
            let rc = unsafe { libc::mkdir(path.as_ptr(), *mode) };
            match sys::check(rc) {
                Err(libc::EEXIST) => Ok(()),
                other => other,
            }
        }
        Step::Touch { path } => {
            // SAFETY: `path` is a NUL-terminated string owned by the plan.
            let fd = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                )
            };
            sys::check(fd)?;
            // SAFETY: `fd` was just opened by this function and is closed once.
            unsafe { libc::close(fd) };
            Ok(())
        }
        Step::Symlink { target, link } => {
            // SAFETY: both are NUL-terminated strings owned by the plan.
            sys::check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) })
        }
        Step::WriteFile { path, content } => {
            // SAFETY: `path` is a NUL-terminated string owned by the plan.
            let fd = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o644,
                )
            };
            sys::check(fd)?;
            let written = sys::write_all(fd, content);
            // SAFETY: `fd` was just opened by this function and is closed once.
            unsafe { libc::close(fd) };
            written
        }
        Step::Attach { tree, target } => {
            let tree = trees.get(*tree).ok_or(libc::EBADF)?.as_raw_fd();
            let empty = c"";
            // SAFETY: `tree` is a descriptor the plan owns, kept open in the init;
            // both paths are NUL-terminated strings alive for the call.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_move_mount,
                    tree,
                    empty.as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                )
            };
            sys::check(rc as libc::c_int)
        }
        Step::PivotRoot { new_root } => pivot_root(new_root),
        Step::Hostname => {
            // SAFETY: HOSTNAME is a static NUL-terminated string; the length excludes the NUL.
            sys::check(unsafe { libc::sethostname(HOSTNAME.as_ptr(), HOSTNAME.count_bytes()) })
        }
    }
}

/// Makes `new_root` the root and detaches the old one (the `pivot_root(".", ".")` idiom,
/// which needs no directory for the old root).
fn pivot_root(new_root: &CStr) -> Result<(), i32> {
    let dot = c".";
    let slash = c"/";
    // SAFETY: NUL-terminated static or plan-owned strings; these calls only change
    // this process's root and working directory.
    unsafe {
        sys::check(libc::chdir(new_root.as_ptr()))?;
        sys::check(libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int)?;
        sys::check(libc::umount2(dot.as_ptr(), libc::MNT_DETACH))?;
        sys::check(libc::chdir(slash.as_ptr()))
    }
}

/// The host directory a plan mounts the box root on.
pub(crate) fn root_mountpoint(state_dir: &Path) -> PathBuf {
    state_dir.join("root")
}
