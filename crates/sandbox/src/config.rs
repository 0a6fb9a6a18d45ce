//! What one box looks like: the command, its environment, its files and its limits.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::tty::TerminalSize;

/// The environment a box gets when the caller sets none.
pub const DEFAULT_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/box"),
    ("LANG", "C.UTF-8"),
];

/// The limits of one run. Every limit applies to the whole box: all processes and threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU time (user + system) of every process and thread of the box.
    pub cpu_time: Duration,
    /// Wall-clock time from the start of the program.
    pub wall_time: Duration,
    /// Memory of the whole box, swap included, page cache and tmpfs excluded.
    pub memory_bytes: u64,
    /// Processes plus threads alive at once.
    pub processes: u64,
    /// Bytes kept of stdout and of stderr, each; past it the run ends as
    /// `output_limit_exceeded`.
    pub output_bytes: u64,
    /// Largest file the program may write (RLIMIT_FSIZE).
    pub file_size_bytes: u64,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Stack size of the main thread; `None` means as large as the memory limit.
    pub stack_bytes: Option<u64>,
    /// Size of the tmpfs mounted at /tmp.
    pub tmp_bytes: u64,
    /// Size of the tmpfs mounted at /box. With a host directory bound there instead,
    /// it is the budget for what the box writes to it (none when bound read-only).
    pub box_bytes: u64,
    /// Size of the tmpfs mounted at /dev/shm.
    pub shm_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_time: Duration::from_secs(2),
            wall_time: Duration::from_secs(5),
            memory_bytes: 256 << 20,
            processes: 64,
            output_bytes: 64 << 10,
            file_size_bytes: 16 << 20,
            open_files: 256,
            stack_bytes: None,
            tmp_bytes: 32 << 20,
            box_bytes: 32 << 20,
            shm_bytes: 16 << 20,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable; the message names the limit.
    pub fn validate(&self) -> Result<()> {
        let nonzero: [(&str, u64); 8] = [
            (
                "cpu time",
                self.cpu_time.as_micros().min(u64::MAX as u128) as u64,
            ),
            (
                "wall time",
                self.wall_time.as_micros().min(u64::MAX as u128) as u64,
            ),
            ("memory", self.memory_bytes),
            ("processes", self.processes),
            ("open files", self.open_files),
            ("/tmp size", self.tmp_bytes),
            ("/box size", self.box_bytes),
            ("/dev/shm size", self.shm_bytes),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(Error::InvalidConfig(format!(
                "the {name} limit must be greater than zero"
            )));
        }
        if self.memory_bytes < MIN_MEMORY_BYTES {
            return Err(Error::InvalidConfig(format!(
                "the memory limit must be at least {} KiB, got {} bytes",
                MIN_MEMORY_BYTES >> 10,
                self.memory_bytes
            )));
        }
        if self.processes > MAX_PROCESSES {
            return Err(Error::InvalidConfig(format!(
                "the process limit must be at most {MAX_PROCESSES}, got {}",
                self.processes
            )));
        }
        if self.wall_time > MAX_WALL_TIME || self.cpu_time > MAX_WALL_TIME {
            return Err(Error::InvalidConfig(format!(
                "time limits must be at most {} s",
                MAX_WALL_TIME.as_secs()
            )));
        }
        Ok(())
    }

    /// The stack limit in bytes, resolving `None` to the memory limit.
    pub fn stack(&self) -> u64 {
        self.stack_bytes.unwrap_or(self.memory_bytes)
    }
}

/// Below this a box cannot even start its init process.
const MIN_MEMORY_BYTES: u64 = 4 << 20;
/// A sanity bound: more processes than this is a typo, not a limit.
const MAX_PROCESSES: u64 = 1 << 16;
/// A sanity bound on time limits: one day.
const MAX_WALL_TIME: Duration = Duration::from_secs(24 * 3600);

/// A host path made visible inside the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The absolute path on the host.
    pub host: PathBuf,
    /// The absolute path inside the box.
    pub inside: PathBuf,
    /// Whether the program may write to it (it is made writable by the box's user).
    pub writable: bool,
}

