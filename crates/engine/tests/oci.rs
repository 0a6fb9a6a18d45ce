//! Runtimes from OCI images, against the real thing: Debian's `docker-registry`
//! on loopback (with and without Basic auth), images pushed by `skopeo`, OCI
//! layouts and `docker save` archives; and hostile layers written by hand.

mod oci_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use oci_support::*;
use runbox_engine::runtime::oci::{
    self, Credentials, OciError, Platform, Progress, PullOptions, PulledImage,
};

fn options(registry: &Registry) -> PullOptions {
    PullOptions {
        plain_http: vec![registry.address.clone()],
        ..PullOptions::default()
    }
}

async fn pull(
    reference: &str,
    options: &PullOptions,
    dest: &Path,
) -> Result<PulledImage, OciError> {
    oci::pull(reference, options, dest, &|_| {}).await
}

/// The tree of the test image, as every source must build it.
fn assert_test_image(dest: &Path, image: &PulledImage, arch: &str) {
    assert_eq!(read(dest.join("etc/os-release")), "NAME=runbox-test\n");
    assert_eq!(read(dest.join("etc/arch")), arch);
    assert_eq!(read(dest.join("bin/hello")), "#!/bin/sh\necho hello\n");
    assert_eq!(
        std::fs::read_link(dest.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    let hello = std::fs::metadata(dest.join("usr/bin/hello")).unwrap();
    let again = std::fs::metadata(dest.join("usr/bin/hello-again")).unwrap();
    assert_eq!(hello.ino(), again.ino(), "the hard link is one file");
    assert_eq!(hello.mode() & 0o7777, 0o755);
    assert!(
        !dest.join("etc/obsolete").exists(),
        "the whiteout deleted it"
    );
    assert_eq!(
        names_in(&dest.join("var/cache")),
        ["new"],
        "the opaque dir hid the lower layer"
    );
    assert!(dest.join("work").is_dir());
    assert_eq!(image.layers, 2);
    assert_eq!(image.platform.architecture, arch);
    assert_eq!(image.config.cmd, ["/bin/hello"]);
    assert_eq!(image.config.working_dir.as_deref(), Some("/work"));
    assert!(image.config.env.iter().any(|e| e == "GREETING=hello"));
    assert!(image.size_bytes > 0);
}

fn my_uid() -> u32 {
    let probe = tempfile::tempfile().unwrap();
    probe.metadata().unwrap().uid()
}

// --- registries -------------------------------------------------------------

#[tokio::test]
async fn an_image_is_pulled_from_a_registry_without_auth_for_the_host_platform() {
    let registry = open_registry();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rootfs");
    let events = std::sync::Mutex::new(Vec::new());
    let image = oci::pull(
        &format!("{}/tiny:latest", registry.address),
        &options(registry),
        &dest,
        &|p| events.lock().unwrap().push(p),
    )
    .await
    .unwrap();
    assert_test_image(&dest, &image, host_arch());
    assert!(
        image
            .manifest_digest
            .as_deref()
            .unwrap()
            .starts_with("sha256:")
    );
    let events = events.into_inner().unwrap();
    assert!(
        matches!(events[0], Progress::Resolved { layers: 2, .. }),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&Progress::Unpacking));
    assert_eq!(
        names_in(dir.path()),
        ["rootfs"],
        "nothing but the tree is left"
    );
}

#[tokio::test]
async fn another_platform_of_a_multi_platform_image_is_chosen_by_name() {
    let registry = open_registry();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rootfs");
    let other = if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let options = PullOptions {
        platform: format!("linux/{other}").parse().unwrap(),
        ..options(registry)
    };
    let image = pull(
        &format!("{}/tiny:latest", registry.address),
        &options,
        &dest,
    )
    .await
    .unwrap();
    assert_test_image(&dest, &image, other);
}

#[tokio::test]
async fn a_platform_the_image_lacks_is_refused_naming_those_it_has() {
    let registry = open_registry();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rootfs");
    let options = PullOptions {
        platform: "linux/s390x".parse().unwrap(),
        ..options(registry)
    };
    let err = pull(
        &format!("{}/tiny:latest", registry.address),
        &options,
        &dest,
    )
    .await
    .unwrap_err();
    match &err {
        OciError::UnknownPlatform { wanted, available } => {
            assert_eq!(wanted, "linux/s390x");
            assert_eq!(available, &["linux/amd64", "linux/arm64"]);
        }
        other => panic!("expected UnknownPlatform, got {other:?}"),
    }
    assert!(names_in(dir.path()).is_empty(), "nothing is left: {err}");
}

#[tokio::test]
async fn a_missing_tag_is_not_found() {
    let registry = open_registry();
    let dir = tempfile::tempdir().unwrap();
    let err = pull(
        &format!("{}/tiny:nope", registry.address),
        &options(registry),
        &dir.path().join("rootfs"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err:?}");
    assert!(names_in(dir.path()).is_empty());
}

#[tokio::test]
async fn an_image_is_pulled_with_basic_auth() {
    let registry = basic_auth_registry();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rootfs");
    let options = PullOptions {
        credentials: Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
        ..options(registry)
    };
    let image = pull(
        &format!("{}/tiny:latest", registry.address),
        &options,
        &dest,
    )
    .await
    .unwrap();
    assert_test_image(&dest, &image, host_arch());
}

#[tokio::test]
async fn a_registry_with_auth_refuses_a_wrong_password_and_no_credentials() {
    let registry = basic_auth_registry();
    let dir = tempfile::tempdir().unwrap();
    let reference = format!("{}/tiny:latest", registry.address);
    let wrong = PullOptions {
        credentials: Credentials::Basic {
            username: USER.into(),
            password: "wrong".into(),
        },
        ..options(registry)
    };
    for options in [wrong, options(registry)] {
        let err = pull(&reference, &options, &dir.path().join("rootfs"))
            .await
            .unwrap_err();
        assert!(matches!(err, OciError::Auth { .. }), "{err:?}");
        assert!(names_in(dir.path()).is_empty());
    }
}

#[tokio::test]
async fn an_image_is_pulled_with_a_token_from_the_registrys_bearer_challenge() {
    let registry = token_auth_registry();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rootfs");
    let options = PullOptions {
        credentials: Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
        ..options(registry)
    };
    let image = pull(
        &format!("{}/tiny:latest", registry.address),
        &options,
        &dest,
    )
    .await
    .unwrap();
    assert_test_image(&dest, &image, host_arch());
}

#[tokio::test]
async fn a_token_server_refusing_the_credentials_is_an_auth_error() {
    let registry = token_auth_registry();
    let dir = tempfile::tempdir().unwrap();
    let options = PullOptions {
        credentials: Credentials::Basic {
            username: USER.into(),
            password: "wrong".into(),
        },
        ..options(registry)
    };
    let err = pull(
        &format!("{}/tiny:latest", registry.address),
        &options,
        &dir.path().join("rootfs"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::Auth { .. }), "{err:?}");
    assert!(names_in(dir.path()).is_empty());
}

#[tokio::test]
async fn a_blob_corrupted_in_the_registry_is_refused_and_leaves_nothing() {
    // An image of its own (a unique layer), so the shared image stays intact.
    let registry = open_registry();
    let layout = tempfile::tempdir().unwrap();
    let unique = format!("unique to the corruption test {}\n", std::process::id());
    let blob = Blob::gzip(layer(&[Item::File("file", unique.as_bytes(), 0o644)]));
    let digest = sha256(&blob.bytes);
    single_image_layout(layout.path(), &[blob]);
    registry.push(layout.path(), "latest", "corrupt:latest", false);
    let stored = registry.blob_file(&digest);
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stored, bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let err = pull(
        &format!("{}/corrupt:latest", registry.address),
        &options(registry),
        &dir.path().join("rootfs"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err:?}");
    assert!(names_in(dir.path()).is_empty(), "nothing is left");
}

#[tokio::test]
async fn an_unreachable_registry_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let options = PullOptions {
        plain_http: vec![address.clone()],
        ..PullOptions::default()
    };
    let err = pull(
        &format!("{address}/tiny:latest"),
        &options,
        &dir.path().join("rootfs"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::Network { .. }), "{err:?}");
}

// --- OCI layouts and docker save archives ------------------------------------

#[test]
fn an_image_is_built_from_an_oci_layout_by_tag_for_each_platform() {
    let dir = tempfile::tempdir().unwrap();
    for arch in ["amd64", "arm64"] {
        let dest = dir.path().join(arch);
        let platform: Platform = format!("linux/{arch}").parse().unwrap();
        let image = oci::from_layout(shared_layout(), Some("latest"), &platform, &dest).unwrap();
        assert_test_image(&dest, &image, arch);
    }
}

#[test]
fn an_image_is_built_from_a_docker_save_archive() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rootfs");
    let image = oci::from_docker_archive(shared_docker_archive(), &dest).unwrap();
    assert_test_image(&dest, &image, host_arch());
    assert_eq!(image.manifest_digest, None);
    assert!(image.config_digest.starts_with("sha256:"));
}

#[test]
fn a_corrupted_layer_in_a_layout_is_refused_and_leaves_nothing() {
    let layout = tempfile::tempdir().unwrap();
    let blob = Blob::gzip(layer(&[Item::File("file", b"content\n", 0o644)]));
    let digest = sha256(&blob.bytes);
    single_image_layout(layout.path(), &[blob]);
    let path = layout.path().join("blobs/sha256").join(&digest[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let err = oci::from_layout(
        layout.path(),
        None,
        &Platform::host(),
        &dir.path().join("rootfs"),
    )
    .unwrap_err();
    match &err {
        OciError::DigestMismatch { expected, .. } => assert_eq!(expected, &digest),
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(names_in(dir.path()).is_empty(), "nothing is left: {err}");
}

#[test]
fn a_docker_archive_of_docker_25_with_layers_behind_symlinks_is_read() {
    // Docker 25 and later: blobs/sha256/<hex> members, `<id>/layer.tar` symlinks.
    let tar = layer(&[Item::File("hello", b"from docker 25\n", 0o644)]);
    let diff_id = sha256(&tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": host_arch(), "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_name = format!("blobs/sha256/{}", &sha256(&config)[7..]);
    let layer_name = format!("blobs/sha256/{}", &diff_id[7..]);
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": ["tiny:25"], "Layers": ["0123abcd/layer.tar"],
    }]))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("docker25.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    for (name, data) in [
        (config_name.as_str(), &config[..]),
        (layer_name.as_str(), &tar[..]),
        ("manifest.json", &manifest[..]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, data).unwrap();
    }
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    builder
        .append_link(&mut link, "0123abcd/layer.tar", format!("../{layer_name}"))
        .unwrap();
    builder.into_inner().unwrap();

    let dest = dir.path().join("rootfs");
    let image = oci::from_docker_archive(&archive, &dest).unwrap();
    assert_eq!(read(dest.join("hello")), "from docker 25\n");
    assert_eq!(image.config.cmd, ["/hello"]);
    assert_eq!(image.config_digest, sha256(&config));
}

#[test]
fn a_corrupted_layer_in_a_docker_archive_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("tiny.tar");
    std::fs::copy(shared_docker_archive(), &archive).unwrap();
    // The first layer member: flip a byte of its tar stream.
    let offset = {
        let mut outer = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        let entry = outer
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap().to_string_lossy().ends_with(".tar") && e.size() > 0)
            .expect("a layer member");
        entry.raw_file_position()
    };
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[offset as usize + 600] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();

    let err = oci::from_docker_archive(&archive, &dir.path().join("rootfs")).unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err:?}");
    assert_eq!(names_in(dir.path()), ["tiny.tar"], "nothing is left: {err}");
}

