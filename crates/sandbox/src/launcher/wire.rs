//! The launcher's protocol: what the service and a launcher process say to each
//! other over their socket pair.
//!
//! One `SOCK_SEQPACKET` message per request and per reply, so message
//! boundaries are the kernel's. A message is a postcard-encoded [`Request`] or
//! [`Reply`]; descriptors travel beside it as `SCM_RIGHTS`, and the message
//! names them by their index among those received with it. The first request
//! is a [`Request::Hello`] naming the protocol's version.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::init::ProgramSpec;
use crate::mounts::MountPlan;

/// The protocol's version, checked by the launcher in the first request.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// The largest message either side accepts: well above what an `execve` can take
/// (its arguments and environment are bounded by a quarter of the stack limit).
pub(crate) const MAX_MESSAGE: usize = 4 << 20;

/// The most descriptors one message carries (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// What the service asks of a launcher. The service sends an order of
/// borrowed parts, the launcher receives one of owned parts.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request<O = Order> {
    /// The first request: set up once, before any box.
    Hello(Hello),
    /// Clone one box.
    Clone(O),
}

/// The launcher's set-up, with the descriptors it names.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// [`PROTOCOL_VERSION`] of the service.
    pub version: u32,
    /// The empty network namespace boxes are born in.
    pub netns: u16,
    /// On cgroup v1, the `tasks` files of the slot's cgroup the launcher joins,
    /// so its boxes are born there.
    pub cgroup_tasks: Vec<u16>,
    /// A one-page memory file where the kernel writes the pid of each box the
    /// launcher clones (`CLONE_PARENT_SETTID`), before the launcher could die: the
    /// service finds a box whose birth it was never told of.
    pub birth_record: u16,
}

/// One box to clone, with the descriptors it names.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Order<M = MountPlan, P = ProgramSpec> {
    /// The steps that build the box's root; its trees are `trees`.
    pub mounts: M,
    /// The detached mount trees the root's attach steps name, in their order.
    pub trees: Vec<u16>,
    /// What to run.
    pub program: P,
    /// The init's pipes and the program's stdio.
    pub fds: OrderFds,
    /// On cgroup v2, the box cgroup's directory, for `CLONE_INTO_CGROUP`.
    pub cgroup: Option<u16>,
    /// Whether the box gets a network namespace of its own.
    pub network: bool,
}

/// The indices of a box's descriptors among those sent with its [`Order`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct OrderFds {
    pub go: u16,
    pub report: u16,
    pub stdin: u16,
    pub stdout: u16,
    pub stderr: u16,
    pub terminal: Option<u16>,
}

/// What a launcher answers.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The hello was accepted: the launcher is ready for boxes.
    Ready,
    /// The box was cloned; its pidfd travels with the reply.
    Born {
        /// The init's pid, in the service's PID namespace.
        pid: i32,
    },
    /// The request failed.
    Failed {
        /// What failed.
        what: String,
        /// The OS error, 0 when it is not one.
        errno: i32,
    },
}

impl Reply {
    /// A failure of `what`, with the OS error `errno`.
    pub(crate) fn failed(what: impl Into<String>, errno: i32) -> Reply {
        Reply::Failed {
            what: what.into(),
            errno,
        }
    }
}

/// A descriptor named by a message, from those it carried.
pub(crate) fn fd_at(fds: &[OwnedFd], index: u16) -> Option<BorrowedFd<'_>> {
    fds.get(usize::from(index)).map(AsFd::as_fd)
}

/// The two ends of a new launcher socket, close-on-exec.
pub(crate) fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The other side closed its end.
    #[error("the other side closed the socket")]
    Closed,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The message was not one of the protocol's, or too large.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// No message came in time.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// Sends `message` with `fds`.
pub(crate) fn send<T: Serialize>(
    socket: BorrowedFd<'_>,
    message: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), WireError> {
    let bytes = postcard::to_stdvec(message).map_err(|e| WireError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_MESSAGE || fds.len() > MAX_FDS {
        return Err(WireError::Malformed(format!(
            "{} bytes and {} descriptors are more than a message carries",
            bytes.len(),
            fds.len()
        )));
    }
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(WireError::Malformed("no room for the descriptors".into()));
    }
    match retry(|| {
        rustix::net::sendmsg(
            socket,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
    }) {
        Ok(_) => Ok(()),
        // The message's fault, not the other side's.
        Err(WireError::Io(e)) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
            Err(WireError::Malformed(format!(
                "{} bytes do not fit the socket's buffer",
                bytes.len()
            )))
        }
        Err(e) => Err(e),
    }
}

