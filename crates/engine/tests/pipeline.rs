//! The compile/run pipeline with real boxes, on a test catalog of shell-based
//! languages, so that each test can make the compiler or the program misbehave.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use runbox_engine::{
    Catalog, Engine, EngineConfig, Error, Failure, Job, JobError, Language, LimitOverrides,
    ResultStatus, SourceFile,
};
use runbox_sandbox::{LimitHit, Sandbox, SandboxOptions, Status};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 4,
            uid_base: 1_950_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

/// `built`: its source is a shell script run as the compiler, which must leave
/// `out.sh` behind; the run stage runs `out.sh`.
const BUILT: &str = r#"
id = "built"
name = "Built"
extensions = ["build"]
packages = ["dash"]
source_file = "main.build"
compile = ["/bin/sh", "{entry}"]
run = ["/bin/sh", "out.sh", "{memory_mb}", "{heap_mb}"]
version = ["/bin/sh", "-c", "echo built 1.2.3"]
[compile_limits]
cpu_time = "5s"
box = "8M"
[run_limits]
memory = "64M"
"#;

/// `shell`: no compile stage; the source runs as a shell script.
const SHELL: &str = r#"
id = "shell"
name = "Shell"
aliases = ["sh"]
extensions = ["sh"]
packages = ["dash"]
source_file = "main.sh"
run = ["/bin/sh", "{entry}"]
version = ["/bin/sh", "-c", "echo shell 0.5"]
"#;

/// `gone`: its program is not installed.
const GONE: &str = r#"
id = "gone"
name = "Gone"
extensions = ["gone"]
packages = ["gone-lang", "gone-tools"]
source_file = "main.gone"
run = ["no-such-interpreter-runbox", "{entry}"]
version = ["no-such-interpreter-runbox", "--version"]
"#;

/// `noargs`: a language whose programs cannot take arguments.
const NOARGS: &str = r#"
id = "noargs"
name = "NoArgs"
extensions = ["na"]
packages = ["dash"]
source_file = "main.na"
accepts_args = false
run = ["/bin/sh", "{entry}"]
version = ["/bin/sh", "-c", "echo 1.0"]
"#;

fn engine() -> Engine {
    let languages = [BUILT, SHELL, GONE, NOARGS]
        .iter()
        .map(|text| Language::parse(text, "test").unwrap())
        .collect();
    Engine::new(
        SANDBOX.clone(),
        Catalog::from_languages(languages).unwrap(),
        EngineConfig::default(),
    )
}