impl BindMount {
    /// `host` visible read-only at `inside`.
    pub fn read_only(host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Self {
        BindMount {
            host: host.into(),
            inside: inside.into(),
            writable: false,
        }
    }

    /// `host` visible read-write at `inside`; its top directory is handed to the box's user.
    pub fn writable(host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Self {
        BindMount {
            host: host.into(),
            inside: inside.into(),
            writable: true,
        }
    }

    /// Parses the CLI form `HOST:INSIDE[:rw]` (`HOST` alone means the same path inside).
    pub fn parse(spec: &str) -> Result<Self> {
        let mut parts = spec.split(':');
        let host = parts.next().unwrap_or_default();
        let inside = parts.next().filter(|s| !s.is_empty()).unwrap_or(host);
        let writable = match parts.next() {
            None => false,
            Some("rw") => true,
            Some("ro") => false,
            Some(other) => {
                return Err(Error::InvalidConfig(format!(
                    "bad mount option '{other}' in '{spec}': expected HOST:INSIDE[:rw|:ro]"
                )));
            }
        };
        if parts.next().is_some() || host.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "bad directory rule '{spec}': expected HOST:INSIDE[:rw|:ro]"
            )));
        }
        Ok(BindMount {
            host: host.into(),
            inside: inside.into(),
            writable,
        })
    }
}

/// Everything one run needs: build it with [`BoxConfig::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct BoxConfig {
    pub(crate) command: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) stdin: Vec<u8>,
    pub(crate) limits: Limits,
    pub(crate) binds: Vec<BindMount>,
    pub(crate) cwd: PathBuf,
    pub(crate) cpus: Option<String>,
    pub(crate) stderr_to_stdout: bool,
    pub(crate) network: bool,
    pub(crate) runtime: Option<PathBuf>,
    pub(crate) system_paths: Vec<PathBuf>,
    pub(crate) tty: Option<TerminalSize>,
}

impl BoxConfig {
    /// A box that runs `command` (program and arguments) with default limits, the
    /// default environment, empty stdin and a fresh tmpfs at /box as working directory.
    pub fn new<I, S>(command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        BoxConfig {
            command: command.into_iter().map(Into::into).collect(),
            env: DEFAULT_ENV
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stdin: Vec::new(),
            limits: Limits::default(),
            binds: Vec::new(),
            cwd: PathBuf::from("/box"),
            cpus: None,
            stderr_to_stdout: false,
            network: false,
            runtime: None,
            system_paths: Vec::new(),
            tty: None,
        }
    }

    /// Sets (or replaces) one environment variable.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Removes every environment variable, the defaults included.
    pub fn with_empty_env(mut self) -> Self {
        self.env.clear();
        self
    }

    /// The bytes the program reads on stdin.
    pub fn with_stdin(mut self, stdin: impl Into<Vec<u8>>) -> Self {
        self.stdin = stdin.into();
        self
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Makes a host path visible in the box. Binding a host directory at `/box`
    /// replaces the box's tmpfs work directory.
    pub fn with_bind(mut self, bind: BindMount) -> Self {
        self.binds.push(bind);
        self
    }

    /// The program's working directory inside the box (default `/box`).
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = cwd.into();
        self
    }

    /// Pins the box to these CPUs (a cpuset list such as `"1"` or `"0-1"`), for
    /// repeatable timings. Needs the cpuset controller.
    pub fn with_cpus(mut self, cpus: impl Into<String>) -> Self {
        self.cpus = Some(cpus.into());
        self
    }

    /// Gives the program one pipe for stdout and stderr (`2>&1`): stderr comes back
    /// empty, and stdout holds both in the exact order they were written.
    pub fn with_stderr_to_stdout(mut self) -> Self {
        self.stderr_to_stdout = true;
        self
    }

    /// Gives the box outbound network: its own network namespace with a user-mode
    /// link to the outside and a firewall refusing local networks (see
    /// [`crate::network`]). The sandbox must have been created with network.
    pub fn with_network(mut self) -> Self {
        self.network = true;
        self
    }

