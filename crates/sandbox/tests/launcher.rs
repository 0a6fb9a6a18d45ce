//! Launcher processes: what happens when one dies mid-run, and what a launcher
//! does with input that is not the service's protocol.

mod support;

use std::collections::HashSet;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runbox_sandbox::{BoxConfig, Error, Sandbox, SandboxOptions, Status};

/// Tests here count this process's children: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// This process's children with their names (from every thread: a box's init
/// is a child of the thread that started its launcher).
fn children() -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in list
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

/// Children named `name`.
fn children_named(name: &str) -> Vec<i32> {
    children()
        .into_iter()
        .filter(|(_, comm)| comm == name)
        .map(|(pid, _)| pid)
        .collect()
}

/// The launcher processes among this process's children. A box's init starts
/// as a copy of its launcher, name included, until it names itself: it is told
/// apart by its PID namespace (its `NSpid` has two levels).
fn launchers() -> Vec<i32> {
    children_named("runbox-launcher")
        .into_iter()
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find(|l| l.starts_with("NSpid:"))
                .is_some_and(|l| l.split_whitespace().count() == 2)
        })
        .collect()
}

/// The boxes' inits among this process's children, whatever their name (an
/// init is named after its launcher until it renames itself): the children in
/// a PID namespace of their own.
fn inits() -> Vec<i32> {
    children()
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find(|l| l.starts_with("NSpid:"))
                .is_some_and(|l| l.split_whitespace().count() > 2)
        })
        .collect()
}

/// A sandbox of `max_boxes` slots whose boxes are born in launcher processes.
fn launched(max_boxes: u32, uid_base: u32) -> Sandbox {
    Sandbox::new(SandboxOptions {
        max_boxes,
        uid_base,
        launcher: Some(support::launcher()),
        ..SandboxOptions::default()
    })
    .unwrap()
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// The pids in the cgroups this sandbox made (`runbox-<our pid>-*`).
fn pids_in_our_box_cgroups() -> HashSet<i32> {
    let prefix = format!("runbox-{}-", std::process::id());
    let mut pids = HashSet::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    let mut inside = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) {
                    inside.push(entry.path());
                } else {
                    stack.push(entry.path());
                }
            }
        }
    }
    while let Some(dir) = inside.pop() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(
            procs
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                inside.push(entry.path());
            }
        }
    }
    pids
}

#[test]
fn killing_launchers_during_a_hundred_boxes_answers_every_request_and_leaves_nothing() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = launched(4, 2_200_000);
    let config = BoxConfig::new(["/bin/sh", "-c", "echo $((6 * 7))"]);
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let killed = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        // The killer: a launcher, SIGKILL, a different one each time, after
        // every third box that ends, so that kills land while boxes are being
        // born on the other slots, on any machine's speed.
        scope.spawn(|| {
            let mut turn = 0;
            let mut last = 0;
            while !done.load(Ordering::SeqCst) {
                let ended = results.lock().unwrap().len();
                let found = launchers();
                if ended >= last + 3 && !found.is_empty() {
                    turn += 1;
                    last = ended;
                    let pid = found[turn % found.len()];
                    // SAFETY: kill with integer arguments; the pid is our unreaped child.
                    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                        killed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let runners: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    while next.fetch_add(1, Ordering::SeqCst) < 100 {
                        let result = sandbox.run(&config);
                        results.lock().unwrap().push(result);
                    }
                })
            })
            .collect();
        for runner in runners {
            runner.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), 100, "every request is answered");
    let mut ran = 0;
    for result in &results {
        match result {
            Ok(outcome) => {
                assert_eq!(outcome.status, Status::Ok, "{outcome:?}");
                assert_eq!(outcome.stdout, b"42\n", "{outcome:?}");
                ran += 1;
            }
            // A clear error, naming the launcher's end: the request was answered.
            Err(e @ Error::LauncherGone { .. }) => eprintln!("answered with: {e}"),
            Err(other) => panic!("not an answer about the launcher: {other:?}"),
        }
    }
    let killed = killed.load(Ordering::SeqCst);
    eprintln!("{ran} of 100 boxes ran; {killed} launchers killed");
    assert!(killed >= 10, "the killer found launchers to kill: {killed}");
    assert!(ran >= 50, "a new launcher took over each time: {ran} ran");

    // No box is left: every init reaped (the reaper works in the background),
    // and no process but a launcher in the sandbox's cgroups.
    assert!(
        eventually(Duration::from_secs(10), || inits().is_empty()),
        "box inits left: {:?}",
        children()
    );
    let launchers: HashSet<i32> = launchers().into_iter().collect();
    let in_cgroups = pids_in_our_box_cgroups();
    assert!(
        in_cgroups.is_subset(&launchers),
        "processes in box cgroups {in_cgroups:?}, launchers {launchers:?}"
    );
    // And the next request works.
    let outcome = sandbox.run(&config).unwrap();
    assert_eq!(outcome.stdout, b"42\n", "{outcome:?}");
    drop(sandbox);
    assert!(
        children().is_empty(),
        "a dropped sandbox leaves no launcher or box: {:?}",
        children()
    );
}

