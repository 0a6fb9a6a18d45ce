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
    // The kernel charges a box in batches of 64 pages per CPU: an empty program
    // (well under one batch of its own) reads as zero to two batches, never as
    // the compiler's page cache or the 30 MiB another program left in /tmp.
    let batch_kb = 64 * 4;
    for kb in &figures {
        assert!(
            *kb <= 2 * batch_kb,
            "{kb} KiB for an empty program: {figures:?}"
        );
    }
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
