//! Live jobs: a program someone talks to while it runs (an online IDE's console,
//! Piston's WebSocket). Stages are announced as they begin and end, output is
//! passed on as it is read, stdin comes from a pipe the caller writes, and
//! signals reach whichever stage's program runs now.

use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::Instant;

use runbox_sandbox::{Outcome, Signaller, Stream, Terminal, TerminalSize};

/// What a live job reports while it runs, in order.
#[derive(Debug)]
pub enum LiveEvent<'a> {
    /// A stage begins: `compile` or `run`.
    Stage(&'static str),
    /// A chunk of the current stage's output (never split across events by the
    /// engine, but a multi-byte character may be split across chunks).
    Output {
        /// The stage writing it.
        stage: &'static str,
        /// stdout or stderr.
        stream: Stream,
        /// The bytes, as read.
        data: &'a [u8],
        /// The stage's wall deadline. A caller may take its time with the
        /// event (its own reader is slow): the program is held back meanwhile,
        /// its output waiting in the pipe. It must return by this instant, when
        /// the stage is due to be killed.
        deadline: Instant,
    },
    /// The stage ended. A compile taken from the cache reports its stored output
    /// and outcome at once.
    Exit {
        /// The stage.
        stage: &'static str,
        /// How it ended.
        outcome: &'a Outcome,
    },
}

/// The caller's side of a live job: see [`crate::Engine::run_live`].
pub struct Live<'a> {
    /// Called with every event, from the thread running the job.
    pub events: &'a (dyn Fn(LiveEvent<'_>) + Sync),
    /// The read end of the pipe the run stage's program gets as stdin (the
    /// compiler gets none); without it, the program reads the job's `stdin`.
    pub stdin: Mutex<Option<OwnedFd>>,
    /// Reaches the program of the stage that runs now; cancelling it stops the job.
    pub signals: Signaller,
    /// TTY mode: the run stage's program runs on a terminal of this size (its
    /// stdout is what the terminal shows, stdin is typed into it), which the
    /// handle resizes. The compile stage never runs on a terminal.
    pub terminal: Option<(TerminalSize, Terminal)>,
}

impl Live<'_> {
    /// Takes the stdin pipe, once.
    pub(crate) fn take_stdin(&self) -> Option<OwnedFd> {
        self.stdin
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}