/// Starts the launcher program on one end of a new socket pair; returns the
/// other end.
fn start_launcher() -> (std::process::Child, OwnedFd) {
    let (ours, theirs) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let theirs_raw = theirs.as_raw_fd();
    let mut command = Command::new(env!("CARGO_BIN_EXE_runbox-box-launcher"));
    command.stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; it puts the socket at 3, as the
    // sandbox does.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(theirs_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    drop(theirs);
    (child, ours)
}

/// A small deterministic generator of hostile messages.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn message(&mut self) -> Vec<u8> {
        let len = match self.next() % 4 {
            0 => (self.next() % 4) as usize,
            1 => (self.next() % 32) as usize,
            2 => (self.next() % 512) as usize,
            _ => (self.next() % 20_000) as usize,
        };
        let mut bytes: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        // Often a valid variant tag first, so the decoder goes deeper.
        if let Some(first) = bytes.first_mut()
            && self.next().is_multiple_of(2)
        {
            *first = (self.next() % 2) as u8;
        }
        bytes
    }
}

#[test]
fn a_launcher_answers_hostile_messages_and_never_crashes() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (mut launcher, socket) = start_launcher();
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let spare = std::fs::File::open("/dev/null").unwrap();
    for round in 0..2_000 {
        let message = noise.message();
        // Some messages carry descriptors, which the launcher must close.
        let fds = [spare.as_fd(), spare.as_fd()];
        let carried = &fds[..(noise.next() % 3) as usize];
        let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        if !carried.is_empty() {
            assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(carried)));
        }
        rustix::net::sendmsg(
            &socket,
            &[IoSlice::new(&message)],
            &mut control,
            rustix::net::SendFlags::empty(),
        )
        .unwrap_or_else(|e| panic!("round {round}: the launcher is gone ({e})"));
        let mut reply = [0u8; 4096];
        let got = rustix::net::recv(&socket, &mut reply[..], rustix::net::RecvFlags::empty())
            .unwrap_or_else(|e| panic!("round {round}: no reply ({e})"));
        assert!(got.0 > 0, "round {round}: the launcher closed its socket");
        // Postcard's tag of `Reply::Failed`: a hostile message is refused.
        assert_eq!(reply[0], 2, "round {round}: {:?}", &reply[..got.0]);
    }
    assert!(launcher.try_wait().unwrap().is_none(), "the launcher died");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", launcher.id()))
        .unwrap()
        .count();
    assert!(fds <= 8, "the launcher kept descriptors it was sent: {fds}");
    drop(socket);
    let status = launcher.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "it ends cleanly when the service goes"
    );
}

#[test]
fn a_program_that_is_not_given_a_socket_refuses_to_start() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_runbox-box-launcher"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the service's socket"),
        "{out:?}"
    );
}

