//! End-to-end tests of `runbox run` and `runbox languages`: the real binary, real
//! boxes, the built-in catalog (its core languages are installed in CI) and a
//! test catalog given with `--languages-dir`.

use std::path::Path;
use std::process::{Command, Output};

fn runbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbox"))
        .args(args)
        .env_remove("RUNBOX_LANGUAGES_DIR")
        .output()
        .expect("runbox must start")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory with a `shell` language file and the given source files.
fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("langs")).unwrap();
    std::fs::write(
        dir.path().join("langs/tshell.toml"),
        r#"
id = "tshell"
name = "Test Shell"
extensions = ["tsh"]
packages = ["dash"]
source_file = "main.tsh"
run = ["/bin/sh", "{entry}"]
version = ["/bin/sh", "-c", "echo 0.5"]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("langs/gone.toml"),
        r#"
id = "gone"
name = "Gone"
extensions = ["gone"]
packages = ["gone-lang"]
source_file = "main.gone"
run = ["no-such-interpreter-runbox", "{entry}"]
version = ["no-such-interpreter-runbox", "--version"]
"#,
    )
    .unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

fn path(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

fn langs(dir: &tempfile::TempDir) -> String {
    dir.path().join("langs").display().to_string()
}

#[test]
fn run_passes_output_through_and_exits_with_the_program_code() {
    let dir = workspace(&[("x.tsh", "echo out \"$@\"; cat; echo err >&2; exit 3")]);
    let stdin = dir.path().join("in.txt");
    std::fs::write(&stdin, "typed\n").unwrap();
    let out = runbox(&[
        "run",
        "--languages-dir",
        &langs(&dir),
        &path(&dir, "x.tsh"),
        "--stdin",
        &stdin.display().to_string(),
        "--args",
        "a",
        "--b c",
    ]);
    assert_eq!(text(&out.stdout), "out a --b c\ntyped\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("err\nrunbox: tshell 0.5 · runtime_error · exit 3 · cpu "),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn run_json_prints_the_result_contract() {
    let dir = workspace(&[("x.tsh", "echo hi")]);
    let out = runbox(&[
        "run",
        "--json",
        "--languages-dir",
        &langs(&dir),
        &path(&dir, "x.tsh"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["language"], "tshell");
    assert_eq!(json["version"], "0.5");
    assert_eq!(json["status"], "ok");
    assert!(json["compile"].is_null());
    assert_eq!(json["run"]["stdout"], "hi\n");
    assert!(
        json["id"].as_str().is_some_and(|id| id.len() == 36),
        "{json}"
    );
}

#[test]
fn a_time_limit_exits_124_and_says_so() {
    let dir = workspace(&[("x.tsh", "while :; do :; done")]);
    let out = runbox(&[
        "run",
        "--languages-dir",
        &langs(&dir),
        "--time-limit",
        "300ms",
        &path(&dir, "x.tsh"),
    ]);
    assert_eq!(out.status.code(), Some(124));
    assert!(
        text(&out.stderr).contains("· time_limit_exceeded ·"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn c_is_detected_by_extension_compiled_and_run() {
    let dir = workspace(&[(
        "hello.c",
        "#include <stdio.h>\nint main(void) { puts(\"hello from C\"); return 0; }\n",
    )]);
    let out = runbox(&["run", &path(&dir, "hello.c")]);
    assert_eq!(text(&out.stdout), "hello from C\n", "{}", text(&out.stderr));
    assert!(out.status.success());
}

#[test]
fn a_compile_error_exits_120_with_the_compilers_messages() {
    let dir = workspace(&[("bad.c", "int main(void) { return undeclared; }\n")]);
    let out = runbox(&["run", &path(&dir, "bad.c")]);
    assert_eq!(out.status.code(), Some(120));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("undeclared (first use in this function)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("runbox: c ") && stderr.contains("· compile error ·"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_script_is_recognised_by_its_shebang() {
    let dir = workspace(&[(
        "script",
        "#!/usr/bin/env python3\nimport sys\nprint(sys.version_info[0])\n",
    )]);
    let out = runbox(&["run", "-q", &path(&dir, "script")]);
    assert_eq!(text(&out.stdout), "3\n", "{}", text(&out.stderr));
    assert!(
        out.stderr.is_empty(),
        "-q prints no summary: {}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_language_gets_one_line_with_the_closest_ids() {
    let dir = workspace(&[("x.txt", "")]);
    let out = runbox(&["run", "--language", "pyton", &path(&dir, "x.txt")]);
    assert_eq!(out.status.code(), Some(125));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("runbox: unknown language 'pyton'; did you mean python"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_language_that_is_not_installed_names_the_install_command() {
    let dir = workspace(&[("x.gone", "")]);
    let out = runbox(&[
        "run",
        "--languages-dir",
        &langs(&dir),
        &path(&dir, "x.gone"),
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "runbox: Gone is not installed on this host (no-such-interpreter-runbox is missing): install it with `apt-get install -y gone-lang`\n"
    );
}

#[test]
fn a_missing_file_and_an_unknown_extension_get_one_clear_line() {
    let out = runbox(&["run", "/no/such/file.py"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "runbox: /no/such/file.py: no such file\n"
    );
    let dir = workspace(&[("notes.xyz", "hello")]);
    let out = runbox(&["run", &path(&dir, "notes.xyz")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("cannot tell the language of")
            && text(&out.stderr).contains("--language"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn languages_lists_every_entry_with_its_state() {
    let dir = workspace(&[]);
    let out = runbox(&["languages", "--json", "--languages-dir", &langs(&dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = json.as_array().unwrap();
    let entry = |id: &str| list.iter().find(|e| e["id"] == id).unwrap().clone();
    assert_eq!(entry("tshell")["version"], "0.5");
    assert_eq!(entry("gone")["installed"], false);
    assert_eq!(entry("gone")["install"], "apt-get install -y gone-lang");
    let c = entry("c");
    assert_eq!(c["installed"], true, "{c}");
    assert!(
        c["version"].as_str().is_some_and(|v| v.starts_with("12.")),
        "{c}"
    );

    let table = runbox(&["languages", "--languages-dir", &langs(&dir)]);
    let table = text(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("gone")
                && l.ends_with("not installed: apt-get install -y gone-lang")),
        "{table}"
    );
    assert!(Path::new(&langs(&dir)).exists());
}

#[test]
fn output_files_are_written_to_the_output_dir_byte_for_byte() {
    let dir = workspace(&[(
        "draw.c",
        "#include <stdio.h>\n\
         int main(void) {\n\
             FILE *f = fopen(\"img.bin\", \"wb\");\n\
             for (int i = 0; i < 256; i++) fputc(i, f);\n\
             fclose(f);\n\
             puts(\"drawn\");\n\
             return 0;\n\
         }\n",
    )]);
    let out_dir = dir.path().join("out");
    let out = runbox(&[
        "run",
        &path(&dir, "draw.c"),
        "--output-file",
        "*.bin",
        "--output-file",
        "missing.txt",
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "drawn\n");
    let bytes = std::fs::read(out_dir.join("img.bin")).unwrap();
    assert_eq!(bytes, (0..=255u8).collect::<Vec<_>>());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("output file missing.txt: no such file after the run"),
        "{stderr}"
    );
}
