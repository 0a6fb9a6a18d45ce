//! What a container engine or a service manager around runbox withholds from its
//! boxes, found out so that `doctor` names the missing flag instead of failing
//! vaguely.
//!
//! A box needs, from whatever runs runbox: `CAP_SYS_ADMIN` and `CAP_MKNOD` (the
//! supervisor makes namespaces, mounts and the `/dev` template before it drops
//! to the box's user namespace), user namespaces the seccomp profile lets
//! through, a `/proc` with nothing mounted over it (the kernel refuses a fresh
//! proc mount in a user namespace while parts of the old one are hidden), and a
//! writable cgroup. On a pure cgroup v2 host started by systemd, that cgroup must
//! also be delegated (`Delegate=yes`): otherwise systemd treats a box's
//! out-of-memory kill as the whole service's and stops it.

use std::path::{Path, PathBuf};

/// The container engine runbox runs under, from the marks each one leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engine {
    /// A Kubernetes pod (its service environment variables).
    Kubernetes,
    /// Podman (`/run/.containerenv`).
    Podman,
    /// Docker (`/.dockerenv`).
    Docker,
    /// Another engine that sets `container=NAME` (systemd-nspawn, LXC, ...).
    Other(String),
}

impl Engine {
    /// The engine of this process, if it runs in a container.
    pub(crate) fn detect() -> Option<Engine> {
        Self::from_marks(
            std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            Path::new("/run/.containerenv").exists(),
            Path::new("/.dockerenv").exists(),
            std::env::var("container").ok(),
        )
    }

    fn from_marks(
        kubernetes: bool,
        containerenv: bool,
        dockerenv: bool,
        container: Option<String>,
    ) -> Option<Engine> {
        if kubernetes {
            Some(Engine::Kubernetes)
        } else if containerenv || container.as_deref() == Some("podman") {
            Some(Engine::Podman)
        } else if dockerenv || container.as_deref() == Some("docker") {
            Some(Engine::Docker)
        } else {
            container.filter(|c| !c.is_empty()).map(Engine::Other)
        }
    }

    /// How to grant what a box needs under this engine (`docs/deploy.md` has
    /// the whole recipe for each).
    pub(crate) fn grant(&self, need: Need) -> String {
        let k8s_privileged = "securityContext.privileged: true (Kubernetes has no field for a \
                              writable cgroup or an unmasked /proc without it; see docs/deploy.md)";
        match (self, need) {
            (Engine::Kubernetes, _) => k8s_privileged.into(),
            (_, Need::Capabilities) => "run the container with --cap-add SYS_ADMIN,MKNOD".into(),
            (Engine::Docker, Need::UnmaskedProc) => {
                "run the container with --security-opt systempaths=unconfined".into()
            }
            (_, Need::UnmaskedProc) => {
                "run the container with --security-opt unmask=/proc/* (podman)".into()
            }
            (_, Need::UserNamespaces) => "the container's seccomp profile refuses user \
                 namespaces: run it with a profile that allows clone, clone3, unshare, setns \
                 and mount (--security-opt seccomp=PROFILE); the default profiles of podman \
                 and Docker allow them to a container with CAP_SYS_ADMIN"
                .into(),
            (_, Need::WritableCgroup) => {
                "run the container with -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
                 (on a pure cgroup v2 host add --cgroupns=host, and keep runbox the only \
                 process of the container's cgroup: it is PID 1 of the image)"
                    .into()
            }
        }
    }
}

/// One thing a box needs from whatever runs runbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// `CAP_SYS_ADMIN` and `CAP_MKNOD` in runbox's own user namespace.
    Capabilities,
    /// A `/proc` with no mount over any part of it.
    UnmaskedProc,
    /// `unshare(CLONE_NEWUSER)` allowed.
    UserNamespaces,
    /// A writable cgroup file system.
    WritableCgroup,
}

const CAP_MKNOD: u32 = 27;
const CAP_SYS_ADMIN: u32 = 21;

/// The capabilities a box's supervisor needs that this process lacks, by name.
pub(crate) fn missing_capabilities() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    missing_in_status(&status)
}

