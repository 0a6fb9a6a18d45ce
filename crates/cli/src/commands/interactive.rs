//! `runbox run` talking to the program as it runs: runbox's stdin is the
//! program's, its output is printed as it is read.
//!
//! When runbox's stdin is a terminal the program runs on a terminal of its box's
//! own (TTY mode) of the same size, and runbox's terminal is put in raw mode
//! while it runs: every key goes to the box's terminal as typed, so its line
//! discipline echoes, edits lines and turns Ctrl-C into SIGINT for the program.
//! A resized window resizes the box's terminal. From a pipe, the program reads
//! the pipe as it is written, and Ctrl-C (SIGINT to runbox) is passed on to it.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use anyhow::Context;
use runbox_engine::{CheckedJob, Engine, Live, LiveEvent, RunResult};
use runbox_sandbox::{Signaller, Stream, Terminal, TerminalSize};
use rustix::termios::{self, OptionalActions, Termios};

/// Runs `job` live on runbox's stdin and stdout; `on_terminal` when stdin is
/// a terminal.
pub fn run(engine: &Engine, job: &CheckedJob, on_terminal: bool) -> anyhow::Result<RunResult> {
    let (reader, writer) = std::io::pipe().context("cannot make the program's stdin pipe")?;
    let size = on_terminal.then(terminal_size);
    let terminal = Terminal::new();
    let signals = Signaller::new();
    let raw = Mutex::new(None::<RawMode>);
    let events = |event: LiveEvent<'_>| match event {
        // The terminal goes raw once the program (not its compiler) starts.
        LiveEvent::Stage("run") if on_terminal => {
            let mut raw = raw.lock().unwrap_or_else(|p| p.into_inner());
            *raw = RawMode::enter().ok();
        }
        LiveEvent::Output {
            stage: "run",
            stream: Stream::Stdout,
            data,
            ..
        } => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(data).and_then(|()| out.flush());
        }
        // The compiler's messages, and the program's stderr.
        LiveEvent::Output { data, .. } => {
            let _ = std::io::stderr().lock().write_all(data);
        }
        _ => {}
    };
    std::thread::Builder::new()
        .name("runbox-stdin".into())
        .spawn(move || copy_stdin(writer))
        .context("cannot start the stdin thread")?;
    let relay = SignalRelay::start(signals.clone(), on_terminal.then(|| terminal.clone()))?;
    let live = Live {
        events: &events,
        stdin: Mutex::new(Some(OwnedFd::from(reader))),
        signals,
        terminal: size.map(|size| (size, terminal)),
    };
    let result = engine.run_live(job, &live);
    drop(relay);
    // Leaves raw mode before anything else is printed.
    drop(raw.lock().unwrap_or_else(|p| p.into_inner()).take());
    Ok(result?)
}

/// Copies runbox's stdin into the program's pipe until either ends (dropping
/// the pipe is the end of the program's input).
fn copy_stdin(mut pipe: std::io::PipeWriter) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if pipe.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// The size of runbox's terminal (24 × 80 when it cannot be read).
fn terminal_size() -> TerminalSize {
    for fd in [
        rustix::stdio::stdout(),
        rustix::stdio::stdin(),
        rustix::stdio::stderr(),
    ] {
        if let Ok(size) = termios::tcgetwinsize(fd)
            && size.ws_row > 0
            && size.ws_col > 0
        {
            return TerminalSize {
                rows: size.ws_row,
                cols: size.ws_col,
            };
        }
    }
    TerminalSize::default()
}

/// runbox's terminal in raw mode, restored when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> rustix::io::Result<RawMode> {
        let stdin = rustix::stdio::stdin();
        let saved = termios::tcgetattr(stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin, OptionalActions::Now, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = rustix::stdio::stdin();
        let _ = termios::tcsetattr(stdin, OptionalActions::Now, &self.saved);
    }
}

/// Passes signals runbox gets on to the program while it runs: SIGINT, SIGTERM
/// and SIGHUP to its process group, and a window resize (SIGWINCH) to the box's
/// terminal.
struct SignalRelay {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SignalRelay {
    fn start(signals: Signaller, terminal: Option<Terminal>) -> anyhow::Result<SignalRelay> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("cannot start the signal relay")?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        // The handlers are installed now, before the program starts.
        let (mut interrupt, mut terminate, mut hangup, mut resized) = runtime.block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
                signal(SignalKind::window_change())?,
            ))
        })?;
        let thread = std::thread::Builder::new()
            .name("runbox-signals".into())
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        let forwarded = tokio::select! {
                            _ = &mut stopped => return,
                            _ = interrupt.recv() => libc::SIGINT,
                            _ = terminate.recv() => libc::SIGTERM,
                            _ = hangup.recv() => libc::SIGHUP,
                            _ = resized.recv() => {
                                if let Some(terminal) = &terminal {
                                    let _ = terminal.resize(terminal_size());
                                }
                                continue;
                            }
                        };
                        let _ = signals.send(forwarded);
                    }
                });
            })
            .context("cannot start the signal relay")?;
        Ok(SignalRelay {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for SignalRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
