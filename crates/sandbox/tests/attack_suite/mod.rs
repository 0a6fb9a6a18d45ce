//! The attack suite: each test runs a hostile program in a box and asserts the
//! exact containment outcome. It is compiled into two test binaries, `attacks`
//! (boxes on the host's /usr) and `attacks_on_runtime` (boxes on a Debian
//! runtime): each crate root says where its boxes run with `on_system`.

use std::time::Duration;

use runbox_sandbox::{BindMount, BoxConfig, LimitHit, Outcome, Status};

use crate::support::{self, *};

/// Runs a box of this suite on the test binary's system tree; fails the test on
/// a runbox error. (Shadows `support::run`, so no attack can forget it.)
fn run(config: &BoxConfig) -> Outcome {
    support::run(&crate::on_system(config.clone()))
}

/// Runs a shell script in a box of this suite.
fn sh(script: &str) -> Outcome {
    run(&BoxConfig::new(["/bin/sh", "-c", script]))
}

#[test]
fn fork_bomb_is_stopped_at_the_process_limit() {
    let src = r#"
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
int main(void) {
    int n = 0;
    for (;;) {
        pid_t p = fork();
        if (p == 0) { pause(); _exit(0); }
        if (p < 0) { printf("%d %s\n", n, strerror(errno)); return 0; }
        n++;
    }
}"#;
    let cfg = attack("fork_bomb", src, &[]).with_limits(limits(|l| l.processes = 16));
    let o = run(&cfg);
    assert_eq!(o.status, Status::Ok, "{o:?}");
    let out = stdout(&o);
    let (forks, error) = out.trim().split_once(' ').unwrap();
    assert!(forks.parse::<u32>().unwrap() <= 15, "{out}");
    assert_eq!(error, "Resource temporarily unavailable");
}

#[test]
fn memory_bomb_is_reported_as_memory_limit_exceeded() {
    let src = r#"
#include <stdlib.h>
#include <string.h>
int main(void) { for (;;) { char *p = malloc(1 << 20); if (!p) return 3; memset(p, 1, 1 << 20); } }"#;
    let cfg = attack("memory_bomb", src, &[]).with_limits(limits(|l| l.memory_bytes = 64 << 20));
    let o = run(&cfg);
    assert_eq!(o.status, Status::MemoryLimitExceeded, "{o:?}");
    assert_eq!(o.limit_hit, Some(LimitHit::Memory));
    assert_eq!(o.signal.as_deref(), Some("SIGKILL"));
    assert!(o.memory_kb >= 60 << 10, "peak {} KiB", o.memory_kb);
}

#[test]
fn a_program_over_its_memory_limit_is_memory_limit_exceeded_even_when_stopped_for_time() {
    // The box's cgroup leaves room for its tmpfs budgets beside the memory limit,
    // so a program can pass its limit without an OOM kill; waiting afterwards
    // until a time limit must not turn that into a time verdict (on a slow
    // machine a memory bomb reaches its CPU limit before the cgroup's).
    let src = r#"
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    /* Volatile: gcc 14 drops a malloc and memset whose pages only this
       function could read, even across the pause. */
    volatile char *p = malloc(48 << 20);
    if (!p) return 3;
    for (long i = 0; i < (48L << 20); i += 4096) p[i] = 1;
    pause();
    return p[4096];
}"#;
    // The wall time, not the CPU time: a slow machine (an emulated VM) takes
    // most of a second of CPU for the 48 MiB alone.
    let cfg = attack("over_then_wait", src, &[]).with_limits(limits(|l| {
        l.memory_bytes = 32 << 20;
        l.wall_time = Duration::from_secs(3);
    }));
    let o = run(&cfg);
    assert_eq!(o.status, Status::MemoryLimitExceeded, "{o:?}");
    assert_eq!(o.limit_hit, Some(LimitHit::Memory), "{o:?}");
    // Reported at the limit plus the documented slack, as for an OOM kill.
    assert!(
        o.memory_kb <= (32 << 10) + runbox_sandbox::MEMORY_SLACK_KB,
        "{o:?}"
    );
}

