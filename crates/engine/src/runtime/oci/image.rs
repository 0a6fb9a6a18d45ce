//! What every source shares: manifests and their platforms, the image config,
//! digests, and building the tree in a temporary sibling of its destination.
//!
//! A source (a registry, an OCI layout, a `docker save` archive) only finds the
//! bytes; the checks are made here, once: every manifest and blob is hashed before
//! it is used, and nothing from a blob is applied before its digest matches.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest};
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha512};

use super::unpack::{Tree, tree_size};
use super::{ImageConfig, OciError, Platform, PulledImage};

/// The largest manifest, index or config read into memory.
pub(crate) const MAX_JSON_BYTES: u64 = 8 << 20;

/// The media types of manifests and indexes, Docker's and the OCI's.
pub(crate) const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A parsed manifest: one image, or an index of images per platform.
pub(crate) enum Manifest {
    Image(Box<OciImageManifest>),
    Index(OciImageIndex),
}

/// Parses manifest JSON, telling an index from an image by its media type (or,
/// when it has none, by its `manifests` field).
pub(crate) fn parse_manifest(bytes: &[u8], what: &str) -> Result<Manifest, OciError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<i64>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let invalid = |err: serde_json::Error| OciError::InvalidImage(format!("{what}: {err}"));
    let probe: Probe = serde_json::from_slice(bytes).map_err(invalid)?;
    if probe.schema_version != Some(2) {
        return Err(OciError::InvalidImage(format!(
            "{what}: schema version {:?} (runbox reads version 2, OCI and Docker)",
            probe.schema_version
        )));
    }
    let is_index = match probe.media_type.as_deref() {
        Some(t) if t.ends_with("index.v1+json") || t.ends_with("manifest.list.v2+json") => true,
        Some(t) if t.ends_with("manifest.v1+json") || t.ends_with("manifest.v2+json") => false,
        Some(other) => {
            return Err(OciError::InvalidImage(format!(
                "{what}: media type {other} is not an image manifest or index"
            )));
        }
        None => probe.manifests.is_some(),
    };
    Ok(if is_index {
        Manifest::Index(serde_json::from_slice(bytes).map_err(invalid)?)
    } else {
        Manifest::Image(Box::new(serde_json::from_slice(bytes).map_err(invalid)?))
    })
}

/// The entry of `index` for `wanted`, or the platforms it offers instead.
pub(crate) fn select_platform<'a>(
    index: &'a OciImageIndex,
    wanted: &Platform,
) -> Result<&'a ImageIndexEntry, OciError> {
    let mut available = Vec::new();
    for entry in &index.manifests {
        let Some(p) = &entry.platform else { continue };
        let offered = Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone(),
        };
        // Attestations and signatures are listed as unknown/unknown: not images.
        if offered.os == "unknown" {
            continue;
        }
        if wanted.accepts(&offered) {
            return Ok(entry);
        }
        available.push(offered.to_string());
    }
    Err(OciError::UnknownPlatform {
        wanted: wanted.to_string(),
        available,
    })
}

/// The fields of an image config file runbox uses.
#[derive(Deserialize, Default)]
pub(crate) struct ConfigFile {
    architecture: Option<String>,
    os: Option<String>,
    variant: Option<String>,
    #[serde(default)]
    config: Option<ContainerConfig>,
    #[serde(default)]
    pub(crate) rootfs: Option<RootFs>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub(crate) diff_ids: Vec<String>,
}

impl ConfigFile {
    pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<ConfigFile, OciError> {
        serde_json::from_slice(bytes)
            .map_err(|err| OciError::InvalidImage(format!("image config {what}: {err}")))
    }

    /// The platform the config declares (unknown parts left empty).
    pub(crate) fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone().unwrap_or_default(),
            architecture: self.architecture.clone().unwrap_or_default(),
            variant: self.variant.clone(),
        }
    }

    /// Refuses an image built for another platform than `wanted` (one that says).
    pub(crate) fn check_platform(&self, wanted: &Platform) -> Result<(), OciError> {
        let offered = self.platform();
        if offered.os.is_empty() || offered.architecture.is_empty() || wanted.accepts(&offered) {
            return Ok(());
        }
        Err(OciError::UnknownPlatform {
            wanted: wanted.to_string(),
            available: vec![offered.to_string()],
        })
    }

    pub(crate) fn image_config(&self) -> ImageConfig {
        let c = self.config.as_ref();
        ImageConfig {
            env: c.and_then(|c| c.env.clone()).unwrap_or_default(),
            cmd: c.and_then(|c| c.cmd.clone()).unwrap_or_default(),
            entrypoint: c.and_then(|c| c.entrypoint.clone()).unwrap_or_default(),
            working_dir: c
                .and_then(|c| c.working_dir.clone())
                .filter(|w| !w.is_empty()),
            user: c.and_then(|c| c.user.clone()).filter(|u| !u.is_empty()),
        }
    }
}

