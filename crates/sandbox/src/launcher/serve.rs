//! The launcher process itself: a single-threaded loop that clones the boxes
//! the service asks for.
//!
//! Its one input is the socket to the service: it reads no file, no
//! environment (it is started with none) and no argument. It is not dumpable,
//! so a process of the same user cannot read its memory, and it ends when the
//! service closes the socket or dies. It keeps its capabilities: where
//! unprivileged user namespaces are restricted (Ubuntu's AppArmor policy,
//! Debian's `unprivileged_userns_clone`), creating a box's user namespace
//! needs `CAP_SYS_ADMIN`.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use super::process::SOCKET_FD;
use super::wire::{self, Hello, Order, Reply, Request, WireError};
use super::{PROGRAM_STACK, StackTop, clone_init};
use crate::init::{ChildFds, ChildPlan};
use crate::namespaces;
use crate::seccomp::SeccompPolicy;
use crate::sys;

/// Runs the box launcher on the socket at descriptor 3 until the service
/// closes it. A launcher program's `main` calls this before anything else.
pub fn run_box_launcher() -> ! {
    serve(false)
}

/// A launcher that ends right after cloning each box, before it answers: the
/// fault the service must survive, for the tests of `runbox-box-launcher`.
#[doc(hidden)]
pub fn run_box_launcher_ending_after_each_clone() -> ! {
    serve(true)
}

fn serve(end_after_clone: bool) -> ! {
    let Some(socket) = take_socket() else {
        eprintln!("runbox box launcher: descriptor 3 is not the service's socket");
        sys::exit(2)
    };
    // SAFETY: prctl with integer arguments or a static string changes only
    // this process.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"runbox-launcher".as_ptr());
        // Boxes are copies of this memory: nobody may read it via /proc.
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        // The service's stop (systemd signals every process of the unit) is
        // not the launcher's: it ends with the service, by its socket's end or
        // the parent-death signal. Each box's init resets these.
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
    super::thread::block_forward_signal();
    // The loader and start-up touched much of the binary the launcher shares
    // with the service; serving boxes touches a little of it.
    sys::trim_executable_residency();
    let mut launcher = Serving {
        socket,
        ready: None,
        end_after_clone,
    };
    loop {
        let message = match wire::receive(launcher.socket.as_fd(), None) {
            Ok(message) => message,
            Err(WireError::Closed) => sys::exit(0),
            Err(WireError::Malformed(e)) => {
                launcher.answer(Reply::failed(e, libc::EPROTO), None);
                continue;
            }
            Err(WireError::Io(_) | WireError::TimedOut(_)) => sys::exit(1),
        };
        let reply = match message.decode::<Request>() {
            Ok(Request::Hello(hello)) => launcher.hello(hello, message.fds),
            Ok(Request::Clone(order)) => launcher.clone_box(order, message.fds),
            Err(e) => (Reply::failed(e.to_string(), libc::EPROTO), None),
        };
        launcher.answer(reply.0, reply.1);
    }
}

/// Descriptor 3, if it is a socket.
fn take_socket() -> Option<OwnedFd> {
    // SAFETY: fstat on a descriptor number writes only into the local struct.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(SOCKET_FD, &mut stat) } < 0
        || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK
    {
        return None;
    }
    // SAFETY: descriptor 3 is open (fstat saw it), was given to this process for
    // this purpose, and nothing else in it owns the descriptor.
    let socket = unsafe { OwnedFd::from_raw_fd(SOCKET_FD) };
    // Not for the boxes: the init closes it anyway, and a child never sees it.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(socket)
}

/// The launcher's state.
struct Serving {
    socket: OwnedFd,
    /// Set by the hello.
    ready: Option<Ready>,
    /// Fault injection for tests: exit after a clone, without answering.
    end_after_clone: bool,
}

/// What the hello prepared.
struct Ready {
    seccomp: SeccompPolicy,
    cap_last: u32,
    stack: Vec<u8>,
    /// The shared page the kernel writes each box's pid to.
    birth_record: *mut i32,
}

impl Serving {
    fn answer(&mut self, reply: Reply, fd: Option<OwnedFd>) {
        let fds: Vec<_> = fd.iter().map(AsFd::as_fd).collect();
        match wire::send(self.socket.as_fd(), &reply, &fds) {
            Ok(()) => {}
            Err(WireError::Closed) => sys::exit(0),
            Err(_) => sys::exit(1),
        }
    }

    /// Sets the launcher up: network namespace, cgroup and birth record.
    fn hello(&mut self, hello: Hello, fds: Vec<OwnedFd>) -> (Reply, Option<OwnedFd>) {
        if self.ready.is_some() {
            return (Reply::failed("a second hello", libc::EPROTO), None);
        }
        if hello.version != wire::PROTOCOL_VERSION {
            return (
                Reply::failed(
                    format!(
                        "the service speaks protocol {}, this launcher {}",
                        hello.version,
                        wire::PROTOCOL_VERSION
                    ),
                    libc::EPROTONOSUPPORT,
                ),
                None,
            );
        }
        match self.set_up(&hello, &fds) {
            Ok(ready) => {
                self.ready = Some(ready);
                (Reply::Ready, None)
            }
            Err((what, errno)) => (Reply::failed(what, errno), None),
        }
    }

