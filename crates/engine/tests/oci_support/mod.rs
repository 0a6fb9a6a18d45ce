//! Set-up of the OCI import tests: images written as OCI layouts by hand (small,
//! exact, no download), and real registries (Debian's `docker-registry`) on
//! loopback with the images pushed there by `skopeo`.
//!
//! The tools are required: a test that cannot find them panics with the command
//! that installs them (`scripts/install-deps.sh`), it never passes without them.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const REGISTRY: &str = "/usr/bin/docker-registry";
pub const USER: &str = "runbox";
pub const PASSWORD: &str = "s3cret-pass";

/// Panics unless `program` is installed.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is not installed: run scripts/install-deps.sh (Debian packages docker-registry, skopeo, apache2-utils)"
    );
}

/// Runs a command and panics with its output unless it succeeds.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// Layers

/// One entry of a layer, written with its raw name (a hostile layer needs names
/// the `tar` crate's builder would refuse).
pub enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    CharDevice(&'a str),
    Fifo(&'a str),
}

/// An uncompressed tar stream of `items`, owned by uid 1000 to show owners are
/// not applied.
pub fn layer(items: &[Item<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_mtime(1_700_000_000);
        let (name, data, link): (&str, &[u8], Option<&str>) = match *item {
            Item::File(name, data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                (name, data, None)
            }
            Item::Dir(name, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(mode);
                (name, &[], None)
            }
            Item::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                (name, &[], Some(target))
            }
            Item::HardLink(name, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                (name, &[], Some(target))
            }
            Item::CharDevice(name) => {
                header.set_entry_type(tar::EntryType::Char);
                header.set_mode(0o666);
                header.set_device_major(1).unwrap();
                header.set_device_minor(3).unwrap();
                (name, &[], None)
            }
            Item::Fifo(name) => {
                header.set_entry_type(tar::EntryType::Fifo);
                header.set_mode(0o644);
                (name, &[], None)
            }
        };
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name = [0; 100];
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname = [0; 100];
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------
// OCI layouts

/// A layer as stored: its bytes (maybe compressed), media type and uncompressed digest.
pub struct Blob {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub diff_id: String,
}

impl Blob {
    pub fn tar(tar: Vec<u8>) -> Blob {
        Blob {
            diff_id: sha256(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar",
            bytes: tar,
        }
    }
    pub fn gzip(tar: Vec<u8>) -> Blob {
        Blob {
            diff_id: sha256(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            bytes: gzip(&tar),
        }
    }
    pub fn zstd(tar: Vec<u8>) -> Blob {
        Blob {
            diff_id: sha256(&tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
            bytes: zstd(&tar),
        }
    }
}

/// Writes `bytes` as a blob of the layout at `dir`; returns its descriptor.
fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = sha256(bytes);
    let path = dir.join("blobs/sha256").join(&digest[7..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Writes an image (config + manifest) for `arch` into the layout at `dir`;
/// returns the manifest's descriptor (with its platform).
pub fn put_image(dir: &Path, arch: &str, layers: &[Blob]) -> serde_json::Value {
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hello"],
            "Cmd": ["/bin/hello"],
            "WorkingDir": "/work"
        },
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()}
    });
    let config = put_blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let layers: Vec<_> = layers
        .iter()
        .map(|l| put_blob(dir, l.media_type, &l.bytes))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    });
    let mut descriptor = put_blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    descriptor["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
    descriptor
}

/// Writes the layout's `oci-layout` and `index.json`, naming `manifest` `tag`.
pub fn finish_layout(dir: &Path, tag: &str, mut manifest: serde_json::Value) {
    manifest["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A one-image layout at `dir` whose image has `layers`, tagged `latest`.
pub fn single_image_layout(dir: &Path, layers: &[Blob]) {
    let manifest = put_image(dir, host_arch(), layers);
    finish_layout(dir, "latest", manifest);
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

/// The test image, tagged `latest`: an index of a linux/amd64 and a linux/arm64
/// image (each says its architecture in `/etc/arch`), two layers each (gzip
/// then zstd, or gzip only for Docker's formats, which have no zstd) with a
/// symlink, a hard link, a whiteout and an opaque directory.
pub fn test_image_layout(dir: &Path, zstd: bool) {
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let base = layer(&[
            Item::Dir("etc/", 0o755),
            Item::File("etc/os-release", b"NAME=runbox-test\n", 0o644),
            Item::File("etc/arch", arch.as_bytes(), 0o644),
            Item::Dir("usr/", 0o755),
            Item::Dir("usr/bin/", 0o755),
            Item::File("usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755),
            Item::Symlink("bin", "usr/bin"),
            Item::HardLink("usr/bin/hello-again", "usr/bin/hello"),
            Item::File("etc/obsolete", b"removed by the next layer\n", 0o644),
            Item::Dir("var/", 0o755),
            Item::Dir("var/cache/", 0o755),
            Item::File("var/cache/old", b"old\n", 0o644),
        ]);
        let top = layer(&[
            Item::File("etc/.wh.obsolete", b"", 0o644),
            Item::Dir("var/cache/", 0o755),
            Item::File("var/cache/.wh..wh..opq", b"", 0o644),
            Item::File("var/cache/new", b"new\n", 0o644),
            Item::Dir("work/", 0o755),
        ]);
        let top = if zstd {
            Blob::zstd(top)
        } else {
            Blob::gzip(top)
        };
        manifests.push(put_image(dir, arch, &[Blob::gzip(base), top]));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let index = put_blob(
        dir,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    finish_layout(dir, "latest", index);
}

/// A directory of its own under the target's test directory
/// (`target/tmp/oci/<name>`), emptied: what is shared by a test process's tests
/// lives there, because statics are never dropped to clean a temporary dir.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("oci")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test image's layout, written once per test process.
pub fn shared_layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let dir = fresh_dir("layout");
        test_image_layout(&dir, true);
        dir
    })
}

/// The test image as a `docker save` archive (layers gzip only).
pub fn shared_docker_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = fresh_dir("docker-archive");
        let layout = dir.join("layout");
        std::fs::create_dir(&layout).unwrap();
        test_image_layout(&layout, false);
        let archive = dir.join("tiny.tar");
        docker_archive(&layout, &archive);
        archive
    })
}

// ---------------------------------------------------------------------------
// Registries

/// A `docker-registry` on a loopback port, stopped when the test process ends
/// (its shell waits on the test's pipe and kills it when the pipe closes).
pub struct Registry {
    pub address: String,
    pub storage: PathBuf,
    _child: Child,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        require(REGISTRY);
        let dir = fresh_dir(match auth {
            Auth::None => "registry",
            Auth::Basic => "registry-basic",
            Auth::Token => "registry-token",
        });
        let storage = dir.join("storage");
        let address = format!("127.0.0.1:{}", free_port());
        let auth = match auth {
            Auth::None => String::new(),
            Auth::Basic => {
                require("htpasswd");
                let htpasswd = dir.join("htpasswd");
                let line = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
                std::fs::write(&htpasswd, line).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: runbox-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            Auth::Token => {
                let server = TokenServer::start(&dir);
                format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    server.address,
                    server.cert.display()
                )
            }
        };
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("sh")
            .args([
                "-c",
                r#""$0" serve "$1" >"$2" 2>&1 & pid=$!; read _; kill $pid"#,
                REGISTRY,
            ])
            .arg(&config)
            .arg(dir.join("registry.log"))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let registry = Registry {
            address,
            storage,
            _child: child,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut stream) = TcpStream::connect(&self.address) {
                stream
                    .write_all(b"GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut line = String::new();
                if BufReader::new(&mut stream).read_line(&mut line).is_ok()
                    && line.starts_with("HTTP/")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {} within 10 s",
                self.address
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pushes the image `tag` of the layout at `layout` (every platform) as `name`.
    pub fn push(&self, layout: &Path, tag: &str, name: &str, creds: bool) {
        require("skopeo");
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"]);
        if creds {
            command.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        command
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}", self.address));
        run(&mut command);
    }

    /// The file where the registry keeps the blob `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = &digest[7..];
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// The shared registry without auth, with the test image pushed as `tiny:latest`.
pub fn open_registry() -> &'static Registry {
    static REGISTRY_OPEN: OnceLock<Registry> = OnceLock::new();
    REGISTRY_OPEN.get_or_init(|| {
        let registry = Registry::start(Auth::None);
        registry.push(shared_layout(), "latest", "tiny:latest", false);
        registry
    })
}

/// The shared registry with Basic auth (htpasswd), the test image as `tiny:latest`.
pub fn basic_auth_registry() -> &'static Registry {
    static REGISTRY_BASIC: OnceLock<Registry> = OnceLock::new();
    REGISTRY_BASIC.get_or_init(|| {
        let registry = Registry::start(Auth::Basic);
        registry.push(shared_layout(), "latest", "tiny:latest", true);
        registry
    })
}

/// The shared registry with token auth (a Bearer challenge whose realm is the
/// test's token server), the test image as `tiny:latest`.
pub fn token_auth_registry() -> &'static Registry {
    static REGISTRY_TOKEN: OnceLock<Registry> = OnceLock::new();
    REGISTRY_TOKEN.get_or_init(|| {
        let registry = Registry::start(Auth::Token);
        registry.push(shared_layout(), "latest", "tiny:latest", true);
        registry
    })
}

/// How a test registry checks its clients.
#[derive(Clone, Copy)]
pub enum Auth {
    None,
    /// htpasswd: Basic auth on every request.
    Basic,
    /// A Bearer challenge sending clients to a token server for a signed JWT.
    Token,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const TOKEN_SERVICE: &str = "runbox-test-registry";
pub const TOKEN_ISSUER: &str = "runbox-test-issuer";

/// The token server of a token-auth registry, as Docker Hub's auth.docker.io
/// is to its registry: given `USER:PASSWORD` (Basic), it hands out a JWT
/// granting the scopes asked for, signed (RS256, with `openssl`) by a key whose
/// self-signed certificate the registry trusts; without them, 401. It serves on
/// a thread of the test process, which ends with it.
struct TokenServer {
    address: String,
    cert: PathBuf,
}

impl TokenServer {
    fn start(dir: &Path) -> TokenServer {
        require("openssl");
        let key = dir.join("token.key");
        let cert = dir.join("token.pem");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=runbox-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64(&der, false);
        let expected = format!(
            "Basic {}",
            base64(format!("{USER}:{PASSWORD}").as_bytes(), false)
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve_token(stream, &expected, &key, &x5c);
            }
        });
        TokenServer { address, cert }
    }
}

