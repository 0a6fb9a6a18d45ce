//! One run, seen from the supervisor: prepare, clone the box, watch it, measure it,
//! and hand its remains to the reaper.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Shared;
use crate::cgroup::{BoxCgroup, CgroupLimits, CgroupUsage, CgroupVersion, MemoryMark};
use crate::config::{BoxConfig, DEFAULT_ENV, Limits};
use crate::error::{Error, Result};
use crate::init::{self, ChildFds, ProgramSpec, Report, Rlimit};
use crate::launcher::{Birth, Launcher};
use crate::live::LiveIo;
use crate::mounts::{BOX_UID, MountPlan};
use crate::namespaces::{self, Slot};
use crate::outcome::{LimitHit, MEMORY_SLACK_BYTES, Outcome, Status, signal_name};
use crate::sys;
use crate::teardown::{Child, Lease, Reaper, Remains};
use crate::tty::{self, StdinPump};
use crate::watch::{self, Watched};

/// Runs one box: see [`crate::Sandbox::run_live`].
pub(crate) fn run(
    shared: &Arc<Shared>,
    reaper: &Reaper,
    config: &BoxConfig,
    io: LiveIo<'_>,
) -> Result<Outcome> {
    check_config(shared, config)?;
    run_leased(shared, reaper, config, io, Lease::take(shared))
}

/// Refuses a configuration this sandbox cannot run, before a slot is taken.
fn check_config(shared: &Shared, config: &BoxConfig) -> Result<()> {
    config.validate()?;
    if config.network && shared.network.is_none() {
        return Err(Error::InvalidConfig(
            "this sandbox gives boxes no network (SandboxOptions::network is not set)".into(),
        ));
    }
    Ok(())
}

/// Runs two boxes at once, each one's stdout piped into the other's stdin: see
/// [`crate::Sandbox::run_pair`].
pub(crate) fn run_pair(
    shared: &Arc<Shared>,
    reaper: &Reaper,
    first: &BoxConfig,
    second: &BoxConfig,
) -> Result<(Outcome, Outcome)> {
    check_config(shared, first)?;
    check_config(shared, second)?;
    if shared.max_boxes < 2 {
        return Err(Error::InvalidConfig(
            "two boxes joined by pipes need two slots: set max_boxes to 2 or more".into(),
        ));
    }
    let (first_in, second_out) = sys::pipe()?;
    let (second_in, first_out) = sys::pipe()?;
    // Both slots are taken before either box starts: a box waiting for its
    // partner's slot would wait on its pipe and run out its wall time. Pairs
    // take their two slots one pair at a time, so two pairs never hold one
    // slot each while waiting for a second that only the other could free.
    let (first_lease, second_lease) = {
        let _turn = shared
            .pair_turn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (Lease::take(shared), Lease::take(shared))
    };
    std::thread::scope(|scope| {
        let partner = scope.spawn(move || {
            let pipes = LiveIo {
                stdin: Some(second_in),
                stdout: Some(second_out),
                ..LiveIo::default()
            };
            run_leased(shared, reaper, second, pipes, second_lease)
        });
        let pipes = LiveIo {
            stdin: Some(first_in),
            stdout: Some(first_out),
            ..LiveIo::default()
        };
        let first = run_leased(shared, reaper, first, pipes, first_lease);
        let second = partner.join().map_err(|_| Error::Syscall {
            call: "run_pair",
            source: io::Error::other("the second box's supervisor thread panicked"),
        })?;
        Ok((first?, second?))
    })
}

