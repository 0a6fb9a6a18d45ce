//! The compile cache: the work directory a successful compile left, kept on disk
//! and reused by later jobs with the same files, compiler and command.
//!
//! Layout of the cache directory (mode 0711: boxes pass through, nobody lists it):
//!
//! ```text
//! entries/<key>/files/...      the work directory after the compile (0755 / 0644)
//! entries/<key>/COMMITTED      JSON: every file's size and SHA-256, the compile stage
//! tmp/<key>.<pid>.<n>/         an entry being written
//! ```
//!
//! An entry is written into `tmp/`, its `COMMITTED` marker last, then renamed into
//! `entries/` in one step: a crash leaves a temporary directory (swept later by the
//! next cache of this directory), never a partial entry. A hit checks every file
//! against the marker before use, so a corrupted entry is removed, not run. Hits
//! set the marker's mtime; when the entries together pass the size bound, the
//! least recently used ones are removed. A job holds a shared lock on its entry's
//! marker while its boxes read it; eviction skips locked entries.
//!
//! The key is a SHA-256 of the language (id, version, and the path, size and mtime
//! of its tools), the expanded compile command, the environment and binds of the
//! compile box, and every file's name and content. Compile limits are not part of
//! it: only successful compiles are kept.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use runbox_sandbox::{Outcome, Status};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the compile cache lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCacheConfig {
    /// The cache directory (created, mode 0711).
    pub dir: PathBuf,
    /// The bound on the bytes of all entries; least recently used ones go first.
    pub max_bytes: u64,
}

/// The default size bound: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

