//! Runtimes from OCI images: an image turned into a plain root directory tree.
//!
//! Three sources, one result ([`PulledImage`], the tree at `dest`):
//!
//! - [`pull`]: from any registry that speaks the distribution API (Docker Hub,
//!   GHCR, Quay, a private registry), with no Docker daemon; anonymous, Basic or
//!   Bearer-token access; manifest lists and OCI indexes resolved to one platform
//!   ([`PullOptions::platform`], the host's by default);
//! - [`from_layout`]: from an OCI layout directory (`skopeo copy … oci:DIR:TAG`);
//! - [`from_docker_archive`]: from a `docker save` archive.
//!
//! The last two are for hosts with no registry in reach.
//!
//! What it guarantees, whatever the image holds:
//!
//! - every manifest and blob is hashed and compared with the digest that names
//!   it before it is used (layers of a `docker save` archive, which has no
//!   manifest digest, against the config's `rootfs.diff_ids`); a mismatch is
//!   [`OciError::DigestMismatch`];
//! - layers are applied in order with their whiteouts, and no entry reaches
//!   outside the tree (the rules are in `unpack.rs`): `..` is refused, absolute
//!   paths are made relative, symlinks are never followed out of the tree, hard
//!   links stay inside, device nodes and FIFOs are skipped and listed, setuid and
//!   setgid bits are dropped, owners are not applied;
//! - `dest` must not exist, and on any error nothing is left there: the tree is
//!   built in a private sibling directory and renamed into place at the end.
//!
//! It does not keep images, share layers or name runtimes: the runtime store
//! does, with the trees this module makes. The tree holds symlinks with absolute
//! targets (they mean the image's root): code of the host that reads it must not
//! follow them.
//!
//! # Why `oci-client`
//!
//! The registry protocol is `oci-client`'s (the ORAS project's client, formerly
//! `oci-distribution`, used by Krustlet, wasmCloud and Spin): the `/v2/` probe,
//! the `WWW-Authenticate` challenge and the token request to its realm, Basic
//! auth, token caching per repository, `Accept` headers for Docker's and OCI's
//! manifest types, blob streaming with digest checks, and plain HTTP for named
//! registries. Written by hand that is a token client, a challenge parser and the
//! HTTP plumbing, with their own bugs (`oci-client` already sends no credentials
//! to a layer's foreign `urls`, the hole of containerd's CVE-2020-15157). What
//! runbox writes is what the client does not do: choosing the platform, checking
//! every digest a second time, applying layers. Its platform resolver is not used:
//! it is a function of the index alone and cannot say which platforms there were,
//! which [`OciError::UnknownPlatform`] does. Version 0.15 is the newest on
//! reqwest 0.12, the HTTP stack the workspace already builds (0.16 and later
//! bring reqwest 0.13 and the aws-lc C library: a second stack for no feature
//! this module uses). Layers are read with `tar`, `flate2` and `zstd`.
//!
//! ```no_run
//! use std::path::Path;
//! use runbox_engine::runtime::oci::{self, PullOptions};
//!
//! # async fn f() -> Result<(), oci::OciError> {
//! let image = oci::pull(
//!     "docker.io/library/python:3.12-slim",
//!     &PullOptions::default(),
//!     Path::new("/var/lib/runbox/runtimes/python-3.12"),
//!     &|progress| eprintln!("{progress:?}"),
//! )
//! .await?;
//! println!("{} bytes, PATH from {:?}", image.size_bytes, image.config.env);
//! # Ok(()) }
//! ```

mod archive;
mod error;
mod image;
mod layout;
mod registry;
mod unpack;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub use error::OciError;

