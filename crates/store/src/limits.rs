//! The arithmetic of the shared limits, the same on both backends.
//!
//! A token bucket holds at most `burst` tokens and gains `per_second` of them each
//! second; a request takes one. The row keeps `tokens` as of `updated_ms`, so the
//! tokens now are `min(burst, tokens + elapsed * per_second)`. The databases do this
//! in one `INSERT ... ON CONFLICT DO UPDATE ... WHERE refilled >= 1 RETURNING`: a row
//! comes back when a token was taken; when none comes back the row is left as it
//! was (which loses nothing: the refill is a function of the stored values and the
//! time), and the store reads it to say how long to wait.

use std::time::Duration;

/// The longest wait [`retry_after`] gives: a bucket that never refills (a rate of
/// zero) would otherwise say "forever", which no `Retry-After` header can carry and
/// `Instant + Duration` cannot add.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The refill rate as the SQL uses it: a negative or NaN rate refills nothing.
pub(crate) fn rate(per_second: f64) -> f64 {
    if per_second.is_finite() && per_second > 0.0 {
        per_second
    } else if per_second == f64::INFINITY {
        f64::MAX
    } else {
        0.0
    }
}

/// The capacity as the SQL uses it: a bucket holds at least one token, else it
/// could never grant anything.
pub(crate) fn capacity(burst: u32) -> f64 {
    f64::from(burst.max(1))
}

/// How long until a bucket that held `tokens` at `updated_ms` has one token, at
/// `now_ms`.
pub(crate) fn retry_after(tokens: f64, updated_ms: i64, now_ms: i64, per_second: f64) -> Duration {
    let per_second = rate(per_second);
    let elapsed_s = (now_ms.saturating_sub(updated_ms)).max(0) as f64 / 1000.0;
    let now_tokens = tokens + elapsed_s * per_second;
    let missing = (1.0 - now_tokens).max(0.0);
    if missing == 0.0 {
        // Refilled meanwhile: the caller may try again at once, but a zero wait
        // would read as "not limited"; a millisecond says "limited, retry now".
        return Duration::from_millis(1);
    }
    if per_second == 0.0 {
        return LONGEST_WAIT;
    }
    Duration::try_from_secs_f64(missing / per_second).map_or(LONGEST_WAIT, |wait| {
        wait.clamp(Duration::from_millis(1), LONGEST_WAIT)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_bucket_waits_for_one_token_at_the_rate() {
        assert_eq!(
            retry_after(0.0, 1000, 1000, 2.0),
            Duration::from_millis(500)
        );
        assert_eq!(
            retry_after(0.5, 1000, 1000, 2.0),
            Duration::from_millis(250)
        );
        assert_eq!(
            retry_after(0.0, 1000, 1250, 2.0),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn a_bucket_that_never_refills_waits_the_longest_wait() {
        assert_eq!(retry_after(0.0, 0, 0, 0.0), LONGEST_WAIT);
        assert_eq!(retry_after(0.0, 0, 0, f64::NAN), LONGEST_WAIT);
        assert_eq!(retry_after(0.0, 0, 0, -3.0), LONGEST_WAIT);
    }

    #[test]
    fn a_bucket_that_refilled_meanwhile_says_retry_now() {
        assert_eq!(retry_after(0.0, 0, 10_000, 1.0), Duration::from_millis(1));
    }
}
