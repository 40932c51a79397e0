//! Infisical's Token Auth: the settings an identity's access tokens are
//! issued under.

use crate::InvalidInput;
use crate::ip::TrustedIps;

/// Infisical's Token Auth settings for an identity's access tokens. Tokens
/// keep the settings they were issued under: a change applies to tokens
/// issued after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuthConfig {
    /// Lifetime of a new or renewed token, in seconds.
    pub ttl_seconds: i64,
    /// Renewal never extends a token past its creation plus this, in seconds.
    pub max_ttl_seconds: i64,
    /// Maximum uses of one token; 0 is unlimited.
    pub num_uses_limit: u64,
    /// Addresses the tokens may be used from.
    pub trusted_ips: TrustedIps,
}

impl TokenAuthConfig {
    /// Infisical's default TTL and max TTL: 30 days.
    pub const DEFAULT_TTL_SECONDS: i64 = 2_592_000;
    /// Infisical's default trusted IPs: everywhere.
    pub const DEFAULT_TRUSTED_IPS: [&'static str; 2] = ["0.0.0.0/0", "::/0"];

    /// The defaults: 30-day TTL and max TTL, unlimited uses, any address.
    #[must_use]
    pub fn defaults() -> Self {
        Self {
            ttl_seconds: Self::DEFAULT_TTL_SECONDS,
            max_ttl_seconds: Self::DEFAULT_TTL_SECONDS,
            num_uses_limit: 0,
            trusted_ips: TrustedIps::parse(&Self::DEFAULT_TRUSTED_IPS, "access_token_trusted_ips")
                .unwrap_or_default(),
        }
    }

    /// `self` with `changes` applied, validated as a whole.
    pub fn apply(&self, changes: &TokenAuthChanges) -> Result<Self, InvalidInput> {
        self.with_changes(
            changes.ttl,
            changes.max_ttl,
            changes.num_uses_limit,
            &changes.trusted_ips,
        )
    }

    /// `self` with the given fields replaced, validated as a whole: TTL > 0,
    /// max TTL >= TTL, limit >= 0, every trusted IP an address or CIDR (an
    /// empty list keeps the current one).
    pub fn with_changes(
        &self,
        ttl: Option<i64>,
        max_ttl: Option<i64>,
        num_uses_limit: Option<i64>,
        trusted_ips: &[String],
    ) -> Result<Self, InvalidInput> {
        let num_uses_limit = match num_uses_limit {
            None => self.num_uses_limit,
            Some(limit) => u64::try_from(limit).map_err(|_| {
                InvalidInput::new(
                    "access_token_num_uses_limit",
                    format!("{limit} is negative; use 0 for unlimited"),
                )
            })?,
        };
        let next = Self {
            ttl_seconds: ttl.unwrap_or(self.ttl_seconds),
            max_ttl_seconds: max_ttl.unwrap_or(self.max_ttl_seconds),
            num_uses_limit,
            trusted_ips: if trusted_ips.is_empty() {
                self.trusted_ips.clone()
            } else {
                TrustedIps::parse(trusted_ips, "access_token_trusted_ips")?
            },
        };
        if next.ttl_seconds <= 0 {
            return Err(InvalidInput::new(
                "access_token_ttl",
                format!("{} must be greater than 0 seconds", next.ttl_seconds),
            ));
        }
        if next.ttl_seconds > crate::ttl::MAX_LIFETIME_SECONDS
            || next.max_ttl_seconds > crate::ttl::MAX_LIFETIME_SECONDS
        {
            return Err(InvalidInput::new(
                if next.ttl_seconds > crate::ttl::MAX_LIFETIME_SECONDS {
                    "access_token_ttl"
                } else {
                    "access_token_max_ttl"
                },
                "exceeds the maximum of 10 years",
            ));
        }
        if next.max_ttl_seconds < next.ttl_seconds {
            return Err(InvalidInput::new(
                "access_token_max_ttl",
                format!(
                    "{} must be at least the TTL ({} seconds)",
                    next.max_ttl_seconds, next.ttl_seconds
                ),
            ));
        }
        Ok(next)
    }
}

/// Token Auth fields to change; `None` and an empty list leave a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenAuthChanges {
    /// `access_token_ttl`, seconds.
    pub ttl: Option<i64>,
    /// `access_token_max_ttl`, seconds.
    pub max_ttl: Option<i64>,
    /// `access_token_num_uses_limit`; 0 is unlimited.
    pub num_uses_limit: Option<i64>,
    /// `access_token_trusted_ips`, as sent.
    pub trusted_ips: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_infisicals() {
        let d = TokenAuthConfig::defaults();
        assert_eq!(
            (d.ttl_seconds, d.max_ttl_seconds, d.num_uses_limit),
            (2_592_000, 2_592_000, 0)
        );
        assert_eq!(d.trusted_ips.to_strings(), ["0.0.0.0/0", "::/0"]);
    }

    #[test]
    fn changes_are_validated_naming_the_field() {
        let d = TokenAuthConfig::defaults();
        type Case = (
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Vec<String>,
            &'static str,
        );
        let cases: [Case; 6] = [
            (Some(0), None, None, vec![], "access_token_ttl"),
            (Some(-5), None, None, vec![], "access_token_ttl"),
            (Some(100), Some(99), None, vec![], "access_token_max_ttl"),
            (Some(3_000_000), None, None, vec![], "access_token_max_ttl"),
            (None, None, Some(-1), vec![], "access_token_num_uses_limit"),
            (
                None,
                None,
                None,
                vec!["10.0.0.0/8".into(), "nope".into()],
                "access_token_trusted_ips[1]",
            ),
        ];
        for (ttl, max, limit, ips, field) in cases {
            let err = d.with_changes(ttl, max, limit, &ips).unwrap_err();
            assert_eq!(err.field, field, "{ttl:?} {max:?} {limit:?} {ips:?}");
        }
    }

    #[test]
    fn unchanged_fields_are_kept() {
        let d = TokenAuthConfig::defaults();
        let c = d.with_changes(Some(60), Some(120), Some(3), &[]).unwrap();
        assert_eq!(
            (c.ttl_seconds, c.max_ttl_seconds, c.num_uses_limit),
            (60, 120, 3)
        );
        assert_eq!(c.trusted_ips, d.trusted_ips);
        let c2 = c
            .with_changes(None, None, None, &["127.0.0.1".to_owned()])
            .unwrap();
        assert_eq!((c2.ttl_seconds, c2.num_uses_limit), (60, 3));
        assert_eq!(c2.trusted_ips.to_strings(), ["127.0.0.1"]);
    }
}
