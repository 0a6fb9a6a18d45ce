//! End to end: `runbox runtimes` adds a Debian runtime, lists, verifies and
//! removes it. Builds bookworm's essential packages (bash is one) with
//! mmdebstrap: about half a minute; fails with the reason without network.

use std::process::{Command, Output};

fn runtimes(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbox"))
        .arg("runtimes")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("runbox must start")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_debian_runtime_is_added_listed_verified_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = runtimes(
        data,
        &[
            "add",
            "debian:bookworm",
            "--packages",
            "bash",
            "--name",
            "bookworm-bash",
        ],
    );
    assert!(out.status.success(), "add failed: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("added bookworm-bash (debian:bookworm)"),
        "{}",
        text(&out.stdout)
    );

    let out = runtimes(data, &["list"]);
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = listing
        .lines()
        .find(|l| l.starts_with("bookworm-bash"))
        .expect(&listing);
    assert!(
        line.contains("debian:bookworm") && line.contains("MiB") && line.ends_with("bash"),
        "{line}"
    );

    let out = runtimes(data, &["verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("bookworm-bash: ok sha256:"),
        "{}",
        text(&out.stdout)
    );

    let out = runtimes(data, &["remove", "bookworm-bash"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = runtimes(data, &["list", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
    let out = runtimes(data, &["gc"]);
    assert!(
        text(&out.stdout).starts_with("removed "),
        "{}",
        text(&out.stdout)
    );
    let out = runtimes(data, &["verify", "bookworm-bash"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no runtime named 'bookworm-bash'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_source_kind_is_refused_with_the_form_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let out = runtimes(dir.path(), &["add", "docker:python"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("use debian:SUITE"),
        "{}",
        text(&out.stderr)
    );
}
