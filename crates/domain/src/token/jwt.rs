//! Identity access tokens as JWTs, like Infisical's: a compact JWS whose
//! payload a client may read (`iat`, `exp`, the identity, the token's id,
//! the auth method), signed with HS256 under a key derived from the root
//! key. The key is never stored; its `kid` names which root key it comes
//! from, so during a root-key rotation tokens signed under the secondary
//! key still verify. A signature proves only that Latchkey issued the
//! token: the server still checks the token's row (revocation, TTL, uses,
//! trusted IPs), so revocation and use limits stay exact.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::crypto::RootKey;
use crate::{AccessError, Reason};

/// The longest JWT parsed: Latchkey's are about 500 bytes.
pub const MAX_JWT_LEN: usize = 4096;
/// `iss` of every access token Latchkey signs.
pub const ISSUER: &str = "latchkey";
/// `authTokenType` of an identity access token, as Infisical names it.
pub const IDENTITY_ACCESS_TOKEN: &str = "identityAccessToken";

const SIGNING_LABEL: &str = "latchkey access-token signing key v1";
const KID_LABEL: &str = "latchkey access-token key id v1";

/// How an identity logged in, as Infisical's `authMethod` claim names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// An admin created the token.
    TokenAuth,
    /// A client ID and client secret.
    UniversalAuth,
    /// A Kubernetes service-account JWT.
    KubernetesAuth,
}

impl AuthMethod {
    /// The claim's text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::TokenAuth => "token-auth",
            AuthMethod::UniversalAuth => "universal-auth",
            AuthMethod::KubernetesAuth => "kubernetes-auth",
        }
    }
}

/// The service account a Kubernetes login proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesSubject {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What the login proved beyond the identity (Infisical's `identityAuth`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityAuth {
    /// Set by a Kubernetes login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSubject>,
}

/// The payload of an access token, in Infisical's claim names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessClaims {
    /// The identity the token authenticates.
    pub identity_id: String,
    /// The token's id: its row, which revocation and uses are checked on.
    pub identity_access_token_id: Uuid,
    /// Always [`IDENTITY_ACCESS_TOKEN`].
    pub auth_token_type: String,
    /// How it was obtained.
    pub auth_method: AuthMethod,
    /// The Universal Auth client secret it was obtained with, else empty.
    #[serde(default)]
    pub client_secret_id: String,
    /// What a Kubernetes login proved.
    #[serde(default)]
    pub identity_auth: IdentityAuth,
    /// Always [`ISSUER`].
    pub iss: String,
    /// The token id again, as JWT consumers look for it.
    pub jti: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch); absent for a token that never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

impl AccessClaims {
    /// The claims of a token `id` of `identity_id`, issued at `iat`.
    #[must_use]
    pub fn new(
        identity_id: &str,
        id: Uuid,
        auth_method: AuthMethod,
        iat: i64,
        exp: Option<i64>,
    ) -> Self {
        Self {
            identity_id: identity_id.to_owned(),
            identity_access_token_id: id,
            auth_token_type: IDENTITY_ACCESS_TOKEN.to_owned(),
            auth_method,
            client_secret_id: String::new(),
            identity_auth: IdentityAuth::default(),
            iss: ISSUER.to_owned(),
            jti: id,
            iat,
            exp,
        }
    }
}

/// A presented JWT access token, parsed but not verified: nothing in it is
/// to be believed until [`AccessTokenKeys::verify`] accepts it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessJwt {
    raw: String,
    kid: String,
    claims: AccessClaims,
}

impl AccessJwt {
    /// Parses `raw` if it has the shape of a Latchkey access token: three
    /// base64url parts, an HS256 header with a `kid`, and the claims above.
    /// `None` when it is not a JWT at all; an error when it is one, but not
    /// one Latchkey issues.
    pub(crate) fn parse(raw: &str) -> Option<Result<Self, AccessError>> {
        if !looks_like_jwt(raw) {
            return None;
        }
        let malformed = |what: &str| {
            AccessError::new(
                Reason::TokenMalformed,
                format!("the token is a JWT but not a Latchkey access token: {what}"),
            )
        };
        Some((|| {
            if raw.len() > MAX_JWT_LEN {
                return Err(malformed("longer than 4096 characters"));
            }
            let data = jsonwebtoken::dangerous::insecure_decode::<AccessClaims>(raw)
                .map_err(|_| malformed("its header or claims do not decode"))?;
            if data.header.alg != Algorithm::HS256 {
                return Err(malformed("not signed with HS256"));
            }
            let kid = data.header.kid.ok_or_else(|| malformed("no kid"))?;
            if data.claims.auth_token_type != IDENTITY_ACCESS_TOKEN {
                return Err(malformed("not an identity access token"));
            }
            Ok(Self {
                raw: raw.to_owned(),
                kid,
                claims: data.claims,
            })
        })())
    }

