//! cgroup v2: a box is one directory of the unified hierarchy.
//!
//! Layout: our own cgroup enables memory and pids (and cpu, cpuset when
//! available) in its `cgroup.subtree_control`, so that the group directory below
//! it has them; the group directory enables them in turn for the boxes, its
//! children. v2's "no internal processes" rule refuses the first step while our
//! own cgroup holds processes (us): when runbox is alone there, it moves itself
//! into the leaf `<own>/runbox-supervisor` first, and otherwise reports the rule
//! and the fix (see `delegate.rs`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::delegate::{self, EnableError, Kernel, OPTIONAL, REQUIRED, missing};
use super::parse::{self, CgroupFs, CgroupMount, ProcCgroup};
use super::sweep::Place;
use super::{
    CgroupLimits, CgroupUsage, ControllerInfo, Detected, Membership, MemoryMark, OpenFile,
    is_permission_error, kill_listed, make_cgroup, not_a_number, open_procs, open_read, pread_text,
    read_text, remove_cgroup, remove_cgroup_tree, wait_until, write_pid, write_raw, write_value,
};
use crate::error::{Error, Result};

/// Where v2 boxes live.
pub(super) struct Layout {
    /// The parent directory of the boxes.
    group_dir: PathBuf,
    /// The same as a cgroup path, as `/proc/<pid>/cgroup` shows it.
    group_rel: String,
    /// The cgroup path of the group's parent (our own cgroup, or the parent of
    /// our `runbox-supervisor` leaf).
    base_rel: String,
    /// Whether we created `group_dir` (and so remove it).
    created: bool,
    /// The controllers boxes get (enabled in the group's `cgroup.subtree_control`).
    enabled: Vec<String>,
}

impl Layout {
    /// Looks at the unified hierarchy: our own cgroup must have the memory and
    /// pids controllers and be able to pass them down to the group directory.
    ///
    /// Where the "no internal processes" rule stands in the way and runbox is
    /// alone in its cgroup, this moves runbox itself into `<own>/runbox-supervisor`
    /// (and it stays there after the layout is dropped); see `delegate.rs`.
    pub(super) fn detect(
        own: &[ProcCgroup],
        mounts: &[CgroupMount],
        group: &str,
    ) -> Result<Detected<Layout>> {
        let Some(line) = own.iter().find(|l| l.is_v2()) else {
            return Ok(Detected::Absent);
        };
        let resolved = mounts
            .iter()
            .filter(|m| m.fs == CgroupFs::V2)
            .find_map(|m| {
                Some((
                    &m.mount_point,
                    parse::resolve(&m.mount_point, &m.root, &line.path)?,
                ))
            });
        let Some((mount_point, own_dir)) = resolved else {
            return Ok(Detected::Absent);
        };
        let (base_dir, base_rel) = delegate::base_of(&own_dir, &line.path, mount_point);
        let available = parse::controller_list(&read_text(&base_dir.join("cgroup.controllers"))?);
        let missing = missing(&available, &REQUIRED);
        if !missing.is_empty() {
            // A hybrid host binds memory to a v1 hierarchy: the unified one is then
            // only systemd's process tracking, not a misconfiguration.
            let memory_on_v1 = mounts.iter().any(|m| m.has_controllers(&["memory".into()]));
            return Ok(if memory_on_v1 {
                Detected::Absent
            } else {
                Detected::Misconfigured(not_delegated(&base_dir, &available, &missing))
            });
        }
        // Creating the group first tells "unprivileged" (absent) from "misconfigured".
        let group_dir = base_dir.join(group);
        let created = match make_cgroup(&group_dir) {
            Ok(created) => created,
            Err(e) if is_permission_error(&e) => return Ok(Detected::Absent),
            Err(e) => return Err(Error::io("cannot create cgroup directory", group_dir, e)),
        };
        let mut layout = Layout {
            group_dir,
            group_rel: parse::child_path(&base_rel, group),
            base_rel,
            created,
            enabled: Vec::new(),
        };
        let own_pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        // On failure `layout` drops here and removes the group directory.
        if let Err(why) = delegate::enable_own(&Kernel, &base_dir, own_pid, &available) {
            return Ok(Detected::Misconfigured(why));
        }
        let group_available =
            parse::controller_list(&read_text(&layout.group_dir.join("cgroup.controllers"))?);
        match delegate::enable(&Kernel, &layout.group_dir, &group_available) {
            Ok(enabled) => layout.enabled = enabled,
            Err(EnableError::Failed(why)) => return Ok(Detected::Misconfigured(why)),
            // The group is ours and holds no process: only a race could do this.
            Err(EnableError::Busy) => {
                return Ok(Detected::Misconfigured(format!(
                    "cannot enable '{}' in {}: the kernel reports it busy",
                    REQUIRED.join(" "),
                    layout.group_dir.join("cgroup.subtree_control").display()
                )));
            }
        }
        Ok(Detected::Usable(layout))
    }

