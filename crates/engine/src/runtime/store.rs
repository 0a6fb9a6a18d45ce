//! The runtime store: runtimes on disk, content-addressed and shared.
//!
//! Layout of the store directory (`<data_dir>/runtimes`):
//!
//! ```text
//! <name>/manifest.json   what the runtime is (Manifest)
//! <name>/root/           its tree, bound read-only into boxes
//! <name>/lock            shared-locked by every RuntimeLease (boxes started on it)
//! .objects/ab/<sha256>-<mode>-<uid>-<gid>   one file of content and metadata
//! .tmp/<pid>-...         builds in progress and runtimes being removed
//! ```
//!
//! Rules:
//! - **Shared where identical.** Every regular file of a tree is a hard link to
//!   its object, keyed by the sha256 of its content and by its mode and owner
//!   (a hard link shares them). A second runtime of the same suite costs only
//!   the files that differ. An object whose only link is its own (link count 1)
//!   belongs to no runtime and is what [`RuntimeStore::gc`] removes: the file
//!   system keeps the reference count.
//! - **Content-addressed.** A runtime's digest is a sha256 over a walk of its
//!   tree in name order: for each entry its path, kind, mode, owner and its
//!   content's sha256 (files) or target (symlinks); times are left out, so the
//!   same packages give the same digest. [`RuntimeStore::verify`] recomputes it.
//! - **Atomic.** A runtime is built, shared and described in `.tmp/`, then
//!   renamed to its name: a failed or interrupted build leaves nothing under a
//!   name. What an interrupted build leaves in `.tmp/` (its process is gone) is
//!   removed when a store is next opened.
//! - **Not removed from under a box.** Whoever starts a box on a runtime holds a
//!   [`RuntimeLease`]: a shared `flock` on its `lock` file, kept while the box
//!   lives. Removal takes the lock exclusively without waiting and refuses while
//!   any lease exists; a lock rather than a count, because the kernel drops it
//!   when a process dies, so a crashed server never pins a runtime. Removal
//!   first renames the runtime out of its name, then deletes it.
//! - Trees hold directories, regular files and symlinks only: device nodes,
//!   FIFOs and sockets are dropped when a tree is stored (a box gets its /dev
//!   from the sandbox).

use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use super::{HOST, Progress, Result, RuntimeError};

const OBJECTS: &str = ".objects";
const TMP: &str = ".tmp";
const MANIFEST: &str = "manifest.json";
const ROOT: &str = "root";
const LOCK: &str = "lock";

/// Where a runtime came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RuntimeSource {
    /// A Debian suite built with mmdebstrap.
    Debian {
        /// The suite: `bookworm`, `trixie`, `sid`...
        suite: String,
        /// The packages installed beside the essential ones.
        packages: Vec<String>,
    },
    /// An OCI image: from a registry, an OCI layout directory or a `docker save`
    /// archive ([`super::oci`]).
    Oci {
        /// What it was taken from: `oci:REFERENCE`, `oci-layout:DIR[:TAG]` or
        /// `docker-archive:FILE`.
        reference: String,
        /// The image manifest's digest, when it has one.
        digest: Option<String>,
        /// Its platform, `linux/amd64`.
        platform: String,
    },
}

impl std::fmt::Display for RuntimeSource {
    /// `debian:trixie`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeSource::Debian { suite, .. } => write!(f, "debian:{suite}"),
            RuntimeSource::Oci { reference, .. } => f.write_str(reference),
        }
    }
}

/// What a stored runtime is: `<name>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its name in the store.
    pub name: String,
    /// Where it came from.
    pub source: RuntimeSource,
    /// `sha256:<hex>` over its tree (see the module docs).
    pub digest: String,
    /// Bytes of its regular files (before sharing with other runtimes).
    pub size_bytes: u64,
    /// Bytes of its files no other runtime had when it was added.
    pub new_bytes: u64,
    /// Its regular files.
    pub files: u64,
    /// When it was added, in seconds since the Unix epoch.
    pub created_unix: u64,
    /// How its files were shared when it was added: [`STORE_FORMAT`] now; 0
    /// (absent) for runtimes whose files may carry another runtime's times,
    /// which should be built again.
    #[serde(default)]
    pub store_format: u32,
}

/// The way files are shared that [`RuntimeStore::add`] uses: 2 since files
/// share an object only with the same modification time.
pub const STORE_FORMAT: u32 = 2;