fn serve_token(
    mut stream: TcpStream,
    expected: &str,
    key: &Path,
    x5c: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
            && value.trim() == expected
        {
            authorized = true;
        }
    }
    if !authorized {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    // GET /token?scope=repository:tiny:pull,push&service=...
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let access: Vec<serde_json::Value> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .map(|scope| scope.replace("%3A", ":").replace("%2C", ",").replace("%2F", "/"))
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": USER, "aud": TOKEN_SERVICE,
        "exp": now + 600, "nbf": now - 60, "iat": now - 60,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64(&serde_json::to_vec(&header).unwrap(), true),
        base64(&serde_json::to_vec(&claims).unwrap(), true)
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())?;
    let signature = openssl.wait_with_output()?.stdout;
    let token = format!("{signing_input}.{}", base64(&signature, true));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 600}).to_string();
    stream.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// Base64 (standard, padded) or base64url (unpadded, as JWTs use).
fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// Writes the host's image of the test layout as a `docker save` archive.
pub fn docker_archive(layout: &Path, path: &Path) {
    require("skopeo");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker-archive:{}:tiny:latest", path.display())));
}

/// Every name in `dir` (to show nothing was left behind).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn read(path: impl AsRef<Path>) -> String {
    let mut text = String::new();
    std::fs::File::open(path.as_ref())
        .unwrap_or_else(|err| panic!("{}: {err}", path.as_ref().display()))
        .read_to_string(&mut text)
        .unwrap();
    text
}
