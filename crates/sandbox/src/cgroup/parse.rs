//! Parsers for the kernel's cgroup text files, kept free of I/O so they can be
//! tested on any host: `/proc/<pid>/cgroup`, `/proc/self/mountinfo`, and the
//! flat "key value" files (`memory.oom_control`, `memory.events`, `cpu.stat`).

use std::path::{Path, PathBuf};

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProcCgroup {
    /// The hierarchy id; 0 is the cgroup v2 (unified) hierarchy.
    pub id: u32,
    /// The controllers bound to the hierarchy (v1), e.g. `["cpu", "cpuacct"]`;
    /// named hierarchies appear as `name=systemd`; empty for v2.
    pub controllers: Vec<String>,
    /// The process's cgroup, relative to the cgroup namespace root, e.g. `/user.slice`.
    pub path: String,
}

impl ProcCgroup {
    /// Whether this is the cgroup v2 line (`0::/path`).
    pub fn is_v2(&self) -> bool {
        self.id == 0 && self.controllers.is_empty()
    }
}

/// Parses `/proc/<pid>/cgroup`; malformed lines are skipped, since a future
/// kernel format change should cost a feature, not the whole detection.
pub(super) fn proc_cgroups(text: &str) -> Vec<ProcCgroup> {
    text.lines().filter_map(proc_cgroup_line).collect()
}

/// Parses one `/proc/<pid>/cgroup` line.
fn proc_cgroup_line(line: &str) -> Option<ProcCgroup> {
    // The path may itself contain ':', so split at most twice.
    let mut fields = line.splitn(3, ':');
    let id = fields.next()?.parse().ok()?;
    let controllers = fields.next()?;
    let path = fields.next()?;
    if !path.starts_with('/') {
        return None;
    }
    let controllers = controllers
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    Some(ProcCgroup {
        id,
        controllers,
        path: path.to_owned(),
    })
}

/// The kind of a cgroup file system mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CgroupFs {
    /// `cgroup` (v1): one or more controllers per mount.
    V1,
    /// `cgroup2`: the unified hierarchy.
    V2,
}

/// A cgroup file system mount, from one line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CgroupMount {
    /// v1 or v2.
    pub fs: CgroupFs,
    /// The cgroup shown at the mount point, relative to our cgroup namespace root
    /// (field 4): not `/` for a bind mount of a sub-cgroup, or a mount made in
    /// another cgroup namespace.
    pub root: String,
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// The super block options after the source (v1: the controllers, e.g.
    /// `rw,cpu,cpuacct`), split at commas.
    pub super_options: Vec<String>,
    /// Whether this mount is read-only (per-mount option `ro`, field 6), as a
    /// container engine mounts the cgroups of an unprivileged container.
    pub read_only: bool,
}

impl CgroupMount {
    /// Whether this v1 mount carries every controller in `controllers`.
    pub fn has_controllers(&self, controllers: &[String]) -> bool {
        self.fs == CgroupFs::V1
            && !controllers.is_empty()
            && controllers.iter().all(|c| self.super_options.contains(c))
    }
}

/// Parses the cgroup and cgroup2 mounts out of `/proc/self/mountinfo`.
pub(super) fn cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(mountinfo_line).collect()
}