#[test]
fn multithreaded_cpu_burn_hits_the_cpu_limit_of_all_threads() {
    // The main thread only waits: the limit can only be reached by counting the
    // CPU time of the other threads.
    let src = r#"
#include <pthread.h>
static void *burn(void *a) { for (volatile unsigned long i = 0;; i++); return a; }
int main(void) { pthread_t t[4]; for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, burn, 0); pthread_join(t[0], 0); }"#;
    let cfg = attack("cpu_burn", src, &[]).with_limits(limits(|l| {
        l.cpu_time = Duration::from_millis(1000);
        l.wall_time = Duration::from_secs(20);
    }));
    let o = run(&cfg);
    assert_eq!(o.status, Status::TimeLimitExceeded, "{o:?}");
    assert_eq!(o.limit_hit, Some(LimitHit::CpuTime), "{o:?}");
    assert!(o.cpu_time >= Duration::from_millis(1000), "{o:?}");
    assert!(o.cpu_time < Duration::from_millis(1300), "overshoot: {o:?}");
}

#[test]
fn sleeping_forever_hits_the_wall_time_limit() {
    let cfg = BoxConfig::new(["sleep", "1000"])
        .with_limits(limits(|l| l.wall_time = Duration::from_millis(300)));
    let o = run(&cfg);
    assert_eq!(o.status, Status::TimeLimitExceeded, "{o:?}");
    assert_eq!(o.limit_hit, Some(LimitHit::WallTime));
    assert!(
        o.wall_time >= Duration::from_millis(300) && o.wall_time < Duration::from_millis(1000),
        "{o:?}"
    );
}

#[test]
fn endless_output_is_truncated_and_ends_the_run() {
    let cfg = BoxConfig::new(["yes"]).with_limits(limits(|l| l.output_bytes = 10_000));
    let o = run(&cfg);
    assert_eq!(o.status, Status::OutputLimitExceeded, "{o:?}");
    assert_eq!(o.stdout.len(), 10_000);
    assert!(o.stdout_truncated);
    assert!(o.stdout.starts_with(b"y\ny\n"));
}

const FILL: &str = r#"
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <sys/vfs.h>
int main(int argc, char **argv) {
    struct statfs fs; statfs(argv[1], &fs);
    char path[256]; snprintf(path, sizeof path, "%s/fill", argv[1]);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) { printf("open %s\n", strerror(errno)); return 1; }
    static char buf[1 << 16]; memset(buf, 7, sizeof buf);
    long total = 0;
    for (;;) { ssize_t n = write(fd, buf, sizeof buf); if (n <= 0) break; total += n; }
    printf("%s %ld tmpfs=%d\n", strerror(errno), total >> 20, fs.f_type == 0x01021994);
    return 0;
}"#;

#[test]
fn filling_tmp_gives_enospc_at_its_size_not_an_oom_kill() {
    let cfg = attack("fill", FILL, &["/tmp"]).with_limits(limits(|l| {
        l.tmp_bytes = 48 << 20;
        l.memory_bytes = 32 << 20;
        l.file_size_bytes = 1 << 30;
    }));
    let o = run(&cfg);
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(stdout(&o), "No space left on device 48 tmpfs=1\n");
}

#[test]
fn filling_box_gives_enospc_at_its_size() {
    let cfg = attack("fill", FILL, &["/box"]).with_limits(limits(|l| {
        l.box_bytes = 8 << 20;
        l.file_size_bytes = 1 << 30;
    }));
    let o = run(&cfg);
    assert_eq!(stdout(&o), "No space left on device 8 tmpfs=1\n", "{o:?}");
}

#[test]
fn file_size_limit_stops_a_growing_file() {
    let cfg = attack("fill", FILL, &["/tmp"]).with_limits(limits(|l| l.file_size_bytes = 1 << 20));
    let o = run(&cfg);
    assert_eq!(o.status, Status::OutputLimitExceeded, "{o:?}");
    assert_eq!(o.signal.as_deref(), Some("SIGXFSZ"));
    assert_eq!(o.limit_hit, Some(LimitHit::FileSize));
}

#[test]
fn network_is_unreachable_even_to_the_hosts_loopback() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let src = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int rc = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("connect %d %s\n", rc, rc ? strerror(errno) : "ok");
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    rc = sendto(u, "x", 1, 0, (struct sockaddr *)&a, sizeof a);
    printf("sendto %d %s\n", rc, rc < 0 ? strerror(errno) : "ok");
    return 0;
}"#;
    let o = run(&attack("net", src, &[&port]));
    assert_eq!(
        stdout(&o),
        "connect -1 Network is unreachable\nsendto -1 Network is unreachable\n",
        "{o:?}"
    );
    assert!(
        listener.accept().is_err(),
        "the host listener must see no connection"
    );

    let o = sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '");
    assert_eq!(stdout(&o), "lo\n", "only a loopback device exists: {o:?}");
}