#[test]
fn a_box_with_megabytes_of_arguments_and_environment_crosses_to_its_launcher() {
    // More than a socket's default send buffer (208 KiB) carries, within what
    // an exec takes (each string under 128 KiB).
    let word = "x".repeat(100_000);
    let mut command = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        "echo ${#BIG_0} $#".into(),
        "sh".into(),
    ];
    command.extend(std::iter::repeat_n(word.clone(), 12));
    let mut config = BoxConfig::new(command);
    for i in 0..12 {
        config = config.with_env(format!("BIG_{i}"), word.clone());
    }
    // A sandbox of its own, dropped at the end: the other tests here count
    // this process's launchers.
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = launched(1, 2_240_000);
    let outcome = sandbox.run(&config).unwrap();
    assert_eq!(outcome.stdout, b"100000 12\n", "{outcome:?}");
}

#[test]
fn a_launcher_ignores_the_signals_of_a_service_stop_and_a_stuck_one_is_replaced() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = launched(1, 2_250_000);
    let config = BoxConfig::new(["/bin/sh", "-c", "echo $((6 * 7))"]);
    assert_eq!(sandbox.run(&config).unwrap().stdout, b"42\n");
    let [launcher] = launchers()[..] else {
        panic!("one launcher: {:?}", children())
    };
    // What a terminal's Ctrl-C or systemd's stop sends to every process.
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: kill with integer arguments; the pid is our unreaped child.
        assert_eq!(unsafe { libc::kill(launcher, signal) }, 0);
    }
    assert_eq!(sandbox.run(&config).unwrap().stdout, b"42\n");
    assert_eq!(launchers(), [launcher], "the same launcher served");

    // Stopped, it answers nothing: the service gives up on it, kills it and
    // asks a new one.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(launcher, libc::SIGSTOP) }, 0);
    let start = Instant::now();
    let outcome = sandbox.run(&config).unwrap();
    assert_eq!(outcome.stdout, b"42\n", "{outcome:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let now = launchers();
    assert!(
        now.len() == 1 && now[0] != launcher,
        "a new launcher: {now:?}"
    );
    drop(sandbox);
    assert!(children().is_empty(), "{:?}", children());
}

#[test]
fn a_box_cloned_by_a_launcher_that_ended_before_answering_is_killed_and_reaped() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 1,
        uid_base: 2_260_000,
        launcher: Some(runbox_sandbox::LauncherProgram {
            args: vec!["--end-after-each-clone".into()],
            ..support::launcher()
        }),
        ..SandboxOptions::default()
    })
    .unwrap();
    // Both the launcher and its replacement end after cloning: the request
    // fails, and each box they cloned but never announced is found through
    // its birth record, killed and reaped before the answer.
    let err = sandbox
        .run(&BoxConfig::new(["/bin/true"]))
        .expect_err("no launcher answered");
    assert!(matches!(err, Error::LauncherGone { .. }), "{err}");
    assert!(inits().is_empty(), "boxes left: {:?}", children());
    drop(sandbox);
    assert!(children().is_empty(), "{:?}", children());
}

#[test]
fn a_box_does_not_map_the_page_where_its_launcher_records_births() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sandbox = launched(1, 2_270_000);
    let maps = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    std::thread::scope(|scope| {
        let run = scope.spawn(|| sandbox.run(&BoxConfig::new(["/bin/sleep", "1"])));
        assert!(
            eventually(Duration::from_secs(5), || !inits().is_empty()),
            "the box started"
        );
        let [launcher] = launchers()[..] else {
            panic!("one launcher: {:?}", children())
        };
        assert!(
            maps(launcher).contains("runbox-birth-record"),
            "{}",
            maps(launcher)
        );
        for init in inits() {
            assert!(
                !maps(init).contains("runbox-birth-record"),
                "{}",
                maps(init)
            );
        }
        assert_eq!(run.join().unwrap().unwrap().status, Status::Ok);
    });
}