/// A digest split into its algorithm and hex, checked so that it can name a file.
pub(crate) struct Digest<'a> {
    pub(crate) algorithm: &'a str,
    pub(crate) hex: &'a str,
}

impl<'a> Digest<'a> {
    pub(crate) fn parse(digest: &'a str) -> Result<Digest<'a>, OciError> {
        let invalid =
            || OciError::InvalidImage(format!("{digest:?} is not a sha256 or sha512 digest"));
        let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
        let len = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(invalid()),
        };
        if hex.len() != len
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid());
        }
        Ok(Digest { algorithm, hex })
    }

    /// The blob's path under an OCI layout's (or the download area's) `blobs/`.
    pub(crate) fn blob_path(&self, blobs: &Path) -> PathBuf {
        blobs.join(self.algorithm).join(self.hex)
    }
}

/// The digest (`algorithm:hex`) of everything `reader` yields; sha256 unless `algorithm` is sha512.
pub(crate) fn digest_of(mut reader: impl Read, algorithm: &str) -> std::io::Result<String> {
    fn run<H: sha2::Digest + std::io::Write>(
        mut hasher: H,
        reader: &mut dyn Read,
    ) -> std::io::Result<String> {
        std::io::copy(reader, &mut hasher)?;
        Ok(hex::encode(hasher.finalize()))
    }
    let hex = match algorithm {
        "sha512" => run(Sha512::new(), &mut reader)?,
        _ => run(Sha256::new(), &mut reader)?,
    };
    Ok(format!("{algorithm}:{hex}"))
}

