//! Watching a running box: its output, its report, its clock and its CPU time.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::error::{Error, Result};
use crate::init::{REPORT_LEN, Report};
use crate::live::{OutputChunk, OutputSink, Stream};
use crate::outcome::LimitHit;
use crate::run::Meter;
use crate::sys;
use crate::teardown::Child;

/// Collected output of one stream, kept up to a cap.
pub(crate) struct Capture {
    fd: Option<OwnedFd>,
    pub data: Vec<u8>,
    cap: usize,
    pub truncated: bool,
}

impl Capture {
    /// Captures the read end `fd`, keeping at most `cap` bytes.
    fn new(fd: OwnedFd, cap: u64) -> Result<Capture> {
        sys::set_nonblocking(&fd)?;
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        Ok(Capture {
            fd: Some(fd),
            data: Vec::new(),
            cap,
            truncated: false,
        })
    }

    /// Reads once (at most one pipe's worth) and keeps what fits under the cap;
    /// closes the stream at end of file. Returns how many bytes were kept, or
    /// `None` when nothing more is to be had now (the pipe is empty or closed,
    /// or the cap is reached).
    fn read_once(&mut self) -> Option<usize> {
        let fd = self.fd.as_ref()?;
        if self.truncated {
            return None;
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a local buffer of the given length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let n = n as usize;
                let room = self.cap.saturating_sub(self.data.len());
                self.data.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    self.truncated = true;
                }
                return Some(n.min(room));
            } else if n == 0 {
                self.fd = None;
                return None;
            } else {
                match sys::errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => return None,
                    _ => {
                        self.fd = None;
                        return None;
                    }
                }
            }
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

/// Where output goes as it is read: kept in the captures, noted in order, and
/// handed to the live caller if there is one.
///
/// Each read is handed over before the next is made: a live caller that waits
/// (its reader is slow) stops the reading, so the pipe fills and the program
/// blocks on its own writes. Reading on until the pipe is empty first would
/// let a fast writer pile up output up to the output limit in one go.
struct Output<'o> {
    stdout: Capture,
    stderr: Capture,
    chunks: Vec<OutputChunk>,
    live: Option<OutputSink<'o>>,
    /// The box's wall deadline, passed to the live caller.
    deadline: Instant,
}

impl Output<'_> {
    /// Reads `stream` once and passes on what was kept; false when there was
    /// nothing to read.
    fn read(&mut self, stream: Stream) -> bool {
        let capture = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let Some(kept) = capture.read_once() else {
            return false;
        };
        if kept == 0 {
            return true;
        }
        let new = &capture.data[capture.data.len() - kept..];
        match self.chunks.last_mut() {
            Some(last) if last.stream == stream => last.len += new.len(),
            _ => self.chunks.push(OutputChunk {
                stream,
                len: new.len(),
            }),
        }
        if let Some(live) = self.live.as_mut() {
            live(stream, new, self.deadline);
        }
        true
    }

    /// Reads `stream` until it has nothing more now.
    fn drain(&mut self, stream: Stream) {
        while self.read(stream) {}
    }

    fn truncated(&self) -> bool {
        self.stdout.truncated || self.stderr.truncated
    }
}

/// The read ends of a box's output pipes, and who else wants the output live.
pub(crate) struct OutputPipes<'o> {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub live: Option<OutputSink<'o>>,
}

/// What watching a box produced.
pub(crate) struct Watched {
    pub stdout: Capture,
    pub stderr: Capture,
    /// The order in which the two streams' bytes were read.
    pub chunks: Vec<OutputChunk>,
    /// The init's last word, if it said one.
    pub report: Option<Report>,
    /// The limit the supervisor killed the box for.
    pub killed_for: Option<LimitHit>,
    pub wall_time: Duration,
}

