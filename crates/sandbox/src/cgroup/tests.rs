//! Tests on the real host: they create cgroups below the test process's own
//! cgroup, place real child processes in them and read the kernel's counters.
//! They need root (or a delegated hierarchy); without it they say so and pass.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

const MIB: u64 = 1024 * 1024;

/// Limits roomy enough for a shell pipeline.
fn limits(memory_bytes: u64) -> CgroupLimits {
    CgroupLimits {
        memory_bytes,
        pids: 64,
        cpus: None,
    }
}

/// A manager with a parent group unique to this test and process, or `None`
/// (after saying why) where this host gives us no cgroups.
fn manager(test: &str) -> Option<CgroupManager> {
    if !is_root() {
        return None;
    }
    super::settle_for_tests();
    let name = format!("runbox-test-{}-{test}", std::process::id());
    let manager = CgroupManager::detect(&name).expect("detect");
    if manager.is_none() {
        eprintln!("skipped: no usable cgroup hierarchy on this host");
    }
    manager
}

/// Whether we run as root (the owner of `/proc/self`); says so when not.
pub(super) fn is_root() -> bool {
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        eprintln!("skipped: cgroup tests need root");
    }
    root
}

/// Whether this host has the v1 memory hierarchy these tests were written on.
fn host_is_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.use_hierarchy").exists()
}

/// Starts `sh -c script` in `cg`: the shell waits for a line on stdin until it
/// has been placed, so all of `script` runs inside the box.
fn spawn_in(cg: &BoxCgroup, script: &str) -> Child {
    spawn_placed(script, |pid| cg.add_process(pid).expect("add_process"))
}

/// Starts `sh -c script`, lets `place` put it in a cgroup, then lets it run.
pub(super) fn spawn_placed(script: &str, place: impl FnOnce(i32)) -> Child {
    super::settle_for_tests();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    place(child.id() as i32);
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child
}

/// The box parent directories of every controller the manager uses.
fn group_dirs(manager: &CgroupManager) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = manager
        .describe()
        .into_iter()
        .filter(|c| c.usable)
        .map(|c| c.path)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// This process's own cgroup directory in the v1 memory hierarchy.
fn own_memory_dir() -> PathBuf {
    let own = parse::proc_cgroups(&fs::read_to_string("/proc/self/cgroup").unwrap());
    let line = own
        .iter()
        .find(|l| l.controllers.iter().any(|c| c == "memory"))
        .unwrap();
    Path::new("/sys/fs/cgroup/memory").join(line.path.trim_start_matches('/'))
}

/// Reads a cgroup file of box `cg` in the hierarchy whose directory contains `part`.
fn read_box_file(cg: &BoxCgroup, part: &str, file: &str) -> String {
    let dir = cg
        .dirs()
        .into_iter()
        .find(|d| d.to_string_lossy().contains(part))
        .unwrap();
    fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn cgroup_manager_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<CgroupManager>();
    fn sent<T: Send>() {}
    sent::<BoxCgroup>();
}

#[test]
fn group_names_that_are_not_one_directory_are_refused() {
    for name in ["", ".", "..", "a/b"] {
        assert!(
            matches!(CgroupManager::detect(name), Err(Error::InvalidConfig(_))),
            "{name:?}"
        );
    }
}

#[test]
fn zero_limits_and_malformed_cpu_lists_are_refused() {
    assert!(check_limits(&limits(0)).is_err());
    assert!(
        check_limits(&CgroupLimits {
            pids: 0,
            ..limits(MIB)
        })
        .is_err()
    );
    assert!(
        check_limits(&CgroupLimits {
            cpus: Some("1;2".into()),
            ..limits(MIB)
        })
        .is_err()
    );
    assert!(
        check_limits(&CgroupLimits {
            cpus: Some("0-3,6".into()),
            ..limits(MIB)
        })
        .is_ok()
    );
}

