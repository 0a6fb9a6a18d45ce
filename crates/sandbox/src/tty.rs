//! TTY mode: the program runs on a pseudo-terminal of its box's own, as it would
//! in a terminal (REPLs, prompts, curses programs).
//!
//! The box mounts a new devpts instance at /dev/pts (`newinstance`, so it holds
//! only the box's terminals and none of the host's), with /dev/ptmx a link to its
//! `ptmx`. The init opens the pair there after the root is built, hands the master
//! to the supervisor over a socket (`SCM_RIGHTS`) and gives the program the slave
//! as stdin, stdout and stderr; the program starts a session and takes the slave
//! as its controlling terminal, so the line discipline turns a typed Ctrl-C into
//! SIGINT for its foreground process group. The supervisor reads the master as
//! the program's stdout (the terminal merges both streams and echoes input), pumps
//! the caller's stdin into it (end of input is a typed Ctrl-D) and resizes it.
//!
//! Nothing of the sandbox's guarantees changes: the seccomp filter still refuses
//! TIOCSTI and TIOCLINUX on every descriptor, this terminal's included, and the
//! box has no descriptor of, nor path to, any terminal of the host.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::sys;

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminalSize {
    /// Lines.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl Default for TerminalSize {
    /// The classic 24 × 80.
    fn default() -> Self {
        TerminalSize { rows: 24, cols: 80 }
    }
}

impl TerminalSize {
    fn winsize(self) -> libc::winsize {
        libc::winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

/// Resizes the terminal of whichever TTY-mode box it is attached to; cloned
/// handles share the box. Without a box attached, a resize is dropped.
#[derive(Clone, Default)]
pub struct Terminal {
    master: Arc<Mutex<Option<OwnedFd>>>,
}

impl Terminal {
    /// A handle attached to no box yet.
    pub fn new() -> Terminal {
        Terminal::default()
    }

    /// Sets the terminal's size (the program gets SIGWINCH). `Ok(false)` when no
    /// box is attached.
    pub fn resize(&self, size: TerminalSize) -> Result<bool> {
        let master = self.master();
        let Some(fd) = master.as_ref() else {
            return Ok(false);
        };
        let winsize = size.winsize();
        // SAFETY: TIOCSWINSZ reads a winsize from a local that lives for the call.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &winsize) };
        if rc < 0 {
            return Err(Error::last_os("ioctl(TIOCSWINSZ)"));
        }
        Ok(true)
    }

    /// Attaches the master of a box until the returned guard is dropped.
    pub(crate) fn attach(&self, master: OwnedFd) -> AttachedTerminal<'_> {
        *self.master() = Some(master);
        AttachedTerminal { terminal: self }
    }

    fn master(&self) -> MutexGuard<'_, Option<OwnedFd>> {
        self.master
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A box attached to a [`Terminal`]; dropping it detaches the box.
pub(crate) struct AttachedTerminal<'a> {
    terminal: &'a Terminal,
}

impl Drop for AttachedTerminal<'_> {
    fn drop(&mut self) {
        *self.terminal.master() = None;
    }
}

/// The devpts mount options of a box: an instance of its own, a ptmx anyone in
/// the box may open, terminals only their owner's group may write.
pub(crate) const DEVPTS_OPTIONS: &std::ffi::CStr = c"newinstance,ptmxmode=0666,mode=0620";

/// A connected pair of Unix sockets, close-on-exec: the supervisor's end and
/// the init's, which carries the master to the supervisor.
pub(crate) fn socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(Error::last_os("socketpair"));
    }
    // SAFETY: socketpair succeeded: two fresh descriptors nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Opens a terminal pair on the box's devpts, sized `size`: `(master, slave)`,
/// neither of them the caller's controlling terminal. Runs in the box's init,
/// after the root is built: system calls only. On failure, the errno.
pub(crate) fn open_pair(size: TerminalSize) -> Result<(RawFd, RawFd), i32> {
    // SAFETY: open with a static NUL-terminated path.
    let master = unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    sys::check(master)?;
    let unlock: libc::c_int = 0;
    let winsize = size.winsize();
    // SAFETY: ioctls on the master just opened, reading locals that outlive them;
    // TIOCGPTPEER opens the slave through the master's own devpts mount.
    let slave = unsafe {
        sys::check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock))?;
        sys::check(libc::ioctl(master, libc::TIOCSWINSZ, &winsize))?;
        libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY)
    };
    sys::check(slave)?;
    Ok((master, slave))
}

/// Sends `fd` over the Unix socket `socket`. Async-signal-safe: one sendmsg on
/// buffers of the stack.
pub(crate) fn send_fd(socket: RawFd, fd: RawFd) -> Result<(), i32> {
    // Room for one descriptor's control message, aligned for cmsghdr.
    #[repr(C)]
    struct Control {
        header: libc::cmsghdr,
        fd: RawFd,
    }
    let mut byte = [b't'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed cmsghdr and int are valid; the header is filled below.
    let mut control: Control = unsafe { std::mem::zeroed() };
    // SAFETY: CMSG_LEN computes a length from an integer.
    control.header.cmsg_len = unsafe { libc::CMSG_LEN(size_of::<RawFd>() as u32) } as usize;
    control.header.cmsg_level = libc::SOL_SOCKET;
    control.header.cmsg_type = libc::SCM_RIGHTS;
    control.fd = fd;
    // SAFETY: a zeroed msghdr is valid; its pointers are set below.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = (&mut control as *mut Control).cast();
    message.msg_controllen = size_of::<Control>();
    // SAFETY: every pointer in `message` points to a local alive for the call.
    let sent = unsafe { libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) };
    if sent < 0 { Err(sys::errno()) } else { Ok(()) }
}

