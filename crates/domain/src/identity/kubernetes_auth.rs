//! Kubernetes Auth: an identity trusts a cluster's service-account token
//! issuer, and a workload logs in with the projected service-account JWT
//! its cluster gave it. Latchkey checks the JWT itself: the signature under
//! the issuer's keys (RS256 or ES256; never `none`, never a public key used
//! as an HMAC secret), the issuer, the audience, the expiry and not-before
//! (with a small skew), and the namespace and service account. A refusal
//! names the check that failed and never echoes the JWT.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::TokenAuthChanges;
use super::TokenAuthConfig;
use crate::model::IdentityId;
use crate::token::jwt::KubernetesSubject;
use crate::{AccessError, InvalidInput, Reason};

/// The longest service-account JWT read (a projected token is about 1 KB).
pub const MAX_JWT_BYTES: usize = 16 * 1024;
/// The longest key text (JWKS or PEM) an identity may hold.
pub const MAX_KEYS_BYTES: usize = 64 * 1024;
/// The most entries in each allowed list, and the longest entry.
pub const MAX_ALLOWED: usize = 64;
/// Longest issuer, namespace, name or audience, in bytes.
pub const MAX_ENTRY_BYTES: usize = 512;
/// How far `exp` and `nbf` may be off from this service's clock, in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// An identity's Kubernetes Auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesAuthConfig {
    /// The identity.
    pub identity_id: IdentityId,
    /// The issuer the cluster signs service-account tokens as
    /// (kube-apiserver's `--service-account-issuer`), matched exactly.
    pub issuer: String,
    /// The issuer's public keys: a JWKS document or PEM public keys.
    pub keys: String,
    /// Audiences of which a token must name one; empty accepts any.
    pub allowed_audiences: Vec<String>,
    /// Namespaces a token's service account may be in; empty accepts any.
    pub allowed_namespaces: Vec<String>,
    /// Service-account names a token may be for; empty accepts any.
    pub allowed_names: Vec<String>,
    /// The access tokens' TTL, max TTL, use limit and trusted IPs.
    pub access: TokenAuthConfig,
    /// Attach time.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Kubernetes Auth fields to change; `None` leaves a field as it is. The
/// allowed lists are Infisical's comma-separated text, `""` accepting any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesAuthChanges {
    /// `issuer`.
    pub issuer: Option<String>,
    /// `keys`: JWKS or PEM.
    pub keys: Option<String>,
    /// `allowed_audiences`, comma-separated.
    pub allowed_audiences: Option<String>,
    /// `allowed_namespaces`, comma-separated.
    pub allowed_namespaces: Option<String>,
    /// `allowed_names`, comma-separated.
    pub allowed_names: Option<String>,
    /// The access-token settings.
    pub access: TokenAuthChanges,
}

impl KubernetesAuthConfig {
    /// `self` with `changes` applied, validated as a whole: an issuer and
    /// keys that parse are required.
    pub fn apply(&self, changes: &KubernetesAuthChanges) -> Result<Self, InvalidInput> {
        let list = |given: &Option<String>, current: &Vec<String>, field: &str| match given {
            None => Ok(current.clone()),
            Some(text) => parse_list(text, field),
        };
        let next = Self {
            issuer: changes
                .issuer
                .as_deref()
                .map_or_else(|| self.issuer.clone(), |i| i.trim().to_owned()),
            keys: changes
                .keys
                .as_deref()
                .map_or_else(|| self.keys.clone(), |k| k.trim().to_owned()),
            allowed_audiences: list(
                &changes.allowed_audiences,
                &self.allowed_audiences,
                "allowed_audiences",
            )?,
            allowed_namespaces: list(
                &changes.allowed_namespaces,
                &self.allowed_namespaces,
                "allowed_namespaces",
            )?,
            allowed_names: list(&changes.allowed_names, &self.allowed_names, "allowed_names")?,
            access: self.access.apply(&changes.access)?,
            ..self.clone()
        };
        if next.issuer.is_empty() || next.issuer.len() > MAX_ENTRY_BYTES {
            return Err(InvalidInput::new(
                "issuer",
                "required: the cluster's service-account issuer (kube-apiserver --service-account-issuer), at most 512 bytes",
            ));
        }
        ServiceAccountKeys::parse(&next.keys)?;
        Ok(next)
    }
}