    /// Runs the box on the runtime whose root directory is `root` (a tree with
    /// its own `usr`, as runbox's runtime store holds them): the box's /usr, its
    /// merged-/usr links (`/bin -> usr/bin`, ...), its loader cache and the paths
    /// of [`BoxConfig::with_system_path`] all come from that tree, and nothing of
    /// the host's /usr or /etc is visible. Without it the box uses the host's
    /// (the runtime `host`). The root is checked before every box (see
    /// [`check_runtime`](crate::check_runtime)).
    pub fn with_runtime(mut self, root: impl Into<PathBuf>) -> Self {
        self.runtime = Some(root.into());
        self
    }

    /// Makes `path` of the box's system tree (its runtime's, or the host's
    /// without one) visible read-only at the same place: the files a language
    /// declares, such as `/etc/alternatives`, `/etc/java-17-openjdk` or GHC's
    /// package database `/var/lib/ghc`. On a runtime the path and every link on
    /// the way are resolved inside the runtime's tree, never on the host. It must
    /// be below one of [`SYSTEM_PATH_ROOTS`] (see [`is_system_path`]).
    pub fn with_system_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.system_paths.push(path.into());
        self
    }

    /// Runs the program on a pseudo-terminal of the box's own, of this size, in
    /// place of pipes (see the `tty` module): stdout is what the terminal shows
    /// (stderr merged, input echoed), stdin is typed into it.
    pub fn with_tty(mut self, size: TerminalSize) -> Self {
        self.tty = Some(size);
        self
    }

    /// The runtime root of this box, `None` for the host's system tree.
    pub fn runtime(&self) -> Option<&Path> {
        self.runtime.as_deref()
    }

    /// The paths this box takes from its system tree ([`BoxConfig::with_system_path`]).
    pub fn system_paths(&self) -> &[PathBuf] {
        &self.system_paths
    }

    /// The host paths bound into this box ([`BoxConfig::with_bind`]).
    pub fn binds(&self) -> &[BindMount] {
        &self.binds
    }

    /// The limits of this box.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks the whole configuration before anything is created.
    pub fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        let Some(program) = self.command.first() else {
            return Err(Error::InvalidConfig("the command is empty".into()));
        };
        if program.is_empty() {
            return Err(Error::InvalidConfig("the program name is empty".into()));
        }
        for part in self
            .command
            .iter()
            .chain(self.env.iter().flat_map(|(k, v)| [k, v]))
        {
            if part.contains('\0') {
                return Err(Error::InvalidConfig(format!(
                    "'{}' contains a NUL byte",
                    part.escape_debug()
                )));
            }
        }
        if let Some((key, _)) = self
            .env
            .iter()
            .find(|(k, _)| k.is_empty() || k.contains('='))
        {
            return Err(Error::InvalidConfig(format!(
                "bad environment variable name '{key}'"
            )));
        }
        check_box_path(&self.cwd, "working directory")?;
        for bind in &self.binds {
            check_box_path(&bind.inside, "mount point")?;
            if RESERVED.iter().any(|r| bind.inside == Path::new(r)) {
                return Err(Error::InvalidConfig(format!(
                    "{} is managed by the sandbox and cannot be a mount point",
                    bind.inside.display()
                )));
            }
            if !bind.host.is_absolute() {
                return Err(Error::InvalidConfig(format!(
                    "host path {} must be absolute",
                    bind.host.display()
                )));
            }
            let meta = std::fs::metadata(&bind.host)
                .map_err(|e| Error::io("cannot use host path", &bind.host, e))?;
            if bind.writable && !meta.is_dir() {
                return Err(Error::InvalidConfig(format!(
                    "{} must be a directory to be bound writable",
                    bind.host.display()
                )));
            }
        }
        for path in &self.system_paths {
            check_box_path(path, "system path")?;
            if !is_system_path(path) {
                return Err(Error::InvalidConfig(format!(
                    "the system path {} must be below {} (the box's /usr is its runtime's already, and the sandbox builds /, /proc, /dev, /tmp and /box itself)",
                    path.display(),
                    SYSTEM_PATH_ROOTS.join(", ")
                )));
            }
        }
        if let Some(cpus) = &self.cpus
            && (cpus.is_empty()
                || !cpus
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == '-'))
        {
            return Err(Error::InvalidConfig(format!("bad CPU list '{cpus}'")));
        }
        Ok(())
    }
}

