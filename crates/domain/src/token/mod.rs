//! Token formats, secret hashing and verification-cache fingerprints.
//!
//! Service tokens use Infisical's format `st.<uuid>.<secret>.<key>`, secret and
//! key each 32 lowercase hex characters; the part after the last `.` is the
//! key and everything before it is the access token. Clients send only the
//! access token `st.<uuid>.<secret>`: the key part never leaves them, and the
//! four-part form a server may still receive (Infisical's Kubernetes operator
//! sends it) is cut to its access token by [`access_token_part`] before
//! anything else reads it. Identity access tokens are JWTs ([`jwt`]);
//! those issued before were `ia.<uuid>.<secret>` with a 64-hex-character
//! secret, and work until they expire. These prefixes never change:
//! scanners and clients rely on them.

use std::fmt;

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
/// The id part of a token: a UUID (its text form is the entity's id).
pub use uuid::Uuid;

mod fingerprint;
mod hash;
pub mod jwt;

pub use fingerprint::{FingerprintKey, Precheck};
pub use hash::{
    Argon2Memory, MAX_ARGON2_MEMORY_KIB, SecretHash, hash_secret, verify_secret, verify_secret_with,
};
pub use jwt::{AccessClaims, AccessJwt, AccessTokenKeys, AuthMethod};

use crate::crypto::{WireKey, is_lower_hex};
use crate::{AccessError, Reason};

/// The never-changing prefix of service tokens.
pub const SERVICE_TOKEN_PREFIX: &str = "st";
/// The never-changing prefix of identity access tokens issued before JWTs.
pub const IDENTITY_TOKEN_PREFIX: &str = "ia";

/// A full service token, including its key part. Held only by its owner (the
/// server builds one only to issue it): it sends [`Self::access_token`] and
/// keeps the key part to decrypt the project key.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceTokenSecret {
    id: Uuid,
    secret: String,
    key: WireKey,
}

impl ServiceTokenSecret {
    /// A fresh token with a random id, secret and key part.
    #[must_use]
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self {
            id: random_id(rng),
            secret: random_hex::<16, R>(rng),
            key: WireKey::generate(rng),
        }
    }

    /// The token id.
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The secret part, to hash or verify.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The key part, which decrypts the token's copy of the project key.
    #[must_use]
    pub fn key(&self) -> &WireKey {
        &self.key
    }

    /// Parses a whole four-part token, as its holder has it. A token without
    /// its key part is `TOKEN_MALFORMED` here: only the holder of the key
    /// part can decrypt, so client-side crypto needs the full token.
    pub fn parse(raw: &str) -> Result<Self, AccessError> {
        let missing_key = || {
            AccessError::new(
                Reason::TokenMalformed,
                "this needs the whole service token st.<id>.<secret>.<key>, as it was issued: \
                 the key part decrypts the project key and never leaves this machine",
            )
        };
        let access = access_token_part(raw);
        if access == raw {
            return Err(missing_key());
        }
        let AnyToken::Service(token) = AnyToken::parse(access)? else {
            return Err(missing_key());
        };
        let key = &raw[access.len() + 1..];
        let key = WireKey::parse(key).map_err(|_| missing_key())?;
        Ok(Self {
            id: token.id,
            secret: token.secret,
            key,
        })
    }

    /// The access token `st.<id>.<secret>`: all a client ever sends.
    #[must_use]
    pub fn access_token(&self) -> String {
        format!("{SERVICE_TOKEN_PREFIX}.{}.{}", self.id, self.secret)
    }

    /// The whole token text, to hand to its owner once.
    #[must_use]
    pub fn expose(&self) -> String {
        format!(
            "{SERVICE_TOKEN_PREFIX}.{}.{}.{}",
            self.id,
            self.secret,
            self.key.expose()
        )
    }
}

impl fmt::Debug for ServiceTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokenSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A service token's access token `st.<id>.<secret>`, as servers see it: it
/// has no key part, so nothing holding one can decrypt a project key.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceAccessToken {
    id: Uuid,
    secret: String,
}

