//! cgroup v2 delegation: enabling controllers in our own cgroup's
//! `cgroup.subtree_control` so that the boxes below it can have them.
//!
//! v2's "no internal processes" rule refuses that write (`EBUSY`) while our own
//! cgroup holds processes, unless it is the root cgroup. The standard fix (what a
//! systemd service with `Delegate=yes` or go-judge does) stays inside our own
//! subtree: if the only process in our cgroup `<own>` is runbox itself, runbox
//! moves itself into a leaf `<own>/runbox-supervisor` and then enables the
//! controllers in `<own>`. If any other process shares `<own>`, nothing moves and
//! the error says how to give runbox a cgroup of its own.
//!
//! Rules kept here:
//! - the only process ever moved is this one, and only into `<own>/runbox-supervisor`;
//! - nothing moves back when the manager is dropped: runbox stays in the leaf
//!   (moving back would need `<own>`'s controllers disabled again, which the boxes
//!   of another manager in this process may still use);
//! - a process already in its `runbox-supervisor` leaf uses the leaf's parent as
//!   its base and never nests a second leaf.
//!
//! The decisions are pure functions ([`base_of`], [`plan_after_busy`]); the file
//! operations go through [`CgroupFs`], so that tests can imitate the kernel's
//! rules in a temporary directory.

use std::io;
use std::path::{Path, PathBuf};

use super::parse;
use super::{make_cgroup, write_raw};

/// The leaf cgroup runbox moves itself into, below its own cgroup.
pub(super) const SUPERVISOR: &str = "runbox-supervisor";

/// The controllers every box needs. CPU time comes from `cpu.stat`, which every
/// cgroup has even without the cpu controller.
pub(super) const REQUIRED: [&str; 2] = ["memory", "pids"];
/// Controllers enabled for boxes when available: cpu for fair scheduling between
/// boxes, cpuset for pinning.
pub(super) const OPTIONAL: [&str; 2] = ["cpu", "cpuset"];

/// How many other pids an error message lists before "...".
const LISTED_PIDS: usize = 8;

/// The cgroupfs operations delegation needs.
pub(super) trait CgroupFs {
    /// Reads a whole cgroup file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Writes `value` to an existing cgroup file with one `write`.
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    /// Creates a cgroup directory; `Ok(false)` when it already exists.
    fn mkdir(&self, path: &Path) -> io::Result<bool>;
}

/// The real cgroup file system.
pub(super) struct Kernel;

impl CgroupFs for Kernel {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        write_raw(path, value)
    }

    fn mkdir(&self, path: &Path) -> io::Result<bool> {
        make_cgroup(path)
    }
}

/// Where the group directory of the boxes goes: our own cgroup (`own_dir`, shown
/// as `own_rel` in `/proc/self/cgroup`), or its parent when we are in our own
/// [`SUPERVISOR`] leaf already (moved there by an earlier manager of this
/// process, or inherited from a runbox parent process).
///
/// The parent is used only while it is still inside the mount (`mount_point`),
/// i.e. inside the part of the hierarchy we can see.
pub(super) fn base_of(own_dir: &Path, own_rel: &str, mount_point: &Path) -> (PathBuf, String) {
    let in_leaf = own_dir.file_name().is_some_and(|n| n == SUPERVISOR)
        && own_dir != mount_point
        && own_dir.starts_with(mount_point);
    let parent_rel = own_rel
        .strip_suffix(SUPERVISOR)
        .and_then(|p| p.strip_suffix('/'));
    match (in_leaf, parent_rel, own_dir.parent()) {
        (true, Some(rel), Some(dir)) => {
            let rel = if rel.is_empty() { "/" } else { rel };
            (dir.to_path_buf(), rel.to_owned())
        }
        _ => (own_dir.to_path_buf(), own_rel.to_owned()),
    }
}

/// What to do once enabling controllers in our own cgroup failed with `EBUSY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Plan {
    /// We are alone in our cgroup: move process `pid` (ourselves) into the leaf
    /// `leaf`, then enable the controllers again.
    MoveSelf {
        /// `<own>/runbox-supervisor`.
        leaf: PathBuf,
        /// Our own pid.
        pid: i32,
    },
    /// Move nothing; the message says why and how to fix it.
    Refuse(String),
}