#[test]
fn an_existing_destination_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("rootfs");
    std::fs::create_dir(&dest).unwrap();
    let err = oci::from_layout(shared_layout(), None, &Platform::host(), &dest).unwrap_err();
    assert!(matches!(err, OciError::DestinationExists(_)), "{err:?}");
}

// --- hostile layers ---------------------------------------------------------

/// Builds a one-image layout of `layers` (uncompressed) into `<dir>/rootfs`.
fn import(dir: &Path, layers: Vec<Vec<u8>>) -> Result<PulledImage, OciError> {
    let layout = dir.join("layout");
    std::fs::create_dir(&layout).unwrap();
    let blobs: Vec<Blob> = layers.into_iter().map(Blob::tar).collect();
    single_image_layout(&layout, &blobs);
    oci::from_layout(
        &layout,
        Some("latest"),
        &Platform::host(),
        &dir.join("rootfs"),
    )
}

fn assert_hostile(err: OciError, entry_named: &str, dir: &Path) {
    match &err {
        OciError::HostileLayer { entry, .. } => assert_eq!(entry, entry_named),
        other => panic!("expected HostileLayer, got {other:?}"),
    }
    assert_eq!(names_in(dir), ["layout"], "nothing is left: {err}");
}

#[test]
fn a_parent_directory_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = import(
        dir.path(),
        vec![layer(&[Item::File("../escape", b"out\n", 0o644)])],
    )
    .unwrap_err();
    assert_hostile(err, "../escape", dir.path());
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn an_absolute_path_is_written_inside_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("/runbox-oci-test-abs-{}", std::process::id());
    import(
        dir.path(),
        vec![layer(&[Item::File(&name, b"in\n", 0o644)])],
    )
    .unwrap();
    assert_eq!(read(dir.path().join("rootfs").join(&name[1..])), "in\n");
    assert!(
        !Path::new(&name).exists(),
        "nothing is written at the host's root"
    );
}

