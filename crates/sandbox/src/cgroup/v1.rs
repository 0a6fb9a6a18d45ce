//! cgroup v1: a box is one directory in each hierarchy it needs.
//!
//! The hierarchies are those of `memory` (limit, peak, OOM), `pids` (process
//! limit), `cpuacct` (CPU time; `cpu` too where it is co-mounted) and, for pinned
//! boxes only, `cpuset`. A separately mounted `cpu` is left alone: it measures
//! nothing, and every extra hierarchy makes placing a process slower.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::parse::{self, CgroupMount, ProcCgroup};
use super::sweep::Place;
use super::{
    CgroupLimits, CgroupUsage, MemoryMark, is_permission_error, kill_listed, lists_a_process,
    not_a_number,
};
use super::{
    ControllerInfo, Detected, Membership, OpenFile, make_cgroup, open_procs, open_read, pread_text,
    read_text, remove_cgroup, remove_cgroup_tree, write_pid, write_raw, write_value,
};
use crate::error::{Error, Result};

/// The controllers every box needs, in the order processes are placed.
const REQUIRED: [&str; 3] = ["memory", "pids", "cpuacct"];
/// The controller used only when a box is pinned to CPUs.
const CPUSET: &str = "cpuset";

/// One v1 hierarchy that holds boxes.
struct Hierarchy {
    /// The hierarchy id in `/proc/<pid>/cgroup`.
    id: u32,
    /// The controllers mounted together in it, e.g. `["cpu", "cpuacct"]`.
    controllers: Vec<String>,
    /// The parent directory of the boxes: our own cgroup's dir joined with the group name.
    group_dir: PathBuf,
    /// The same directory as a cgroup path, as `/proc/<pid>/cgroup` shows it.
    group_rel: String,
    /// Our own cgroup path in this hierarchy: the group directory's parent.
    base_rel: String,
    /// Whether we created `group_dir` (and so remove it).
    created: bool,
    /// Whether only the cpuset controller is needed from it, so unpinned boxes skip it.
    cpuset_only: bool,
}

impl Hierarchy {
    /// Whether `controller` is mounted in this hierarchy.
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Where v1 boxes live.
pub(super) struct Layout {
    /// The hierarchies boxes use; the required ones come first.
    hierarchies: Vec<Hierarchy>,
    /// Whether swap is accounted (`memory.memsw.*` exists), so the limit covers it.
    swap: bool,
}

impl Layout {
    /// Looks for writable v1 hierarchies with the required controllers below our
    /// own cgroups, creating the parent directory `group` in each.
    pub(super) fn detect(
        own: &[ProcCgroup],
        mounts: &[CgroupMount],
        group: &str,
    ) -> Result<Detected<Layout>> {
        let mut layout = Layout {
            hierarchies: Vec::new(),
            swap: false,
        };
        for controller in REQUIRED {
            let Some((line, own_dir)) = locate(own, mounts, controller) else {
                return Ok(Detected::Absent);
            };
            if !layout.join(line, &own_dir, group, false)? {
                return Ok(Detected::Absent); // Not writable: unprivileged.
            }
        }
        layout.join_cpuset(own, mounts, group)?;
        for h in layout
            .hierarchies
            .iter()
            .filter(|h| h.has(CPUSET) && !h.cpuset_only)
        {
            // A cpuset co-mounted with a required controller: boxes need its CPUs.
            if let Err(err) = init_cpuset(&h.group_dir) {
                return Ok(Detected::Misconfigured(err.to_string()));
            }
        }
        layout.swap = layout
            .dir_of("memory")
            .join("memory.memsw.limit_in_bytes")
            .exists();
        Ok(Detected::Usable(layout))
    }

    /// Adds the hierarchy of `line` (unless already there) and creates the group
    /// directory in it; `false` when we may not write there.
    fn join(
        &mut self,
        line: &ProcCgroup,
        own_dir: &Path,
        group: &str,
        cpuset_only: bool,
    ) -> Result<bool> {
        if let Some(h) = self.hierarchies.iter_mut().find(|h| h.id == line.id) {
            h.cpuset_only &= cpuset_only;
            return Ok(true);
        }
        let group_dir = own_dir.join(group);
        let created = match make_cgroup(&group_dir) {
            Ok(created) => created,
            Err(e) if is_permission_error(&e) => return Ok(false),
            Err(e) => return Err(Error::io("cannot create cgroup directory", group_dir, e)),
        };
        self.hierarchies.push(Hierarchy {
            id: line.id,
            controllers: line.controllers.clone(),
            group_dir,
            group_rel: parse::child_path(&line.path, group),
            base_rel: line.path.clone(),
            created,
            cpuset_only,
        });
        Ok(true)
    }

