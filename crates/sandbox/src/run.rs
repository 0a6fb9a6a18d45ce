//! One run, seen from the supervisor: prepare, clone the box, watch it, measure it,
//! tear it down.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use crate::Sandbox;
use crate::cgroup::{BoxCgroup, CgroupLimits};
use crate::config::{BoxConfig, DEFAULT_ENV};
use crate::error::{Error, Result};
use crate::init::{self, ChildFds, ChildPlan, REPORT_LEN, Report};
use crate::mounts::{BOX_UID, MountPlan};
use crate::namespaces::{self, Slot};
use crate::outcome::{LimitHit, Outcome, Status, signal_name};
use crate::sys;

/// Namespaces every box gets; the network namespace is joined, not created.
const NAMESPACES: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// `CLONE_INTO_CGROUP` (Linux 5.7), not yet in every libc release.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` (version 2, with the cgroup field).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A running box as the supervisor holds it.
struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

impl Child {
    /// SIGKILL to the box's init: the kernel then kills everything in its PID namespace.
    fn kill(&self) {
        // SAFETY: pidfd_send_signal on a pidfd we own; it cannot hit a reused pid.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                0,
                0,
            )
        };
    }

    /// Waits for the init to end; returns its rusage (which covers every process of
    /// the box, since the init reaped them all).
    fn reap(&mut self) -> libc::rusage {
        // SAFETY: wait4 on our own child, writing into locals.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut status = 0;
        loop {
            // SAFETY: as above.
            let rc = unsafe { libc::wait4(self.pid, &mut status, libc::__WALL, &mut usage) };
            if rc >= 0 || sys::errno() != libc::EINTR {
                break;
            }
        }
        self.reaped = true;
        usage
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            self.reap();
        }
    }
}

/// Collected output of one stream, kept up to a cap.
struct Capture {
    fd: Option<OwnedFd>,
    data: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn new(fd: OwnedFd, cap: u64) -> Result<Capture> {
        sys::set_nonblocking(&fd)?;
        Ok(Capture {
            fd: Some(fd),
            data: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            truncated: false,
        })
    }

    /// Reads what is available; closes the stream at end of file.
    fn read_available(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a local buffer of the given length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let n = n as usize;
                let room = self.cap.saturating_sub(self.data.len());
                self.data.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    self.truncated = true;
                    return;
                }
            } else if n == 0 {
                self.fd = None;
                return;
            } else if sys::errno() != libc::EINTR {
                // EAGAIN: nothing more for now. Any other error: treat as closed.
                if sys::errno() != libc::EAGAIN {
                    self.fd = None;
                }
                return;
            }
        }
    }
}