#[test]
fn detect_finds_v1_below_own_memory_cgroup_on_this_host() {
    let Some(manager) = manager("detect") else {
        return;
    };
    if !host_is_v1() {
        return;
    }
    assert_eq!(manager.version(), CgroupVersion::V1);
    let info = manager.describe();
    let memory = info.iter().find(|c| c.name == "memory").unwrap();
    assert!(memory.usable);
    assert_eq!(memory.path.parent().unwrap(), own_memory_dir());
    for name in ["pids", "cpuacct"] {
        assert!(
            info.iter().any(|c| c.name == name && c.usable),
            "{name} missing: {info:?}"
        );
    }
    assert!(info.iter().any(|c| c.name == "memory+swap"));
}

#[test]
fn acquire_creates_box_dirs_below_own_cgroup_with_the_limits_written() {
    let Some(manager) = manager("acquire") else {
        return;
    };
    let cg = manager
        .acquire(&CgroupLimits {
            memory_bytes: 20 * MIB,
            pids: 7,
            cpus: None,
        })
        .unwrap();
    let groups = group_dirs(&manager);
    for dir in cg.dirs() {
        assert!(dir.is_dir(), "{}", dir.display());
        assert!(
            groups.iter().any(|g| dir.parent() == Some(g)),
            "{} not below a group",
            dir.display()
        );
    }
    assert!(cg.is_empty().unwrap());
    match manager.version() {
        CgroupVersion::V1 => {
            assert_eq!(
                read_box_file(&cg, "memory", "memory.limit_in_bytes"),
                "20971520"
            );
            if manager
                .describe()
                .iter()
                .any(|c| c.name == "memory+swap" && c.usable)
            {
                assert_eq!(
                    read_box_file(&cg, "memory", "memory.memsw.limit_in_bytes"),
                    "20971520"
                );
            }
            assert_eq!(read_box_file(&cg, "pids", "pids.max"), "7");
            assert!(cg.clone_into_fd().is_none());
        }
        CgroupVersion::V2 => {
            assert_eq!(read_box_file(&cg, "box-", "memory.max"), "20971520");
            assert_eq!(read_box_file(&cg, "box-", "pids.max"), "7");
            assert!(cg.clone_into_fd().is_some());
        }
    }
    manager.release(cg);
}

#[test]
fn a_reused_box_takes_a_lower_then_a_higher_memory_limit() {
    let Some(manager) = manager("relimit") else {
        return;
    };
    let first = manager.acquire(&limits(64 * MIB)).unwrap();
    let dirs: Vec<PathBuf> = first.dirs().iter().map(|d| d.to_path_buf()).collect();
    manager.release(first);
    // The same limits twice are written once; a change after them is written.
    for memory in [16 * MIB, 128 * MIB, 128 * MIB, 16 * MIB] {
        let cg = manager.acquire(&limits(memory)).unwrap();
        if cg.reusable() {
            assert_eq!(
                cg.dirs(),
                dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>()
            );
        }
        if manager.version() == CgroupVersion::V1 {
            assert_eq!(
                read_box_file(&cg, "memory", "memory.limit_in_bytes"),
                memory.to_string()
            );
        }
        manager.release(cg);
    }
}

#[test]
fn a_busy_child_process_grows_the_box_cpu_time() {
    let Some(manager) = manager("cpu") else {
        return;
    };
    let cg = manager.acquire(&limits(256 * MIB)).unwrap();
    assert!(cg.cpu_time().unwrap() < Duration::from_millis(20));
    let mut child = spawn_in(&cg, "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done");
    assert!(child.wait().unwrap().success());
    let cpu = cg.cpu_time().unwrap();
    assert!(cpu >= Duration::from_millis(50), "cpu time {cpu:?}");
    assert_eq!(cg.usage().unwrap().cpu_time, cpu);
    manager.release(cg);
}

