//! runbox's own session protocol, `GET /api/v1/sessions` (WebSocket): one
//! interactive run per connection, on pipes or on a terminal (`tty`).
//!
//! The full reference, with examples, is docs/sessions.md; in short:
//!
//! Client to server (JSON text messages):
//! - `{"type": "start", "tty": false, "rows": 24, "cols": 80, ...}` first, within
//!   [`START_TIMEOUT`]: the other fields are those of `POST /api/v1/execute`
//!   (`language`, `version`, `source` or `files`, `args`, `stdin`, `limits`, ...;
//!   no `tests`). With `tty: true` the program runs on a terminal of `rows` ×
//!   `cols` (24 × 80 by default): stdout is what the terminal shows (stderr
//!   merged, input echoed), and Ctrl-C (`\u0003` as stdin) interrupts it.
//! - `{"type": "stdin", "data": "text"}`; `{"type": "stdin", "eof": true}` ends
//!   stdin (on a terminal: types Ctrl-D).
//! - `{"type": "resize", "rows": 40, "cols": 120}` (TTY mode).
//! - `{"type": "signal", "signal": "SIGINT"}`: to the program's process group.
//!
//! Server to client:
//! - `{"type": "started", "language", "tty"}` once the job is checked;
//! - `{"type": "stage", "stage": "compile" | "run"}` as each stage begins;
//! - `{"type": "output", "stage", "stream": "stdout" | "stderr", "data"}`;
//! - `{"type": "exit", "stage", "status", "exit_code", "signal", "cpu_time_ms",
//!   "wall_time_ms", "memory_kb", "limit_hit"}` as each stage ends;
//! - `{"type": "result", "result": {...}}`: the result as `/execute` answers it,
//!   then close 1000;
//! - `{"type": "error", "code", "message", "field"}`, then close `4000 + the HTTP
//!   status` the same error gets from `/execute` (4400, 4413, 4429, 4500, 4503),
//!   or 4408 when no start came in time.
//!
//! Authentication happens on the upgrade request (a refused key gets its HTTP
//! error, no socket); browsers, which cannot set headers on a WebSocket, offer
//! the key as the subprotocol `runbox.key.<key>` beside `runbox.v1`.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::response::Response;
use runbox_sandbox::TerminalSize;
use runbox_store::Scope;
use serde_json::{Map, Value, json};

use super::{
    Controls, Dialect, Ending, Event, Incoming, LiveJob, Utf8Streams, close, kind, receive, send,
    stream_name,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::history::body_of;
use crate::runner::{Ran, ResultFormat};
use crate::state::{SharedState, refuse_when_shutting_down};
use crate::wire::convert::{OutputFormat, decode_data, stage_body};
use crate::wire::types::{Encoding, ExecuteRequest};

/// How long a client has to send `start` after connecting.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The subprotocol runbox answers when a client offers it.
pub const SUBPROTOCOL: &str = "runbox.v1";

/// Close code of a session whose job ended (its result was sent).
pub const CLOSE_DONE: u16 = 1000;
/// Close code when no `start` came within [`START_TIMEOUT`].
pub const CLOSE_START_TIMEOUT: u16 = 4408;
/// Close code of a second `start`.
pub const CLOSE_ALREADY_STARTED: u16 = 4409;

/// The largest terminal a client may ask for.
const MAX_TERMINAL_CELLS: u16 = 1000;

/// `GET /api/v1/sessions`: authenticates, then upgrades to a session.
#[utoipa::path(get, path = "/api/v1/sessions",
    description = "Upgrades to a WebSocket session: one interactive run, on pipes or a terminal. \
Client messages: start (the fields of /execute without tests, plus tty, rows, cols), \
stdin {data | eof}, resize {rows, cols}, signal {signal}. Server messages: started, stage, \
output {stage, stream, data}, exit {stage, status, exit_code, signal, cpu_time_ms, wall_time_ms, \
memory_kb, limit_hit}, result {result}, error {code, message, field}. Close codes: 1000 done, \
4000 + the HTTP status of an error (4400, 4413, 4429, 4500, 4503), 4408 no start within 10 s, \
4409 a second start. Browsers pass an API key as the subprotocol runbox.key.<key>. \
See docs/sessions.md.",
    responses((status = 101, description = "Switching to the WebSocket session"),
              (status = 400, body = crate::wire::types::ErrorBody),
              (status = 401, body = crate::wire::types::ErrorBody),
              (status = 503, body = crate::wire::types::ErrorBody)),
    security(("bearer" = [])), tag = "runs")]
