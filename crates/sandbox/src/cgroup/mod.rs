//! cgroups: the memory, process and CPU limits of a box, and its measurements.
//!
//! Boxes live below the supervisor's own cgroup (read from `/proc/self/cgroup`),
//! under one parent directory per [`CgroupManager`] (e.g. `runbox-<pid>`), as
//! `box-0`, `box-1`, ... The rules this module keeps:
//! - it creates cgroups only below our own cgroup, in every hierarchy;
//! - it moves no process out of its cgroup: only the box processes the caller
//!   names go into box cgroups, and, on v2 when the "no internal processes" rule
//!   requires it and runbox is alone in its cgroup, runbox itself goes into the
//!   leaf `<own>/runbox-supervisor` (for good: nothing moves back on drop);
//! - it writes limits only to cgroups it created (and, on v2, enables controllers
//!   in our own cgroup's `cgroup.subtree_control` so that children can have them);
//! - it removes the groups of supervisors that died without cleaning up (named
//!   `runbox-<pid>-...` after a pid that no longer runs), never a live one's.
//!
//! Creating and removing cgroups is slow, so released box cgroups are pooled and
//! reused after their counters are re-baselined; a cgroup whose processes could
//! not all be killed is never reused. `v1.rs` and `v2.rs` hold the per-version
//! file layouts; `parse.rs` the text parsers; `delegate.rs` v2's controller
//! delegation; `sweep.rs` the removal of stale groups.

mod delegate;
mod parse;
mod sweep;
mod v1;
mod v2;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Which cgroup interface the boxes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CgroupVersion {
    /// One hierarchy per controller (or per group of co-mounted controllers).
    V1,
    /// The unified hierarchy.
    V2,
}

/// Limits a box's cgroup enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupLimits {
    /// Memory plus swap of the whole box, in bytes.
    pub memory_bytes: u64,
    /// Processes and threads of the whole box.
    pub pids: u64,
    /// CPUs the box may run on, as a cpuset list such as `"1"` or `"0-3,6"`.
    /// Ignored, with a warning, where the cpuset controller is not available.
    pub cpus: Option<String>,
}

/// Usage measured of one box run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CgroupUsage {
    /// User plus system CPU time of every process of the box.
    pub cpu_time: Duration,
    /// Peak memory (plus swap where it is accounted) of the box.
    pub memory_peak_bytes: u64,
    /// Whether the kernel's OOM killer killed a process of the box.
    pub oom_killed: bool,
    /// tmpfs and shared memory pages charged to the box at the end (files left
    /// in /tmp, /dev/shm and a writable /box).
    pub shmem_bytes: u64,
}

/// What a box holds when its program starts, the zero of its measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct MemoryMark {
    /// Bytes charged to the box (plus swap where it is accounted).
    pub usage_bytes: u64,
    /// Of which tmpfs and shared memory.
    pub shmem_bytes: u64,
}

/// One line of `runbox doctor`'s cgroup report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ControllerInfo {
    /// A controller (`memory`, `pids`, `cpuacct`, `cpu`, `cpuset`) or a feature
    /// of one (`memory+swap`: swap is counted in the memory limit).
    pub name: String,
    /// The parent directory of the boxes in this controller's hierarchy (empty
    /// when the controller is not mounted at all).
    pub path: PathBuf,
    /// Whether boxes get this controller's limits or measurements.
    pub usable: bool,
}

/// The detected hierarchy where boxes live, plus a pool of reusable box cgroups.
///
/// Dropping it removes the pooled box cgroups and the parent directories it created.
pub(crate) struct CgroupManager {
    /// The per-version layout: where the parent directories are, what they support.
    layout: Layout,
    /// Released box cgroups, empty of processes, ready for the next box.
    pool: Mutex<Vec<BoxCgroup>>,
    /// Set once the missing cpuset controller has been reported, to say it once.
    cpuset_warned: AtomicBool,
}

/// The version-specific layout of a [`CgroupManager`].
enum Layout {
    V1(v1::Layout),
    V2(v2::Layout),
}