#[test]
fn host_secrets_and_directories_are_invisible() {
    let o = sh(
        "for p in /etc/shadow /root /home /var /run /sys /proc/1/environ /proc/1/mem; do \
                if cat $p >/dev/null 2>&1 || ls $p >/dev/null 2>&1; then echo \"$p readable\"; fi; done; echo done",
    );
    assert_eq!(stdout(&o), "done\n", "{o:?}");
}

#[test]
fn the_environment_is_exactly_the_configured_one() {
    let o = run(&BoxConfig::new(["/usr/bin/env"]).with_env("EXTRA", "1"));
    let mut vars: Vec<_> = stdout(&o).lines().map(str::to_string).collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "EXTRA=1",
            "HOME=/box",
            "LANG=C.UTF-8",
            "PATH=/usr/local/bin:/usr/bin:/bin"
        ]
    );
}

#[test]
fn only_stdio_descriptors_are_open() {
    let o = sh("ls /proc/self/fd");
    // 0, 1, 2 and the descriptor ls itself opened to read the directory.
    assert_eq!(stdout(&o), "0\n1\n2\n3\n", "{o:?}");
}

#[test]
fn the_program_is_an_unprivileged_user_without_capabilities() {
    let o = sh(
        "id -u; id -g; id -G; grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '",
    );
    assert_eq!(
        stdout(&o),
        "1000\n1000\n1000\nCapPrm: 0000000000000000\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nCapAmb: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\n",
        "{o:?}"
    );
}

#[test]
fn system_directories_are_read_only() {
    let o = sh(
        "for p in /usr/x /etc/x /x /bin/x /dev/x; do touch $p 2>/dev/null && echo \"$p written\"; done; \
                touch /tmp/x /box/x && echo ok",
    );
    assert_eq!(stdout(&o), "ok\n", "{o:?}");
}

#[test]
fn setuid_root_binary_gains_nothing() {
    let src = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("%d %d\n", getuid(), geteuid()); return 0; }"#;
    let path = program("whoami_setuid", src);
    let host = programs_dir().join("whoami_setuid");
    std::os::unix::fs::chown(&host, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    let o =
        run(&BoxConfig::new([path]).with_bind(BindMount::read_only(programs_dir(), "/attacks")));
    assert_eq!(stdout(&o), "1000 1000\n", "{o:?}");
}

