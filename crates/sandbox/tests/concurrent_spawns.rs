//! Boxes start while other threads of the supervisor start host processes.
//!
//! A box's init is a copy of the supervisor made by a raw `clone3`, so it
//! inherits every lock another thread held at that instant and none of the
//! owners. glibc 2.41 made `abort` async-signal-safe with a lock that
//! `posix_spawn` holds (for reading) while its child starts and that
//! `sigaction(SIGABRT)` takes (for writing): an init cloned during a
//! compiler's spawn, resetting SIGABRT through glibc, waited on that lock until
//! its wall limit. These tests start boxes against a stream of host spawns and
//! fail when any of them hangs; on a host with an older glibc they pass on any
//! build, on Debian 13's they failed before the init reset its signals with
//! system calls of its own. Boxes born from launcher threads (a command's) are
//! exposed; boxes born in a single-threaded launcher process (the service's)
//! cannot inherit another thread's lock, which the second test holds to.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use runbox_sandbox::{BoxConfig, Sandbox, SandboxOptions, Status};
use support::*;

/// Host processes spawned in a loop until `stop` is set; returns how many.
fn spawn_until(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut spawned = 0;
        while !stop.load(Ordering::Relaxed) {
            let status = host_command("true").status().expect("spawn true");
            assert!(status.success());
            spawned += 1;
        }
        spawned
    })
}

/// Starts 150 boxes in `sandbox` while two threads spawn host processes, and
/// fails if any of them did not start promptly.
fn boxes_start_while_other_threads_spawn_host_processes(sandbox: &Sandbox) {
    let stop = Arc::new(AtomicBool::new(false));
    let spawners: Vec<_> = (0..2).map(|_| spawn_until(stop.clone())).collect();
    let config = BoxConfig::new(["/bin/true"]).with_limits(limits(|l| {
        l.wall_time = Duration::from_secs(5);
    }));
    let mut stuck = Vec::new();
    for attempt in 0..150 {
        let o = sandbox.run(&config).expect("the box runs");
        if o.status != Status::Ok || o.wall_time > Duration::from_secs(2) {
            stuck.push((attempt, o.status, o.wall_time));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let spawned: u32 = spawners.into_iter().map(|s| s.join().unwrap()).sum();
    assert!(
        spawned > 0,
        "the host spawns must overlap the boxes' starts"
    );
    assert!(
        stuck.is_empty(),
        "boxes that did not start promptly while {spawned} host processes were spawned: {stuck:?}"
    );
}

#[test]
fn boxes_from_launcher_threads_start_while_other_threads_spawn_host_processes() {
    // Built after the shared sandbox: on pure cgroup v2 that one moves this
    // process into its leaf first (see `host_command`).
    sandbox();
    let threads = Sandbox::new(SandboxOptions {
        max_boxes: 2,
        uid_base: 2_230_000,
        ..SandboxOptions::default()
    })
    .expect("a sandbox with launcher threads");
    boxes_start_while_other_threads_spawn_host_processes(&threads);
}

#[test]
fn boxes_from_launcher_processes_start_while_other_threads_spawn_host_processes() {
    boxes_start_while_other_threads_spawn_host_processes(sandbox());
}