/// Receives the master the init sends on `socket`, waiting until `deadline`.
/// `None` when the init ended without sending one (its setup failed: its report
/// says why) or the deadline passed.
pub(crate) fn receive_master(socket: &OwnedFd, deadline: Instant) -> Result<Option<OwnedFd>> {
    let wait = deadline.saturating_duration_since(Instant::now());
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: poll on one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
        if ready >= 0 {
            if ready == 0 {
                return Ok(None);
            }
            break;
        }
        if sys::errno() != libc::EINTR {
            return Err(Error::last_os("poll(terminal socket)"));
        }
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE computes a size from an integer.
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    let mut control = [0u64; 8];
    debug_assert!(space <= size_of_val(&control));
    // SAFETY: a zeroed msghdr is valid; its pointers are set below.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = space;
    // SAFETY: every pointer in `message` points to a local alive for the call.
    let got = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
    if got < 0 {
        return Err(Error::last_os("recvmsg(terminal socket)"));
    }
    // SAFETY: the kernel filled `message`; CMSG_FIRSTHDR reads its control fields.
    let header = unsafe { libc::CMSG_FIRSTHDR(&message) };
    if got == 0 || header.is_null() {
        return Ok(None);
    }
    // SAFETY: `header` points into `control`, which holds a complete header.
    let (level, kind) = unsafe { ((*header).cmsg_level, (*header).cmsg_type) };
    if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
        return Ok(None);
    }
    // SAFETY: an SCM_RIGHTS message of ours carries one descriptor after the
    // header, inside `control`.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>()) };
    // SAFETY: the kernel installed it in this process for this message: a fresh
    // descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The byte a terminal reads as end of input at the start of a line (VEOF, Ctrl-D).
const END_OF_INPUT: u8 = 0x04;

/// Copies the caller's stdin into the terminal's master while the box runs.
pub(crate) struct StdinPump {
    /// Closed to stop the pump.
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl StdinPump {
    /// Starts copying `source` (a pipe or the configured stdin's memory file)
    /// into `master`, ending with a Ctrl-D when `source` ends.
    pub(crate) fn start(source: OwnedFd, master: OwnedFd) -> Result<StdinPump> {
        let (stop_r, stop_w) = sys::pipe()?;
        sys::set_nonblocking(&master)?;
        let thread = std::thread::Builder::new()
            .name("runbox-tty-stdin".into())
            .spawn(move || pump(&source, &master, &stop_r))
            .map_err(|e| Error::Syscall {
                call: "spawn(tty stdin pump)",
                source: e,
            })?;
        Ok(StdinPump {
            stop: Some(stop_w),
            thread: Some(thread),
        })
    }
}

impl Drop for StdinPump {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The pump's loop: reads a block of `source` when nothing is pending, writes it
/// to `master` as the terminal takes it, until `stop` hangs up or the master
/// breaks (the program is gone).
fn pump(source: &OwnedFd, master: &OwnedFd, stop: &OwnedFd) {
    let mut buf = [0u8; 4096];
    let (mut start, mut end) = (0, 0);
    let mut source_open = true;
    loop {
        if start == end && !source_open {
            return;
        }
        let mut polls = [
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if start == end {
                    source.as_raw_fd()
                } else {
                    master.as_raw_fd()
                },
                events: if start == end {
                    libc::POLLIN
                } else {
                    libc::POLLOUT
                },
                revents: 0,
            },
        ];
        // SAFETY: poll on a local array of valid pollfds.
        let ready = unsafe { libc::poll(polls.as_mut_ptr(), 2, -1) };
        if ready < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            return;
        }
        if polls[0].revents != 0 {
            return;
        }
        if polls[1].revents == 0 {
            continue;
        }
        if start == end {
            // SAFETY: reading into a local buffer of the given length.
            let n = unsafe { libc::read(source.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                n if n > 0 => (start, end) = (0, n as usize),
                0 => {
                    buf[0] = END_OF_INPUT;
                    (start, end) = (0, 1);
                    source_open = false;
                }
                _ if sys::errno() == libc::EINTR => {}
                _ => source_open = false,
            }
        } else {
            let pending = &buf[start..end];
            // SAFETY: writing from a slice of the local buffer.
            let n =
                unsafe { libc::write(master.as_raw_fd(), pending.as_ptr().cast(), pending.len()) };
            if n > 0 {
                start += n as usize;
            } else if n < 0 && !matches!(sys::errno(), libc::EINTR | libc::EAGAIN) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_crosses_the_socket() {
        let (ours, theirs) = socket_pair().unwrap();
        let (read, write) = sys::pipe().unwrap();
        send_fd(theirs.as_raw_fd(), write.as_raw_fd()).unwrap();
        drop(write);
        let received = receive_master(&ours, Instant::now() + std::time::Duration::from_secs(1))
            .unwrap()
            .expect("a descriptor");
        sys::write_all(received.as_raw_fd(), b"x").unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(sys::read_full(read.as_raw_fd(), &mut byte), Ok(1));
        assert_eq!(&byte, b"x");
    }

    #[test]
    fn a_closed_socket_gives_no_master() {
        let (ours, theirs) = socket_pair().unwrap();
        drop(theirs);
        let got = receive_master(&ours, Instant::now() + std::time::Duration::from_secs(1));
        assert!(got.unwrap().is_none());
    }
}
