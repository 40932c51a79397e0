//! Failed-attempt limiting per client IP and per token id, in memory on
//! each replica: a replica counts only the failures it saw, so N replicas
//! allow up to N times the budget. The state is a bounded LRU: past its
//! capacity the keys whose last failure is oldest are forgotten (they get
//! their whole budget back), so a flood of distinct keys cannot grow it.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use latchkey_domain::AccessError;
use latchkey_domain::attempts::{FailureBudget, Spent, too_many_failures};
use lru::LruCache;
use uuid::Uuid;

/// The budgets, and how many keys to remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimits {
    /// Failures per token id.
    pub per_token: FailureBudget,
    /// Failures per client IP.
    pub per_ip: FailureBudget,
    /// Keys (token ids and IPs) remembered at most.
    pub capacity: usize,
}

impl Default for FailureLimits {
    /// 10 failures per token id then one per 6 s; 30 per IP then one per 2 s.
    fn default() -> Self {
        Self {
            per_token: FailureBudget::new(10, chrono::Duration::seconds(6)),
            per_ip: FailureBudget::new(30, chrono::Duration::seconds(2)),
            capacity: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Token(Uuid),
    Ip(IpAddr),
}

/// Counts failed verifications and refuses keys over their budget.
#[derive(Debug)]
pub struct FailureLimiter {
    limits: FailureLimits,
    spent: Mutex<LruCache<Key, Spent>>,
}

impl FailureLimiter {
    /// A limiter with `limits`.
    #[must_use]
    pub fn new(limits: FailureLimits) -> Self {
        Self {
            limits,
            spent: Mutex::new(LruCache::new(
                NonZeroUsize::new(limits.capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Refuses, with `TOO_MANY_FAILED_ATTEMPTS` and when to retry, a token id
    /// or client IP that spent its budget.
    pub fn check(
        &self,
        client_ip: Option<IpAddr>,
        token: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), AccessError> {
        let Ok(spent) = self.spent.lock() else {
            return Ok(());
        };
        self.limits
            .per_token
            .check(spent.peek(&Key::Token(token)).copied(), now)
            .map_err(|wait| too_many_failures("this token", wait))?;
        if let Some(ip) = client_ip {
            self.limits
                .per_ip
                .check(spent.peek(&Key::Ip(ip)).copied(), now)
                .map_err(|wait| too_many_failures(&format!("address {ip}"), wait))?;
        }
        Ok(())
    }

    /// Spends one failure of the token id's budget and the IP's.
    pub fn record_failure(&self, client_ip: Option<IpAddr>, token: Uuid, now: DateTime<Utc>) {
        let Ok(mut spent) = self.spent.lock() else {
            return;
        };
        let mut spend = |key: Key, budget: &FailureBudget| {
            if !budget.is_unlimited() {
                let next = budget.spend(spent.peek(&key).copied(), now);
                spent.put(key, next);
            }
        };
        spend(Key::Token(token), &self.limits.per_token);
        if let Some(ip) = client_ip {
            spend(Key::Ip(ip), &self.limits.per_ip);
        }
    }

    /// True when the token id failed and its budget is not whole again:
    /// its verifications wait behind never-failed ones.
    #[must_use]
    pub fn failed_recently(&self, token: Uuid, now: DateTime<Utc>) -> bool {
        self.spent.lock().is_ok_and(|spent| {
            spent
                .peek(&Key::Token(token))
                .is_some_and(|s| !FailureBudget::is_whole(*s, now))
        })
    }

    /// Keys remembered, for tests.
    #[must_use]
    pub fn len(&self) -> usize {
        self.spent.lock().map_or(0, |s| s.len())
    }

    /// True when no key is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use chrono::Duration;
    use latchkey_domain::Reason;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn limiter(token: u32, ip: u32, capacity: usize) -> FailureLimiter {
        FailureLimiter::new(FailureLimits {
            per_token: FailureBudget::new(token, Duration::seconds(10)),
            per_ip: FailureBudget::new(ip, Duration::seconds(10)),
            capacity,
        })
    }

    #[test]
    fn a_token_over_its_budget_is_refused_with_a_retry_delay_while_others_are_not() {
        let limiter = limiter(2, 100, 100);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.record_failure(Some(ip), a, t0());
        limiter.record_failure(Some(ip), a, t0());

        let err = limiter.check(Some(ip), a, t0()).unwrap_err();

        assert_eq!(err.reason, Reason::TooManyFailedAttempts);
        assert_eq!(err.retry_after, Some(std::time::Duration::from_secs(10)));
        assert!(limiter.check(Some(ip), b, t0()).is_ok());
        assert!(limiter.failed_recently(a, t0()) && !limiter.failed_recently(b, t0()));
        assert!(
            limiter
                .check(Some(ip), a, t0() + Duration::seconds(10))
                .is_ok()
        );
    }

    #[test]
    fn an_address_over_its_budget_is_refused_while_another_is_not() {
        let limiter = limiter(100, 3, 100);
        let (bad, good): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            limiter.record_failure(Some(bad), Uuid::new_v4(), t0());
        }

        let err = limiter.check(Some(bad), Uuid::new_v4(), t0()).unwrap_err();

        assert!(err.message.contains("192.0.2.1"), "{}", err.message);
        assert!(limiter.check(Some(good), Uuid::new_v4(), t0()).is_ok());
    }

    #[test]
    fn the_state_is_bounded_forgetting_the_oldest_keys() {
        let limiter = limiter(1, 0, 10);
        let first = Uuid::new_v4();
        limiter.record_failure(None, first, t0());
        for _ in 0..100 {
            limiter.record_failure(None, Uuid::new_v4(), t0());
        }
        assert_eq!(limiter.len(), 10);
        assert!(
            limiter.check(None, first, t0()).is_ok(),
            "evicted, so whole again"
        );
    }
}
