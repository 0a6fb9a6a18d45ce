//! Limits as layers: engine defaults, then a language's overrides, then the user's.

use std::time::Duration;

use runbox_sandbox::Limits;
use serde::Deserialize;

use crate::units::{parse_duration, parse_size};

/// Some limits of a stage; each one set replaces the layer below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// CPU time of the whole box.
    pub cpu_time: Option<Duration>,
    /// Wall-clock time.
    pub wall_time: Option<Duration>,
    /// Memory of the whole box, in bytes.
    pub memory_bytes: Option<u64>,
    /// Processes plus threads.
    pub processes: Option<u64>,
    /// Bytes kept of stdout and of stderr, each.
    pub output_bytes: Option<u64>,
    /// Largest file the program may write.
    pub file_size_bytes: Option<u64>,
    /// Open files per process.
    pub open_files: Option<u64>,
    /// Main thread stack.
    pub stack_bytes: Option<u64>,
    /// Size of /tmp.
    pub tmp_bytes: Option<u64>,
    /// Size of the work directory /box (the compile stage's writable volume).
    pub box_bytes: Option<u64>,
    /// Size of /dev/shm.
    pub shm_bytes: Option<u64>,
}

impl LimitOverrides {
    /// `base` with every limit set here replaced.
    pub fn apply(&self, base: &Limits) -> Limits {
        Limits {
            cpu_time: self.cpu_time.unwrap_or(base.cpu_time),
            wall_time: self.wall_time.unwrap_or(base.wall_time),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            processes: self.processes.unwrap_or(base.processes),
            output_bytes: self.output_bytes.unwrap_or(base.output_bytes),
            file_size_bytes: self.file_size_bytes.unwrap_or(base.file_size_bytes),
            open_files: self.open_files.unwrap_or(base.open_files),
            stack_bytes: self.stack_bytes.or(base.stack_bytes),
            tmp_bytes: self.tmp_bytes.unwrap_or(base.tmp_bytes),
            box_bytes: self.box_bytes.unwrap_or(base.box_bytes),
            shm_bytes: self.shm_bytes.unwrap_or(base.shm_bytes),
        }
    }
}

/// The form of a limit table in a language file: sizes and times as text.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitTable {
    cpu_time: Option<String>,
    wall_time: Option<String>,
    memory: Option<String>,
    processes: Option<u64>,
    output: Option<String>,
    file_size: Option<String>,
    open_files: Option<u64>,
    stack: Option<String>,
    tmp: Option<String>,
    #[serde(rename = "box")]
    box_size: Option<String>,
    shm: Option<String>,
}

impl LimitTable {
    /// Parses the units; the error names the key.
    pub(crate) fn parse(&self) -> Result<LimitOverrides, String> {
        let time = |key: &str, v: &Option<String>| {
            v.as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| format!("{key}: {e}"))
        };
        let size = |key: &str, v: &Option<String>| {
            v.as_deref()
                .map(parse_size)
                .transpose()
                .map_err(|e| format!("{key}: {e}"))
        };
        Ok(LimitOverrides {
            cpu_time: time("cpu_time", &self.cpu_time)?,
            wall_time: time("wall_time", &self.wall_time)?,
            memory_bytes: size("memory", &self.memory)?,
            processes: self.processes,
            output_bytes: size("output", &self.output)?,
            file_size_bytes: size("file_size", &self.file_size)?,
            open_files: self.open_files,
            stack_bytes: size("stack", &self.stack)?,
            tmp_bytes: size("tmp", &self.tmp)?,
            box_bytes: size("box", &self.box_size)?,
            shm_bytes: size("shm", &self.shm)?,
        })
    }
}

/// The engine's defaults for a compile stage: generous, because kotlinc and scalac
/// need seconds of CPU and hundreds of MB for a tiny program.
pub fn default_compile_limits() -> Limits {
    Limits {
        cpu_time: Duration::from_secs(15),
        wall_time: Duration::from_secs(30),
        memory_bytes: 1 << 30,
        processes: 128,
        output_bytes: 256 << 10,
        file_size_bytes: 128 << 20,
        open_files: 1024,
        stack_bytes: Some(64 << 20),
        tmp_bytes: 256 << 20,
        box_bytes: 256 << 20,
        shm_bytes: 16 << 20,
    }
}

/// The engine's defaults for a custom checker: more time and memory than a
/// solution (it may be a JVM program reading large outputs).
pub fn default_checker_limits() -> Limits {
    Limits {
        cpu_time: Duration::from_secs(5),
        wall_time: Duration::from_secs(10),
        memory_bytes: 512 << 20,
        output_bytes: 64 << 10,
        ..Limits::default()
    }
}

/// The engine's defaults for a run stage: the sandbox's (2 s CPU, 256 MiB).
pub fn default_run_limits() -> Limits {
    Limits::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = Limits::default();
        let top = LimitOverrides {
            memory_bytes: Some(1 << 30),
            ..LimitOverrides::default()
        };
        let merged = top.apply(&base);
        assert_eq!(merged.memory_bytes, 1 << 30);
        assert_eq!(merged.cpu_time, base.cpu_time);
    }

    #[test]
    fn limit_table_parses_units_and_names_a_bad_key() {
        let table: LimitTable = toml::from_str("cpu_time = \"10s\"\nmemory = \"1G\"").unwrap();
        let parsed = table.parse().unwrap();
        assert_eq!(parsed.cpu_time, Some(Duration::from_secs(10)));
        assert_eq!(parsed.memory_bytes, Some(1 << 30));
        let bad: LimitTable = toml::from_str("memory = \"lots\"").unwrap();
        assert!(bad.parse().unwrap_err().starts_with("memory:"));
    }

    #[test]
    fn limit_table_refuses_unknown_keys() {
        assert!(toml::from_str::<LimitTable>("memroy = \"1G\"").is_err());
    }
}