pub async fn sessions(
    State(state): State<SharedState>,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Execute)?;
    refuse_when_shutting_down(&state)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(
            "websocket_required",
            format!("this route speaks WebSocket: {}", rejection.body_text()),
        )
    })?;
    let max = state.config.requests.max_body_bytes;
    Ok(upgrade
        .protocols([SUBPROTOCOL])
        .max_message_size(max)
        .on_upgrade(move |socket| session(state, caller, socket)))
}

/// Tells the client about an error, then closes with 4000 + its HTTP status.
async fn fail(socket: &mut WebSocket, error: &ApiError) {
    let message = json!({
        "type": "error",
        "code": error.code,
        "message": error.message,
        "field": error.field,
    });
    send(socket, message).await;
    close(socket, 4000 + error.status.as_u16(), error.code).await;
}

/// One connection: waits for `start`, checks the job, then relays.
async fn session(state: SharedState, caller: Caller, mut socket: WebSocket) {
    let start = tokio::time::timeout(START_TIMEOUT, async {
        match receive(&mut socket).await {
            Incoming::Message(m) if kind(&m) == "start" => Ok(m),
            Incoming::Message(m) => {
                let why = format!("the first message must be a start, not {:?}", kind(&m));
                Err(Some(ApiError::invalid("type", why)))
            }
            Incoming::Malformed(why) => Err(Some(ApiError::bad_request("malformed_message", why))),
            Incoming::Gone => Err(None),
        }
    })
    .await;
    let start = match start {
        Err(_) => {
            let why = format!("no start message within {} s", START_TIMEOUT.as_secs());
            send(
                &mut socket,
                json!({"type": "error", "code": "start_timeout", "message": why}),
            )
            .await;
            return close(&mut socket, CLOSE_START_TIMEOUT, "start_timeout").await;
        }
        Ok(Ok(start)) => start,
        Ok(Err(Some(error))) => return fail(&mut socket, &error).await,
        Ok(Err(None)) => return,
    };
    let (job, started, format) = match checked_start(&state, start).await {
        Ok(checked) => checked,
        Err(error) => return fail(&mut socket, &error).await,
    };
    if !send(&mut socket, started).await {
        return;
    }
    let dialect = Native {
        text: Utf8Streams::default(),
        format,
        language: job.checked.job().language.clone(),
    };
    super::relay(state, caller, socket, job, dialect).await;
}

/// Turns a start message into a checked live job, its `started` message and
/// the format of its result.
async fn checked_start(
    state: &SharedState,
    mut start: Map<String, Value>,
) -> Result<(LiveJob, Value, ResultFormat), ApiError> {
    start.remove("type");
    let tty = match start.remove("tty") {
        None | Some(Value::Bool(false)) | Some(Value::Null) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(ApiError::invalid("tty", "tty is true or false")),
    };
    let rows = cells(start.remove("rows"), "rows", 24)?;
    let cols = cells(start.remove("cols"), "cols", 80)?;
    let mut request: ExecuteRequest = serde_json::from_value(Value::Object(start))
        .map_err(|error| ApiError::invalid("start", format!("a bad start message: {error}")))?;
    if request.tests.is_some() || request.interactor.is_some() {
        return Err(ApiError::invalid(
            "tests",
            "a session runs the program once: judge tests with POST /api/v1/execute",
        ));
    }
    if request.callback_url.is_some() {
        return Err(ApiError::invalid(
            "callback_url",
            "a session answers on its socket, not by callback",
        ));
    }
    let first_stdin = match request.stdin.take() {
        None => Vec::new(),
        Some(data) => decode_data(&data, "stdin")?,
    };
    let (checked, record) = crate::intake::check(state, &request).await?;
    let format = record.format;
    let started = json!({
        "type": "started",
        "language": checked.job().language,
        "tty": tty,
    });
    let job = LiveJob {
        checked,
        record,
        first_stdin,
        tty: tty.then_some(TerminalSize { rows, cols }),
    };
    Ok((job, started, format))
}

