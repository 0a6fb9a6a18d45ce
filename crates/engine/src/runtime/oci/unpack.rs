//! Applying layers to a tree, safely, whatever the layers hold.
//!
//! A layer is a tar stream of changes: files, directories, links, and whiteouts
//! (`.wh.<name>` deletes `<name>` of the layers below, `.wh..wh..opq` empties its
//! directory of what the layers below put there). Layers come from anyone, so each
//! entry is held to these rules:
//!
//! - A path stays in the tree. A leading `/` is dropped (an absolute path in a
//!   layer means the image's root), a `..` component is refused: no tool writes
//!   one, only an attacker does.
//! - Symbolic links are written as they are (their targets mean something inside
//!   the box) and never followed out of the tree. When an entry's parent is a
//!   symlink laid by an earlier entry (`evil -> /etc`, then `evil/passwd`), the
//!   link is resolved as if the tree were `/` (`chroot` semantics, as containerd
//!   and Docker do), so `evil/passwd` lands in the tree's own `etc/passwd`. The
//!   last component of an entry is never followed: an entry replaces a symlink, it
//!   does not write through it.
//! - Hard links point at an entry already in the tree, never at a directory.
//! - Device nodes and FIFOs are skipped (and listed): a runtime needs none, the
//!   box has its own /dev.
//! - setuid and setgid bits are dropped; owners are not applied, so every file
//!   belongs to the user runbox runs as (root when it runs as root); extended
//!   attributes (file capabilities among them) are not applied either.
//!
//! Why not `tar::Entry::unpack_in`: it checks that an entry's path has no `..` and
//! that the *lexical* destination is under the root, but it opens the path with
//! the kernel's resolution, so a symlink laid by an earlier layer (`evil -> /etc`)
//! is followed by a later layer's `evil/passwd`: its own check is per archive, and
//! layers are several archives applied to one tree. Here every parent is resolved
//! by hand with `lstat`, component by component, and each one is a real directory
//! (never a symlink) when the entry is written. The tree is a fresh private
//! directory (mode 0700) that only this code writes, so nothing can swap a
//! component between the check and the write: `openat2(RESOLVE_IN_ROOT)` would
//! give the same guarantee with `unsafe` or another dependency, which this crate
//! does not allow for no gain.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::{OciError, SkippedEntry};

/// How many symlinks one path may go through before it is refused, as Linux does.
const MAX_SYMLINKS: usize = 40;

/// A root directory being built from layers.
pub(crate) struct Tree {
    root: PathBuf,
    /// The mode of each directory, applied at the end (a read-only directory of
    /// one layer must not stop the next layer from writing into it).
    dir_modes: HashMap<PathBuf, u32>,
    /// Entries not applied, with why.
    pub(crate) skipped: Vec<SkippedEntry>,
}

/// Why one entry was refused: the caller names the layer.
struct Refusal {
    entry: String,
    reason: String,
}

/// A failure while applying one entry.
enum Failure {
    Hostile(Refusal),
    Host(OciError),
}

impl From<OciError> for Failure {
    fn from(err: OciError) -> Self {
        Failure::Host(err)
    }
}

impl Tree {
    /// A tree rooted at `root`, an empty directory that only this tree writes.
    pub(crate) fn new(root: PathBuf) -> Tree {
        Tree {
            root,
            dir_modes: HashMap::new(),
            skipped: Vec::new(),
        }
    }

    /// Applies one layer (an uncompressed tar stream) named `layer` in errors.
    pub(crate) fn apply_layer(&mut self, reader: impl Read, layer: &str) -> Result<(), OciError> {
        let mut archive = tar::Archive::new(reader);
        let bad_tar = |err: io::Error| {
            OciError::InvalidImage(format!("layer {layer} is not a readable tar stream: {err}"))
        };
        // Paths this layer wrote (and their parents), which its own opaque
        // markers must not remove.
        let mut written: HashSet<PathBuf> = HashSet::new();
        for entry in archive.entries().map_err(bad_tar)? {
            let mut entry = entry.map_err(bad_tar)?;
            match self.apply_entry(&mut entry, &mut written) {
                Ok(()) => {}
                Err(Failure::Hostile(refusal)) => {
                    return Err(OciError::HostileLayer {
                        layer: layer.to_string(),
                        entry: refusal.entry,
                        reason: refusal.reason,
                    });
                }
                Err(Failure::Host(err)) => return Err(err),
            }
        }
        Ok(())
    }