fn missing_in_status(status: &str) -> Vec<&'static str> {
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    [(CAP_SYS_ADMIN, "CAP_SYS_ADMIN"), (CAP_MKNOD, "CAP_MKNOD")]
        .into_iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| name)
        .collect()
}

/// The mounts that hide parts of `/proc` (a container engine's masked and
/// read-only paths), which make the kernel refuse a box its own `/proc`.
pub(crate) fn proc_overmounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    overmounts_in(&text)
}

fn overmounts_in(mountinfo: &str) -> Vec<PathBuf> {
    // systemd's binfmt_misc sits on a permanently empty directory, which the
    // kernel does not count as hiding anything.
    const HARMLESS: &[&str] = &["/proc/sys/fs/binfmt_misc"];
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with("/proc/") && !HARMLESS.contains(point))
        .map(PathBuf::from)
        .collect()
}

/// Whether a child process may make a user namespace; the error number when not.
pub(crate) fn probe_user_namespace() -> Result<(), i32> {
    // SAFETY: fork has no preconditions; the child runs only async-signal-safe
    // system calls (unshare, _exit) before it exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    if pid == 0 {
        // SAFETY: in the forked child: unshare and _exit are async-signal-safe,
        // and errno is read through the libc accessor of this thread.
        unsafe {
            let code = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                0
            } else {
                *libc::__errno_location()
            };
            libc::_exit(code.clamp(0, 255));
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked, with a valid status pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    if waited != pid || !libc::WIFEXITED(status) {
        return Err(libc::ECHILD);
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        errno => Err(errno),
    }
}

/// Whether systemd delegated our cgroup to us (pure cgroup v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delegation {
    /// Our cgroup is in no systemd unit we can see (a container's cgroup
    /// namespace, a cgroup made by hand).
    NoUnit,
    /// The unit owning our cgroup is marked delegated (`Delegate=yes`).
    Delegated(String),
    /// The unit owning our cgroup is not delegated: systemd applies its own
    /// `OOMPolicy=stop` to the boxes' OOM kills and may rearrange the cgroups.
    NotDelegated(String),
}

/// Finds the systemd unit whose cgroup `own` is in (the nearest ancestor named
/// `*.service` or `*.scope`, up to `root`) and reads its delegation mark: the
/// `trusted.delegate` extended attribute (`user.delegate` for a user manager's
/// unit), which systemd 251 and newer set on the cgroup of every unit with
/// `Delegate=yes`.
pub(crate) fn delegation(own: &Path, root: &Path) -> Delegation {
    let Some(unit_dir) = own
        .ancestors()
        .take_while(|dir| dir.starts_with(root) && *dir != root)
        .find(|dir| is_unit_name(dir))
    else {
        return Delegation::NoUnit;
    };
    let unit = unit_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if has_xattr(unit_dir, "trusted.delegate") || has_xattr(unit_dir, "user.delegate") {
        Delegation::Delegated(unit)
    } else {
        Delegation::NotDelegated(unit)
    }
}

fn is_unit_name(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".service") || n.ends_with(".scope"))
}

