//! A service started with a restrictive umask (deploy/systemd's `UMask=0077`)
//! still runs every job: the files it writes for boxes and everything a box
//! creates get their usual modes, whatever the service's umask.
//!
//! A test binary of its own: the umask is the whole process's.

use std::sync::{Arc, LazyLock};

use runbox_engine::{
    Catalog, Checker, CustomChecker, Engine, EngineConfig, Job, ResultStatus, RunResult,
    SourceFile, TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions};
use rustix::fs::Mode;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    // Before the sandbox exists, as a unit's umask is there before runbox starts.
    rustix::process::umask(Mode::from_raw_mode(0o077));
    let sandbox = Sandbox::new(SandboxOptions {
        max_boxes: 2,
        uid_base: 2_110_000,
        ..SandboxOptions::default()
    })
    .expect("tests run as root on a host with cgroups");
    Engine::new(
        Arc::new(sandbox),
        Catalog::embedded().unwrap(),
        EngineConfig::default(),
    )
});

fn run(job: &Job) -> RunResult {
    ENGINE.check_and_run(job).expect("the job runs")
}

fn stdout(result: &RunResult) -> String {
    let run = result.run.as_ref().expect("a run stage");
    String::from_utf8_lossy(&run.stdout).into_owned()
}

#[test]
fn an_interpreted_program_reads_its_source_and_sees_the_usual_umask() {
    let result = run(&Job {
        language: "python".into(),
        files: vec![SourceFile::unnamed(
            "import os\nprint(oct(os.umask(0o022)))\nopen('/tmp/f', 'w').close()\nprint(oct(os.stat('/tmp/f').st_mode & 0o777))\n",
        )],
        ..Job::default()
    });
    assert_eq!(result.status, ResultStatus::Ok, "{result:?}");
    assert_eq!(stdout(&result), "0o22\n0o644\n");
}

#[test]
fn a_compiled_program_runs_what_another_box_user_compiled() {
    let result = run(&Job {
        language: "c".into(),
        files: vec![
            SourceFile::named(
                "main.c",
                "#include \"sub/six.h\"\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", SIX * 7); return 0; }\n",
            ),
            SourceFile::named("sub/six.h", "#define SIX 6\n"),
        ],
        ..Job::default()
    });
    assert_eq!(result.status, ResultStatus::Ok, "{result:?}");
    assert_eq!(stdout(&result), "42\n");
}

#[test]
fn a_checker_reads_the_input_output_and_answer_the_service_wrote() {
    let checker = "import sys\nout, ans = (open(p).read().split() for p in sys.argv[2:4])\nsys.exit(0 if out == ans else 1)\n";
    let result = run(&Job {
        language: "python".into(),
        files: vec![SourceFile::unnamed("print(int(input()) * 2)\n")],
        tests: vec![TestCase {
            name: "double".into(),
            stdin: b"21\n".to_vec(),
            expected_output: Some(b"42\n".to_vec()),
            ..TestCase::default()
        }],
        checker: Checker::Custom(CustomChecker {
            language: "python".into(),
            files: vec![SourceFile::unnamed(checker)],
        }),
        ..Job::default()
    });
    assert_eq!(result.status, ResultStatus::Accepted, "{result:?}");
}