#[test]
fn refused_syscalls_fail_and_the_box_survives() {
    let src = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <linux/sched.h>
#define TRY(name, call) do { errno = 0; long r = (call); printf("%s %s\n", name, r == -1 ? strerrorname_np(errno) : "ALLOWED"); } while (0)
int main(void) {
    TRY("ptrace", syscall(SYS_ptrace, 0, 0, 0, 0));
    TRY("process_vm_readv", syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0));
    TRY("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0));
    TRY("umount2", syscall(SYS_umount2, "/tmp", 0));
    TRY("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    TRY("open_tree", syscall(SYS_open_tree, -100, "/tmp", 0));
    TRY("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    TRY("unshare", syscall(SYS_unshare, CLONE_NEWUSER));
    TRY("setns", syscall(SYS_setns, 0, 0));
    TRY("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    TRY("clone3", syscall(SYS_clone3, 0, 0));
    TRY("bpf", syscall(SYS_bpf, 0, 0, 0));
    TRY("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
    TRY("userfaultfd", syscall(SYS_userfaultfd, 0));
    TRY("io_uring_setup", syscall(SYS_io_uring_setup, 1, 0));
    TRY("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
    TRY("add_key", syscall(SYS_add_key, "user", "x", "y", 1, 0));
    TRY("request_key", syscall(SYS_request_key, "user", "x", 0, 0));
    TRY("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
    TRY("init_module", syscall(SYS_init_module, 0, 0, ""));
    TRY("finit_module", syscall(SYS_finit_module, 0, "", 0));
    TRY("delete_module", syscall(SYS_delete_module, "x", 0));
    TRY("open_by_handle_at", syscall(SYS_open_by_handle_at, 0, 0, 0));
    TRY("swapon", syscall(SYS_swapon, "/tmp/x", 0));
    TRY("swapoff", syscall(SYS_swapoff, "/tmp/x"));
    TRY("reboot", syscall(SYS_reboot, 0, 0, 0, 0));
    TRY("acct", syscall(SYS_acct, 0));
    TRY("settimeofday", syscall(SYS_settimeofday, 0, 0));
    TRY("clock_settime", syscall(SYS_clock_settime, 0, 0));
    TRY("syslog", syscall(SYS_syslog, 3, 0, 0));
    TRY("personality", syscall(SYS_personality, PER_LINUX32));
    TRY("personality_aslr", syscall(SYS_personality, ADDR_NO_RANDOMIZE));
    TRY("tiocsti", syscall(SYS_ioctl, 0, TIOCSTI, "x"));
    TRY("tiocsti_high_bits", syscall(SYS_ioctl, 0, 0xffffffff00000000UL | TIOCSTI, "x"));
    printf("alive\n");
    return 0;
}"#;
    let o = run(&attack("syscalls", src, &[]));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    let out = stdout(&o);
    for line in out.lines().filter(|l| *l != "alive") {
        let (name, result) = line.split_once(' ').unwrap();
        let expected = if name == "clone3" { "ENOSYS" } else { "EPERM" };
        assert_eq!(result, expected, "{name} must be refused: {out}");
    }
    assert_eq!(out.lines().count(), 35, "{out}");
    assert!(out.ends_with("alive\n"));
}

#[test]
fn x32_and_i386_syscalls_kill_the_program() {
    let src = r#"
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    if (argv[1][0] == 'x') syscall(39 | 0x40000000); /* getpid, x32 ABI */
    else { long r; __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20)); } /* getpid, i386 ABI */
    write(1, "survived\n", 9);
    return 0;
}"#;
    for abi in ["x32", "i386"] {
        let o = run(&attack("foreign_abi", src, &[abi]));
        assert_eq!(o.signal.as_deref(), Some("SIGSYS"), "{abi}: {o:?}");
        assert_eq!(o.status, Status::RuntimeError);
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn the_program_has_no_controlling_terminal() {
    // Field 7 of /proc/PID/stat is the controlling terminal: 0 means none. The
    // box's /dev/tty (there for TTY mode) only ever opens the opener's own
    // controlling terminal: none here, so ENXIO.
    let o = sh("cut -d' ' -f7 /proc/self/stat; (: </dev/tty) 2>&1 | sed 's/.*: //'");
    assert_eq!(stdout(&o), "0\nNo such device or address\n", "{o:?}");
}

#[test]
fn kill_minus_one_touches_nothing_outside() {
    let mut canary = support::host_command("sleep").arg("30").spawn().unwrap();
    let src = r#"
#include <signal.h>
#include <stdio.h>
int main(void) { int r = kill(-1, SIGKILL); printf("%d\n", r); return 0; }"#;
    let o = run(&attack("kill_all", src, &[]));
    let alive = canary.try_wait().unwrap().is_none();
    canary.kill().unwrap();
    canary.wait().unwrap();
    assert!(alive, "the host process was killed");
    // Nothing else to signal in the box: kill(-1) finds no target.
    assert_eq!(stdout(&o), "-1\n", "{o:?}");
}

#[test]
fn symlinks_and_fifos_left_in_box_are_not_followed_by_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BoxConfig::new([
        "/bin/sh",
        "-c",
        "ln -s /etc/passwd result && mkfifo fifo && echo ok > plain",
    ])
    .with_bind(BindMount::writable(dir.path(), "/box"));
    let o = run(&cfg);
    assert_eq!(o.status, Status::Ok, "{o:?}");
    let read =
        |name: &str| runbox_sandbox::files::read_box_file(dir.path(), name.as_ref(), 1 << 20);
    assert_eq!(read("plain").unwrap(), b"ok\n");
    assert!(read("result").is_err(), "a symlink must not be followed");
    assert!(
        read("fifo").is_err(),
        "a FIFO must be refused without blocking"
    );
    assert!(read("../etc/passwd").is_err());
}

#[test]
fn files_do_not_survive_into_the_next_run() {
    let o = sh(
        "echo secret > /tmp/left && echo secret > /box/left && echo secret > /dev/shm/left; echo $?",
    );
    assert_eq!(stdout(&o), "0\n", "{o:?}");
    let o = sh("ls /tmp /box /dev/shm");
    assert_eq!(stdout(&o), "/box:\n\n/dev/shm:\n\n/tmp:\n", "{o:?}");
}

#[test]
fn fifty_boxes_in_parallel_each_see_only_their_own_files() {
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                s.spawn(move || {
                    let script = format!("echo {i} > /box/mine-{i} && echo {i} > /tmp/t-{i} && sleep 0.2 && ls /box /tmp");
                    (i, sh(&script))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o) in outcomes {
        assert_eq!(o.status, Status::Ok, "{o:?}");
        assert_eq!(stdout(&o), format!("/box:\nmine-{i}\n\n/tmp:\nt-{i}\n"));
    }
}

#[test]
fn abort_segfault_and_exit_codes_are_reported_truthfully() {
    let src = r#"
#include <stdlib.h>
#include <signal.h>
int main(int argc, char **argv) {
    switch (argv[1][0]) {
    case 'a': abort();
    case 's': { volatile int *p = 0; return *p; }
    case 'r': raise(SIGSEGV); return 0;
    case 'e': return 3;
    default: return 0;
    }
}"#;
    let cases = [
        ("a", Status::RuntimeError, None, Some("SIGABRT")),
        ("s", Status::RuntimeError, None, Some("SIGSEGV")),
        ("r", Status::RuntimeError, None, Some("SIGSEGV")),
        ("e", Status::RuntimeError, Some(3), None),
        ("0", Status::Ok, Some(0), None),
    ];
    for (arg, status, code, signal) in cases {
        let o = run(&attack("crash", src, &[arg]));
        assert_eq!(
            (o.status, o.exit_code, o.signal.as_deref()),
            (status, code, signal),
            "case {arg}: {o:?}"
        );
    }
}

#[test]
fn the_program_is_not_pid_1() {
    let o = sh("echo $$; cat /proc/1/status >/dev/null 2>&1 && echo sees-init || echo init-hidden");
    assert_eq!(stdout(&o), "2\ninit-hidden\n", "{o:?}");
}

#[test]
fn stdin_is_delivered_and_output_measured() {
    let o = run(&BoxConfig::new(["cat"]).with_stdin("hello box\n"));
    assert_eq!(o.status, Status::Ok);
    assert_eq!(o.stdout, b"hello box\n");
    // Not the memory: a program as small as `cat` may read 0 KiB, since the
    // kernel charges a cgroup in batches of 64 pages (docs/judging.md).
    assert!(
        o.wall_time > Duration::ZERO && o.cpu_time > Duration::ZERO,
        "{o:?}"
    );
}

#[test]
fn memory_is_limited_by_the_cgroup_not_by_address_space() {
    // A runtime that reserves far more address space than it touches (JVMs, Go,
    // sanitizers) must start under a small memory limit.
    let src = r#"
#include <stdio.h>
#include <sys/mman.h>
int main(void) {
    void *p = mmap(0, 8UL << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("%s\n", p == MAP_FAILED ? "refused" : "reserved");
    return 0;
}"#;
    let cfg = attack("reserve", src, &[]).with_limits(limits(|l| l.memory_bytes = 64 << 20));
    let o = run(&cfg);
    assert_eq!(
        (o.status, stdout(&o).as_str()),
        (Status::Ok, "reserved\n"),
        "{o:?}"
    );
}

#[test]
fn per_process_limits_reach_the_program() {
    let cfg = BoxConfig::new([
        "/bin/sh",
        "-c",
        "ulimit -n; ulimit -f; ulimit -s; ulimit -c",
    ])
    .with_limits(limits(|l| {
        l.open_files = 64;
        l.file_size_bytes = 1 << 20;
        l.stack_bytes = Some(16 << 20);
    }));
    let o = run(&cfg);
    // ulimit prints files in 512-byte blocks and the stack in KiB.
    assert_eq!(stdout(&o), "64\n2048\n16384\n0\n", "{o:?}");
}

#[test]
fn too_many_open_files_fail_with_emfile() {
    let src = r#"
#include <stdio.h>
#include <fcntl.h>
#include <errno.h>
#include <string.h>
int main(void) {
    int n = 0;
    while (open("/dev/null", O_RDONLY) >= 0) n++;
    printf("%d %s\n", n, strerror(errno));
    return 0;
}"#;
    let o = run(&attack("open_files", src, &[]).with_limits(limits(|l| l.open_files = 32)));
    assert_eq!(stdout(&o), "29 Too many open files\n", "{o:?}");
}

/// Tries `socket` (or `socketpair` when argv[4] is "pair") with the family, type
/// and protocol of argv[1..4]; prints "ok" or the errno's name. A socket that
/// opens is also bound (a vsock port, a netlink multicast group) when argv[5] is
/// "bind", and "bound" or the errno is printed too.
const SOCKET_PROBE: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/vm_sockets.h>
int main(int argc, char **argv) {
    int family = atoi(argv[1]), type = atoi(argv[2]), protocol = atoi(argv[3]);
    int fds[2], s, rc;
    if (strcmp(argv[4], "pair") == 0) {
        rc = socketpair(family, type, protocol, fds);
        printf("%s", rc == 0 ? "ok" : strerrorname_np(errno));
        return 0;
    }
    s = socket(family, type, protocol);
    printf("%s", s >= 0 ? "ok" : strerrorname_np(errno));
    if (s >= 0 && strcmp(argv[5], "bind") == 0) {
        if (family == AF_VSOCK) {
            struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = 42424 };
            rc = bind(s, (struct sockaddr *)&a, sizeof a);
            if (rc == 0) rc = listen(s, 1);
        } else {
            struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = 1 };
            rc = bind(s, (struct sockaddr *)&a, sizeof a);
        }
        printf(" %s", rc == 0 ? "bound" : strerrorname_np(errno));
    }
    printf("\n");
    return 0;
}"#;

/// What [`SOCKET_PROBE`] prints for one attempt in a box without network.
fn socket_attempt(family: i32, kind: i32, protocol: i32, call: &str, bind: bool) -> String {
    let args = [
        family.to_string(),
        kind.to_string(),
        protocol.to_string(),
        call.to_string(),
        if bind { "bind" } else { "no" }.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&attack("socket_probe", SOCKET_PROBE, &args));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    stdout(&o).trim().to_string()
}

const AF_VSOCK: i32 = 40;
const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;
const NETLINK_KOBJECT_UEVENT: i32 = 15;
const SOCK_STREAM: i32 = 1;
const SOCK_DGRAM: i32 = 2;
const SOCK_RAW: i32 = 3;
const SOCK_SEQPACKET: i32 = 5;

#[test]
fn vsock_sockets_are_refused() {
    assert_eq!(
        socket_attempt(AF_VSOCK, SOCK_STREAM, 0, "socket", true),
        "EAFNOSUPPORT"
    );
    assert_eq!(
        socket_attempt(AF_VSOCK, SOCK_STREAM, 0, "pair", false),
        "EAFNOSUPPORT"
    );
}

#[test]
fn host_uevents_cannot_be_received() {
    assert_eq!(
        socket_attempt(
            AF_NETLINK,
            SOCK_DGRAM,
            NETLINK_KOBJECT_UEVENT,
            "socket",
            true
        ),
        "EPROTONOSUPPORT"
    );
}

#[test]
fn socket_families_a_box_never_needs_are_refused() {
    // (family, type, protocol): packet, key, bluetooth, alg, vsock datagrams, tipc,
    // xdp, can; netlink's audit, sock_diag and generic protocols.
    let refused = [
        (17, SOCK_RAW, 0),
        (15, SOCK_RAW, 2),
        (31, SOCK_SEQPACKET, 0),
        (38, SOCK_SEQPACKET, 0),
        (AF_VSOCK, SOCK_DGRAM, 0),
        (30, SOCK_RDM_TIPC, 0),
        (44, SOCK_RAW, 0),
        (29, SOCK_RAW, 1),
    ];
    for (family, kind, protocol) in refused {
        assert_eq!(
            socket_attempt(family, kind, protocol, "socket", false),
            "EAFNOSUPPORT",
            "family {family}"
        );
    }
    for protocol in [4, 9, 16] {
        assert_eq!(
            socket_attempt(AF_NETLINK, SOCK_RAW, protocol, "socket", false),
            "EPROTONOSUPPORT",
            "netlink protocol {protocol}"
        );
    }
}

/// `SOCK_RDM`, the type TIPC sockets use.
const SOCK_RDM_TIPC: i32 = 4;

#[test]
fn unix_inet_and_netlink_route_sockets_still_work() {
    for (family, kind, protocol) in [
        (1, SOCK_STREAM, 0),
        (2, SOCK_STREAM, 0),
        (2, SOCK_DGRAM, 0),
        (10, SOCK_STREAM, 0),
        (AF_NETLINK, SOCK_RAW, NETLINK_ROUTE),
        (AF_NETLINK, SOCK_DGRAM | 0o2000000, NETLINK_ROUTE),
    ] {
        assert_eq!(
            socket_attempt(family, kind, protocol, "socket", false),
            "ok",
            "family {family}, type {kind}, protocol {protocol}"
        );
    }
    assert_eq!(socket_attempt(1, SOCK_STREAM, 0, "pair", false), "ok");
}

/// Tries a lock or a watch named by argv[1] on argv[2]; prints "ok" or the
/// errno's name, then sleeps argv[3] milliseconds holding what it got.
const LOCK_PROBE: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/inotify.h>
int main(int argc, char **argv) {
    const char *what = argv[1];
    int fd = open(argv[2], O_RDONLY), rc = -1;
    struct flock lk = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
    if (strcmp(what, "flock") == 0) rc = flock(fd, LOCK_EX | LOCK_NB);
    else if (strcmp(what, "flock_shared") == 0) rc = flock(fd, LOCK_SH | LOCK_NB);
    else if (strcmp(what, "inotify_init1") == 0) rc = inotify_init1(IN_CLOEXEC);
    else if (strcmp(what, "inotify_init") == 0) rc = syscall(SYS_inotify_init);
    else if (strcmp(what, "fanotify_init") == 0) rc = syscall(SYS_fanotify_init, 0, 0);
    else if (strcmp(what, "dnotify") == 0) rc = fcntl(fd, F_NOTIFY, DN_ACCESS | DN_MULTISHOT);
    else if (strcmp(what, "setlk") == 0) rc = fcntl(fd, F_SETLK, &lk);
    else if (strcmp(what, "ofd_setlk") == 0) rc = fcntl(fd, F_OFD_SETLK, &lk);
    else if (strcmp(what, "getlk") == 0) { lk.l_type = F_WRLCK; rc = fcntl(fd, F_GETLK, &lk); }
    printf("%s\n", rc >= 0 ? "ok" : strerrorname_np(errno));
    fflush(stdout);
    usleep(atoi(argv[3]) * 1000);
    return 0;
}"#;

/// What [`LOCK_PROBE`] prints for `what` on `path`, holding it `hold_ms`.
fn lock_attempt(what: &str, path: &str, hold_ms: u32) -> String {
    let hold = hold_ms.to_string();
    let o = run(&attack("lock_probe", LOCK_PROBE, &[what, path, &hold]));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    stdout(&o).trim().to_string()
}

#[test]
fn flock_takes_no_lock_so_boxes_cannot_signal_each_other_through_usr() {
    // The first box takes (or tries to take) an exclusive lock on a file every box
    // shares, and holds it while the second box tries the same.
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| lock_attempt("flock", "/usr/bin/env", 1500));
        std::thread::sleep(Duration::from_millis(500));
        let second = lock_attempt("flock", "/usr/bin/env", 0);
        (first.join().unwrap(), second)
    });
    // Both "get" the lock: neither learns anything of the other.
    assert_eq!((first.as_str(), second.as_str()), ("ok", "ok"));
    assert_eq!(lock_attempt("flock_shared", "/tmp", 0), "ok");
}

#[test]
fn inotify_fanotify_and_dnotify_are_refused() {
    for what in ["inotify_init1", "inotify_init", "fanotify_init", "dnotify"] {
        assert_eq!(lock_attempt(what, "/usr/bin", 0), "EPERM", "{what}");
    }
}

#[test]
fn sqlite_still_writes_a_database_in_tmp() {
    assert!(
        std::path::Path::new("/usr/bin/sqlite3").exists(),
        "this test needs the sqlite3 command line shell (apt-get install sqlite3)"
    );
    let o = sh(
        "cd /tmp && sqlite3 t.db 'create table t(x); insert into t values (41); update t set x = x + 1; select x from t;' \
         && sqlite3 t.db 'pragma journal_mode=wal; insert into t values (7); select sum(x) from t;'",
    );
    assert_eq!(stdout(&o), "42\nwal\n49\n", "{o:?}");
}

#[test]
fn recent_mount_and_introspection_syscalls_are_refused() {
    let src = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#define TRY(name, nr) do { errno = 0; long r = syscall(nr, -100, "/tmp", 0, 0, 0, 0); printf("%s %s\n", name, r == -1 ? strerrorname_np(errno) : "ALLOWED"); } while (0)
int main(void) {
    TRY("open_tree_attr", 467);
    TRY("listmount", 458);
    TRY("statmount", 457);
    TRY("lsm_get_self_attr", 459);
    TRY("lsm_set_self_attr", 460);
    TRY("lsm_list_modules", 461);
    TRY("file_getattr", 468);
    TRY("file_setattr", 469);
    TRY("cachestat", 451);
    TRY("quotactl_fd", 443);
    TRY("open_tree", 428);
    TRY("move_mount", 429);
    TRY("fsopen", 430);
    TRY("fsconfig", 431);
    TRY("fsmount", 432);
    TRY("fspick", 433);
    TRY("mount_setattr", 442);
    return 0;
}"#;
    let o = run(&attack("recent_syscalls", src, &[]));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    let out = stdout(&o);
    for line in out.lines() {
        assert!(
            line.ends_with(" EPERM"),
            "must be refused with EPERM: {out}"
        );
    }
    assert_eq!(out.lines().count(), 17, "{out}");
}
#[test]
fn mountinfo_shows_no_path_of_the_sandbox_state_directory() {
    let o = sh("cat /proc/self/mountinfo");
    assert_eq!(o.status, Status::Ok, "{o:?}");
    let mountinfo = stdout(&o);
    // The roots of binds of host directories stay visible (the kernel prints
    // each mount's root within its file system); the sandbox's own are hidden.
    for host_path in ["/run/runbox", "runbox/dev", "runbox/root"] {
        assert!(
            !mountinfo.contains(host_path),
            "{host_path} is visible:\n{mountinfo}"
        );
    }
}

/// A directory `data` with a file, inside a fresh directory only root may enter.
fn private_directory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/input"), "private\n").unwrap();
    dir
}