    /// Where stale groups of dead supervisors may be: beside our group.
    pub(super) fn places(&self) -> Vec<Place<'_>> {
        self.group_dir
            .parent()
            .map(|dir| Place {
                dir,
                rel: &self.base_rel,
                hierarchy: 0,
            })
            .into_iter()
            .collect()
    }

    /// The parent directory of the boxes.
    pub(super) fn group_dir(&self) -> &Path {
        &self.group_dir
    }

    /// Whether boxes can be pinned to CPUs.
    pub(super) fn has_cpuset(&self) -> bool {
        self.has("cpuset")
    }

    /// Whether boxes get `controller`.
    fn has(&self, controller: &str) -> bool {
        self.enabled.iter().any(|c| c == controller)
    }

    /// The `runbox doctor` lines: each controller boxes may get, plus swap.
    pub(super) fn describe(&self) -> Vec<ControllerInfo> {
        let info = |name: &str, usable| ControllerInfo {
            name: name.into(),
            path: self.group_dir.clone(),
            usable,
        };
        let mut out: Vec<ControllerInfo> = REQUIRED
            .iter()
            .chain(&OPTIONAL)
            .map(|c| info(c, self.has(c)))
            .collect();
        out.push(info(
            "memory+swap",
            self.group_dir.join("memory.swap.max").exists(),
        ));
        out
    }

    /// Opens the box cgroup `name`, creating it when missing.
    pub(super) fn open_or_create_box(&self, name: &str) -> Result<BoxDir> {
        let path = self.group_dir.join(name);
        make_cgroup(&path).map_err(|e| Error::io("cannot create cgroup directory", &path, e))?;
        let rel = parse::child_path(&self.group_rel, name);
        BoxDir::open(path, rel, self.has_cpuset())
    }

    /// Keeps the group directory when dropped: it holds lasting slots.
    pub(super) fn keep_group(&mut self) {
        self.created = false;
    }

    /// Creates box cgroup `name`; `Ok(None)` when the name is taken.
    pub(super) fn create_box(&self, name: &str) -> Result<Option<BoxDir>> {
        let path = self.group_dir.join(name);
        match make_cgroup(&path) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(Error::io("cannot create cgroup directory", path, e)),
        }
        let rel = parse::child_path(&self.group_rel, name);
        BoxDir::open(path.clone(), rel, self.has_cpuset())
            .map(Some)
            .inspect_err(|_| {
                if let Err(err) = remove_cgroup_tree(&path) {
                    tracing::warn!("{err}");
                }
            })
    }
}

impl Drop for Layout {
    /// Removes the group directory if we created it. The controllers we enabled
    /// in our own cgroup stay enabled, and runbox stays in its `runbox-supervisor`
    /// leaf if it moved there: other managers' boxes may rely on both by now.
    fn drop(&mut self) {
        if self.created
            && let Err(err) = remove_cgroup(&self.group_dir)
        {
            tracing::warn!("{err}");
        }
    }
}

/// The message for controllers our own cgroup does not receive from its parent.
fn not_delegated(own_dir: &Path, available: &[String], missing: &[&str]) -> String {
    let parent = own_dir.parent().unwrap_or(own_dir);
    format!(
        "cgroup v2 controllers '{}' are not delegated to runbox's cgroup: {} lists '{}'. \
         Enable them for it as root (`echo '+memory +pids' > {}/cgroup.subtree_control`) \
         or start runbox with `systemd-run -p Delegate=yes ...`; `runbox doctor` shows the details",
        missing.join(" "),
        own_dir.join("cgroup.controllers").display(),
        available.join(" "),
        parent.display(),
    )
}

