//! Boxes with network: they reach what the firewall allows, never the host's
//! loopback or a denied range, cannot change their firewall, and boxes without
//! network still have none.

use std::io::Write;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

use runbox_sandbox::{BoxConfig, Limits, NetworkOptions, Outcome, Sandbox, SandboxOptions, Status};

/// The host's own address on its default route: what a box would reach if the
/// firewall let it, and a stand-in for "another machine" (it is not loopback).
fn host_address() -> IpAddr {
    let probe = UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    // No packet is sent: connecting a UDP socket only picks the route.
    probe
        .connect("192.0.2.254:9")
        .expect("this host has a default route or a route to TEST-NET-1");
    probe.local_addr().expect("a local address").ip()
}

/// A TCP server on all of the host's addresses that greets every connection.
fn greeter() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("0.0.0.0:0").expect("a listener");
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(b"hello");
            }
        });
        port
    })
}

fn sandbox_with(deny: Vec<String>, deny_host_addresses: bool, uid_base: u32) -> Sandbox {
    Sandbox::new(SandboxOptions {
        max_boxes: 4,
        uid_base,
        network: Some(NetworkOptions {
            deny,
            deny_host_addresses,
            ..NetworkOptions::default()
        }),
        // As the service does: boxes born in launcher processes.
        launcher: Some(runbox_sandbox::LauncherProgram::dedicated(env!(
            "CARGO_BIN_EXE_runbox-box-launcher"
        ))),
        ..SandboxOptions::default()
    })
    .expect("a sandbox with network (slirp4netns and nftables installed)")
}

/// Network, and nothing denied (not even the host's own addresses): only
/// slirp4netns's own guard of the host's loopback.
fn open_sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| sandbox_with(Vec::new(), false, 1_820_000))
}

/// Network as an operator gets it by default: the default deny list and the
/// host's own addresses refused.
fn guarded_sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| sandbox_with(NetworkOptions::default().deny, true, 1_830_000))
}

/// A Bash script in a box: `connect HOST PORT` prints what the server sent or
/// the error.
fn connect_script(host: &str, port: u16) -> String {
    format!(
        "if exec 3<>/dev/tcp/{host}/{port}; then head -c 5 <&3; echo; else echo refused; fi 2>/dev/null"
    )
}

fn run(sandbox: &Sandbox, script: &str, network: bool) -> Outcome {
    let mut config = BoxConfig::new(["/bin/bash", "-c", script]).with_limits(Limits {
        wall_time: Duration::from_secs(10),
        ..Limits::default()
    });
    if network {
        config = config.with_network();
    }
    sandbox.run(&config).expect("the box runs")
}

fn stdout(outcome: &Outcome) -> String {
    String::from_utf8_lossy(&outcome.stdout).into_owned()
}

#[test]
fn a_box_with_network_reaches_an_allowed_host() {
    let host = host_address().to_string();
    let outcome = run(open_sandbox(), &connect_script(&host, greeter()), true);
    assert_eq!(stdout(&outcome), "hello\n", "{outcome:?}");
}

#[test]
fn a_box_without_network_reaches_nothing_even_on_a_sandbox_with_network() {
    let host = host_address().to_string();
    let outcome = run(open_sandbox(), &connect_script(&host, greeter()), false);
    assert_eq!(stdout(&outcome), "refused\n", "{outcome:?}");
}

#[test]
fn the_hosts_loopback_is_unreachable_with_network() {
    let port = greeter();
    // 10.0.2.2 is slirp4netns's alias of the host's loopback (disabled); 127.0.0.1
    // is the box's own loopback, where nothing listens.
    for host in ["10.0.2.2", "127.0.0.1"] {
        let outcome = run(open_sandbox(), &connect_script(host, port), true);
        assert_eq!(stdout(&outcome), "refused\n", "{host}: {outcome:?}");
    }
}

#[test]
fn the_hosts_own_address_is_refused_by_default_at_once() {
    let host = host_address().to_string();
    let started = std::time::Instant::now();
    let outcome = run(guarded_sandbox(), &connect_script(&host, greeter()), true);
    assert_eq!(stdout(&outcome), "refused\n", "{outcome:?}");
    // A reset, not a silent drop that would wait for a timeout.
    assert!(started.elapsed() < Duration::from_secs(3), "{outcome:?}");
}

#[test]
fn the_program_cannot_remove_its_firewall() {
    let host = host_address().to_string();
    let script = format!(
        "/usr/sbin/nft flush ruleset 2>&1 | head -c 200; echo; {}",
        connect_script(&host, greeter())
    );
    let outcome = run(guarded_sandbox(), &script, true);
    let out = stdout(&outcome);
    // nft cannot even open its netlink socket: seccomp refuses NETLINK_NETFILTER
    // (and without it, the box has no CAP_NET_ADMIN either).
    assert!(out.contains("Protocol not supported"), "{out}");
    assert!(out.ends_with("refused\n"), "{out}");
}

