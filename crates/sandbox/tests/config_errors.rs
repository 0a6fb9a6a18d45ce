//! Configuration mistakes give clear errors, never a panic, and leave nothing behind.

mod support;

use runbox_sandbox::{BindMount, BoxConfig, Error, Limits};
use support::*;

#[test]
fn a_missing_command_names_the_command() {
    let err = sandbox()
        .run(&BoxConfig::new(["no-such-command-xyz"]))
        .unwrap_err();
    assert!(matches!(err, Error::Exec { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("no-such-command-xyz") && message.contains("No such file"),
        "{message}"
    );
}

#[test]
fn a_command_that_is_not_executable_says_so() {
    let err = sandbox().run(&BoxConfig::new(["/etc/passwd"])).unwrap_err();
    assert!(err.to_string().contains("Permission denied"), "{err}");
}

#[test]
fn a_missing_host_directory_names_the_path() {
    let cfg = BoxConfig::new(["true"]).with_bind(BindMount::read_only("/no/such/dir", "/data"));
    let err = sandbox().run(&cfg).unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
}

#[test]
fn a_missing_working_directory_names_the_step() {
    let err = sandbox()
        .run(&BoxConfig::new(["true"]).with_cwd("/box/nowhere"))
        .unwrap_err();
    assert!(matches!(err, Error::Setup { .. }), "{err:?}");
    assert!(err.to_string().contains("working directory"), "{err}");
}

#[test]
fn nonsense_limits_are_refused_before_anything_is_created() {
    let cases = [
        Limits {
            memory_bytes: 1,
            ..Limits::default()
        },
        Limits {
            processes: 0,
            ..Limits::default()
        },
        Limits {
            cpu_time: std::time::Duration::ZERO,
            ..Limits::default()
        },
        Limits {
            processes: u64::MAX,
            ..Limits::default()
        },
    ];
    for limits in cases {
        let err = sandbox()
            .run(&BoxConfig::new(["true"]).with_limits(limits.clone()))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig(_)),
            "{limits:?}: {err:?}"
        );
    }
}

#[test]
fn a_reserved_mount_point_is_refused() {
    let err = sandbox()
        .run(&BoxConfig::new(["true"]).with_bind(BindMount::read_only("/tmp", "/proc")))
        .unwrap_err();
    assert!(err.to_string().contains("/proc"), "{err}");
}

#[test]
fn errors_leave_the_box_slot_usable() {
    for _ in 0..(MAX_BOXES + 2) {
        let _ = sandbox().run(&BoxConfig::new(["no-such-command-xyz"]));
    }
    let o = sandbox().run(&BoxConfig::new(["true"])).unwrap();
    assert_eq!(o.status, runbox_sandbox::Status::Ok);
}

/// A directory that would make a runtime, changed by `spoil`.
fn runtime_dir(spoil: impl FnOnce(&std::path::Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("usr")).unwrap();
    spoil(dir.path());
    dir
}

fn runtime_error(root: &std::path::Path) -> Error {
    sandbox()
        .run(&BoxConfig::new(["true"]).with_runtime(root))
        .unwrap_err()
}

#[test]
fn a_missing_runtime_names_its_path() {
    let err = runtime_error("/no/such/runtime".as_ref());
    assert!(matches!(err, Error::InvalidRuntime { .. }), "{err:?}");
    assert!(err.to_string().contains("/no/such/runtime"), "{err}");
}

#[test]
fn a_runtime_without_usr_is_refused() {
    let dir = runtime_dir(|root| std::fs::remove_dir(root.join("usr")).unwrap());
    let err = runtime_error(dir.path());
    assert!(err.to_string().contains("no usr directory"), "{err}");
}

#[test]
fn a_runtime_whose_usr_is_a_symlink_is_refused() {
    let dir = runtime_dir(|root| {
        std::fs::remove_dir(root.join("usr")).unwrap();
        std::os::unix::fs::symlink("/usr", root.join("usr")).unwrap();
    });
    let err = runtime_error(dir.path());
    assert!(matches!(err, Error::InvalidRuntime { .. }), "{err:?}");
}

#[test]
fn a_runtime_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = runtime_dir(|root| {
        std::fs::set_permissions(root.join("usr"), std::fs::Permissions::from_mode(0o777)).unwrap()
    });
    let err = runtime_error(dir.path());
    assert!(
        err.to_string()
            .contains("usr is writable by group or others"),
        "{err}"
    );
}

#[test]
fn a_runtime_not_owned_by_root_is_refused() {
    let dir = runtime_dir(|root| std::os::unix::fs::chown(root, Some(1234), None).unwrap());
    let err = runtime_error(dir.path());
    assert!(err.to_string().contains("owned by uid 1234"), "{err}");
}
