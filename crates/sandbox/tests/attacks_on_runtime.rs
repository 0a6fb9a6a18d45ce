//! The attack suite (`attack_suite/`) with every box on a Debian runtime
//! (bookworm, built once with mmdebstrap and cached, see
//! `support::debian_runtime`): every guarantee of the sandbox holds when the
//! box's /usr is not the host's. Also the runtime's own promises: the box sees
//! the runtime's tree and never the host's.

mod attack_suite;
mod support;

use runbox_sandbox::{BoxConfig, Status};
use support::*;

/// Boxes of this binary use the test runtime's system tree.
fn on_system(config: BoxConfig) -> BoxConfig {
    config.with_runtime(debian_runtime())
}

/// Runs a shell script in a box on the test runtime.
fn sh_on_runtime(script: &str) -> runbox_sandbox::Outcome {
    run(&on_system(BoxConfig::new(["/bin/sh", "-c", script])))
}

#[test]
fn the_box_sees_the_runtimes_usr_and_not_the_hosts() {
    // gcc is on the host (the suite compiles with it) and not in the runtime.
    assert!(
        std::path::Path::new("/usr/bin/gcc").exists(),
        "the host must have gcc"
    );
    let o = sh_on_runtime(
        "test -e /usr/bin/gcc && echo host-usr; cat /usr/lib/os-release | grep VERSION_CODENAME",
    );
    assert_eq!(
        (o.status, stdout(&o).as_str()),
        (Status::Ok, "VERSION_CODENAME=bookworm\n"),
        "{o:?}"
    );
}

#[test]
fn the_merged_usr_links_are_the_runtimes() {
    let o = sh_on_runtime("for l in /bin /sbin /lib /lib64; do echo $l $(readlink $l); done");
    let expected: String = ["bin", "sbin", "lib", "lib64"]
        .iter()
        .map(|name| {
            let target = std::fs::read_link(debian_runtime().join(name)).unwrap();
            format!("/{name} {}\n", target.display())
        })
        .collect();
    assert_eq!((o.status, stdout(&o)), (Status::Ok, expected), "{o:?}");
}

#[test]
fn the_loader_cache_is_the_runtimes() {
    let o = run(&on_system(BoxConfig::new(["cat", "/etc/ld.so.cache"])));
    let runtime_cache = std::fs::read(debian_runtime().join("etc/ld.so.cache")).unwrap();
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert!(
        o.stdout == runtime_cache,
        "the box's /etc/ld.so.cache is not the runtime's"
    );
}

#[test]
fn declared_etc_paths_come_from_the_runtime() {
    // The runtime's /etc/alternatives has fewer entries than the host's: the box
    // must list exactly the runtime's.
    let cfg = on_system(BoxConfig::new(["ls", "/etc/alternatives"]))
        .with_system_path("/etc/alternatives");
    let o = run(&cfg);
    let mut expected: Vec<String> = std::fs::read_dir(debian_runtime().join("etc/alternatives"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    let listed: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!((o.status, listed), (Status::Ok, expected), "{o:?}");
}

#[test]
fn a_runtime_symlink_to_a_host_path_resolves_inside_the_runtime() {
    // A runtime of its own (as an image could make it): /etc/alternatives is a
    // link to the absolute /etc. Bound into a box, it must name the runtime's
    // /etc, not the host's.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/marker"), "runtime\n").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc/alternatives")).unwrap();
    compile_static(SHOW, &root.join("usr/bin/show"));
    let cfg = BoxConfig::new([
        "/usr/bin/show",
        "/etc/alternatives/marker",
        "/etc/alternatives/shadow",
    ])
    .with_runtime(root)
    .with_system_path("/etc/alternatives");
    let o = run(&cfg);
    assert_eq!(
        (o.status, stdout(&o).as_str()),
        (Status::Ok, "runtime\nmissing\n"),
        "{o:?}"
    );
}

#[test]
fn var_lib_paths_linking_out_of_a_runtime_resolve_inside_it() {
    // A runtime of its own whose /var/lib entries (the kind a language declares,
    // such as GHC's package database) link out of its tree, absolutely and by
    // `..`. Bound into a box, each must name the runtime's files: its marker,
    // and never the host's /etc/debian_version (world-readable: only where it
    // is looked up keeps it out).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::fs::create_dir(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/marker"), "runtime\n").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("var/lib/absolute")).unwrap();
    std::os::unix::fs::symlink("../../..", root.join("var/lib/dotdot")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../etc/debian_version",
        root.join("var/lib/version"),
    )
    .unwrap();
    assert!(
        std::fs::read_to_string("/etc/debian_version").is_ok(),
        "the host's /etc/debian_version must be readable for this test to mean anything"
    );
    compile_static(SHOW, &root.join("usr/bin/show"));
    let cfg = BoxConfig::new([
        "/usr/bin/show",
        "/var/lib/absolute/marker",
        "/var/lib/absolute/debian_version",
        "/var/lib/dotdot/etc/marker",
        "/var/lib/dotdot/etc/debian_version",
    ])
    .with_runtime(root)
    .with_system_path("/var/lib/absolute")
    .with_system_path("/var/lib/dotdot");
    let o = run(&cfg);
    assert_eq!(
        (o.status, stdout(&o).as_str()),
        (Status::Ok, "runtime\nmissing\nruntime\nmissing\n"),
        "{o:?}"
    );
    // A link to a file the runtime lacks is missing from the runtime, not taken
    // from the host: the box is refused before it starts.
    let cfg = BoxConfig::new(["/usr/bin/show"])
        .with_runtime(root)
        .with_system_path("/var/lib/version");
    let err = support::sandbox().run(&cfg).unwrap_err();
    assert!(err.to_string().contains("/var/lib/version"), "{err}");
}

/// A C program that prints each file named by its arguments, or `missing`.
const SHOW: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "r"); char line[256];
        if (!f) { puts("missing"); continue; }
        while (fgets(line, sizeof line, f)) fputs(line, stdout);
        fclose(f);
    }
    return 0;
}"#;

/// Compiles the C `source` as a static program at `out`.
fn compile_static(source: &str, out: &std::path::Path) {
    let src = out.with_extension("c");
    std::fs::write(&src, source).unwrap();
    let done = support::host_command("gcc")
        .args(["-O1", "-static", "-o"])
        .arg(out)
        .arg(&src)
        .output()
        .expect("gcc must be installed for the attack suite");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    std::fs::remove_file(src).unwrap();
}