/// A stored runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// What it is.
    pub manifest: Manifest,
    /// Its tree: what [`BoxConfig::with_runtime`](runbox_sandbox::BoxConfig::with_runtime) takes.
    pub root: PathBuf,
}

/// What [`RuntimeStore::gc`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Shared objects no runtime used any more.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A runtime in use: while it lives, the runtime cannot be removed. Take one
/// before starting a box on a runtime and drop it when the box has ended.
#[derive(Debug)]
pub struct RuntimeLease {
    root: PathBuf,
    /// Holds the shared lock; closing it releases the lock.
    _lock: File,
}

impl RuntimeLease {
    /// The runtime's tree, for [`BoxConfig::with_runtime`](runbox_sandbox::BoxConfig::with_runtime).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The runtimes of one directory (see the module docs).
#[derive(Debug, Clone)]
pub struct RuntimeStore {
    dir: PathBuf,
}

impl RuntimeStore {
    /// The store in `dir`, created when missing. Removes what interrupted builds
    /// and removals left behind.
    pub fn open(dir: impl Into<PathBuf>) -> Result<RuntimeStore> {
        let store = RuntimeStore { dir: dir.into() };
        for sub in [store.dir.clone(), store.objects(), store.tmp()] {
            std::fs::create_dir_all(&sub)
                .map_err(|e| RuntimeError::io("cannot create", &sub, e))?;
            // Boxes' mapped users never look paths up here (binds are opened by
            // root), but the runtime check wants no one else able to write.
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| RuntimeError::io("cannot chmod", &sub, e))?;
        }
        store.sweep_tmp()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every stored runtime, by name.
    pub fn list(&self) -> Result<Vec<Runtime>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| RuntimeError::io("cannot read", &self.dir, e))?;
        let mut runtimes = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RuntimeError::io("cannot read", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().join(MANIFEST).is_file() {
                continue;
            }
            runtimes.push(self.get(&name)?);
        }
        runtimes.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        Ok(runtimes)
    }

    /// The runtime `name`.
    pub fn get(&self, name: &str) -> Result<Runtime> {
        check_name(name)?;
        let dir = self.dir.join(name);
        let path = dir.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound { name: name.into() });
            }
            Err(e) => return Err(RuntimeError::io("cannot read", &path, e)),
        };
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| RuntimeError::Manifest {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        Ok(Runtime {
            manifest,
            root: dir.join(ROOT),
        })
    }

    /// Builds a runtime with `build` (which fills the empty directory it is
    /// given, reporting to `progress`), shares its files with the store's,
    /// checks it can serve as a box's root, and stores it as `name` atomically.
    pub fn add(
        &self,
        name: &str,
        source: RuntimeSource,
        progress: &mut dyn FnMut(Progress),
        build: impl FnOnce(&Path, &mut dyn FnMut(Progress)) -> Result<()>,
    ) -> Result<Runtime> {
        check_name(name)?;
        let target = self.dir.join(name);
        if target.exists() {
            return Err(RuntimeError::Exists { name: name.into() });
        }
        let work = TmpDir::create(&self.tmp(), name)?;
        let root = work.path.join(ROOT);
        build(&root, progress)?;
        runbox_sandbox::check_runtime(&root).map_err(RuntimeError::Unusable)?;
        let stored = self.share(&root, progress)?;
        let manifest = Manifest {
            name: name.into(),
            source,
            digest: stored.digest,
            size_bytes: stored.size_bytes,
            new_bytes: stored.new_bytes,
            files: stored.files,
            created_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            store_format: STORE_FORMAT,
        };
        let manifest_path = work.path.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        std::fs::write(&manifest_path, json)
            .map_err(|e| RuntimeError::io("cannot write", &manifest_path, e))?;
        let lock = work.path.join(LOCK);
        File::create(&lock).map_err(|e| RuntimeError::io("cannot create", &lock, e))?;
        std::fs::set_permissions(&work.path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| RuntimeError::io("cannot chmod", &work.path, e))?;
        // The one step that publishes it: a rename onto a name that must not exist.
        match std::fs::rename(&work.path, &target) {
            Ok(()) => work.keep(),
            Err(e) if target.exists() => {
                drop(e);
                return Err(RuntimeError::Exists { name: name.into() });
            }
            Err(e) => return Err(RuntimeError::io("cannot store", &target, e)),
        }
        Ok(Runtime {
            manifest,
            root: target.join(ROOT),
        })
    }

    /// Builds the Debian `suite` with `packages` ([`super::debian::build`]) and
    /// stores it as `name`.
    pub fn add_debian(
        &self,
        name: &str,
        suite: &str,
        packages: &[String],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Runtime> {
        let source = RuntimeSource::Debian {
            suite: suite.into(),
            packages: packages.to_vec(),
        };
        self.add(name, source, progress, |root, progress| {
            super::debian::build(suite, packages, root, progress).map(drop)
        })
    }

    /// The runtime `name`, built from the Debian `suite` with `packages` when
    /// the store does not have it yet. Another process building the same name
    /// at the same moment is not an error: its runtime is returned.
    pub fn ensure_debian(
        &self,
        name: &str,
        suite: &str,
        packages: &[String],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Runtime> {
        match self.get(name) {
            Err(RuntimeError::NotFound { .. }) => {
                match self.add_debian(name, suite, packages, progress) {
                    Err(RuntimeError::Exists { .. }) => self.get(name),
                    built => built,
                }
            }
            found => found,
        }
    }

    /// Removes the runtime `name`, unless a box uses it ([`RuntimeError::InUse`]).
    /// Its files shared with no other runtime stay as objects until [`RuntimeStore::gc`].
    pub fn remove(&self, name: &str) -> Result<()> {
        let runtime = self.get(name)?;
        let dir = runtime.root.parent().unwrap_or(&self.dir).to_path_buf();
        let lock_path = dir.join(LOCK);
        let lock =
            File::open(&lock_path).map_err(|e| RuntimeError::io("cannot open", &lock_path, e))?;
        let free = FileExt::try_lock_exclusive(&lock)
            .map_err(|e| RuntimeError::io("cannot lock", &lock_path, e))?;
        if !free {
            return Err(RuntimeError::InUse { name: name.into() });
        }
        let gone = self
            .tmp()
            .join(format!("{}-removed-{name}-{}", std::process::id(), nanos()));
        std::fs::rename(&dir, &gone).map_err(|e| RuntimeError::io("cannot remove", &dir, e))?;
        drop(lock);
        remove_tree(&gone)
    }

    /// Removes the shared objects no runtime uses any more, and what interrupted
    /// builds left behind.
    pub fn gc(&self) -> Result<GcReport> {
        self.sweep_tmp()?;
        let mut report = GcReport::default();
        for entry in WalkDir::new(self.objects()).min_depth(2).max_depth(2) {
            let entry = entry.map_err(walk_error)?;
            let meta = entry.metadata().map_err(walk_error)?;
            if meta.is_file() && meta.nlink() == 1 {
                std::fs::remove_file(entry.path())
                    .map_err(|e| RuntimeError::io("cannot remove", entry.path(), e))?;
                report.objects += 1;
                report.bytes += meta.len();
            }
        }
        Ok(report)
    }

    /// Recomputes the digest of the runtime `name` and compares it with its
    /// manifest's: [`RuntimeError::DigestMismatch`] when its tree was changed.
    pub fn verify(&self, name: &str) -> Result<Runtime> {
        let runtime = self.get(name)?;
        let actual = digest_tree(&runtime.root)?;
        if actual != runtime.manifest.digest {
            return Err(RuntimeError::DigestMismatch {
                name: name.into(),
                expected: runtime.manifest.digest,
                actual,
            });
        }
        Ok(runtime)
    }

    /// Takes a lease on the runtime `name` for a box about to start on it.
    pub fn lease(&self, name: &str) -> Result<RuntimeLease> {
        let runtime = self.get(name)?;
        let dir = self.dir.join(name);
        let lock_path = dir.join(LOCK);
        let lock = File::open(&lock_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::NotFound { name: name.into() },
            _ => RuntimeError::io("cannot open", &lock_path, e),
        })?;
        FileExt::lock_shared(&lock).map_err(|e| RuntimeError::io("cannot lock", &lock_path, e))?;
        // A removal may have taken the runtime away while this waited: the lock
        // must still be the one under its name.
        let held = lock
            .metadata()
            .map_err(|e| RuntimeError::io("cannot stat", &lock_path, e))?;
        let current = std::fs::metadata(&lock_path).ok();
        if current.is_none_or(|m| (m.dev(), m.ino()) != (held.dev(), held.ino())) {
            return Err(RuntimeError::NotFound { name: name.into() });
        }
        Ok(RuntimeLease {
            root: runtime.root,
            _lock: lock,
        })
    }

    /// Bytes of all shared objects: what the store's runtimes take on disk together.
    pub fn disk_usage(&self) -> Result<u64> {
        let mut bytes = 0;
        for entry in WalkDir::new(self.objects()).min_depth(2).max_depth(2) {
            let entry = entry.map_err(walk_error)?;
            bytes += entry.metadata().map_err(walk_error)?.len();
        }
        Ok(bytes)
    }

    fn objects(&self) -> PathBuf {
        self.dir.join(OBJECTS)
    }

    fn tmp(&self) -> PathBuf {
        self.dir.join(TMP)
    }

    /// Removes entries of `.tmp/` whose process is gone.
    fn sweep_tmp(&self) -> Result<()> {
        let tmp = self.tmp();
        let entries =
            std::fs::read_dir(&tmp).map_err(|e| RuntimeError::io("cannot read", &tmp, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                tracing::info!(
                    "removing {} left by an interrupted build",
                    entry.path().display()
                );
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Replaces every regular file of `root` by a hard link to its object, drops
    /// what is not a directory, file or symlink, and computes the digest.
    fn share(&self, root: &Path, progress: &mut dyn FnMut(Progress)) -> Result<Stored> {
        let total = WalkDir::new(root)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .count() as u64;
        let mut stored = Stored::default();
        let mut digest = Sha256::new();
        for entry in walk(root) {
            let entry = entry.map_err(walk_error)?;
            let path = entry.path();
            let meta = entry.metadata().map_err(walk_error)?;
            let kind = meta.file_type();
            if !(kind.is_dir() || kind.is_file() || kind.is_symlink()) {
                std::fs::remove_file(path)
                    .map_err(|e| RuntimeError::io("cannot remove", path, e))?;
                continue;
            }
            let payload = if kind.is_file() {
                let content = hash_file(path)?;
                stored.new_bytes += self.link_object(path, &meta, &content)?;
                stored.files += 1;
                stored.size_bytes += meta.len();
                if stored.files % 256 == 0 || stored.files == total {
                    progress(Progress::Storing {
                        done: stored.files,
                        total,
                    });
                }
                content
            } else if kind.is_symlink() {
                read_link(path)?
            } else {
                Vec::new()
            };
            record(&mut digest, root, path, &meta, &payload);
        }
        stored.digest = format!("sha256:{:x}", digest.finalize());
        Ok(stored)
    }

    /// Makes `path` a hard link to the object of its content and metadata,
    /// creating the object from it when new. Returns the bytes newly stored.
    ///
    /// The modification time is part of the object: compilers and runtimes
    /// that cache compiled files (Guile's `.go`, Racket's `.zo`, Python's
    /// `.pyc`) compare it with the source's, and a source shared with another
    /// suite's runtime, carrying that suite's newer time, made them recompile
    /// their whole library at every start.
    fn link_object(&self, path: &Path, meta: &std::fs::Metadata, content: &[u8]) -> Result<u64> {
        let hex = std::str::from_utf8(content).unwrap_or_default();
        let object = self.objects().join(&hex[..2]).join(format!(
            "{hex}-{:o}-{}-{}-{}.{:09}",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid(),
            meta.mtime(),
            meta.mtime_nsec()
        ));
        let parent = object.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| RuntimeError::io("cannot create", parent, e))?;
        if let Ok(existing) = std::fs::metadata(&object) {
            // A second name of a file already stored (a hard link in the tree):
            // a rename between two links of one file would do nothing.
            if (existing.dev(), existing.ino()) == (meta.dev(), meta.ino()) {
                return Ok(0);
            }
            // Link beside it, then rename over it: the tree never lacks the file.
            let beside = path.with_file_name(format!(".runbox-link-{}", nanos()));
            match std::fs::hard_link(&object, &beside) {
                Ok(()) => {
                    std::fs::rename(&beside, path)
                        .map_err(|e| RuntimeError::io("cannot replace", path, e))?;
                    return Ok(0);
                }
                // A gc removed it meanwhile: the file becomes the object.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RuntimeError::io("cannot link", &object, e)),
            }
        }
        match std::fs::hard_link(path, &object) {
            Ok(()) => Ok(meta.len()),
            // Another build stored the same content meanwhile: keep the file as is.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(0),
            Err(e) => Err(RuntimeError::io("cannot store", &object, e)),
        }
    }
}

/// What storing a tree measured.
#[derive(Debug, Default)]
struct Stored {
    digest: String,
    size_bytes: u64,
    new_bytes: u64,
    files: u64,
}

/// The digest of the tree at `root`, computed as [`RuntimeStore::add`] does.
pub(crate) fn digest_tree(root: &Path) -> Result<String> {
    let mut digest = Sha256::new();
    for entry in walk(root) {
        let entry = entry.map_err(walk_error)?;
        let path = entry.path();
        let meta = entry.metadata().map_err(walk_error)?;
        let kind = meta.file_type();
        let payload = if kind.is_file() {
            hash_file(path)?
        } else if kind.is_symlink() {
            read_link(path)?
        } else if kind.is_dir() {
            Vec::new()
        } else {
            continue;
        };
        record(&mut digest, root, path, &meta, &payload);
    }
    Ok(format!("sha256:{:x}", digest.finalize()))
}

/// The walk the digest is defined over: every entry, in name order, links not
/// followed, never into another file system.
fn walk(root: &Path) -> walkdir::IntoIter {
    WalkDir::new(root)
        .follow_links(false)
        .same_file_system(true)
        .sort_by_file_name()
        .into_iter()
}

/// One entry's record in a digest: kind, mode, owner, path, payload.
fn record(digest: &mut Sha256, root: &Path, path: &Path, meta: &std::fs::Metadata, payload: &[u8]) {
    let kind = if meta.is_dir() {
        b'd'
    } else if meta.file_type().is_symlink() {
        b'l'
    } else {
        b'f'
    };
    let relative = path.strip_prefix(root).unwrap_or(path);
    digest.update([kind]);
    digest.update(format!(
        " {:o} {} {} ",
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid()
    ));
    digest.update(relative.as_os_str().as_bytes());
    digest.update([0]);
    digest.update(payload);
    digest.update(b"\n");
}

/// The sha256 of a file's content, as lowercase hex bytes.
fn hash_file(path: &Path) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| RuntimeError::io("cannot read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| RuntimeError::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()).into_bytes())
}

fn read_link(path: &Path) -> Result<Vec<u8>> {
    let target =
        std::fs::read_link(path).map_err(|e| RuntimeError::io("cannot read link", path, e))?;
    Ok(target.as_os_str().as_bytes().to_vec())
}

fn walk_error(e: walkdir::Error) -> RuntimeError {
    let path = e.path().map(Path::to_path_buf).unwrap_or_default();
    let source = e
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("file system loop"));
    RuntimeError::io("cannot walk", path, source)
}

/// Deletes the tree at `path` without crossing into other file systems: a
/// build killed while the tree had /proc or /dev mounted must never make this
/// delete the host's. A mount point left behind is reported.
fn remove_tree(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    for entry in WalkDir::new(path)
        .follow_links(false)
        .same_file_system(true)
        .contents_first(true)
    {
        let entry = entry.map_err(walk_error)?;
        let p = entry.path();
        let removed = if entry.file_type().is_dir() {
            std::fs::remove_dir(p)
        } else {
            std::fs::remove_file(p)
        };
        removed.map_err(|e| RuntimeError::io("cannot remove", p, e))?;
    }
    Ok(())
}

/// Nanoseconds now, to make temporary names unique.
fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Runtime names: what a directory, a flag and a language file can all carry.
fn check_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| RuntimeError::InvalidName {
        name: name.into(),
        reason: reason.into(),
    };
    if name == HOST {
        return Err(invalid("'host' is the host's own /usr and is not stored"));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !first_ok || !rest_ok || name.len() > 64 {
        return Err(invalid(
            "use 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

/// A directory in `.tmp/` removed on drop unless kept.
struct TmpDir {
    path: PathBuf,
    keep: bool,
}

impl TmpDir {
    fn create(tmp: &Path, name: &str) -> Result<TmpDir> {
        let path = tmp.join(format!("{}-{name}-{}", std::process::id(), nanos()));
        std::fs::create_dir(&path).map_err(|e| RuntimeError::io("cannot create", &path, e))?;
        Ok(TmpDir { path, keep: false })
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = remove_tree(&self.path)
        {
            tracing::warn!("cannot clean up a failed runtime build: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_directories_or_flags_are_refused() {
        for bad in [
            "",
            "host",
            ".objects",
            "-x",
            "a/b",
            "A",
            "x y",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["trixie", "debian-sid", "py3.13_x"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn sources_display_as_kind_and_suite() {
        let source = RuntimeSource::Debian {
            suite: "trixie".into(),
            packages: vec!["python3".into()],
        };
        assert_eq!(source.to_string(), "debian:trixie");
    }
}
