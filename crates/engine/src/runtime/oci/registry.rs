//! Images from a registry that speaks the distribution API, through `oci-client`.
//!
//! `oci-client` does the protocol: the `/v2/` probe and its `WWW-Authenticate`
//! challenge (a Bearer token from the realm, anonymous or with credentials, or
//! Basic auth), manifests with the right `Accept` types, blobs streamed to a file
//! and checked against their digest, plain HTTP for the registries named. runbox
//! picks the platform itself (so that a missing one is named with those offered),
//! and hashes every manifest and blob again in [`super::image`] whatever the
//! client checked, so the guarantee does not rest on a dependency's internals.

use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::image::{self, Digest, Manifest, Staging};
use super::{Credentials, OciError, Progress, PullOptions, PulledImage};

/// How deep indexes may nest.
const MAX_DEPTH: usize = 4;

pub(crate) async fn pull(
    reference: &str,
    options: &PullOptions,
    dest: &Path,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PulledImage, OciError> {
    let image: Reference =
        reference
            .parse()
            .map_err(|err: oci_client::ParseError| OciError::InvalidReference {
                reference: reference.to_string(),
                reason: err.to_string(),
            })?;
    let staging = Staging::new(dest)?;
    let registry = image.resolve_registry().to_string();
    let fail = |err: OciDistributionError| map_error(err, &registry, reference);
    let client = Client::new(ClientConfig {
        protocol: if options.plain_http.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(options.plain_http.clone())
        },
        // runbox chooses among an index's manifests (see `select_platform`).
        platform_resolver: None,
        connect_timeout: Some(options.connect_timeout),
        read_timeout: Some(options.read_timeout),
        ..ClientConfig::default()
    });
    let auth = match &options.credentials {
        Credentials::Anonymous => RegistryAuth::Anonymous,
        Credentials::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Credentials::Bearer(token) => RegistryAuth::Bearer(token.clone()),
    };
    // Authenticating first makes a refused login an error of its own: later
    // requests would only see the registry's 401.
    client
        .auth(&image, &auth, RegistryOperation::Pull)
        .await
        .map_err(fail)?;

    // The manifest: by tag or digest, then, for an index, the platform's own.
    let mut wanted = image.clone();
    let mut found = None;
    for _ in 0..MAX_DEPTH {
        let (bytes, header_digest) = client
            .pull_manifest_raw(&wanted, &auth, image::MANIFEST_MEDIA_TYPES)
            .await
            .map_err(fail)?;
        let what = format!("manifest of {wanted}");
        let digest = match wanted.digest() {
            Some(expected) => {
                image::verify_bytes(&bytes, expected, &what)?;
                expected.to_string()
            }
            None => {
                image::verify_bytes(&bytes, &header_digest, &what)?;
                header_digest
            }
        };
        match image::parse_manifest(&bytes, &what)? {
            Manifest::Image(manifest) => {
                found = Some((manifest, digest));
                break;
            }
            Manifest::Index(index) => {
                let entry = image::select_platform(&index, &options.platform)?;
                wanted = image.clone_with_digest(entry.digest.clone());
            }
        }
    }
    let Some((manifest, manifest_digest)) = found else {
        return Err(OciError::InvalidImage(format!(
            "indexes nested deeper than {MAX_DEPTH} levels"
        )));
    };
    let total = manifest
        .layers
        .iter()
        .map(|l| u64::try_from(l.size).unwrap_or(0))
        .sum();
    progress(Progress::Resolved {
        manifest_digest: manifest_digest.clone(),
        layers: manifest.layers.len(),
        bytes: total,
    });

    // The blobs, each into a file of the staging area, checked by the client.
    let blobs = staging.blobs();
    let descriptors = std::iter::once(&manifest.config).chain(&manifest.layers);
    for descriptor in descriptors {
        let path = Digest::parse(&descriptor.digest)?.blob_path(&blobs);
        if path.exists() {
            continue; // a layer listed twice
        }
        download(&client, &image, descriptor, &path)
            .await
            .map_err(|err| match err {
                Download::Io(err) => OciError::io("writing", &path, err),
                Download::Registry(err) => fail(err),
            })?;
        progress(Progress::Downloaded {
            digest: descriptor.digest.clone(),
            bytes: u64::try_from(descriptor.size).unwrap_or(0),
        });
    }

    // Unpacking is file system work: it runs where blocking is allowed.
    progress(Progress::Unpacking);
    let platform = options.platform.clone();
    tokio::task::spawn_blocking(move || {
        image::install(staging, &blobs, &manifest, &manifest_digest, &platform)
    })
    .await
    .map_err(|err| OciError::Io {
        context: "unpacking the image".into(),
        source: std::io::Error::other(err.to_string()),
    })?
}

enum Download {
    Io(std::io::Error),
    Registry(OciDistributionError),
}

async fn download(
    client: &Client,
    image: &Reference,
    descriptor: &OciDescriptor,
    path: &Path,
) -> Result<(), Download> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(Download::Io)?;
    }
    let file = tokio::fs::File::create(path).await.map_err(Download::Io)?;
    let result = client.pull_blob(image, descriptor, file).await;
    if result.is_err() {
        // A partial blob must not pass for a downloaded one.
        let _ = tokio::fs::remove_file(path).await;
    }
    result.map_err(|err| match err {
        OciDistributionError::IoError(err) => Download::Io(err),
        other => Download::Registry(other),
    })
}

/// The client's error as runbox's: what a user can act on.
fn map_error(err: OciDistributionError, registry: &str, reference: &str) -> OciError {
    let registry = registry.to_string();
    match err {
        OciDistributionError::AuthenticationFailure(message) => {
            OciError::Auth { registry, message }
        }
        OciDistributionError::UnauthorizedError { url } => OciError::Auth {
            registry,
            message: format!("401 Unauthorized for {url}"),
        },
        OciDistributionError::RegistryError { envelope, url } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let message = format!("{envelope} ({url})");
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                OciError::Auth { registry, message }
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                OciError::NotFound {
                    what: format!("{reference}: {message}"),
                }
            } else {
                OciError::Network { registry, message }
            }
        }
        OciDistributionError::ServerError { code, url, message } => match code {
            401 | 403 => OciError::Auth {
                registry,
                message: format!("{code} for {url}: {message}"),
            },
            404 => OciError::NotFound {
                what: format!("{reference} ({url})"),
            },
            _ => OciError::Network {
                registry,
                message: format!("{code} for {url}: {message}"),
            },
        },
        OciDistributionError::ImageManifestNotFoundError(message) => OciError::NotFound {
            what: format!("{reference}: {message}"),
        },
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => OciError::DigestMismatch {
            what: format!("a blob of {reference}"),
            expected,
            actual,
        },
        OciDistributionError::RequestError(err) => OciError::Network {
            registry,
            message: error_chain(&err),
        },
        other => OciError::Network {
            registry,
            message: other.to_string(),
        },
    }
}

/// An error with its causes, which is where reqwest says what really failed.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
