//! The service's settings: one typed struct, loaded once from `runbox.toml`, then
//! `RUNBOX_*` environment variables, then flags (each layer replaces the one below).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Every setting of `runbox serve` and `runbox worker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP listener. Loopback by default: anonymous use is only
    /// allowed on loopback while no API key exists.
    pub listen: SocketAddr,
    /// Where the embedded database and the compile cache live.
    pub data_dir: PathBuf,
    /// The database: `sqlite://PATH` or `postgres://...`; default
    /// `sqlite://<data_dir>/runbox.db`.
    pub database: Option<String>,
    /// Local workers that run jobs (default: the number of CPUs plus one); 0 for an
    /// API node that only enqueues.
    pub workers: Option<u32>,
    /// Jobs admitted at once (running plus waiting) before new ones get 503.
    pub queue_capacity: u32,
    /// Log lines as `text` or `json`.
    pub log_format: LogFormat,
    /// A directory of language files that add to or replace the built-in ones.
    pub languages_dir: Option<PathBuf>,
    /// Where runtimes are kept (`runbox runtimes`); default `<data_dir>/runtimes`.
    pub runtimes_dir: Option<PathBuf>,
    /// Request sizes and counts.
    pub requests: RequestBounds,
    /// Connections: how many, and how long a client may take to send a request.
    pub connections: ConnectionSettings,
    /// Limits of the run stage: defaults and maxima.
    pub run_limits: LimitSettings,
    /// Limits of the compile stage: defaults and maxima.
    pub compile_limits: LimitSettings,
    /// Rate limits and concurrency caps.
    pub rate: RateSettings,
    /// What is kept of each submission, and for how long.
    pub history: HistorySettings,
    /// Webhook delivery.
    pub webhooks: WebhookSettings,
    /// Queue leases (how a job whose worker died is found and run again).
    pub queue: QueueSettings,
    /// Outbound network for programs that ask for it.
    pub network: NetworkSettings,
    /// How long a graceful shutdown waits for running jobs, in seconds.
    pub shutdown_grace_seconds: u64,
    /// Size bound of the compile cache (under `<data_dir>/compile-cache`), in MiB;
    /// 0 turns it off.
    pub compile_cache_mb: u64,
    /// Report a single-process program's own memory peak, exact to the page,
    /// by tracing it, instead of its box cgroup's figure (docs/judging.md, "The
    /// memory figure"). On by default; off, every figure is the cgroup's.
    pub trace_program_memory: bool,
    /// The program started as each box slot's launcher process (the `runbox`
    /// binary sets itself); `None` clones boxes from a thread of this process,
    /// as an embedding test does. Not a setting of the file.
    #[serde(skip)]
    pub box_launcher: Option<runbox_sandbox::LauncherProgram>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2358)),
            data_dir: PathBuf::from("/var/lib/runbox"),
            database: None,
            workers: None,
            queue_capacity: 256,
            log_format: LogFormat::Text,
            languages_dir: None,
            runtimes_dir: None,
            requests: RequestBounds::default(),
            connections: ConnectionSettings::default(),
            run_limits: LimitSettings::run_defaults(),
            compile_limits: LimitSettings::compile_defaults(),
            rate: RateSettings::default(),
            history: HistorySettings::default(),
            webhooks: WebhookSettings::default(),
            queue: QueueSettings::default(),
            network: NetworkSettings::default(),
            shutdown_grace_seconds: 30,
            compile_cache_mb: 1024,
            trace_program_memory: true,
            box_launcher: None,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Sizes and counts a request may have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestBounds {
    /// Bytes of a request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Bytes of all source files of a job together.
    pub max_source_bytes: usize,
    /// Files per job.
    pub max_files: usize,
    /// Bytes of stdin (and of each test's input and expected output).
    pub max_stdin_bytes: usize,
    /// Arguments per job.
    pub max_args: usize,
    /// Submissions per batch.
    pub max_batch: usize,
    /// Test cases per job.
    pub max_tests: usize,
    /// Runs of one program in one request (`runs`, Judge0's `number_of_runs`).
    pub max_runs: u32,
    /// Items per page of a listing.
    pub max_per_page: u32,
    /// The longest one job may take on the wall clock with every limit reached:
    /// its compile, then each test (or run) and check one after another, in
    /// seconds. A job that could take longer is refused before it runs.
    pub max_job_wall_seconds: u64,
    /// Bytes of output one result may carry, every stage and test together;
    /// past it, later outputs are cut and flagged `stdout_truncated` /
    /// `stderr_truncated` (the program's own figures stay whole).
    pub max_result_bytes: usize,
    /// Files one run (or test) may return (`output_files`); further matches
    /// are listed with the reason and without content.
    pub max_output_files: usize,
    /// Bytes of the files one run (or test) may return together.
    pub max_output_file_bytes: u64,
}