/// Watches `child` from `start` until it reports the program's end, dies, or is
/// killed at a limit. The box may still be tearing down when this returns.
pub(crate) fn watch(
    child: &Child,
    cgroup: Option<&Meter<'_>>,
    report_fd: &OwnedFd,
    pipes: OutputPipes<'_>,
    start: Instant,
    limits: &Limits,
) -> Result<Watched> {
    let (cpu_limit, wall_limit) = (limits.cpu_time, limits.wall_time);
    let mut output = Output {
        stdout: Capture::new(pipes.stdout, limits.output_bytes)?,
        stderr: Capture::new(pipes.stderr, limits.output_bytes)?,
        chunks: Vec::new(),
        live: pipes.live,
        deadline: start + wall_limit,
    };
    let deadline = output.deadline;
    let mut report = ReportReader::default();
    let mut killed_for = None;
    let cpus = sys::online_cpus().max(1);
    let end = loop {
        let now = Instant::now();
        let cpu_left = match cgroup {
            Some(cg) => Some(cpu_limit.saturating_sub(cg.cpu_time()?)),
            None => None,
        };
        if now >= deadline {
            killed_for = Some(LimitHit::WallTime);
        } else if cpu_left == Some(Duration::ZERO) {
            killed_for = Some(LimitHit::CpuTime);
        }
        if killed_for.is_some() {
            break now;
        }
        let timeout = poll_timeout(now, deadline, cpu_left, cpus);
        let mut polls = [
            poll_fd(child.pidfd()),
            poll_fd(report_fd.as_raw_fd()),
            poll_fd(output.stdout.raw_fd()),
            poll_fd(output.stderr.raw_fd()),
        ];
        // SAFETY: `polls` is a valid array of pollfd of the given length.
        let rc = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout) };
        if rc < 0 && sys::errno() != libc::EINTR {
            return Err(Error::last_os("poll"));
        }
        let now = Instant::now();
        // One read per stream and wake-up, so the limits are checked between
        // reads however fast the program writes.
        if polls[2].revents != 0 {
            output.read(Stream::Stdout);
        }
        if polls[3].revents != 0 {
            output.read(Stream::Stderr);
        }
        if output.truncated() {
            killed_for = Some(LimitHit::Output);
            break now;
        }
        if polls[1].revents != 0 && report.read(report_fd).is_some() {
            break now;
        }
        if polls[0].revents != 0 {
            // The init died without a report (it was killed): take what it left.
            report.read(report_fd);
            break now;
        }
    };
    if killed_for.is_some() {
        child.kill();
        // Drained once the box is dead: a program that writes as fast as `yes`
        // would otherwise keep the drain going for as long as the kill takes.
        // The init's pidfd turns readable only after the kernel has killed
        // and waited for every other process of its PID namespace.
        wait_readable(child.pidfd(), DEATH_WAIT);
    }
    // The program has ended: everything it wrote is in the pipes now.
    output.drain(Stream::Stdout);
    output.drain(Stream::Stderr);
    if killed_for.is_none() && output.truncated() {
        killed_for = Some(LimitHit::Output);
    }
    Ok(Watched {
        stdout: output.stdout,
        stderr: output.stderr,
        chunks: output.chunks,
        report: report.report,
        killed_for,
        wall_time: end - start,
    })
}

/// How long poll may sleep: until the wall deadline, or sooner when the CPU time
/// left could run out with all `cpus` of the box burning.
fn poll_timeout(
    now: Instant,
    deadline: Instant,
    cpu_left: Option<Duration>,
    cpus: u32,
) -> libc::c_int {
    let mut wait = deadline.saturating_duration_since(now);
    if let Some(left) = cpu_left {
        wait = wait.min((left / cpus).clamp(Duration::from_millis(1), Duration::from_millis(100)));
    }
    // Round up: waking a little late is fine, spinning on a 0 ms timeout is not.
    (wait.as_micros().div_ceil(1000)).clamp(1, 1000) as libc::c_int
}

/// How long a killed box may take to die before its pipes are drained anyway
/// (a process in uninterruptible sleep dies only when its I/O ends).
const DEATH_WAIT: Duration = Duration::from_secs(1);

/// Waits until `fd` is readable or `limit` has passed.
fn wait_readable(fd: RawFd, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut poll = [poll_fd(fd)];
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(poll.as_mut_ptr(), 1, left.as_millis() as libc::c_int) };
        if rc >= 0 || sys::errno() != libc::EINTR || left.is_zero() {
            return;
        }
    }
}

fn poll_fd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Assembles the init's fixed-size report from the pipe.
#[derive(Default)]
struct ReportReader {
    buf: Vec<u8>,
    report: Option<Report>,
}

impl ReportReader {
    /// Reads what is available; returns the report once complete.
    fn read(&mut self, fd: &OwnedFd) -> Option<Report> {
        let mut chunk = [0u8; REPORT_LEN];
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if n > 0 {
            self.buf.extend_from_slice(&chunk[..n as usize]);
        }
        if self.report.is_none()
            && let Some(raw) = self.buf.first_chunk::<REPORT_LEN>()
        {
            self.report = Report::decode(raw);
        }
        self.report
    }
}