/// What looking for one cgroup version found.
enum Detected<T> {
    /// Boxes can be created here.
    Usable(T),
    /// Not mounted, not ours, or not writable (unprivileged): not an error.
    Absent,
    /// Present and writable but not usable; the message says how to fix it.
    Misconfigured(String),
}

/// Numbers box cgroups uniquely in this process, so that two managers sharing a
/// parent name never race for the same directory.
static NEXT_BOX: AtomicU64 = AtomicU64::new(0);

/// For unit tests that start processes of their own: on a pure cgroup v2 host
/// the first detection moves this process into its `runbox-supervisor` leaf,
/// which the kernel allows only while no other process shares our cgroup; a
/// test's child (a forked probe, a `sh`) born before that move would stay beside
/// us and make every later detection refuse. Detecting once, before any test
/// starts a process, puts every child in the leaf from the start.
#[cfg(test)]
pub(crate) fn settle_for_tests() {
    static SETTLED: std::sync::Once = std::sync::Once::new();
    SETTLED.call_once(|| {
        let name = format!("runbox-test-{}-settle", std::process::id());
        // Without cgroups (not root, a v1-only host) there is nothing to settle.
        let _ = CgroupManager::detect(&name);
    });
}

impl CgroupManager {
    /// Detects the cgroup hierarchy from `/proc/self/cgroup` and
    /// `/proc/self/mountinfo` and creates the parent directory `group_name`
    /// (e.g. `runbox-<pid>`) below our own cgroup.
    ///
    /// `Ok(None)` when no hierarchy is mounted or writable (boxes then rely on
    /// rlimits); `Err(Error::Cgroup)` when a writable one lacks what boxes need
    /// (memory, pids, CPU accounting), with the file at fault and the fix.
    /// cgroup v2 is preferred when it has the memory and pids controllers.
    ///
    /// On v2, runbox may move itself into `<own>/runbox-supervisor` (see
    /// `delegate.rs`). Once a hierarchy is usable, the groups that dead
    /// supervisors left beside ours are removed (see `sweep.rs`).
    pub fn detect(group_name: &str) -> Result<Option<CgroupManager>> {
        check_group_name(group_name)?;
        let own = parse::proc_cgroups(&read_text(Path::new("/proc/self/cgroup"))?);
        let mounts = parse::cgroup_mounts(&read_text(Path::new("/proc/self/mountinfo"))?);
        let v2 = v2::Layout::detect(&own, &mounts, group_name)?;
        if let Detected::Usable(layout) = v2 {
            return Ok(Some(Self::start(Layout::V2(layout))));
        }
        let v1 = v1::Layout::detect(&own, &mounts, group_name)?;
        match (v1, v2) {
            (Detected::Usable(layout), _) => Ok(Some(Self::start(Layout::V1(layout)))),
            (Detected::Misconfigured(why), _) | (_, Detected::Misconfigured(why)) => {
                Err(Error::Cgroup(why))
            }
            _ => Ok(None),
        }
    }

    /// [`CgroupManager::detect`] for the group of lasting slots (see `lasting`),
    /// which outlives this process: it is never removed.
    pub fn detect_lasting(group_name: &str) -> Result<Option<CgroupManager>> {
        let mut manager = Self::detect(group_name)?;
        if let Some(manager) = &mut manager {
            match &mut manager.layout {
                Layout::V1(layout) => layout.keep_group(),
                Layout::V2(layout) => layout.keep_group(),
            }
        }
        Ok(manager)
    }

    /// A manager over `layout` with an empty pool, once the stale groups beside
    /// ours are gone.
    fn start(layout: Layout) -> Self {
        let places = match &layout {
            Layout::V1(layout) => layout.places(),
            Layout::V2(layout) => layout.places(),
        };
        let own_pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        sweep::sweep(&places, own_pid);
        Self {
            layout,
            pool: Mutex::new(Vec::new()),
            cpuset_warned: AtomicBool::new(false),
        }
    }

