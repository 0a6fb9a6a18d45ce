//! Piston's WebSocket, `GET /api/v2/connect`: one interactive job per connection.
//!
//! The protocol is Piston v2's. The client sends `{"type": "init", ...}` with the
//! fields of `execute` within a second of connecting. The server answers
//! `{"type": "runtime", "language", "version"}`, then `{"type": "stage", "stage"}`
//! as compile and run begin, `{"type": "data", "stream", "data"}` for each chunk of
//! output, `{"type": "exit", "stage", "code", "signal"}` as each stage ends, and
//! closes with 4999 "Job Completed". While the job runs, the client sends
//! `{"type": "data", "stream": "stdin", "data"}` for the program's stdin and
//! `{"type": "signal", "signal": "SIGINT"}`, which reaches the program's process
//! group. Errors are `{"type": "error", "message"}` then close 4002; the other
//! close codes are Piston's: 4000 Already Initialized, 4001 Initialization
//! Timeout, 4003 Not yet initialized, 4004 Can only write to stdin, 4005 Invalid
//! signal.
//!
//! Beyond Piston: `"eof": true` on a stdin message closes the program's stdin
//! (Piston never closes it, so a program that reads to the end waits for its time
//! limit); the `stdin` of `init` is written first; exit events also carry
//! `status`, `message`, `cpu_time`, `wall_time` and `memory`; a closed socket
//! kills the job at once; and the job is admitted, limited and recorded like an
//! `execute`.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::response::Response;
use runbox_sandbox::Stream;
use runbox_store::Scope;
use serde_json::{Map, Value, json};

use super::{PistonError, add_ending, parse_job};
use crate::auth::Caller;
use crate::compat::refuse_when_shutting_down;
use crate::error::ApiError;
use crate::runner::Ran;
use crate::session::{
    self, Controls, Dialect, Ending, Event, Incoming, LiveJob, Utf8Streams, close, kind, receive,
    send, stream_name,
};
use crate::state::SharedState;
use crate::wire::convert::decode_data;

/// How long a client has to send `init` (Piston's second).
const INIT_TIMEOUT: Duration = Duration::from_secs(1);

/// Piston's signal names; those Linux has no number for are refused as invalid.
const SIGNALS: &[&str] = &[
    "SIGABRT",
    "SIGALRM",
    "SIGBUS",
    "SIGCHLD",
    "SIGCLD",
    "SIGCONT",
    "SIGEMT",
    "SIGFPE",
    "SIGHUP",
    "SIGILL",
    "SIGINFO",
    "SIGINT",
    "SIGIO",
    "SIGIOT",
    "SIGKILL",
    "SIGLOST",
    "SIGPIPE",
    "SIGPOLL",
    "SIGPROF",
    "SIGPWR",
    "SIGQUIT",
    "SIGSEGV",
    "SIGSTKFLT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGSYS",
    "SIGTERM",
    "SIGTRAP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGUNUSED",
    "SIGURG",
    "SIGUSR1",
    "SIGUSR2",
    "SIGVTALRM",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGWINCH",
];

/// The Linux number of a Piston signal name.
fn signal_number(name: &str) -> Option<i32> {
    if !SIGNALS.contains(&name) {
        return None;
    }
    let canonical = match name {
        "SIGCLD" => "SIGCHLD",
        "SIGIOT" => "SIGABRT",
        "SIGPOLL" => "SIGIO",
        "SIGUNUSED" => "SIGSYS",
        other => other,
    };
    runbox_sandbox::outcome::signal_number(canonical)
}