    fn set_up(&self, hello: &Hello, fds: &[OwnedFd]) -> Result<Ready, (String, i32)> {
        let named = |index: u16, what: &str| {
            wire::fd_at(fds, index).ok_or((format!("no descriptor for {what}"), libc::EBADF))
        };
        let netns = named(hello.netns, "the network namespace")?;
        // SAFETY: setns on a descriptor the message carried; it changes only
        // this (single-threaded) process.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
            return Err(("setns(network namespace)".into(), sys::errno()));
        }
        for &index in &hello.cgroup_tasks {
            let tasks = named(index, "a cgroup's tasks file")?;
            // `0` is "this thread": see `thread` for why it moves itself.
            sys::write_all(tasks.as_raw_fd(), b"0")
                .map_err(|errno| ("join the slot's cgroup".to_string(), errno))?;
        }
        let record = named(hello.birth_record, "the birth record")?;
        // SAFETY: maps one shared page of a memory file the message carried; the
        // mapping is never unmapped, so the pointer stays valid.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                record.as_raw_fd(),
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(("mmap(birth record)".into(), sys::errno()));
        }
        // Not in the boxes: their inits are copies of this process.
        // SAFETY: madvise on the page just mapped.
        if unsafe { libc::madvise(page, 4096, libc::MADV_DONTFORK) } < 0 {
            return Err(("madvise(birth record)".into(), sys::errno()));
        }
        let seccomp = SeccompPolicy::new().map_err(|e| (e.to_string(), libc::EINVAL))?;
        Ok(Ready {
            seccomp,
            cap_last: namespaces::last_capability(),
            stack: vec![0u8; PROGRAM_STACK],
            birth_record: page.cast(),
        })
    }

    /// Clones the box `order` describes; the reply carries its pidfd.
    fn clone_box(&mut self, order: Order, fds: Vec<OwnedFd>) -> (Reply, Option<OwnedFd>) {
        let Some(ready) = self.ready.as_mut() else {
            return (Reply::failed("a box before the hello", libc::EPROTO), None);
        };
        match prepare_and_clone(ready, order, fds) {
            Ok(_) if self.end_after_clone => sys::exit(3),
            Ok((pid, pidfd)) => (Reply::Born { pid }, Some(pidfd)),
            Err((what, errno)) => (Reply::failed(what, errno), None),
        }
    }
}

/// Checks `order` against the descriptors that came with it, then clones.
fn prepare_and_clone(
    ready: &mut Ready,
    order: Order,
    fds: Vec<OwnedFd>,
) -> Result<(libc::pid_t, OwnedFd), (String, i32)> {
    let bad = |what: &str| {
        (
            format!("the order names no descriptor for {what}"),
            libc::EBADF,
        )
    };
    let mut owned: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
    // Each tree moves into the mount plan, which closes it; naming one twice fails.
    let trees = order
        .trees
        .iter()
        .map(|&index| {
            owned
                .get_mut(usize::from(index))
                .and_then(Option::take)
                .ok_or_else(|| bad("a mount tree"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mounts = order.mounts.with_trees(trees);
    let raw = |index: u16, what: &str| {
        owned
            .get(usize::from(index))
            .and_then(Option::as_ref)
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| bad(what))
    };
    let child_fds = ChildFds {
        go: raw(order.fds.go, "the go pipe")?,
        report: raw(order.fds.report, "the report pipe")?,
        stdin: raw(order.fds.stdin, "stdin")?,
        stdout: raw(order.fds.stdout, "stdout")?,
        stderr: raw(order.fds.stderr, "stderr")?,
        terminal: order
            .fds
            .terminal
            .map(|index| raw(index, "the terminal socket"))
            .transpose()?
            .unwrap_or(-1),
    };
    let cgroup = order
        .cgroup
        .map(|index| raw(index, "the cgroup"))
        .transpose()?;
    let top = StackTop::of(&mut ready.stack);
    let plan = ChildPlan::new(
        &mounts,
        &ready.seccomp,
        &order.program,
        child_fds,
        ready.cap_last,
        top.get(),
    );
    clone_init(&plan, cgroup, order.network, Some(ready.birth_record))
        .map_err(|e| (e.to_string(), raw_errno(&e)))
    // The order's descriptors close here: the box holds its own copies.
}

fn raw_errno(error: &crate::Error) -> i32 {
    match error {
        crate::Error::Syscall { source, .. } => source.raw_os_error().unwrap_or(0),
        _ => 0,
    }
}