    /// The cgroup version the boxes use.
    pub fn version(&self) -> CgroupVersion {
        match self.layout {
            Layout::V1(_) => CgroupVersion::V1,
            Layout::V2(_) => CgroupVersion::V2,
        }
    }

    /// One entry per controller for `runbox doctor`: its name, the parent
    /// directory of the boxes, and whether boxes get it.
    pub fn describe(&self) -> Vec<ControllerInfo> {
        match &self.layout {
            Layout::V1(layout) => layout.describe(),
            Layout::V2(layout) => layout.describe(),
        }
    }

    /// Takes a box cgroup from the pool (or creates one), sets `limits`, and
    /// re-baselines its CPU, peak memory and OOM counters. It holds no process.
    pub fn acquire(&self, limits: &CgroupLimits) -> Result<BoxCgroup> {
        check_limits(limits)?;
        self.warn_if_cpuset_missing(limits);
        if let Some(mut cg) = self.take_pooled() {
            match cg.prepare(limits) {
                Ok(()) => return Ok(cg),
                // The request is at fault (e.g. CPUs outside ours), not the cgroup.
                Err(err @ Error::InvalidConfig(_)) => {
                    self.release(cg);
                    return Err(err);
                }
                // A pooled cgroup can fail where a fresh one does not (e.g. cached
                // pages above a lower limit): drop it, which removes it.
                Err(err) => tracing::debug!("pooled box cgroup not reusable: {err}"),
            }
        }
        let mut cg = self.create()?;
        cg.prepare(limits)?;
        Ok(cg)
    }

    /// The lasting box cgroup `name` of a slot this process holds (see
    /// `lasting`): opened, or created where missing, emptied of what a dead holder
    /// left, with `limits` set and its counters re-baselined. Dropping it empties
    /// it and keeps it for the slot's next holder.
    pub fn lasting(&self, name: &str, limits: &CgroupLimits) -> Result<BoxCgroup> {
        check_limits(limits)?;
        self.warn_if_cpuset_missing(limits);
        let open = || -> Result<BoxCgroup> {
            let imp = match &self.layout {
                Layout::V1(layout) => BoxImpl::V1(layout.open_or_create_box(name)?),
                Layout::V2(layout) => BoxImpl::V2(layout.open_or_create_box(name)?),
            };
            Ok(BoxCgroup {
                imp,
                lasting: true,
                applied: None,
            })
        };
        let mut cg = open()?;
        if !matches!(cg.is_empty(), Ok(true)) {
            cg.kill_all()?;
        }
        let ready = if cg.reusable() {
            cg.prepare(limits)
        } else {
            Err(Error::Cgroup("its peak memory cannot be reset".into()))
        };
        match ready {
            Ok(()) => Ok(cg),
            Err(err @ Error::InvalidConfig(_)) => Err(err),
            // As for a pooled cgroup: a fresh one may succeed where a used one
            // fails (cached pages above a lower limit), so remove it and start over.
            Err(err) => {
                tracing::debug!("lasting box cgroup {name} made anew: {err}");
                cg.lasting = false;
                drop(cg);
                let mut cg = open()?;
                cg.prepare(limits)?;
                Ok(cg)
            }
        }
    }

    /// Returns a box cgroup to the pool once its processes are gone; one with
    /// processes left, or that cannot be reused, is killed and removed instead.
    pub fn release(&self, cg: BoxCgroup) {
        if cg.reusable() && matches!(cg.is_empty(), Ok(true)) {
            self.pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(cg);
        }
        // Otherwise `cg` drops here, which kills what is left and removes it.
    }