    /// Adds the cpuset hierarchy when it is mounted, writable, and can be given
    /// CPUs; otherwise boxes simply are not pinned.
    fn join_cpuset(
        &mut self,
        own: &[ProcCgroup],
        mounts: &[CgroupMount],
        group: &str,
    ) -> Result<()> {
        let Some((line, own_dir)) = locate(own, mounts, CPUSET) else {
            return Ok(());
        };
        let before = self.hierarchies.len();
        if !self.join(line, &own_dir, group, true)? || self.hierarchies.len() == before {
            return Ok(()); // Not writable, or co-mounted with a required controller.
        }
        if let Err(err) = init_cpuset(&self.hierarchies[before].group_dir) {
            tracing::warn!("cgroup v1 cpuset not usable, boxes will not be pinned: {err}");
            if let Some(h) = self.hierarchies.pop() {
                remove_group(&h);
            }
        }
        Ok(())
    }

    /// The group directory of the hierarchy that has `controller`.
    fn dir_of(&self, controller: &str) -> &Path {
        self.hierarchies
            .iter()
            .find(|h| h.has(controller))
            .map_or(Path::new(""), |h| h.group_dir.as_path())
    }

    /// The parent directories of the boxes, one per hierarchy.
    pub(super) fn group_dirs(&self) -> Vec<&Path> {
        self.hierarchies
            .iter()
            .map(|h| h.group_dir.as_path())
            .collect()
    }

    /// Where stale groups of dead supervisors may be: beside our group, in
    /// every hierarchy.
    pub(super) fn places(&self) -> Vec<Place<'_>> {
        self.hierarchies
            .iter()
            .filter_map(|h| {
                Some(Place {
                    dir: h.group_dir.parent()?,
                    rel: &h.base_rel,
                    hierarchy: h.id,
                })
            })
            .collect()
    }

    /// Whether boxes can be pinned to CPUs.
    pub(super) fn has_cpuset(&self) -> bool {
        self.hierarchies.iter().any(|h| h.has(CPUSET))
    }

    /// The `runbox doctor` lines: each controller of each hierarchy, plus swap.
    pub(super) fn describe(&self) -> Vec<ControllerInfo> {
        let mut out: Vec<ControllerInfo> = self
            .hierarchies
            .iter()
            .flat_map(|h| {
                h.controllers
                    .iter()
                    .filter(|c| !c.starts_with("name="))
                    .map(|c| ControllerInfo {
                        name: c.clone(),
                        path: h.group_dir.clone(),
                        usable: true,
                    })
            })
            .collect();
        if !self.has_cpuset() {
            out.push(ControllerInfo {
                name: CPUSET.into(),
                path: PathBuf::new(),
                usable: false,
            });
        }
        let memory = self.dir_of("memory").to_path_buf();
        out.push(ControllerInfo {
            name: "memory+swap".into(),
            path: memory,
            usable: self.swap,
        });
        out
    }

    /// Creates box cgroup `name` in every hierarchy; `Ok(None)` when the name is
    /// taken (left over by a previous process with our pid).
    pub(super) fn create_box(&self, name: &str) -> Result<Option<BoxDirs>> {
        let mut made = Vec::new();
        for h in &self.hierarchies {
            let dir = h.group_dir.join(name);
            match make_cgroup(&dir) {
                Ok(true) => made.push(dir),
                Ok(false) => {
                    remove_all(&made);
                    return Ok(None);
                }
                Err(e) => {
                    remove_all(&made);
                    return Err(Error::io("cannot create cgroup directory", dir, e));
                }
            }
        }
        self.open_box(name)
            .map(Some)
            .inspect_err(|_| remove_all(&made))
    }

    /// Opens the box cgroup `name`, creating its directories where missing.
    pub(super) fn open_or_create_box(&self, name: &str) -> Result<BoxDirs> {
        for h in &self.hierarchies {
            let dir = h.group_dir.join(name);
            make_cgroup(&dir).map_err(|e| Error::io("cannot create cgroup directory", dir, e))?;
        }
        self.open_box(name)
    }

