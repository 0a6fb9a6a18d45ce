//! One-shot sandboxes (`SandboxOptions::one_shot`): numbered slots shared by
//! processes that run a box and exit, whose cgroups and empty network namespaces
//! outlive each of them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runbox_sandbox::{BoxConfig, Sandbox, SandboxOptions, Status};

/// The tests share one state directory, as commands on one host do; they take
/// turns so that each knows which slots are free.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const UID_BASE: u32 = 1_900_000;

fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("runbox-one-shot-test-{}", std::process::id()))
}

fn one_shot(state_dir: &Path, max_boxes: u32) -> Sandbox {
    Sandbox::new(SandboxOptions {
        state_dir: state_dir.to_path_buf(),
        max_boxes,
        uid_base: UID_BASE,
        one_shot: true,
        ..SandboxOptions::default()
    })
    .expect("a one-shot sandbox must start here (run the tests as root)")
}

/// What the box says of itself: its network namespace and its user's host uid.
fn identity(sandbox: &Sandbox) -> (String, u32) {
    let o = sandbox
        .run(&BoxConfig::new([
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/net; cat /proc/self/uid_map",
        ]))
        .unwrap();
    assert_eq!(o.status, Status::Ok, "{o:?}");
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    let netns = lines.next().unwrap().to_string();
    let host_uid = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f[0] == "1000")
        .map(|f| f[1].parse().unwrap())
        .expect("the box user is mapped");
    (netns, host_uid)
}

/// Unpins the namespaces the tests pinned, unmounts the /dev template and
/// removes their state directory.
fn clean(state_dir: &Path) {
    let pins = (0..64).map(|n| state_dir.join(format!("slots/{n}.netns")));
    for pin in pins.chain([state_dir.join("dev")]) {
        if pin.exists() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&pin)
                .status();
        }
    }
    let _ = std::fs::remove_dir_all(state_dir);
}

#[test]
fn the_next_one_shot_sandbox_reuses_the_slot_and_its_network_namespace() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = state_dir();
    let first = identity(&one_shot(&dir, 1));
    let second = identity(&one_shot(&dir, 1));
    assert_eq!(first, second, "slot 0 again, with its pinned namespace");
    assert_eq!(
        first.1,
        UID_BASE + 2 * 4096 + 1,
        "slot 0's box user, apart from a service's slots"
    );
    let service = Sandbox::new(SandboxOptions {
        state_dir: dir.clone(),
        max_boxes: 1,
        uid_base: UID_BASE,
        ..SandboxOptions::default()
    })
    .unwrap();
    let (service_netns, service_uid) = identity(&service);
    assert_ne!(service_netns, first.0);
    assert_ne!(service_uid, first.1);
    clean(&dir);
}

#[test]
fn one_shot_sandboxes_alive_at_once_never_share_a_slot() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = state_dir();
    let a = one_shot(&dir, 2);
    let b = one_shot(&dir, 1);
    let mut seen = vec![identity(&a), identity(&a), identity(&b)];
    // Both slots of `a` are used when two of its boxes run at once.
    let both = std::thread::scope(|s| {
        let other = s.spawn(|| identity(&a));
        let here = identity(&a);
        (here, other.join().unwrap())
    });
    seen.extend([both.0.clone(), both.1.clone()]);
    assert_ne!(both.0, both.1, "two boxes at once, two slots");
    let of_b = seen[2].clone();
    assert!(
        seen.iter().filter(|s| **s == of_b).count() == 1,
        "b's slot is none of a's: {seen:?}"
    );
    let mut netns: Vec<&String> = seen.iter().map(|s| &s.0).collect();
    netns.sort();
    netns.dedup();
    assert_eq!(netns.len(), 3, "one namespace per slot: {seen:?}");
    drop((a, b));
    clean(&dir);
}

#[test]
fn a_one_shot_box_keeps_its_limits() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = state_dir();
    let sandbox = one_shot(&dir, 1);
    let limits = runbox_sandbox::Limits {
        memory_bytes: 32 << 20,
        ..runbox_sandbox::Limits::default()
    };
    let o = sandbox
        .run(
            &BoxConfig::new(["/usr/bin/python3", "-c", "x = bytearray(200 << 20)"])
                .with_limits(limits),
        )
        .unwrap();
    assert_eq!(o.status, Status::MemoryLimitExceeded, "{o:?}");
    let o = sandbox.run(&BoxConfig::new(["/bin/true"])).unwrap();
    assert_eq!(o.status, Status::Ok, "the slot serves again: {o:?}");
    drop(sandbox);
    clean(&dir);
}
