//! The real client libraries against a real `runbox serve`: the official Judge0
//! Python SDK (`judge0` on PyPI) and `piston-client` from npm, installed by
//! `scripts/install-test-clients.sh` (scripts/test.sh runs it). A missing client
//! fails these tests: it never skips them.

mod compat_support;

use std::path::PathBuf;
use std::process::Command;

use compat_support::Server;

/// Where `scripts/install-test-clients.sh` put the clients.
fn clients_dir() -> PathBuf {
    std::env::var_os("RUNBOX_TEST_CLIENTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-clients"),
        PathBuf::from,
    )
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

fn run(mut command: Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what} cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_official_judge0_python_sdk_runs_programs_test_cases_and_limits() {
    let python = clients_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "the Judge0 SDK is not installed at {}: run scripts/install-test-clients.sh",
        python.display()
    );
    let server = Server::start(&[]);
    let key = server.create_key("judge0-sdk", "execute");
    let mut command = Command::new(python);
    command
        .arg(script("judge0_sdk.py"))
        .arg(&server.url)
        .arg(&key);
    let output = run(command, "the Judge0 SDK script");
    assert_eq!(
        output,
        "PYTHON ACCEPTED hello from python\n\
         C ACCEPTED hello from c\n\
         CPP ACCEPTED hello from c++\n\
         JAVASCRIPT ACCEPTED hello from javascript\n\
         BASH ACCEPTED hello from bash\n\
         test cases ['ACCEPTED', 'ACCEPTED', 'WRONG_ANSWER']\n\
         async ACCEPTED late\n\
         base64 ☃ été\n\
         compile COMPILATION_ERROR True\n\
         limit TIME_LIMIT_EXCEEDED True\n\
         exit RUNTIME_ERROR_NZEC 3\n"
    );
}

/// Runs the Node.js script `name` against a fresh server; `package` is the npm
/// package it needs. Returns what it printed.
fn node_script(name: &str, package: &str) -> String {
    let node_dir = clients_dir().join("node");
    assert!(
        node_dir
            .join(format!("node_modules/{package}/package.json"))
            .exists(),
        "{package} is not installed in {}: run scripts/install-test-clients.sh",
        node_dir.display()
    );
    // An ES module resolves its imports from where it lies: put it beside node_modules.
    let copy = node_dir.join(name);
    std::fs::copy(script(name), &copy).expect("the script is copied");
    let server = Server::start(&[]);
    let mut command = Command::new("node");
    command.arg(&copy).arg(&server.url).current_dir(&node_dir);
    run(command, name)
}

#[test]
fn the_piston_npm_client_runs_programs_and_sees_piston_statuses() {
    let output = node_script("piston_client.mjs", "piston-client");
    assert_eq!(
        output,
        "runtimes true\n\
         python hi ['a', 'b'] 0\n\
         c++ 0 42 null\n\
         javascript boom 2 RE\n\
         timeout TO SIGKILL\n\
         compile RE 1\n\
         unknown {\"message\":\"version is required as a string\"}\n"
    );
}

#[test]
fn a_piston_websocket_session_is_interactive_and_its_signals_reach_the_program() {
    let output = node_script("piston_ws.mjs", "ws");
    assert_eq!(
        output,
        "python runtime stage:run exit:run \"name? hello Ada\\nage? in ten years 46\\n\" 0 4999 Job Completed\n\
         c runtime stage:compile exit:compile stage:run exit:run \"42\\n100\\n\" \"done\\n\" 0 4999\n\
         sigint \"ready\\ninterrupted\\n\" 130 true 4999\n\
         bash \"ready\\n\" null SIGINT SG 4999\n\
         early data 4003 Not yet initialized\n\
         no init 4001 Initialization Timeout\n\
         init twice 4000 Already Initialized\n\
         stdout write 4004 Can only write to stdin\n\
         bad signal 4005 Invalid signal\n\
         unknown error klingon-* runtime is unknown 4002 Notified Error\n"
    );
}