    /// The most recently pooled box cgroup, if any (its pages are likeliest warm).
    fn take_pooled(&self) -> Option<BoxCgroup> {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Creates a new box cgroup, skipping names left behind by a dead process
    /// that had the same group name.
    fn create(&self) -> Result<BoxCgroup> {
        const ATTEMPTS: usize = 8;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let name = format!("box-{}", NEXT_BOX.fetch_add(1, Ordering::Relaxed));
            let created = match &self.layout {
                Layout::V1(layout) => layout.create_box(&name).map(|b| b.map(BoxImpl::V1)),
                Layout::V2(layout) => layout.create_box(&name).map(|b| b.map(BoxImpl::V2)),
            };
            match created? {
                Some(imp) => {
                    return Ok(BoxCgroup {
                        imp,
                        lasting: false,
                        applied: None,
                    });
                }
                None => {
                    skip_taken_names(&self.group_dirs());
                    last = Some(name);
                }
            }
        }
        Err(Error::Cgroup(format!(
            "cannot create a box cgroup: {ATTEMPTS} names up to {} already exist",
            last.unwrap_or_default()
        )))
    }

    /// The parent directories of the boxes, one per hierarchy.
    fn group_dirs(&self) -> Vec<&Path> {
        match &self.layout {
            Layout::V1(layout) => layout.group_dirs(),
            Layout::V2(layout) => vec![layout.group_dir()],
        }
    }

    /// Whether the cpuset controller is available to pin boxes.
    pub fn has_cpuset(&self) -> bool {
        match &self.layout {
            Layout::V1(layout) => layout.has_cpuset(),
            Layout::V2(layout) => layout.has_cpuset(),
        }
    }

    /// Warns, once per manager, that a requested cpuset cannot be applied.
    fn warn_if_cpuset_missing(&self, limits: &CgroupLimits) {
        if limits.cpus.is_some()
            && !self.has_cpuset()
            && !self.cpuset_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!("the cpuset controller is not available: boxes are not pinned to CPUs");
        }
    }
}

impl Drop for CgroupManager {
    /// Removes the pooled box cgroups before the layout removes their parents.
    fn drop(&mut self) {
        let pooled = std::mem::take(self.pool.get_mut().unwrap_or_else(PoisonError::into_inner));
        drop(pooled);
    }
}

/// Page cache (not tmpfs) a reused box cgroup may hold when a box starts. An
/// earlier box's cache (files it was the first to read or write on the host's
/// disks: a runtime's interpreter and libraries, say) stays charged to the
/// cgroup; when the next program needs the room, the kernel reclaims that cache
/// instead of growing the peak, so the program's figure (the peak less what was
/// charged at its start) would miss what it took, and a program past its memory
/// limit would not be seen. Past this, the cgroup is not reused: it is removed
/// and a fresh one made ([`StaleCache`](crate::Error::StaleCache)). Reclaiming
/// the cache instead (`memory.force_empty`, `memory.reclaim`) would evict it from
/// the machine, so that every box read those files from disk again; a removed
/// cgroup's pages stay cached, charged to it (or its parent) until the kernel
/// needs the memory. What is left below this is within the figure's documented
/// slack.
pub(crate) const STALE_CACHE_BYTES: u64 = 1 << 20;

/// The error that makes a reused box cgroup be replaced when `bytes` of stale
/// page cache are charged to it (see [`STALE_CACHE_BYTES`]).
fn refuse_stale_cache(bytes: u64) -> Result<()> {
    if bytes > STALE_CACHE_BYTES {
        return Err(Error::StaleCache { bytes });
    }
    Ok(())
}

/// Moves the box counter past every `box-N` found in `dirs`, so that the next
/// names are free (without touching what another process left there).
fn skip_taken_names(dirs: &[&Path]) {
    let highest = dirs
        .iter()
        .flat_map(|dir| child_cgroups(dir))
        .filter_map(|child| {
            let name = child.file_name()?.to_str()?;
            name.strip_prefix("box-")?.parse::<u64>().ok()
        })
        .max();
    if let Some(highest) = highest {
        NEXT_BOX.fetch_max(highest + 1, Ordering::Relaxed);
    }
}

/// The cgroup file systems this process sees mounted read-only, for `doctor`:
/// a container engine mounts them so in an unprivileged container.
pub(crate) fn read_only_mounts() -> Vec<PathBuf> {
    let Ok(text) = read_text(Path::new("/proc/self/mountinfo")) else {
        return Vec::new();
    };
    parse::cgroup_mounts(&text)
        .into_iter()
        .filter(|m| m.read_only)
        .map(|m| m.mount_point)
        .collect()
}