fn has_xattr(dir: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(path), Ok(name)) = (
        std::ffi::CString::new(dir.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated; a null buffer of size 0 only asks
    // for the value's length.
    let len = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    len >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_is_told_by_its_own_mark() {
        assert_eq!(Engine::from_marks(false, false, false, None), None);
        assert_eq!(
            Engine::from_marks(false, true, false, None),
            Some(Engine::Podman)
        );
        assert_eq!(
            Engine::from_marks(false, false, true, None),
            Some(Engine::Docker)
        );
        assert_eq!(
            Engine::from_marks(true, true, false, None),
            Some(Engine::Kubernetes)
        );
        assert_eq!(
            Engine::from_marks(false, false, false, Some("systemd-nspawn".into())),
            Some(Engine::Other("systemd-nspawn".into()))
        );
        assert_eq!(
            Engine::from_marks(false, false, false, Some(String::new())),
            None
        );
    }

    #[test]
    fn podman_and_docker_are_told_their_own_flags() {
        assert!(
            Engine::Podman
                .grant(Need::UnmaskedProc)
                .contains("--security-opt unmask=/proc/*")
        );
        assert!(
            Engine::Docker
                .grant(Need::UnmaskedProc)
                .contains("systempaths=unconfined")
        );
        assert!(
            Engine::Podman
                .grant(Need::Capabilities)
                .contains("--cap-add SYS_ADMIN,MKNOD")
        );
        assert!(
            Engine::Docker
                .grant(Need::WritableCgroup)
                .contains("-v /sys/fs/cgroup:/sys/fs/cgroup:rw")
        );
        assert!(
            Engine::Kubernetes
                .grant(Need::WritableCgroup)
                .contains("privileged: true")
        );
    }

    #[test]
    fn capabilities_are_read_from_the_effective_set() {
        let all = "CapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert!(missing_in_status(all).is_empty());
        // podman's default set: no CAP_SYS_ADMIN (21), no CAP_MKNOD (27).
        let podman = "CapEff:\t00000000800405fb\n";
        assert_eq!(missing_in_status(podman), ["CAP_SYS_ADMIN", "CAP_MKNOD"]);
        let with_sys_admin = "CapEff:\t00000000802405fb\n";
        assert_eq!(missing_in_status(with_sys_admin), ["CAP_MKNOD"]);
        assert_eq!(
            missing_in_status("no such line"),
            ["CAP_SYS_ADMIN", "CAP_MKNOD"]
        );
    }

    #[test]
    fn masked_proc_paths_are_found_and_binfmt_misc_is_not_one() {
        let host = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
45 22 0:40 / /proc/sys/fs/binfmt_misc rw,relatime shared:25 - autofs systemd-1 rw
";
        assert!(overmounts_in(host).is_empty());
        let container = "\
600 590 0:60 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
601 600 0:61 /bus /proc/bus ro,relatime - proc proc rw
602 600 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw
603 590 0:62 / /sys rw - sysfs sysfs rw
";
        assert_eq!(
            overmounts_in(container),
            [PathBuf::from("/proc/bus"), PathBuf::from("/proc/kcore")]
        );
    }

    #[test]
    fn a_cgroup_outside_any_unit_has_no_unit_to_delegate() {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("runbox/inner");
        std::fs::create_dir_all(&own).unwrap();
        assert_eq!(delegation(&own, root.path()), Delegation::NoUnit);
        // The root itself is never taken for a unit, whatever its name.
        assert_eq!(delegation(root.path(), root.path()), Delegation::NoUnit);
    }

    #[test]
    fn a_unit_without_the_delegate_mark_is_not_delegated() {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("system.slice/runbox.service");
        std::fs::create_dir_all(&own).unwrap();
        // tmpfs refuses `trusted.*` to a test that is not root, and a fresh
        // directory carries no mark either way.
        assert_eq!(
            delegation(&own, root.path()),
            Delegation::NotDelegated("runbox.service".into())
        );
        assert_eq!(
            delegation(&own.join("runbox-supervisor"), root.path()),
            Delegation::NotDelegated("runbox.service".into())
        );
    }

    #[test]
    fn a_unit_with_the_delegate_mark_is_delegated() {
        // A user manager's mark (`user.delegate`): any file system with user
        // extended attributes can carry it, as the temporary directory's does.
        let root = tempfile::tempdir().unwrap();
        let unit = root.path().join("user.slice/app.scope");
        std::fs::create_dir_all(unit.join("runbox-supervisor")).unwrap();
        let path = std::ffi::CString::new(unit.to_str().unwrap()).unwrap();
        // SAFETY: NUL-terminated path and name, a one-byte value that outlives the call.
        let set = unsafe {
            libc::setxattr(
                path.as_ptr(),
                c"user.delegate".as_ptr(),
                b"1".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
        assert_eq!(
            delegation(&unit.join("runbox-supervisor"), root.path()),
            Delegation::Delegated("app.scope".into())
        );
    }
}