/// Runs one box in the slot of `lease`.
fn run_leased(
    shared: &Arc<Shared>,
    reaper: &Reaper,
    config: &BoxConfig,
    io: LiveIo<'_>,
    mut lease: Lease,
) -> Result<Outcome> {
    let limits = &config.limits;
    let wanted = cgroup_limits(shared, config);
    let slot = lease.slot.as_mut().ok_or_else(missing_slot)?;
    ready_slot(shared, slot, wanted.as_ref())?;
    let host_user = slot.host_user;
    if let (Some(manager), Some(wanted), None) = (&shared.cgroups, &wanted, &slot.cgroup) {
        lease.cgroup = Some(manager.acquire(wanted)?);
    }
    for bind in config.binds.iter().filter(|b| b.writable) {
        std::os::unix::fs::lchown(&bind.host, Some(host_user), Some(host_user))
            .map_err(|e| Error::io("cannot hand directory to the box user", &bind.host, e))?;
    }

    let mounts = MountPlan::build(config, &shared.root_dir, &shared.host_layout)?;
    let (go_r, go_w) = sys::pipe()?;
    let (report_r, report_w) = sys::pipe()?;
    let (stdout_r, stdout_w) = sys::pipe()?;
    let (stderr_r, stderr_w) = sys::pipe()?;
    let stdin = match io.stdin {
        Some(pipe) => pipe,
        None => sys::memfd_with(&config.stdin)?,
    };
    // A given stdout replaces the captured pipe, whose write end then goes
    // nowhere: the watcher reads its end of file at once.
    let given_stdout = io.stdout;
    let stdout = given_stdout
        .as_ref()
        .map_or(stdout_w.as_raw_fd(), AsRawFd::as_raw_fd);
    // TTY mode: the socket the init hands the terminal's master over.
    let terminal_socket = config.tty.map(|_| tty::socket_pair()).transpose()?;
    let fds = ChildFds {
        terminal: terminal_socket
            .as_ref()
            .map_or(-1, |(_, theirs)| theirs.as_raw_fd()),
        go: go_r.as_raw_fd(),
        report: report_w.as_raw_fd(),
        stdin: stdin.as_raw_fd(),
        stdout,
        // Merged, both streams share one pipe, so their order is exact.
        stderr: if config.stderr_to_stdout {
            stdout
        } else {
            stderr_w.as_raw_fd()
        },
    };
    let program = ProgramSpec {
        candidates: program_candidates(config)?,
        argv: cstrings(config.command.iter().map(String::as_bytes))?,
        envp: cstrings(
            config
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}").into_bytes()),
        )?,
        cwd: CString::new(config.cwd.as_os_str().as_bytes())
            .map_err(|_| Error::InvalidConfig("NUL in cwd".into()))?,
        rlimits: rlimits(limits),
        tty: config.tty,
        trace: shared.trace_program_memory && config.tty.is_none(),
    };
    // The launcher leaves the slot while it works, so the slot's cgroup can be
    // lent to the birth; it is put back whatever happens.
    let mut launcher = lease
        .slot
        .as_mut()
        .and_then(|slot| slot.launcher.take())
        .ok_or_else(missing_slot)?;
    let (child, placed, cgroup_fd) = {
        let slot = lease.slot.as_ref().ok_or_else(missing_slot)?;
        let box_cgroup = slot.cgroup.as_ref().or(lease.cgroup.as_ref());
        let birth = Birth {
            mounts: &mounts,
            program: &program,
            fds,
            cgroup: box_cgroup.and_then(BoxCgroup::clone_into_fd),
            network: config.network,
        };
        let child = give_birth(shared, &mut launcher, slot, &birth);
        (
            child,
            launcher.placed(),
            birth.cgroup.map(|fd| fd.as_raw_fd()),
        )
    };
    let slot = lease.slot.as_mut().ok_or_else(missing_slot)?;
    slot.launcher = Some(launcher);
    let child = child?;
    // The box holds its own copies now; ours would keep a partner box from
    // seeing the end of its input when this one ends.
    // In TTY mode the supervisor keeps stdin: it is pumped into the terminal.
    let terminal_socket = terminal_socket.map(|(ours, _theirs)| ours);
    let stdin = if terminal_socket.is_some() {
        Some(stdin)
    } else {
        drop(stdin);
        None
    };
    drop((go_r, report_w, stdout_w, stderr_w, given_stdout));
    let attached = match io.signals {
        Some(signals) => Some(signals.attach(child.pidfd_clone()?)),
        None => None,
    };

    namespaces::write_id_maps(child.pid, slot, BOX_UID)?;
    say(&go_w, init::GO_MAPPED)?;
    let cgroup = slot.cgroup.as_ref().or(lease.cgroup.as_ref());
    match (cgroup, cgroup_fd) {
        (Some(cg), None) if placed => cg.complete_placement(child.pid)?,
        (Some(cg), None) => cg.add_process(child.pid)?,
        _ => {}
    }
    // Waits for the link, so the program starts with its network up.
    let link = match (&shared.network, config.network) {
        (Some(network), true) => Some(network.attach(child.pid)?),
        _ => None,
    };
    // What the box used before the program may start (its clone and set-up) is
    // not the program's.
    let meter = cgroup
        .map(|cg| {
            Ok::<_, Error>(Meter {
                cgroup: cg,
                memory_base: cg.memory_baseline()?,
                base: cg.cpu_time()?,
            })
        })
        .transpose()?;
    let start = Instant::now();
    say(&go_w, init::GO_PLACED)?;
    let on_terminal = match (terminal_socket, stdin) {
        (Some(socket), Some(stdin)) => {
            OnTerminal::start(&socket, stdin, io.terminal, start + limits.wall_time)?
        }
        _ => None,
    };
    // On a terminal, the master is the program's output.
    let stdout_r = match &on_terminal {
        Some(terminal) => terminal.output()?,
        None => stdout_r,
    };

    let watched = watch::watch(
        &child,
        meter.as_ref(),
        &report_r,
        watch::OutputPipes {
            stdout: stdout_r,
            stderr: stderr_r,
            live: io.output,
        },
        start,
        limits,
    );
    // The program has ended: nothing more to signal, type or resize.
    drop(attached);
    drop(on_terminal);
    let watched = watched?;
    let usage = meter.as_ref().map(Meter::usage).transpose()?;
    let mut remains = Remains {
        child,
        lease,
        go: go_w,
        network: link,
    };
    let measured = match usage {
        Some(u) => Measured {
            cpu_time: u.cpu_time,
            box_memory: BoxMemory::Cgroup(u.memory_peak_bytes / 1024),
            oom_killed: u.oom_killed,
        },
        None => {
            // Without a cgroup the init's rusage is the only whole-box account.
            remains.child.kill();
            let rusage = remains.child.reap();
            Measured {
                cpu_time: rusage_cpu(&rusage),
                box_memory: BoxMemory::Rusage(rusage.ru_maxrss as u64),
                oom_killed: false,
            }
        }
    };
    if config.binds.iter().any(|b| b.writable) {
        // A leftover process must not write to a host directory after run returns.
        remains.child.kill();
        remains.child.reap();
    }
    reaper.bury(remains);
    outcome(config, &mounts, watched, measured)
}