/// On a host where the unified hierarchy holds the memory controller (pure
/// cgroup v2), the directory of our own cgroup (the parent of our
/// `runbox-supervisor` leaf when we are in it), for `doctor`'s delegation check.
pub(crate) fn own_v2_dir() -> Option<PathBuf> {
    let own = parse::proc_cgroups(&read_text(Path::new("/proc/self/cgroup")).ok()?);
    let mounts = parse::cgroup_mounts(&read_text(Path::new("/proc/self/mountinfo")).ok()?);
    if mounts.iter().any(|m| m.has_controllers(&["memory".into()])) {
        return None; // Hybrid or v1: memory is bound to a v1 hierarchy.
    }
    let line = own.iter().find(|l| l.is_v2())?;
    mounts
        .iter()
        .filter(|m| m.fs == parse::CgroupFs::V2)
        .find_map(|m| {
            let dir = parse::resolve(&m.mount_point, &m.root, &line.path)?;
            Some(delegate::base_of(&dir, &line.path, &m.mount_point).0)
        })
}

/// Refuses a parent name that is not a single, plain path component.
fn check_group_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Error::InvalidConfig(format!(
            "cgroup group name '{name}' must be a single directory name"
        )));
    }
    Ok(())
}

/// Refuses limits the kernel would take as "nothing may run" or reject obscurely.
fn check_limits(limits: &CgroupLimits) -> Result<()> {
    if limits.memory_bytes == 0 {
        return Err(Error::InvalidConfig(
            "the memory limit must be above 0".into(),
        ));
    }
    if limits.pids == 0 {
        return Err(Error::InvalidConfig(
            "the process limit must be above 0".into(),
        ));
    }
    if let Some(cpus) = &limits.cpus {
        let valid = !cpus.is_empty()
            && cpus
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == '-');
        if !valid {
            return Err(Error::InvalidConfig(format!(
                "cpus '{cpus}' is not a cpuset list such as \"1\" or \"0-3,6\""
            )));
        }
    }
    Ok(())
}

/// The cgroup of one box, in every hierarchy it uses.
///
/// Dropping it (rather than [releasing](CgroupManager::release) it) kills any
/// process left in it and removes its directories.
pub(crate) struct BoxCgroup {
    imp: BoxImpl,
    /// A lasting slot's cgroup: emptied but kept when dropped.
    lasting: bool,
    /// The limits this process last set here: a run with the same limits
    /// (the usual case for a slot) does not write them again.
    applied: Option<CgroupLimits>,
}

/// The version-specific part of a [`BoxCgroup`].
enum BoxImpl {
    V1(v1::BoxDirs),
    V2(v2::BoxDir),
}

