//! What this host supports, checked for real: the data behind `runbox doctor`.

use crate::cgroup::{self, CgroupManager, CgroupVersion};
use crate::confinement::{self, Delegation, Engine, Need};
use crate::{BoxConfig, Sandbox, SandboxOptions, Status, namespaces};

/// One checked feature.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked, e.g. "user namespaces".
    pub name: &'static str,
    /// Whether it works.
    pub ok: bool,
    /// Whether the sandbox is unsafe or unusable without it.
    pub required: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it fails.
    pub fix: Option<String>,
}

/// Which mechanism enforces a limit on this host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enforcement {
    /// The limit, e.g. "memory".
    pub limit: &'static str,
    /// The mechanism, e.g. "cgroup v1 memory.memsw.limit_in_bytes".
    pub mechanism: String,
}

/// The whole diagnosis.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnosis {
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// How each limit is enforced.
    pub enforcement: Vec<Enforcement>,
}

impl Diagnosis {
    /// Whether every required check passed: boxes are safe here.
    pub fn is_safe(&self) -> bool {
        self.checks.iter().all(|c| c.ok || !c.required)
    }
}

/// Whether boxes could be given network (`network.enabled`): the programs it
/// needs are installed. Optional: without it, no box has network.
fn network_available() -> Result<String, (String, String)> {
    let options = crate::network::NetworkOptions::default();
    let missing: Vec<String> = [&options.slirp4netns, &options.nft]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok(
            "slirp4netns and nft found (boxes get network only when the operator enables it)"
                .into(),
        )
    } else {
        Err((
            format!("{} missing: boxes can have no network", missing.join(", ")),
            "apt-get install slirp4netns nftables (only to allow network.enabled)".into(),
        ))
    }
}

fn check(name: &'static str, required: bool, result: Result<String, (String, String)>) -> Check {
    match result {
        Ok(detail) => Check {
            name,
            ok: true,
            required,
            detail,
            fix: None,
        },
        Err((detail, fix)) => Check {
            name,
            ok: false,
            required,
            detail,
            fix: Some(fix),
        },
    }
}