#[test]
fn a_box_with_network_has_a_resolver_and_the_ca_certificates() {
    let outcome = run(
        open_sandbox(),
        "cat /etc/resolv.conf; grep hosts /etc/nsswitch.conf; ls /etc/ssl/certs | head -c 1 | wc -c",
        true,
    );
    assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
    assert_eq!(
        stdout(&outcome),
        "nameserver 10.0.2.3\nhosts: files dns\n1\n"
    );
}

#[test]
fn a_sandbox_without_network_refuses_a_box_that_asks_for_it() {
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 1,
        uid_base: 1_840_000,
        ..SandboxOptions::default()
    })
    .unwrap();
    let err = sandbox
        .run(&BoxConfig::new(["true"]).with_network())
        .unwrap_err();
    assert!(err.to_string().contains("no network"), "{err}");
}

#[test]
fn one_box_cannot_take_more_than_slirp4netns_may_hold_of_the_hosts_sockets() {
    let host = host_address().to_string();
    let port = greeter();
    // The box may open many descriptors itself; its connections each cost
    // slirp4netns a host socket, and slirp4netns may hold about 1024.
    let script = format!(
        "import socket\nheld = []\ntry:\n    for _ in range(2000):\n        held.append(socket.create_connection(('{host}', {port}), timeout=2))\nexcept OSError:\n    pass\nprint(len(held))"
    );
    let config = BoxConfig::new(["/usr/bin/python3", "-c", &script])
        .with_limits(Limits {
            open_files: 4096,
            wall_time: Duration::from_secs(30),
            cpu_time: Duration::from_secs(20),
            ..Limits::default()
        })
        .with_network();
    let outcome = open_sandbox().run(&config).expect("the box runs");
    let held: usize = stdout(&outcome)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{outcome:?}"));
    assert!(
        (100..1024).contains(&held),
        "{held} connections held: {outcome:?}"
    );
}

/// Runs `f` on a thread of its own in a mount namespace of its own, cut off from
/// the host's (every mount private), so that what it mounts stays there.
fn in_private_mount_namespace<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare and mount with constant arguments change only this
            // thread's mount namespace (threads it creates inherit it).
            unsafe {
                assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare(CLONE_NEWNS)");
                assert_eq!(
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ),
                    0,
                    "make / private"
                );
            }
            f()
        })
        .join()
        .unwrap()
    })
}

/// Mounts a small tmpfs at `path` with mount `flags`.
fn mount_tmpfs(path: &std::path::Path, flags: libc::c_ulong) {
    let target = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mount with valid NUL-terminated strings; the caller's thread is in
    // a mount namespace of its own.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            flags,
            c"size=1m".as_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "mount tmpfs at {}", path.display());
}

#[test]
fn slirp4netns_unmounts_nothing_of_a_host_whose_mounts_are_shared() {
    // systemd makes every mount shared. slirp4netns's sandbox makes only "/"
    // private before it detaches the old root, so without a namespace of its own
    // the unmount of a submount of a shared mount (on such hosts: /sys/fs/cgroup,
    // /dev/pts, /run/user/N) reached the host, which lost its cgroup tree.
    // Here: a shared mount with a submount, in this test's own mount namespace.
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("shared");
    let child = parent.join("child");
    let survived = in_private_mount_namespace(|| {
        std::fs::create_dir(&parent).unwrap();
        mount_tmpfs(&parent, 0);
        // SAFETY: as in mount_tmpfs; changes only the propagation of `parent`.
        let shared = unsafe {
            let target = std::ffi::CString::new(parent.as_os_str().as_encoded_bytes()).unwrap();
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_SHARED,
                std::ptr::null(),
            )
        };
        assert_eq!(shared, 0, "make the parent shared");
        std::fs::create_dir(&child).unwrap();
        mount_tmpfs(&child, 0);
        std::fs::write(child.join("marker"), "here").unwrap();

        // The sandbox (and its slirp4netns) starts from this namespace.
        let sandbox = sandbox_with(Vec::new(), false, 1_860_000);
        let outcome = run(&sandbox, "echo up", true);
        assert_eq!(stdout(&outcome), "up\n", "{outcome:?}");
        drop(sandbox);
        std::fs::read_to_string(child.join("marker")).ok()
    });
    assert_eq!(
        survived.as_deref(),
        Some("here"),
        "the submount of a shared mount was unmounted by the box's network"
    );
}