/// Everything the supervisor owns for one run; dropping it tears the box down.
pub(crate) fn run(sandbox: &Sandbox, config: &BoxConfig) -> Result<Outcome> {
    config.validate()?;
    let mut slot = SlotGuard {
        sandbox,
        slot: Some(sandbox.slots.take()),
    };
    let slot_ref = slot.get_mut();
    if slot_ref.netns.is_none() {
        slot_ref.netns = Some(namespaces::new_empty_netns()?);
    }
    let slot_ref = slot.get();

    let limits = &config.limits;
    let cgroup = match &sandbox.cgroups {
        Some(manager) => {
            // tmpfs pages are charged to the box's memory cgroup: add the disk budgets
            // so a full /tmp gives ENOSPC, never an OOM kill.
            let disk = limits.tmp_bytes + limits.box_bytes + limits.shm_bytes;
            let wanted = CgroupLimits {
                memory_bytes: limits.memory_bytes + disk,
                pids: limits.processes + 1,
                cpus: config.cpus.clone(),
            };
            Some(CgroupGuard {
                sandbox,
                cgroup: Some(manager.acquire(&wanted)?),
            })
        }
        None => None,
    };

    for bind in config.binds.iter().filter(|b| b.writable) {
        std::os::unix::fs::lchown(
            &bind.host,
            Some(slot_ref.host_user),
            Some(slot_ref.host_user),
        )
        .map_err(|e| Error::io("cannot hand directory to the box user", &bind.host, e))?;
    }

    let mounts = MountPlan::build(config, &sandbox.root_dir, &sandbox.host_layout)?;
    let (go_r, go_w) = sys::pipe()?;
    let (report_r, report_w) = sys::pipe()?;
    let (stdout_r, stdout_w) = sys::pipe()?;
    let (stderr_r, stderr_w) = sys::pipe()?;
    let stdin = sys::memfd_with(&config.stdin)?;
    let fds = ChildFds {
        go: go_r.as_raw_fd(),
        report: report_w.as_raw_fd(),
        stdin: stdin.as_raw_fd(),
        stdout: stdout_w.as_raw_fd(),
        stderr: stderr_w.as_raw_fd(),
    };
    let mut init_keep = [fds.go, fds.report, fds.stdin, fds.stdout, fds.stderr];
    init_keep.sort_unstable();
    let mut program_stack = vec![0u8; PROGRAM_STACK];
    let mut plan = ChildPlan {
        mounts: &mounts,
        seccomp: &sandbox.seccomp,
        fds,
        init_keep,
        candidates: program_candidates(config)?,
        argv: cstrings(config.command.iter().map(String::as_bytes))?,
        envp: cstrings(
            config
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}").into_bytes()),
        )?,
        argv_ptrs: Vec::new(),
        envp_ptrs: Vec::new(),
        cwd: CString::new(config.cwd.as_os_str().as_bytes())
            .map_err(|_| Error::InvalidConfig("NUL in cwd".into()))?,
        rlimits: rlimits(limits),
        cap_last: sandbox.cap_last,
        program_stack_top: stack_top(&mut program_stack),
    };
    plan.finish_pointers();

    let cgroup_fd = cgroup
        .as_ref()
        .and_then(|c| c.get().clone_into_fd())
        .map(|fd| fd.as_raw_fd());
    let netns = slot_ref
        .netns
        .as_ref()
        .ok_or_else(|| Error::Cgroup("slot without network namespace".into()))?;
    let mut child = clone_box(&plan, netns, &sandbox.host_netns, cgroup_fd)?;
    drop((go_r, report_w, stdin, stdout_w, stderr_w));

    namespaces::write_id_maps(child.pid, slot_ref, BOX_UID)?;
    if let (Some(cg), None) = (&cgroup, cgroup_fd) {
        cg.get().add_process(child.pid)?;
    }
    let start = Instant::now();
    sys::write_all(go_w.as_raw_fd(), b"g").map_err(|e| Error::Syscall {
        call: "write(go)",
        source: io::Error::from_raw_os_error(e),
    })?;

    let watch = Watch {
        child: &child,
        cgroup: cgroup.as_ref().map(CgroupGuard::get),
        stdout: Capture::new(stdout_r, limits.output_bytes)?,
        stderr: Capture::new(stderr_r, limits.output_bytes)?,
        report_fd: report_r,
        report: None,
        report_buf: Vec::new(),
        killed_for: None,
        start,
        ended: None,
    };
    let watched = watch.watch(limits.cpu_time, limits.wall_time)?;
    let rusage = child.reap();
    // Held open until now: the box's init treats a hang-up as the supervisor's death.
    drop(go_w);

    let (cpu_time, memory_kb, oom_killed) = match &cgroup {
        Some(cg) => {
            let usage = cg.get().usage()?;
            (
                usage.cpu_time,
                usage.memory_peak_bytes / 1024,
                usage.oom_killed,
            )
        }
        None => (rusage_cpu(&rusage), rusage.ru_maxrss as u64, false),
    };

    let report = match watched.report {
        Some(Report::SetupFailed { step, errno }) => {
            let what = init::Step::describe(step).unwrap_or_else(|| mounts.describe(step));
            return Err(Error::Setup {
                step: what.to_string(),
                source: io::Error::from_raw_os_error(errno),
            });
        }
        Some(Report::ExecFailed { errno }) => {
            return Err(Error::Exec {
                command: config.command[0].clone(),
                source: io::Error::from_raw_os_error(errno),
            });
        }
        other => other,
    };

    let mut outcome = Outcome {
        status: Status::InternalError,
        exit_code: None,
        signal: None,
        stdout: watched.stdout.data,
        stderr: watched.stderr.data,
        stdout_truncated: watched.stdout.truncated,
        stderr_truncated: watched.stderr.truncated,
        cpu_time,
        wall_time: watched.wall_time,
        memory_kb,
        limit_hit: None,
    };
    match report {
        Some(Report::Exited { wait_status }) if libc::WIFEXITED(wait_status) => {
            outcome.exit_code = Some(libc::WEXITSTATUS(wait_status));
        }
        Some(Report::Exited { wait_status }) if libc::WIFSIGNALED(wait_status) => {
            outcome.signal = Some(signal_name(libc::WTERMSIG(wait_status)));
        }
        _ if watched.killed_for.is_some() => outcome.signal = Some("SIGKILL".into()),
        _ => {}
    }
    let limit_hit = watched.killed_for.or_else(|| {
        let signal = outcome.signal.as_deref();
        if oom_killed {
            Some(LimitHit::Memory)
        } else if cpu_time >= limits.cpu_time || signal == Some("SIGXCPU") {
            Some(LimitHit::CpuTime)
        } else if signal == Some("SIGXFSZ") {
            Some(LimitHit::FileSize)
        } else {
            None
        }
    });
    outcome.limit_hit = limit_hit;
    outcome.status = match (limit_hit, report) {
        (Some(LimitHit::CpuTime | LimitHit::WallTime), _) => Status::TimeLimitExceeded,
        (Some(LimitHit::Memory), _) => Status::MemoryLimitExceeded,
        (Some(LimitHit::Output | LimitHit::FileSize), _) => Status::OutputLimitExceeded,
        (None, Some(Report::Exited { .. })) if outcome.exit_code == Some(0) => Status::Ok,
        (None, Some(Report::Exited { .. })) => Status::RuntimeError,
        (None, _) => Status::InternalError,
    };
    drop(child);
    drop(cgroup);
    Ok(outcome)
}