/// Decides, from the content of `<base>/cgroup.procs`, whether runbox may move
/// itself out of `base` so that `base` can delegate `needed` controllers.
///
/// Only when `cgroup.procs` lists exactly our own pid: any other entry (another
/// process, a `0` for a process in another pid namespace, a line we cannot read)
/// means the cgroup is shared, and moving ourselves would not free it anyway.
pub(super) fn plan_after_busy(base: &Path, needed: &[&str], own_pid: i32, procs: &str) -> Plan {
    let entries: Vec<&str> = procs
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let own = own_pid.to_string();
    let others: Vec<&str> = entries.iter().copied().filter(|e| *e != own).collect();
    let listed_self = entries.len() > others.len();
    if listed_self && others.is_empty() {
        return Plan::MoveSelf {
            leaf: base.join(SUPERVISOR),
            pid: own_pid,
        };
    }
    let file = base.join("cgroup.subtree_control");
    let situation = if others.is_empty() {
        // EBUSY without processes: e.g. threaded children; nothing of ours to move.
        format!(
            "{} lists no process, yet the kernel refuses the write",
            base.join("cgroup.procs").display()
        )
    } else {
        let mut shown = others
            .iter()
            .take(LISTED_PIDS)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if others.len() > LISTED_PIDS {
            shown.push_str(", ...");
        }
        let whose = if listed_self {
            "runbox shares its cgroup with other processes"
        } else {
            "runbox is not in this cgroup, and other processes are"
        };
        format!(
            "{whose} (pids {shown} in {}); runbox moves only itself, so it leaves them alone",
            base.join("cgroup.procs").display()
        )
    };
    Plan::Refuse(format!(
        "cannot enable '{}' in {}: cgroup v2's 'no internal processes' rule lets a \
         non-root cgroup pass controllers to child cgroups only while it holds no \
         process, and {situation}. Start runbox in a cgroup of its own, e.g. \
         `systemd-run --scope -p Delegate=yes runbox serve` or a systemd service with \
         `Delegate=yes`; `runbox doctor` shows the details",
        needed.join(" "),
        file.display(),
    ))
}

/// Why [`enable`] failed.
#[derive(Debug)]
pub(super) enum EnableError {
    /// `EBUSY` on the required controllers: the cgroup holds processes.
    Busy,
    /// Anything else, with the file and the fix.
    Failed(String),
}

/// Enables the required and available optional controllers in `dir`'s
/// `cgroup.subtree_control`; returns those enabled.
pub(super) fn enable(
    fs: &impl CgroupFs,
    dir: &Path,
    available: &[String],
) -> std::result::Result<Vec<String>, EnableError> {
    let file = dir.join("cgroup.subtree_control");
    let current = fs
        .read(&file)
        .map_err(|e| EnableError::Failed(format!("cannot read {}: {e}", file.display())))?;
    let mut enabled = parse::controller_list(&current);
    let needed = missing(&enabled, &REQUIRED);
    if !needed.is_empty() {
        let request: Vec<String> = needed.iter().map(|c| format!("+{c}")).collect();
        match fs.write(&file, &request.join(" ")) {
            Ok(()) => enabled.extend(needed.iter().map(|c| c.to_string())),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Err(EnableError::Busy),
            Err(e) => {
                return Err(EnableError::Failed(format!(
                    "cannot enable '{}' in {}: {e}",
                    needed.join(" "),
                    file.display()
                )));
            }
        }
    }
    for c in OPTIONAL {
        let wanted = available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c);
        // Optional: a failure only costs that controller.
        if wanted && fs.write(&file, &format!("+{c}")).is_ok() {
            enabled.push(c.to_string());
        }
    }
    Ok(enabled)
}