/// Refuses `bytes` unless they hash to `expected`.
pub(crate) fn verify_bytes(bytes: &[u8], expected: &str, what: &str) -> Result<(), OciError> {
    let digest = Digest::parse(expected)?;
    let actual = digest_of(bytes, digest.algorithm).expect("hashing memory cannot fail");
    if actual != expected {
        return Err(OciError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Refuses the file at `path` unless it hashes to `expected`.
pub(crate) fn verify_file(path: &Path, expected: &str, what: &str) -> Result<(), OciError> {
    let digest = Digest::parse(expected)?;
    let file = open(path, what)?;
    let actual = digest_of(BufReader::new(file), digest.algorithm)
        .map_err(|err| OciError::io("reading", path, err))?;
    if actual != expected {
        return Err(OciError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Opens a file an image needs; a missing one is [`OciError::NotFound`].
pub(crate) fn open(path: &Path, what: &str) -> Result<fs::File, OciError> {
    fs::File::open(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => OciError::NotFound {
            what: format!("{what} ({})", path.display()),
        },
        _ => OciError::io("opening", path, err),
    })
}

/// Reads a small JSON file (a manifest, an index, a config) whole.
pub(crate) fn read_json_file(path: &Path, what: &str) -> Result<Vec<u8>, OciError> {
    let mut bytes = Vec::new();
    open(path, what)?
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| OciError::io("reading", path, err))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(OciError::InvalidImage(format!(
            "{what} is larger than {MAX_JSON_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// A layer's tar stream, decompressed by what its first bytes say it is (gzip,
/// zstd or plain tar): Docker's archives carry no media types, and the magic
/// numbers cannot lie the way a media type can.
pub(crate) fn decompressed<'a>(reader: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    })
}

/// Where an image is built: a private directory beside the destination, so the
/// finished tree is moved into place by one `rename` and a failure leaves
/// nothing at the destination (the directory is removed when this is dropped).
pub(crate) struct Staging {
    dir: tempfile::TempDir,
    dest: PathBuf,
}

impl Staging {
    /// Prepares to build `dest`, which must not exist (its parent must).
    pub(crate) fn new(dest: &Path) -> Result<Staging, OciError> {
        if fs::symlink_metadata(dest).is_ok() {
            return Err(OciError::DestinationExists(dest.to_path_buf()));
        }
        let name = dest.file_name().ok_or_else(|| OciError::Io {
            context: format!("{} names no directory", dest.display()),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{}.partial-", name.to_string_lossy()))
            .tempdir_in(parent)
            .map_err(|err| OciError::io("creating a temporary directory in", parent, err))?;
        let rootfs = dir.path().join("rootfs");
        fs::create_dir(&rootfs).map_err(|err| OciError::io("creating", &rootfs, err))?;
        Ok(Staging {
            dir,
            dest: dest.to_path_buf(),
        })
    }

    /// The tree being built.
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Where downloaded blobs wait (as in an OCI layout: `<algorithm>/<hex>`).
    pub(crate) fn blobs(&self) -> PathBuf {
        self.dir.path().join("blobs")
    }

    /// Moves the finished tree to the destination; the rest is removed.
    pub(crate) fn finish(self) -> Result<(), OciError> {
        let rootfs = self.rootfs();
        fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|err| OciError::io("setting the mode of", &rootfs, err))?;
        // Checked again at the last moment: `rename` would replace an empty
        // directory made meanwhile. Imports into one destination are the store's
        // to serialise; this only keeps a careless caller from losing a tree.
        if fs::symlink_metadata(&self.dest).is_ok() {
            return Err(OciError::DestinationExists(self.dest.clone()));
        }
        fs::rename(&rootfs, &self.dest)
            .map_err(|err| OciError::io("moving the tree to", &self.dest, err))
    }
}

/// A blob in a directory laid out as `<algorithm>/<hex>`, verified.
pub(crate) fn verified_blob(
    blobs: &Path,
    descriptor: &OciDescriptor,
    what: &str,
) -> Result<PathBuf, OciError> {
    let path = Digest::parse(&descriptor.digest)?.blob_path(blobs);
    verify_file(&path, &descriptor.digest, what)?;
    Ok(path)
}

/// Builds the tree of an image whose manifest is resolved and whose blobs are
/// in `blobs`: the config read, the platform checked, each layer verified then
/// applied, the tree moved to its destination.
pub(crate) fn install(
    staging: Staging,
    blobs: &Path,
    manifest: &OciImageManifest,
    manifest_digest: &str,
    wanted: &Platform,
) -> Result<PulledImage, OciError> {
    let config_path = verified_blob(blobs, &manifest.config, "image config")?;
    let config = ConfigFile::parse(
        &read_json_file(&config_path, "image config")?,
        &manifest.config.digest,
    )?;
    config.check_platform(wanted)?;
    let layers: Vec<String> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    build(
        staging,
        &layers,
        &config,
        Some(manifest_digest.to_string()),
        manifest.config.digest.clone(),
        &|i| {
            let digest = &layers[i];
            let path = Digest::parse(digest)?.blob_path(blobs);
            let what = format!("layer {digest}");
            verify_file(&path, digest, &what)?;
            let file = open(&path, &what)?;
            decompressed(file).map_err(|err| OciError::io("reading", &path, err))
        },
    )
}

/// A layer's uncompressed tar stream, verified (nothing of it was applied yet).
pub(crate) type LayerOpener<'a> = dyn Fn(usize) -> Result<Box<dyn Read + 'a>, OciError> + 'a;

/// Applies `layers` (named by their digests) in order, each opened verified by
/// `open_layer`, and moves the tree into place.
pub(crate) fn build<'a>(
    staging: Staging,
    layers: &[String],
    config: &ConfigFile,
    manifest_digest: Option<String>,
    config_digest: String,
    open_layer: &LayerOpener<'a>,
) -> Result<PulledImage, OciError> {
    if layers.is_empty() {
        return Err(OciError::InvalidImage("the image has no layers".into()));
    }
    let rootfs = staging.rootfs();
    let mut tree = Tree::new(rootfs.clone());
    for (i, digest) in layers.iter().enumerate() {
        tree.apply_layer(open_layer(i)?, digest)?;
    }
    tree.finish()?;
    let size_bytes = tree_size(&rootfs)?;
    let skipped = std::mem::take(&mut tree.skipped);
    staging.finish()?;
    Ok(PulledImage {
        manifest_digest,
        config_digest,
        platform: config.platform(),
        config: config.image_config(),
        size_bytes,
        layers: layers.len(),
        skipped,
    })
}