    /// Sets the directories' recorded modes, once every layer is applied.
    pub(crate) fn finish(&mut self) -> Result<(), OciError> {
        let mut dirs: Vec<_> = self.dir_modes.drain().collect();
        // Deepest first, so a read-only parent never stops its children.
        dirs.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        for (rel, mode) in dirs {
            let path = self.root.join(&rel);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                        .map_err(|err| OciError::io("setting the mode of", &path, err))?;
                }
                _ => {} // removed by a later layer
            }
        }
        Ok(())
    }

    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        written: &mut HashSet<PathBuf>,
    ) -> Result<(), Failure> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let refuse = |reason: &str| {
            Failure::Hostile(Refusal {
                entry: shown.clone(),
                reason: reason.to_string(),
            })
        };
        let Some(rel) = sanitize(&raw).map_err(&refuse)? else {
            // The root itself ("./"): its mode is runbox's to choose.
            return Ok(());
        };
        let name = rel.file_name().unwrap_or_default().to_os_string();
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let kind = entry.header().entry_type();

        // Whiteouts delete from the layers below; they are not files.
        let name_bytes = name.as_bytes();
        if name_bytes == b".wh..wh..opq" {
            let dir = self.resolve(parent_rel).map_err(|reason| refuse(&reason))?;
            self.clear_dir(&dir, written)?;
            return Ok(());
        }
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(refuse("a whiteout of no name"));
            }
            let dir = self.resolve(parent_rel).map_err(|reason| refuse(&reason))?;
            self.remove(&dir.join(OsStr::from_bytes(hidden)))?;
            return Ok(());
        }

        let skip = |tree: &mut Tree, why: &str| {
            tracing::debug!("layer entry {shown:?} skipped: {why}");
            tree.skipped.push(SkippedEntry {
                path: shown.clone(),
                reason: why.to_string(),
            });
        };
        use tar::EntryType;
        match kind {
            EntryType::Char | EntryType::Block => {
                skip(self, "device node (the box has its own /dev)");
                return Ok(());
            }
            EntryType::Fifo => {
                skip(self, "FIFO");
                return Ok(());
            }
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link => {}
            EntryType::XGlobalHeader | EntryType::XHeader => return Ok(()),
            _ => {
                skip(self, "entry type not used in root filesystems");
                return Ok(());
            }
        }

        let parent = self.resolve(parent_rel).map_err(|reason| refuse(&reason))?;
        self.make_dirs(&parent)?;
        let target = parent.join(&name);
        let path = self.root.join(&target);
        let mode = entry.header().mode().unwrap_or(0o644);
        mark_written(written, &target);

        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        self.remove(&target)?;
                        create_dir(&path)?;
                    }
                    Err(_) => create_dir(&path)?,
                }
                // Sticky stays (a /tmp needs it), setuid and setgid do not.
                self.dir_modes.insert(target, mode & 0o1777);
            }
            EntryType::Symlink => {
                let Some(link) = entry.link_name_bytes() else {
                    return Err(refuse("a symlink without a target"));
                };
                let link = OsStr::from_bytes(&link).to_os_string();
                self.remove(&target)?;
                std::os::unix::fs::symlink(&link, &path)
                    .map_err(|err| OciError::io("creating the symlink", &path, err))?;
            }
            EntryType::Link => {
                let Some(link) = entry.link_name_bytes() else {
                    return Err(refuse("a hard link without a target"));
                };
                let Some(link_rel) = sanitize(&link)
                    .map_err(|reason| refuse(&format!("hard link target has {reason}")))?
                else {
                    return Err(refuse("a hard link to the root"));
                };
                let link_parent = self
                    .resolve(link_rel.parent().unwrap_or(Path::new("")))
                    .map_err(|reason| refuse(&reason))?;
                let source_rel = link_parent.join(link_rel.file_name().unwrap_or_default());
                let source = self.root.join(&source_rel);
                match fs::symlink_metadata(&source) {
                    Ok(meta) if !meta.is_dir() => {}
                    Ok(_) => return Err(refuse("a hard link to a directory")),
                    Err(_) => {
                        return Err(refuse(&format!(
                            "a hard link to {:?}, which is not in the image",
                            String::from_utf8_lossy(&link)
                        )));
                    }
                }
                if source_rel == target {
                    return Ok(());
                }
                self.remove(&target)?;
                fs::hard_link(&source, &path)
                    .map_err(|err| OciError::io("creating the hard link", &path, err))?;
            }
            _ => {
                self.remove(&target)?;
                // O_NOFOLLOW and O_EXCL: the name was just cleared, and a file
                // is created there, never something written through.
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|err| OciError::io("creating", &path, err))?;
                io::copy(entry, &mut file).map_err(|err| OciError::io("writing", &path, err))?;
                file.set_permissions(fs::Permissions::from_mode(mode & 0o777))
                    .map_err(|err| OciError::io("setting the mode of", &path, err))?;
            }
        }
        Ok(())
    }

    /// Resolves `rel` inside the tree: every component that exists is followed
    /// (symlinks as if the tree were `/`), so the result has no symlink among the
    /// components that exist. Components that do not exist are kept as they are.
    fn resolve(&self, rel: &Path) -> Result<PathBuf, String> {
        let mut resolved = PathBuf::new();
        let mut pending: VecDeque<OsString> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        let mut links = 0;
        while let Some(component) = pending.pop_front() {
            if component == ".." {
                resolved.pop(); // `..` of the root is the root
                continue;
            }
            if component == "." || component.is_empty() {
                continue;
            }
            let candidate = resolved.join(&component);
            let full = self.root.join(&candidate);
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err("too many levels of symbolic links".into());
                    }
                    let target = fs::read_link(&full).map_err(|err| err.to_string())?;
                    if target.is_absolute() {
                        resolved = PathBuf::new();
                    }
                    let mut expanded: VecDeque<OsString> = target
                        .components()
                        .filter_map(|c| match c {
                            Component::Normal(n) => Some(n.to_os_string()),
                            Component::ParentDir => Some("..".into()),
                            _ => None,
                        })
                        .collect();
                    expanded.extend(pending);
                    pending = expanded;
                }
                _ => resolved = candidate,
            }
        }
        Ok(resolved)
    }

    /// Creates the directories of `rel` (resolved: no symlink among them) that do
    /// not exist; a file in the way is replaced by a directory.
    fn make_dirs(&mut self, rel: &Path) -> Result<(), OciError> {
        let mut current = PathBuf::new();
        for component in rel.components() {
            current.push(component);
            let path = self.root.join(&current);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => self.remove(&current)?,
                Err(_) => {}
            }
            create_dir(&path)?;
            self.dir_modes.entry(current.clone()).or_insert(0o755);
        }
        Ok(())
    }

    /// Removes `rel` (never following it) if it exists.
    fn remove(&self, rel: &Path) -> Result<(), OciError> {
        let path = self.root.join(rel);
        let result = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(_) => return Ok(()),
        };
        result.map_err(|err| OciError::io("removing", &path, err))
    }

    /// Empties the directory `rel` of what earlier layers put there.
    fn clear_dir(&self, rel: &Path, written: &HashSet<PathBuf>) -> Result<(), OciError> {
        let path = self.root.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            _ => return Ok(()),
        }
        let children = fs::read_dir(&path).map_err(|err| OciError::io("reading", &path, err))?;
        for child in children {
            let child = child.map_err(|err| OciError::io("reading", &path, err))?;
            let child_rel = rel.join(child.file_name());
            if !written.contains(&child_rel) {
                self.remove(&child_rel)?;
            }
        }
        Ok(())
    }
}