/// The directories whose contents a box may take from its system tree with
/// [`BoxConfig::with_system_path`]: where Debian packages keep configuration
/// (/etc), state such as package databases (/var/lib) and add-on software
/// (/opt). Not `/` or the directories the sandbox builds itself (/usr, /proc,
/// /dev, /tmp, /box, /run): binding over them would undo the box's own.
pub const SYSTEM_PATH_ROOTS: &[&str] = &["/etc", "/var/lib", "/opt"];

/// Whether `path` may be a system path: strictly below one of
/// [`SYSTEM_PATH_ROOTS`], absolute, without `.` or `..`.
pub fn is_system_path(path: &Path) -> bool {
    check_box_path(path, "system path").is_ok()
        && SYSTEM_PATH_ROOTS
            .iter()
            .any(|root| path.starts_with(root) && path != Path::new(root))
}

/// Box paths the sandbox builds itself.
const RESERVED: &[&str] = &["/", "/proc", "/dev", "/tmp", "/dev/shm", "/etc", "/usr"];

/// A path inside the box must be absolute and plain: no `..`, no `.`.
fn check_box_path(path: &Path, what: &str) -> Result<()> {
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "the {what} {} must be an absolute path without '.' or '..'",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_rule_parses_host_inside_and_mode() {
        assert_eq!(
            BindMount::parse("/a:/b:rw").unwrap(),
            BindMount::writable("/a", "/b")
        );
        assert_eq!(
            BindMount::parse("/a:/b").unwrap(),
            BindMount::read_only("/a", "/b")
        );
        assert_eq!(
            BindMount::parse("/a").unwrap(),
            BindMount::read_only("/a", "/a")
        );
        assert!(BindMount::parse("/a:/b:xx").is_err());
        assert!(BindMount::parse(":/b").is_err());
    }

    #[test]
    fn empty_command_is_refused() {
        let err = BoxConfig::new(Vec::<String>::new()).validate().unwrap_err();
        assert!(err.to_string().contains("command is empty"), "{err}");
    }

    #[test]
    fn zero_memory_limit_is_refused_with_its_name() {
        let limits = Limits {
            memory_bytes: 0,
            ..Limits::default()
        };
        let err = BoxConfig::new(["true"])
            .with_limits(limits)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn missing_host_directory_is_refused_with_its_path() {
        let cfg = BoxConfig::new(["true"]).with_bind(BindMount::read_only("/no/such/dir", "/data"));
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"), "{err}");
    }

    #[test]
    fn mount_point_with_dotdot_is_refused() {
        let cfg = BoxConfig::new(["true"]).with_bind(BindMount::read_only("/usr", "/box/../etc"));
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn nul_byte_in_argument_is_refused() {
        assert!(BoxConfig::new(["echo", "a\0b"]).validate().is_err());
    }

    #[test]
    fn system_path_outside_the_system_roots_is_refused() {
        for path in [
            "/usr/lib", "/", "/etc", "/var/lib", "/var/tmp", "/proc/1", "/box/x", "/run/x",
            "/tmp/x", "/dev/x",
        ] {
            let cfg = BoxConfig::new(["true"]).with_system_path(path);
            let err = cfg.validate().unwrap_err();
            assert!(
                err.to_string()
                    .contains("must be below /etc, /var/lib, /opt"),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn system_paths_below_etc_var_lib_and_opt_are_accepted() {
        for path in ["/etc/alternatives", "/var/lib/ghc", "/opt/tool/lib"] {
            assert!(is_system_path(Path::new(path)), "{path}");
        }
        assert!(!is_system_path(Path::new("/var/lib/../../etc/shadow")));
        assert!(!is_system_path(Path::new("/etcetera")));
        assert!(!is_system_path(Path::new("var/lib/ghc")));
    }

    #[test]
    fn with_env_replaces_an_existing_variable() {
        let cfg = BoxConfig::new(["true"]).with_env("HOME", "/tmp");
        let homes: Vec<_> = cfg.env.iter().filter(|(k, _)| k == "HOME").collect();
        assert_eq!(homes, [&("HOME".to_string(), "/tmp".to_string())]);
    }
}