impl Default for RequestBounds {
    fn default() -> Self {
        RequestBounds {
            max_body_bytes: 16 << 20,
            max_source_bytes: 1 << 20,
            max_files: 64,
            max_stdin_bytes: 4 << 20,
            max_args: 64,
            max_batch: 20,
            max_tests: 200,
            max_runs: 20,
            max_per_page: 100,
            max_job_wall_seconds: 3600,
            max_result_bytes: 16 << 20,
            max_output_files: 16,
            max_output_file_bytes: 8 << 20,
        }
    }
}

/// Bounds of the connections a client can make the server hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionSettings {
    /// Connections open at once; one more is closed at once. Never more than the
    /// process's descriptor limit minus 512 (for boxes and the database).
    pub max_connections: u32,
    /// How long a client may take to send a request's headers, and how long an
    /// idle keep-alive connection stays open, in milliseconds.
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a whole request body, in milliseconds.
    pub body_read_timeout_ms: u64,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_connections: 4096,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
        }
    }
}

/// Defaults (when a request sets none) and maxima (a request above one is refused)
/// of one stage. Times in milliseconds, sizes in KiB, as in the request contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Default CPU time; `None` keeps the engine's (and the language's) default.
    pub cpu_time_ms: Option<u64>,
    /// Default wall time.
    pub wall_time_ms: Option<u64>,
    /// Default memory.
    pub memory_kb: Option<u64>,
    /// Default processes and threads.
    pub processes: Option<u64>,
    /// Default output kept per stream.
    pub output_kb: Option<u64>,
    /// Largest CPU time a request may ask for.
    pub max_cpu_time_ms: u64,
    /// Largest wall time.
    pub max_wall_time_ms: u64,
    /// Largest memory.
    pub max_memory_kb: u64,
    /// Most processes and threads.
    pub max_processes: u64,
    /// Most output per stream.
    pub max_output_kb: u64,
}

impl LimitSettings {
    /// The run stage's: up to 20 s of CPU, 1 GiB, 1 MiB of output per stream.
    pub fn run_defaults() -> Self {
        LimitSettings {
            cpu_time_ms: None,
            wall_time_ms: None,
            memory_kb: None,
            processes: None,
            output_kb: None,
            max_cpu_time_ms: 20_000,
            max_wall_time_ms: 60_000,
            max_memory_kb: 1 << 20,
            max_processes: 256,
            max_output_kb: 1024,
        }
    }

    /// The compile stage's: up to 60 s of CPU, 2 GiB.
    pub fn compile_defaults() -> Self {
        LimitSettings {
            max_cpu_time_ms: 60_000,
            max_wall_time_ms: 120_000,
            max_memory_kb: 2 << 20,
            max_processes: 256,
            max_output_kb: 1024,
            ..Self::run_defaults()
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self::run_defaults()
    }
}

/// Rate limits and concurrency caps of keys (and of anonymous use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateSettings {
    /// Requests per second of a key that sets none.
    pub per_second: f64,
    /// Requests above the rate a key may make in a burst.
    pub burst: u32,
    /// Jobs a key that sets none may have running at once.
    pub max_concurrent: u32,
}

