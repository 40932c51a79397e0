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
use latchkey_domain::ip::{DEFAULT_IPV6_PREFIX, client_key};
use latchkey_domain::token::Uuid;
use lru::LruCache;

/// The budgets, and how many keys to remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimits {
    /// Failures per token id.
    pub per_token: FailureBudget,
    /// Failures per client IP.
    pub per_ip: FailureBudget,
    /// Keys (token ids and IPs) remembered at most.
    pub capacity: usize,
    /// IPv6 clients share one budget per prefix of this many bits
    /// (`LATCHKEY_IPV6_PREFIX_BITS`, default 64): one host routinely holds a /64.
    pub ipv6_prefix: u8,
}

impl Default for FailureLimits {
    /// 10 failures per token id then one per 6 s; 30 per IP then one per 2 s.
    fn default() -> Self {
        Self {
            per_token: FailureBudget::new(10, chrono::Duration::seconds(6)),
            per_ip: FailureBudget::new(30, chrono::Duration::seconds(2)),
            capacity: 100_000,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
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

    /// Takes one attempt from the token id's and the client IP's budgets,
    /// or refuses, with `TOO_MANY_FAILED_ATTEMPTS` and when to retry, when
    /// either is spent. Attempts in progress count: [`Self::succeeded`]
    /// gives one back.
    pub fn attempt(
        &self,
        client_ip: Option<IpAddr>,
        token: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), AccessError> {
        let mut spent = self.lock();
        let keys = [
            Some((Key::Token(token), self.limits.per_token)),
            client_ip.map(|ip| (self.ip_key(ip), self.limits.per_ip)),
        ];
        for (key, budget) in keys.iter().flatten() {
            budget
                .check(spent.peek(key).copied(), now)
                .map_err(|wait| match key {
                    Key::Token(_) => too_many_failures("this token", wait),
                    Key::Ip(ip) => too_many_failures(&format!("address {ip}"), wait),
                })?;
        }
        for (key, budget) in keys.iter().flatten() {
            if !budget.is_unlimited() {
                let next = budget.spend(spent.peek(key).copied(), now);
                spent.put(*key, next);
            }
        }
        Ok(())
    }

    /// Counts a failure that cost next to nothing (a secret whose
    /// fingerprint does not match, an unknown token id) against the client
    /// address only: such a failure never spends the token id's budget, so
    /// nobody can lock a token's holder out by knowing its id. Refuses when
    /// the address is already over its budget.
    pub fn cheap_failure(
        &self,
        client_ip: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<(), AccessError> {
        let Some(ip) = client_ip else {
            return Ok(());
        };
        let budget = self.limits.per_ip;
        let key = self.ip_key(ip);
        let mut spent = self.lock();
        budget
            .check(spent.peek(&key).copied(), now)
            .map_err(|wait| too_many_failures(&format!("address {ip}"), wait))?;
        if !budget.is_unlimited() {
            let next = budget.spend(spent.peek(&key).copied(), now);
            spent.put(key, next);
        }
        Ok(())
    }

    /// Gives back the attempt of a verification that succeeded.
    pub fn succeeded(&self, client_ip: Option<IpAddr>, token: Uuid, now: DateTime<Utc>) {
        let mut spent = self.lock();
        let mut refund = |key: Key, budget: &FailureBudget| {
            if let Some(s) = spent.peek(&key).copied() {
                match budget.refund(s, now) {
                    Some(back) => {
                        spent.put(key, back);
                    }
                    None => {
                        spent.pop(&key);
                    }
                }
            }
        };
        refund(Key::Token(token), &self.limits.per_token);
        if let Some(ip) = client_ip {
            refund(self.ip_key(ip), &self.limits.per_ip);
        }
    }

    fn ip_key(&self, ip: IpAddr) -> Key {
        Key::Ip(client_key(ip, self.limits.ipv6_prefix))
    }

    /// The budgets are plain counters that no panic leaves half-written, so
    /// a poisoned lock is recovered, never bypassed (which would let every
    /// attempt through).
    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Spent>> {
        self.spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when the token id failed and its budget is not whole again:
    /// its verifications wait behind never-failed ones.
    #[must_use]
    pub fn failed_recently(&self, token: Uuid, now: DateTime<Utc>) -> bool {
        self.lock()
            .peek(&Key::Token(token))
            .is_some_and(|s| !FailureBudget::is_whole(*s, now))
    }

    /// Keys remembered, for tests.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no key is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
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
            ipv6_prefix: 64,
        })
    }

    #[test]
    fn a_token_over_its_budget_is_refused_with_a_retry_delay_while_others_are_not() {
        let limiter = limiter(2, 100, 100);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.attempt(Some(ip), a, t0()).unwrap();
        limiter.attempt(Some(ip), a, t0()).unwrap();

        let err = limiter.attempt(Some(ip), a, t0()).unwrap_err();

        assert_eq!(err.reason, Reason::TooManyFailedAttempts);
        assert_eq!(err.retry_after, Some(std::time::Duration::from_secs(10)));
        assert!(limiter.attempt(Some(ip), b, t0()).is_ok());
        limiter.succeeded(Some(ip), b, t0());
        assert!(limiter.failed_recently(a, t0()) && !limiter.failed_recently(b, t0()));
        let later = t0() + Duration::seconds(10);
        assert!(limiter.attempt(Some(ip), a, later).is_ok());
    }

    #[test]
    fn an_address_over_its_budget_is_refused_while_another_is_not() {
        let limiter = limiter(100, 3, 100);
        let (bad, good): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            limiter.attempt(Some(bad), Uuid::new_v4(), t0()).unwrap();
        }

        let err = limiter
            .attempt(Some(bad), Uuid::new_v4(), t0())
            .unwrap_err();

        assert!(err.message.contains("192.0.2.1"), "{}", err.message);
        assert!(limiter.attempt(Some(good), Uuid::new_v4(), t0()).is_ok());
    }

