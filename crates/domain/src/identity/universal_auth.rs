//! Infisical's Universal Auth: an identity has a client ID and any number
//! of client secrets, and a login trades a client ID and one of its secrets
//! for an access token issued under the method's settings. A client secret
//! is shown once and kept as an argon2 hash with its fingerprint (like a
//! token's secret, so a wrong one costs one HMAC and knowing a client ID
//! gives no power over its secrets); it may expire, run out of logins, or
//! be revoked.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use rand::{CryptoRng, RngCore};

use super::{TokenAuthChanges, TokenAuthConfig};
use crate::InvalidInput;
use crate::ip::TrustedIps;
use crate::model::IdentityId;
use crate::token::SecretHash;
use crate::{AccessError, Reason};

/// Characters of a client secret: 32 random bytes as lowercase hex, as Infisical's.
pub const CLIENT_SECRET_HEX_LEN: usize = 64;
/// Characters of a client secret shown in listings to tell secrets apart.
pub const CLIENT_SECRET_PREFIX_LEN: usize = 4;
/// The most live client secrets one identity may hold (each login checks
/// each one's fingerprint).
pub const MAX_CLIENT_SECRETS: usize = 100;
/// The longest description of a client secret, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// An identity's Universal Auth: its client ID, where its secrets may log
/// in from, and the settings of the access tokens a login issues (Token
/// Auth's, with the same defaults and rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniversalAuthConfig {
    /// The identity.
    pub identity_id: IdentityId,
    /// The client ID: a UUID, not secret.
    pub client_id: String,
    /// Addresses a client secret may log in from.
    pub client_secret_trusted_ips: TrustedIps,
    /// The access tokens' TTL, max TTL, use limit and trusted IPs.
    pub access: TokenAuthConfig,
    /// Attach time.
    pub created_at: DateTime<Utc>,
}

/// Universal Auth fields to change: the access-token settings as Token
/// Auth's, and where client secrets may log in from (empty keeps it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UniversalAuthChanges {
    /// The access-token settings.
    pub access: TokenAuthChanges,
    /// `client_secret_trusted_ips`, as sent.
    pub client_secret_trusted_ips: Vec<String>,
}

impl UniversalAuthConfig {
    /// `self` with `changes` applied, validated as a whole.
    pub fn apply(&self, changes: &UniversalAuthChanges) -> Result<Self, InvalidInput> {
        Ok(Self {
            access: self.access.apply(&changes.access)?,
            client_secret_trusted_ips: self
                .with_client_secret_trusted_ips(&changes.client_secret_trusted_ips)?,
            ..self.clone()
        })
    }

    /// `self` with `trusted_ips` as its client-secret trusted IPs (an empty
    /// list keeps the current one).
    pub fn with_client_secret_trusted_ips(
        &self,
        trusted_ips: &[String],
    ) -> Result<TrustedIps, InvalidInput> {
        if trusted_ips.is_empty() {
            return Ok(self.client_secret_trusted_ips.clone());
        }
        TrustedIps::parse(trusted_ips, "client_secret_trusted_ips")
    }
}

/// Infisical's default client-secret trusted IPs: everywhere.
#[must_use]
pub fn default_client_secret_trusted_ips() -> TrustedIps {
    TrustedIps::parse(
        &TokenAuthConfig::DEFAULT_TRUSTED_IPS,
        "client_secret_trusted_ips",
    )
    .unwrap_or_default()
}

