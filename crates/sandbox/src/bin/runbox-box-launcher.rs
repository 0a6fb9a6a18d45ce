//! A box launcher process and nothing else (see `runbox_sandbox::LauncherProgram`).

fn main() {
    runbox_sandbox::run_box_launcher()
}