/// What watching a box produced.
struct Watched {
    stdout: Capture,
    stderr: Capture,
    report: Option<Report>,
    killed_for: Option<LimitHit>,
    wall_time: Duration,
}

/// The state of the watch loop.
struct Watch<'a> {
    child: &'a Child,
    cgroup: Option<&'a BoxCgroup>,
    stdout: Capture,
    stderr: Capture,
    report_fd: OwnedFd,
    report: Option<Report>,
    report_buf: Vec<u8>,
    killed_for: Option<LimitHit>,
    start: Instant,
    ended: Option<Instant>,
}

impl Watch<'_> {
    /// Polls the box's output, report and exit until the init has ended, enforcing
    /// the wall, CPU and output limits.
    fn watch(mut self, cpu_limit: Duration, wall_limit: Duration) -> Result<Watched> {
        let deadline = self.start + wall_limit;
        let mut exited = false;
        while !exited {
            let now = Instant::now();
            if self.killed_for.is_none() {
                if now >= deadline {
                    self.kill_for(LimitHit::WallTime);
                } else if let Some(cg) = self.cgroup
                    && cg.cpu_time()? >= cpu_limit
                {
                    self.kill_for(LimitHit::CpuTime);
                }
            }
            let timeout = self.poll_timeout(now, deadline, cpu_limit)?;
            let mut polls = [
                poll_fd(self.child.pidfd.as_raw_fd()),
                poll_fd(self.report_fd.as_raw_fd()),
                poll_fd(self.stdout.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)),
                poll_fd(self.stderr.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)),
            ];
            // SAFETY: `polls` is a valid array of pollfd of the given length.
            let rc =
                unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout) };
            if rc < 0 && sys::errno() != libc::EINTR {
                return Err(Error::last_os("poll"));
            }
            if polls[1].revents != 0 {
                self.read_report();
            }
            for (i, capture) in [(2, &mut self.stdout), (3, &mut self.stderr)] {
                if polls[i].revents != 0 {
                    capture.read_available();
                }
            }
            if (self.stdout.truncated || self.stderr.truncated) && self.killed_for.is_none() {
                self.kill_for(LimitHit::Output);
            }
            exited = polls[0].revents != 0;
        }
        // The init is gone, and with it every process of the box: the pipes hold
        // their last bytes and then end.
        self.read_report();
        self.stdout.read_available();
        self.stderr.read_available();
        let ended = self.ended.unwrap_or_else(Instant::now);
        Ok(Watched {
            wall_time: ended - self.start,
            stdout: self.stdout,
            stderr: self.stderr,
            report: self.report,
            killed_for: self.killed_for,
        })
    }

    fn kill_for(&mut self, hit: LimitHit) {
        self.killed_for = Some(hit);
        self.ended.get_or_insert_with(Instant::now);
        self.child.kill();
    }

    /// How long poll may sleep: until the wall deadline, or sooner when CPU time
    /// could run out (all CPUs of the box burning at once).
    fn poll_timeout(
        &self,
        now: Instant,
        deadline: Instant,
        cpu_limit: Duration,
    ) -> Result<libc::c_int> {
        if self.killed_for.is_some() {
            return Ok(100);
        }
        let mut wait = deadline.saturating_duration_since(now);
        if let Some(cg) = self.cgroup {
            let left = cpu_limit.saturating_sub(cg.cpu_time()?);
            let cpus = sys::online_cpus().max(1);
            wait =
                wait.min((left / cpus).clamp(Duration::from_millis(1), Duration::from_millis(100)));
        }
        Ok(wait.as_millis().clamp(1, 1000) as libc::c_int)
    }

    fn read_report(&mut self) {
        let mut buf = [0u8; REPORT_LEN];
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe {
            libc::read(
                self.report_fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n > 0 {
            self.report_buf.extend_from_slice(&buf[..n as usize]);
        }
        if self.report.is_none() && self.report_buf.len() >= REPORT_LEN {
            let mut raw = [0u8; REPORT_LEN];
            raw.copy_from_slice(&self.report_buf[..REPORT_LEN]);
            self.report = Report::decode(&raw);
            if matches!(self.report, Some(Report::Exited { .. })) {
                self.ended.get_or_insert_with(Instant::now);
            }
        }
    }
}

fn poll_fd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Stack size for the program's process between clone and exec.
const PROGRAM_STACK: usize = 256 << 10;

/// The 16-byte aligned top of `stack` (x86_64 stacks grow down).
fn stack_top(stack: &mut [u8]) -> *mut libc::c_void {
    let end = stack.as_mut_ptr_range().end as usize;
    (end & !15) as *mut libc::c_void
}

/// Clones the box's init into fresh namespaces (joining `netns`) and, on v2, straight
/// into its cgroup. The calling thread visits `netns` only for the clone.
fn clone_box(
    plan: &ChildPlan<'_>,
    netns: &OwnedFd,
    host_netns: &OwnedFd,
    cgroup_fd: Option<RawFd>,
) -> Result<Child> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: NAMESPACES | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    namespaces::enter_netns(netns)?;
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a copy of this
    // address space and continues on a copy of this stack. The child runs only
    // `box_init`, which makes system calls on the prepared plan and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        init::box_init(plan);
    }
    let clone_errno = sys::errno();
    let back = namespaces::enter_netns(host_netns);
    if pid < 0 {
        return Err(Error::Syscall {
            call: "clone3",
            source: io::Error::from_raw_os_error(clone_errno),
        });
    }
    // SAFETY: clone3 with CLONE_PIDFD stored a fresh descriptor that nothing else owns.
    let child = Child {
        pid: pid as libc::pid_t,
        pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        reaped: false,
    };
    back?;
    Ok(child)
}

