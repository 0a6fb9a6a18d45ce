//! Nothing of a box outlives it: processes, cgroups, mounts. These tests look at the
//! whole host, so they run one at a time.

mod support;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use runbox_sandbox::{BoxConfig, Sandbox, SandboxOptions, Status};
use support::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_daemonised_double_forked_process_dies_with_the_box() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = sh("(setsid sh -c 'sleep 100 & sleep 100' &) ; sleep 0.1; echo started");
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(stdout(&o), "started\n");
    assert!(
        o.wall_time < Duration::from_secs(2),
        "the run must not wait for the daemon: {o:?}"
    );
    // The box is torn down in the background once its result is known: give the
    // kernel a moment, then nothing may be left.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !box_processes().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "box processes survived: {:?}",
            box_processes()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_dropped_sandbox_leaves_no_cgroup_mount_or_process() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let groups_before = runbox_cgroups();
    {
        let sandbox = Sandbox::new(SandboxOptions {
            max_boxes: 2,
            uid_base: 1_800_000,
            ..SandboxOptions::default()
        })
        .unwrap();
        for script in ["sleep 10 & echo hi", "exit 3", "yes"] {
            let cfg = BoxConfig::new(["/bin/sh", "-c", script]);
            let _ = sandbox.run(&cfg).unwrap();
        }
        let _ = sandbox.run(&BoxConfig::new(["no-such-command"]));
        // Compare names, not counts: a new sandbox sweeps the groups that dead
        // supervisors left, so some of `groups_before` may be gone by now.
        assert!(
            runbox_cgroups().iter().any(|g| !groups_before.contains(g)),
            "the sandbox made its cgroups"
        );
    }
    let left: Vec<PathBuf> = runbox_cgroups()
        .into_iter()
        .filter(|g| !groups_before.contains(g))
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert_eq!(mounts_after, mounts_before, "host mounts changed");
}

/// Every `runbox-*` cgroup directory on the host but runbox's own leaf.
fn runbox_cgroups() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                // `runbox-supervisor` is where runbox itself lives on cgroup v2,
                // for good (see the cgroup module): not a box group to clean up.
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("runbox-") && name != "runbox-supervisor" {
                    found.push(path.clone());
                }
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A sandbox of one box slot, whose runs all reuse its cgroup.
fn one_slot(uid_base: u32) -> Sandbox {
    Sandbox::new(SandboxOptions {
        max_boxes: 1,
        uid_base,
        ..SandboxOptions::default()
    })
    .unwrap()
}

#[test]
fn a_reused_slot_starts_each_run_with_fresh_counters() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // One slot: every run reuses the same cgroup and launcher.
    let sandbox = one_slot(1_850_000);
    let limits = runbox_sandbox::Limits {
        memory_bytes: 32 << 20,
        ..Default::default()
    };
    let bomb = BoxConfig::new([
        "/bin/sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo $x",
    ])
    // Time enough for a slow (emulated) machine to reach the memory limit first.
    .with_limits(runbox_sandbox::Limits {
        cpu_time: Duration::from_secs(10),
        wall_time: Duration::from_secs(20),
        ..limits.clone()
    });
    let o = sandbox.run(&bomb).unwrap();
    assert_eq!(o.status, Status::MemoryLimitExceeded, "{o:?}");

    let o = sandbox
        .run(&BoxConfig::new(["/bin/true"]).with_limits(limits))
        .unwrap();
    assert_eq!(
        o.status,
        Status::Ok,
        "the OOM of the last run must not count: {o:?}"
    );
    assert!(
        o.memory_kb < 8 << 10,
        "the peak of the last run must not count: {o:?}"
    );
    assert!(o.cpu_time < Duration::from_millis(50), "{o:?}");
}

#[test]
fn page_cache_an_earlier_box_left_in_the_slot_does_not_hide_the_next_programs_memory() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // One slot: both runs use the same cgroup.
    let sandbox = one_slot(1_870_000);
    // The first box writes 120 MB to a host directory: page cache charged to the
    // slot's cgroup, which stays there after the box (as a compiler's files do
    // on a host where a box was the first to read them).
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let writer = BoxConfig::new([
        "/bin/sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do head -c 15000000 /dev/zero > /data/f$i || exit 1; done",
    ])
    .with_bind(runbox_sandbox::BindMount::writable(data.path(), "/data"))
    .with_limits(runbox_sandbox::Limits {
        memory_bytes: 256 << 20,
        ..Default::default()
    });
    let o = sandbox.run(&writer).unwrap();
    assert_eq!(o.status, Status::Ok, "{o:?}");

    // The next program touches 48 MiB against a 32 MiB limit, then waits: the
    // cgroup has room for it (the tmpfs budgets) once the kernel reclaims the
    // stale cache, which must not be taken for the program staying small.
    let greedy = BoxConfig::new([
        "/usr/bin/python3",
        "-c",
        "import time; x = b'a' * (48 << 20); time.sleep(10)",
    ])
    .with_limits(runbox_sandbox::Limits {
        memory_bytes: 32 << 20,
        wall_time: Duration::from_secs(3),
        ..Default::default()
    });
    let o = sandbox.run(&greedy).unwrap();
    assert_eq!(o.status, Status::MemoryLimitExceeded, "{o:?}");
}
