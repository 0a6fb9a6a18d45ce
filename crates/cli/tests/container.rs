//! The container image (`deploy/Containerfile`) built and run under podman:
//! health, Python and C through the API, a fork bomb contained, `doctor` naming
//! the flags a bare container lacks, and a restart on the same volume.
//!
//! The image is built from the binary under test (`--target prebuilt`), so CI
//! compiles runbox once; `deploy/Containerfile`'s default stage compiles it from
//! source. The base is a Debian 12 root made by `scripts/container-base.sh`
//! (mmdebstrap): this machine cannot reach Docker Hub. Podman runs containers
//! with runc (crun refuses this host's hybrid cgroups) and explicit ulimits.
//! Everything the test makes is named after its pid and removed by name.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

/// What boxes need in a container on a cgroup v1 or hybrid host (docs/deploy.md).
const LEAST_PRIVILEGE: &[&str] = &[
    "--cap-add",
    "SYS_ADMIN,MKNOD",
    "--security-opt",
    "unmask=/proc/*",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
];

/// runc's rlimits must not exceed what podman's own processes hold here.
const ULIMITS: &[&str] = &[
    "--ulimit",
    "nofile=16384:16384",
    "--ulimit",
    "nproc=16384:16384",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `podman --runtime runc ARGS`, its output (panics when podman cannot start).
fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(["--runtime", "runc"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("podman {args:?} did not start ({e}): scripts/install-deps.sh installs it")
        })
}

/// `podman ARGS`, which must succeed; its stdout.
fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names this run gives its image, containers and volume, removed on drop.
struct Names {
    image: String,
    volume: String,
    containers: Vec<String>,
}

impl Names {
    fn new() -> Names {
        let id = std::process::id();
        Names {
            image: format!("localhost/runbox-test-image:{id}"),
            volume: format!("runbox-test-data-{id}"),
            containers: ["first", "second", "bare"]
                .iter()
                .map(|c| format!("runbox-test-{id}-{c}"))
                .collect(),
        }
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = podman(&["rm", "-f", "-t", "5", container]);
        }
        let _ = podman(&["volume", "rm", "-f", &self.volume]);
        let _ = podman(&["rmi", "-f", &self.image]);
    }
}

/// The Debian 12 base image, made once per machine by scripts/container-base.sh.
fn base_image() -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/container-base.sh"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "scripts/container-base.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds the image from the binary under test, in a context of just what the
/// Containerfile copies.
fn build_image(names: &Names) {
    let context = tempfile::tempdir().expect("a build context");
    let root = repo_root();
    let copy = |from: &Path, to: &Path| {
        let status = Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success(), "cp {} {}", from.display(), to.display());
    };
    copy(&root.join("languages"), context.path());
    std::fs::create_dir(context.path().join("scripts")).unwrap();
    copy(
        &root.join("scripts/install-languages.sh"),
        &context.path().join("scripts"),
    );
    copy(
        Path::new(support::runbox_binary()),
        &context.path().join("runbox"),
    );
    let base = base_image();
    let containerfile = root.join("deploy/Containerfile");
    let started = Instant::now();
    let mut args = vec!["build", "--format", "docker", "--layers=false"];
    args.extend(ULIMITS);
    let base_arg = format!("DEBIAN_IMAGE={base}");
    args.extend([
        "--build-arg",
        &base_arg,
        "--target",
        "prebuilt",
        "-t",
        &names.image,
        "-f",
        containerfile.to_str().unwrap(),
        context.path().to_str().unwrap(),
    ]);
    podman_ok(&args);
    eprintln!("image built in {:.0} s", started.elapsed().as_secs_f64());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A container of the image serving on a loopback port.
struct Served {
    name: String,
    url: String,
    client: reqwest::blocking::Client,
}

