//! The wire: the native API's JSON documents and the only conversions between
//! them and the engine's types.
//!
//! A leaf of the server: it imports no route, no runner and no state. Requests
//! become engine [`Job`](runbox_engine::Job)s here (bytes decoded, sizes and
//! maxima checked), and the engine's [`RunResult`](runbox_engine::RunResult)
//! becomes the result contract of DESIGN.md here, for the native API, the CLI's
//! `--json` and the history alike.

pub mod convert;
pub mod types;