#[test]
fn a_symlink_to_outside_is_never_followed_by_a_later_layer() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    import(
        dir.path(),
        vec![
            layer(&[
                Item::Symlink("evil", &target),
                Item::Symlink("up", "../../../../../.."),
            ]),
            layer(&[
                Item::File("evil/passwd", b"owned\n", 0o644),
                Item::File("up/escaped", b"owned\n", 0o644),
            ]),
        ],
    )
    .unwrap();
    assert!(
        names_in(outside.path()).is_empty(),
        "nothing written through the link"
    );
    assert!(!dir.path().join("escaped").exists());
    let rootfs = dir.path().join("rootfs");
    // Resolved as if the tree were `/`: the files land in the tree.
    assert_eq!(read(rootfs.join(&target[1..]).join("passwd")), "owned\n");
    assert_eq!(read(rootfs.join("escaped")), "owned\n");
    assert_eq!(
        std::fs::read_link(rootfs.join("evil")).unwrap(),
        Path::new(&target)
    );
}

#[test]
fn a_symlink_to_etc_redirects_a_later_layer_into_the_trees_own_etc() {
    let dir = tempfile::tempdir().unwrap();
    let before = std::fs::read("/etc/passwd").unwrap();
    import(
        dir.path(),
        vec![
            layer(&[Item::Symlink("evil", "/etc")]),
            layer(&[Item::File("evil/passwd", b"root::0:0::/:/bin/sh\n", 0o644)]),
        ],
    )
    .unwrap();
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);
    assert_eq!(
        read(dir.path().join("rootfs/etc/passwd")),
        "root::0:0::/:/bin/sh\n"
    );
}