#[test]
fn an_allocating_child_raises_the_memory_peak() {
    let Some(manager) = manager("peak") else {
        return;
    };
    let cg = manager.acquire(&limits(256 * MIB)).unwrap();
    // `tail` keeps everything since the last newline: 50 MiB of zeros, in memory.
    let mut child = spawn_in(&cg, "head -c 50M /dev/zero | tail");
    assert!(child.wait().unwrap().success());
    let usage = cg.usage().unwrap();
    assert!(
        usage.memory_peak_bytes >= 50 * MIB,
        "peak {}",
        usage.memory_peak_bytes
    );
    assert!(!usage.oom_killed);
    manager.release(cg);

    // The next run in the same (pooled) cgroup starts from a fresh peak.
    let cg = manager.acquire(&limits(256 * MIB)).unwrap();
    let mut child = spawn_in(&cg, "true");
    assert!(child.wait().unwrap().success());
    let peak = cg.usage().unwrap().memory_peak_bytes;
    assert!(peak < 40 * MIB, "peak after reuse {peak}");
    manager.release(cg);
}

#[test]
fn a_child_over_the_memory_limit_is_oom_killed() {
    let Some(manager) = manager("oom") else {
        return;
    };
    let cg = manager.acquire(&limits(20 * MIB)).unwrap();
    let mut child = spawn_in(&cg, "head -c 200M /dev/zero | tail");
    let status = child.wait().unwrap();
    assert!(!status.success());
    let usage = cg.usage().unwrap();
    assert!(usage.oom_killed, "{usage:?}");
    assert!(
        usage.memory_peak_bytes <= 20 * MIB,
        "peak {}",
        usage.memory_peak_bytes
    );
    manager.release(cg);

    // The OOM kill does not carry over to the next run of a pooled cgroup.
    let cg = manager.acquire(&limits(20 * MIB)).unwrap();
    assert!(!cg.usage().unwrap().oom_killed);
    manager.release(cg);
}

#[test]
fn kill_all_kills_every_process_of_the_box() {
    let Some(manager) = manager("kill") else {
        return;
    };
    let cg = manager.acquire(&limits(64 * MIB)).unwrap();
    let mut child = spawn_in(&cg, "sleep 100 & sleep 100 & sleep 100");
    // Wait until the shell has started its children inside the box.
    assert!(wait_until(|| Ok(cg.dirs().iter().any(|d| procs_of(d).unwrap().len() >= 3))).unwrap());
    assert!(!cg.is_empty().unwrap());
    cg.kill_all().unwrap();
    assert!(cg.is_empty().unwrap());
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    manager.release(cg);
}

#[test]
fn a_box_released_with_live_processes_is_killed_and_removed() {
    let Some(manager) = manager("leftover") else {
        return;
    };
    let cg = manager.acquire(&limits(64 * MIB)).unwrap();
    let dirs: Vec<PathBuf> = cg.dirs().iter().map(|d| d.to_path_buf()).collect();
    let mut child = spawn_in(&cg, "sleep 100");
    manager.release(cg);
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    for dir in &dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    let next = manager.acquire(&limits(64 * MIB)).unwrap();
    assert!(next.dirs().iter().all(|d| !dirs.iter().any(|old| old == d)));
}