impl Default for RateSettings {
    fn default() -> Self {
        // Sized for one application backend calling with one key for all its
        // users: the rate is abuse protection, not a throttle; the queue bound and
        // the concurrency cap keep the machine's work bounded.
        RateSettings {
            per_second: 1000.0,
            burst: 2000,
            max_concurrent: 64,
        }
    }
}

/// What is kept of each submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Keep the source files and stdin of finished submissions.
    pub store_source: bool,
    /// Keep stdout and stderr in stored results.
    pub store_output: bool,
    /// Delete finished submissions older than this many days; 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            store_source: true,
            store_output: true,
            retention_days: 30,
        }
    }
}

/// How results are POSTed to a submission's `callback_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Tries before giving up.
    pub attempts: u32,
    /// Timeout of one try, in milliseconds.
    pub timeout_ms: u64,
    /// Wait before the second try; doubled for each further one.
    pub backoff_ms: u64,
    /// Allow callback URLs on private and loopback addresses (off by default: a
    /// callback must not become a way to reach the operator's internal network).
    pub allow_private_addresses: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            attempts: 5,
            timeout_ms: 5_000,
            backoff_ms: 500,
            allow_private_addresses: false,
        }
    }
}

/// Leases of queued jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// How long a claim holds without renewal, in seconds.
    pub lease_seconds: u64,
    /// Claims of one job before it ends as `internal_error`.
    pub max_attempts: u32,
    /// How long a synchronous execute waits for a free worker before it is
    /// answered 503 with `Retry-After`, in seconds.
    pub sync_wait_seconds: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            lease_seconds: 30,
            max_attempts: 3,
            sync_wait_seconds: 30,
        }
    }
}

/// Outbound network for programs that ask for it (`network: true`, Judge0's
/// `enable_network`). Off by default: no box has any network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// Let programs that ask for it reach the internet (needs `slirp4netns` and
    /// `nftables`). Each such box gets its own network namespace and firewall.
    pub enabled: bool,
    /// Destinations such a program may still not reach (CIDR blocks); the
    /// default is every private, loopback, link-local (cloud metadata), shared
    /// and multicast range.
    pub deny: Vec<String>,
    /// Also refuse this host's own addresses (services of the host listening on
    /// all addresses would otherwise be reachable through slirp4netns).
    pub deny_host_addresses: bool,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            enabled: false,
            deny: runbox_sandbox::network::DEFAULT_DENY
                .iter()
                .map(|s| s.to_string())
                .collect(),
            deny_host_addresses: true,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file, or the environment variable.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

