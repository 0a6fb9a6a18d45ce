//! Operator conventions of the real binary: `runbox --version` names the commit,
//! and log lines carry colour codes only on a terminal without `NO_COLOR`.

mod support;

use std::path::Path;
use std::process::Command;

use support::{TestServer, python, runbox_binary};

/// The escape that starts every ANSI colour code.
const ESC: char = '\u{1b}';

/// The short commit of the checkout the tests run from, as `build.rs` reads it.
fn checkout_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_release_and_the_git_commit() {
    let out = Command::new(runbox_binary())
        .arg("--version")
        .output()
        .expect("runbox starts");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // Outside a git checkout (a source archive), build.rs falls back to `unknown`.
    let commit = checkout_commit().unwrap_or_else(|| "unknown".to_string());
    assert_eq!(
        line,
        format!("runbox {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn server_logs_written_to_a_file_are_plain_text_without_colour_codes() {
    // The test server's stderr is a file, as under a process supervisor.
    let server = TestServer::start();
    server.post_expect("/api/v1/execute", &python("print(1)"), None, 200);
    let log = server.log();
    server.stop();
    assert!(log.contains("runbox is serving"), "{log}");
    let request = log
        .lines()
        .find(|line| line.contains("request") && line.contains("/api/v1/execute"))
        .unwrap_or_else(|| panic!("no request line in:\n{log}"));
    assert!(
        request.contains("INFO") && request.contains("status=200"),
        "{request}"
    );
    assert!(!log.contains(ESC), "colour codes in a log file:\n{log:?}");
}

/// Runs `runbox serve` for a few seconds with its stderr on a pseudo-terminal
/// (`script` from util-linux), with `NO_COLOR` set to `no_color` or unset; what
/// the terminal showed.
fn serve_on_a_terminal(data_dir: &Path, no_color: Option<&str>) -> String {
    let command = format!(
        "timeout -s INT 5 {} serve --listen 127.0.0.1:0 --workers 1 --data-dir {}",
        runbox_binary(),
        data_dir.display()
    );
    let mut script = Command::new("script");
    script
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("RUNBOX_CONFIG")
        .env_remove("NO_COLOR");
    if let Some(value) = no_color {
        script.env("NO_COLOR", value);
    }
    let out = script.output().expect("script (util-linux) runs");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.contains("runbox is serving"), "{shown}");
    shown
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    let dir = tempfile::tempdir().expect("a data directory");
    let coloured = serve_on_a_terminal(dir.path(), None);
    assert!(
        coloured.contains(ESC),
        "a terminal without NO_COLOR gets colours:\n{coloured:?}"
    );
    let plain = serve_on_a_terminal(dir.path(), Some("1"));
    assert!(!plain.contains(ESC), "NO_COLOR=1 on a terminal:\n{plain:?}");
}
