//! How many failed token verifications a client IP or a token id may make:
//! a budget of `burst` failures, refilled one every `refill` (a GCRA, the
//! cell-rate algorithm: the state is one instant, when the budget is full
//! again). An attempt is spent before any argon2 work, so parallel attempts
//! count at once, and refunded when it succeeds: only failures keep it spent.

use chrono::{DateTime, Duration, Utc};

use crate::{AccessError, Reason};

/// A failure budget: `burst` at once, one more every `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBudget {
    burst: u32,
    refill: Duration,
}

/// What a budget's failures so far leave: the instant its budget is whole
/// again. A key without one has its whole budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent(DateTime<Utc>);

impl FailureBudget {
    /// `burst` failures (0 disables the limit), one more every `refill`.
    #[must_use]
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst,
            refill: refill.max(Duration::milliseconds(1)),
        }
    }

    /// True when the budget limits nothing.
    #[must_use]
    pub fn is_unlimited(&self) -> bool {
        self.burst == 0
    }

    /// `Ok` when another attempt may be verified at `now`; otherwise how
    /// long until one may.
    pub fn check(&self, spent: Option<Spent>, now: DateTime<Utc>) -> Result<(), Duration> {
        let Some(Spent(full_at)) = spent else {
            return Ok(());
        };
        if self.is_unlimited() {
            return Ok(());
        }
        // One attempt is left while full_at <= now + (burst - 1) * refill.
        let tolerance = self.refill * i32::try_from(self.burst - 1).unwrap_or(i32::MAX);
        let wait = full_at - (now + tolerance);
        if wait <= Duration::zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// The budget after one more failure at `now`.
    #[must_use]
    pub fn spend(&self, spent: Option<Spent>, now: DateTime<Utc>) -> Spent {
        let from = spent.map_or(now, |Spent(full_at)| full_at.max(now));
        Spent(from + self.refill)
    }

    /// Gives back one attempt spent with [`Self::spend`] that turned out
    /// to succeed; `None` once the budget is whole.
    #[must_use]
    pub fn refund(&self, spent: Spent, now: DateTime<Utc>) -> Option<Spent> {
        let back = Spent(spent.0 - self.refill);
        (!Self::is_whole(back, now)).then_some(back)
    }

    /// True when `spent` is whole again at `now`, so it can be forgotten.
    #[must_use]
    pub fn is_whole(spent: Spent, now: DateTime<Utc>) -> bool {
        spent.0 <= now
    }
}

/// The denial for an exhausted budget of `what` ("this token", "this
/// address"), retryable after `wait`.
#[must_use]
pub fn too_many_failures(what: &str, wait: Duration) -> AccessError {
    let wait = wait.to_std().unwrap_or_default();
    // Whole seconds, rounded up, so the retry never comes early.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    AccessError::new(
        Reason::TooManyFailedAttempts,
        format!(
            "too many failed verifications for {what}; retry in {seconds} s (check that the token was copied whole)"
        ),
    )
    .retry_after(std::time::Duration::from_secs(seconds.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_burst_of_failures_is_allowed_then_one_per_refill() {
        let budget = FailureBudget::new(3, Duration::seconds(10));
        let mut spent = None;
        for _ in 0..3 {
            assert!(budget.check(spent, t0()).is_ok());
            spent = Some(budget.spend(spent, t0()));
        }
        assert_eq!(budget.check(spent, t0()), Err(Duration::seconds(10)));
        assert_eq!(
            budget.check(spent, t0() + Duration::seconds(4)),
            Err(Duration::seconds(6))
        );
        assert!(budget.check(spent, t0() + Duration::seconds(10)).is_ok());
        spent = Some(budget.spend(spent, t0() + Duration::seconds(10)));
        assert!(budget.check(spent, t0() + Duration::seconds(10)).is_err());
    }

    #[test]
    fn a_spent_budget_becomes_whole_again() {
        let budget = FailureBudget::new(2, Duration::seconds(5));
        let spent = budget.spend(budget.spend(None, t0()).into(), t0());
        assert!(!FailureBudget::is_whole(spent, t0() + Duration::seconds(9)));
        assert!(FailureBudget::is_whole(spent, t0() + Duration::seconds(10)));
        assert!(
            budget
                .check(Some(spent), t0() + Duration::seconds(10))
                .is_ok()
        );
    }

    #[test]
    fn a_refunded_attempt_is_given_back() {
        let budget = FailureBudget::new(2, Duration::seconds(5));
        let one = budget.spend(None, t0());
        let two = budget.spend(Some(one), t0());
        assert!(budget.check(Some(two), t0()).is_err());
        let back = budget.refund(two, t0()).unwrap();
        assert_eq!(back, one);
        assert!(budget.check(Some(back), t0()).is_ok());
        assert_eq!(budget.refund(one, t0()), None, "whole again");
    }

    #[test]
    fn a_zero_burst_limits_nothing() {
        let budget = FailureBudget::new(0, Duration::seconds(5));
        let mut spent = None;
        for _ in 0..100 {
            spent = Some(budget.spend(spent, t0()));
        }
        assert!(budget.check(spent, t0()).is_ok());
    }

    #[test]
    fn the_denial_carries_a_whole_second_retry_delay() {
        let err = too_many_failures("this token", Duration::milliseconds(1500));
        assert_eq!(err.reason, Reason::TooManyFailedAttempts);
        assert_eq!(err.retry_after, Some(std::time::Duration::from_secs(2)));
        assert!(err.message.contains("retry in 2 s"), "{}", err.message);
    }
}