/// The supervisor's side of a box's terminal (TTY mode) while it runs.
struct OnTerminal<'t> {
    master: OwnedFd,
    /// Stopped and joined when the run ends.
    _pump: StdinPump,
    _attached: Option<tty::AttachedTerminal<'t>>,
}

impl<'t> OnTerminal<'t> {
    /// Receives the master from the box's init and starts pumping `stdin` into
    /// it; `None` when the init sent none (its report says why).
    fn start(
        socket: &OwnedFd,
        stdin: OwnedFd,
        handle: Option<&'t crate::Terminal>,
        deadline: Instant,
    ) -> Result<Option<OnTerminal<'t>>> {
        let Some(master) = tty::receive_master(socket, deadline)? else {
            return Ok(None);
        };
        let pump = StdinPump::start(stdin, dup(&master)?)?;
        let attached = match handle {
            Some(handle) => Some(handle.attach(dup(&master)?)),
            None => None,
        };
        Ok(Some(OnTerminal {
            master,
            _pump: pump,
            _attached: attached,
        }))
    }

    /// The master's read side, for the watcher.
    fn output(&self) -> Result<OwnedFd> {
        dup(&self.master)
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone().map_err(|source| Error::Syscall {
        call: "dup",
        source,
    })
}

/// Writes one word to the box's init on the go pipe.
fn say(go: &OwnedFd, word: u8) -> Result<()> {
    sys::write_all(go.as_raw_fd(), &[word]).map_err(|e| Error::Syscall {
        call: "write(go pipe)",
        source: io::Error::from_raw_os_error(e),
    })
}

/// The box's account, taken when the program ended.
struct Measured {
    cpu_time: Duration,
    box_memory: BoxMemory,
    oom_killed: bool,
}