/// A received message's bytes and descriptors, to decode.
pub(crate) struct Received {
    /// The message.
    pub bytes: Vec<u8>,
    /// The descriptors that came with it, close-on-exec, in order.
    pub fds: Vec<OwnedFd>,
}

impl Received {
    /// Decodes the message as a `T`.
    pub(crate) fn decode<'de, T: Deserialize<'de>>(&'de self) -> Result<T, WireError> {
        postcard::from_bytes(&self.bytes).map_err(|e| WireError::Malformed(e.to_string()))
    }
}

/// Receives one message, waiting at most `timeout` for it when one is given.
pub(crate) fn receive(
    socket: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> Result<Received, WireError> {
    if let Some(timeout) = timeout
        && !readable_within(socket, timeout)?
    {
        return Err(WireError::TimedOut(timeout));
    }
    // The message's size first: a peek that copies nothing (and takes no
    // descriptors), so the buffer is as large as the message and no larger,
    // and nothing is kept between messages (on cgroup v1 a launcher's memory
    // is charged to its slot's box).
    let size = retry(|| {
        rustix::net::recv(
            socket,
            &mut [] as &mut [u8],
            RecvFlags::PEEK | RecvFlags::TRUNC,
        )
    })?
    .1;
    let mut bytes = vec![0u8; size.clamp(1, MAX_MESSAGE)];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = retry(|| {
        rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut bytes)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
    })?;
    // Descriptors are taken first: dropped, they are closed, whatever follows.
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if got.bytes == 0 && fds.is_empty() {
        // End of file, or an empty message: only a hang-up tells them apart.
        return Err(if hung_up(socket) {
            WireError::Closed
        } else {
            WireError::Malformed("an empty message".into())
        });
    }
    if got
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
    {
        return Err(WireError::Malformed(format!(
            "a message of {} bytes or its descriptors were cut short (at most {MAX_MESSAGE} bytes and {MAX_FDS} descriptors)",
            got.bytes
        )));
    }
    bytes.truncate(got.bytes);
    Ok(Received { bytes, fds })
}

/// Whether `socket` has a message (or its end) within `timeout`.
fn readable_within(socket: BorrowedFd<'_>, timeout: Duration) -> Result<bool, WireError> {
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll on one valid pollfd, a local.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        match ready {
            0 => return Ok(false),
            1.. => return Ok(true),
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return Err(WireError::Io(std::io::Error::last_os_error())),
        }
    }
}

/// Whether the other side of `socket` has closed it.
fn hung_up(socket: BorrowedFd<'_>) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd, a local, without waiting.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0
}

/// Runs a socket call again while a signal interrupts it; a reset is a close.
fn retry<T>(mut call: impl FnMut() -> rustix::io::Result<T>) -> Result<T, WireError> {
    loop {
        match call() {
            Ok(value) => return Ok(value),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET | rustix::io::Errno::PIPE) => {
                return Err(WireError::Closed);
            }
            Err(e) => return Err(WireError::Io(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
        Received {
            bytes: bytes.to_vec(),
            fds: Vec::new(),
        }
        .decode()
    }

    #[test]
    fn replies_and_hellos_cross_unchanged() {
        for reply in [
            Reply::Ready,
            Reply::Born { pid: 4242 },
            Reply::failed("clone3", libc::EAGAIN),
        ] {
            let bytes = postcard::to_stdvec(&reply).unwrap();
            assert_eq!(decode::<Reply>(&bytes).unwrap(), reply);
        }
        let hello = Request::<Order>::Hello(Hello {
            version: PROTOCOL_VERSION,
            netns: 0,
            cgroup_tasks: vec![1, 2, 3],
            birth_record: 4,
        });
        let bytes = postcard::to_stdvec(&hello).unwrap();
        match decode::<Request>(&bytes).unwrap() {
            Request::Hello(h) => {
                assert_eq!(
                    (h.version, h.cgroup_tasks, h.birth_record),
                    (1, vec![1, 2, 3], 4)
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_message_cut_short_is_refused() {
        let bytes = postcard::to_stdvec(&Reply::failed("x".repeat(40), 1)).unwrap();
        for end in 0..bytes.len() {
            assert!(decode::<Reply>(&bytes[..end]).is_err(), "{end}");
        }
    }

    proptest! {
        #[test]
        fn any_bytes_decode_to_a_request_or_an_error_never_a_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096)
        ) {
            let _ = decode::<Request>(&bytes);
            let _ = decode::<Reply>(&bytes);
        }

        #[test]
        fn a_valid_tag_with_noise_after_it_never_panics(
            tag in 0u8..2,
            bytes in proptest::collection::vec(any::<u8>(), 0..4096)
        ) {
            let mut message = vec![tag];
            message.extend(bytes);
            let _ = decode::<Request>(&message);
        }
    }
}
