//! Removes the cgroups that a supervisor left behind when it died without
//! cleaning up (SIGKILL, a crash): its group directory and the box cgroups in it.
//!
//! Group directories are named after the process that made them:
//! `runbox-<pid>-<n>` (a `Sandbox`), `runbox-doctor-<pid>` (`runbox doctor`) and
//! `runbox-test-<pid>-<name>` (this module's tests). When a manager is detected,
//! every such directory beside its own group, in every hierarchy it uses, whose
//! `<pid>` is no running process is emptied and removed:
//! - processes still in it are box processes of the dead supervisor: they are
//!   SIGKILLed the way `kill_all` does it (a pidfd, and only while
//!   `/proc/<pid>/cgroup` still shows them in that very cgroup);
//! - then its cgroups are removed, deepest first; one that cannot be emptied or
//!   removed is logged and left in place.
//!
//! A group whose pid is alive is never touched, even when that pid was reused by
//! an unrelated process (the group then waits for a later sweep). The pid is read
//! in our own pid namespace: supervisors that share a parent cgroup must share a
//! pid namespace too, or one would take the other's groups for stale.

use std::fs;
use std::path::{Path, PathBuf};

use super::parse;
use super::{Membership, child_cgroups, kill_listed, remove_cgroup};
use crate::error::Result;
pub(super) use crate::sys::process_alive;

/// A directory where group directories are created: one per hierarchy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Place<'a> {
    /// The directory (our own cgroup, or the parent of our supervisor leaf).
    pub dir: &'a Path,
    /// The same as a cgroup path, as `/proc/<pid>/cgroup` shows it.
    pub rel: &'a str,
    /// The hierarchy id in `/proc/<pid>/cgroup` (0 for v2).
    pub hierarchy: u32,
}

/// The pid of the process that named a group directory `name`, if `name` is one
/// of the names runbox gives its group directories.
pub(super) fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("runbox-")?;
    if let Some(pid) = rest.strip_prefix("doctor-") {
        return pid_number(pid);
    }
    let rest = rest.strip_prefix("test-").unwrap_or(rest);
    let (pid, tail) = rest.split_once('-')?;
    if tail.is_empty() {
        return None;
    }
    pid_number(pid)
}

/// A pid written in decimal as `format!` writes it: no sign, no leading zero.
fn pid_number(text: &str) -> Option<i32> {
    let plain =
        !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    if plain { text.parse().ok() } else { None }
}

/// The dead owner's pid if the group directory `name` was left behind: a runbox
/// group name whose pid is neither ours nor `alive`.
pub(super) fn stale_owner(name: &str, own_pid: i32, alive: impl Fn(i32) -> bool) -> Option<i32> {
    let pid = owner_pid(name)?;
    (pid != own_pid && !alive(pid)).then_some(pid)
}

