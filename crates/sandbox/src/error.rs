//! The one error type of the sandbox crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while preparing, running or tearing down a box.
///
/// A program that misbehaves inside its box is not an error: that is an
/// [`Outcome`](crate::Outcome) with a status. Errors are for the caller's
/// configuration and for the host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The box configuration makes no sense (empty command, zero limit, bad path...).
    #[error("invalid box configuration: {0}")]
    InvalidConfig(String),

    /// A runtime's root directory cannot serve as a box's system tree.
    #[error("runtime {} cannot be used: {reason}", root.display())]
    InvalidRuntime {
        /// The runtime's root directory.
        root: PathBuf,
        /// What is wrong with it (missing, no usr, not owned by root, writable by others...).
        reason: String,
    },

    /// A file or directory operation on the host failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot create cgroup directory".
        action: &'static str,
        /// The host path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A system call made by the supervisor failed.
    #[error("{call} failed: {source}")]
    Syscall {
        /// The system call, e.g. "clone3".
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The cgroup hierarchy cannot be used as needed.
    #[error("cgroup: {0}")]
    Cgroup(String),

    /// A reused box cgroup holds more page cache earlier boxes left than a
    /// run can be measured beside: it is replaced by a fresh one (never seen
    /// by callers of the sandbox).
    #[error("cgroup: {bytes} bytes of page cache that earlier boxes read are charged to it")]
    StaleCache {
        /// The page cache charged, in bytes.
        bytes: u64,
    },

    /// The seccomp filter could not be built.
    #[error("seccomp filter: {0}")]
    Seccomp(String),

    /// Setting up the box failed inside the box, before the program started.
    #[error("box setup failed at step '{step}': {source}")]
    Setup {
        /// The step that failed, e.g. "mount /proc".
        step: String,
        /// The OS error reported by the box.
        #[source]
        source: io::Error,
    },

    /// The command could not be executed inside the box.
    #[error("cannot execute '{command}' in the box: {source}")]
    Exec {
        /// The command as given.
        command: String,
        /// The OS error of execve (ENOENT: not found in the box's PATH).
        #[source]
        source: io::Error,
    },

    /// A box launcher process refused or failed a request.
    #[error("box launcher: {what}: {source}")]
    Launcher {
        /// What it was doing.
        what: String,
        /// The OS error it reported.
        #[source]
        source: io::Error,
    },

    /// A box launcher process ended, or broke its protocol, during a request;
    /// the slot starts a new one.
    #[error("the box launcher ended while {doing}: {reason}")]
    LauncherGone {
        /// What was asked of it.
        doing: &'static str,
        /// How its end showed.
        reason: String,
    },
}

/// The sandbox crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Syscall`] from the current `errno`.
    pub(crate) fn last_os(call: &'static str) -> Self {
        Error::Syscall {
            call,
            source: io::Error::last_os_error(),
        }
    }
}