    /// Keeps the group directories when dropped: they hold lasting slots.
    pub(super) fn keep_group(&mut self) {
        for h in &mut self.hierarchies {
            h.created = false;
        }
    }

    /// Opens the files of the freshly created box cgroup `name`.
    fn open_box(&self, name: &str) -> Result<BoxDirs> {
        let mut dirs = Vec::with_capacity(self.hierarchies.len());
        for h in &self.hierarchies {
            let path = h.group_dir.join(name);
            if h.has(CPUSET) {
                init_cpuset(&path)?;
            }
            dirs.push(BoxDir {
                procs: open_procs(&path)?,
                rel: parse::child_path(&h.group_rel, name),
                id: h.id,
                cpuset_only: h.cpuset_only,
                path,
            });
        }
        let box_of = |controller| self.dir_of(controller).join(name);
        let cpuacct_path = box_of("cpuacct").join("cpuacct.usage");
        let memory = box_of("memory");
        let oom_control = OpenFile::read(memory.join("memory.oom_control"));
        let oom = if parse::keyed_value(&oom_control.text()?, "oom_kill").is_some() {
            (OomCounter::OomKill, oom_control)
        } else {
            (
                OomCounter::Failcnt,
                OpenFile::read(memory.join("memory.failcnt")),
            )
        };
        let cpuset = self
            .hierarchies
            .iter()
            .find(|h| h.has(CPUSET))
            .map(|h| Cpuset {
                dir: h.group_dir.join(name),
                parent: h.group_dir.clone(),
                only: h.cpuset_only,
            });
        let memsw = |file: &str| {
            self.swap
                .then(|| OpenFile::read_write(memory.join(format!("memory.memsw.{file}"))))
        };
        Ok(BoxDirs {
            dirs,
            pids: box_of("pids"),
            max_usage: OpenFile::read_write(memory.join("memory.max_usage_in_bytes")),
            memsw_max_usage: memsw("max_usage_in_bytes"),
            usage: OpenFile::read(memory.join(if self.swap {
                "memory.memsw.usage_in_bytes"
            } else {
                "memory.usage_in_bytes"
            })),
            memory_stat: OpenFile::read(memory.join("memory.stat")),
            memory,
            cpuset,
            cpuacct_usage: open_read(&cpuacct_path)?,
            cpuacct_path,
            swap: self.swap,
            oom_counter: oom.0,
            oom: oom.1,
            pinned: false,
            cpu_base: 0,
            oom_base: 0,
        })
    }
}

impl Drop for Layout {
    /// Removes the group directories we created (the boxes are gone by now).
    fn drop(&mut self) {
        for h in self.hierarchies.iter().rev() {
            remove_group(h);
        }
    }
}

/// Removes the group directory of `h` if we created it.
fn remove_group(h: &Hierarchy) {
    if h.created
        && let Err(err) = remove_cgroup(&h.group_dir)
    {
        tracing::warn!("{err}");
    }
}

/// Removes the box directories made so far when creating a box fails half-way.
fn remove_all(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        if let Err(err) = remove_cgroup_tree(dir) {
            tracing::warn!("{err}");
        }
    }
}

/// Our own `/proc/self/cgroup` line for `controller` and our cgroup's directory
/// in a mount of that hierarchy which shows it.
fn locate<'a>(
    own: &'a [ProcCgroup],
    mounts: &[CgroupMount],
    controller: &str,
) -> Option<(&'a ProcCgroup, PathBuf)> {
    let line = own
        .iter()
        .find(|l| !l.is_v2() && l.controllers.iter().any(|c| c == controller))?;
    let dir = mounts
        .iter()
        .filter(|m| m.has_controllers(&line.controllers))
        .find_map(|m| parse::resolve(&m.mount_point, &m.root, &line.path))?;
    Some((line, dir))
}

/// Gives a new cpuset cgroup its parent's CPUs and memory nodes: v1 starts it
/// with none, and a cgroup without CPUs cannot hold a process.
fn init_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read_text(&dir.join(file))?.trim().is_empty() {
            let value = read_text(&parent.join(file))?;
            write_value(&dir.join(file), value.trim())?;
        }
    }
    Ok(())
}

