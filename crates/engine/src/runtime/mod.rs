//! Runtimes: the read-only root filesystems languages run in.
//!
//! A runtime is a tree with its own `/usr` (and merged-/usr links, `/etc`...)
//! that boxes see instead of the host's
//! ([`BoxConfig::with_runtime`](runbox_sandbox::BoxConfig::with_runtime)). The
//! host's own /usr is the runtime `host` and is not stored. Others are held by a
//! [`RuntimeStore`] in `<data_dir>/runtimes`: content-addressed (a sha256 over
//! the tree), identical files shared between runtimes, added atomically.
//!
//! Where they come from: a Debian suite built with mmdebstrap ([`debian`]), or
//! an OCI image from a registry, an OCI layout or a `docker save` archive ([`oci`]).
//!
//! ```no_run
//! use runbox_engine::runtime::{RuntimeStore, debian};
//!
//! let store = RuntimeStore::open("/var/lib/runbox/runtimes")?;
//! let packages = vec!["python3".to_string()];
//! let runtime = store.add_debian("trixie-python", "trixie", &packages, &mut |_| {})?;
//! let lease = store.lease(&runtime.manifest.name)?;
//! let config = runbox_sandbox::BoxConfig::new(["python3", "--version"]).with_runtime(lease.root());
//! # Ok::<(), runbox_engine::runtime::RuntimeError>(())
//! ```

pub mod debian;
pub mod oci;
mod store;

use std::path::PathBuf;

pub use store::{
    GcReport, Manifest, Runtime, RuntimeLease, RuntimeSource, RuntimeStore, STORE_FORMAT,
};

/// The name of the host's own system tree, which is never stored.
pub const HOST: &str = "host";

/// What a runtime build reports while it runs, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A step of the build began, e.g. "downloading packages with apt".
    Step(String),
    /// Storing the tree: `done` of `total` files hashed and shared.
    Storing {
        /// Files done.
        done: u64,
        /// Files in the tree.
        total: u64,
    },
}

/// What can go wrong with runtimes. Every variant names the runtime or path and
/// says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime name cannot be used.
    #[error("bad runtime name '{name}': {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why not.
        reason: String,
    },

    /// A build was asked for something that cannot be built (a bad suite or package name).
    #[error("cannot build {what}: {reason}")]
    InvalidSource {
        /// The source, e.g. `debian:trixie`.
        what: String,
        /// Why not.
        reason: String,
    },

    /// No runtime of this name is stored.
    #[error("no runtime named '{name}' (`runbox runtimes list` shows them)")]
    NotFound {
        /// The name asked for.
        name: String,
    },

    /// A runtime of this name is stored already.
    #[error("a runtime named '{name}' exists already: remove it first or choose another --name")]
    Exists {
        /// The name.
        name: String,
    },

    /// A started box uses the runtime, so it cannot be removed from under it.
    #[error("runtime '{name}' is in use by a running box: try again when its jobs are done")]
    InUse {
        /// The name.
        name: String,
    },

    /// The packages could not be downloaded.
    #[error("cannot download the packages of {what}: {detail} (is the mirror reachable?)")]
    Network {
        /// The source, e.g. `debian:trixie`.
        what: String,
        /// The tool's own words.
        detail: String,
    },

    /// The disk is full.
    #[error("no space left on the disk of {}: free some (`runbox runtimes gc`, remove runtimes) and try again", path.display())]
    DiskFull {
        /// Where it was being written.
        path: PathBuf,
    },

    /// A tool the build needs is not installed.
    #[error("{tool} is not installed: {install}")]
    MissingTool {
        /// The tool.
        tool: &'static str,
        /// How to install it.
        install: &'static str,
    },

    /// The build tool failed for another reason.
    #[error("building {what} failed ({status}): {detail}")]
    Build {
        /// The source, e.g. `debian:trixie`.
        what: String,
        /// The tool's exit status.
        status: String,
        /// The last lines of its output.
        detail: String,
    },

    /// An image could not be imported (a registry, a layout, an archive).
    #[error("importing {what} failed: {source}")]
    Import {
        /// The source, e.g. `oci:docker.io/library/python:3.13`.
        what: String,
        /// Why.
        #[source]
        source: oci::OciError,
    },

    /// The tree no longer has the digest it was stored with: it was changed on disk.
    #[error(
        "runtime '{name}' was changed on disk: its digest is {actual}, it was stored as {expected}; remove it and add it again"
    )]
    DigestMismatch {
        /// The runtime.
        name: String,
        /// The digest of its manifest.
        expected: String,
        /// The digest of the tree now.
        actual: String,
    },

    /// A built tree cannot serve as a box's root.
    #[error("the built tree cannot serve as a runtime: {0}")]
    Unusable(#[source] runbox_sandbox::Error),

    /// A manifest cannot be read or written.
    #[error("runtime manifest {}: {detail}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// Another file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// An [`RuntimeError::Io`], or [`RuntimeError::DiskFull`] when the disk is full.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        let path = path.into();
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return RuntimeError::DiskFull { path };
        }
        RuntimeError::Io {
            action,
            path,
            source,
        }
    }
}

/// The runtime module's result type.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