/// `GET /api/v2/connect`: authenticates, then upgrades to the session.
pub(super) async fn connect(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, PistonError> {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    refuse_when_shutting_down(&state)?;
    let upgrade = upgrade.map_err(|rejection| {
        PistonError::bad(format!(
            "this route speaks WebSocket: {}",
            rejection.body_text()
        ))
    })?;
    let max = state.config.requests.max_body_bytes;
    Ok(upgrade
        .max_message_size(max)
        .on_upgrade(move |socket| session(state, caller, socket)))
}

/// Reports an error to the client, as Piston does: a message, then close 4002.
async fn fail(socket: &mut WebSocket, message: String) {
    send(socket, json!({"type": "error", "message": message})).await;
    close(socket, 4002, "Notified Error").await;
}

/// One connection: waits for `init`, then runs the job live in Piston's words.
async fn session(state: SharedState, caller: Caller, mut socket: WebSocket) {
    let init = tokio::time::timeout(INIT_TIMEOUT, async {
        loop {
            match receive(&mut socket).await {
                Incoming::Message(m) if kind(&m) == "init" => return Ok(m),
                Incoming::Message(m) if matches!(kind(&m), "data" | "signal") => {
                    return Err(Incoming::Message(m));
                }
                // Piston ignores messages of other types.
                Incoming::Message(_) => continue,
                other => return Err(other),
            }
        }
    })
    .await;
    let init = match init {
        Err(_) => return close(&mut socket, 4001, "Initialization Timeout").await,
        Ok(Ok(init)) => init,
        Ok(Err(Incoming::Message(_))) => {
            return close(&mut socket, 4003, "Not yet initialized").await;
        }
        Ok(Err(Incoming::Malformed(why))) => return fail(&mut socket, why).await,
        Ok(Err(Incoming::Gone)) => return,
    };
    let mut job = match parse_job(&state, &init).await {
        Ok(job) => job,
        Err(error) => return fail(&mut socket, error.message).await,
    };
    let first_stdin = match job.request.stdin.take().map(|d| decode_data(&d, "stdin")) {
        None => Vec::new(),
        Some(Ok(bytes)) => bytes,
        Some(Err(error)) => return fail(&mut socket, error.message).await,
    };
    let (checked, record) = match crate::intake::check(&state, &job.request).await {
        Ok(checked) => checked,
        Err(error) => return fail(&mut socket, error.message).await,
    };
    let runtime = json!({"type": "runtime", "language": job.language, "version": job.version});
    if !send(&mut socket, runtime).await {
        return;
    }
    let live = LiveJob {
        checked,
        record,
        first_stdin,
        tty: None,
    };
    session::relay(state, caller, socket, live, Piston::default()).await;
}

/// Piston's words for a live job.
#[derive(Default)]
struct Piston {
    text: Utf8Streams,
}

impl Dialect for Piston {
    fn event(&mut self, event: Event) -> Vec<Value> {
        match event {
            Event::Stage(stage) => vec![json!({"type": "stage", "stage": stage})],
            Event::Output(_, stream, data) => {
                let text = self.text.text(stream, data);
                if text.is_empty() {
                    return Vec::new();
                }
                vec![data_message(stream, text)]
            }
            Event::Exit(stage, outcome) => {
                // A stage's end flushes what is left of a cut character.
                let mut messages: Vec<Value> = self
                    .text
                    .flush()
                    .into_iter()
                    .map(|(stream, text)| data_message(stream, text))
                    .collect();
                messages.push(exit_event(stage, &outcome));
                messages
            }
        }
    }

    fn control(
        &mut self,
        message: &Map<String, Value>,
        controls: &mut Controls,
    ) -> Result<(), Ending> {
        match kind(message) {
            "init" => Err(Ending::Close(4000, "Already Initialized")),
            "data" => {
                if message.get("stream").and_then(Value::as_str) != Some("stdin") {
                    return Err(Ending::Close(4004, "Can only write to stdin"));
                }
                let data = message.get("data").and_then(Value::as_str).unwrap_or("");
                controls.write_stdin(data.as_bytes())?;
                if message.get("eof").and_then(Value::as_bool) == Some(true) {
                    controls.end_stdin();
                }
                Ok(())
            }
            "signal" => {
                let name = message.get("signal").and_then(Value::as_str).unwrap_or("");
                let Some(number) = signal_number(name) else {
                    return Err(Ending::Close(4005, "Invalid signal"));
                };
                controls.signal(number);
                Ok(())
            }
            // Piston ignores messages of other types.
            _ => Ok(()),
        }
    }

    async fn finish(&mut self, socket: &mut WebSocket, done: Result<Ran, ApiError>) {
        match done {
            Ok(_) => close(socket, 4999, "Job Completed").await,
            Err(error) => fail(socket, error.message).await,
        }
    }

    async fn fail(&mut self, socket: &mut WebSocket, message: String) {
        fail(socket, message).await
    }
}

/// Piston's exit event of a stage, with runbox's status and measurements.
fn exit_event(stage: &'static str, outcome: &runbox_sandbox::Outcome) -> Value {
    let mut exit = json!({"type": "exit", "stage": stage});
    add_ending(&mut exit, outcome);
    exit
}

/// Piston's message for a chunk of output.
fn data_message(stream: Stream, text: String) -> Value {
    json!({"type": "data", "stream": stream_name(stream), "data": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piston_signal_names_map_to_linux_numbers() {
        assert_eq!(signal_number("SIGINT"), Some(2));
        assert_eq!(signal_number("SIGCLD"), Some(17));
        assert_eq!(signal_number("SIGINFO"), None);
        assert_eq!(signal_number("INT"), None);
        assert_eq!(signal_number("SIGRTMIN"), None);
    }
}