impl CompileCacheConfig {
    /// A cache in `dir` with the default bound.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompileCacheConfig {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The name of the marker file, written last.
const MARKER: &str = "COMMITTED";
/// Most files and directories an entry may hold; a larger work dir is not cached.
const MAX_ENTRY_NODES: usize = 20_000;
/// Deepest directory nesting copied.
const MAX_DEPTH: usize = 64;
/// Bytes counted per file or directory on top of its contents (a disk block).
const NODE_BYTES: u64 = 4096;

/// The hex SHA-256 of everything a compile depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key(String);

impl Key {
    fn as_str(&self) -> &str {
        &self.0
    }
}

/// Builds a [`Key`] from length-prefixed parts, so that no two lists of parts
/// hash alike.
pub(crate) struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub(crate) fn new() -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"runbox compile cache v1\0");
        KeyBuilder(hasher)
    }

    pub(crate) fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub(crate) fn finish(self) -> Key {
        Key(hex(&self.0.finalize()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A compile stage as kept in the marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredStage {
    exit_code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_truncated: bool,
    stderr_truncated: bool,
    cpu_time_ns: u64,
    wall_time_ns: u64,
    memory_kb: u64,
}

impl StoredStage {
    fn from_outcome(o: &Outcome) -> Self {
        StoredStage {
            exit_code: o.exit_code,
            stdout: o.stdout.clone(),
            stderr: o.stderr.clone(),
            stdout_truncated: o.stdout_truncated,
            stderr_truncated: o.stderr_truncated,
            cpu_time_ns: o.cpu_time.as_nanos() as u64,
            wall_time_ns: o.wall_time.as_nanos() as u64,
            memory_kb: o.memory_kb,
        }
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            status: Status::Ok,
            exit_code: self.exit_code,
            signal: None,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            stdout_truncated: self.stdout_truncated,
            stderr_truncated: self.stderr_truncated,
            cpu_time: Duration::from_nanos(self.cpu_time_ns),
            wall_time: Duration::from_nanos(self.wall_time_ns),
            memory_kb: self.memory_kb,
            limit_hit: None,
            chunks: Vec::new(),
        }
    }
}

/// One node of an entry, as the marker lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Node {
    Dir {
        path: String,
    },
    File {
        path: String,
        mode: u32,
        size: u64,
        sha256: String,
        /// The copy's inode and modification time when it was written: a hit
        /// that finds both unchanged trusts the contents without hashing them
        /// again (entries are written by runbox only, as root, and never changed).
        #[serde(default)]
        written: Option<(u64, i64, i64)>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// The marker's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    key: String,
    bytes: u64,
    nodes: Vec<Node>,
    compile: StoredStage,
}

/// A cache entry in use: its files stay while this lives (eviction skips it).
#[derive(Debug)]
pub(crate) struct Entry {
    files: PathBuf,
    compile: Outcome,
    /// The marker, locked shared.
    _lock: fs::File,
}

impl Entry {
    /// The work directory to bind read-only at /box.
    pub(crate) fn path(&self) -> &Path {
        &self.files
    }

    /// The compile stage that produced the entry.
    pub(crate) fn compile(&self) -> &Outcome {
        &self.compile
    }
}

/// What identical compiles in flight share: the failure of the first, if it failed.
pub(crate) type Flight = Arc<Mutex<Option<Outcome>>>;

/// The cache of one engine.
#[derive(Debug)]
pub(crate) struct CompileCache {
    entries: PathBuf,
    tmp: PathBuf,
    max_bytes: u64,
    flights: Mutex<HashMap<Key, Weak<Mutex<Option<Outcome>>>>>,
    /// The bytes of all entries as last counted plus what this process added since.
    total: Mutex<Option<u64>>,
}

/// Why an entry could not be stored (it is then simply not cached).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the work directory is too large to cache ({0})")]
    TooLarge(String),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

impl CompileCache {
    /// Opens (creating) the cache directory and sweeps what dead writers left.
    pub(crate) fn open(config: &CompileCacheConfig) -> io::Result<CompileCache> {
        let make = |dir: &Path| -> io::Result<()> {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o711))
        };
        make(&config.dir)?;
        let entries = config.dir.join("entries");
        let tmp = config.dir.join("tmp");
        make(&entries)?;
        make(&tmp)?;
        let cache = CompileCache {
            entries,
            tmp,
            max_bytes: config.max_bytes,
            flights: Mutex::new(HashMap::new()),
            total: Mutex::new(None),
        };
        cache.sweep_tmp();
        Ok(cache)
    }

    /// The flight of `key`: compiles of the same key hold its lock one at a time.
    pub(crate) fn flight(&self, key: &Key) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.retain(|_, weak| weak.strong_count() > 0);
        if let Some(flight) = flights.get(key).and_then(Weak::upgrade) {
            return flight;
        }
        let flight: Flight = Arc::new(Mutex::new(None));
        flights.insert(key.clone(), Arc::downgrade(&flight));
        flight
    }

    fn entry_dir(&self, key: &Key) -> PathBuf {
        self.entries.join(key.as_str())
    }

    /// The entry of `key`, checked file by file; a damaged entry is removed.
    pub(crate) fn lookup(&self, key: &Key) -> Option<Entry> {
        let dir = self.entry_dir(key);
        let marker_path = dir.join(MARKER);
        let mut marker = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&marker_path)
            .ok()?;
        marker.lock_shared().ok()?;
        // Evicted between the open and the lock: the path now names nothing or another file.
        let same = match (fs::metadata(&marker_path), marker.metadata()) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            return None;
        }
        let mut text = String::new();
        let manifest = marker
            .read_to_string(&mut text)
            .ok()
            .and_then(|_| serde_json::from_str::<Manifest>(&text).ok());
        let files = dir.join("files");
        let verified = manifest
            .as_ref()
            .filter(|m| m.key == key.as_str())
            .is_some_and(|m| verify(&files, &m.nodes).is_ok());
        let Some(manifest) = manifest.filter(|_| verified) else {
            tracing::warn!("compile cache entry {} is damaged: removed", dir.display());
            drop(marker);
            self.remove_entry(&dir);
            return None;
        };
        if let Err(err) = marker.set_modified(SystemTime::now()) {
            tracing::debug!("cannot mark {} as used: {err}", dir.display());
        }
        Some(Entry {
            files,
            compile: manifest.compile.outcome(),
            _lock: marker,
        })
    }

    /// Copies the work directory `work` of a successful compile into the cache.
    ///
    /// `leave_out` names files of the work directory (the job's sources) that the
    /// entry must not keep.
    pub(crate) fn store(
        &self,
        key: &Key,
        work: &Path,
        compile: &Outcome,
        leave_out: &[String],
    ) -> Result<(), StoreError> {
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .tmp
            .join(format!("{}.{}.{n}", key.as_str(), std::process::id()));
        let result = self.write_entry(key, work, compile, &tmp, leave_out);
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        let bytes = result?;
        let dir = self.entry_dir(key);
        if let Err(source) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            // Another job stored the same key first: theirs is as good.
            if dir.join(MARKER).exists() {
                return Ok(());
            }
            return Err(StoreError::Io {
                what: "cannot move the entry into",
                path: dir,
                source,
            });
        }
        self.account(bytes);
        Ok(())
    }

    /// Writes an entry into `tmp`, the marker last; returns its bytes.
    fn write_entry(
        &self,
        key: &Key,
        work: &Path,
        compile: &Outcome,
        tmp: &Path,
        leave_out: &[String],
    ) -> Result<u64, StoreError> {
        let files = tmp.join("files");
        for dir in [tmp, &files] {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(dir)
                .map_err(io_err("cannot create", dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(io_err("cannot open up", dir))?;
        }
        let mut nodes = Vec::new();
        let mut bytes = 0;
        let copy = Copy {
            leave_out,
            max_bytes: self.max_entry_bytes(),
        };
        copy_tree(work, &files, "", 0, &mut nodes, &mut bytes, &copy)?;
        let manifest = Manifest {
            key: key.as_str().to_string(),
            bytes,
            nodes,
            compile: StoredStage::from_outcome(compile),
        };
        let text = serde_json::to_vec(&manifest).map_err(|e| StoreError::Io {
            what: "cannot encode the marker of",
            path: tmp.to_path_buf(),
            source: io::Error::other(e),
        })?;
        let marker = tmp.join(MARKER);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&marker)
            .map_err(io_err("cannot create", &marker))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(io_err("cannot write", &marker))?;
        Ok(bytes)
    }

    /// The most one entry may hold: half of the cache, so that one job's
    /// artifacts cannot evict every other entry.
    fn max_entry_bytes(&self) -> u64 {
        self.max_bytes / 2
    }

    /// Adds `bytes` to the running total and evicts when it passes the bound.
    fn account(&self, bytes: u64) {
        let mut total = self.total.lock().unwrap_or_else(|p| p.into_inner());
        let now = match *total {
            Some(t) => t + bytes,
            None => self.scan().iter().map(|e| e.bytes).sum(),
        };
        *total = Some(if now > self.max_bytes {
            self.evict()
        } else {
            now
        });
    }

    /// Every entry with its bytes and last use.
    fn scan(&self) -> Vec<Scanned> {
        let Ok(dirs) = fs::read_dir(&self.entries) else {
            return Vec::new();
        };
        dirs.flatten()
            .filter_map(|d| {
                let dir = d.path();
                let marker = dir.join(MARKER);
                let used = fs::metadata(&marker).and_then(|m| m.modified()).ok()?;
                let text = fs::read(&marker).ok()?;
                let bytes = serde_json::from_slice::<Manifest>(&text).ok()?.bytes;
                Some(Scanned { dir, used, bytes })
            })
            .collect()
    }

    /// Removes least recently used entries not in use until the rest fit; returns
    /// the bytes left.
    fn evict(&self) -> u64 {
        let mut entries = self.scan();
        entries.sort_by_key(|e| e.used);
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        for entry in &entries {
            if total <= self.max_bytes {
                break;
            }
            let Ok(marker) = fs::File::open(entry.dir.join(MARKER)) else {
                continue;
            };
            if marker.try_lock().is_err() {
                continue; // a job is reading it
            }
            if self.remove_entry(&entry.dir) {
                total = total.saturating_sub(entry.bytes);
            }
        }
        total
    }

    /// Moves an entry out of `entries/` (one step), then deletes it.
    fn remove_entry(&self, dir: &Path) -> bool {
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        let trash = self.tmp.join(format!("evicted.{}.{n}", std::process::id()));
        if fs::rename(dir, &trash).is_err() {
            return false;
        }
        if let Err(err) = fs::remove_dir_all(&trash) {
            tracing::warn!("cannot remove {}: {err}", trash.display());
        }
        true
    }

    /// Removes temporary directories whose writer is gone.
    fn sweep_tmp(&self) {
        let Ok(dirs) = fs::read_dir(&self.tmp) else {
            return;
        };
        for dir in dirs.flatten() {
            let name = dir.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.split('.').nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| {
                p == std::process::id() || Path::new(&format!("/proc/{p}")).exists()
            });
            if !alive {
                let _ = fs::remove_dir_all(dir.path());
            }
        }
    }
}