#[test]
fn a_directory_under_a_private_parent_is_readable_through_a_read_only_bind() {
    let dir = private_directory();
    let cfg = BoxConfig::new(["cat", "/data/input"])
        .with_bind(BindMount::read_only(dir.path().join("data"), "/data"));
    let o = run(&cfg);
    assert_eq!(
        (o.status, stdout(&o).as_str()),
        (Status::Ok, "private\n"),
        "{o:?}"
    );
}

#[test]
fn a_directory_under_a_private_parent_is_writable_through_a_writable_bind() {
    let dir = private_directory();
    let cfg = BoxConfig::new([
        "/bin/sh",
        "-c",
        "cat /data/input && echo out > /data/output",
    ])
    .with_bind(BindMount::writable(dir.path().join("data"), "/data"));
    let o = run(&cfg);
    assert_eq!(
        (o.status, stdout(&o).as_str()),
        (Status::Ok, "private\n"),
        "{o:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/output")).unwrap(),
        "out\n"
    );
}

#[test]
fn a_box_reaches_neither_its_launcher_nor_its_socket_nor_its_memory() {
    // The box's init is a copy of the launcher process (its memory, its
    // name until it renames itself); the launcher holds the service's socket.
    let src = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <signal.h>
#include <unistd.h>
int main(void) {
    int sockets = 0;
    for (int fd = 0; fd < 4096; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) sockets++;
    }
    printf("sockets %d\n", sockets);
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while ((e = readdir(proc))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == getpid()) continue;
        char path[64], comm[64] = "";
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        FILE *f = fopen(path, "r");
        if (f) { if (!fgets(comm, sizeof comm, f)) comm[0] = 0; fclose(f); }
        comm[strcspn(comm, "\n")] = 0;
        printf("process %d %s\n", pid, comm);
        const char *private[] = {"mem", "maps", "environ", "fd"};
        for (int i = 0; i < 4; i++) {
            snprintf(path, sizeof path, "/proc/%d/%s", pid, private[i]);
            int fd = open(path, O_RDONLY);
            if (fd >= 0) { printf("opened %s\n", path); close(fd); }
        }
        char byte;
        struct iovec local = {&byte, 1}, remote = {(void *)0x400000, 1};
        if (process_vm_readv(pid, &local, 1, &remote, 1, 0) >= 0 || errno != EPERM)
            printf("process_vm_readv %d: %s\n", pid, strerror(errno));
    }
    /* The init, pid 1, hidden or not: its memory is the launcher's. */
    const char *init[] = {"/proc/1/mem", "/proc/1/maps", "/proc/1/environ", "/proc/1/fd"};
    for (int i = 0; i < 4; i++) {
        int fd = open(init[i], O_RDONLY);
        if (fd >= 0) printf("opened %s\n", init[i]);
    }
    char byte;
    struct iovec local = {&byte, 1}, remote = {(void *)0x400000, 1};
    if (process_vm_readv(1, &local, 1, &remote, 1, 0) >= 0)
        printf("read the init's memory\n");
    if (kill(1, 0) == 0) printf("may signal the init\n");
    /* The launcher's socket is unnamed: none of its kind is reachable, only new ones. */
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    printf("socket %s\n", s >= 0 ? "made" : "refused");
    return 0;
}"#;
    let path = program("reach_launcher", src);
    let o =
        run(&BoxConfig::new([path]).with_bind(BindMount::read_only(programs_dir(), "/attacks")));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(stdout(&o), "sockets 0\nsocket made\n", "{o:?}");
}