/// The memory of the whole box, in KiB.
#[derive(Debug, Clone, Copy)]
enum BoxMemory {
    /// Charged to the box's cgroup after the program started, less its tmpfs
    /// files: all its processes, exact to a charge batch per CPU. The memory
    /// limit is judged on it.
    Cgroup(u64),
    /// The init's `ru_maxrss` (a copy of runbox, or the program's largest
    /// process): an upper bound only.
    Rusage(u64),
}

/// The memory figure reported for a run, in KiB (docs/judging.md, "The memory
/// figure"): the program's own peak when it ran as one process and its tracing
/// saw it end, else what the box's cgroup saw (never less than that peak); a
/// memory-limit verdict reports at most `ceiling_kb`.
fn memory_figure(
    box_memory: BoxMemory,
    program_peak_kb: Option<u64>,
    forked: bool,
    over_limit: bool,
    ceiling_kb: u64,
) -> u64 {
    match (box_memory, program_peak_kb) {
        (BoxMemory::Cgroup(kb), peak) if over_limit => kb.max(peak.unwrap_or(0)).min(ceiling_kb),
        (_, Some(peak)) if !forked => peak,
        (BoxMemory::Cgroup(kb), peak) => kb.max(peak.unwrap_or(0)),
        (BoxMemory::Rusage(_), Some(peak)) => peak,
        (BoxMemory::Rusage(kb), None) => kb,
    }
}

/// Turns what was watched and measured into the outcome (or the setup error).
fn outcome(
    config: &BoxConfig,
    mounts: &MountPlan,
    watched: Watched,
    measured: Measured,
) -> Result<Outcome> {
    let limits = &config.limits;
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
    let (program_peak_kb, forked) = match report {
        Some(Report::Exited {
            peak_kb, forked, ..
        }) => (peak_kb.map(u64::from), forked),
        _ => (None, false),
    };
    let (exit_code, signal) = match report {
        Some(Report::Exited { wait_status, .. }) if libc::WIFEXITED(wait_status) => {
            (Some(libc::WEXITSTATUS(wait_status)), None)
        }
        Some(Report::Exited { wait_status, .. }) if libc::WIFSIGNALED(wait_status) => {
            (None, Some(signal_name(libc::WTERMSIG(wait_status))))
        }
        _ if watched.killed_for.is_some() => (None, Some("SIGKILL".to_string())),
        _ => (None, None),
    };
    // The box's cgroup leaves room for its tmpfs budgets beside the memory
    // limit, which the program's own memory may not take.
    let ceiling_kb = limits.memory_bytes.saturating_add(MEMORY_SLACK_BYTES) / 1024;
    let over_memory = matches!(measured.box_memory, BoxMemory::Cgroup(kb) if kb > ceiling_kb);
    // Memory first: a program past its memory limit was only let on (the room of
    // the tmpfs budgets) until the kernel or the watcher stopped it for
    // something else, such as the CPU time its memory bomb took.
    let limit_hit = if measured.oom_killed || over_memory {
        Some(LimitHit::Memory)
    } else {
        watched.killed_for
    };
    let limit_hit = limit_hit.or_else(|| {
        let signal = signal.as_deref();
        if measured.cpu_time >= limits.cpu_time || signal == Some("SIGXCPU") {
            Some(LimitHit::CpuTime)
        } else if signal == Some("SIGXFSZ") {
            Some(LimitHit::FileSize)
        } else {
            None
        }
    });
    let status = match (limit_hit, report) {
        (Some(LimitHit::CpuTime | LimitHit::WallTime), _) => Status::TimeLimitExceeded,
        (Some(LimitHit::Memory), _) => Status::MemoryLimitExceeded,
        (Some(LimitHit::Output | LimitHit::FileSize), _) => Status::OutputLimitExceeded,
        (None, Some(Report::Exited { .. })) if exit_code == Some(0) => Status::Ok,
        (None, Some(Report::Exited { .. })) => Status::RuntimeError,
        (None, _) => Status::InternalError,
    };
    Ok(Outcome {
        status,
        exit_code,
        signal,
        stdout: watched.stdout.data,
        stderr: watched.stderr.data,
        chunks: watched.chunks,
        stdout_truncated: watched.stdout.truncated,
        stderr_truncated: watched.stderr.truncated,
        cpu_time: measured.cpu_time,
        wall_time: watched.wall_time,
        // Past the limit the kernel cut the program short (or it took its files'
        // room): it is reported at the limit, as contest systems do.
        memory_kb: memory_figure(
            measured.box_memory,
            program_peak_kb,
            forked,
            status == Status::MemoryLimitExceeded,
            ceiling_kb,
        ),
        limit_hit,
    })
}