/// Which counter says that the OOM killer struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OomCounter {
    /// `oom_kill N` in `memory.oom_control` (Linux 4.13 and later).
    OomKill,
    /// `memory.failcnt`: how often the limit was hit (older kernels; it also counts
    /// hits that reclaim resolved, so it can over-report).
    Failcnt,
}

/// A box's directory in one hierarchy.
struct BoxDir {
    /// The directory.
    path: PathBuf,
    /// The same cgroup as `/proc/<pid>/cgroup` shows it.
    rel: String,
    /// The hierarchy id.
    id: u32,
    /// `cgroup.procs`, kept open: placing a process is on the hot path.
    procs: File,
    /// Whether only pinned boxes' processes go here.
    cpuset_only: bool,
}

/// A box's cpuset directory.
struct Cpuset {
    /// The box's directory.
    dir: PathBuf,
    /// The group directory, whose CPUs an unpinned box gets back.
    parent: PathBuf,
    /// Whether the hierarchy has only cpuset (so unpinned boxes skip it).
    only: bool,
}

/// A v1 box cgroup: one directory per hierarchy, and its baselines.
pub(super) struct BoxDirs {
    /// The box's directory in each hierarchy, in placement order.
    dirs: Vec<BoxDir>,
    /// The box's directory in the memory hierarchy.
    memory: PathBuf,
    /// The box's directory in the pids hierarchy.
    pids: PathBuf,
    /// The box's cpuset directory, if the controller is usable.
    cpuset: Option<Cpuset>,
    /// `cpuacct.usage`, kept open because it is polled while the box runs.
    cpuacct_usage: File,
    /// Its path, for error messages.
    cpuacct_path: PathBuf,
    /// `memory.max_usage_in_bytes`: the peak, reset by writing 0.
    max_usage: OpenFile,
    /// `memory.memsw.max_usage_in_bytes`, where swap is accounted.
    memsw_max_usage: Option<OpenFile>,
    /// The usage the peak is compared with (`memsw` where swap is accounted).
    usage: OpenFile,
    /// `memory.stat`.
    memory_stat: OpenFile,
    /// Whether swap is accounted, so that the `memsw` files exist.
    swap: bool,
    /// Which counter reports OOM kills.
    oom_counter: OomCounter,
    /// Its file (`memory.oom_control` or `memory.failcnt`).
    oom: OpenFile,
    /// Whether this run is pinned to CPUs (so processes join the cpuset too).
    pinned: bool,
    /// `cpuacct.usage` at acquire, in nanoseconds.
    cpu_base: u64,
    /// The OOM counter at acquire.
    oom_base: u64,
}

impl BoxDirs {
    /// Sets the limits of a run (unless `write_limits` is false: they are in
    /// place) and takes the counters' baselines.
    pub(super) fn prepare(&mut self, limits: &CgroupLimits, write_limits: bool) -> Result<()> {
        if write_limits {
            self.set_memory_limit(limits.memory_bytes)?;
            write_value(&self.pids.join("pids.max"), &limits.pids.to_string())?;
            self.pinned = self.set_cpus(limits.cpus.as_deref())?;
        }
        self.refuse_stale_cache()?;
        // Writing 0 sets the peak to the current usage, i.e. starts it afresh.
        self.max_usage.write("0")?;
        if let Some(memsw) = &self.memsw_max_usage {
            memsw.write("0")?;
        }
        self.cpu_base = self.cpu_nanos()?;
        self.oom_base = self.oom_count()?;
        Ok(())
    }

    /// Refuses to measure another run here while more than
    /// [`super::STALE_CACHE_BYTES`] of page cache earlier boxes brought in is
    /// charged to the cgroup (see there); no process of a box is in it now, only
    /// the slot's launcher, whose few pages are not cache.
    fn refuse_stale_cache(&self) -> Result<()> {
        let text = self.memory_stat.text()?;
        let cache = parse::keyed_value(&text, "cache").unwrap_or(0);
        let shmem = parse::keyed_value(&text, "shmem").unwrap_or(0);
        super::refuse_stale_cache(cache.saturating_sub(shmem))
    }

