//! Readiness: whether this node can run boxes and reach its database.
//!
//! A box check costs a box, so it is never run per request: the answer of the
//! last check is kept for [`READY_TTL`], and while one check runs, every other
//! caller waits for its answer instead of starting another box.

use std::sync::Arc;
use std::time::{Duration, Instant};

use runbox_engine::Engine;
use runbox_sandbox::{BoxConfig, Status};
use tokio::sync::Mutex;

/// How long one box check answers for.
pub const READY_TTL: Duration = Duration::from_secs(5);

/// Runs a trivial box: the readiness check of the sandbox.
pub fn sandbox_check(engine: &Engine) -> Result<(), String> {
    let outcome = engine
        .sandbox()
        .run(&BoxConfig::new(["/usr/bin/true"]))
        .map_err(|e| e.to_string())?;
    if outcome.status == Status::Ok {
        Ok(())
    } else {
        Err(format!("a test box ended with {}", outcome.status))
    }
}

/// The sandbox's readiness, checked at most once per [`READY_TTL`].
pub struct SandboxReadiness {
    engine: Arc<Engine>,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl SandboxReadiness {
    /// Readiness of `engine`'s sandbox.
    pub fn new(engine: Arc<Engine>) -> SandboxReadiness {
        SandboxReadiness {
            engine,
            last: Mutex::new(None),
        }
    }

    /// The last answer if recent, else a new check (one at a time).
    pub async fn check(&self) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last
            && at.elapsed() < READY_TTL
        {
            return answer.clone();
        }
        let engine = self.engine.clone();
        metrics::counter!("runbox_readiness_box_checks_total").increment(1);
        let answer = match tokio::task::spawn_blocking(move || sandbox_check(&engine)).await {
            Ok(answer) => answer,
            Err(error) => Err(error.to_string()),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}