impl ServerConfig {
    /// The file's settings (when it exists; an explicitly named file must exist),
    /// then the environment's `RUNBOX_*` variables over them.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid {
                        origin: path.display().to_string(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let origin = file.map_or("configuration".to_string(), |p| p.display().to_string());
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin,
                message: e.to_string(),
            })
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("runbox.db").display()),
        }
    }

    /// The configuration as TOML, for `--print-config` (database password redacted).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database = Some(runbox_store::redact_url(&self.database_url()));
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// Checks what serde cannot: numbers that must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            origin: "configuration".into(),
            message: message.into(),
        };
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity must be at least 1"));
        }
        if self.rate.per_second <= 0.0 || !self.rate.per_second.is_finite() {
            return Err(invalid("rate.per_second must be a positive number"));
        }
        if self.queue.max_attempts == 0 || self.queue.lease_seconds == 0 {
            return Err(invalid(
                "queue.max_attempts and queue.lease_seconds must be at least 1",
            ));
        }
        if self.requests.max_per_page == 0 || self.requests.max_batch == 0 {
            return Err(invalid(
                "requests.max_per_page and requests.max_batch must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Sets `RUNBOX_<KEY>` and `RUNBOX_<SECTION>_<KEY>` variables into `table`, for
/// every key the configuration has. Values are read as TOML (numbers, booleans,
/// arrays) and otherwise taken as strings.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    // Every setting's name, optional ones too: JSON keeps an unset `Option` as
    // null, where TOML would leave the key out (and RUNBOX_RUN_LIMITS_OUTPUT_KB,
    // say, would then be ignored without a word).
    let defaults = match serde_json::to_value(ServerConfig::default()) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let mut known: Vec<(String, Option<String>, String)> = Vec::new();
    for (key, value) in &defaults {
        match value {
            serde_json::Value::Object(section) => {
                for field in section.keys() {
                    known.push((
                        format!("RUNBOX_{}_{}", key, field).to_uppercase(),
                        Some(key.clone()),
                        field.clone(),
                    ));
                }
            }
            _ => known.push((format!("RUNBOX_{key}").to_uppercase(), None, key.clone())),
        }
    }
    for (name, raw) in env {
        let Some((_, section, field)) = known.iter().find(|(n, _, _)| *n == name) else {
            continue;
        };
        let value = parse_env_value(&raw);
        let target = match section {
            Some(section) => table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Invalid {
                    origin: name.clone(),
                    message: format!("[{section}] must be a table"),
                })?,
            None => &mut *table,
        };
        target.insert(field.clone(), value);
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// The worker count in force: the configured one, or one per CPU plus one (while
/// a box is set up or torn down, its CPU would otherwise idle: +13% throughput of
/// Python hello worlds on 2 CPUs).
pub fn worker_count(config: &ServerConfig) -> u32 {
    config
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u32) + 1)
}

/// The host's name (from the kernel; `localhost` when unknown).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_loopback_only() {
        let config = ServerConfig::default();
        assert!(config.listen.ip().is_loopback());
        config.validate().unwrap();
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runbox.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nqueue_capacity = 10\n[rate]\nburst = 3\n",
        )
        .unwrap();
        let config = ServerConfig::load(
            Some(&file),
            env(&[
                ("RUNBOX_QUEUE_CAPACITY", "20"),
                ("RUNBOX_RATE_PER_SECOND", "2.5"),
                ("RUNBOX_DATABASE", "postgres://u:secret@db/runbox"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.queue_capacity, 20);
        assert_eq!(config.rate.burst, 3);
        assert_eq!(config.rate.per_second, 2.5);
        assert_eq!(
            config.database.as_deref(),
            Some("postgres://u:secret@db/runbox")
        );
        assert!(config.to_toml().contains("postgres://u:***@db/runbox"));
        assert!(!config.to_toml().contains("secret"));
    }

    #[test]
    fn optional_settings_are_taken_from_the_environment_too() {
        let config = ServerConfig::load(
            None,
            env(&[
                ("RUNBOX_RUN_LIMITS_OUTPUT_KB", "2048"),
                ("RUNBOX_RUN_LIMITS_WALL_TIME_MS", "7000"),
                ("RUNBOX_COMPILE_LIMITS_MEMORY_KB", "524288"),
                ("RUNBOX_WORKERS", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(config.run_limits.output_kb, Some(2048));
        assert_eq!(config.run_limits.wall_time_ms, Some(7000));
        assert_eq!(config.compile_limits.memory_kb, Some(524288));
        assert_eq!(config.workers, Some(3));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runbox.toml");
        std::fs::write(&file, "[rate]\nper_secnd = 3\n").unwrap();
        let err = ServerConfig::load(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().contains("per_secnd"), "{err}");
    }

    #[test]
    fn a_bad_environment_value_is_refused() {
        let err = ServerConfig::load(None, env(&[("RUNBOX_QUEUE_CAPACITY", "many")])).unwrap_err();
        assert!(err.to_string().contains("queue_capacity"), "{err}");
    }

    #[test]
    fn default_database_lives_in_the_data_dir() {
        let config = ServerConfig {
            data_dir: "/srv/rb".into(),
            ..ServerConfig::default()
        };
        assert_eq!(config.database_url(), "sqlite:///srv/rb/runbox.db");
    }
}