/// Checks the host, ending with a real box run when everything it needs is there.
pub fn diagnose(options: &SandboxOptions) -> Diagnosis {
    let mut checks = Vec::new();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    checks.push(check(
        "running as root",
        true,
        if root {
            Ok("euid 0".into())
        } else {
            Err((
                "not root".into(),
                "run runbox as root (boxes drop to an unprivileged uid)".into(),
            ))
        },
    ));
    let engine = Engine::detect();
    checks.push(check(
        "user namespaces",
        true,
        user_namespaces(root, engine.as_ref()),
    ));
    if root {
        checks.push(check("capabilities", true, capabilities(engine.as_ref())));
    }
    checks.push(check(
        "an unmasked /proc",
        true,
        unmasked_proc(engine.as_ref()),
    ));

    let cgroups = if root {
        CgroupManager::detect(&format!("runbox-doctor-{}", std::process::id()))
    } else {
        Ok(None)
    };
    let version = match &cgroups {
        Ok(Some(manager)) => {
            let controllers = manager.describe();
            let detail = controllers
                .iter()
                .map(|c| {
                    format!(
                        "{} {} ({})",
                        c.name,
                        if c.usable { "writable" } else { "NOT writable" },
                        c.path.display()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let version = manager.version();
            checks.push(check("cgroups", true, Ok(format!("{version:?}: {detail}"))));
            Some(version)
        }
        Ok(None) => {
            checks.push(check(
                "cgroups",
                true,
                Err(no_writable_cgroup(engine.as_ref())),
            ));
            None
        }
        Err(e) => {
            checks.push(check(
                "cgroups",
                true,
                Err((
                    e.to_string(),
                    "give runbox a cgroup of its own that it may manage: a systemd unit with \
                     Delegate=yes (deploy/systemd/), or `systemd-run --scope -p Delegate=yes \
                     runbox ...` from a shell"
                        .into(),
                )),
            ));
            None
        }
    };
    drop(cgroups);
    if root && let Some(own) = cgroup::own_v2_dir() {
        checks.push(check("systemd delegation", true, delegated(&own)));
    }

    checks.push(check("seccomp", true, seccomp_available()));
    checks.push(check("pidfd", true, pidfd_available()));
    checks.push(check("landlock", false, landlock_abi()));
    checks.push(check("overlayfs", false, filesystem_available("overlay")));
    checks.push(check("network for boxes", false, network_available()));

    if checks.iter().all(|c| c.ok || !c.required) {
        checks.push(check("a real box", true, smoke_test(options)));
    }
    Diagnosis {
        checks,
        enforcement: enforcement(version),
    }
}

/// User namespaces, tried for real: a sysctl, a seccomp profile or an LSM can
/// each refuse them.
fn user_namespaces(root: bool, engine: Option<&Engine>) -> Result<String, (String, String)> {
    if !namespaces::user_namespaces_available() {
        return Err((
            "/proc/sys/user/max_user_namespaces is 0".into(),
            "sysctl -w user.max_user_namespaces=15000".into(),
        ));
    }
    if !root {
        return Ok("enabled".into());
    }
    match confinement::probe_user_namespace() {
        Ok(()) => Ok("enabled (a child made one)".into()),
        Err(errno) => Err((
            format!(
                "unshare(CLONE_NEWUSER) failed: {} although user.max_user_namespaces allows them",
                std::io::Error::from_raw_os_error(errno)
            ),
            match engine {
                Some(engine) => engine.grant(Need::UserNamespaces),
                None => "a seccomp filter or a security module (AppArmor's \
                         restrict_unprivileged_userns, SELinux) refuses them to runbox: allow \
                         user namespaces for it"
                    .into(),
            },
        )),
    }
}

/// The capabilities the supervisor uses before a box drops them all.
fn capabilities(engine: Option<&Engine>) -> Result<String, (String, String)> {
    let missing = confinement::missing_capabilities();
    if missing.is_empty() {
        return Ok("CAP_SYS_ADMIN and CAP_MKNOD (boxes get none)".into());
    }
    Err((
        format!("{} missing", missing.join(" and ")),
        match engine {
            Some(engine) => engine.grant(Need::Capabilities),
            None => "run runbox as root with CAP_SYS_ADMIN and CAP_MKNOD (a unit's \
                     CapabilityBoundingSet= must keep them)"
                .into(),
        },
    ))
}

/// A fresh proc mount in a box's user namespace is refused while parts of ours
/// are hidden by other mounts.
fn unmasked_proc(engine: Option<&Engine>) -> Result<String, (String, String)> {
    let over = confinement::proc_overmounts();
    if over.is_empty() {
        return Ok("nothing mounted over /proc".into());
    }
    let shown: Vec<String> = over
        .iter()
        .take(4)
        .map(|p| p.display().to_string())
        .collect();
    Err((
        format!(
            "/proc is masked ({}{}): the kernel refuses a box its own /proc",
            shown.join(", "),
            if over.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ),
        match engine {
            Some(engine) => engine.grant(Need::UnmaskedProc),
            None => format!("unmount what is mounted over /proc ({})", shown.join(", ")),
        },
    ))
}

/// Why no cgroup hierarchy is usable, when nothing failed outright.
fn no_writable_cgroup(engine: Option<&Engine>) -> (String, String) {
    let read_only = cgroup::read_only_mounts();
    if read_only.is_empty() {
        return (
            "no writable hierarchy with memory, pids and cpu accounting below this process's cgroup".into(),
            "on cgroup v2 start runbox in a delegated cgroup (systemd: Delegate=yes); on v1 mount memory, pids and cpuacct".into(),
        );
    }
    let shown: Vec<String> = read_only
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    (
        format!(
            "cgroup is mounted read-only ({}{})",
            shown.join(", "),
            if read_only.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ),
        match engine {
            Some(engine) => engine.grant(Need::WritableCgroup),
            None => "remount the cgroup file systems read-write".into(),
        },
    )
}

/// On pure cgroup v2, whether systemd knows runbox manages the cgroups below
/// its own: without `Delegate=yes` a box's out-of-memory kill stops the unit.
fn delegated(own: &std::path::Path) -> Result<String, (String, String)> {
    match confinement::delegation(own, std::path::Path::new("/sys/fs/cgroup")) {
        Delegation::NoUnit => Ok(format!(
            "{} is in no systemd unit (a container's or a hand-made cgroup)",
            own.display()
        )),
        Delegation::Delegated(unit) => Ok(format!("{unit} has Delegate=yes")),
        Delegation::NotDelegated(unit) => Err((
            format!(
                "{unit} is not delegated: systemd does not know runbox manages the cgroups \
                 below it, and the first out-of-memory kill in a box stops the whole unit \
                 (OOMPolicy=stop)"
            ),
            format!(
                "set Delegate=yes and OOMPolicy=continue in {unit} (as deploy/systemd/*.service \
                 do), or start runbox with `systemd-run --scope -p Delegate=yes runbox ...`"
            ),
        )),
    }
}

fn seccomp_available() -> Result<String, (String, String)> {
    // SAFETY: PR_GET_SECCOMP only reads this thread's mode.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
    if mode >= 0 {
        let denied = crate::seccomp::denied_syscalls();
        Ok(format!(
            "seccomp-bpf; boxes refuse {} system calls ({}, ...)",
            denied.len(),
            denied[..4].join(", ")
        ))
    } else {
        Err((
            "prctl(PR_GET_SECCOMP) failed".into(),
            "use a kernel built with CONFIG_SECCOMP_FILTER".into(),
        ))
    }
}

fn pidfd_available() -> Result<String, (String, String)> {
    // SAFETY: pidfd_open on our own pid; the returned descriptor is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd >= 0 {
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd as i32) };
        Ok("pidfd_open works".into())
    } else {
        Err((
            "pidfd_open failed".into(),
            "runbox needs Linux 5.3 or newer".into(),
        ))
    }
}

