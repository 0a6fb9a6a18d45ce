//! The memory figure is the program's own: the same program gives the same
//! figure whatever ran before it in the same box slot (a compile's page cache, a
//! program that filled /tmp), a program that allocates 100 MiB reports about
//! 100 MiB, and a memory-limit verdict reports no more than the limit plus the
//! documented slack.
//!
//! One slot only (`max_boxes: 1`): every box of this file reuses the same cgroup,
//! which is where stale charges used to be counted.

use std::sync::{Arc, LazyLock, Mutex};

use runbox_engine::{Catalog, Engine, EngineConfig, Job, LimitOverrides, ResultStatus, SourceFile};
use runbox_sandbox::{MEMORY_SLACK_KB, Sandbox, SandboxOptions, Status};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 1,
            uid_base: 2_090_000,
            trace_program_memory: true,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

/// The tests of this file share the one slot; running them one at a time keeps
/// each figure free of the others' boxes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn engine() -> Engine {
    Engine::new(
        SANDBOX.clone(),
        Catalog::embedded().unwrap(),
        EngineConfig::default(),
    )
}

fn c_job(source: &str) -> Job {
    Job {
        language: "c".into(),
        files: vec![SourceFile::named("main.c", source)],
        ..Job::default()
    }
}

/// Runs `job` and returns its run stage's memory figure, in KiB.
fn memory_of(engine: &Engine, job: &Job) -> (ResultStatus, u64) {
    let result = engine.check_and_run(job).expect("the job runs");
    let run = result
        .run
        .as_ref()
        .unwrap_or_else(|| panic!("no run stage: {result:?}"));
    (result.status, run.memory_kb)
}

const EMPTY: &str = "int main(void) { return 0; }\n";

/// Writes 30 MiB into /tmp (a tmpfs charged to the box) and leaves it there.
const FILL_TMP: &str = r#"
#include <stdio.h>
#include <string.h>
int main(void) {
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    for (int n = 0; n < 3; n++) {
        char name[32];
        snprintf(name, sizeof name, "/tmp/fill%d", n);
        FILE *f = fopen(name, "w");
        if (!f) return 1;
        for (int i = 0; i < 10; i++) fwrite(block, 1, sizeof block, f);
        if (fclose(f) != 0) return 2;
    }
    return 0;
}
"#;

/// Allocates and touches 100 MiB, then exits (volatile: the compiler may not
/// leave the allocation out).
const HUNDRED_MIB: &str = r#"
#include <stdlib.h>
int main(void) {
    size_t size = (size_t)100 << 20;
    volatile char *p = malloc(size);
    if (!p) return 1;
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;
    return p[size - 4096] == 1 ? 0 : 2;
}
"#;

/// Touches memory until the box runs out.
const GREEDY: &str = r#"
#include <stdlib.h>
#include <string.h>
int main(void) {
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) return 3;
        memset(p, 1, 1 << 20);
    }
}
"#;

#[test]
fn an_empty_program_reports_the_same_memory_whatever_ran_before_it_in_the_slot() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let engine = engine();
    let mut figures = Vec::new();
    for i in 0..20 {
        // Something else used the slot first: a compile (each job compiles, the
        // engine has no compile cache here), sometimes a program that fills /tmp,
        // sometimes a compile of another program.
        match i % 3 {
            0 => {
                let (status, _) = memory_of(&engine, &c_job(FILL_TMP));
                assert_eq!(status, ResultStatus::Ok);
            }
            1 => {
                let other = format!("int main(void) {{ return {}; }}\n", i % 2);
                memory_of(&engine, &c_job(&other));
            }
            _ => {}
        }
        let (status, kb) = memory_of(&engine, &c_job(EMPTY));
        assert_eq!(status, ResultStatus::Ok);
        figures.push(kb);
    }
    let mut sorted = figures.clone();
    sorted.sort_unstable();
    eprintln!(
        "empty C program, 20 runs: min {} KiB, median {} KiB, max {} KiB: {figures:?}",
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
    // The program's own peak (its anonymous memory: the libraries it maps are
    // page cache): the same within 10% every time, and never the compiler's
    // page cache or the 30 MiB another program left in /tmp.
    let median = sorted[sorted.len() / 2];
    assert!(
        (16..=1024).contains(&median),
        "{median} KiB for an empty program: {figures:?}"
    );
    for kb in &figures {
        assert!(
            kb.abs_diff(median) * 10 <= median,
            "{kb} KiB is more than 10% from the median {median} KiB: {figures:?}"
        );
    }
}

/// Touches 64 MiB in a child process, which it waits for (volatile: the
/// compiler may not leave the allocation out).
const CHILD_TOUCHES_64_MIB: &str = r#"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        volatile char *p = malloc(64 << 20);
        if (!p) _exit(2);
        for (size_t i = 0; i < (64 << 20); i += 4096) p[i] = 1;
        _exit(p[4096] == 1 ? 0 : 3);
    }
    int status;
    if (waitpid(child, &status, 0) != child) return 4;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
}
"#;