impl Served {
    fn start(names: &Names, name: &str) -> Served {
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:2358");
        let volume = format!("{}:/var/lib/runbox", names.volume);
        let mut args = vec!["run", "-d", "--name", name, "-p", &publish, "-v", &volume];
        args.extend(ULIMITS);
        args.extend(LEAST_PRIVILEGE);
        args.extend(["-e", "NO_COLOR=1", &names.image]);
        podman_ok(&args);
        let served = Served {
            name: name.to_string(),
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        served.wait_healthy();
        served
    }

    fn logs(&self) -> String {
        let out = podman(&["logs", "--tail", "40", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self
                .client
                .get(format!("{}/healthz", self.url))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer /healthz within a minute:\n{}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn execute(&self, key: &str, body: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}/api/v1/execute", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .expect("the container answers");
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        assert_eq!(status, 200, "{text}\n{}", self.logs());
        serde_json::from_str(&text).unwrap()
    }

    /// The processes of the container, as `podman top` lists them.
    fn processes(&self) -> usize {
        podman_ok(&["top", &self.name, "pid"])
            .lines()
            .skip(1)
            .count()
    }
}

#[test]
fn the_image_serves_runs_contains_a_fork_bomb_and_keeps_its_volume() {
    let names = Names::new();
    build_image(&names);

    // A bare container: doctor names each flag that is missing.
    let mut args = vec!["run", "--rm", "--name", &names.containers[2]];
    args.extend(ULIMITS);
    args.extend([names.image.as_str(), "doctor"]);
    let bare = podman(&args);
    let report = String::from_utf8_lossy(&bare.stdout);
    assert!(!bare.status.success(), "{report}");
    for expected in [
        "CAP_SYS_ADMIN and CAP_MKNOD missing",
        "--cap-add SYS_ADMIN,MKNOD",
        "/proc is masked",
        "--security-opt unmask=/proc/*",
        "cgroup is mounted read-only",
        "-v /sys/fs/cgroup:/sys/fs/cgroup:rw",
    ] {
        assert!(report.contains(expected), "no '{expected}' in:\n{report}");
    }

    // Everything else granted, but a seccomp profile that refuses unshare.
    let profile = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        profile.path(),
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let seccomp = format!("seccomp={}", profile.path().display());
    let mut args = vec!["run", "--rm", "--name", &names.containers[2]];
    args.extend(ULIMITS);
    args.extend(LEAST_PRIVILEGE);
    args.extend(["--security-opt", &seccomp, names.image.as_str(), "doctor"]);
    let refused = podman(&args);
    let report = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{report}");
    assert!(
        report.contains("the container's seccomp profile refuses user namespaces"),
        "{report}"
    );

    let first = Served::start(&names, &names.containers[0]);
    // The image's HEALTHCHECK asks /readyz, which runs a real box.
    podman_ok(&["healthcheck", "run", &first.name]);
    let doctor = podman_ok(&["exec", &first.name, "runbox", "doctor"]);
    assert!(doctor.contains("boxes are safe on this host"), "{doctor}");

    let key = podman_ok(&[
        "exec",
        &first.name,
        "runbox",
        "keys",
        "create",
        "--name",
        "test",
        "--scope",
        "admin",
    ])
    .trim()
    .to_string();
    let python = first.execute(&key, &json!({"language": "python", "source": "print(6*7)"}));
    assert_eq!(python["run"]["stdout"], "42\n", "{python}");
    let c = first.execute(
        &key,
        &json!({"language": "c", "source": "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 6 * 7); }"}),
    );
    assert_eq!(c["compile"]["status"], "ok", "{c}");
    assert_eq!(c["run"]["stdout"], "42\n", "{c}");

    // A fork bomb in a box: stopped by the box's limits, and the container
    // (one runbox process) carries on as before.
    let before = first.processes();
    let bomb = first.execute(
        &key,
        &json!({"language": "c", "source": "#include <unistd.h>\nint main(void) { for (;;) fork(); }"}),
    );
    let status = bomb["run"]["status"].as_str().unwrap_or_default();
    assert!(
        [
            "time_limit_exceeded",
            "runtime_error",
            "memory_limit_exceeded"
        ]
        .contains(&status),
        "{bomb}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.processes() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(first.processes(), before, "box processes outlived the bomb");
    let again = first.execute(
        &key,
        &json!({"language": "python", "source": "print('alive')"}),
    );
    assert_eq!(again["run"]["stdout"], "alive\n", "{again}");

    // A new container on the same volume keeps the key and the history.
    podman_ok(&["stop", "-t", "30", &first.name]);
    let second = Served::start(&names, &names.containers[1]);
    let id = python["id"].as_str().expect("the run's id");
    let response = second
        .client
        .get(format!("{}/api/v1/submissions/{id}", second.url))
        .bearer_auth(&key)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{}", second.logs());
    let stored: Value = response.json().unwrap();
    assert_eq!(stored["result"]["run"]["stdout"], "42\n", "{stored}");
}