/// `path` and its parents were written by the current layer.
fn mark_written(written: &mut HashSet<PathBuf>, path: &Path) {
    for ancestor in path.ancestors() {
        if ancestor.as_os_str().is_empty() || !written.insert(ancestor.to_path_buf()) {
            break;
        }
    }
}

fn create_dir(path: &Path) -> Result<(), OciError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|err| OciError::io("creating the directory", path, err))
}

/// An entry's path made relative to the tree: `/` and `.` dropped, `..` refused.
/// `None` for the root itself.
fn sanitize(raw: &[u8]) -> Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err("a `..` component (a path out of the tree)"),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// The apparent size of the regular files and symlinks under `root`, each
/// hard-linked file counted once.
pub(crate) fn tree_size(root: &Path) -> Result<u64, OciError> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|err| OciError::io("reading", &dir, err))?;
        for entry in entries {
            let entry = entry.map_err(|err| OciError::io("reading", &dir, err))?;
            let meta = fs::symlink_metadata(entry.path())
                .map_err(|err| OciError::io("reading", &entry.path(), err))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::sanitize;
    use std::path::PathBuf;

    #[test]
    fn absolute_paths_become_relative_and_parent_components_are_refused() {
        assert_eq!(
            sanitize(b"/etc/passwd"),
            Ok(Some(PathBuf::from("etc/passwd")))
        );
        assert_eq!(sanitize(b"./usr//bin/"), Ok(Some(PathBuf::from("usr/bin"))));
        assert_eq!(sanitize(b"./"), Ok(None));
        assert!(sanitize(b"a/../../escape").is_err());
    }
}
