//! Interactive sessions over WebSocket: one live job per connection, its output
//! relayed as it is read, the client's stdin, signals and window sizes relayed
//! to it.
//!
//! Two protocols speak through this module: runbox's own ([`native`], `GET
//! /api/v1/sessions`) and Piston's (`crate::compat::piston`, `GET
//! /api/v2/connect`). Each is a [`Dialect`]: how a client's message becomes a
//! control of the job, and how the job's events become messages. Everything
//! else is shared here: starting the job through the runner (admission, per-key
//! limits, the queue and the history apply as for `/execute`), the relay loop,
//! the socket's timeouts, and bounds on memory.
//!
//! Memory stays bounded whatever the client does: the box's watcher hands over
//! one read of a pipe (at most 64 KiB) at a time, output waits in a channel of
//! [`EVENT_BACKLOG`] chunks, and when it is full the watcher waits too, so the
//! program blocks on its own writes (backpressure, not buffering) — but not past
//! its wall limit, which still ends it. A client that reads nothing for
//! [`SEND_TIMEOUT`] is taken as gone. A client that goes away cancels its job:
//! the box is killed at once.

pub mod native;

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use runbox_engine::LiveEvent;
use runbox_sandbox::{Outcome, Signaller, Stream, Terminal, TerminalSize};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::runner::{LiveChannels, Ran, Record};
use crate::state::SharedState;

/// How many events (chunks of output, at most 64 KiB each) wait for a slow
/// client before the program is held up.
pub const EVENT_BACKLOG: usize = 16;