    /// Sets the memory limit, and the memory+swap limit to the same value.
    fn set_memory_limit(&self, bytes: u64) -> Result<()> {
        let limit = self.memory.join("memory.limit_in_bytes");
        let value = bytes.to_string();
        if !self.swap {
            return write_value(&limit, &value);
        }
        // The kernel keeps memsw >= limit at every step: when raising, memsw must
        // go first; when lowering, the plain limit. Try raising order first.
        let memsw = self.memory.join("memory.memsw.limit_in_bytes");
        match write_raw(&memsw, &value) {
            Ok(()) => write_value(&limit, &value),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                write_value(&limit, &value)?;
                write_value(&memsw, &value)
            }
            Err(e) => Err(Error::io("cannot write cgroup file", memsw, e)),
        }
    }

    /// Pins the box to `cpus` when asked and possible; returns whether it is pinned.
    fn set_cpus(&self, cpus: Option<&str>) -> Result<bool> {
        let Some(cpuset) = &self.cpuset else {
            return Ok(false);
        };
        let file = cpuset.dir.join("cpuset.cpus");
        match cpus {
            Some(cpus) => match write_raw(&file, cpus) {
                Ok(()) => Ok(true),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ERANGE)) => {
                    let allowed = read_text(&cpuset.parent.join("cpuset.cpus"))?;
                    Err(Error::InvalidConfig(format!(
                        "cpus '{cpus}' is not within the CPUs runbox may use ({})",
                        allowed.trim()
                    )))
                }
                Err(e) => Err(Error::io("cannot write cgroup file", file, e)),
            },
            // Unpinned processes skip a cpuset-only hierarchy; a co-mounted one
            // gets all of the parent's CPUs back.
            None if cpuset.only => Ok(false),
            None => {
                write_value(&file, read_text(&cpuset.parent.join("cpuset.cpus"))?.trim())?;
                Ok(false)
            }
        }
    }

    /// Writes `pid` to the box's `cgroup.procs` in every hierarchy this run uses.
    pub(super) fn add_process(&self, pid: i32) -> Result<()> {
        for dir in self.dirs.iter().filter(|d| self.pinned || !d.cpuset_only) {
            write_pid(&dir.procs, pid, &dir.path)?;
        }
        Ok(())
    }

    /// Places the calling thread in the box in every hierarchy but a cpuset-only
    /// one, so that processes it clones are born inside: cgroup v1 lets the
    /// threads of one process sit in different cgroups (the `tasks` file). It
    /// writes `0`, "this thread", rather than its id: the kernel moves a thread
    /// that names itself without the global threadgroup lock, whose first taker
    /// after an idle spell waits for an RCU grace period.
    pub(super) fn place_current_thread(&self) -> Result<()> {
        for dir in self.dirs.iter().filter(|d| !d.cpuset_only) {
            let tasks = dir.path.join("tasks");
            std::fs::write(&tasks, "0")
                .map_err(|e| Error::io("cannot move thread into cgroup", tasks, e))?;
        }
        Ok(())
    }

    /// The `tasks` files [`place_current_thread`](Self::place_current_thread)
    /// writes to, opened for a launcher process to write `0` to itself.
    pub(super) fn placement_files(&self) -> Result<Vec<std::fs::File>> {
        self.dirs
            .iter()
            .filter(|d| !d.cpuset_only)
            .map(|dir| {
                let tasks = dir.path.join("tasks");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&tasks)
                    .map_err(|e| Error::io("cannot open for the box launcher", tasks, e))
            })
            .collect()
    }

    /// For a pinned run, moves `pid` into a cpuset-only hierarchy's box, the one
    /// a launcher thread does not sit in.
    pub(super) fn add_process_to_cpuset(&self, pid: i32) -> Result<()> {
        for dir in self.dirs.iter().filter(|d| self.pinned && d.cpuset_only) {
            write_pid(&dir.procs, pid, &dir.path)?;
        }
        Ok(())
    }

    /// CPU time used since acquire.
    pub(super) fn cpu_time(&self) -> Result<Duration> {
        Ok(Duration::from_nanos(
            self.cpu_nanos()?.saturating_sub(self.cpu_base),
        ))
    }

    /// `cpuacct.usage`: the box's total CPU time in nanoseconds.
    fn cpu_nanos(&self) -> Result<u64> {
        let text = pread_text(&self.cpuacct_usage, &self.cpuacct_path)?;
        parse::single_value(&text).ok_or_else(|| not_a_number(&self.cpuacct_path, &text))
    }

    /// The current value of the OOM counter.
    fn oom_count(&self) -> Result<u64> {
        match self.oom_counter {
            OomCounter::OomKill => self.oom.keyed("oom_kill"),
            OomCounter::Failcnt => self.oom.number(),
        }
    }

    /// The peak file of what is limited: memory plus swap where swap is
    /// accounted.
    fn peak(&self) -> &OpenFile {
        self.memsw_max_usage.as_ref().unwrap_or(&self.max_usage)
    }

    /// Restarts the peak at the current usage and returns that usage: what the
    /// box holds before the program starts (page cache and tmpfs pages that
    /// earlier boxes of this slot left charged here, the box's own set-up).
    pub(super) fn memory_baseline(&self) -> Result<MemoryMark> {
        // Writing 0 sets the peak to the current usage.
        self.peak().write("0")?;
        Ok(MemoryMark {
            usage_bytes: self.usage.number()?,
            shmem_bytes: self.shmem()?,
        })
    }

    /// `shmem` of the box's own `memory.stat`: tmpfs and shared memory pages.
    fn shmem(&self) -> Result<u64> {
        self.memory_stat.keyed("shmem")
    }

    /// Measurements of the run: CPU time, peak memory (+swap), OOM kill.
    pub(super) fn usage(&self) -> Result<CgroupUsage> {
        Ok(CgroupUsage {
            cpu_time: self.cpu_time()?,
            memory_peak_bytes: self.peak().number()?,
            shmem_bytes: self.shmem()?,
            oom_killed: self.oom_count()? > self.oom_base,
        })
    }

    /// SIGKILLs the processes of every hierarchy until none is left.
    pub(super) fn kill_all(&self) -> Result<()> {
        let dirs: Vec<(&Path, Membership<'_>)> = self
            .dirs
            .iter()
            .map(|d| {
                (
                    d.path.as_path(),
                    Membership {
                        hierarchy: d.id,
                        path: &d.rel,
                    },
                )
            })
            .collect();
        kill_listed(&dirs)
    }

    /// Whether no hierarchy lists a process of the box.
    pub(super) fn is_empty(&self) -> Result<bool> {
        for dir in &self.dirs {
            if lists_a_process(&dir.procs, &dir.path)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The box's directories.
    pub(super) fn dirs(&self) -> Vec<&Path> {
        self.dirs.iter().map(|d| d.path.as_path()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse::{cgroup_mounts, proc_cgroups};

    const MOUNTS: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_layout_resolves_each_controller_below_its_own_cgroup() {
        let own =
            proc_cgroups("8:pids:/\n4:memory:/process_api/c8cf\n2:cpuacct:/\n1:cpu:/\n0::/\n");
        let mounts = cgroup_mounts(MOUNTS);
        let (line, dir) = locate(&own, &mounts, "memory").unwrap();
        assert_eq!(line.id, 4);
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/process_api/c8cf"));
        assert_eq!(
            locate(&own, &mounts, "pids").unwrap().1,
            Path::new("/sys/fs/cgroup/pids")
        );
        assert!(locate(&own, &mounts, "cpuset").is_none());
    }

    #[test]
    fn v1_layout_finds_cpuacct_in_a_co_mounted_cpu_cpuacct_hierarchy() {
        let own = proc_cgroups("3:cpu,cpuacct:/system.slice/runbox.service\n");
        let mounts = cgroup_mounts(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        let (line, dir) = locate(&own, &mounts, "cpuacct").unwrap();
        assert_eq!(line.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            dir,
            Path::new("/sys/fs/cgroup/cpu,cpuacct/system.slice/runbox.service")
        );
    }

    #[test]
    fn v1_layout_uses_the_mount_root_of_a_bind_mounted_hierarchy() {
        let own = proc_cgroups("4:memory:/docker/abc\n");
        let mounts = cgroup_mounts(
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
        );
        assert_eq!(
            locate(&own, &mounts, "memory").unwrap().1,
            Path::new("/sys/fs/cgroup/memory")
        );
    }

    #[test]
    fn v1_layout_ignores_a_mount_that_does_not_show_our_cgroup() {
        let own = proc_cgroups("4:memory:/elsewhere\n");
        let mounts = cgroup_mounts(
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        assert!(locate(&own, &mounts, "memory").is_none());
    }
}
