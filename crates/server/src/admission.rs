//! Who gets in: per-key rate limits, per-key concurrency caps and the bounded queue.
//!
//! Rate limits live in this process (governor) on a single node with SQLite, and in
//! the shared database with PostgreSQL, so they hold across API nodes. Concurrency
//! slots are always kept in the store: an asynchronous job keeps its slot until a
//! worker (maybe on another node) finishes it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use runbox_store::Store;

use crate::auth::Caller;
use crate::config::RateSettings;

/// Why admission refused a caller.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionRefusal {
    /// Over the caller's request rate.
    #[error(
        "rate limit exceeded: at most {per_second} requests per second (burst {burst}) for this key"
    )]
    RateLimited {
        /// The rate.
        per_second: f64,
        /// The burst.
        burst: u32,
        /// When the next request would be admitted.
        retry_after: Duration,
    },
    /// The caller already has as many jobs as its cap allows.
    #[error("this key already has {max} jobs running or queued, its maximum")]
    TooManyJobs {
        /// The cap.
        max: u32,
    },
    /// The client's address made too many refused requests just now.
    #[error("too many refused requests from this address: try again shortly")]
    TooManyRefusals {
        /// When the address is heard again.
        retry_after: Duration,
    },
    /// The store that keeps shared limits failed.
    #[error(transparent)]
    Store(#[from] runbox_store::Error),
}

/// How long a concurrency slot lasts if its holder never gives it back (a node
/// that died): longer than any job may run.
pub const SLOT_TTL: Duration = Duration::from_secs(15 * 60);

/// Rate limits and concurrency caps.
pub struct Admission {
    store: Arc<dyn Store>,
    defaults: RateSettings,
    shared: bool,
    local: Mutex<HashMap<String, LocalBucket>>,
    /// Client addresses refused too often, and until when they are refused
    /// before their key is even looked at.
    blocked: Mutex<HashMap<String, Instant>>,
}

/// Refused requests an address may make per second before it is refused
/// without a look at its key (a wrong key costs a database lookup and a log line).
pub const REFUSALS_PER_SECOND: f64 = 10.0;
/// How many refused requests in a burst an address may make.
pub const REFUSAL_BURST: u32 = 50;

/// A bucket of this process, with what is needed to forget it once idle.
struct LocalBucket {
    limiter: Arc<DefaultDirectRateLimiter>,
    last_used: Instant,
    /// How long an unused bucket takes to fill up again: after that it is the
    /// same as a new one, so forgetting it changes nothing.
    refill: Duration,
}

/// Above this many buckets, the full ones are forgotten (many anonymous client
/// addresses must not grow the map without end).
const MAX_IDLE_BUCKETS: usize = 1024;

impl Admission {
    /// Limits over `store`; `shared` keeps the rate buckets in the store too.
    pub fn new(store: Arc<dyn Store>, defaults: RateSettings, shared: bool) -> Admission {
        Admission {
            store,
            defaults,
            shared,
            local: Mutex::new(HashMap::new()),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses an address that was refused too often just now (429), before any
    /// authentication: what it costs is one map lookup.
    pub fn check_address(&self, addr: &str) -> Result<(), AdmissionRefusal> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(addr) {
            Some(until) if *until > Instant::now() => Err(AdmissionRefusal::TooManyRefusals {
                retry_after: until.saturating_duration_since(Instant::now()),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a refused request of `addr`; past [`REFUSALS_PER_SECOND`] (burst
    /// [`REFUSAL_BURST`]), the address is refused unheard until its bucket refills.
    pub fn count_refusal(&self, addr: &str) {
        let limiter = self.local_limiter(
            &format!("refused:{addr}"),
            REFUSALS_PER_SECOND,
            REFUSAL_BURST,
        );
        if let Err(not_until) = limiter.check() {
            let wait = not_until
                .wait_time_from(DefaultClock::default().now())
                .max(Duration::from_secs(1));
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if blocked.len() >= MAX_IDLE_BUCKETS {
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(addr.to_string(), now + wait);
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
    pub async fn check_rate(&self, caller: &Caller) -> Result<(), AdmissionRefusal> {
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
            Some(wait) => Err(AdmissionRefusal::RateLimited {
                per_second,
                burst,
                retry_after: wait,
            }),
        }
    }

    fn local_limiter(
        &self,
        bucket: &str,
        per_second: f64,
        burst: u32,
    ) -> Arc<DefaultDirectRateLimiter> {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= MAX_IDLE_BUCKETS && !map.contains_key(bucket) {
            map.retain(|_, b| now.duration_since(b.last_used) < b.refill);
        }
        let entry = map.entry(bucket.to_string()).or_insert_with(|| {
            let period = Duration::from_secs_f64(1.0 / per_second.max(1e-3));
            let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst);
            LocalBucket {
                limiter: Arc::new(RateLimiter::direct(quota)),
                last_used: now,
                refill: period.saturating_mul(burst.get()),
            }
        });
        entry.last_used = now;
        entry.limiter.clone()
    }

    /// How many rate buckets this process keeps.
    #[cfg(test)]
    fn local_buckets(&self) -> usize {
        self.local.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Takes a concurrency slot of the caller for `holder` (a submission id); 429
    /// when the caller already has as many jobs as its cap allows.
    pub async fn acquire_slot(
        &self,
        caller: &Caller,
        holder: &str,
    ) -> Result<(), AdmissionRefusal> {
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
            Err(AdmissionRefusal::TooManyJobs { max })
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn admission(per_second: f64, burst: u32) -> Admission {
        let store = runbox_store::open("sqlite::memory:").await.unwrap();
        let defaults = RateSettings {
            per_second,
            burst,
            ..RateSettings::default()
        };
        Admission::new(store, defaults, false)
    }

    #[tokio::test]
    async fn idle_buckets_are_forgotten_once_there_are_many() {
        // 1000 per second with a burst of 1: a bucket is full again after 1 ms.
        let admission = admission(1000.0, 1).await;
        for i in 0..MAX_IDLE_BUCKETS + 500 {
            admission.local_limiter(&format!("anonymous:10.0.{i}"), 1000.0, 1);
            if i % 256 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(
            admission.local_buckets() <= MAX_IDLE_BUCKETS,
            "{} buckets kept",
            admission.local_buckets()
        );
    }

    #[tokio::test]
    async fn a_bucket_still_filling_is_kept_with_its_state() {
        // One request per hour: a bucket that was used stays empty for an hour.
        let admission = admission(1.0 / 3600.0, 1).await;
        let busy = admission.local_limiter("key:busy", 1.0 / 3600.0, 1);
        assert!(busy.check().is_ok());
        for i in 0..MAX_IDLE_BUCKETS + 10 {
            admission.local_limiter(&format!("anonymous:{i}"), 1.0 / 3600.0, 1);
        }
        let again = admission.local_limiter("key:busy", 1.0 / 3600.0, 1);
        assert!(again.check().is_err(), "the spent bucket was forgotten");
    }
}