/// A v2 box cgroup: its directory, open files and baselines.
pub(super) struct BoxDir {
    /// The directory.
    path: PathBuf,
    /// The same cgroup as `/proc/<pid>/cgroup` shows it.
    rel: String,
    /// The directory itself, for `CLONE_INTO_CGROUP`.
    dir: File,
    /// `cgroup.procs`, kept open: placing a process is on the hot path.
    procs: File,
    /// `cpu.stat`, kept open because it is polled while the box runs.
    cpu_stat: File,
    /// `memory.current`, `memory.stat` and `memory.events`, read on every run
    /// (opened at first use: a hierarchy without the memory controller, as in
    /// this module's tests on a hybrid host, has none).
    memory_current: OpenFile,
    memory_stat: OpenFile,
    memory_events: OpenFile,
    /// `cgroup.events`, read whenever the box is checked for processes.
    events: OpenFile,
    /// `memory.peak` (Linux 5.19+), opened read-write where writing resets the
    /// peak for this descriptor (Linux 6.12+).
    peak: Option<File>,
    /// Whether `peak` can be reset, which makes the cgroup reusable.
    peak_resettable: bool,
    /// Whether `memory.swap.max` exists (swap accounting is compiled in).
    swap: bool,
    /// Whether `cgroup.kill` exists (Linux 5.14+).
    kill: bool,
    /// Whether the cpuset controller is enabled for this box.
    cpuset: bool,
    /// `usage_usec` of `cpu.stat` at acquire.
    cpu_base: u64,
    /// `oom_kill` of `memory.events` at acquire.
    oom_base: u64,
}