/// Reads a box cgroup's counters relative to the start of the program.
pub(crate) struct Meter<'a> {
    cgroup: &'a BoxCgroup,
    base: Duration,
    /// What was charged to the box when the program started.
    memory_base: MemoryMark,
}

impl Meter<'_> {
    /// CPU time of the box since the program's start.
    pub(crate) fn cpu_time(&self) -> Result<Duration> {
        Ok(self.cgroup.cpu_time()?.saturating_sub(self.base))
    }

    /// The run's measurements, CPU time counted from the program's start.
    fn usage(&self) -> Result<CgroupUsage> {
        let mut usage = self.cgroup.usage()?;
        usage.cpu_time = usage.cpu_time.saturating_sub(self.base);
        // The program's own peak: what was charged to the box after it started,
        // less the files it left on the box's tmpfs mounts (they are disk, with
        // budgets of their own, not memory of its processes).
        let files = usage
            .shmem_bytes
            .saturating_sub(self.memory_base.shmem_bytes);
        usage.memory_peak_bytes = usage
            .memory_peak_bytes
            .saturating_sub(self.memory_base.usage_bytes)
            .saturating_sub(files);
        Ok(usage)
    }
}

/// The cgroup limits of a box, when cgroups are in use.
fn cgroup_limits(shared: &Shared, config: &BoxConfig) -> Option<CgroupLimits> {
    let manager = shared.cgroups.as_ref()?;
    let limits = &config.limits;
    // tmpfs pages are charged to the box's memory cgroup: add the disk budgets so
    // a full /tmp gives ENOSPC, never an OOM kill.
    // A /box bound read-only takes no writes, so it needs no budget; a writable one
    // (a volume the box fills) does, as does the box's own tmpfs.
    let box_read_only = config
        .binds
        .iter()
        .any(|b| b.inside == std::path::Path::new("/box") && !b.writable);
    let box_budget = if box_read_only { 0 } else { limits.box_bytes };
    let disk = limits.tmp_bytes + box_budget + limits.shm_bytes;
    // The box's init, and on v1 the slot's launcher thread, count as tasks too.
    let helpers = if manager.version() == CgroupVersion::V1 {
        2
    } else {
        1
    };
    Some(CgroupLimits {
        memory_bytes: limits.memory_bytes.saturating_add(disk),
        pids: limits.processes + helpers,
        cpus: config.cpus.clone(),
    })
}

/// Makes `slot` ready for a box: its network namespace, its launcher thread and,
/// on cgroup v1 or for a lasting slot, its own cgroup (kept across runs, on v1
/// with the launcher inside).
fn ready_slot(shared: &Shared, slot: &mut Slot, wanted: Option<&CgroupLimits>) -> Result<()> {
    if slot.netns.is_none() {
        slot.netns = Some(namespaces::new_empty_netns()?);
    }
    if let (Some(manager), Some(wanted), Some(lasting)) = (&shared.cgroups, wanted, &slot.lasting) {
        let name = lasting.cgroup_name();
        // The old handle goes first: it keeps the directory, which `lasting`
        // opens again (or, where it cannot be reused, removes and makes anew).
        reset_or_replace(slot, wanted, |old| {
            drop(old);
            manager.lasting(&name, wanted)
        })?;
    } else if let (Some(manager), Some(wanted)) = (&shared.cgroups, wanted)
        && manager.version() == CgroupVersion::V1
    {
        reset_or_replace(slot, wanted, |old| {
            if let Some(old) = old {
                manager.release(old);
            }
            manager.acquire(wanted)
        })?;
    }
    if !slot.launcher.as_ref().is_some_and(Launcher::usable) {
        // A launcher process that died leaves the cgroup before its successor joins.
        slot.launcher = None;
        slot.launcher = Some(start_launcher(shared, slot)?);
    }
    Ok(())
}