/// Parses Infisical's comma-separated list (`""` is empty: any).
fn parse_list(text: &str, field: &str) -> Result<Vec<String>, InvalidInput> {
    let items: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.len() > MAX_ALLOWED
        || items
            .iter()
            .any(|s| s.len() > MAX_ENTRY_BYTES || s.chars().any(char::is_control))
    {
        return Err(InvalidInput::new(
            field,
            "at most 64 comma-separated entries of at most 512 printable bytes",
        ));
    }
    Ok(items)
}

/// An issuer's verification keys, parsed from a JWKS document or PEM
/// public keys (RSA or EC).
#[derive(Clone)]
pub struct ServiceAccountKeys {
    keys: Vec<(Option<String>, DecodingKey)>,
}

impl std::fmt::Debug for ServiceAccountKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKeys")
            .field("count", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKeys {
    /// Parses `text`: a JWKS document (`{"keys": [...]}`, RSA and EC keys;
    /// a symmetric key is refused) or one or more PEM public keys.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let bad = |why: &str| InvalidInput::new("keys", why);
        let text = text.trim();
        if text.is_empty() {
            return Err(bad(
                "required: the issuer's public keys, as JWKS (the cluster's /openid/v1/jwks) or PEM",
            ));
        }
        if text.len() > MAX_KEYS_BYTES {
            return Err(bad("at most 64 KiB"));
        }
        let mut keys = Vec::new();
        if text.starts_with('{') {
            let set: JwkSet = serde_json::from_str(text).map_err(|_| bad("not a JWKS document"))?;
            for jwk in &set.keys {
                if !matches!(
                    jwk.algorithm,
                    AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
                ) {
                    return Err(bad(
                        "holds a key that is neither RSA nor EC: only public keys verify service-account tokens",
                    ));
                }
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|_| bad("holds a key that does not parse"))?;
                keys.push((jwk.common.key_id.clone(), key));
            }
        } else {
            for block in pem_blocks(text) {
                let key = DecodingKey::from_rsa_pem(block.as_bytes())
                    .or_else(|_| DecodingKey::from_ec_pem(block.as_bytes()))
                    .map_err(|_| bad("holds a PEM block that is not an RSA or EC public key"))?;
                keys.push((None, key));
            }
        }
        if keys.is_empty() {
            return Err(bad("holds no key"));
        }
        Ok(Self { keys })
    }

    /// Checks a service-account `jwt` against `config` at `now` (seconds
    /// since the epoch) and returns whose it is.
    pub fn verify(
        &self,
        config: &KubernetesAuthConfig,
        jwt: &str,
        now: i64,
    ) -> Result<KubernetesSubject, AccessError> {
        let refused = |why: String| {
            AccessError::new(
                Reason::TokenInvalid,
                format!("service-account token refused: {why}"),
            )
        };
        let jwt = jwt.trim();
        if jwt.is_empty() || jwt.len() > MAX_JWT_BYTES {
            return Err(AccessError::new(
                Reason::TokenMalformed,
                "service-account token refused: not a JWT of at most 16 KiB",
            ));
        }
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| {
            AccessError::new(
                Reason::TokenMalformed,
                "service-account token refused: not a JWT signed with RS256 or ES256 (unsigned tokens are never accepted)",
            )
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(refused(format!(
                "signed with {:?}; only RS256 and ES256 are accepted",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        // Times, issuer and audience are checked below against this
        // service's clock and the configuration, each naming itself.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let candidates = self
            .keys
            .iter()
            .filter(|(kid, _)| match (&header.kid, kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            });
        let mut claims = None;
        for (_, key) in candidates {
            if let Ok(data) = jsonwebtoken::decode::<ServiceAccountClaims>(jwt, key, &validation) {
                claims = Some(data.claims);
                break;
            }
        }
        let claims = claims.ok_or_else(|| {
            refused("the signature does not verify under the issuer's keys".to_owned())
        })?;
        if claims.iss.as_deref() != Some(config.issuer.as_str()) {
            return Err(refused(format!(
                "the issuer is not {:?}, the one configured",
                config.issuer
            )));
        }
        let Some(exp) = claims.exp else {
            return Err(refused(
                "it has no expiry: use a projected service-account token".to_owned(),
            ));
        };
        if exp + CLOCK_SKEW_SECONDS <= now {
            return Err(AccessError::new(
                Reason::TokenExpired,
                "service-account token refused: it has expired",
            ));
        }
        if claims.nbf.is_some_and(|nbf| nbf - CLOCK_SKEW_SECONDS > now) {
            return Err(refused("it is not valid yet (nbf)".to_owned()));
        }
        if !config.allowed_audiences.is_empty()
            && !claims
                .aud
                .iter()
                .any(|a| config.allowed_audiences.contains(a))
        {
            return Err(refused(format!(
                "its audience is not one of those allowed ({})",
                config.allowed_audiences.join(", ")
            )));
        }
        let subject = claims.subject().ok_or_else(|| {
            refused(
                "it names no service account (sub system:serviceaccount:<namespace>:<name>)"
                    .to_owned(),
            )
        })?;
        if !config.allowed_namespaces.is_empty()
            && !config.allowed_namespaces.contains(&subject.namespace)
        {
            return Err(AccessError::new(
                Reason::PermissionDenied,
                format!(
                    "service-account token refused: namespace {:?} is not allowed",
                    subject.namespace
                ),
            ));
        }
        if !config.allowed_names.is_empty() && !config.allowed_names.contains(&subject.name) {
            return Err(AccessError::new(
                Reason::PermissionDenied,
                format!(
                    "service-account token refused: service account {:?} is not allowed",
                    subject.name
                ),
            ));
        }
        Ok(subject)
    }
}

/// The PEM blocks in `text`, each with its armour.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
        if line.starts_with("-----END ") {
            blocks.extend(current.take());
        }
    }
    blocks
}

/// The claims a kube-apiserver puts in a projected service-account token.
#[derive(Debug, Deserialize)]
struct ServiceAccountClaims {
    iss: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Vec<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    sub: Option<String>,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<KubernetesClaim>,
}

#[derive(Debug, Deserialize)]
struct KubernetesClaim {
    namespace: Option<String>,
    serviceaccount: Option<NamedClaim>,
}

#[derive(Debug, Deserialize)]
struct NamedClaim {
    name: Option<String>,
}

impl ServiceAccountClaims {
    /// The service account, from `kubernetes.io` and `sub`, which must agree.
    fn subject(&self) -> Option<KubernetesSubject> {
        let from_sub = self.sub.as_deref().and_then(|sub| {
            let rest = sub.strip_prefix("system:serviceaccount:")?;
            let (namespace, name) = rest.split_once(':')?;
            (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then(|| {
                KubernetesSubject {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                }
            })
        })?;
        if let Some(k) = &self.kubernetes {
            let name = k.serviceaccount.as_ref().and_then(|s| s.name.as_deref());
            if k.namespace
                .as_deref()
                .is_some_and(|n| n != from_sub.namespace)
                || name.is_some_and(|n| n != from_sub.name)
            {
                return None;
            }
        }
        Some(from_sub)
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(a)) => vec![a],
        Some(OneOrMany::Many(a)) => a,
    })
}

#[cfg(test)]
mod tests;