impl BoxDir {
    /// Opens the files of the freshly created box cgroup at `path`.
    fn open(path: PathBuf, rel: String, cpuset: bool) -> Result<Self> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&path)
            .map_err(|e| Error::io("cannot open cgroup directory", &path, e))?;
        let (peak, peak_resettable) = open_peak(&path.join("memory.peak"));
        Ok(Self {
            procs: open_procs(&path)?,
            cpu_stat: open_read(&path.join("cpu.stat"))?,
            memory_current: OpenFile::read(path.join("memory.current")),
            memory_stat: OpenFile::read(path.join("memory.stat")),
            memory_events: OpenFile::read(path.join("memory.events")),
            events: OpenFile::read(path.join("cgroup.events")),
            peak,
            peak_resettable,
            swap: path.join("memory.swap.max").exists(),
            kill: path.join("cgroup.kill").exists(),
            cpuset,
            cpu_base: 0,
            oom_base: 0,
            dir,
            rel,
            path,
        })
    }

    /// Sets the limits of a run (unless `write_limits` is false: they are in
    /// place) and takes the counters' baselines.
    pub(super) fn prepare(&mut self, limits: &CgroupLimits, write_limits: bool) -> Result<()> {
        if write_limits {
            write_value(
                &self.path.join("memory.max"),
                &limits.memory_bytes.to_string(),
            )?;
            if self.swap {
                // No swap at all, so that memory.max bounds memory plus swap.
                write_value(&self.path.join("memory.swap.max"), "0")?;
            }
            write_value(&self.path.join("pids.max"), &limits.pids.to_string())?;
            if self.cpuset {
                self.set_cpus(limits.cpus.as_deref())?;
            }
        }
        if let (Some(peak), true) = (&self.peak, self.peak_resettable) {
            self.refuse_stale_cache()?;
            let path = self.path.join("memory.peak");
            (&*peak)
                .write_all(b"reset")
                .map_err(|e| Error::io("cannot reset", path, e))?;
        }
        self.cpu_base = self.cpu_usec()?;
        self.oom_base = self.oom_kills()?;
        Ok(())
    }

    /// Refuses to measure another run in this reused cgroup while more than
    /// [`super::STALE_CACHE_BYTES`] of page cache earlier boxes brought in is
    /// charged to it (see there); no process of a box is in it now.
    fn refuse_stale_cache(&self) -> Result<()> {
        let text = self.memory_stat.text()?;
        let file = parse::keyed_value(&text, "file").unwrap_or(0);
        let shmem = parse::keyed_value(&text, "shmem").unwrap_or(0);
        super::refuse_stale_cache(file.saturating_sub(shmem))
    }

    /// Pins the box to `cpus`, or unpins it (an empty `cpuset.cpus` means the
    /// parent's CPUs).
    fn set_cpus(&self, cpus: Option<&str>) -> Result<()> {
        let file = self.path.join("cpuset.cpus");
        match write_raw(&file, cpus.unwrap_or("")) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ERANGE)) => {
                let parent = self.path.parent().unwrap_or(&self.path);
                let allowed = read_text(&parent.join("cpuset.cpus.effective"))?;
                Err(Error::InvalidConfig(format!(
                    "cpus '{}' is not within the CPUs runbox may use ({})",
                    cpus.unwrap_or(""),
                    allowed.trim()
                )))
            }
            Err(e) => Err(Error::io("cannot write cgroup file", file, e)),
        }
    }

    /// Whether this cgroup can measure another run's peak correctly.
    pub(super) fn reusable(&self) -> bool {
        self.peak_resettable
    }

    /// Writes `pid` to the box's `cgroup.procs`.
    pub(super) fn add_process(&self, pid: i32) -> Result<()> {
        write_pid(&self.procs, pid, &self.path)
    }

    /// The directory descriptor for `CLONE_INTO_CGROUP`.
    pub(super) fn dir_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// The box's directory.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// CPU time used since acquire.
    pub(super) fn cpu_time(&self) -> Result<Duration> {
        Ok(Duration::from_micros(
            self.cpu_usec()?.saturating_sub(self.cpu_base),
        ))
    }

    /// `usage_usec` of `cpu.stat`: the box's total CPU time in microseconds.
    fn cpu_usec(&self) -> Result<u64> {
        let path = self.path.join("cpu.stat");
        let text = pread_text(&self.cpu_stat, &path)?;
        parse::keyed_value(&text, "usage_usec").ok_or_else(|| not_a_number(&path, &text))
    }

    /// `oom_kill` of `memory.events`.
    fn oom_kills(&self) -> Result<u64> {
        self.memory_events.keyed("oom_kill")
    }

    /// Restarts the peak (where the kernel can) and returns the current usage:
    /// what the box holds before the program starts. Where the peak cannot be
    /// reset the cgroup is fresh for this box, so its peak covers only the
    /// box's own set-up besides the program.
    pub(super) fn memory_baseline(&self) -> Result<MemoryMark> {
        if let (Some(peak), true) = (&self.peak, self.peak_resettable) {
            let path = self.path.join("memory.peak");
            (&*peak)
                .write_all(b"reset")
                .map_err(|e| Error::io("cannot reset", path, e))?;
        }
        Ok(MemoryMark {
            usage_bytes: self.memory_current.number()?,
            shmem_bytes: self.shmem()?,
        })
    }

    /// `shmem` of `memory.stat`: tmpfs and shared memory pages.
    fn shmem(&self) -> Result<u64> {
        self.memory_stat.keyed("shmem")
    }

    /// Measurements of the run: CPU time, peak memory, OOM kill.
    pub(super) fn usage(&self) -> Result<CgroupUsage> {
        let memory_peak_bytes = match &self.peak {
            Some(peak) => {
                let path = self.path.join("memory.peak");
                let text = pread_text(peak, &path)?;
                parse::single_value(&text).ok_or_else(|| not_a_number(&path, &text))?
            }
            None => 0, // Linux before 5.19 has no peak of a cgroup.
        };
        Ok(CgroupUsage {
            cpu_time: self.cpu_time()?,
            memory_peak_bytes,
            shmem_bytes: self.shmem()?,
            oom_killed: self.oom_kills()? > self.oom_base,
        })
    }

    /// Kills every process: `cgroup.kill` where the kernel has it, else SIGKILL
    /// to each listed pid; then waits until the cgroup is empty.
    pub(super) fn kill_all(&self) -> Result<()> {
        if !self.kill {
            let member = Membership {
                hierarchy: 0,
                path: &self.rel,
            };
            return kill_listed(&[(self.path.as_path(), member)]);
        }
        write_value(&self.path.join("cgroup.kill"), "1")?;
        if wait_until(|| self.is_empty())? {
            Ok(())
        } else {
            Err(Error::Cgroup(format!(
                "processes survived cgroup.kill for a second in {}",
                self.path.display()
            )))
        }
    }

    /// Whether no process is left (`populated 0` in `cgroup.events`).
    pub(super) fn is_empty(&self) -> Result<bool> {
        Ok(self.events.keyed("populated")? == 0)
    }
}

