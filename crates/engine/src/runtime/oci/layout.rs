//! Images from an OCI layout directory (`oci-layout`, `index.json`, `blobs/`), as
//! `skopeo copy ... oci:DIR:TAG` or `podman save --format oci-dir` write them:
//! the way to bring an image to a host with no registry.

use std::path::Path;

use super::image::{self, Digest, Manifest, Staging};
use super::{OciError, Platform, PulledImage};

/// The annotation that names a manifest of a layout's index (its tag).
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// How deep indexes may nest (a layout's index pointing at an image index).
const MAX_DEPTH: usize = 4;

pub(crate) fn from_layout(
    dir: &Path,
    reference: Option<&str>,
    platform: &Platform,
    dest: &Path,
) -> Result<PulledImage, OciError> {
    let staging = Staging::new(dest)?;
    let marker = dir.join("oci-layout");
    if !marker.is_file() {
        return Err(OciError::NotFound {
            what: format!("an OCI layout at {} (no oci-layout file)", dir.display()),
        });
    }
    let blobs = dir.join("blobs");
    let index_bytes = image::read_json_file(&dir.join("index.json"), "the layout's index.json")?;
    let Manifest::Index(index) = image::parse_manifest(&index_bytes, "index.json")? else {
        return Err(OciError::InvalidImage(
            "index.json is not an image index".into(),
        ));
    };

    // The layout's own index lists images by name; pick the one asked for.
    let names = |e: &oci_client::manifest::ImageIndexEntry| {
        e.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .cloned()
            .unwrap_or_else(|| e.digest.clone())
    };
    let chosen = match reference {
        None if index.manifests.len() == 1 => &index.manifests[0],
        None => {
            // Several images and no name: the platform picks, as for a registry.
            image::select_platform(&index, platform).map_err(|_| OciError::NotFound {
                what: format!(
                    "which image of {}: name one of {}",
                    dir.display(),
                    index
                        .manifests
                        .iter()
                        .map(names)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?
        }
        Some(wanted) => index
            .manifests
            .iter()
            .find(|e| {
                let name = names(e);
                e.digest == wanted
                    || name == wanted
                    || name.rsplit_once(':').is_some_and(|(_, tag)| tag == wanted)
                    || wanted.rsplit_once(':').is_some_and(|(_, tag)| tag == name)
            })
            .ok_or_else(|| OciError::NotFound {
                what: format!(
                    "image {wanted:?} in {}, which has {}",
                    dir.display(),
                    index
                        .manifests
                        .iter()
                        .map(names)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?,
    };

    let mut digest = chosen.digest.clone();
    for _ in 0..MAX_DEPTH {
        let path = Digest::parse(&digest)?.blob_path(&blobs);
        let bytes = image::read_json_file(&path, &format!("manifest {digest}"))?;
        image::verify_bytes(&bytes, &digest, &format!("manifest {digest}"))?;
        match image::parse_manifest(&bytes, &format!("manifest {digest}"))? {
            Manifest::Image(manifest) => {
                return image::install(staging, &blobs, &manifest, &digest, platform);
            }
            Manifest::Index(index) => {
                digest = image::select_platform(&index, platform)?.digest.clone();
            }
        }
    }
    Err(OciError::InvalidImage(format!(
        "indexes nested deeper than {MAX_DEPTH} levels"
    )))
}