/// The paths to try for the program: as given when it has a slash, else each
/// directory of the box's PATH.
fn program_candidates(config: &BoxConfig) -> Result<Vec<CString>> {
    let program = &config.command[0];
    if program.contains('/') {
        return cstrings([program.as_bytes()]);
    }
    let default_path = DEFAULT_ENV
        .iter()
        .find(|(k, _)| *k == "PATH")
        .map_or("", |(_, v)| v);
    let path = config
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(default_path, |(_, v)| v.as_str());
    cstrings(
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|dir| format!("{dir}/{program}").into_bytes()),
    )
}

fn cstrings<I, B>(items: I) -> Result<Vec<CString>>
where
    I: IntoIterator<Item = B>,
    B: Into<Vec<u8>>,
{
    items
        .into_iter()
        .map(|b| {
            CString::new(b).map_err(|_| {
                Error::InvalidConfig("an argument or variable contains a NUL byte".into())
            })
        })
        .collect()
}

/// The rlimits set on the program: backstops behind the cgroup, and the limits
/// cgroups do not have (file size, open files, stack).
fn rlimits(limits: &crate::config::Limits) -> Vec<(libc::__rlimit_resource_t, libc::rlimit)> {
    // The CPU rlimit is per process and a second late: the cgroup is the real limit.
    let cpu_secs = limits.cpu_time.as_secs() + 1 + u64::from(limits.cpu_time.subsec_nanos() > 0);
    let wanted = [
        (libc::RLIMIT_CPU, cpu_secs, cpu_secs + 1),
        (
            libc::RLIMIT_FSIZE,
            limits.file_size_bytes,
            limits.file_size_bytes,
        ),
        (libc::RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (libc::RLIMIT_STACK, limits.stack(), limits.stack()),
        (libc::RLIMIT_NPROC, limits.processes, limits.processes),
        (libc::RLIMIT_CORE, 0, 0),
    ];
    wanted
        .into_iter()
        .map(|(resource, soft, hard)| {
            // A box cannot raise a hard limit above the supervisor's own.
            let mut current = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: getrlimit fills a local struct.
            unsafe { libc::getrlimit(resource, &mut current) };
            let hard = hard.min(current.rlim_max);
            (
                resource,
                libc::rlimit {
                    rlim_cur: soft.min(hard),
                    rlim_max: hard,
                },
            )
        })
        .collect()
}

fn rusage_cpu(usage: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec * 1000) as u32);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Gives the slot back however the run ends.
struct SlotGuard<'a> {
    sandbox: &'a Sandbox,
    slot: Option<Slot>,
}

impl SlotGuard<'_> {
    fn get(&self) -> &Slot {
        self.slot.as_ref().expect("slot present until drop")
    }
    fn get_mut(&mut self) -> &mut Slot {
        self.slot.as_mut().expect("slot present until drop")
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.sandbox.slots.give_back(slot);
        }
    }
}

/// Returns the cgroup to the pool however the run ends.
struct CgroupGuard<'a> {
    sandbox: &'a Sandbox,
    cgroup: Option<BoxCgroup>,
}

impl CgroupGuard<'_> {
    fn get(&self) -> &BoxCgroup {
        self.cgroup.as_ref().expect("cgroup present until drop")
    }
}

impl Drop for CgroupGuard<'_> {
    fn drop(&mut self) {
        if let (Some(cg), Some(manager)) = (self.cgroup.take(), &self.sandbox.cgroups) {
            manager.release(cg);
        }
    }
}