fn landlock_abi() -> Result<String, (String, String)> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with the VERSION flag, landlock_create_ruleset only returns the ABI version.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi > 0 {
        Ok(format!(
            "ABI version {abi} (not needed: boxes get their own root)"
        ))
    } else {
        Err((
            "not available".into(),
            "optional; enable with lsm=landlock,... on the kernel command line".into(),
        ))
    }
}

fn filesystem_available(name: &str) -> Result<String, (String, String)> {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some(name))
    {
        Ok("available".into())
    } else {
        Err((
            "not listed in /proc/filesystems (may be a module not yet loaded)".into(),
            format!("modprobe {name}"),
        ))
    }
}

/// Runs `true` in a box: the one check that proves every piece works together.
fn smoke_test(options: &SandboxOptions) -> Result<String, (String, String)> {
    let fix = "see the error; `RUST_LOG=debug runbox sandbox -- /bin/true` shows more".to_string();
    let sandbox = Sandbox::new(options.clone()).map_err(|e| (e.to_string(), fix.clone()))?;
    match sandbox.run(&BoxConfig::new(["/bin/true"])) {
        Ok(outcome) if outcome.status == Status::Ok => Ok(format!(
            "/bin/true ran in {:.2} ms wall",
            outcome.wall_time.as_secs_f64() * 1e3
        )),
        Ok(outcome) => Err((format!("/bin/true ended as {}", outcome.status), fix)),
        Err(e) => Err((e.to_string(), fix)),
    }
}

fn enforcement(version: Option<CgroupVersion>) -> Vec<Enforcement> {
    let cg = |v1: &str, v2: &str, fallback: &str| match version {
        Some(CgroupVersion::V1) => v1.to_string(),
        Some(CgroupVersion::V2) => v2.to_string(),
        None => fallback.to_string(),
    };
    vec![
        Enforcement {
            limit: "cpu time",
            mechanism: cg(
                "cgroup v1 cpuacct.usage, polled; RLIMIT_CPU per process as backstop",
                "cgroup v2 cpu.stat usage_usec, polled; RLIMIT_CPU per process as backstop",
                "RLIMIT_CPU per process only (no whole-box accounting)",
            ),
        },
        Enforcement {
            limit: "wall time",
            mechanism: "supervisor timer, then SIGKILL of the box's init".into(),
        },
        Enforcement {
            limit: "memory",
            mechanism: cg(
                "cgroup v1 memory.limit_in_bytes + memory.memsw.limit_in_bytes, OOM via memory.oom_control",
                "cgroup v2 memory.max + memory.swap.max=0, OOM via memory.events",
                "NOT ENFORCED (no memory cgroup)",
            ),
        },
        Enforcement {
            limit: "processes",
            mechanism: cg(
                "cgroup v1 pids.max + RLIMIT_NPROC",
                "cgroup v2 pids.max + RLIMIT_NPROC",
                "RLIMIT_NPROC only",
            ),
        },
        Enforcement {
            limit: "output",
            mechanism: "supervisor reads the pipes and stops at the cap".into(),
        },
        Enforcement {
            limit: "file size",
            mechanism: "RLIMIT_FSIZE".into(),
        },
        Enforcement {
            limit: "open files",
            mechanism: "RLIMIT_NOFILE".into(),
        },
        Enforcement {
            limit: "stack",
            mechanism: "RLIMIT_STACK".into(),
        },
        Enforcement {
            limit: "disk (/box, /tmp, /dev/shm)",
            mechanism: "tmpfs size= per mount".into(),
        },
    ]
}