#[test]
fn release_and_drop_leave_no_directory_behind() {
    let Some(manager) = manager("cleanup") else {
        return;
    };
    let boxes: Vec<BoxCgroup> = (0..3)
        .map(|_| manager.acquire(&limits(64 * MIB)).unwrap())
        .collect();
    let mut dirs: Vec<PathBuf> = group_dirs(&manager);
    dirs.extend(boxes.iter().flat_map(|b| b.dirs()).map(Path::to_path_buf));
    let mut child = spawn_in(&boxes[0], "true");
    assert!(child.wait().unwrap().success());
    for cg in boxes {
        manager.release(cg);
    }
    drop(manager);
    for dir in &dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn box_names_left_behind_by_a_dead_process_are_skipped() {
    let Some(manager) = manager("stale") else {
        return;
    };
    let next = NEXT_BOX.load(Ordering::Relaxed);
    let mut stale = Vec::new();
    for n in next..next + 20 {
        for group in manager.group_dirs() {
            let dir = group.join(format!("box-{n}"));
            fs::create_dir(&dir).unwrap();
            stale.push(dir);
        }
    }
    let cg = manager.acquire(&limits(64 * MIB)).unwrap();
    assert!(cg.dirs().iter().all(|d| !stale.iter().any(|s| s == d)));
    manager.release(cg);
    for dir in stale.iter().rev() {
        fs::remove_dir(dir).unwrap();
    }
}

#[test]
fn a_pinned_box_runs_on_the_requested_cpu_only() {
    let Some(manager) = manager("cpuset") else {
        return;
    };
    if !manager
        .describe()
        .iter()
        .any(|c| c.name == "cpuset" && c.usable)
    {
        return;
    }
    let pinned = CgroupLimits {
        cpus: Some("0".into()),
        ..limits(64 * MIB)
    };
    let cg = manager.acquire(&pinned).unwrap();
    let mut child = spawn_in(
        &cg,
        "grep Cpus_allowed_list /proc/self/status | grep -q '\t0$'",
    );
    assert!(child.wait().unwrap().success());
    manager.release(cg);
    let bad = CgroupLimits {
        cpus: Some("4095".into()),
        ..limits(64 * MIB)
    };
    assert!(matches!(
        manager.acquire(&bad),
        Err(Error::InvalidConfig(_))
    ));
}

/// A pid that no process has: a reaped child's, checked not to be reused yet.
fn dead_pid() -> i32 {
    super::settle_for_tests();
    loop {
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id() as i32;
        child.wait().unwrap();
        if !sweep::process_alive(pid) {
            return pid;
        }
    }
}

/// Makes `dir/box-0` and starts `sleep` in it (memory hierarchy only). Another
/// test's `detect` may sweep the stale group meanwhile: then it starts over.
fn stale_box_with_a_process(dir: &Path) -> Child {
    super::settle_for_tests();
    for _ in 0..50 {
        let procs = dir.join("box-0").join("cgroup.procs");
        if fs::create_dir_all(dir.join("box-0")).is_err() {
            continue;
        }
        let mut child = Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let placed = fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .and_then(|mut f| f.write_all(child.id().to_string().as_bytes()));
        if placed.is_ok() {
            return child;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    panic!("cannot make {} with a process in it", dir.display());
}

#[test]
fn detect_removes_the_groups_of_a_dead_supervisor_and_keeps_a_live_ones() {
    if !is_root() || !host_is_v1() {
        return;
    }
    let own = own_memory_dir();
    let dead = dead_pid();
    let stale = own.join(format!("runbox-{dead}-0"));
    let stale_doctor = own.join(format!("runbox-doctor-{dead}"));
    let live = own.join(format!("runbox-{}-999999", std::process::id()));
    fs::create_dir_all(live.join("box-0")).unwrap();
    fs::create_dir_all(&stale_doctor).unwrap();
    let mut child = stale_box_with_a_process(&stale);

    let manager = manager("sweep").expect("a v1 host as root has cgroups");

    // The dead supervisor's box process was killed, and its groups are gone.
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!stale.exists(), "{} left behind", stale.display());
    assert!(
        !stale_doctor.exists(),
        "{} left behind",
        stale_doctor.display()
    );
    // Ours (a live pid's) are untouched.
    assert!(live.join("box-0").is_dir());
    let ours: Vec<PathBuf> = group_dirs(&manager);
    assert!(ours.iter().all(|d| d.is_dir()));
    drop(manager);
    fs::remove_dir(live.join("box-0")).unwrap();
    fs::remove_dir(&live).unwrap();
}
