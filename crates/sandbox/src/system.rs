//! The system tree of a box: where its /usr, its merged-/usr links, the /etc
//! entries it needs and the other system paths it declares (below /etc,
//! /var/lib or /opt) come from.
//!
//! Without a runtime that is the host: its /usr, its top-level links, its loader
//! cache. With one ([`BoxConfig::with_runtime`](crate::BoxConfig::with_runtime)),
//! it is a root directory runbox holds (a Debian suite, an image), and nothing of
//! the host's system tree reaches the box.
//!
//! Rules for a runtime's tree:
//! - the root and its `usr` are checked before every box (owned by root, writable
//!   by no one else, `usr` a real directory): a tree anyone could change would let
//!   them change what every box runs;
//! - every path in it is resolved *inside* it (`openat2` with `RESOLVE_IN_ROOT`):
//!   a symlink such as `etc/alternatives -> /etc/shadow`, which an image may well
//!   hold, names the runtime's own file, never the host's (so does
//!   `var/lib/x -> ../../..`: `..` stops at the runtime's root);
//! - what is read from it (top-level links, the loader cache) is read once per
//!   runtime and kept, keyed by the root directory's identity, so a box on a
//!   runtime costs what a box on the host costs.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::sys;

/// Top-level paths that are either symlinks into /usr (merged /usr) or
/// directories to bind read-only.
const USR_LINKS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Entries of /etc every box gets when its system tree has them: the loader cache
/// (correct and fast library lookup) and the time zone. Symlinks are recreated
/// and small files copied, which is cheaper per box than a bind mount. Anything
/// more (such as /etc/alternatives, which many Debian binaries go through) is
/// bound when a box's configuration asks for it
/// ([`BoxConfig::with_system_path`](crate::BoxConfig::with_system_path)).
const SYSTEM_ETC: &[&str] = &["/etc/ld.so.cache", "/etc/localtime"];

/// Files of [`SYSTEM_ETC`] up to this size are copied into the box's /etc.
const COPY_LIMIT: u64 = 1 << 20;

/// How a path of the system tree is reproduced in a box.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// A symlink with this target, recreated as it is.
    Link(PathBuf),
    /// A small file, copied.
    Copy(Vec<u8>),
    /// A directory, bound read-only.
    BindDir,
}

/// What a box reproduces of a system tree, read once per tree.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Top-level merged-/usr links (`bin -> usr/bin`) or directories.
    pub(crate) usr_links: Vec<(&'static str, Entry)>,
    /// Entries of [`SYSTEM_ETC`] the tree has.
    pub(crate) etc: Vec<(&'static str, Entry)>,
}

/// The system tree of one box.
#[derive(Debug)]
pub(crate) enum System {
    /// The host's own.
    Host,
    /// A runtime's root directory, checked and held open.
    Runtime {
        /// Where it is, for messages.
        path: PathBuf,
        /// An `O_PATH` descriptor of it: what every path is resolved in.
        root: OwnedFd,
        /// The root directory's identity, the key of its [`Layout`].
        identity: Identity,
    },
}

/// Device, inode and change time of a runtime's root directory: a runtime
/// removed and added again at the same path is a new directory.
type Identity = (u64, u64, i64, i64);

impl System {
    /// The host's tree, or the runtime at `root` once checked.
    pub(crate) fn open(runtime: Option<&Path>) -> Result<System> {
        let Some(path) = runtime else {
            return Ok(System::Host);
        };
        let invalid = |reason: String| Error::InvalidRuntime {
            root: path.to_path_buf(),
            reason,
        };
        if !path.is_absolute() {
            return Err(invalid("the path must be absolute".into()));
        }
        let root = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)
            .map_err(|e| invalid(format!("cannot open it: {e}")))?;
        let root = OwnedFd::from(root);
        let st = sys::fd_stat(&root).map_err(|e| invalid(format!("cannot stat it: {e}")))?;
        check_owned_by_root(&st).map_err(|r| invalid(format!("its root {r}")))?;
        let usr = sys::open_in_root(&root, Path::new("usr"), libc::O_PATH | libc::O_NOFOLLOW)
            .map_err(|e| invalid(format!("it has no usr directory: {e}")))?;
        let usr_st = sys::fd_stat(&usr).map_err(|e| invalid(format!("cannot stat usr: {e}")))?;
        if usr_st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(invalid("its usr is not a directory".into()));
        }
        check_owned_by_root(&usr_st).map_err(|r| invalid(format!("its usr {r}")))?;
        Ok(System::Runtime {
            path: path.to_path_buf(),
            root,
            identity: (st.st_dev, st.st_ino, st.st_ctime, st.st_ctime_nsec),
        })
    }

    /// A detached read-only tree of the directory or file at `inside` (an
    /// absolute path as the box sees it) and whether it is a directory.
    pub(crate) fn tree(&self, inside: &Path, attributes: u64) -> Result<(OwnedFd, bool)> {
        match self {
            System::Host => {
                let meta = std::fs::metadata(inside)
                    .map_err(|e| Error::io("cannot use host path", inside, e))?;
                Ok((sys::detached_tree(inside, attributes)?, meta.is_dir()))
            }
            System::Runtime { path, root, .. } => {
                let missing = |e: std::io::Error| Error::InvalidRuntime {
                    root: path.clone(),
                    reason: format!("cannot use {} of it: {e}", inside.display()),
                };
                let at = sys::open_in_root(root, inside, libc::O_PATH).map_err(missing)?;
                let st = sys::fd_stat(&at).map_err(missing)?;
                let tree = sys::detached_tree_of(&at, &path.join(inside), attributes)?;
                Ok((tree, st.st_mode & libc::S_IFMT == libc::S_IFDIR))
            }
        }
    }

    /// Whether `inside` is a directory of this tree.
    pub(crate) fn is_dir(&self, inside: &Path) -> bool {
        match self {
            System::Host => inside.is_dir(),
            System::Runtime { root, .. } => sys::open_in_root(root, inside, libc::O_PATH)
                .and_then(|fd| sys::fd_stat(&fd))
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
        }
    }

    /// How to reproduce `inside`: `None` when the tree does not have it or it is
    /// something else (a large file, a device).
    fn entry(&self, inside: &Path, copy_limit: u64) -> Result<Option<Entry>> {
        match self {
            System::Host => host_entry(inside, copy_limit),
            System::Runtime { path, root, .. } => {
                let Ok(at) = sys::open_in_root(root, inside, libc::O_PATH | libc::O_NOFOLLOW)
                else {
                    return Ok(None);
                };
                let fail = |e| Error::io("cannot read", path.join(inside), e);
                let st = sys::fd_stat(&at).map_err(fail)?;
                Ok(match st.st_mode & libc::S_IFMT {
                    libc::S_IFLNK => Some(Entry::Link(sys::fd_read_link(&at).map_err(fail)?)),
                    libc::S_IFDIR => Some(Entry::BindDir),
                    libc::S_IFREG if st.st_size as u64 <= copy_limit => {
                        let file =
                            sys::open_in_root(root, inside, libc::O_RDONLY | libc::O_NOFOLLOW)
                                .map_err(fail)?;
                        let mut content = Vec::with_capacity(st.st_size as usize);
                        std::io::Read::read_to_end(&mut std::fs::File::from(file), &mut content)
                            .map_err(fail)?;
                        Some(Entry::Copy(content))
                    }
                    _ => None,
                })
            }
        }
    }

    /// Reads what boxes reproduce of this tree.
    fn layout(&self) -> Result<Layout> {
        let mut usr_links = Vec::new();
        for name in USR_LINKS {
            if let Some(entry) = self.entry(&Path::new("/").join(name), 0)? {
                usr_links.push((*name, entry));
            }
        }
        let mut etc = Vec::new();
        for path in SYSTEM_ETC {
            if let Some(entry) = self.entry(Path::new(path), COPY_LIMIT)? {
                etc.push((*path, entry));
            }
        }
        Ok(Layout { usr_links, etc })
    }
}

