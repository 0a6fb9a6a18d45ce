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
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use runbox_engine::LiveEvent;
use runbox_sandbox::{Signaller, Stream};
use runbox_store::Scope;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{PistonError, add_ending, parse_job};
use crate::auth::Caller;
use crate::compat::refuse_when_shutting_down;
use crate::error::ApiError;
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

/// What the running job tells the session.
enum Event {
    Stage(&'static str),
    Output(Stream, Vec<u8>),
    Exit(Value),
}

/// What the session does with the program's stdin.
enum StdinChunk {
    Data(Vec<u8>),
    End,
}

/// A message from the client, as far as it could be read.
enum Incoming {
    Message(Map<String, Value>),
    /// Not JSON, or not an object: the text says why.
    Malformed(String),
    /// The client closed the socket, or it broke.
    Gone,
}

async fn receive(socket: &mut WebSocket) -> Incoming {
    loop {
        let text = match socket.recv().await {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Incoming::Gone,
            Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
            Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
        };
        return match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Incoming::Message(map),
            Ok(_) => Incoming::Malformed("a message must be a JSON object".into()),
            Err(error) => Incoming::Malformed(format!("the message is not JSON: {error}")),
        };
    }
}

fn kind(message: &Map<String, Value>) -> &str {
    message.get("type").and_then(Value::as_str).unwrap_or("")
}

/// How long one message may wait for a client that does not read: past it the
/// client is taken as gone (its job is cancelled), so a stalled reader holds
/// no session, box or memory for long.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `message`; false when the client is gone or stopped reading.
async fn send_message(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

async fn send(socket: &mut WebSocket, value: Value) -> bool {
    send_message(socket, Message::Text(value.to_string().into())).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    send_message(socket, Message::Close(Some(frame))).await;
}

/// Reports an error to the client, as Piston does: a message, then close 4002
/// (a close reason is limited to 123 bytes).
async fn fail(socket: &mut WebSocket, message: String) {
    send(socket, json!({"type": "error", "message": message})).await;
    close(socket, 4002, "Notified Error").await;
}

/// One connection: waits for `init`, runs the job live, relays both ways.
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
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(error) => return fail(&mut socket, format!("cannot make a stdin pipe: {error}")).await,
    };
    let stdin = match tokio::net::unix::pipe::Sender::from_owned_fd(writer.into()) {
        Ok(sender) => spawn_stdin_writer(sender),
        Err(error) => {
            return fail(&mut socket, format!("cannot use the stdin pipe: {error}")).await;
        }
    };
    let stdin_bytes = first_stdin.len();
    if !first_stdin.is_empty() {
        let _ = stdin.send(StdinChunk::Data(first_stdin));
    }

    let (events, mut heard) = mpsc::unbounded_channel::<Event>();
    let on_event = move |event: LiveEvent<'_>| {
        let event = match event {
            LiveEvent::Stage(stage) => Event::Stage(stage),
            LiveEvent::Output { stream, data, .. } => Event::Output(stream, data.to_vec()),
            LiveEvent::Exit { stage, outcome } => Event::Exit(exit_event(stage, outcome)),
        };
        // The session may have ended: then nobody listens.
        let _ = events.send(event);
    };
    let signals = Signaller::new();
    let runner = state.runner.clone();
    let job_signals = signals.clone();
    let mut running = tokio::spawn(async move {
        runner
            .execute_live(
                &caller,
                checked,
                record,
                Box::new(on_event),
                reader.into(),
                job_signals,
            )
            .await
    });

    let mut text = Utf8Streams::default();
    let mut controls = Controls {
        stdin: Some(stdin),
        stdin_bytes,
        max_stdin: state.config.requests.max_stdin_bytes,
        signals,
    };
    loop {
        tokio::select! {
            biased;
            Some(event) = heard.recv() => {
                for message in text.event(event) {
                    if !send(&mut socket, message).await {
                        controls.signals.cancel();
                        return;
                    }
                }
            }
            done = &mut running => {
                while let Ok(event) = heard.try_recv() {
                    for message in text.event(event) {
                        if !send(&mut socket, message).await {
                            return;
                        }
                    }
                }
                return match done {
                    Ok(Ok(_)) => close(&mut socket, 4999, "Job Completed").await,
                    Ok(Err(refusal)) => fail(&mut socket, crate::error::ApiError::from(refusal).message).await,
                    Err(error) => fail(&mut socket, format!("the job failed: {error}")).await,
                };
            }
            incoming = receive(&mut socket) => {
                let ending = match incoming {
                    Incoming::Message(message) => match controls.handle(&message) {
                        Ok(()) => continue,
                        Err(ending) => ending,
                    },
                    Incoming::Malformed(why) => Ending::Fail(why),
                    Incoming::Gone => Ending::Gone,
                };
                controls.signals.cancel();
                return match ending {
                    Ending::Close(code, reason) => close(&mut socket, code, reason).await,
                    Ending::Fail(why) => fail(&mut socket, why).await,
                    Ending::Gone => {}
                };
            }
        }
    }
}