impl BoxCgroup {
    /// Places process `pid` (a whole thread group) in this box: writes it to the
    /// box's `cgroup.procs` in every hierarchy the box uses.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        match &self.imp {
            BoxImpl::V1(b) => b.add_process(pid),
            BoxImpl::V2(b) => b.add_process(pid),
        }
    }

    /// On v2, a directory descriptor of the box cgroup for clone3's
    /// `CLONE_INTO_CGROUP`, which places the child without a later move; `None` on v1.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.imp {
            BoxImpl::V1(_) => None,
            BoxImpl::V2(b) => Some(b.dir_fd()),
        }
    }

    /// CPU time (user + system) used by the box since it was acquired. Cheap
    /// enough to poll every few milliseconds: one pread of a file kept open.
    pub fn cpu_time(&self) -> Result<Duration> {
        match &self.imp {
            BoxImpl::V1(b) => b.cpu_time(),
            BoxImpl::V2(b) => b.cpu_time(),
        }
    }

    /// Restarts the box's memory peak and returns its current usage in bytes,
    /// taken just before the program starts: the program's own peak is the
    /// final peak less this baseline (see [`CgroupUsage::memory_peak_bytes`]).
    pub fn memory_baseline(&self) -> Result<MemoryMark> {
        match &self.imp {
            BoxImpl::V1(b) => b.memory_baseline(),
            BoxImpl::V2(b) => b.memory_baseline(),
        }
    }

    /// Final measurements of the run, once the box's processes have ended.
    pub fn usage(&self) -> Result<CgroupUsage> {
        match &self.imp {
            BoxImpl::V1(b) => b.usage(),
            BoxImpl::V2(b) => b.usage(),
        }
    }

    /// Kills every process of the box and waits (about a second at most) until
    /// none is left.
    pub fn kill_all(&self) -> Result<()> {
        match &self.imp {
            BoxImpl::V1(b) => b.kill_all(),
            BoxImpl::V2(b) => b.kill_all(),
        }
    }

    /// On v1, places the calling thread in the box (see
    /// [`v1::BoxDirs::place_current_thread`]); on v2, where a thread cannot leave
    /// its process's cgroup, does nothing and returns false.
    pub fn place_current_thread(&self) -> Result<bool> {
        match &self.imp {
            BoxImpl::V1(b) => b.place_current_thread().map(|()| true),
            BoxImpl::V2(_) => Ok(false),
        }
    }

    /// On v1, the files a launcher process writes `0` to so as to be placed
    /// like [`place_current_thread`](Self::place_current_thread); none on v2.
    pub fn placement_files(&self) -> Result<Vec<std::fs::File>> {
        match &self.imp {
            BoxImpl::V1(b) => b.placement_files(),
            BoxImpl::V2(_) => Ok(Vec::new()),
        }
    }

    /// After a launcher thread placed in the box cloned `pid`: joins the
    /// hierarchies the thread does not sit in (a cpuset-only one, when pinned).
    pub fn complete_placement(&self, pid: i32) -> Result<()> {
        match &self.imp {
            BoxImpl::V1(b) => b.add_process_to_cpuset(pid),
            BoxImpl::V2(_) => Ok(()),
        }
    }

    /// Sets `limits` and re-baselines the counters, for a cgroup kept across runs.
    pub fn reset(&mut self, limits: &CgroupLimits) -> Result<()> {
        check_limits(limits)?;
        self.prepare(limits)
    }

    /// Whether no process is left in the box.
    pub fn is_empty(&self) -> Result<bool> {
        match &self.imp {
            BoxImpl::V1(b) => b.is_empty(),
            BoxImpl::V2(b) => b.is_empty(),
        }
    }

    /// Sets `limits` and re-baselines the counters for a new run.
    fn prepare(&mut self, limits: &CgroupLimits) -> Result<()> {
        // Nothing else writes a box's limits, so the ones this process set last
        // are still in place; a failure half-way leaves them unknown.
        let write_limits = self.applied.take().as_ref() != Some(limits);
        match &mut self.imp {
            BoxImpl::V1(b) => b.prepare(limits, write_limits),
            BoxImpl::V2(b) => b.prepare(limits, write_limits),
        }?;
        self.applied = Some(limits.clone());
        Ok(())
    }

    /// Whether this cgroup can measure another run correctly after this one.
    fn reusable(&self) -> bool {
        match &self.imp {
            BoxImpl::V1(_) => true,
            BoxImpl::V2(b) => b.reusable(),
        }
    }

    /// The box's directory in each hierarchy it uses.
    fn dirs(&self) -> Vec<&Path> {
        match &self.imp {
            BoxImpl::V1(b) => b.dirs(),
            BoxImpl::V2(b) => vec![b.path()],
        }
    }
}

