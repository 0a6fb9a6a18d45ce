//! A cgroup of runbox's own, asked of systemd when the one it started in is shared.
//!
//! On a pure cgroup v2 host, boxes need runbox alone in its cgroup: it moves
//! itself into a leaf and hands the controllers down to its boxes. A login shell
//! (`sudo runbox run hello.py` over SSH) shares its session scope with the shell
//! and everything else of the session, which runbox must not move. So, like
//! `systemd-run --scope -p Delegate=yes` and podman do, runbox asks systemd over
//! D-Bus for a transient scope (`runbox-<pid>.scope`, `Delegate=yes`) holding
//! only itself, and systemd moves it there. Nothing happens on cgroup v1, in a
//! cgroup runbox already has alone (a unit, a container), or without root.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::Value;

/// What became of the request, for `doctor`.
#[derive(Debug, Clone)]
pub enum Scope {
    /// systemd made the scope and runbox is in it.
    Moved {
        /// The scope's name, e.g. `runbox-4242.scope`.
        unit: String,
        /// The processes runbox shared its cgroup with (a few of them).
        shared_with: Vec<i32>,
    },
    /// The cgroup was shared and systemd could not be asked.
    Failed {
        /// Why, with the cgroup at fault.
        reason: String,
    },
}

static OUTCOME: OnceLock<Scope> = OnceLock::new();

/// What [`leave_a_shared_cgroup`] did, if it had anything to do.
pub fn outcome() -> Option<&'static Scope> {
    OUTCOME.get()
}

/// Moves this process into a delegated scope of its own when its cgroup v2 is
/// shared with other processes; does nothing otherwise. Never fails: when
/// systemd cannot be asked, the sandbox's own check reports the shared cgroup.
pub fn leave_a_shared_cgroup() {
    if !is_root() {
        return;
    }
    let Some(own) = own_v2_cgroup() else {
        return;
    };
    let pid = std::process::id();
    let others = other_processes(&own.dir, pid);
    if others.is_empty() {
        return;
    }
    let unit = format!("runbox-{pid}.scope");
    let outcome = match ask_systemd(&unit, pid).and_then(|()| wait_until_in(&unit)) {
        Ok(()) => {
            tracing::debug!(unit, "moved into a delegated scope of its own");
            Scope::Moved {
                unit,
                shared_with: others.into_iter().take(5).collect(),
            }
        }
        Err(reason) => Scope::Failed {
            reason: format!(
                "{} is shared with other processes and systemd gave runbox no scope of its own: {reason}",
                own.rel
            ),
        },
    };
    let _ = OUTCOME.set(outcome);
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Our cgroup on a pure cgroup v2 host mounted at /sys/fs/cgroup.
struct OwnCgroup {
    /// As `/proc/self/cgroup` names it.
    rel: String,
    /// Its directory.
    dir: PathBuf,
}

fn own_v2_cgroup() -> Option<OwnCgroup> {
    let mount = Path::new("/sys/fs/cgroup");
    // Pure v2: the unified hierarchy is mounted at the top and holds memory.
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return None;
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = v2_path(&text)?;
    // runbox's own leaf: this process has been set up already.
    if rel.ends_with("/runbox-supervisor") {
        return None;
    }
    let dir = mount.join(rel.trim_start_matches('/'));
    Some(OwnCgroup { rel, dir })
}

/// The cgroup v2 path of a `/proc/PID/cgroup` text that has no v1 hierarchy.
fn v2_path(text: &str) -> Option<String> {
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let path = lines.next()?.strip_prefix("0::")?.to_string();
    lines.next().is_none().then_some(path)
}

/// The pids in `dir`'s `cgroup.procs` other than `pid`.
fn other_processes(dir: &Path, pid: u32) -> Vec<i32> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    others_in(&procs, pid)
}

fn others_in(procs: &str, pid: u32) -> Vec<i32> {
    procs
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|p| i64::from(*p) != i64::from(pid))
        .collect()
}

/// `StartTransientUnit` of a scope holding `pid`, delegated, collected once it ends.
fn ask_systemd(unit: &str, pid: u32) -> Result<(), String> {
    let connection = Connection::system().map_err(|e| format!("no D-Bus system bus ({e})"))?;
    let properties: Vec<(&str, Value<'_>)> = vec![
        (
            "Description",
            Value::from("runbox (a delegated cgroup of its own)"),
        ),
        ("PIDs", Value::from(vec![pid])),
        ("Delegate", Value::from(true)),
        ("CollectMode", Value::from("inactive-or-failed")),
    ];
    let auxiliary: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
    connection
        .call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "StartTransientUnit",
            &(unit, "fail", properties, auxiliary),
        )
        .map_err(|e| format!("systemd refused the scope {unit}: {e}"))?;
    Ok(())
}

/// Waits (a few seconds at most) until systemd has moved us into `unit`.
fn wait_until_in(unit: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if v2_path(&text).is_some_and(|p| p.ends_with(&format!("/{unit}"))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "systemd made {unit} but did not move runbox into it"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pure_v2_line_is_a_v2_path() {
        assert_eq!(
            v2_path("0::/user.slice/user-0.slice/session-3.scope\n").as_deref(),
            Some("/user.slice/user-0.slice/session-3.scope")
        );
        // Hybrid: v1 hierarchies beside the unified one.
        assert_eq!(v2_path("4:memory:/x\n0::/x\n"), None);
        assert_eq!(v2_path("4:memory:/x\n"), None);
        assert_eq!(v2_path(""), None);
    }

    #[test]
    fn others_are_every_pid_but_ours() {
        assert_eq!(others_in("12\n4242\n13\n", 4242), [12, 13]);
        assert!(others_in("4242\n", 4242).is_empty());
        assert!(others_in("", 4242).is_empty());
    }
}