/// Sets `wanted` on the slot's cgroup, or, where it has none or that one cannot
/// take another run (a failure, an earlier box's page cache), gives the slot the
/// cgroup `replace` makes of the old one. The slot's launcher goes first: on v1
/// it sits in the old cgroup, and a new cgroup needs a launcher placed in it.
fn reset_or_replace(
    slot: &mut Slot,
    wanted: &CgroupLimits,
    replace: impl FnOnce(Option<BoxCgroup>) -> Result<BoxCgroup>,
) -> Result<()> {
    match slot.cgroup.as_mut().map(|cg| cg.reset(wanted)) {
        Some(Ok(())) => return Ok(()),
        Some(Err(e @ Error::InvalidConfig(_))) => return Err(e),
        Some(Err(e)) => tracing::debug!("replacing the slot's cgroup: {e}"),
        None => {}
    }
    slot.launcher = None;
    let old = slot.cgroup.take();
    slot.cgroup = Some(replace(old)?);
    Ok(())
}

/// Starts a launcher for `slot`, a second time if the first ended while
/// starting (killed, as any process can be).
fn start_launcher(shared: &Shared, slot: &Slot) -> Result<Launcher> {
    let netns = slot.netns.as_ref().ok_or_else(missing_slot)?;
    match Launcher::start(shared, netns, slot.cgroup.as_ref()) {
        Err(error @ Error::LauncherGone { .. }) => {
            tracing::warn!("{error}; starting another box launcher");
            Launcher::start(shared, netns, slot.cgroup.as_ref())
        }
        other => other,
    }
}

/// Has the slot's launcher clone the box `birth` describes. A launcher process
/// that ended (killed, or out of memory) is replaced once and the box asked of
/// the new one: no box was born of the request that failed (the old launcher's
/// [`Error::LauncherGone`] reaped any it had cloned).
fn give_birth(
    shared: &Shared,
    launcher: &mut Launcher,
    slot: &Slot,
    birth: &Birth<'_>,
) -> Result<Child> {
    match launcher.clone_box(shared, birth) {
        Err(error @ Error::LauncherGone { .. }) => {
            tracing::warn!("{error}; starting a new box launcher");
            *launcher = start_launcher(shared, slot)?;
            launcher.clone_box(shared, birth)
        }
        other => other,
    }
}

fn missing_slot() -> Error {
    Error::InvalidConfig("box slot is incomplete".into())
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
fn rlimits(limits: &Limits) -> Vec<Rlimit> {
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
            Rlimit {
                resource,
                soft: soft.min(hard),
                hard,
            }
        })
        .collect()
}

fn rusage_cpu(usage: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec * 1000) as u32);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: u64 = 65 * 1024;

    #[test]
    fn one_process_reports_its_own_peak_not_the_cgroups_batches() {
        let figure = memory_figure(BoxMemory::Cgroup(436), Some(100), false, false, CEILING);
        assert_eq!(figure, 100);
        let figure = memory_figure(BoxMemory::Rusage(20_000), Some(100), false, false, CEILING);
        assert_eq!(figure, 100);
    }

    #[test]
    fn several_processes_report_the_whole_box() {
        let figure = memory_figure(BoxMemory::Cgroup(65_452), Some(180), true, false, CEILING);
        assert_eq!(figure, 65_452);
        // A peak the cgroup read short (a charge batch) still counts.
        let figure = memory_figure(BoxMemory::Cgroup(900), Some(1_000), true, false, CEILING);
        assert_eq!(figure, 1_000);
    }

    #[test]
    fn an_untraced_program_reports_the_box() {
        assert_eq!(
            memory_figure(BoxMemory::Cgroup(436), None, false, false, CEILING),
            436
        );
        assert_eq!(
            memory_figure(BoxMemory::Rusage(20_000), None, false, false, CEILING),
            20_000
        );
    }

    #[test]
    fn a_memory_verdict_reports_at_most_the_ceiling() {
        let figure = memory_figure(
            BoxMemory::Cgroup(90_000),
            Some(80_000),
            false,
            true,
            CEILING,
        );
        assert_eq!(figure, CEILING);
        let figure = memory_figure(BoxMemory::Cgroup(66_000), None, false, true, CEILING);
        assert_eq!(figure, 66_000.min(CEILING));
    }
}