/// Enables the box controllers in our own cgroup `base` (see [`base_of`]),
/// moving ourselves (`own_pid`) into `<base>/runbox-supervisor` first when the
/// "no internal processes" rule requires it and nobody else is in `base`.
pub(super) fn enable_own(
    fs: &impl CgroupFs,
    base: &Path,
    own_pid: i32,
    available: &[String],
) -> std::result::Result<Vec<String>, String> {
    match enable(fs, base, available) {
        Ok(enabled) => return Ok(enabled),
        Err(EnableError::Failed(why)) => return Err(why),
        Err(EnableError::Busy) => {}
    }
    let procs_file = base.join("cgroup.procs");
    let procs = fs
        .read(&procs_file)
        .map_err(|e| format!("cannot read {}: {e}", procs_file.display()))?;
    let current = fs
        .read(&base.join("cgroup.subtree_control"))
        .unwrap_or_default();
    let needed = missing(&parse::controller_list(&current), &REQUIRED);
    let (leaf, pid) = match plan_after_busy(base, &needed, own_pid, &procs) {
        Plan::MoveSelf { leaf, pid } => (leaf, pid),
        Plan::Refuse(why) => return Err(why),
    };
    fs.mkdir(&leaf)
        .map_err(|e| format!("cannot create cgroup {}: {e}", leaf.display()))?;
    let leaf_procs = leaf.join("cgroup.procs");
    fs.write(&leaf_procs, &pid.to_string()).map_err(|e| {
        format!(
            "cannot move runbox (pid {pid}) into {}: {e}",
            leaf_procs.display()
        )
    })?;
    tracing::info!(
        "cgroup v2: moved runbox (pid {pid}) into {} so that {} can pass controllers to boxes",
        leaf.display(),
        base.display()
    );
    match enable(fs, base, available) {
        Ok(enabled) => Ok(enabled),
        Err(EnableError::Failed(why)) => Err(why),
        // Another process joined `base` meanwhile: say so; we stay in the leaf.
        Err(EnableError::Busy) => {
            let procs = fs.read(&procs_file).unwrap_or_default();
            match plan_after_busy(base, &needed, own_pid, &procs) {
                Plan::Refuse(why) => Err(why),
                Plan::MoveSelf { .. } => Err(format!(
                    "cannot enable '{}' in {} even after runbox moved itself into {}: \
                     the kernel still reports it busy",
                    needed.join(" "),
                    base.join("cgroup.subtree_control").display(),
                    leaf.display()
                )),
            }
        }
    }
}

