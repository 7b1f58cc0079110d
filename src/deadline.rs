//! The time one invocation may spend, and every bound taken from it, in one place.
//!
//! Lambda gives each invocation a deadline (`Lambda-Runtime-Deadline-Ms`, the function's
//! `Timeout` after it started). A request works to that deadline less [`ANSWER_MARGIN`],
//! the time kept to encode the answer, write the log line and hand the answer back; every
//! store call, retry, resend, fence and read-back is bounded by what is left of it, so the
//! function always answers before Lambda stops it. Where there is no invocation (the local
//! server, the tests), the budget is [`FUNCTION_TIMEOUT`], as if invoked now.
//!
//! The figures, for the HTTP function (`template.yaml`'s `Timeout`, held by a test):
//!
//! | bound | value | why |
//! |---|---|---|
//! | function timeout | 10 s | [`FUNCTION_TIMEOUT`] |
//! | answer margin | 0.5 s | [`ANSWER_MARGIN`]: the request's deadline is 9.5 s after it started |
//! | connect | 1 s | [`CONNECT_TIMEOUT`]: DynamoDB answers a TCP/TLS handshake in milliseconds |
//! | one call attempt | 2 s | [`ATTEMPT_TIMEOUT`]: DynamoDB's own p99 is in the tens of ms |
//! | one call, its SDK retries included | 5 s | [`OPERATION_TIMEOUT`] |
//! | kept for resolving an unknown write | 2 s | [`RESOLVE_RESERVE`]: a fence and a read, 1 s each |
//!
//! So the read before the commit may take at most 9.5 − 2 (one transaction attempt) − 2
//! (the reserve) = 5.5 s, and is bounded at 5 s; a transaction attempt is only sent while
//! an attempt and the reserve still fit; what is still unknown at the deadline is answered
//! 504 `STORE-unknown` (SPEC section 6a). The rotation function's timeout is 30 s: the same
//! bounds, with more room for Secrets Manager's calls around the write.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `template.yaml`'s `Timeout` of the HTTP function.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Kept from the invocation's deadline to answer.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// One call of the resolution of an unknown outcome (a fence, a read-back).
pub const RESOLVE_CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// What a transaction attempt must leave for the resolution, should its outcome be unknown.
pub const RESOLVE_RESERVE: Duration = Duration::from_secs(2);
/// A call is not started with less than this left: it could not finish.
pub const MIN_CALL: Duration = Duration::from_millis(50);

/// The instant a request must have its answer by, less nothing: the margin is already off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// A request's deadline when there is no invocation: the function timeout less the margin.
    pub fn for_request() -> Self {
        Self::after(FUNCTION_TIMEOUT - ANSWER_MARGIN)
    }

    /// From Lambda's deadline, milliseconds since the Unix epoch, less [`ANSWER_MARGIN`].
    pub fn from_lambda(deadline_ms: u64) -> Self {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Self::after(left.saturating_sub(ANSWER_MARGIN))
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// The time a call may take now, at most `limit`, keeping `reserve` for what must come
    /// after it; `None` when less than [`MIN_CALL`] would be left for the call.
    pub fn budget(&self, limit: Duration, reserve: Duration) -> Option<Duration> {
        Some(self.remaining().saturating_sub(reserve).min(limit)).filter(|left| *left >= MIN_CALL)
    }

    pub fn passed(&self) -> bool {
        self.remaining() < MIN_CALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_keeps_the_reserve_and_is_none_when_nothing_fits() {
        let deadline = Deadline::after(Duration::from_secs(3));
        let budget = deadline.budget(ATTEMPT_TIMEOUT, RESOLVE_RESERVE).unwrap();
        assert!(budget <= Duration::from_secs(1) && budget > Duration::from_millis(900), "{budget:?}");
        let whole = deadline.budget(OPERATION_TIMEOUT, Duration::ZERO).unwrap();
        assert!(whole <= Duration::from_secs(3) && whole > Duration::from_millis(2900), "{whole:?}");
        assert_eq!(deadline.budget(Duration::from_secs(1), Duration::ZERO), Some(Duration::from_secs(1)));
        assert_eq!(deadline.budget(ATTEMPT_TIMEOUT, Duration::from_secs(3)), None);
        assert!(Deadline::after(Duration::ZERO).passed());
    }

    #[test]
    fn lambdas_deadline_loses_the_answer_margin() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = Deadline::from_lambda(now_ms + 10_000).remaining();
        assert!(left <= Duration::from_millis(9_500) && left > Duration::from_millis(9_300), "{left:?}");
        assert!(Deadline::from_lambda(now_ms - 1_000).passed(), "a deadline in the past leaves nothing");
    }
}
