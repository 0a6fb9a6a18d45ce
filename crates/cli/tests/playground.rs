//! The playground in a real browser: Debian's headless Chromium, driven by
//! playwright-core from Node (both installed by scripts/install-test-clients.sh),
//! against a real `runbox serve`. The script (tests/clients/playground.mjs) finds
//! everything by its accessible name; screenshots of each step are left in
//! `target/tmp/playground/`.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::TestServer;

/// Where `scripts/install-test-clients.sh` put the npm packages.
fn node_dir() -> PathBuf {
    std::env::var_os("RUNBOX_TEST_CLIENTS")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-clients"),
            PathBuf::from,
        )
        .join("node")
}

#[test]
fn the_playground_runs_a_prompt_shows_a_compile_error_and_judges_tests() {
    let node = node_dir();
    assert!(
        node.join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed in {}: run scripts/install-test-clients.sh",
        node.display()
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed: run scripts/install-test-clients.sh"
    );
    // An ES module resolves its imports from where it lies: beside node_modules.
    let script = node.join("playground.mjs");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/playground.mjs"),
        &script,
    )
    .expect("the script is copied");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let server = TestServer::start();
    let out = Command::new("node")
        .arg(&script)
        .arg(&server.url)
        .arg(&shots)
        .current_dir(&node)
        .output()
        .expect("node must start");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{printed}\n{}\nserver log:\n{}",
        shots.display(),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let steps: Vec<&str> = printed.lines().filter(|l| l.starts_with("ok ")).collect();
    assert_eq!(
        steps,
        [
            "ok 01-loaded",
            "ok 02-python-asks-a-name",
            "ok 03-python-greets",
            "ok 04-c-compile-error",
            "ok 05-judge-two-tests",
            "ok no-console-errors",
        ],
        "{printed}"
    );
    for step in [
        "01-loaded",
        "03-python-greets",
        "04-c-compile-error",
        "05-judge-two-tests",
    ] {
        assert!(
            shots.join(format!("{step}.png")).exists(),
            "no screenshot of {step}"
        );
    }
    // The page's figures, for the report.
    for line in printed.lines().filter(|l| l.starts_with("page load")) {
        eprintln!("{line}");
    }
}