/// The controllers of `wanted` that `list` lacks.
pub(super) fn missing<'a>(list: &[String], wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|w| !list.iter().any(|c| c == w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::fs;

    /// A cgroup v2 tree in a temporary directory that imitates the kernel's rules
    /// for the files delegation touches:
    /// - `mkdir` makes `cgroup.procs` and `cgroup.subtree_control` empty, and
    ///   `cgroup.controllers` the parent's `cgroup.subtree_control`;
    /// - a write to `cgroup.procs` moves that pid out of every other cgroup of the
    ///   tree, and fails with `EBUSY` where a non-root cgroup delegates controllers;
    /// - a write to `cgroup.subtree_control` fails with `EBUSY` in a non-root
    ///   cgroup with processes, `ENOENT` for a controller not in
    ///   `cgroup.controllers`, and updates the children's `cgroup.controllers`.
    struct FakeCgroupFs {
        /// The root cgroup: it may hold processes and delegate at once.
        root: tempfile::TempDir,
        /// Moves this pid into this cgroup right after our first move: another
        /// process joining our old cgroup meanwhile.
        intruder: Option<(PathBuf, i32)>,
        /// Every write, in order, as (path, value).
        writes: std::cell::RefCell<Vec<(PathBuf, String)>>,
        /// Whether the intruder came in already.
        intruded: Cell<bool>,
    }

    impl FakeCgroupFs {
        /// A root cgroup with all of `controllers` available and delegated.
        fn new(controllers: &str) -> Self {
            let root = tempfile::tempdir().unwrap();
            for (file, content) in [
                ("cgroup.controllers", controllers),
                ("cgroup.subtree_control", controllers),
                ("cgroup.procs", "1\n"),
            ] {
                fs::write(root.path().join(file), content).unwrap();
            }
            Self {
                root,
                intruder: None,
                writes: Default::default(),
                intruded: Cell::new(false),
            }
        }

        /// Makes cgroup `name` below the root holding `pids`.
        fn cgroup(&self, name: &str, pids: &[i32]) -> PathBuf {
            let dir = self.root.path().join(name);
            assert!(self.mkdir(&dir).unwrap());
            for pid in pids {
                self.write(&dir.join("cgroup.procs"), &pid.to_string())
                    .unwrap();
            }
            self.writes.borrow_mut().clear();
            dir
        }

        fn text(&self, path: &Path) -> String {
            fs::read_to_string(path).unwrap()
        }

        fn pids(&self, dir: &Path) -> Vec<i32> {
            parse_pids(&self.text(&dir.join("cgroup.procs")))
        }

        fn controllers(&self, dir: &Path, file: &str) -> Vec<String> {
            parse::controller_list(&self.text(&dir.join(file)))
        }

        /// Every cgroup of the tree.
        fn all_cgroups(&self) -> Vec<PathBuf> {
            fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
                out.push(dir.to_path_buf());
                for e in fs::read_dir(dir).unwrap().flatten() {
                    if e.file_type().unwrap().is_dir() {
                        walk(&e.path(), out);
                    }
                }
            }
            let mut out = Vec::new();
            walk(self.root.path(), &mut out);
            out
        }

        fn delegates(&self, dir: &Path) -> bool {
            dir != self.root.path() && !self.controllers(dir, "cgroup.subtree_control").is_empty()
        }

        fn move_pid(&self, dir: &Path, pid: i32) -> io::Result<()> {
            if self.delegates(dir) {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            for cg in self.all_cgroups() {
                let left: Vec<String> = self
                    .pids(&cg)
                    .into_iter()
                    .filter(|p| *p != pid)
                    .map(|p| format!("{p}\n"))
                    .collect();
                fs::write(cg.join("cgroup.procs"), left.concat())?;
            }
            let mut pids = self.pids(dir);
            pids.push(pid);
            let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
            fs::write(dir.join("cgroup.procs"), text)
        }

        fn change_subtree(&self, dir: &Path, value: &str) -> io::Result<()> {
            if dir != self.root.path() && !self.pids(dir).is_empty() {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            let available = self.controllers(dir, "cgroup.controllers");
            let mut enabled = self.controllers(dir, "cgroup.subtree_control");
            for token in value.split_whitespace() {
                let (add, name) = match token.split_at(1) {
                    ("+", name) => (true, name),
                    ("-", name) => (false, name),
                    _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
                };
                if !available.iter().any(|a| a == name) {
                    return Err(io::Error::from_raw_os_error(libc::ENOENT));
                }
                enabled.retain(|e| e != name);
                if add {
                    enabled.push(name.to_owned());
                }
            }
            let text = enabled.join(" ");
            fs::write(dir.join("cgroup.subtree_control"), &text)?;
            for e in fs::read_dir(dir)?.flatten() {
                if e.file_type()?.is_dir() {
                    fs::write(e.path().join("cgroup.controllers"), &text)?;
                }
            }
            Ok(())
        }
    }

    impl CgroupFs for FakeCgroupFs {
        fn read(&self, path: &Path) -> io::Result<String> {
            fs::read_to_string(path)
        }

        fn write(&self, path: &Path, value: &str) -> io::Result<()> {
            self.writes
                .borrow_mut()
                .push((path.to_path_buf(), value.to_owned()));
            let dir = path.parent().unwrap();
            match path.file_name().and_then(|n| n.to_str()) {
                Some("cgroup.procs") => {
                    self.move_pid(dir, value.trim().parse().unwrap())?;
                    if let (Some((into, pid)), false) = (&self.intruder, self.intruded.get()) {
                        self.intruded.set(true);
                        self.move_pid(into, *pid)?;
                    }
                    Ok(())
                }
                Some("cgroup.subtree_control") => self.change_subtree(dir, value),
                _ => {
                    fs::metadata(path)?; // No `create`, as on cgroupfs.
                    fs::write(path, value)
                }
            }
        }

        fn mkdir(&self, path: &Path) -> io::Result<bool> {
            match fs::create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            }
            let parent = path.parent().unwrap();
            let available = self.text(&parent.join("cgroup.subtree_control"));
            fs::write(path.join("cgroup.controllers"), available)?;
            fs::write(path.join("cgroup.subtree_control"), "")?;
            fs::write(path.join("cgroup.procs"), "")?;
            Ok(true)
        }
    }

    fn parse_pids(text: &str) -> Vec<i32> {
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    const ME: i32 = 4242;
    const ALL: &str = "cpuset cpu io memory pids";

    /// Runs detection's v2 steps on `fs`: enable in `base`, then make the group
    /// below it and enable the box controllers there.
    fn delegate(fs: &FakeCgroupFs, base: &Path) -> std::result::Result<Vec<String>, String> {
        let available = fs.controllers(base, "cgroup.controllers");
        enable_own(fs, base, ME, &available)?;
        let group = base.join("runbox-4242-0");
        fs.mkdir(&group).unwrap();
        let group_available = fs.controllers(&group, "cgroup.controllers");
        enable(fs, &group, &group_available).map_err(|e| format!("{e:?}"))
    }

    /// Asserts that nothing was written to any `cgroup.procs`.
    fn assert_no_process_moved(fs: &FakeCgroupFs) {
        assert!(
            fs.writes
                .borrow()
                .iter()
                .all(|(p, _)| !p.ends_with("cgroup.procs"))
        );
    }

    #[test]
    fn alone_in_our_cgroup_we_move_into_the_supervisor_leaf_and_delegate() {
        let fs = FakeCgroupFs::new(ALL);
        let own = fs.cgroup("svc", &[ME]);
        let enabled = delegate(&fs, &own).unwrap();
        let leaf = own.join(SUPERVISOR);
        assert_eq!(fs.pids(&leaf), vec![ME]);
        assert!(fs.pids(&own).is_empty());
        assert_eq!(
            fs.controllers(&own, "cgroup.subtree_control"),
            ["memory", "pids", "cpu", "cpuset"]
        );
        assert_eq!(enabled, ["memory", "pids", "cpu", "cpuset"]);
        let group = own.join("runbox-4242-0");
        assert_eq!(
            fs.controllers(&group, "cgroup.subtree_control"),
            ["memory", "pids", "cpu", "cpuset"]
        );
        // The writes, in order: the refused one, our move, the delegation.
        let writes = fs.writes.borrow();
        let subtree = own.join("cgroup.subtree_control");
        assert_eq!(writes[0], (subtree.clone(), "+memory +pids".into()));
        assert_eq!(writes[1], (leaf.join("cgroup.procs"), ME.to_string()));
        assert_eq!(writes[2], (subtree, "+memory +pids".into()));
        // The only process ever written anywhere is our own.
        assert!(
            writes
                .iter()
                .filter(|(p, _)| p.ends_with("cgroup.procs"))
                .all(|(p, v)| *v == ME.to_string() && *p == leaf.join("cgroup.procs"))
        );
    }

    #[test]
    fn optional_controllers_are_enabled_only_where_available() {
        let fs = FakeCgroupFs::new("io memory pids");
        let own = fs.cgroup("svc", &[ME]);
        assert_eq!(delegate(&fs, &own).unwrap(), ["memory", "pids"]);
        assert_eq!(
            fs.controllers(&own, "cgroup.subtree_control"),
            ["memory", "pids"]
        );
    }

    #[test]
    fn a_shared_cgroup_moves_nothing_and_explains_the_fix() {
        let fs = FakeCgroupFs::new(ALL);
        let own = fs.cgroup("session.scope", &[77, ME, 78]);
        let err = delegate(&fs, &own).unwrap_err();
        assert!(err.contains("no internal processes"), "{err}");
        assert!(err.contains("pids 77, 78"), "{err}");
        assert!(err.contains("systemd-run --scope -p Delegate=yes"), "{err}");
        assert!(
            err.contains(&own.join("cgroup.subtree_control").display().to_string()),
            "{err}"
        );
        assert_eq!(fs.pids(&own), vec![77, ME, 78]);
        assert!(!own.join(SUPERVISOR).exists());
        assert!(fs.controllers(&own, "cgroup.subtree_control").is_empty());
        assert_no_process_moved(&fs);
    }

    #[test]
    fn a_cgroup_without_us_is_left_alone() {
        let fs = FakeCgroupFs::new(ALL);
        let own = fs.cgroup("other", &[77]);
        let err = delegate(&fs, &own).unwrap_err();
        assert!(err.contains("runbox is not in this cgroup"), "{err}");
        assert_eq!(fs.pids(&own), vec![77]);
        assert!(!own.join(SUPERVISOR).exists());
    }

    #[test]
    fn an_already_delegating_cgroup_needs_no_move() {
        let fs = FakeCgroupFs::new(ALL);
        let own = fs.cgroup("svc", &[]);
        fs.write(&own.join("cgroup.subtree_control"), "+memory +pids")
            .unwrap();
        fs.writes.borrow_mut().clear();
        delegate(&fs, &own).unwrap();
        assert!(!own.join(SUPERVISOR).exists());
        assert_no_process_moved(&fs);
    }

    #[test]
    fn a_second_manager_in_the_leaf_uses_its_parent_and_nests_nothing() {
        let fs = FakeCgroupFs::new(ALL);
        let own = fs.cgroup("svc", &[ME]);
        delegate(&fs, &own).unwrap();
        // The next detection reads `/svc/runbox-supervisor` as our cgroup.
        let leaf = own.join(SUPERVISOR);
        let (base, rel) = base_of(&leaf, "/svc/runbox-supervisor", fs.root.path());
        assert_eq!((base.as_path(), rel.as_str()), (own.as_path(), "/svc"));
        fs.writes.borrow_mut().clear();
        let available = fs.controllers(&base, "cgroup.controllers");
        enable_own(&fs, &base, ME, &available).unwrap();
        assert!(fs.writes.borrow().is_empty(), "{:?}", fs.writes.borrow());
        assert!(!leaf.join(SUPERVISOR).exists());
        assert_eq!(fs.pids(&leaf), vec![ME]);
    }

    #[test]
    fn a_process_joining_during_our_move_is_reported_and_not_moved() {
        let mut fs = FakeCgroupFs::new(ALL);
        let own = fs.cgroup("svc", &[ME]);
        fs.intruder = Some((own.clone(), 99));
        let err = delegate(&fs, &own).unwrap_err();
        assert!(err.contains("pids 99"), "{err}");
        assert_eq!(fs.pids(&own), vec![99]);
        assert_eq!(fs.pids(&own.join(SUPERVISOR)), vec![ME]);
        assert!(fs.controllers(&own, "cgroup.subtree_control").is_empty());
    }

    #[test]
    fn a_controller_missing_from_our_cgroup_is_an_error_not_a_move() {
        let fs = FakeCgroupFs::new("cpu pids");
        let own = fs.cgroup("svc", &[]);
        let err = enable_own(&fs, &own, ME, &["cpu".into(), "pids".into()]).unwrap_err();
        assert!(err.contains("cannot enable 'memory pids'"), "{err}");
        assert!(!own.join(SUPERVISOR).exists());
    }

    #[test]
    fn plan_moves_only_when_cgroup_procs_lists_just_us() {
        let base = Path::new("/sys/fs/cgroup/svc");
        let moved = Plan::MoveSelf {
            leaf: base.join(SUPERVISOR),
            pid: ME,
        };
        assert_eq!(plan_after_busy(base, &REQUIRED, ME, "4242\n"), moved);
        assert_eq!(plan_after_busy(base, &REQUIRED, ME, "\n 4242 \n\n"), moved);
        for procs in [
            "",
            "\n",
            "4242\n1\n",
            "42\n",
            "42420\n",
            "0\n4242\n",
            "x\n4242\n",
        ] {
            assert!(
                matches!(plan_after_busy(base, &REQUIRED, ME, procs), Plan::Refuse(_)),
                "{procs:?}"
            );
        }
    }

    #[test]
    fn refusal_lists_a_few_other_pids_and_names_the_files() {
        let base = Path::new("/sys/fs/cgroup/user.slice/session-2.scope");
        let procs: String = (1..=20).map(|p| format!("{p}\n")).collect();
        let Plan::Refuse(msg) = plan_after_busy(base, &["memory"], ME, &procs) else {
            panic!("moved");
        };
        assert!(msg.contains("pids 1, 2, 3, 4, 5, 6, 7, 8, ... in"), "{msg}");
        assert!(msg.contains("'memory'"), "{msg}");
        assert!(
            msg.contains("/sys/fs/cgroup/user.slice/session-2.scope/cgroup.procs"),
            "{msg}"
        );
        let Plan::Refuse(msg) = plan_after_busy(base, &REQUIRED, ME, "") else {
            panic!("moved");
        };
        assert!(msg.contains("lists no process"), "{msg}");
    }

    #[test]
    fn base_is_the_parent_only_inside_our_supervisor_leaf() {
        let mount = Path::new("/sys/fs/cgroup");
        let svc = mount.join("system.slice/runbox.service");
        assert_eq!(
            base_of(&svc, "/system.slice/runbox.service", mount),
            (svc.clone(), "/system.slice/runbox.service".into())
        );
        assert_eq!(
            base_of(
                &svc.join(SUPERVISOR),
                "/system.slice/runbox.service/runbox-supervisor",
                mount
            ),
            (svc.clone(), "/system.slice/runbox.service".into())
        );
        // Directly below the namespace root.
        assert_eq!(
            base_of(&mount.join(SUPERVISOR), "/runbox-supervisor", mount),
            (mount.to_path_buf(), "/".into())
        );
        // A mount that shows only the leaf: its parent is out of sight.
        assert_eq!(
            base_of(mount, "/runbox-supervisor", mount),
            (mount.to_path_buf(), "/runbox-supervisor".into())
        );
        // A name that merely ends like the leaf.
        let other = mount.join("my-runbox-supervisor");
        assert_eq!(
            base_of(&other, "/my-runbox-supervisor", mount),
            (other.clone(), "/my-runbox-supervisor".into())
        );
    }
}
