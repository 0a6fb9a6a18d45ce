//! End-to-end tests of the `runbox` binary: the real executable, real boxes.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn runbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbox"))
        .args(args)
        .output()
        .expect("runbox must start")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn sandbox_passes_output_through_and_exits_with_the_program_code() {
    let out = runbox(&[
        "sandbox",
        "--",
        "/bin/sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn sandbox_json_prints_the_stage_result() {
    let out = runbox(&["sandbox", "--json", "--", "/bin/echo", "hi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["stdout"], "hi\n");
    assert_eq!(json["exit_code"], 0);
    for field in ["cpu_time_ms", "wall_time_ms", "memory_kb"] {
        assert!(json[field].is_number(), "{field} missing: {json}");
    }
}

/// `runbox ... | head`: the reader is gone before runbox prints.
#[test]
fn a_closed_stdout_ends_a_command_quietly_with_141() {
    for args in [
        &["sandbox", "--json", "--", "/bin/echo", "hi"][..],
        &["sandbox", "--", "/bin/echo", "hi"][..],
        &["languages"][..],
        &["run", "--json", "-l", "bash", "-e", "echo hi"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runbox"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runbox must start");
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

#[test]
fn a_killed_program_exits_with_128_plus_the_signal_and_names_the_limit() {
    let out = runbox(&["sandbox", "--wall-time-limit", "200ms", "--", "sleep", "5"]);
    assert_eq!(out.status.code(), Some(128 + 9));
    assert_eq!(text(&out.stderr), "runbox: time_limit_exceeded\n");
}

#[test]
fn stdin_file_and_dir_binds_reach_the_program() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.txt"), "from a file\n").unwrap();
    let spec = format!("{}:/data", dir.path().display());
    let input = dir.path().join("input.txt");
    let out = runbox(&[
        "sandbox",
        "--dir",
        &spec,
        "--stdin",
        input.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "cat; ls /data",
    ]);
    assert_eq!(
        text(&out.stdout),
        "from a file\ninput.txt\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_writable_dir_keeps_what_the_program_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{}:/box:rw", dir.path().display());
    let out = runbox(&[
        "sandbox",
        "--dir",
        &spec,
        "--",
        "/bin/sh",
        "-c",
        "echo kept > result.txt",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("result.txt")).unwrap(),
        "kept\n"
    );
}

#[test]
fn bad_flags_give_one_clear_line_and_exit_125() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["sandbox", "--dir", "/no/such/dir:/data", "--", "true"],
            "/no/such/dir",
        ),
        (
            &["sandbox", "--memory-limit", "lots", "--", "true"],
            "not a size",
        ),
        (&["sandbox", "--processes", "0", "--", "true"], "processes"),
        (&["sandbox", "--", "no-such-program"], "no-such-program"),
    ];
    for (args, needle) in cases {
        let out = runbox(args);
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(0), "{args:?}");
    }
}

#[test]
fn doctor_reports_a_safe_host_here() {
    let out = runbox(&["doctor"]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("boxes are safe on this host"), "{report}");
    assert!(report.contains("a real box"), "{report}");
}

#[test]
fn boxes_die_within_seconds_when_the_supervisor_is_killed() {
    let mut supervisor = Command::new(env!("CARGO_BIN_EXE_runbox"))
        .args(["sandbox", "--wall-time-limit", "60s", "--", "sleep", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let box_pids = wait_for_descendants(supervisor.id(), 2);
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while box_pids.iter().any(|pid| alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "box processes {box_pids:?} outlived their supervisor"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `root` has a chain of `depth` descendants (the box's init and program).
fn wait_for_descendants(root: u32, depth: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut chain = Vec::new();
        let mut parent = root;
        while let Some(child) = child_of(parent) {
            chain.push(child);
            parent = child;
        }
        if chain.len() >= depth {
            return chain;
        }
        assert!(Instant::now() < deadline, "the box did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
        let status = std::fs::read_to_string(e.path().join("status")).ok()?;
        let ppid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        (ppid == parent).then_some(pid)
    })
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn keys_take_the_store_flags_before_or_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let after = runbox(&["keys", "create", "--data-dir", data_dir, "--name", "after"]);
    assert!(after.status.success(), "{}", text(&after.stderr));
    assert!(
        text(&after.stdout).starts_with("rbx_"),
        "{}",
        text(&after.stdout)
    );
    let before = runbox(&["keys", "--data-dir", data_dir, "create", "--name", "before"]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    let listed = runbox(&["keys", "list", "--json", "--data-dir", data_dir]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["after", "before"]);
}

#[test]
fn a_killed_sandbox_command_leaves_no_box_and_its_slot_serves_the_next() {
    use std::os::unix::process::CommandExt;
    // A marker in the command lines finds runbox and the box's shell on the host.
    let marker = format!("runbox-killed-{}", std::process::id());
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbox"))
        .args(["sandbox", "--", "/bin/sh", "-c"])
        .arg(format!("sleep 30; : {marker}"))
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let holders = |marker: &str| {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while holders(&marker) < 2 {
        assert!(Instant::now() < deadline, "the box never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while holders(&marker) > 0 {
        assert!(Instant::now() < deadline, "the box outlived its command");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = runbox(&["sandbox", "--", "/bin/echo", "next"]);
    assert_eq!(text(&out.stdout), "next\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}