fn job(language: &str, source: &str) -> Job {
    Job {
        language: language.into(),
        files: vec![SourceFile::unnamed(source)],
        ..Job::default()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn what_the_compiler_leaves_in_the_work_dir_is_what_runs() {
    let result = engine()
        .check_and_run(&job("built", "echo 'echo built and ran' > out.sh"))
        .unwrap();
    assert_eq!(result.status, ResultStatus::Ok);
    assert_eq!(result.compile.as_ref().unwrap().status, Status::Ok);
    assert_eq!(text(&result.run.unwrap().stdout), "built and ran\n");
    assert_eq!(result.version.as_deref(), Some("1.2.3"));
}

#[test]
fn a_failed_compile_is_a_compile_error_with_the_compilers_messages() {
    let result = engine()
        .check_and_run(&job(
            "built",
            "echo 'main.build:1: syntax error' >&2; exit 1",
        ))
        .unwrap();
    assert_eq!(result.status, ResultStatus::CompileError);
    let compile = result.compile.unwrap();
    assert_eq!(compile.exit_code, Some(1));
    assert_eq!(text(&compile.stderr), "main.build:1: syntax error\n");
    assert!(result.run.is_none());
}

#[test]
fn a_compiler_stopped_by_a_limit_says_which_limit() {
    let mut job = job("built", "while :; do :; done");
    job.compile_limits.cpu_time = Some(Duration::from_millis(300));
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(result.status, ResultStatus::CompileError);
    let compile = result.compile.unwrap();
    assert_eq!(compile.status, Status::TimeLimitExceeded);
    assert_eq!(compile.limit_hit, Some(LimitHit::CpuTime));
}

#[test]
fn the_compiler_cannot_write_more_than_its_work_volume() {
    // The language's compile box is 8 MiB.
    let source = "dd if=/dev/zero of=big bs=1M count=32 2>/tmp/err; cat /tmp/err >&2; exit 1";
    let result = engine().check_and_run(&job("built", source)).unwrap();
    assert_eq!(result.status, ResultStatus::CompileError);
    let stderr = text(&result.compile.unwrap().stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

#[test]
fn the_program_sees_its_work_dir_read_only() {
    let source = "if echo x > /box/new 2>/dev/null; then echo wrote; else echo refused; fi; \
                  echo y > /tmp/scratch && cat /tmp/scratch";
    let result = engine().check_and_run(&job("shell", source)).unwrap();
    assert_eq!(text(&result.run.unwrap().stdout), "refused\ny\n");
}

#[test]
fn a_process_the_compiler_leaves_behind_cannot_change_the_artifact() {
    let source = "echo 'echo good' > out.sh; (sleep 0.3; echo 'echo evil' > out.sh) & exit 0";
    let result = engine().check_and_run(&job("built", source)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(text(&result.run.unwrap().stdout), "good\n");
}

#[test]
fn files_in_sub_directories_reach_the_box() {
    let job = Job {
        language: "sh".into(),
        files: vec![
            SourceFile::named("main.sh", "cat lib/data.txt; ls -ld lib | cut -c1-10"),
            SourceFile::named("lib/data.txt", "from a sub-directory\n"),
        ],
        ..Job::default()
    };
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(
        text(&result.run.unwrap().stdout),
        "from a sub-directory\ndrwxrwxrwx\n"
    );
}

#[test]
fn stdin_and_args_reach_the_program() {
    let mut job = job("shell", "printf '%s|' \"$@\"; cat");
    job.stdin = b"from stdin\n".to_vec();
    job.args = vec!["a".into(), "b c".into()];
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(text(&result.run.unwrap().stdout), "a|b c|from stdin\n");
}

#[test]
fn language_limits_apply_unless_the_user_sets_one() {
    let source = "echo 'echo $1 $2' > out.sh";
    let defaults = engine().check_and_run(&job("built", source)).unwrap();
    assert_eq!(text(&defaults.run.unwrap().stdout), "64 32\n");
    let mut job = job("built", source);
    job.limits = LimitOverrides {
        memory_bytes: Some(1 << 30),
        ..LimitOverrides::default()
    };
    let user = engine().check_and_run(&job).unwrap();
    assert_eq!(text(&user.run.unwrap().stdout), "1024 896\n");
}

#[test]
fn the_work_volume_is_gone_after_the_job() {
    let prefix = format!("{}-", std::process::id());
    let engine = engine();
    engine
        .check_and_run(&job("built", "echo 'echo x' > out.sh"))
        .unwrap();
    // Other tests of this binary may be running: wait for their volumes too.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<_> = std::fs::read_dir("/run/runbox/volumes")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .collect();
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.contains(&format!("/run/runbox/volumes/{prefix}")));
        if left.is_empty() && !mounted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "volumes left: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_language_that_is_not_installed_names_its_install_command() {
    let err = engine().check_and_run(&job("gone", "x")).unwrap_err();
    assert!(
        matches!(err, Failure::Job(JobError::NotInstalled { .. })),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "Gone is not installed on this host (no-such-interpreter-runbox is missing): install it with `apt-get install -y gone-lang gone-tools`"
    );
}

#[test]
fn an_unknown_language_suggests_the_closest() {
    let err = engine().check_and_run(&job("shel", "x")).unwrap_err();
    assert!(err.to_string().contains("did you mean shell"), "{err}");
}

#[test]
fn a_version_that_is_not_installed_is_refused_and_a_prefix_is_accepted() {
    let mut job = job("shell", "echo ok");
    job.version = Some("0".into());
    assert_eq!(
        engine().check_and_run(&job).unwrap().version.as_deref(),
        Some("0.5")
    );
    job.version = Some("2".into());
    let err = engine().check_and_run(&job).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Shell 2 is not available: this host has Shell 0.5"
    );
}

#[test]
fn arguments_to_a_language_that_cannot_take_them_are_refused() {
    let mut job = job("noargs", "echo");
    job.args = vec!["x".into()];
    let err = engine().check_and_run(&job).unwrap_err();
    assert!(
        matches!(err, Failure::Job(JobError::Invalid { ref field, .. }) if field == "args"),
        "{err}"
    );
}

#[test]
fn a_file_name_that_escapes_the_work_dir_is_refused() {
    let job = Job {
        language: "shell".into(),
        files: vec![
            SourceFile::named("main.sh", "true"),
            SourceFile::named("../../etc/cron.d/x", "x"),
        ],
        ..Job::default()
    };
    let err = engine().check_and_run(&job).unwrap_err();
    assert!(
        matches!(err, Failure::Job(JobError::Invalid { ref field, .. }) if field == "files[1].name"),
        "{err}"
    );
}

#[test]
fn a_limit_above_what_the_sandbox_accepts_names_the_stage() {
    let mut job = job("shell", "true");
    job.limits.processes = Some(1 << 20);
    let err = engine().check_and_run(&job).unwrap_err();
    assert!(
        matches!(err, Failure::Job(JobError::Invalid { ref field, .. }) if field == "limits"),
        "{err}"
    );
}

/// What a live job reported, as owned values.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Stage(&'static str),
    Output(&'static str, runbox_sandbox::Stream, String),
    Exit(&'static str, Status),
}

fn record(events: &std::sync::Mutex<Vec<Seen>>, event: runbox_engine::LiveEvent<'_>) {
    use runbox_engine::LiveEvent;
    let seen = match event {
        LiveEvent::Stage(stage) => Seen::Stage(stage),
        LiveEvent::Output {
            stage,
            stream,
            data,
            ..
        } => Seen::Output(stage, stream, text(data)),
        LiveEvent::Exit { stage, outcome } => Seen::Exit(stage, outcome.status),
    };
    events.lock().unwrap().push(seen);
}

#[test]
fn a_live_job_announces_its_stages_and_its_program_reads_the_callers_pipe() {
    use std::io::Write;
    let events = std::sync::Mutex::new(Vec::new());
    let on_event = |event: runbox_engine::LiveEvent<'_>| record(&events, event);
    let (reader, mut writer) = std::io::pipe().unwrap();
    let live = runbox_engine::Live {
        events: &on_event,
        stdin: std::sync::Mutex::new(Some(reader.into())),
        signals: runbox_sandbox::Signaller::new(),
        terminal: None,
    };
    // Typed ahead while the compiler runs: the pipe keeps it for the program.
    writer.write_all(b"typed ahead\n").unwrap();
    drop(writer);
    let source = "echo compiling >&2; echo 'read line; echo \"got $line\"' > out.sh";
    let result = {
        let engine = engine();
        let checked = engine.check_live(job("built", source)).unwrap();
        engine.run_live(&checked, &live).unwrap()
    };
    assert_eq!(result.status, ResultStatus::Ok, "{result:?}");
    use runbox_sandbox::Stream::{Stderr, Stdout};
    assert_eq!(
        *events.lock().unwrap(),
        [
            Seen::Stage("compile"),
            Seen::Output("compile", Stderr, "compiling\n".into()),
            Seen::Exit("compile", Status::Ok),
            Seen::Stage("run"),
            Seen::Output("run", Stdout, "got typed ahead\n".into()),
            Seen::Exit("run", Status::Ok),
        ]
    );
}

#[test]
fn a_cancelled_live_job_runs_no_further_stage() {
    let events = std::sync::Mutex::new(Vec::new());
    let on_event = |event: runbox_engine::LiveEvent<'_>| record(&events, event);
    let live = runbox_engine::Live {
        events: &on_event,
        stdin: std::sync::Mutex::new(None),
        signals: runbox_sandbox::Signaller::new(),
        terminal: None,
    };
    live.signals.cancel();
    let engine = engine();
    let checked = engine
        .check_live(job("built", "echo 'echo ran' > out.sh"))
        .unwrap();
    let err = engine.run_live(&checked, &live).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn a_live_job_with_tests_is_refused() {
    let mut job = job("shell", "cat");
    job.tests = vec![runbox_engine::TestCase {
        name: "one".into(),
        ..Default::default()
    }];
    let err = engine().check_live(job).err().unwrap();
    assert!(err.to_string().contains("cannot have tests"), "{err}");
}

#[test]
fn several_runs_take_the_mean_time() {
    let mut job = job("shell", "sleep 0.2; echo done");
    job.runs = 3;
    let started = std::time::Instant::now();
    let result = engine().check_and_run(&job).unwrap();
    let elapsed = started.elapsed();
    let run = result.run.unwrap();
    assert_eq!(result.status, ResultStatus::Ok);
    assert_eq!(text(&run.stdout), "done\n");
    // Three runs took their time, and the reported wall time is one run's.
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(run.wall_time >= Duration::from_millis(200), "{run:?}");
    assert!(run.wall_time < Duration::from_millis(550), "{run:?}");
}

#[test]
fn several_runs_stop_at_the_first_failure() {
    let mut job = job("shell", "sleep 0.2; exit 4");
    job.runs = 10;
    let started = std::time::Instant::now();
    let result = engine().check_and_run(&job).unwrap();
    assert_eq!(result.status, ResultStatus::RuntimeError);
    assert_eq!(result.run.unwrap().exit_code, Some(4));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn more_runs_than_allowed_are_refused() {
    let mut job = job("shell", "true");
    job.runs = 21;
    let err = engine().check_and_run(&job).unwrap_err();
    assert!(err.to_string().contains("at most 20 runs"), "{err}");
}

#[test]
fn merged_stderr_reaches_stdout_in_order() {
    let mut job = job("shell", "echo a; echo b >&2; echo c");
    job.stderr_to_stdout = true;
    let run = engine().check_and_run(&job).unwrap().run.unwrap();
    assert_eq!(text(&run.stdout), "a\nb\nc\n");
    assert!(run.stderr.is_empty());
}

#[test]
fn compiler_options_are_refused_by_a_language_whose_compiler_takes_none() {
    let mut job = job("built", "echo 'echo ran' > out.sh");
    job.compiler_options = vec!["-O3".into()];
    let err = engine().check_and_run(&job).unwrap_err();
    assert!(
        err.to_string().contains("Built takes no compiler options"),
        "{err}"
    );
}
