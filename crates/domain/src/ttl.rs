//! Expiry arithmetic.

use chrono::{DateTime, Duration, Utc};

use crate::InvalidInput;

/// The longest lifetime a token may be given: 10 years.
pub const MAX_LIFETIME_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// The expiry of something created at `now` that lives `seconds`; 0 means never.
pub fn expiry_after(
    now: DateTime<Utc>,
    seconds: i64,
    field: &str,
) -> Result<Option<DateTime<Utc>>, InvalidInput> {
    match seconds {
        0 => Ok(None),
        s if s < 0 => Err(InvalidInput::new(
            field,
            format!("{s} is negative; use a number of seconds, or 0 for no expiry"),
        )),
        s if s > MAX_LIFETIME_SECONDS => Err(InvalidInput::new(
            field,
            format!("{s} exceeds the maximum of {MAX_LIFETIME_SECONDS} seconds (10 years)"),
        )),
        s => Ok(Some(now + Duration::seconds(s))),
    }
}

/// True when `expires_at` is set and not after `now`: a token is expired from
/// its expiry instant on.
#[must_use]
pub fn is_expired(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

/// The expiry of an identity access token issued at `created_at`:
/// creation plus the TTL, never past creation plus the max TTL.
#[must_use]
pub fn access_token_expiry(
    created_at: DateTime<Utc>,
    ttl_seconds: i64,
    max_ttl_seconds: i64,
) -> DateTime<Utc> {
    created_at + Duration::seconds(ttl_seconds.min(max_ttl_seconds))
}

/// The expiry after renewing at `now`: `min(now + TTL, creation + max TTL)`.
#[must_use]
pub fn renewed_expiry(
    now: DateTime<Utc>,
    created_at: DateTime<Utc>,
    ttl_seconds: i64,
    max_ttl_seconds: i64,
) -> DateTime<Utc> {
    (now + Duration::seconds(ttl_seconds)).min(created_at + Duration::seconds(max_ttl_seconds))
}

/// Whole seconds from `now` until `at`, rounded to the nearest second (stored
/// times may lose sub-microsecond precision), never negative.
#[must_use]
pub fn seconds_until(at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    ((at - now).num_milliseconds().max(0) + 500) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn zero_seconds_means_never_expires() {
        assert_eq!(expiry_after(t0(), 0, "expires_in_seconds").unwrap(), None);
        assert!(!is_expired(None, t0() + Duration::days(100_000)));
    }

    #[test]
    fn expiry_is_creation_plus_lifetime_and_exclusive() {
        let at = expiry_after(t0(), 60, "expires_in_seconds").unwrap();
        assert_eq!(at, Some(t0() + Duration::seconds(60)));
        assert!(!is_expired(at, t0() + Duration::seconds(59)));
        assert!(is_expired(at, t0() + Duration::seconds(60)));
    }

    #[test]
    fn access_token_expiry_is_creation_plus_ttl_capped_by_max_ttl() {
        assert_eq!(
            access_token_expiry(t0(), 60, 300),
            t0() + Duration::seconds(60)
        );
        assert_eq!(
            access_token_expiry(t0(), 600, 300),
            t0() + Duration::seconds(300)
        );
    }

    #[test]
    fn renewal_extends_by_the_ttl_but_never_past_the_max_ttl() {
        let created = t0();
        assert_eq!(
            renewed_expiry(created + Duration::seconds(50), created, 60, 300),
            created + Duration::seconds(110)
        );
        assert_eq!(
            renewed_expiry(created + Duration::seconds(280), created, 60, 300),
            created + Duration::seconds(300)
        );
    }

    #[test]
    fn seconds_until_rounds_and_never_goes_negative() {
        assert_eq!(
            seconds_until(t0() + Duration::milliseconds(44_999), t0()),
            45
        );
        assert_eq!(
            seconds_until(t0() + Duration::milliseconds(44_400), t0()),
            44
        );
        assert_eq!(seconds_until(t0(), t0() + Duration::seconds(3)), 0);
    }

    #[test]
    fn negative_and_huge_lifetimes_are_refused_naming_the_field() {
        let err = expiry_after(t0(), -1, "expires_in_seconds").unwrap_err();
        assert_eq!(err.field, "expires_in_seconds");
        assert!(err.message.contains("negative"));
        let err = expiry_after(t0(), i64::MAX, "expires_in_seconds").unwrap_err();
        assert!(err.message.contains("maximum"));
    }
}
