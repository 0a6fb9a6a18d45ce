//! A box launcher process and nothing else (see `runbox_sandbox::LauncherProgram`).
//! With `--end-after-each-clone` (tests only) it ends after cloning each box,
//! before answering: a launcher killed at the worst moment.

fn main() {
    if std::env::args_os().nth(1).as_deref() == Some("--end-after-each-clone".as_ref()) {
        runbox_sandbox::run_box_launcher_ending_after_each_clone()
    }
    runbox_sandbox::run_box_launcher()
}
