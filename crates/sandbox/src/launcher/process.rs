//! The service's side of a launcher process: start it, ask it for boxes, and
//! clean up after it when it dies.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::wire::{self, Hello, Order, OrderFds, Reply, Request, WireError};
use super::{Birth, LauncherProgram, Worker};
use crate::cgroup::BoxCgroup;
use crate::error::{Error, Result};
use crate::sys;
use crate::teardown::Child;

/// The descriptor number a launcher process finds its socket at.
pub(crate) const SOCKET_FD: RawFd = 3;

/// How long the service waits for a launcher's answer. A launcher answers in
/// a millisecond or so; one that has not answered in this long is stuck
/// (stopped, or blocked in the kernel) and is replaced.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How a sandbox starts launcher processes: the program, and the thread that
/// spawns them.
///
/// A box's init is the launcher's sibling (`CLONE_PARENT`), so its parent is
/// the thread that spawned the launcher, and its parent-death signal fires when
/// that thread ends: the spawning thread lives as long as the sandbox.
pub(crate) struct Starter {
    program: LauncherProgram,
    spawner: Worker,
}

impl Starter {
    /// A starter of `program`.
    pub(crate) fn new(program: LauncherProgram) -> Result<Starter> {
        Ok(Starter {
            program,
            spawner: Worker::start("runbox-spawner", || Ok(()))?,
        })
    }
}

/// A running launcher process of one slot.
pub(crate) struct LauncherProcess {
    socket: OwnedFd,
    process: Option<std::process::Child>,
    /// Where the kernel writes the pid of each box the launcher clones.
    birth_record: File,
    /// Set once the launcher died or broke the protocol: it is replaced.
    broken: bool,
    /// Whether the launcher sits in the slot's cgroup, so boxes are born there.
    pub placed: bool,
}

impl LauncherProcess {
    /// Starts a launcher in `netns`, placed in `cgroup` on cgroup v1.
    pub(crate) fn start(
        starter: &Starter,
        netns: &OwnedFd,
        cgroup: Option<&BoxCgroup>,
    ) -> Result<LauncherProcess> {
        let (ours, theirs) = wire::socket_pair().map_err(|source| Error::Syscall {
            call: "socketpair(box launcher)",
            source,
        })?;
        // A request is one message, which must fit the sending socket's buffer
        // (208 KiB by default; a box's arguments and environment may be
        // megabytes). Forced: the system's `wmem_max` caps the unforced size.
        let wanted = 2 * wire::MAX_MESSAGE;
        rustix::net::sockopt::set_socket_send_buffer_size_force(&ours, wanted)
            .or_else(|_| rustix::net::sockopt::set_socket_send_buffer_size(&ours, wanted))
            .map_err(|e| Error::Syscall {
                call: "setsockopt(SO_SNDBUF, box launcher)",
                source: e.into(),
            })?;
        let program = starter.program.clone();
        let process = starter.spawner.run(move || spawn(&program, &theirs))??;
        let birth_record = birth_record()?;
        let tasks = cgroup
            .map(BoxCgroup::placement_files)
            .transpose()?
            .unwrap_or_default();
        let mut launcher = LauncherProcess {
            socket: ours,
            process: Some(process),
            birth_record,
            broken: false,
            placed: !tasks.is_empty(),
        };
        let record = launcher
            .birth_record
            .try_clone()
            .map_err(|source| Error::Syscall {
                call: "dup(birth record)",
                source,
            })?;
        let mut fds = vec![netns.as_fd()];
        fds.extend(tasks.iter().map(AsFd::as_fd));
        fds.push(record.as_fd());
        let hello = Hello {
            version: wire::PROTOCOL_VERSION,
            netns: 0,
            cgroup_tasks: (1..=tasks.len() as u16).collect(),
            birth_record: tasks.len() as u16 + 1,
        };
        match launcher.exchange::<Order>(Request::Hello(hello), &fds, "starting")? {
            (Reply::Ready, _) => Ok(launcher),
            (Reply::Failed { what, errno }, _) => Err(Error::Launcher {
                what,
                source: io::Error::from_raw_os_error(errno),
            }),
            (other, _) => Err(launcher.broke("starting", format!("it answered {other:?}"))),
        }
    }