struct Scanned {
    dir: PathBuf,
    used: SystemTime,
    bytes: u64,
}

/// What a copy into the cache keeps.
struct Copy<'a> {
    /// Paths (relative to the work directory) left out.
    leave_out: &'a [String],
    /// The bound on one entry's bytes.
    max_bytes: u64,
}

/// Copies `from` into `to` without following links: regular files (readable by
/// every box user), directories and symbolic links; anything else is left out.
/// A sparse file (a hole the compile box got for free would be written densely
/// here) makes the entry too large to keep.
fn copy_tree(
    from: &Path,
    to: &Path,
    prefix: &str,
    depth: usize,
    nodes: &mut Vec<Node>,
    bytes: &mut u64,
    copy: &Copy<'_>,
) -> Result<(), StoreError> {
    let max_bytes = copy.max_bytes;
    if depth > MAX_DEPTH {
        return Err(StoreError::TooLarge(format!(
            "deeper than {MAX_DEPTH} directories"
        )));
    }
    let mut names: Vec<_> = fs::read_dir(from)
        .map_err(io_err("cannot list", from))?
        .map(|d| d.map(|d| d.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_err("cannot list", from))?;
    names.sort();
    for name in names {
        let Some(text) = name.to_str() else {
            continue; // not UTF-8: no compiler output worth keeping
        };
        let rel = if prefix.is_empty() {
            text.to_string()
        } else {
            format!("{prefix}/{text}")
        };
        let source = from.join(&name);
        let target = to.join(&name);
        let meta = fs::symlink_metadata(&source).map_err(io_err("cannot inspect", &source))?;
        if nodes.len() >= MAX_ENTRY_NODES {
            return Err(StoreError::TooLarge(format!(
                "more than {MAX_ENTRY_NODES} files"
            )));
        }
        *bytes += NODE_BYTES;
        if meta.file_type().is_symlink() {
            let link = fs::read_link(&source).map_err(io_err("cannot read link", &source))?;
            std::os::unix::fs::symlink(&link, &target).map_err(io_err("cannot create", &target))?;
            nodes.push(Node::Symlink {
                path: rel,
                target: link.to_string_lossy().into_owned(),
            });
        } else if meta.is_dir() {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&target)
                .map_err(io_err("cannot create", &target))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
                .map_err(io_err("cannot open up", &target))?;
            nodes.push(Node::Dir { path: rel.clone() });
            copy_tree(&source, &target, &rel, depth + 1, nodes, bytes, copy)?;
        } else if meta.is_file() {
            if copy.leave_out.contains(&rel) {
                continue;
            }
            // Blocks actually allocated, with a block of slack for tails.
            if meta.blocks() * 512 + NODE_BYTES < meta.len() {
                return Err(StoreError::TooLarge(format!(
                    "{rel} is sparse ({} bytes long, {} allocated)",
                    meta.len(),
                    meta.blocks() * 512
                )));
            }
            *bytes += meta.len();
            if *bytes > max_bytes {
                return Err(StoreError::TooLarge(format!(
                    "more than the cache's {max_bytes} bytes"
                )));
            }
            let mode = if meta.mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            let (size, sha256) = copy_file(&source, &target, mode)?;
            let written = fs::symlink_metadata(&target)
                .ok()
                .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()));
            nodes.push(Node::File {
                path: rel,
                mode,
                size,
                sha256,
                written,
            });
        }
    }
    Ok(())
}

