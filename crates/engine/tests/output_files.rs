//! Files out: a run returns the files it wrote (names or globs), byte for byte,
//! within a count and a size cap; a symlink, a FIFO or a directory named as an
//! output is refused, never followed.

use std::sync::{Arc, LazyLock};

use runbox_engine::{
    Catalog, Engine, EngineConfig, Job, JobBounds, OutputCaps, OutputFile, ResultStatus,
    SourceFile, TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 2,
            uid_base: 2_095_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

/// A 4x4 RGB PNG: binary bytes (a NUL, 0x89, CR LF) that text handling would break.
const PNG_HEX: &str = "89504e470d0a1a0a0000000d4948445200000004000000040802000000269309290000002e49444154789c0dc6310100301002b193f32eb0801c269ce1adcd140071c523bf27516532d46a5ad6834573771b0f484b0f912cc02c130000000049454e44ae426082";

fn png() -> Vec<u8> {
    (0..PNG_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&PNG_HEX[i..i + 2], 16).unwrap())
        .collect()
}

fn engine_with(caps: OutputCaps) -> Engine {
    Engine::new(
        SANDBOX.clone(),
        Catalog::embedded().unwrap(),
        EngineConfig {
            bounds: JobBounds {
                output: caps,
                ..JobBounds::default()
            },
            ..EngineConfig::default()
        },
    )
}

fn python(source: &str, output_files: &[&str]) -> Job {
    Job {
        language: "python".into(),
        files: vec![SourceFile::named("main.py", source)],
        output_files: output_files.iter().map(|s| s.to_string()).collect(),
        ..Job::default()
    }
}

fn file<'r>(files: &'r [OutputFile], name: &str) -> &'r OutputFile {
    files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {files:?}"))
}

#[test]
fn a_png_written_by_a_program_comes_back_byte_identical() {
    let source = format!(
        "import os\nos.makedirs('out', exist_ok=True)\n\
         open('plot.png', 'wb').write(bytes.fromhex('{PNG_HEX}'))\n\
         open('out/all.bin', 'wb').write(bytes(range(256)))\n\
         print('drawn')\n"
    );
    let job = python(&source, &["*.png", "out/*"]);
    let result = engine_with(OutputCaps::default())
        .check_and_run(&job)
        .unwrap();
    assert_eq!(result.status, ResultStatus::Ok, "{result:?}");
    let files = result.output_files.as_deref().expect("output files listed");
    let plot = file(files, "plot.png");
    assert_eq!(plot.content.as_deref(), Some(png().as_slice()));
    assert_eq!(plot.size, png().len() as u64);
    let all = file(files, "out/all.bin");
    assert_eq!(
        all.content.as_deref(),
        Some((0..=255u8).collect::<Vec<_>>().as_slice())
    );
    // The program's own source matches no glob: it was there before the run.
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn a_symlink_a_fifo_and_a_directory_named_as_outputs_are_refused() {
    let source = "import os\n\
                  os.symlink('/etc/shadow', 'link')\n\
                  os.mkfifo('fifo')\n\
                  os.mkdir('dir')\n\
                  os.symlink('/etc', 'escape')\n";
    let job = python(source, &["link", "fifo", "dir", "escape/passwd", "missing"]);
    let result = engine_with(OutputCaps::default())
        .check_and_run(&job)
        .unwrap();
    assert_eq!(result.status, ResultStatus::Ok, "{result:?}");
    let files = result.output_files.as_deref().unwrap();
    let reason = |name: &str| file(files, name).refused.clone().unwrap_or_default();
    assert!(reason("link").contains("symbolic link"), "{files:?}");
    assert!(reason("fifo").contains("FIFO"), "{files:?}");
    assert!(reason("dir").contains("directory"), "{files:?}");
    assert!(
        reason("escape/passwd").contains("no such file"),
        "{files:?}"
    );
    assert!(reason("missing").contains("no such file"), "{files:?}");
    assert!(files.iter().all(|f| f.content.is_none()), "{files:?}");
}

#[test]
fn the_count_and_size_caps_hold_with_a_reason_for_each_file_left_out() {
    let caps = OutputCaps {
        max_files: 2,
        max_bytes: 1000,
    };
    let source = "for name in ['a', 'b', 'c']:\n    open(name + '.txt', 'w').write('x' * 400)\n\
                  open('z.dat', 'w').write('y' * 5000)\n";
    let engine = engine_with(caps);
    let result = engine
        .check_and_run(&python(source, &["*.txt", "z.dat"]))
        .unwrap();
    let files = result.output_files.as_deref().unwrap();
    let returned: Vec<&str> = files
        .iter()
        .filter(|f| f.content.is_some())
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(returned, ["a.txt", "b.txt"], "{files:?}");
    let third = file(files, "c.txt");
    assert!(
        third
            .refused
            .as_deref()
            .unwrap()
            .contains("at most 2 files"),
        "{third:?}"
    );
    let result = engine.check_and_run(&python(source, &["z.dat"])).unwrap();
    let big = file(result.output_files.as_deref().unwrap(), "z.dat");
    assert_eq!(big.size, 5000);
    assert!(
        big.refused.as_deref().unwrap().contains("1000-byte limit"),
        "{big:?}"
    );
}

#[test]
fn each_test_returns_the_files_its_own_run_wrote() {
    let mut job = python(
        "import sys\nopen('answer.txt', 'w').write(sys.stdin.read().upper())\n",
        &["answer.txt"],
    );
    job.tests = ["one", "two"]
        .iter()
        .map(|name| TestCase {
            name: name.to_string(),
            stdin: name.as_bytes().to_vec(),
            ..TestCase::default()
        })
        .collect();
    let result = engine_with(OutputCaps::default())
        .check_and_run(&job)
        .unwrap();
    let tests = result.tests.unwrap();
    for (test, expected) in tests.iter().zip(["ONE", "TWO"]) {
        let files = test.output_files.as_deref().unwrap();
        assert_eq!(
            file(files, "answer.txt").content.as_deref(),
            Some(expected.as_bytes())
        );
    }
}

#[test]
fn a_pattern_that_leaves_the_work_directory_is_a_client_error() {
    let engine = engine_with(OutputCaps::default());
    for pattern in ["../etc/passwd", "/etc/passwd"] {
        let err = engine
            .check_and_run(&python("print(1)", &[pattern]))
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("must not contain") || message.contains("must be relative"),
            "{message}"
        );
    }
}