    #[test]
    fn attempts_in_progress_count_and_a_success_gives_its_attempt_back() {
        let limiter = limiter(2, 100, 100);
        let token = Uuid::new_v4();
        limiter.attempt(None, token, t0()).unwrap();
        limiter.attempt(None, token, t0()).unwrap();
        assert!(limiter.attempt(None, token, t0()).is_err(), "two in flight");
        limiter.succeeded(None, token, t0());
        assert!(limiter.attempt(None, token, t0()).is_ok());
    }

    #[test]
    fn the_state_is_bounded_forgetting_the_oldest_keys() {
        let limiter = limiter(1, 0, 10);
        let first = Uuid::new_v4();
        limiter.attempt(None, first, t0()).unwrap();
        for _ in 0..100 {
            limiter.attempt(None, Uuid::new_v4(), t0()).unwrap();
        }
        assert_eq!(limiter.len(), 10);
        assert!(
            limiter.attempt(None, first, t0()).is_ok(),
            "evicted, so whole again"
        );
    }

    #[test]
    fn an_ipv6_host_has_one_budget_for_its_whole_slash_64() {
        let limiter = limiter(100, 3, 100);
        for host in 1..=3 {
            let ip: IpAddr = format!("2001:db8:1:2::{host}").parse().unwrap();
            limiter.attempt(Some(ip), Uuid::new_v4(), t0()).unwrap();
        }
        let next: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let err = limiter
            .attempt(Some(next), Uuid::new_v4(), t0())
            .unwrap_err();
        assert_eq!(err.reason, Reason::TooManyFailedAttempts);
        assert!(limiter.cheap_failure(Some(next), t0()).is_err());
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.attempt(Some(other), Uuid::new_v4(), t0()).is_ok());
    }

    #[test]
    fn cheap_failures_spend_the_address_budget_and_never_the_token_budget() {
        let limiter = limiter(1, 3, 100);
        let token = Uuid::new_v4();
        let attacker: IpAddr = "192.0.2.66".parse().unwrap();
        for _ in 0..3 {
            limiter.cheap_failure(Some(attacker), t0()).unwrap();
        }
        let err = limiter.cheap_failure(Some(attacker), t0()).unwrap_err();
        assert_eq!(err.reason, Reason::TooManyFailedAttempts);
        assert!(!limiter.failed_recently(token, t0()));
        let holder: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(limiter.attempt(Some(holder), token, t0()).is_ok());
    }

    #[test]
    fn a_poisoned_lock_still_counts_failures() {
        let limiter = std::sync::Arc::new(limiter(1, 100, 100));
        let poisoner = limiter.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.spent.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(limiter.spent.is_poisoned());
        let token = Uuid::new_v4();
        limiter.attempt(None, token, t0()).unwrap();
        assert!(limiter.attempt(None, token, t0()).is_err());
    }
}