/// Empties and removes, in every place, the group directories of supervisors
/// that are gone. Failures are logged: a leftover must not stop a new supervisor.
pub(super) fn sweep(places: &[Place<'_>], own_pid: i32) {
    for place in places {
        let Ok(entries) = fs::read_dir(place.dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let Some(pid) = stale_owner(name, own_pid, process_alive) else {
                continue;
            };
            let dir = place.dir.join(name);
            let rel = parse::child_path(place.rel, name);
            match remove_stale(&dir, &rel, place.hierarchy) {
                Ok(()) => tracing::info!(
                    "removed cgroup {} left behind by runbox process {pid}, which is gone",
                    dir.display()
                ),
                // Another supervisor's sweep got there first.
                Err(_) if !dir.exists() => {}
                Err(err) => tracing::warn!(
                    "cgroup {} left behind by runbox process {pid}, which is gone, \
                     stays in place: {err}",
                    dir.display()
                ),
            }
        }
    }
}

/// Kills what is left in the cgroup tree at `dir` (`rel` in hierarchy
/// `hierarchy`) and removes its cgroups, deepest first.
fn remove_stale(dir: &Path, rel: &str, hierarchy: u32) -> Result<()> {
    let mut tree = Vec::new();
    deepest_first(dir, rel, &mut tree);
    let members: Vec<(&Path, Membership<'_>)> = tree
        .iter()
        .map(|(path, rel)| {
            (
                path.as_path(),
                Membership {
                    hierarchy,
                    path: rel,
                },
            )
        })
        .collect();
    kill_listed(&members)?;
    for (path, _) in &tree {
        remove_cgroup(path)?;
    }
    Ok(())
}

/// The cgroups of the tree at `dir`, children before their parent, each with
/// its cgroup path.
fn deepest_first(dir: &Path, rel: &str, out: &mut Vec<(PathBuf, String)>) {
    for child in child_cgroups(dir) {
        if let Some(name) = child.file_name().and_then(|n| n.to_str()) {
            let child_rel = parse::child_path(rel, name);
            deepest_first(&child, &child_rel, out);
        }
    }
    out.push((dir.to_path_buf(), rel.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_give_the_pid_of_the_process_that_made_them() {
        assert_eq!(owner_pid("runbox-1234-0"), Some(1234));
        assert_eq!(owner_pid("runbox-1234-17"), Some(1234));
        assert_eq!(owner_pid("runbox-doctor-99"), Some(99));
        assert_eq!(owner_pid("runbox-test-77-stale"), Some(77));
        assert_eq!(owner_pid("runbox-test-77-a-b"), Some(77));
    }

    #[test]
    fn other_names_have_no_owner() {
        for name in [
            "runbox-supervisor",
            "runbox-1234",
            "runbox-1234-",
            "runbox--0",
            "runbox-+12-0",
            "runbox-012-0",
            "runbox-0-0",
            "runbox-x1-0",
            "runbox-99999999999-0",
            "runbox-doctor-",
            "runbox-doctor-12-0",
            "runbox-doctor-x",
            "runbox-test-x-1",
            "box-3",
            "runbox",
            "my-runbox-12-0",
            "system.slice",
        ] {
            assert_eq!(owner_pid(name), None, "{name}");
        }
    }

    #[test]
    fn only_groups_of_dead_other_processes_are_stale() {
        let alive = |pid| pid == 10 || pid == 20;
        assert_eq!(stale_owner("runbox-30-0", 20, alive), Some(30));
        assert_eq!(stale_owner("runbox-doctor-30", 20, alive), Some(30));
        assert_eq!(stale_owner("runbox-10-0", 20, alive), None);
        assert_eq!(stale_owner("runbox-20-4", 20, alive), None);
        // Our own pid is never stale, whatever the liveness check says.
        assert_eq!(stale_owner("runbox-20-4", 20, |_| false), None);
        assert_eq!(stale_owner("runbox-supervisor", 20, |_| false), None);
    }

    #[test]
    fn liveness_of_this_process_and_of_a_reaped_child() {
        assert!(process_alive(std::process::id() as i32));
        assert!(process_alive(1));
        super::super::settle_for_tests();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        // Reaped: gone, unless the pid was handed out again in between.
        assert!(!process_alive(pid) || std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn the_tree_lists_children_before_their_parent() {
        let root = tempfile::tempdir().unwrap();
        let group = root.path().join("runbox-5-0");
        fs::create_dir_all(group.join("box-0").join("inner")).unwrap();
        fs::create_dir_all(group.join("box-1")).unwrap();
        fs::write(group.join("cgroup.procs"), "").unwrap();
        let mut tree = Vec::new();
        deepest_first(&group, "/a/runbox-5-0", &mut tree);
        let rels: Vec<&str> = tree.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(rels.len(), 4);
        assert_eq!(rels[3], "/a/runbox-5-0");
        let inner = rels.iter().position(|r| *r == "/a/runbox-5-0/box-0/inner");
        let box0 = rels.iter().position(|r| *r == "/a/runbox-5-0/box-0");
        assert!(inner.unwrap() < box0.unwrap());
        assert!(rels.contains(&"/a/runbox-5-0/box-1"));
        assert_eq!(tree[3].0, group);
    }
}
