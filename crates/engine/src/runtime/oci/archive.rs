//! Images from a `docker save` archive: a tar holding `manifest.json`, the image
//! config and one tar per layer (`<id>/layer.tar` in older Docker, `blobs/sha256/…`
//! since Docker 25; `skopeo copy … docker-archive:` writes either shape).
//!
//! The archive is read in place: one pass finds where each member's bytes are,
//! then members are read by seeking, so nothing is copied out first. Such an
//! archive has no manifest digest; what is verified is the config (when its name
//! is its digest, as every writer names it) and each layer against the config's
//! `rootfs.diff_ids`, the digests of the uncompressed layers, before it is applied.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::image::{self, ConfigFile, Digest, Staging};
use super::{OciError, PulledImage};

/// One image of the archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where a member's bytes are in the archive.
#[derive(Clone, Copy)]
struct Member {
    offset: u64,
    size: u64,
}

/// The archive's members by normalised name, its symlinks resolved.
struct Members {
    path: PathBuf,
    files: HashMap<String, Member>,
    links: HashMap<String, String>,
}

impl Members {
    fn index(path: &Path) -> Result<Members, OciError> {
        let file = image::open(path, "the docker archive")?;
        let mut archive = tar::Archive::new(file);
        let bad = |err: std::io::Error| {
            OciError::InvalidImage(format!(
                "{} is not a readable tar archive: {err}",
                path.display()
            ))
        };
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = normalise(&entry.path().map_err(bad)?);
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    files.insert(
                        name,
                        Member {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                }
                tar::EntryType::Symlink => {
                    if let Some(target) = entry.link_name().map_err(bad)? {
                        // A relative target is relative to the link's directory.
                        let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                        links.insert(name.clone(), normalise(&base.join(target)));
                    }
                }
                _ => {}
            }
        }
        Ok(Members {
            path: path.to_path_buf(),
            files,
            links,
        })
    }

    fn find(&self, name: &str) -> Result<Member, OciError> {
        let mut name = normalise(Path::new(name));
        for _ in 0..8 {
            if let Some(member) = self.files.get(&name) {
                return Ok(*member);
            }
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        Err(OciError::NotFound {
            what: format!("{name} in {}", self.path.display()),
        })
    }

    fn open(&self, member: Member) -> Result<impl Read + use<>, OciError> {
        let mut file = image::open(&self.path, "the docker archive")?;
        file.seek(SeekFrom::Start(member.offset))
            .map_err(|err| OciError::io("reading", &self.path, err))?;
        Ok(file.take(member.size))
    }

    fn read_json(&self, name: &str) -> Result<Vec<u8>, OciError> {
        let member = self.find(name)?;
        if member.size > image::MAX_JSON_BYTES {
            return Err(OciError::InvalidImage(format!("{name} is too large")));
        }
        let mut bytes = Vec::new();
        self.open(member)?
            .read_to_end(&mut bytes)
            .map_err(|err| OciError::io("reading", &self.path, err))?;
        Ok(bytes)
    }
}

/// A member name without `./`, leading `/` or `..` (lexically resolved).
fn normalise(path: &Path) -> String {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// The digest a config member's name gives (`<hex>.json` or `blobs/sha256/<hex>`).
fn digest_from_name(name: &str) -> Option<String> {
    let path = Path::new(name);
    let stem = path.file_name()?.to_str()?;
    let hex = stem.strip_suffix(".json").unwrap_or(stem);
    let digest = format!("sha256:{hex}");
    let valid = Digest::parse(&digest).is_ok();
    valid.then_some(digest)
}

pub(crate) fn from_docker_archive(path: &Path, dest: &Path) -> Result<PulledImage, OciError> {
    let staging = Staging::new(dest)?;
    let members = Members::index(path)?;
    let manifest: Vec<Entry> = serde_json::from_slice(&members.read_json("manifest.json")?)
        .map_err(|err| OciError::InvalidImage(format!("manifest.json: {err}")))?;
    let entry = match manifest.as_slice() {
        [one] => one,
        [] => {
            return Err(OciError::InvalidImage(
                "manifest.json lists no image".into(),
            ));
        }
        several => {
            let tags: Vec<String> = several
                .iter()
                .map(|e| e.repo_tags.clone().unwrap_or_default().join(" "))
                .collect();
            return Err(OciError::InvalidImage(format!(
                "the archive holds {} images ({}): save one image per archive",
                several.len(),
                tags.join(", ")
            )));
        }
    };

    let config_bytes = members.read_json(&entry.config)?;
    let config_digest = match digest_from_name(&entry.config) {
        Some(digest) => {
            image::verify_bytes(&config_bytes, &digest, "image config")?;
            digest
        }
        None => image::digest_of(config_bytes.as_slice(), "sha256").expect("hashing memory"),
    };
    let config = ConfigFile::parse(&config_bytes, &entry.config)?;
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    if diff_ids.len() != entry.layers.len() {
        return Err(OciError::InvalidImage(format!(
            "the config lists {} layer digests for {} layers",
            diff_ids.len(),
            entry.layers.len()
        )));
    }
    let layers: Vec<Member> = entry
        .layers
        .iter()
        .map(|name| members.find(name))
        .collect::<Result<_, _>>()?;
    image::build(staging, &diff_ids, &config, None, config_digest, &|i| {
        let expected = &diff_ids[i];
        let algorithm = Digest::parse(expected)?.algorithm;
        let what = format!("layer {}", entry.layers[i]);
        let read_err = |err| OciError::io("reading", path, err);
        // First pass: the uncompressed bytes must be the ones the config names.
        let stream = image::decompressed(members.open(layers[i])?).map_err(read_err)?;
        let actual = image::digest_of(stream, algorithm).map_err(read_err)?;
        if &actual != expected {
            return Err(OciError::DigestMismatch {
                what,
                expected: expected.clone(),
                actual,
            });
        }
        image::decompressed(members.open(layers[i])?).map_err(read_err)
    })
}
