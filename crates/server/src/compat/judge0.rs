//! Judge0 CE's API (1.13.1) over the runner: submissions (single, batched, with
//! `wait`, `fields` and `base64_encoded`), languages with Judge0's ids, statuses,
//! configuration, workers and the authentication routes.
//!
//! A Judge0 submission is a native submission: the request is translated
//! ([`translate`]) and queued on the same runner, and what Judge0 needs to answer
//! later (its fields, limits and `expected_output`) is kept in the request's
//! `adapter` data. The Judge0 view (status ids 1 to 14, times in seconds as
//! strings, memory in KB) is computed from the stored result when it is read
//! ([`view`]).
//!
//! Memory Limit Exceeded: Judge0 has no status for it, and clients parse status ids
//! into a closed set of 14 (the official Python SDK fails on any other). runbox
//! reports it as 12 "Runtime Error (Other)" with the message "Memory limit
//! exceeded", and as `{"id": 15, "description": "Memory Limit Exceeded"}` in the
//! extra field `extended_status`, sent only when `fields` names it.
//!
//! Expected output: until the engine's judging is used here, the comparison is
//! Judge0's own ([`expected_output_matches`]: trailing white space of each line and
//! trailing blank lines are ignored); it is the one place to switch to the engine's
//! checker.

pub mod languages;
mod request;
mod routes;
mod view;

pub use languages::{Judge0Language, LANGUAGES};
pub use request::{Stored, translate};
pub use routes::routes;
pub use view::{STATUSES, expected_output_matches, view};

/// Renders the callback of a Judge0 submission as Judge0 does: a PUT of the
/// submission in Judge0's terms (encoded as the request was). Other submissions
/// are left to the native callback.
pub fn callback_renderer(
    config: std::sync::Arc<crate::config::ServerConfig>,
    engine: std::sync::Arc<runbox_engine::Engine>,
) -> crate::history::CallbackRenderer {
    Box::new(move |submission| {
        let stored = Stored::from_adapter(
            submission
                .request
                .as_ref()
                .and_then(|request| request.get("adapter")),
        )?;
        let judge0_config = request::Judge0Config::new(&config);
        let name_of = |id: u32| match languages::by_id(id) {
            Some(language) => {
                let version = engine
                    .catalog()
                    .get(language.runbox)
                    .ok()
                    .and_then(|l| engine.installation(l).version().map(str::to_string));
                language.display_name(version.as_deref())
            }
            None => view::plain_name(id),
        };
        let json = view(
            submission,
            &view::Selection::Default,
            stored.base64_encoded,
            &judge0_config,
            &name_of,
        )
        .ok()?;
        Some(crate::webhook::Payload {
            method: reqwest::Method::PUT,
            json,
        })
    })
}