/// Opens `memory.peak`, read-write when the kernel lets a write reset it.
fn open_peak(path: &Path) -> (Option<File>, bool) {
    if let Ok(file) = OpenOptions::new().read(true).write(true).open(path) {
        // Probe once: kernels before 6.12 refuse the open or the write.
        if (&file).write_all(b"reset").is_ok() {
            return (Some(file), true);
        }
    }
    (File::open(path).ok(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse::{cgroup_mounts, proc_cgroups};

    /// Our v2 cgroup's directory as `detect` resolves it.
    fn own_dir(proc_cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
        let own = proc_cgroups(proc_cgroup);
        let line = own.iter().find(|l| l.is_v2())?;
        cgroup_mounts(mountinfo)
            .iter()
            .filter(|m| m.fs == CgroupFs::V2)
            .find_map(|m| parse::resolve(&m.mount_point, &m.root, &line.path))
    }

    #[test]
    fn v2_layout_resolves_boxes_below_own_cgroup() {
        let dir = own_dir(
            "0::/system.slice/runbox.service\n",
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        );
        let dir = dir.unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/system.slice/runbox.service"));
        assert_eq!(
            dir.join("runbox-7").join("box-0"),
            Path::new("/sys/fs/cgroup/system.slice/runbox.service/runbox-7/box-0")
        );
        assert_eq!(
            parse::child_path("/system.slice/runbox.service", "runbox-7"),
            "/system.slice/runbox.service/runbox-7"
        );
    }

    #[test]
    fn v2_layout_in_a_container_resolves_against_the_mount_root() {
        // A cgroup namespace makes our own cgroup `/`, mounted with root `/`.
        let dir = own_dir(
            "0::/\n",
            "600 500 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(dir.unwrap(), Path::new("/sys/fs/cgroup"));
        // A bind mount of a sub-tree without a namespace.
        let dir = own_dir(
            "0::/kubepods/pod1/ctr\n",
            "600 500 0:30 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(dir.unwrap(), Path::new("/sys/fs/cgroup/ctr"));
    }

    #[test]
    fn v2_layout_ignores_v1_mounts_for_the_unified_line() {
        let dir = own_dir(
            "0::/a\n",
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        assert!(dir.is_none());
    }

    /// This process's own directory in the unified hierarchy, as `detect` finds it.
    fn own_unified_dir() -> Option<(PathBuf, String)> {
        let own = proc_cgroups(&std::fs::read_to_string("/proc/self/cgroup").ok()?);
        let line = own.iter().find(|l| l.is_v2())?;
        let mounts = cgroup_mounts(&std::fs::read_to_string("/proc/self/mountinfo").ok()?);
        let dir = mounts
            .iter()
            .filter(|m| m.fs == CgroupFs::V2)
            .find_map(|m| parse::resolve(&m.mount_point, &m.root, &line.path))?;
        Some((dir, line.path.clone()))
    }

    /// Exercises a v2 box's process files on whatever unified hierarchy this host
    /// has, even one without controllers (a hybrid host): placement, `cpu.stat`,
    /// `cgroup.events`, `cgroup.kill` and the `CLONE_INTO_CGROUP` descriptor.
    #[test]
    fn a_v2_box_counts_cpu_time_and_empties_with_cgroup_kill() {
        use crate::cgroup::tests::{is_root, spawn_placed};
        use std::os::unix::process::ExitStatusExt;
        let Some((own, own_rel)) = own_unified_dir() else {
            return;
        };
        if !is_root() {
            return;
        }
        let name = format!("runbox-test-{}-v2box", std::process::id());
        let path = own.join(&name);
        assert!(make_cgroup(&path).unwrap());
        let mut b = BoxDir::open(path.clone(), parse::child_path(&own_rel, &name), false).unwrap();
        b.cpu_base = b.cpu_usec().unwrap();
        let dir = std::fs::File::from(b.dir_fd().try_clone_to_owned().unwrap());
        assert!(dir.metadata().unwrap().is_dir());

        let script = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";
        let mut child = spawn_placed(script, |pid| b.add_process(pid).unwrap());
        assert!(child.wait().unwrap().success());
        let cpu = b.cpu_time().unwrap();
        assert!(cpu >= Duration::from_millis(50), "cpu time {cpu:?}");

        let mut child = spawn_placed("sleep 100 & sleep 100", |pid| b.add_process(pid).unwrap());
        assert!(!b.is_empty().unwrap());
        b.kill_all().unwrap();
        assert!(b.is_empty().unwrap());
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));

        drop((b, dir));
        remove_cgroup(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn missing_controllers_are_listed_in_order() {
        let have = parse::controller_list("cpu io pids");
        assert_eq!(missing(&have, &REQUIRED), vec!["memory"]);
        assert!(missing(&parse::controller_list("memory pids"), &REQUIRED).is_empty());
    }

    #[test]
    fn undelegated_message_names_the_parent_file_and_systemd_fix() {
        let msg = not_delegated(
            Path::new("/sys/fs/cgroup/user.slice/x.scope"),
            &["cpu".into()],
            &["memory", "pids"],
        );
        assert!(
            msg.contains("/sys/fs/cgroup/user.slice/x.scope/cgroup.controllers"),
            "{msg}"
        );
        assert!(
            msg.contains("/sys/fs/cgroup/user.slice/cgroup.subtree_control"),
            "{msg}"
        );
        assert!(msg.contains("Delegate=yes"), "{msg}");
    }
}