impl Drop for BoxCgroup {
    /// Kills what is left in the box and removes its directories (a lasting
    /// slot's stay); failures are logged, since there is no one left to return
    /// them to.
    fn drop(&mut self) {
        if !matches!(self.is_empty(), Ok(true))
            && let Err(err) = self.kill_all()
        {
            tracing::warn!("cannot empty a box cgroup before removing it: {err}");
        }
        if self.lasting {
            return;
        }
        for dir in self.dirs() {
            if let Err(err) = remove_cgroup_tree(dir) {
                tracing::warn!("{err}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// File helpers shared by v1 and v2. cgroup files are small kernel-generated text:
// reads are whole-file, writes are one `write` per value.

/// Reads a whole text file.
fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))
}

/// The error for a cgroup file whose content is not what the kernel documents.
fn not_a_number(path: &Path, text: &str) -> Error {
    Error::Cgroup(format!(
        "unexpected content in {}: '{}'",
        path.display(),
        text.trim()
    ))
}

/// Writes `value` to an existing cgroup file, keeping the OS error for callers
/// that react to a specific errno.
fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    // No `create`: a cgroup file that does not exist must fail, not appear.
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// Writes `value` to an existing cgroup file.
fn write_value(path: &Path, value: &str) -> Result<()> {
    write_raw(path, value).map_err(|e| Error::io("cannot write cgroup file", path, e))
}

/// Opens a cgroup file for repeated preads.
fn open_read(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io("cannot open cgroup file", path, e))
}

/// Opens a box's `cgroup.procs` for repeated single-pid writes and for
/// [`lists_a_process`] reads.
fn open_procs(dir: &Path) -> Result<File> {
    let path = dir.join("cgroup.procs");
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("cannot open", path, e))
}

/// Whether an open `cgroup.procs` lists any process: its first bytes say so,
/// however long the list.
fn lists_a_process(procs: &File, dir: &Path) -> Result<bool> {
    let mut buf = [0u8; 64];
    loop {
        match procs.read_at(&mut buf, 0) {
            Ok(n) => return Ok(buf[..n].iter().any(u8::is_ascii_digit)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read", dir.join("cgroup.procs"), e)),
        }
    }
}

/// Writes `pid` to an open `cgroup.procs`, moving that process into the cgroup.
fn write_pid(procs: &File, pid: i32, dir: &Path) -> Result<()> {
    (&*procs)
        .write_all(pid.to_string().as_bytes())
        .map_err(|e| {
            Error::io(
                "cannot move process into cgroup",
                dir.join("cgroup.procs"),
                e,
            )
        })
}

/// Reads an open file from offset 0 without reopening it (kernfs regenerates
/// the content for each read at offset 0).
fn pread_text(file: &File, path: &Path) -> Result<String> {
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    break; // Every file read this way is far smaller.
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read cgroup file", path, e)),
        }
    }
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// A cgroup file a box reads or writes on every run, opened at its first use
/// and kept open: opening a cgroup file walks its path and sets up the
/// kernel's buffer each time.
struct OpenFile {
    path: PathBuf,
    writable: bool,
    file: std::sync::OnceLock<File>,
}

impl OpenFile {
    /// `path`, to be read.
    fn read(path: PathBuf) -> OpenFile {
        OpenFile {
            path,
            writable: false,
            file: std::sync::OnceLock::new(),
        }
    }

    /// `path`, to be read and written.
    fn read_write(path: PathBuf) -> OpenFile {
        OpenFile {
            writable: true,
            ..OpenFile::read(path)
        }
    }