/// How long one message may wait for a client that does not read: past it the
/// client is taken as gone (its job is cancelled), so a stalled reader holds
/// no session, box or memory for long.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What the running job tells the session.
pub enum Event {
    /// A stage begins: `compile` or `run`.
    Stage(&'static str),
    /// A chunk of the current stage's output.
    Output(&'static str, Stream, Vec<u8>),
    /// A stage ended.
    Exit(&'static str, Box<Outcome>),
}

/// A message from the client, as far as it could be read.
pub enum Incoming {
    /// A JSON object.
    Message(Map<String, Value>),
    /// Not JSON, or not an object: the text says why.
    Malformed(String),
    /// The client closed the socket, or it broke.
    Gone,
}

/// Reads the next message; pings and pongs are skipped.
pub async fn receive(socket: &mut WebSocket) -> Incoming {
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

/// A message's `type`.
pub fn kind(message: &Map<String, Value>) -> &str {
    message.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Sends `message`; false when the client is gone or stopped reading.
async fn send_message(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Sends a JSON message; false when the client is gone or stopped reading.
pub async fn send(socket: &mut WebSocket, value: Value) -> bool {
    send_message(socket, Message::Text(value.to_string().into())).await
}

/// Closes the socket with `code` and `reason` (at most 123 bytes).
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    send_message(socket, Message::Close(Some(frame))).await;
}

/// What the session does with the program's stdin.
enum StdinChunk {
    Data(Vec<u8>),
    End,
}

/// Why a session ends before its job does.
pub enum Ending {
    /// With a close code and reason.
    Close(u16, &'static str),
    /// With an error message (the dialect's error message and close code).
    Fail(String),
    /// The client left.
    Gone,
}

/// What a client controls while its job runs: the program's stdin, signals and
/// (in TTY mode) the terminal's size.
pub struct Controls {
    /// Where stdin goes, until the client ends it.
    stdin: Option<mpsc::UnboundedSender<StdinChunk>>,
    stdin_bytes: usize,
    max_stdin: usize,
    signals: Signaller,
    terminal: Option<Terminal>,
}

impl Controls {
    /// Passes `data` to the program's stdin; an error past the stdin limit
    /// (which also bounds what waits for a program that does not read).
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<(), Ending> {
        self.stdin_bytes += data.len();
        if self.stdin_bytes > self.max_stdin {
            let why = format!("stdin is limited to {} bytes", self.max_stdin);
            return Err(Ending::Fail(why));
        }
        if let Some(pipe) = &self.stdin
            && !data.is_empty()
        {
            let _ = pipe.send(StdinChunk::Data(data.to_vec()));
        }
        Ok(())
    }

    /// Closes the program's stdin (in TTY mode, types Ctrl-D).
    pub fn end_stdin(&mut self) {
        if let Some(pipe) = self.stdin.take() {
            let _ = pipe.send(StdinChunk::End);
        }
    }

    /// Sends `signal` to the program's process group.
    pub fn signal(&self, signal: i32) {
        if let Err(error) = self.signals.send(signal) {
            tracing::warn!(%error, "a signal could not be forwarded");
        }
    }

    /// Resizes the program's terminal; false when the session has none.
    pub fn resize(&self, size: TerminalSize) -> bool {
        let Some(terminal) = &self.terminal else {
            return false;
        };
        if let Err(error) = terminal.resize(size) {
            tracing::warn!(%error, "a terminal could not be resized");
        }
        true
    }
}

/// How a protocol speaks: its messages for the job's events, and what a
/// client's message does.
pub trait Dialect {
    /// The messages that tell the client about `event`.
    fn event(&mut self, event: Event) -> Vec<Value>;
    /// Acts on one message of a running session; `Err` ends the session.
    fn control(
        &mut self,
        message: &Map<String, Value>,
        controls: &mut Controls,
    ) -> Result<(), Ending>;
    /// Tells the client how the job ended and closes the socket.
    fn finish(
        &mut self,
        socket: &mut WebSocket,
        done: Result<Ran, ApiError>,
    ) -> impl Future<Output = ()> + Send;
    /// Tells the client about an error and closes the socket.
    fn fail(&mut self, socket: &mut WebSocket, message: String) -> impl Future<Output = ()> + Send;
    /// Closes the socket with `code` for an ending the dialect does not word.
    fn close(
        &mut self,
        socket: &mut WebSocket,
        code: u16,
        reason: &'static str,
    ) -> impl Future<Output = ()> + Send {
        close(socket, code, reason)
    }
}

/// A checked job ready to run live.
pub struct LiveJob {
    /// The job.
    pub checked: runbox_engine::CheckedJob,
    /// Its record (history).
    pub record: Record,
    /// Written to the program's stdin first.
    pub first_stdin: Vec<u8>,
    /// TTY mode: the terminal's first size.
    pub tty: Option<TerminalSize>,
}

/// Runs `job` live for `caller` and relays between it and `socket` in
/// `dialect`'s words until the job ends or the client goes.
pub async fn relay<D: Dialect + Send>(
    state: SharedState,
    caller: Caller,
    mut socket: WebSocket,
    job: LiveJob,
    mut dialect: D,
) {
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(error) => {
            let why = format!("cannot make a stdin pipe: {error}");
            return dialect.fail(&mut socket, why).await;
        }
    };
    let stdin = match tokio::net::unix::pipe::Sender::from_owned_fd(writer.into()) {
        Ok(sender) => spawn_stdin_writer(sender),
        Err(error) => {
            let why = format!("cannot use the stdin pipe: {error}");
            return dialect.fail(&mut socket, why).await;
        }
    };
    let stdin_bytes = job.first_stdin.len();
    if !job.first_stdin.is_empty() {
        let _ = stdin.send(StdinChunk::Data(job.first_stdin));
    }

    let (events, mut heard) = mpsc::channel::<Event>(EVENT_BACKLOG);
    let runtime = tokio::runtime::Handle::current();
    let on_event = move |event: LiveEvent<'_>| {
        let (event, deadline) = match event {
            LiveEvent::Stage(stage) => (Event::Stage(stage), None),
            LiveEvent::Output {
                stage,
                stream,
                data,
                deadline,
            } => (Event::Output(stage, stream, data.to_vec()), Some(deadline)),
            LiveEvent::Exit { stage, outcome } => {
                (Event::Exit(stage, Box::new(outcome.clone())), None)
            }
        };
        // Runs on the job's thread (never a runtime worker): waiting here holds
        // the box's output back while the client is slow, but an output chunk
        // waits no later than the stage's wall deadline, when the box is due
        // to be killed (the chunk is dropped then; the result keeps it). The
        // session may have ended: then nobody listens.
        match deadline {
            Some(deadline) => {
                let sent = tokio::time::timeout_at(deadline.into(), events.send(event));
                let _ = runtime.block_on(sent);
            }
            None => {
                let _ = events.blocking_send(event);
            }
        }
    };
    let signals = Signaller::new();
    let terminal = job.tty.map(|size| (size, Terminal::new()));
    let channels = LiveChannels {
        events: Box::new(on_event),
        stdin: reader.into(),
        signals: signals.clone(),
        terminal: terminal.clone(),
    };
    let runner = state.runner.clone();
    let (checked, record) = (job.checked, job.record);
    let mut running: JoinHandle<_> = tokio::spawn(async move {
        runner
            .execute_live(&caller, checked, record, channels)
            .await
    });

    let mut controls = Controls {
        stdin: Some(stdin),
        stdin_bytes,
        max_stdin: state.config.requests.max_stdin_bytes,
        signals,
        terminal: terminal.map(|(_, handle)| handle),
    };
    loop {
        tokio::select! {
            biased;
            Some(event) = heard.recv() => {
                for message in dialect.event(event) {
                    if !send(&mut socket, message).await {
                        controls.signals.cancel();
                        return;
                    }
                }
            }
            done = &mut running => {
                while let Ok(event) = heard.try_recv() {
                    for message in dialect.event(event) {
                        if !send(&mut socket, message).await {
                            return;
                        }
                    }
                }
                let done = match done {
                    Ok(Ok(ran)) => Ok(ran),
                    Ok(Err(refusal)) => Err(ApiError::from(refusal)),
                    Err(error) => Err(ApiError::internal(format!("the job failed: {error}"))),
                };
                return dialect.finish(&mut socket, done).await;
            }
            incoming = receive(&mut socket) => {
                let ending = match incoming {
                    Incoming::Message(message) => match dialect.control(&message, &mut controls) {
                        Ok(()) => continue,
                        Err(ending) => ending,
                    },
                    Incoming::Malformed(why) => Ending::Fail(why),
                    Incoming::Gone => Ending::Gone,
                };
                controls.signals.cancel();
                return match ending {
                    Ending::Close(code, reason) => dialect.close(&mut socket, code, reason).await,
                    Ending::Fail(why) => dialect.fail(&mut socket, why).await,
                    Ending::Gone => {}
                };
            }
        }
    }
}

/// Writes stdin chunks to the program's pipe in order, without holding up the
/// session when the program does not read (what waits is bounded by the stdin
/// limit); ends at `End`, or when the pipe breaks.
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

/// Turns output chunks into text without breaking a character split across two
/// reads: the incomplete tail of a chunk waits for the next one of its stream.
#[derive(Default)]
pub struct Utf8Streams {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Utf8Streams {
    fn pending(&mut self, stream: Stream) -> &mut Vec<u8> {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// The text of `data` after what was pending of its stream, keeping back a
    /// character cut at the end.
    pub fn text(&mut self, stream: Stream, data: Vec<u8>) -> String {
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

    /// What is left of cut characters at a stage's end, per stream.
    pub fn flush(&mut self) -> Vec<(Stream, String)> {
        [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .filter_map(|stream| {
                let rest = std::mem::take(self.pending(stream));
                (!rest.is_empty()).then(|| (stream, String::from_utf8_lossy(&rest).into()))
            })
            .collect()
    }
}

/// A stream's name in messages.
pub fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
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
    fn a_cut_character_is_flushed_at_the_end() {
        let mut streams = Utf8Streams::default();
        assert_eq!(streams.text(Stream::Stdout, vec![0xe2]), "");
        assert_eq!(
            streams.flush(),
            vec![(Stream::Stdout, "\u{fffd}".to_string())]
        );
    }
}
