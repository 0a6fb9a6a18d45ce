//! What a run produced: the stage result of DESIGN.md.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::live::{OutputChunk, Stream};

/// How far above its memory limit a program's own peak may be reported before
/// it is judged `memory_limit_exceeded`: the kernel charges memory to a box in
/// per-CPU batches of 64 pages (256 KiB on x86_64), so a peak read from the
/// cgroup may include up to one unused batch per CPU, plus the page tables
/// and kernel stacks of the program's processes. A memory-limit verdict
/// reports at most the limit plus this slack.
pub const MEMORY_SLACK_BYTES: u64 = 1 << 20;

/// [`MEMORY_SLACK_BYTES`] in KiB, the unit of [`Outcome::memory_kb`].
pub const MEMORY_SLACK_KB: u64 = MEMORY_SLACK_BYTES / 1024;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The program exited with code 0.
    Ok,
    /// The program exited with another code, or was killed by a signal.
    RuntimeError,
    /// CPU time or wall time ran out.
    TimeLimitExceeded,
    /// The box ran out of memory and the kernel killed a process.
    MemoryLimitExceeded,
    /// stdout or stderr went past the output limit, or a file past the file size limit.
    OutputLimitExceeded,
    /// Something went wrong on runbox's side.
    InternalError,
}

impl Status {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::RuntimeError => "runtime_error",
            Status::TimeLimitExceeded => "time_limit_exceeded",
            Status::MemoryLimitExceeded => "memory_limit_exceeded",
            Status::OutputLimitExceeded => "output_limit_exceeded",
            Status::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which limit ended a run, when one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitHit {
    /// CPU time of the whole box.
    CpuTime,
    /// Wall-clock time.
    WallTime,
    /// Memory of the whole box.
    Memory,
    /// stdout or stderr size.
    Output,
    /// RLIMIT_FSIZE: a file grew past the file size limit.
    FileSize,
}

/// The measured result of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// How the run ended.
    pub status: Status,
    /// The exit code, when the program exited.
    pub exit_code: Option<i32>,
    /// The signal name (`SIGSEGV`), when the program was killed by one.
    pub signal: Option<String>,
    /// What the program wrote on stdout, up to the output limit.
    #[serde(serialize_with = "lossy_utf8")]
    pub stdout: Vec<u8>,
    /// What the program wrote on stderr, up to the output limit.
    #[serde(serialize_with = "lossy_utf8")]
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// CPU time (user + system) of every process of the box.
    #[serde(rename = "cpu_time_ms", serialize_with = "millis")]
    pub cpu_time: Duration,
    /// Wall-clock time from the program's start to the end of the box.
    #[serde(rename = "wall_time_ms", serialize_with = "millis")]
    pub wall_time: Duration,
    /// Peak memory of the whole box, in KiB.
    pub memory_kb: u64,
    /// The limit that ended the run, if any.
    pub limit_hit: Option<LimitHit>,
    /// In which order stdout's and stderr's bytes were read (empty when unknown,
    /// as for a result kept by a cache).
    #[serde(skip)]
    pub chunks: Vec<OutputChunk>,
}

impl Outcome {
    /// stdout and stderr interleaved in the order they were read, as a terminal
    /// would have shown them. Without a recorded order: stdout, then stderr.
    pub fn interleaved(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.stdout.len() + self.stderr.len());
        let (mut at_out, mut at_err) = (0, 0);
        for chunk in &self.chunks {
            let (data, at) = match chunk.stream {
                Stream::Stdout => (&self.stdout, &mut at_out),
                Stream::Stderr => (&self.stderr, &mut at_err),
            };
            let end = (*at + chunk.len).min(data.len());
            out.extend_from_slice(&data[*at..end]);
            *at = end;
        }
        // Whatever the chunks do not cover (none, when they are complete).
        out.extend_from_slice(&self.stdout[at_out..]);
        out.extend_from_slice(&self.stderr[at_err..]);
        out
    }

    /// The exit code a shell would report: the exit code, or 128 + signal number.
    pub fn shell_exit_code(&self) -> i32 {
        match (self.exit_code, &self.signal) {
            (Some(code), _) => code,
            (None, Some(name)) => 128 + signal_number(name).unwrap_or(0),
            (None, None) => 1,
        }
    }
}

fn lossy_utf8<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    // Three decimals: microsecond resolution is all the kernel's accounting gives.
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// Signal names by number, as `kill -l` prints them on x86_64 Linux.
const SIGNALS: &[(i32, &str)] = &[
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

/// The name of signal `number` (`SIGRTMIN+3` for real-time ones).
pub fn signal_name(number: i32) -> String {
    if let Some((_, name)) = SIGNALS.iter().find(|(n, _)| *n == number) {
        return (*name).to_string();
    }
    let rtmin = libc::SIGRTMIN();
    if number >= rtmin && number <= libc::SIGRTMAX() {
        return format!("SIGRTMIN+{}", number - rtmin);
    }
    format!("SIG{number}")
}

/// The number of the signal called `name` (with or without the `SIG` prefix).
pub fn signal_number(name: &str) -> Option<i32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS
        .iter()
        .find(|(_, n)| &n[3..] == name)
        .map(|(number, _)| *number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_round_trip() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_number("SIGSEGV"), Some(libc::SIGSEGV));
        assert_eq!(signal_number("KILL"), Some(9));
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
    }

    #[test]
    fn stage_json_has_the_contract_fields() {
        let outcome = Outcome {
            status: Status::RuntimeError,
            exit_code: None,
            signal: Some("SIGABRT".into()),
            stdout: b"hi\xff".to_vec(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            cpu_time: Duration::from_micros(1234),
            wall_time: Duration::from_micros(2500),
            memory_kb: 1024,
            limit_hit: None,
            chunks: Vec::new(),
        };
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["status"], "runtime_error");
        assert_eq!(json["signal"], "SIGABRT");
        assert_eq!(json["stdout"], "hi\u{fffd}");
        assert_eq!(json["cpu_time_ms"], 1.234);
        assert_eq!(json["wall_time_ms"], 2.5);
        assert_eq!(json["memory_kb"], 1024);
        assert_eq!(outcome.shell_exit_code(), 134);
    }

    #[test]
    fn interleaved_output_follows_the_chunks_then_appends_the_rest() {
        let chunk = |stream, len| OutputChunk { stream, len };
        let mut outcome = Outcome {
            status: Status::Ok,
            exit_code: Some(0),
            signal: None,
            stdout: b"ab".to_vec(),
            stderr: b"XYZ".to_vec(),
            stdout_truncated: false,
            stderr_truncated: false,
            cpu_time: Duration::ZERO,
            wall_time: Duration::ZERO,
            memory_kb: 0,
            limit_hit: None,
            chunks: vec![
                chunk(Stream::Stderr, 1),
                chunk(Stream::Stdout, 1),
                chunk(Stream::Stderr, 1),
            ],
        };
        assert_eq!(outcome.interleaved(), b"XaYbZ");
        outcome.chunks.clear();
        assert_eq!(outcome.interleaved(), b"abXYZ");
    }
}