impl ServiceAccessToken {
    /// The token id.
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The secret part, to hash or verify.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for ServiceAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccessToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A full identity access token of the kind issued before JWTs (`ia.`).
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityTokenSecret {
    id: Uuid,
    secret: String,
}

impl IdentityTokenSecret {
    /// A fresh token with a random id and a 256-bit secret.
    #[must_use]
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self {
            id: random_id(rng),
            secret: random_hex::<32, R>(rng),
        }
    }

    /// The token id.
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The secret part, to hash or verify.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The whole token text, to hand to its owner once.
    #[must_use]
    pub fn expose(&self) -> String {
        format!("{IDENTITY_TOKEN_PREFIX}.{}.{}", self.id, self.secret)
    }
}

impl fmt::Debug for IdentityTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityTokenSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Any token a caller may present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyToken {
    /// A service token's access token (its key part, if sent, cut off).
    Service(ServiceAccessToken),
    /// An identity access token issued before JWTs (`ia.`).
    Identity(IdentityTokenSecret),
    /// An identity access token (a JWT), not yet verified.
    Jwt(Box<AccessJwt>),
}

impl AnyToken {
    /// Parses a token by its format alone; anything else is `TOKEN_MALFORMED`.
    /// A service token may come as `st.<id>.<secret>` or with its key part;
    /// the key part is checked for shape and dropped, never kept.
    pub fn parse(raw: &str) -> Result<Self, AccessError> {
        let malformed = || {
            AccessError::new(
                Reason::TokenMalformed,
                "the token is not a Latchkey token: expected a service token \
                 st.<id>.<secret> or an identity access token (a JWT, or ia.<id>.<secret>)",
            )
        };
        if let Some(rest) = access_token_part(raw).strip_prefix("st.") {
            let (id, secret) = rest.split_once('.').ok_or_else(malformed)?;
            let id = parse_uuid(id).ok_or_else(malformed)?;
            if !is_lower_hex(secret, 32) {
                return Err(malformed());
            }
            return Ok(AnyToken::Service(ServiceAccessToken {
                id,
                secret: secret.to_owned(),
            }));
        }
        if let Some(rest) = raw.strip_prefix("ia.") {
            let (id, secret) = rest.split_once('.').ok_or_else(malformed)?;
            let id = parse_uuid(id).ok_or_else(malformed)?;
            if !is_lower_hex(secret, 64) {
                return Err(malformed());
            }
            return Ok(AnyToken::Identity(IdentityTokenSecret {
                id,
                secret: secret.to_owned(),
            }));
        }
        match AccessJwt::parse(raw) {
            Some(jwt) => jwt.map(|jwt| AnyToken::Jwt(Box::new(jwt))),
            None => Err(malformed()),
        }
    }

    /// The token id (a JWT's as it claims, until verified).
    #[must_use]
    pub fn id(&self) -> Uuid {
        match self {
            AnyToken::Service(t) => t.id(),
            AnyToken::Identity(t) => t.id(),
            AnyToken::Jwt(t) => t.id(),
        }
    }
}

/// The access token of a four-part service token `st.<id>.<secret>.<key>`
/// (everything before the last `.`, when that last part has a key's shape);
/// any other text unchanged. Servers apply it at the edge, so the key part
/// goes no further than the request that carried it.
#[must_use]
pub fn access_token_part(raw: &str) -> &str {
    if raw.starts_with("st.")
        && raw.matches('.').count() == 3
        && let Some((access, key)) = raw.rsplit_once('.')
        && is_lower_hex(key, 32)
    {
        return access;
    }
    raw
}

/// A fast SHA-256 fingerprint of a whole token, to key verification caches.
#[must_use]
pub fn fingerprint(raw: &str) -> [u8; 32] {
    Sha256::digest(raw.as_bytes()).into()
}

/// A random (version 4) token id.
fn random_id<R: RngCore + CryptoRng>(rng: &mut R) -> Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// `N` random bytes as lowercase hex.
fn random_hex<const N: usize, R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn parse_uuid(text: &str) -> Option<Uuid> {
    // Only the canonical lowercase hyphenated form, so one token has one spelling.
    Uuid::parse_str(text)
        .ok()
        .filter(|id| id.hyphenated().to_string() == text)
}

#[cfg(test)]
mod tests;