/// Copies one regular file, hashing it on the way.
fn copy_file(source: &Path, target: &Path, mode: u32) -> Result<(u64, String), StoreError> {
    let mut input = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(source)
        .map_err(io_err("cannot open", source))?;
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(target)
        .map_err(io_err("cannot create", target))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = input
            .read(&mut buffer)
            .map_err(io_err("cannot read", source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        output
            .write_all(&buffer[..n])
            .map_err(io_err("cannot write", target))?;
        size += n as u64;
    }
    fs::set_permissions(target, fs::Permissions::from_mode(mode))
        .map_err(io_err("cannot set the mode of", target))?;
    Ok((size, hex(&hasher.finalize())))
}

/// Checks that `files` holds exactly what the marker lists, byte for byte.
fn verify(files: &Path, nodes: &[Node]) -> io::Result<()> {
    let bad = |what: &str, path: &str| io::Error::other(format!("{path}: {what}"));
    for node in nodes {
        match node {
            Node::Dir { path } => {
                if !fs::symlink_metadata(files.join(path))?.is_dir() {
                    return Err(bad("not a directory", path));
                }
            }
            Node::Symlink { path, target } => {
                if fs::read_link(files.join(path))?.to_string_lossy() != *target {
                    return Err(bad("another link target", path));
                }
            }
            Node::File {
                path,
                size,
                sha256,
                written,
                ..
            } => {
                let full = files.join(path);
                let meta = fs::symlink_metadata(&full)?;
                if !meta.is_file() || meta.len() != *size {
                    return Err(bad("another size", path));
                }
                if *written == Some((meta.ino(), meta.mtime(), meta.mtime_nsec())) {
                    continue;
                }
                let mut file = fs::File::open(&full)?;
                let mut hasher = Sha256::new();
                io::copy(&mut file, &mut HashWriter(&mut hasher))?;
                if hex(&hasher.finalize()) != *sha256 {
                    return Err(bad("other contents", path));
                }
            }
        }
    }
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> Outcome {
        Outcome {
            status: Status::Ok,
            exit_code: Some(0),
            signal: None,
            stdout: Vec::new(),
            stderr: b"warning: x".to_vec(),
            stdout_truncated: false,
            stderr_truncated: false,
            cpu_time: Duration::from_millis(12),
            wall_time: Duration::from_millis(20),
            memory_kb: 2048,
            limit_hit: None,
            chunks: Vec::new(),
        }
    }

    fn key(text: &str) -> Key {
        let mut k = KeyBuilder::new();
        k.part(text.as_bytes());
        k.finish()
    }

    fn work(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn cache(max_bytes: u64) -> (tempfile::TempDir, CompileCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(&CompileCacheConfig {
            dir: dir.path().join("cache"),
            max_bytes,
        })
        .unwrap();
        (dir, cache)
    }

    #[test]
    fn keys_differ_when_parts_are_split_differently() {
        let mut a = KeyBuilder::new();
        a.part(b"ab").part(b"c");
        let mut b = KeyBuilder::new();
        b.part(b"a").part(b"bc");
        assert_ne!(a.finish(), b.finish());
        assert_eq!(key("x"), key("x"));
        assert_eq!(key("x").as_str().len(), 64);
    }

    #[test]
    fn a_stored_entry_is_found_with_its_files_and_compile_stage() {
        let (_d, cache) = cache(1 << 30);
        let w = work(&[("main", b"\x7fELF"), ("sub/data.txt", b"x")]);
        fs::set_permissions(w.path().join("main"), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(cache.lookup(&key("a")).is_none());
        cache.store(&key("a"), w.path(), &outcome(), &[]).unwrap();
        let entry = cache.lookup(&key("a")).expect("a hit");
        assert_eq!(fs::read(entry.path().join("main")).unwrap(), b"\x7fELF");
        assert_eq!(fs::read(entry.path().join("sub/data.txt")).unwrap(), b"x");
        let mode = fs::metadata(entry.path().join("main")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o755, "readable and runnable by box users");
        assert_eq!(entry.compile(), &outcome());
        assert!(cache.lookup(&key("b")).is_none());
    }

    #[test]
    fn an_entry_without_its_marker_is_never_used() {
        let (_d, cache) = cache(1 << 30);
        let w = work(&[("main", b"binary")]);
        cache.store(&key("a"), w.path(), &outcome(), &[]).unwrap();
        fs::remove_file(cache.entry_dir(&key("a")).join(MARKER)).unwrap();
        assert!(cache.lookup(&key("a")).is_none());
    }

    #[test]
    fn a_changed_or_truncated_file_makes_the_entry_a_miss_and_removes_it() {
        let (_d, cache) = cache(1 << 30);
        let w = work(&[("main", b"binary!")]);
        cache.store(&key("a"), w.path(), &outcome(), &[]).unwrap();
        let main = cache.entry_dir(&key("a")).join("files/main");
        fs::write(&main, b"binarY!").unwrap();
        assert!(cache.lookup(&key("a")).is_none());
        assert!(
            !cache.entry_dir(&key("a")).exists(),
            "the damaged entry is removed"
        );
        cache.store(&key("a"), w.path(), &outcome(), &[]).unwrap();
        fs::write(cache.entry_dir(&key("a")).join("files/main"), b"bin").unwrap();
        assert!(cache.lookup(&key("a")).is_none());
    }

    #[test]
    fn a_writer_that_died_mid_write_leaves_no_entry_and_its_files_are_swept() {
        let (d, cache) = cache(1 << 30);
        let w = work(&[("main", b"binary")]);
        // What a crash before the rename leaves: a temporary directory of a dead pid.
        let dead = cache
            .tmp
            .join(format!("{}.2147483000.0", key("a").as_str()));
        cache
            .write_entry(&key("a"), w.path(), &outcome(), &dead, &[])
            .unwrap();
        assert!(cache.lookup(&key("a")).is_none());
        drop(cache);
        let reopened = CompileCache::open(&CompileCacheConfig {
            dir: d.path().join("cache"),
            max_bytes: 1 << 30,
        })
        .unwrap();
        assert!(!dead.exists(), "swept by the next cache");
        assert!(reopened.lookup(&key("a")).is_none());
    }

    #[test]
    fn least_recently_used_entries_are_evicted_past_the_size_bound() {
        // Each entry: a 40 KiB file plus a 4 KiB node: three fit in 150 KiB, four do not.
        let (_d, cache) = cache(150 << 10);
        let w = work(&[("main", &[7u8; 40 << 10])]);
        for name in ["a", "b", "c"] {
            cache.store(&key(name), w.path(), &outcome(), &[]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        // "a" is used again: "b" is now the least recently used.
        drop(cache.lookup(&key("a")).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        cache.store(&key("d"), w.path(), &outcome(), &[]).unwrap();
        assert!(cache.lookup(&key("b")).is_none(), "b was evicted");
        for name in ["a", "c", "d"] {
            assert!(cache.lookup(&key(name)).is_some(), "{name} was kept");
        }
    }

    #[test]
    fn an_entry_in_use_is_not_evicted() {
        let (_d, cache) = cache(100 << 10);
        let w = work(&[("main", &[7u8; 40 << 10])]);
        cache.store(&key("a"), w.path(), &outcome(), &[]).unwrap();
        let held = cache.lookup(&key("a")).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        cache.store(&key("b"), w.path(), &outcome(), &[]).unwrap();
        // Apart in time, so "b" is older than "c" whatever the clock's granularity.
        std::thread::sleep(Duration::from_millis(20));
        cache.store(&key("c"), w.path(), &outcome(), &[]).unwrap();
        assert!(held.path().join("main").exists());
        drop(held);
        assert!(
            cache.lookup(&key("a")).is_some(),
            "a was in use, b went instead"
        );
        assert!(cache.lookup(&key("b")).is_none());
    }

    #[test]
    fn a_work_dir_larger_than_the_bound_is_not_cached() {
        let (_d, cache) = cache(10 << 10);
        let w = work(&[("main", &[7u8; 20 << 10])]);
        assert!(matches!(
            cache.store(&key("a"), w.path(), &outcome(), &[]),
            Err(StoreError::TooLarge(_))
        ));
        assert!(cache.lookup(&key("a")).is_none());
        assert_eq!(fs::read_dir(&cache.tmp).unwrap().count(), 0);
    }

    #[test]
    fn a_sparse_file_is_not_cached() {
        let (_d, cache) = cache(1 << 30);
        let w = work(&[("main", b"x")]);
        // 100 MiB that cost the compile box nothing: a hole.
        let hole = fs::File::create(w.path().join("huge")).unwrap();
        hole.set_len(100 << 20).unwrap();
        assert!(matches!(
            cache.store(&key("a"), w.path(), &outcome(), &[]),
            Err(StoreError::TooLarge(message)) if message.contains("sparse")
        ));
        assert!(cache.lookup(&key("a")).is_none());
    }

    #[test]
    fn one_entry_cannot_take_more_than_half_of_the_cache() {
        let (_d, cache) = cache(100 << 10);
        let w = work(&[("main", &[7u8; 60 << 10])]);
        assert!(matches!(
            cache.store(&key("a"), w.path(), &outcome(), &[]),
            Err(StoreError::TooLarge(_))
        ));
    }

    #[test]
    fn sources_left_out_are_not_in_the_entry() {
        let (_d, cache) = cache(1 << 30);
        let w = work(&[
            ("main", b"binary"),
            ("main.c", b"int main(){}"),
            ("data.txt", b"d"),
        ]);
        cache
            .store(&key("a"), w.path(), &outcome(), &["main.c".to_string()])
            .unwrap();
        let entry = cache.lookup(&key("a")).unwrap();
        assert!(entry.path().join("main").exists());
        assert!(entry.path().join("data.txt").exists());
        assert!(!entry.path().join("main.c").exists(), "the source was kept");
    }

    #[test]
    fn links_are_kept_as_links_and_never_followed() {
        let (_d, cache) = cache(1 << 30);
        let w = work(&[("main", b"x")]);
        std::os::unix::fs::symlink("/etc/shadow", w.path().join("evil")).unwrap();
        cache.store(&key("a"), w.path(), &outcome(), &[]).unwrap();
        let entry = cache.lookup(&key("a")).unwrap();
        let link = entry.path().join("evil");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("/etc/shadow"));
    }

    #[test]
    fn the_same_key_shares_one_flight() {
        let (_d, cache) = cache(1 << 30);
        let a = cache.flight(&key("a"));
        let b = cache.flight(&key("a"));
        let c = cache.flight(&key("c"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b));
        let again = cache.flight(&key("a"));
        assert!(
            again.lock().unwrap().is_none(),
            "a new flight once the last ended"
        );
    }
}