/// `Err(reason)` unless `st` is owned by root and writable by no one else.
fn check_owned_by_root(st: &libc::stat) -> std::result::Result<(), String> {
    if st.st_uid != 0 {
        return Err(format!("is owned by uid {}, not root", st.st_uid));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(format!(
            "is writable by group or others (mode {:o})",
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

/// How to reproduce the host path `path`.
fn host_entry(path: &Path, copy_limit: u64) -> Result<Option<Entry>> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(None);
    };
    Ok(if meta.file_type().is_symlink() {
        Some(Entry::Link(
            std::fs::read_link(path).map_err(|e| Error::io("cannot read link", path, e))?,
        ))
    } else if meta.is_dir() {
        Some(Entry::BindDir)
    } else if meta.is_file() && meta.len() <= copy_limit {
        Some(Entry::Copy(
            std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?,
        ))
    } else {
        None
    })
}

/// The layouts of the host and of every runtime a box has used, read once each.
#[derive(Debug)]
pub(crate) struct Layouts {
    host: Arc<Layout>,
    runtimes: Mutex<HashMap<Identity, Arc<Layout>>>,
}

impl Layouts {
    /// Reads the host's layout now; runtimes' are read when first used.
    pub(crate) fn detect() -> Result<Layouts> {
        Ok(Layouts {
            host: Arc::new(System::Host.layout()?),
            runtimes: Mutex::new(HashMap::new()),
        })
    }

    /// The layout of `system`.
    pub(crate) fn of(&self, system: &System) -> Result<Arc<Layout>> {
        let System::Runtime { identity, .. } = system else {
            return Ok(self.host.clone());
        };
        // A poisoned map still holds whole entries: each is inserted in one step.
        if let Some(layout) = self
            .runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(identity)
        {
            return Ok(layout.clone());
        }
        // Read outside the lock: boxes on other runtimes need not wait for it.
        let layout = Arc::new(system.layout()?);
        self.runtimes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*identity, layout.clone());
        Ok(layout)
    }
}

/// Checks that `root` can serve as a box's runtime, as every box on it will:
/// an absolute path to a directory owned by root and writable by no one else,
/// holding a `usr` directory that is the same.
pub fn check_runtime(root: &Path) -> Result<()> {
    System::open(Some(root)).map(drop)
}