/// A client secret as the server keeps it: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// Its id (not secret).
    pub id: String,
    /// The identity it logs in as.
    pub identity_id: IdentityId,
    /// What its creator said it is for.
    pub description: String,
    /// The first characters of the secret, to tell secrets apart.
    pub prefix: String,
    /// argon2id hash of the secret, with its fingerprint.
    pub secret_hash: SecretHash,
    /// Lifetime from creation in seconds; 0 never expires.
    pub ttl_seconds: i64,
    /// Logins allowed; 0 is unlimited.
    pub num_uses_limit: u64,
    /// Logins so far.
    pub use_count: u64,
    /// Last login.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl ClientSecret {
    /// When it expires, if it does.
    #[must_use]
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        (self.ttl_seconds > 0).then(|| self.created_at + Duration::seconds(self.ttl_seconds))
    }

    /// Whether it may log in at `now`; a refusal says why (revoked,
    /// expired, out of logins), since its holder proved it knows it.
    pub fn check_usable(&self, now: DateTime<Utc>) -> Result<(), AccessError> {
        if self.revoked_at.is_some() {
            return Err(AccessError::new(
                Reason::TokenRevoked,
                "the client secret was revoked; ask an admin for a new one",
            ));
        }
        if let Some(at) = self.expires_at().filter(|at| *at <= now) {
            return Err(AccessError::new(
                Reason::TokenExpired,
                format!(
                    "the client secret expired at {} (its TTL); ask an admin for a new one",
                    at.to_rfc3339()
                ),
            ));
        }
        if self.num_uses_limit > 0 && self.use_count >= self.num_uses_limit {
            return Err(AccessError::new(
                Reason::TokenUsesExhausted,
                format!(
                    "the client secret reached its limit of {} logins; ask an admin for a new one",
                    self.num_uses_limit
                ),
            ));
        }
        Ok(())
    }
}

/// What a new client secret is to be: validated from an admin's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecretTerms {
    /// Its description (may be empty).
    pub description: String,
    /// Lifetime in seconds; 0 never expires.
    pub ttl_seconds: i64,
    /// Logins allowed; 0 is unlimited.
    pub num_uses_limit: u64,
}

impl ClientSecretTerms {
    /// Validates Infisical's fields: `description` (at most 256 printable
    /// characters), `ttl` (0 to 10 years) and `num_uses_limit` (0 or more).
    pub fn parse(description: &str, ttl: i64, num_uses_limit: i64) -> Result<Self, InvalidInput> {
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS
            || description.chars().any(char::is_control)
        {
            return Err(InvalidInput::new(
                "description",
                "at most 256 printable characters",
            ));
        }
        if !(0..=crate::ttl::MAX_LIFETIME_SECONDS).contains(&ttl) {
            return Err(InvalidInput::new(
                "ttl",
                format!("{ttl} must be 0 (never expires) to 315360000 seconds (10 years)"),
            ));
        }
        let num_uses_limit = u64::try_from(num_uses_limit).map_err(|_| {
            InvalidInput::new(
                "num_uses_limit",
                format!("{num_uses_limit} is negative; use 0 for unlimited"),
            )
        })?;
        Ok(Self {
            description: description.to_owned(),
            ttl_seconds: ttl,
            num_uses_limit,
        })
    }
}

/// A client secret's value, as its holder has it. Its `Debug` shows only
/// its prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecretValue(String);

impl ClientSecretValue {
    /// A fresh random secret.
    #[must_use]
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; CLIENT_SECRET_HEX_LEN / 2];
        rng.fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// Parses a presented secret (trimmed, as Infisical trims it). Anything
    /// but 64 lowercase hex characters cannot be a client secret.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let raw = raw.trim();
        if !crate::crypto::is_lower_hex(raw, CLIENT_SECRET_HEX_LEN) {
            return Err(InvalidInput::new(
                "client_secret",
                "a client secret is 64 lowercase hex characters, as it was shown once",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret, to hash, verify or hand over once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its first characters, shown in listings.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.0[..CLIENT_SECRET_PREFIX_LEN]
    }
}

impl fmt::Debug for ClientSecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientSecretValue({}…)", self.prefix())
    }
}

/// Parses a presented client ID (trimmed): a UUID in its canonical form.
pub fn parse_client_id(raw: &str) -> Result<String, InvalidInput> {
    let raw = raw.trim();
    uuid::Uuid::parse_str(raw)
        .ok()
        .map(|id| id.hyphenated().to_string())
        .filter(|id| id == raw)
        .ok_or_else(|| InvalidInput::new("client_id", "a client ID is a UUID, as it was shown"))
}

#[cfg(test)]
mod tests;
