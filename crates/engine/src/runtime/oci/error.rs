//! The one error type of OCI imports: what went wrong, with what a user needs to act.

use std::path::PathBuf;

/// Why an image could not be turned into a root directory. Whatever the variant,
/// nothing is left at the destination.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference is not an image reference (`registry/repository:tag` or `@digest`).
    #[error("{reference:?} is not an image reference: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it was refused.
        reason: String,
    },
    /// The registry could not be reached or answered something that is not HTTP sense.
    #[error("cannot talk to registry {registry}: {message}")]
    Network {
        /// The registry's host (and port).
        registry: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The registry refused the credentials (or asked for some and got none).
    #[error(
        "registry {registry} refused access: {message} (check the user name and password or token)"
    )]
    Auth {
        /// The registry's host (and port).
        registry: String,
        /// What the registry said.
        message: String,
    },
    /// The image, tag, manifest or a blob does not exist where it was looked for.
    #[error("not found: {what}")]
    NotFound {
        /// What was missing, e.g. `manifest 127.0.0.1:5000/tiny:latest`.
        what: String,
    },
    /// The image has no manifest for the requested platform.
    #[error("the image has no variant for {wanted}; it has: {}", available.join(", "))]
    UnknownPlatform {
        /// The platform asked for (or the host's).
        wanted: String,
        /// The platforms the image offers.
        available: Vec<String>,
    },
    /// Content does not hash to the digest that names it: corrupt or tampered with.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which manifest or blob.
        what: String,
        /// The digest it was referred to by.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A layer tries to reach outside the tree (or is otherwise unsafe to apply).
    #[error("hostile layer {layer}: entry {entry:?}: {reason}")]
    HostileLayer {
        /// The layer's digest.
        layer: String,
        /// The entry's path as written in the layer.
        entry: String,
        /// What the entry tried to do.
        reason: String,
    },
    /// The image is not one runbox can read (bad JSON, unknown media type, no layers).
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The file system holding the destination ran out of space or quota.
    #[error("no space left while writing {path}: free some space or choose another data dir")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// The destination exists already: an import never replaces a runtime.
    #[error("{0} exists already: an image is imported into a new directory only")]
    DestinationExists(PathBuf),
    /// Another input/output failure of the host.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The system's error.
        source: std::io::Error,
    },
}

impl OciError {
    /// An input/output error while doing `context`; ENOSPC and EDQUOT become
    /// [`OciError::DiskFull`] so that callers can tell the host's space apart.
    pub(crate) fn io(
        context: impl Into<String>,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        if matches!(
            source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        ) || source.kind() == std::io::ErrorKind::StorageFull
        {
            return OciError::DiskFull {
                path: path.to_path_buf(),
            };
        }
        OciError::Io {
            context: format!("{}: {}", context.into(), path.display()),
            source,
        }
    }
}