    /// The token's id, as it claims.
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.claims.identity_access_token_id
    }

    /// Its claims, unverified.
    #[must_use]
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }
}

impl std::fmt::Debug for AccessJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessJwt")
            .field("id", &self.id())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Three non-empty base64url parts: the one shape no other token has.
fn looks_like_jwt(raw: &str) -> bool {
    let mut parts = 0;
    for part in raw.split('.') {
        parts += 1;
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    parts == 3
}

/// One signing key, derived from one root key.
#[derive(Clone)]
struct SigningKey {
    kid: String,
    key: [u8; 32],
}

impl SigningKey {
    fn derive(root: &RootKey) -> Self {
        Self {
            kid: hex::encode(&root.derive(KID_LABEL)[..8]),
            key: root.derive(SIGNING_LABEL),
        }
    }
}

/// The keys access tokens are signed with (the primary root key's) and
/// verified with (the primary's and, during a rotation, the secondary's).
#[derive(Clone)]
pub struct AccessTokenKeys {
    keys: Vec<SigningKey>,
}

impl AccessTokenKeys {
    /// The keys of `primary` and, during a rotation, `secondary`.
    #[must_use]
    pub fn derive(primary: &RootKey, secondary: Option<&RootKey>) -> Self {
        let mut keys = vec![SigningKey::derive(primary)];
        keys.extend(secondary.map(SigningKey::derive));
        Self { keys }
    }

    /// The `kid` new tokens are signed under.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// Signs `claims` under the primary key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, jsonwebtoken::errors::Error> {
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.key))
    }

    /// Checks `token`'s signature and its own `exp` against `now` (seconds
    /// since the epoch). A token signed under a key this service does not
    /// hold, or with any byte changed, is `TOKEN_INVALID`; past its `exp`,
    /// `TOKEN_EXPIRED`. Its row is the caller's to check next.
    pub fn verify(&self, token: &AccessJwt, now: i64) -> Result<(), AccessError> {
        self.verify_signature(token)?;
        check_exp(token, now)
    }

    /// Checks only `token`'s signature: enough to revoke it, which an
    /// expired token may still be.
    pub fn verify_signature(&self, token: &AccessJwt) -> Result<(), AccessError> {
        let Some(key) = self
            .keys
            .iter()
            .find(|k| bool::from(k.kid.as_bytes().ct_eq(token.kid.as_bytes())))
        else {
            return Err(AccessError::new(
                Reason::TokenInvalid,
                "the token was signed under a key this service does not hold (a root key \
                 rotated out?): log in again for a new one",
            ));
        };
        // The header and claims were decoded by `parse` (HS256 checked
        // there): what is left is the signature over exactly those bytes.
        let (message, signature) = token.raw.rsplit_once('.').unwrap_or_default();
        let signed = jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &DecodingKey::from_secret(&key.key),
            Algorithm::HS256,
        );
        if !matches!(signed, Ok(true)) {
            return Err(AccessError::new(
                Reason::TokenInvalid,
                "the token is not valid: check that it was copied whole, or log in again",
            ));
        }
        Ok(())
    }
}

/// Refuses a token past its own `exp` with `TOKEN_EXPIRED`.
pub fn check_exp(token: &AccessJwt, now: i64) -> Result<(), AccessError> {
    if token.claims.exp.is_some_and(|exp| exp <= now) {
        return Err(AccessError::new(
            Reason::TokenExpired,
            "this copy of the access token has expired: it was renewed since, and the renewal \
             returned the token to use",
        ));
    }
    Ok(())
}

impl std::fmt::Debug for AccessTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenKeys")
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