/// Pulls `reference` (`[registry/]repository[:tag][@digest]`; Docker Hub when no
/// registry is named) into a new directory `dest`, calling `progress` as it goes.
///
/// Needs a Tokio runtime (the unpacking runs on its blocking threads).
pub async fn pull(
    reference: &str,
    options: &PullOptions,
    dest: &Path,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PulledImage, OciError> {
    registry::pull(reference, options, dest, progress).await
}

/// Builds `dest` from the image of the OCI layout directory `dir` named
/// `reference` (a tag such as `latest`, a full `org.opencontainers.image.ref.name`,
/// or a manifest digest); with `None`, the layout's only image (or the one for
/// `platform` when it lists one per platform).
pub fn from_layout(
    dir: &Path,
    reference: Option<&str>,
    platform: &Platform,
    dest: &Path,
) -> Result<PulledImage, OciError> {
    layout::from_layout(dir, reference, platform, dest)
}

/// Builds `dest` from the image of a `docker save` archive (one image per archive).
/// Its platform is the one the image was saved for; nothing is chosen.
pub fn from_docker_archive(archive: &Path, dest: &Path) -> Result<PulledImage, OciError> {
    archive::from_docker_archive(archive, dest)
}

/// How to reach a registry and which variant of the image to take.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Which variant of a multi-platform image (default: the host's).
    pub platform: Platform,
    /// How to authenticate (default: anonymously, with a token when asked).
    pub credentials: Credentials,
    /// Registries (`host` or `host:port`) reached over plain HTTP instead of
    /// HTTPS: local and test registries.
    pub plain_http: Vec<String>,
    /// How long connecting to the registry may take.
    pub connect_timeout: Duration,
    /// How long the registry may stay silent in the middle of an answer.
    pub read_timeout: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            credentials: Credentials::Anonymous,
            plain_http: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Credentials for a registry. With a registry that answers with a Bearer
/// challenge (Docker Hub, GHCR, Quay), they are exchanged for a token at the
/// challenge's realm; with one that asks for Basic auth, they are sent as such.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credentials (an anonymous token where the registry hands them out).
    #[default]
    Anonymous,
    /// A user name and a password (or a personal access token used as one).
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
    /// A Bearer token obtained elsewhere, sent as it is.
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach a log line.
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// An operating system and CPU, as images name them: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The operating system (`linux`).
    pub os: String,
    /// The CPU architecture, in Go's names (`amd64`, `arm64`).
    pub architecture: String,
    /// The CPU variant (`v8`), when it matters.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this host (`linux/amd64` on x86-64, `linux/arm64` on AArch64).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Whether an image for `offered` runs here: same OS and architecture, and
    /// the same variant when this platform names one.
    pub fn accepts(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && (self.variant.is_none() || self.variant == offered.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    /// `os/architecture[/variant]`, as in `docker pull --platform`.
    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string()),
            }),
            _ => Err(format!(
                "{s:?} is not a platform: write os/architecture[/variant], e.g. linux/arm64"
            )),
        }
    }
}

/// What was imported: the tree is at the destination.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The digest of the image manifest the tree was built from (for an index,
    /// the platform's own manifest). `None` for a `docker save` archive, which
    /// has no manifest.
    pub manifest_digest: Option<String>,
    /// The digest of the image config (Docker's "image id").
    pub config_digest: String,
    /// The platform the image declares.
    pub platform: Platform,
    /// How the image means to be run.
    pub config: ImageConfig,
    /// The bytes of the tree's files and symlinks (hard links counted once).
    pub size_bytes: u64,
    /// How many layers were applied.
    pub layers: usize,
    /// Entries of the layers not applied (device nodes, FIFOs), with why.
    pub skipped: Vec<SkippedEntry>,
}

/// The parts of an image config a runtime uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Env`: `NAME=value` lines (`PATH` among them, usually).
    pub env: Vec<String>,
    /// `Cmd`: the default command.
    pub cmd: Vec<String>,
    /// `Entrypoint`: what the command is given to, when set.
    pub entrypoint: Vec<String>,
    /// `WorkingDir`, when set.
    pub working_dir: Option<String>,
    /// `User`, when set (runbox runs its boxes as its own user regardless).
    pub user: Option<String>,
}

/// A layer entry left out of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The entry's path in its layer.
    pub path: String,
    /// Why it was left out.
    pub reason: String,
}

/// How far a [`pull`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest is known: this many layers, this many bytes to download.
    Resolved {
        /// The image manifest's digest.
        manifest_digest: String,
        /// How many layers.
        layers: usize,
        /// Their compressed size.
        bytes: u64,
    },
    /// A blob (the config or a layer) is downloaded and verified.
    Downloaded {
        /// Its digest.
        digest: String,
        /// Its size.
        bytes: u64,
    },
    /// Every blob is here; the layers are being applied.
    Unpacking,
}