/// A terminal dimension of a message: 1 to [`MAX_TERMINAL_CELLS`].
fn cells(value: Option<Value>, field: &str, default: u16) -> Result<u16, ApiError> {
    let Some(value) = value else {
        return Ok(default);
    };
    value
        .as_u64()
        .filter(|n| (1..=u64::from(MAX_TERMINAL_CELLS)).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} is a whole number from 1 to {MAX_TERMINAL_CELLS}"),
            )
        })
}

/// runbox's words for a live job.
struct Native {
    text: Utf8Streams,
    format: ResultFormat,
    language: String,
}

fn output(stage: &str, stream: runbox_sandbox::Stream, text: String) -> Value {
    json!({"type": "output", "stage": stage, "stream": stream_name(stream), "data": text})
}

impl Dialect for Native {
    fn event(&mut self, event: Event) -> Vec<Value> {
        match event {
            Event::Stage(stage) => vec![json!({"type": "stage", "stage": stage})],
            Event::Output(stage, stream, data) => {
                let text = self.text.text(stream, data);
                if text.is_empty() {
                    return Vec::new();
                }
                vec![output(stage, stream, text)]
            }
            Event::Exit(stage, outcome) => {
                let mut messages: Vec<Value> = self
                    .text
                    .flush()
                    .into_iter()
                    .map(|(stream, text)| output(stage, stream, text))
                    .collect();
                // The output went out as it was read: the figures are what is new.
                let format = OutputFormat {
                    encoding: Encoding::default(),
                    combined: false,
                };
                let body = stage_body(&outcome, format);
                messages.push(json!({
                    "type": "exit",
                    "stage": stage,
                    "status": body.status,
                    "exit_code": body.exit_code,
                    "signal": body.signal,
                    "cpu_time_ms": body.cpu_time_ms,
                    "wall_time_ms": body.wall_time_ms,
                    "memory_kb": body.memory_kb,
                    "limit_hit": body.limit_hit,
                }));
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
            "start" => Err(Ending::Close(CLOSE_ALREADY_STARTED, "already_started")),
            "stdin" => {
                match message.get("data") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(data)) => controls.write_stdin(data.as_bytes())?,
                    Some(_) => return Err(Ending::Fail("stdin data is a string".into())),
                }
                if message.get("eof").and_then(Value::as_bool) == Some(true) {
                    controls.end_stdin();
                }
                Ok(())
            }
            "resize" => {
                let size = cells(message.get("rows").cloned(), "rows", 0)
                    .and_then(|rows| Ok((rows, cells(message.get("cols").cloned(), "cols", 0)?)));
                match size {
                    Ok((rows, cols)) if rows > 0 && cols > 0 => {
                        if !controls.resize(TerminalSize { rows, cols }) {
                            return Err(Ending::Fail(
                                "resize is for sessions started with tty: true".into(),
                            ));
                        }
                        Ok(())
                    }
                    Ok(_) => Err(Ending::Fail("resize needs rows and cols".into())),
                    Err(error) => Err(Ending::Fail(error.message)),
                }
            }
            "signal" => {
                let name = message.get("signal").and_then(Value::as_str).unwrap_or("");
                let number = runbox_sandbox::outcome::signal_number(name)
                    .filter(|n| (1..=31).contains(n))
                    .ok_or_else(|| {
                        Ending::Fail(format!("{name:?} is not a signal name like \"SIGINT\""))
                    })?;
                controls.signal(number);
                Ok(())
            }
            other => Err(Ending::Fail(format!(
                "unknown message type {other:?}: stdin, resize or signal"
            ))),
        }
    }

    async fn finish(&mut self, socket: &mut WebSocket, done: Result<Ran, ApiError>) {
        match done {
            Ok(ran) => {
                let body = body_of(&ran.id, &ran.result, self.format, &self.language);
                if send(socket, json!({"type": "result", "result": body})).await {
                    close(socket, CLOSE_DONE, "done").await;
                }
            }
            Err(error) => fail(socket, &error).await,
        }
    }

    async fn fail(&mut self, socket: &mut WebSocket, message: String) {
        fail(socket, &ApiError::bad_request("bad_message", message)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_dimensions_are_bounded() {
        assert_eq!(cells(None, "rows", 24).unwrap(), 24);
        assert_eq!(cells(Some(json!(40)), "rows", 24).unwrap(), 40);
        assert!(cells(Some(json!(0)), "rows", 24).is_err());
        assert!(cells(Some(json!(70000)), "cols", 80).is_err());
        assert!(cells(Some(json!("wide")), "cols", 80).is_err());
    }
}