    /// The open file (opened now if it is not yet).
    fn file(&self) -> Result<&File> {
        if let Some(file) = self.file.get() {
            return Ok(file);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(self.writable)
            .open(&self.path)
            .map_err(|e| Error::io("cannot open cgroup file", &self.path, e))?;
        Ok(self.file.get_or_init(|| file))
    }

    /// The whole content, read afresh.
    fn text(&self) -> Result<String> {
        pread_text(self.file()?, &self.path)
    }

    /// The single number the file holds.
    fn number(&self) -> Result<u64> {
        let text = self.text()?;
        parse::single_value(&text).ok_or_else(|| not_a_number(&self.path, &text))
    }

    /// The value of `key` in a flat keyed file such as `memory.stat`.
    fn keyed(&self, key: &str) -> Result<u64> {
        let text = self.text()?;
        parse::keyed_value(&text, key).ok_or_else(|| not_a_number(&self.path, &text))
    }

    /// Writes `value` in one write.
    fn write(&self, value: &str) -> Result<()> {
        self.file()?
            .write_at(value.as_bytes(), 0)
            .map(drop)
            .map_err(|e| Error::io("cannot write cgroup file", &self.path, e))
    }
}

/// Creates a cgroup directory; `Ok(false)` when it already exists.
fn make_cgroup(path: &Path) -> io::Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether an error means "you may not write here" rather than a failure.
fn is_permission_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

/// Removes a box cgroup and any child cgroups its processes made.
fn remove_cgroup_tree(path: &Path) -> Result<()> {
    for child in child_cgroups(path) {
        remove_cgroup_tree(&child)?;
    }
    remove_cgroup(path)
}

/// The child cgroups of `path` (sub-directories; control files are not).
fn child_cgroups(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(path) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes an empty cgroup directory, retrying while the kernel still holds it
/// busy with just-killed processes. One with child cgroups is left in place:
/// they may belong to a box still in use.
fn remove_cgroup(path: &Path) -> Result<()> {
    if !child_cgroups(path).is_empty() {
        return Err(Error::Cgroup(format!(
            "not removing {}: it still holds box cgroups",
            path.display()
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut pause = Duration::from_micros(200);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(Error::io("cannot remove cgroup", path, e)),
        }
    }
}

/// The pids listed in a cgroup's `cgroup.procs`.
fn procs_of(dir: &Path) -> Result<Vec<i32>> {
    let path = dir.join("cgroup.procs");
    let text = read_text(&path)?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// A cgroup as it appears in `/proc/<pid>/cgroup`: hierarchy id and path.
#[derive(Debug, Clone, Copy)]
struct Membership<'a> {
    hierarchy: u32,
    path: &'a str,
}

/// SIGKILLs every process listed in the cgroups `dirs` until they are empty or
/// about a second has passed. Each directory comes with its cgroup as
/// `/proc/<pid>/cgroup` shows it, so that a pid that exits and is reused by a
/// process outside the box meanwhile is never killed by mistake.
fn kill_listed(dirs: &[(&Path, Membership<'_>)]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut pause = Duration::from_micros(100);
    loop {
        let mut left = 0;
        for (dir, member) in dirs {
            for pid in procs_of(dir)? {
                left += 1;
                kill_if_member(pid, *member);
            }
        }
        if left == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = dirs.iter().map(|(d, _)| d.display().to_string()).collect();
            return Err(Error::Cgroup(format!(
                "{left} processes survived SIGKILL for a second in {}",
                names.join(", ")
            )));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// SIGKILLs `pid` if it is (still) in the cgroup `member`.
///
/// The pidfd pins the process that held `pid` when it was opened; the signal goes
/// to that process only if, after opening, `/proc/<pid>/cgroup` shows it in the
/// box. A process that replaced a dead one under the same pid is therefore left
/// alone. Errors mean the process is gone already, and are ignored.
fn kill_if_member(pid: i32, member: Membership<'_>) {
    let pidfd = pidfd_open(pid);
    if matches!(&pidfd, Err(e) if e.raw_os_error() != Some(libc::ENOSYS)) {
        return; // ESRCH: gone.
    }
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return;
    };
    let inside = parse::proc_cgroups(&text)
        .iter()
        .any(|l| l.id == member.hierarchy && l.path == member.path);
    if !inside {
        return;
    }
    match pidfd {
        Ok(fd) => {
            // SAFETY: pidfd_send_signal reads only its integer arguments; a null
            // siginfo means a plain SIGKILL as from kill(2).
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
        // Kernels before 5.3 have no pidfd: the check above narrows the race.
        // SAFETY: kill(2) has no memory arguments.
        Err(_) => unsafe {
            libc::kill(pid, libc::SIGKILL);
        },
    }
}

/// `pidfd_open(pid, 0)`: a descriptor that refers to this very process.
fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Polls `done` until it holds or about a second has passed.
fn wait_until(mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut pause = Duration::from_micros(100);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests;