/// Parses one mountinfo line if it is a cgroup mount:
/// `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
fn mountinfo_line(line: &str) -> Option<CgroupMount> {
    let (before, after) = line.split_once(" - ")?;
    let before: Vec<&str> = before.split(' ').collect();
    let mut after = after.split(' ');
    let fs = match after.next()? {
        "cgroup" => CgroupFs::V1,
        "cgroup2" => CgroupFs::V2,
        _ => return None,
    };
    let _source = after.next()?;
    let super_options = after
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect();
    let root = unescape(before.get(3)?);
    let mount_point = PathBuf::from(unescape(before.get(4)?));
    let read_only = before.get(5)?.split(',').any(|o| o == "ro");
    Some(CgroupMount {
        fs,
        root,
        mount_point,
        super_options,
        read_only,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of `cgroup` (a path from `/proc/self/cgroup`) under a mount of
/// its hierarchy whose root is `mount_root` (mountinfo field 4).
///
/// `None` when the mount does not show that cgroup: the mount holds a different
/// subtree (bind mount), or was made outside our cgroup namespace (root `/..`).
pub(super) fn resolve(mount_point: &Path, mount_root: &str, cgroup: &str) -> Option<PathBuf> {
    let relative = if mount_root == "/" {
        cgroup.strip_prefix('/')?
    } else {
        let rest = cgroup.strip_prefix(mount_root)?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None; // `/a/bc` is not below `/a/b`.
        }
        rest.trim_start_matches('/')
    };
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if relative.is_empty() {
        mount_point.to_path_buf()
    } else {
        mount_point.join(relative)
    })
}

/// Joins a cgroup path (as in `/proc/self/cgroup`) and a child name.
pub(super) fn child_path(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The value of `key` in a flat keyed file of `key value` lines, such as
/// `memory.oom_control`, `memory.events` or `cpu.stat`.
pub(super) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// A single-number file such as `cpuacct.usage` or `memory.peak`.
pub(super) fn single_value(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The controller names of a space-separated list (`cgroup.controllers`,
/// `cgroup.subtree_control`).
pub(super) fn controller_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own line for `controller` in a parsed `/proc/self/cgroup`.
    fn line_for<'a>(lines: &'a [ProcCgroup], controller: &str) -> &'a ProcCgroup {
        lines
            .iter()
            .find(|l| l.controllers.iter().any(|c| c == controller))
            .unwrap()
    }

    #[test]
    fn v1_proc_cgroup_with_separate_controllers_gives_one_line_each() {
        let text =
            "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/c8cf\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let lines = proc_cgroups(text);
        assert_eq!(lines.len(), 6);
        assert_eq!(line_for(&lines, "memory").path, "/process_api/c8cf");
        assert_eq!(line_for(&lines, "memory").id, 4);
        assert_eq!(
            line_for(&lines, "name=systemd").controllers,
            vec!["name=systemd"]
        );
        assert!(lines[5].is_v2());
        assert!(!lines[0].is_v2());
    }

    #[test]
    fn v1_proc_cgroup_with_co_mounted_cpu_and_cpuacct_lists_both_controllers() {
        let lines = proc_cgroups("3:cpu,cpuacct:/system.slice/x.service\n5:memory:/\n");
        assert_eq!(lines[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(lines[0].path, "/system.slice/x.service");
        assert_eq!(line_for(&lines, "cpuacct").id, 3);
    }

    #[test]
    fn v2_proc_cgroup_is_a_single_line_with_hierarchy_zero() {
        let lines = proc_cgroups("0::/user.slice/user-1000.slice/session-2.scope\n");
        assert_eq!(lines.len(), 1);
        assert!(lines[0].is_v2());
        assert_eq!(lines[0].path, "/user.slice/user-1000.slice/session-2.scope");
    }

    #[test]
    fn hybrid_proc_cgroup_has_v1_lines_and_the_unified_line() {
        let text = "12:memory:/a\n1:name=systemd:/user.slice\n0::/user.slice\n";
        let lines = proc_cgroups(text);
        assert_eq!(lines.iter().filter(|l| l.is_v2()).count(), 1);
        assert_eq!(line_for(&lines, "memory").path, "/a");
    }

    #[test]
    fn proc_cgroup_path_may_contain_colons_and_bad_lines_are_skipped() {
        let lines = proc_cgroups("garbage\n0::/a:b\nx:memory:/\n");
        assert_eq!(
            lines,
            vec![ProcCgroup {
                id: 0,
                controllers: vec![],
                path: "/a:b".into()
            }]
        );
    }

    #[test]
    fn mountinfo_keeps_only_cgroup_mounts_with_their_controllers() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,memory
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
        let mounts = cgroup_mounts(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].fs, CgroupFs::V1);
        assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert!(mounts[0].has_controllers(&["memory".into()]));
        assert!(!mounts[0].has_controllers(&["pids".into()]));
        assert!(mounts[1].has_controllers(&["cpu".into(), "cpuacct".into()]));
        assert_eq!(mounts[2].fs, CgroupFs::V2);
        assert!(!mounts[2].has_controllers(&["memory".into()]));
    }

    #[test]
    fn mountinfo_tells_a_read_only_mount_from_a_writable_one() {
        let text = "\
35 31 0:32 /libpod/abc /sys/fs/cgroup/memory ro,nosuid,nodev - cgroup cgroup rw,memory
36 31 0:33 /libpod/abc /sys/fs/cgroup/pids rw,nosuid,relatime - cgroup cgroup rw,pids
37 31 0:34 / /sys/fs/cgroup/rom rw,relatime,ro - cgroup cgroup rw,cpu
";
        let read_only: Vec<bool> = cgroup_mounts(text).iter().map(|m| m.read_only).collect();
        assert_eq!(read_only, [true, false, true]);
    }

    #[test]
    fn mountinfo_root_field_of_a_bind_mount_is_kept() {
        let text = "50 40 0:30 /docker/abc /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        let mounts = cgroup_mounts(text);
        assert_eq!(mounts[0].root, "/docker/abc");
        assert_eq!(mounts[0].fs, CgroupFs::V2);
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        let text = "50 40 0:30 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_mounts(text)[0].mount_point,
            Path::new("/mnt/my cgroups")
        );
    }

    #[test]
    fn path_resolves_below_a_mount_with_root_slash() {
        let dir = resolve(Path::new("/sys/fs/cgroup/memory"), "/", "/process_api/c8cf");
        assert_eq!(
            dir.unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/c8cf")
        );
        let root = resolve(Path::new("/sys/fs/cgroup/pids"), "/", "/");
        assert_eq!(root.unwrap(), Path::new("/sys/fs/cgroup/pids"));
    }

    #[test]
    fn path_resolves_relative_to_a_bind_mounted_subtree() {
        let mount = Path::new("/sys/fs/cgroup");
        assert_eq!(resolve(mount, "/docker/abc", "/docker/abc").unwrap(), mount);
        assert_eq!(
            resolve(mount, "/docker/abc", "/docker/abc/x").unwrap(),
            mount.join("x")
        );
        assert_eq!(resolve(mount, "/docker/abc", "/docker/abcd"), None);
        assert_eq!(resolve(mount, "/docker/abc", "/other"), None);
    }

    #[test]
    fn path_outside_our_cgroup_namespace_does_not_resolve() {
        assert_eq!(resolve(Path::new("/sys/fs/cgroup"), "/..", "/"), None);
        assert_eq!(resolve(Path::new("/sys/fs/cgroup"), "/", "/a/../b"), None);
    }

    #[test]
    fn child_paths_join_with_one_slash() {
        assert_eq!(child_path("/", "runbox-1"), "/runbox-1");
        assert_eq!(child_path("/a", "runbox-1"), "/a/runbox-1");
    }

    #[test]
    fn oom_control_gives_the_oom_kill_count() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(3));
        assert_eq!(
            keyed_value("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"),
            None
        );
    }

    #[test]
    fn memory_events_gives_oom_kill_not_oom() {
        let text = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(1));
        assert_eq!(keyed_value(text, "oom"), Some(2));
    }

    #[test]
    fn cpu_stat_gives_usage_in_microseconds() {
        let text = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\n";
        assert_eq!(keyed_value(text, "usage_usec"), Some(1_234_567));
    }

    #[test]
    fn single_value_files_and_controller_lists_parse() {
        assert_eq!(single_value("123456789\n"), Some(123_456_789));
        assert_eq!(single_value("max\n"), None);
        assert_eq!(controller_list("cpuset cpu io memory pids\n")[3], "memory");
        assert!(controller_list("\n").is_empty());
    }
}