/// Why a session ends before its job does.
enum Ending {
    /// With one of Piston's close codes.
    Close(u16, &'static str),
    /// With an error message, then close 4002.
    Fail(String),
    /// The client left.
    Gone,
}

/// What the client controls while its job runs: the program's stdin and signals.
struct Controls {
    /// Where stdin goes, until the client ends it.
    stdin: Option<mpsc::UnboundedSender<StdinChunk>>,
    stdin_bytes: usize,
    max_stdin: usize,
    signals: Signaller,
}

impl Controls {
    /// Acts on one message of a running session; `Err` ends the session.
    fn handle(&mut self, message: &Map<String, Value>) -> Result<(), Ending> {
        match kind(message) {
            "init" => Err(Ending::Close(4000, "Already Initialized")),
            "data" => {
                if message.get("stream").and_then(Value::as_str) != Some("stdin") {
                    return Err(Ending::Close(4004, "Can only write to stdin"));
                }
                let data = message.get("data").and_then(Value::as_str).unwrap_or("");
                self.stdin_bytes += data.len();
                if self.stdin_bytes > self.max_stdin {
                    let why = format!("stdin is limited to {} bytes", self.max_stdin);
                    return Err(Ending::Fail(why));
                }
                if let Some(pipe) = &self.stdin {
                    if !data.is_empty() {
                        let _ = pipe.send(StdinChunk::Data(data.as_bytes().to_vec()));
                    }
                    if message.get("eof").and_then(Value::as_bool) == Some(true) {
                        let _ = pipe.send(StdinChunk::End);
                        self.stdin = None;
                    }
                }
                Ok(())
            }
            "signal" => {
                let name = message.get("signal").and_then(Value::as_str).unwrap_or("");
                let Some(number) = signal_number(name) else {
                    return Err(Ending::Close(4005, "Invalid signal"));
                };
                if let Err(error) = self.signals.send(number) {
                    tracing::warn!(%error, "a signal could not be forwarded");
                }
                Ok(())
            }
            // Piston ignores messages of other types.
            _ => Ok(()),
        }
    }
}

/// Writes stdin chunks to the program's pipe in order, without holding up the
/// session when the program does not read; ends at `End`, or when the pipe breaks.
fn spawn_stdin_writer(
    mut pipe: tokio::net::unix::pipe::Sender,
) -> mpsc::UnboundedSender<StdinChunk> {
    let (chunks, mut queue) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(StdinChunk::Data(bytes)) = queue.recv().await {
            if pipe.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    chunks
}

/// Piston's exit event of a stage, with runbox's status and measurements.
fn exit_event(stage: &'static str, outcome: &runbox_sandbox::Outcome) -> Value {
    let mut exit = json!({"type": "exit", "stage": stage});
    add_ending(&mut exit, outcome);
    exit
}

/// Turns output chunks into text without breaking a character split across two
/// reads: the incomplete tail of a chunk waits for the next one of its stream.
#[derive(Default)]
struct Utf8Streams {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Utf8Streams {
    /// The messages of one event.
    fn event(&mut self, event: Event) -> Vec<Value> {
        match event {
            Event::Stage(stage) => vec![json!({"type": "stage", "stage": stage})],
            Event::Output(stream, data) => {
                let text = self.text(stream, data);
                if text.is_empty() {
                    return Vec::new();
                }
                vec![data_message(stream, text)]
            }
            Event::Exit(exit) => {
                // A stage's end flushes what is left of a cut character.
                let mut messages: Vec<Value> = [Stream::Stdout, Stream::Stderr]
                    .into_iter()
                    .filter_map(|stream| {
                        let rest = std::mem::take(self.pending(stream));
                        (!rest.is_empty())
                            .then(|| data_message(stream, String::from_utf8_lossy(&rest).into()))
                    })
                    .collect();
                messages.push(exit);
                messages
            }
        }
    }

    fn pending(&mut self, stream: Stream) -> &mut Vec<u8> {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// The text of `data` after what was pending of its stream, keeping back a
    /// character cut at the end.
    fn text(&mut self, stream: Stream, data: Vec<u8>) -> String {
        let pending = self.pending(stream);
        pending.extend_from_slice(&data);
        let valid = match std::str::from_utf8(pending) {
            Ok(_) => pending.len(),
            // An error without a length is a sequence cut at the end: keep it.
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => pending.len(),
        };
        let rest = pending.split_off(valid);
        let text = String::from_utf8_lossy(pending).into_owned();
        *pending = rest;
        text
    }
}

/// Piston's message for a chunk of output.
fn data_message(stream: Stream, text: String) -> Value {
    let name = match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    json!({"type": "data", "stream": name, "data": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_reads_arrives_whole() {
        let mut streams = Utf8Streams::default();
        let snowman = "☃".as_bytes();
        assert_eq!(streams.text(Stream::Stdout, snowman[..1].to_vec()), "");
        assert_eq!(streams.text(Stream::Stderr, b"e".to_vec()), "e");
        assert_eq!(streams.text(Stream::Stdout, snowman[1..].to_vec()), "☃");
        assert_eq!(streams.text(Stream::Stdout, b"\xffa".to_vec()), "\u{fffd}a");
    }

    #[test]
    fn piston_signal_names_map_to_linux_numbers() {
        assert_eq!(signal_number("SIGINT"), Some(2));
        assert_eq!(signal_number("SIGCLD"), Some(17));
        assert_eq!(signal_number("SIGINFO"), None);
        assert_eq!(signal_number("INT"), None);
        assert_eq!(signal_number("SIGRTMIN"), None);
    }
}