#[test]
fn an_entry_replaces_a_symlink_instead_of_writing_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "intact\n").unwrap();
    import(
        dir.path(),
        vec![
            layer(&[Item::Symlink("link", victim.to_str().unwrap())]),
            layer(&[Item::File("link", b"overwritten\n", 0o644)]),
        ],
    )
    .unwrap();
    assert_eq!(read(&victim), "intact\n");
    assert_eq!(read(dir.path().join("rootfs/link")), "overwritten\n");
}

#[test]
fn a_hard_link_to_a_file_outside_the_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = import(
        dir.path(),
        vec![layer(&[Item::HardLink("shadow", "/etc/shadow")])],
    )
    .unwrap_err();
    assert_hostile(err, "shadow", dir.path());
}

#[test]
fn a_hard_link_with_a_parent_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = import(
        dir.path(),
        vec![layer(&[Item::HardLink("passwd", "../../../../etc/passwd")])],
    )
    .unwrap_err();
    assert_hostile(err, "passwd", dir.path());
}

#[test]
fn device_nodes_and_fifos_are_skipped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let image = import(
        dir.path(),
        vec![layer(&[
            Item::Dir("dev/", 0o755),
            Item::CharDevice("dev/mem"),
            Item::Fifo("dev/pipe"),
            Item::File("ok", b"ok\n", 0o644),
        ])],
    )
    .unwrap();
    let rootfs = dir.path().join("rootfs");
    assert!(names_in(&rootfs.join("dev")).is_empty());
    let skipped: Vec<&str> = image.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(skipped, ["dev/mem", "dev/pipe"]);
}

#[test]
fn setuid_and_setgid_bits_are_dropped_and_files_belong_to_runbox() {
    let dir = tempfile::tempdir().unwrap();
    import(
        dir.path(),
        vec![layer(&[
            Item::File("su", b"#!/bin/sh\n", 0o6755),
            Item::Dir("shared/", 0o2775),
            Item::Dir("tmp/", 0o1777),
        ])],
    )
    .unwrap();
    let rootfs = dir.path().join("rootfs");
    let su = std::fs::metadata(rootfs.join("su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o755);
    assert_eq!(su.uid(), my_uid(), "the layer's uid 1000 is not applied");
    let shared = std::fs::metadata(rootfs.join("shared")).unwrap();
    assert_eq!(shared.permissions().mode() & 0o7777, 0o775);
    let tmp = std::fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777, "sticky stays");
}

#[test]
fn a_pull_can_be_spawned_on_a_multi_threaded_runtime() {
    // The server runs pulls as tasks: the future must be `Send`.
    fn assert_send<T: Send>(_: &T) {}
    let options = PullOptions::default();
    let future = oci::pull(
        "example.org/x:1",
        &options,
        Path::new("/nonexistent/x"),
        &|_| {},
    );
    assert_send(&future);
}