    /// Whether the launcher died or broke the protocol.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Has the launcher clone the box `birth` describes.
    pub(crate) fn clone_box(&mut self, birth: &Birth<'_>) -> Result<Child> {
        if self.broken {
            return Err(Error::LauncherGone {
                doing: "cloning a box",
                reason: "it was gone before".into(),
            });
        }
        // A pid left here is of a box already known; one written now is of
        // this request's box (this slot asks one box at a time).
        self.birth_record
            .write_all_at(&0i32.to_ne_bytes(), 0)
            .map_err(|e| Error::io("cannot clear", "the birth record", e))?;
        let raw = |fd: RawFd| {
            // SAFETY: the supervisor holds each of the birth's descriptors open
            // until the launcher has answered.
            unsafe { BorrowedFd::borrow_raw(fd) }
        };
        let mut fds = vec![
            raw(birth.fds.go),
            raw(birth.fds.report),
            raw(birth.fds.stdin),
            raw(birth.fds.stdout),
            raw(birth.fds.stderr),
        ];
        let index = |fd: BorrowedFd<'_>, fds: &mut Vec<BorrowedFd<'_>>| {
            fds.push(raw(fd.as_raw_fd()));
            fds.len() as u16 - 1
        };
        let terminal = (birth.fds.terminal >= 0).then(|| index(raw(birth.fds.terminal), &mut fds));
        let cgroup = birth.cgroup.map(|fd| index(fd, &mut fds));
        let trees = birth
            .mounts
            .trees()
            .iter()
            .map(|tree| index(tree.as_fd(), &mut fds))
            .collect();
        let order = Order {
            mounts: birth.mounts,
            trees,
            program: birth.program,
            fds: OrderFds {
                go: 0,
                report: 1,
                stdin: 2,
                stdout: 3,
                stderr: 4,
                terminal,
            },
            cgroup,
            network: birth.network,
        };
        match self.exchange(Request::Clone(order), &fds, "cloning a box") {
            Ok((Reply::Born { pid }, mut pidfds)) if pidfds.len() == 1 && pid > 0 => {
                Ok(Child::new(pid, pidfds.remove(0)))
            }
            Ok((Reply::Failed { what, errno }, _)) => Err(Error::Launcher {
                what,
                source: io::Error::from_raw_os_error(errno),
            }),
            Ok((other, _)) => Err(self.broke("cloning a box", format!("it answered {other:?}"))),
            Err(e) => Err(e),
        }
    }

    /// Sends `request` with `fds` and receives the reply and its descriptors.
    fn exchange<O: serde::Serialize>(
        &mut self,
        request: Request<O>,
        fds: &[BorrowedFd<'_>],
        doing: &'static str,
    ) -> Result<(Reply, Vec<OwnedFd>)> {
        match wire::send(self.socket.as_fd(), &request, fds) {
            Ok(()) => {}
            // Refused before it was sent (too large): the box's fault, not the launcher's.
            Err(WireError::Malformed(e)) => {
                return Err(Error::InvalidConfig(format!(
                    "the box cannot be described to its launcher: {e}"
                )));
            }
            // The host is short of memory for the message: not the launcher's end.
            Err(WireError::Io(e))
                if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM)) =>
            {
                return Err(Error::Syscall {
                    call: "sendmsg(box launcher)",
                    source: e,
                });
            }
            Err(e) => return Err(self.broke(doing, e.to_string())),
        }
        let message = match wire::receive(self.socket.as_fd(), Some(ANSWER_TIMEOUT)) {
            Ok(message) => message,
            Err(e) => return Err(self.broke(doing, e.to_string())),
        };
        match message.decode::<Reply>() {
            Ok(reply) => Ok((reply, message.fds)),
            Err(e) => Err(self.broke(doing, e.to_string())),
        }
    }

    /// Marks the launcher broken, kills and reaps a box it cloned but never
    /// told of, and returns the error for the request.
    fn broke(&mut self, doing: &'static str, reason: String) -> Error {
        self.broken = true;
        self.stop();
        let mut pid = [0u8; 4];
        if self.birth_record.read_exact_at(&mut pid, 0).is_ok() {
            let pid = i32::from_ne_bytes(pid);
            if pid > 0 {
                tracing::warn!(pid, "killing a box its launcher cloned before it ended");
                reap_lost_box(pid);
            }
        }
        Error::LauncherGone { doing, reason }
    }

    /// Ends the launcher process and reaps it.
    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // Our child, not reaped yet: its pid cannot have been reused.
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for LauncherProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills and reaps a box's init whose pid only the birth record knows, once
/// sure it is this process's child (the kernel wrote the record, but a box's
/// init could in principle have written there too).
fn reap_lost_box(pid: libc::pid_t) {
    // SAFETY: waitid without waiting or reaping, into a local: it fails with
    // ECHILD unless `pid` is our child.
    let ours = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
        ) == 0
    };
    if !ours {
        return;
    }
    // SAFETY: kill and wait4 on a pid that is our unreaped child (a sibling of
    // the launcher, `CLONE_PARENT`), so it names no other process; wait4
    // writes into locals.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        while libc::wait4(pid, &mut status, libc::__WALL, std::ptr::null_mut()) < 0
            && sys::errno() == libc::EINTR
        {}
    }
}

/// A one-page memory file for the launcher's birth records.
fn birth_record() -> Result<File> {
    // SAFETY: a static NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"runbox-birth-record".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os("memfd_create(birth record)"));
    }
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(4096)
        .map_err(|e| Error::io("cannot size", "the birth record", e))?;
    Ok(file)
}

/// Starts `program` with `socket` at [`SOCKET_FD`], killed when the calling
/// thread ends.
fn spawn(program: &LauncherProgram, socket: &OwnedFd) -> Result<std::process::Child> {
    let socket = socket.as_raw_fd();
    let mut command = Command::new(&program.program);
    command
        .args(&program.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env_clear();
    // SAFETY: between fork and exec the closure makes only system calls
    // (dup2, fcntl, prctl, setsid), which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // A session of its own: a terminal's Ctrl-C or hang-up, sent to the
            // service's process group, is not the launcher's.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if socket == SOCKET_FD {
                // dup2 onto itself would keep close-on-exec.
                if libc::fcntl(socket, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(socket, SOCKET_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| Error::io("cannot start the box launcher", program.program.clone(), e))
}
