//! Who gets in: per-key rate limits, per-key concurrency caps and the bounded queue.
//!
//! Rate limits live in this process (governor) on a single node with SQLite, and in
//! the shared database with PostgreSQL, so they hold across API nodes. Concurrency
//! slots are always kept in the store: an asynchronous job keeps its slot until a
//! worker (maybe on another node) finishes it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use runbox_store::Store;

use crate::auth::Caller;
use crate::config::RateSettings;
use crate::error::ApiError;

/// How long a concurrency slot lasts if its holder never gives it back (a node
/// that died): longer than any job may run.
pub const SLOT_TTL: Duration = Duration::from_secs(15 * 60);

/// Rate limits and concurrency caps.
pub struct Admission {
    store: Arc<dyn Store>,
    defaults: RateSettings,
    shared: bool,
    local: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
}

impl Admission {
    /// Limits over `store`; `shared` keeps the rate buckets in the store too.
    pub fn new(store: Arc<dyn Store>, defaults: RateSettings, shared: bool) -> Admission {
        Admission {
            store,
            defaults,
            shared,
            local: Mutex::new(HashMap::new()),
        }
    }

    fn rate_of(&self, caller: &Caller) -> (f64, u32) {
        match caller {
            Caller::Key { key, .. } => (
                key.rate_per_second.unwrap_or(self.defaults.per_second),
                key.rate_burst.unwrap_or(self.defaults.burst),
            ),
            Caller::Anonymous { .. } => (self.defaults.per_second, self.defaults.burst),
        }
    }

    /// Counts one request against the caller's rate; 429 with `Retry-After` when over.
    pub async fn check_rate(&self, caller: &Caller) -> Result<(), ApiError> {
        let (per_second, burst) = self.rate_of(caller);
        let bucket = caller.bucket();
        let wait = if self.shared {
            self.store
                .take_token(&bucket, per_second, burst.max(1))
                .await?
        } else {
            self.local_limiter(&bucket, per_second, burst)
                .check()
                .err()
                .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
        };
        match wait {
            None => Ok(()),
            Some(wait) => Err(ApiError::rate_limited(
                format!(
                    "rate limit exceeded: at most {per_second} requests per second (burst {burst}) for this key"
                ),
                wait,
            )),
        }
    }

    fn local_limiter(
        &self,
        bucket: &str,
        per_second: f64,
        burst: u32,
    ) -> Arc<DefaultDirectRateLimiter> {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(bucket.to_string())
            .or_insert_with(|| {
                let period = Duration::from_secs_f64(1.0 / per_second.max(1e-3));
                let quota = Quota::with_period(period)
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN));
                Arc::new(RateLimiter::direct(quota))
            })
            .clone()
    }

    /// Takes a concurrency slot of the caller for `holder` (a submission id); 429
    /// when the caller already has as many jobs as its cap allows.
    pub async fn acquire_slot(&self, caller: &Caller, holder: &str) -> Result<(), ApiError> {
        let max = match caller {
            Caller::Key { key, .. } => key.max_concurrent.unwrap_or(self.defaults.max_concurrent),
            Caller::Anonymous { .. } => self.defaults.max_concurrent,
        };
        if self
            .store
            .acquire_slot(&caller.bucket(), holder, max, SLOT_TTL)
            .await?
        {
            Ok(())
        } else {
            Err(ApiError::rate_limited(
                format!("this key already has {max} jobs running or queued, its maximum"),
                Duration::from_secs(1),
            ))
        }
    }

    /// Gives the slot of `holder` back.
    pub async fn release_slot(&self, bucket: &str, holder: &str) {
        if let Err(error) = self.store.release_slot(bucket, holder).await {
            tracing::warn!(%error, bucket, holder, "cannot release a concurrency slot");
        }
    }
}

/// The bucket of a stored submission's key, for releasing its slot.
pub fn bucket_of(key_id: Option<&str>, client_addr: Option<&str>) -> String {
    match key_id {
        Some(id) => format!("key:{id}"),
        None => format!("anonymous:{}", client_addr.unwrap_or("")),
    }
}