/// Touches 64 MiB in a second thread, which then ends the whole program with
/// exit() while the main thread still waits.
const THREAD_TOUCHES_64_MIB_AND_EXITS: &str = r#"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
static void *work(void *arg) {
    (void)arg;
    volatile char *p = malloc(64 << 20);
    if (!p) exit(2);
    for (size_t i = 0; i < (64 << 20); i += 4096) p[i] = 1;
    exit(p[4096] == 1 ? 0 : 3);
}
int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, 0, work, 0) != 0) return 1;
    pthread_join(thread, 0);
    return 4;
}
"#;

/// Handles signals it sends itself and stops itself: none of this may hang or
/// change how it ends.
const SIGNALS: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void on_signal(int signal) { (void)signal; got++; }
int main(void) {
    signal(SIGUSR1, on_signal);
    signal(SIGALRM, on_signal);
    for (int i = 0; i < 100; i++) raise(SIGUSR1);
    alarm(1);
    raise(SIGSTOP);
    raise(SIGTSTP);
    ualarm(20000, 0);
    pause();
    printf("%d\n", (int)got);
    return 0;
}
"#;

/// Names itself so that its /proc status seems to hold a forged peak line.
const FORGED_NAME: &str = r#"
#include <sys/prctl.h>
int main(void) {
    prctl(PR_SET_NAME, "\nVmHWM:\t99999", 0, 0, 0);
    return 0;
}
"#;

#[test]
fn a_program_cannot_forge_its_figure_with_its_name() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let engine = engine();
    let (status, kb) = memory_of(&engine, &c_job(FORGED_NAME));
    assert_eq!(status, ResultStatus::Ok);
    assert!(
        kb < 1024,
        "{kb} KiB for a program that named itself a peak line"
    );
}

#[test]
fn memory_of_other_processes_and_threads_is_counted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let engine = engine();
    for (what, source) in [
        ("a child process", CHILD_TOUCHES_64_MIB),
        ("a thread that calls exit", THREAD_TOUCHES_64_MIB_AND_EXITS),
    ] {
        let mut job = c_job(source);
        job.limits = LimitOverrides {
            memory_bytes: Some(256 << 20),
            ..LimitOverrides::default()
        };
        let (status, kb) = memory_of(&engine, &job);
        eprintln!("64 MiB in {what}: {kb} KiB");
        assert_eq!(status, ResultStatus::Ok, "{what}");
        assert!(
            (63 * 1024..=72 * 1024).contains(&kb),
            "{kb} KiB for 64 MiB touched in {what}"
        );
    }
}

#[test]
fn a_measured_program_gets_its_signals_and_is_not_stopped() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let engine = engine();
    let result = engine.check_and_run(&c_job(SIGNALS)).expect("the job runs");
    assert_eq!(result.status, ResultStatus::Ok, "{result:?}");
    let run = result.run.as_ref().expect("a run stage");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "101",
        "{result:?}"
    );
}

#[test]
fn a_program_that_touches_100_mib_reports_between_100_and_110_mib() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let engine = engine();
    // Stale charges in the slot first, as a busy service has them.
    memory_of(&engine, &c_job(FILL_TMP));
    let mut job = c_job(HUNDRED_MIB);
    job.limits = LimitOverrides {
        memory_bytes: Some(256 << 20),
        ..LimitOverrides::default()
    };
    let (status, kb) = memory_of(&engine, &job);
    eprintln!("100 MiB program: {kb} KiB");
    assert_eq!(status, ResultStatus::Ok);
    // The kernel charges memory in per-CPU batches (docs/judging.md), and what
    // was charged when the program started is subtracted: the figure may fall
    // short of what the program touched by up to the documented slack (1 MiB).
    assert!(
        (99 * 1024..=110 * 1024).contains(&kb),
        "{kb} KiB is not between 100 MiB (less the 1 MiB slack) and 110 MiB"
    );
}

#[test]
fn a_memory_limit_verdict_reports_no_more_than_the_limit_plus_the_slack() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let engine = engine();
    let limit_kb = 64 * 1024;
    let mut job = c_job(GREEDY);
    job.limits = LimitOverrides {
        memory_bytes: Some(limit_kb << 10),
        ..LimitOverrides::default()
    };
    let result = engine.check_and_run(&job).expect("the job runs");
    let run = result.run.as_ref().expect("a run stage");
    eprintln!(
        "memory limit {limit_kb} KiB: {} with {} KiB",
        run.status, run.memory_kb
    );
    assert_eq!(run.status, Status::MemoryLimitExceeded);
    assert!(
        run.memory_kb <= limit_kb + MEMORY_SLACK_KB,
        "{} KiB reported for a {limit_kb} KiB limit",
        run.memory_kb
    );
    assert!(
        run.memory_kb >= limit_kb * 9 / 10,
        "{} KiB is far below the {limit_kb} KiB limit it hit",
        run.memory_kb
    );
}
