//! The encrypted reads of Infisical's older clients (PyPI `infisical`
//! 1.6.0, npm `infisical-node`, CLIs and operators before 2024-07):
//! `GET /api/v3/secrets` and `GET /api/v3/secrets/{name}`. They decrypt on
//! the client with the project key from `GET /api/v2/service-token`, in
//! Infisical's envelope: no associated data, 16-byte IVs, the tag apart.
//!
//! Latchkey binds its own ciphertexts to their location (associated data
//! these clients cannot check), so the server opens each secret as a raw
//! read does and re-encrypts its name, value and (empty) comment. That
//! needs the project key in the service, so it is served only for projects
//! without end-to-end encryption, as the raw reads are. Each version of a
//! secret is sealed once per project key and the envelope reused (so
//! polling clients cost no encryptions, and get a stable `ETag`); every
//! seal is counted against the key's 2^32 budget with the auth service.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey_domain::crypto::{Sealed, WireKey};
use latchkey_domain::model::PlainSecret;
use latchkey_domain::ports::Grant;
use latchkey_domain::{AccessError, Reason};
use serde::Serialize;

use super::Http;
use super::error::HttpError;
use super::params::{Params, secret_name};
use super::reply::{Listing, One, Pairs, json_with_etag, query, time};
use crate::app::{Caller, raw_project_key};
use crate::error::SecretsError;

/// One secret in Infisical's encrypted form.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Encrypted<'a> {
    id: &'a str,
    #[serde(rename = "_id")]
    underscore_id: &'a str,
    #[serde(rename = "__v")]
    revision: u8,
    version: u64,
    workspace: &'a str,
    environment: &'a str,
    r#type: &'static str,
    user: Option<()>,
    /// Latchkey has no folder ids; the path names the folder.
    folder_id: &'a str,
    tags: [(); 0],
    secret_key_ciphertext: String,
    #[serde(rename = "secretKeyIV")]
    secret_key_iv: String,
    secret_key_tag: String,
    secret_value_ciphertext: String,
    #[serde(rename = "secretValueIV")]
    secret_value_iv: String,
    secret_value_tag: String,
    secret_comment_ciphertext: String,
    #[serde(rename = "secretCommentIV")]
    secret_comment_iv: String,
    secret_comment_tag: String,
    algorithm: &'static str,
    key_encoding: &'static str,
    skip_multiline_encoding: bool,
    created_at: String,
    updated_at: String,
}

fn b64(sealed: &Sealed) -> (String, String, String) {
    (
        STANDARD.encode(&sealed.ciphertext),
        STANDARD.encode(&sealed.iv),
        STANDARD.encode(&sealed.tag),
    )
}

/// A secret version's name, value and comment sealed for these clients.
type Envelopes = [(String, String, String); 3];

/// The encryptions one [`Envelopes`] takes.
const SEALS_PER_SECRET: u64 = 3;

/// Envelopes already made, by secret id, version and project key, up to a
/// byte budget (least recently used dropped first). Keyed by content, never
/// stale: a new version or a new key is a new entry.
#[derive(Debug)]
pub(super) struct Sealed4Infisical {
    entries: std::sync::Mutex<(lru::LruCache<SealKey, Arc<Envelopes>>, usize)>,
    budget: usize,
}

type SealKey = (String, u64, [u8; 8]);

impl Sealed4Infisical {
    /// At most `budget` bytes of envelopes.
    pub(super) fn new(budget: usize) -> Self {
        Self {
            entries: std::sync::Mutex::new((lru::LruCache::unbounded(), 0)),
            budget,
        }
    }

    /// `plain`'s envelopes under `key`, sealed now (counted in `sealed`) or reused.
    fn envelopes(
        &self,
        key: &WireKey,
        plain: &PlainSecret,
        sealed: &mut u64,
    ) -> Result<Arc<Envelopes>, HttpError> {
        let id = (plain.secret.id.clone(), plain.secret.version, key_id(key));
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = entries.0.get(&id) {
            return Ok(found.clone());
        }
        let seal = |text: &str| {
            key.seal_for_infisical(text.as_bytes(), &mut rand::rngs::OsRng)
                .map(|s| b64(&s))
                .map_err(|e| {
                    HttpError(SecretsError::Internal(format!(
                        "re-encrypting for an Infisical client: {e}"
                    )))
                })
        };
        // Some CLIs fail a whole read when the comment does not decrypt, so
        // an empty comment is a real encryption too.
        let made: Arc<Envelopes> = Arc::new([
            seal(plain.secret.key.name.as_str())?,
            seal(&plain.value)?,
            seal("")?,
        ]);
        *sealed += SEALS_PER_SECRET;
        let weight = weight(&made) + id.0.len();
        if weight <= self.budget {
            entries.0.put(id, made.clone());
            entries.1 += weight;
            while entries.1 > self.budget {
                match entries.0.pop_lru() {
                    Some((old_id, old)) => {
                        entries.1 = entries.1.saturating_sub(weight_of(&old_id, &old));
                    }
                    None => break,
                }
            }
        }
        Ok(made)
    }
}

fn weight(envelopes: &Envelopes) -> usize {
    envelopes
        .iter()
        .map(|(ct, iv, tag)| ct.len() + iv.len() + tag.len())
        .sum::<usize>()
        + 64
}

fn weight_of(id: &SealKey, envelopes: &Envelopes) -> usize {
    weight(envelopes) + id.0.len()
}

/// A short, one-way name for a project key: envelopes made under an old
/// key are never served under a new one.
fn key_id(key: &WireKey) -> [u8; 8] {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.expose().as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

fn encrypted<'a>(envelopes: &Envelopes, plain: &'a PlainSecret) -> Encrypted<'a> {
    let secret = &plain.secret;
    let [
        (key_ct, key_iv, key_tag),
        (value_ct, value_iv, value_tag),
        (comment_ct, comment_iv, comment_tag),
    ] = envelopes.clone();
    Encrypted {
        id: &secret.id,
        underscore_id: &secret.id,
        revision: 0,
        version: secret.version,
        workspace: secret.key.project_id.as_str(),
        environment: secret.key.environment.as_str(),
        r#type: "shared",
        user: None,
        folder_id: secret.key.path.as_str(),
        tags: [],
        secret_key_ciphertext: key_ct,
        secret_key_iv: key_iv,
        secret_key_tag: key_tag,
        secret_value_ciphertext: value_ct,
        secret_value_iv: value_iv,
        secret_value_tag: value_tag,
        secret_comment_ciphertext: comment_ct,
        secret_comment_iv: comment_iv,
        secret_comment_tag: comment_tag,
        algorithm: "aes-256-gcm",
        key_encoding: "utf8",
        skip_multiline_encoding: false,
        created_at: time(secret.created_at),
        updated_at: time(secret.updated_at),
    }
}

/// `plain` in Infisical's encrypted form under the grant's key, counting
/// new seals with the auth service.
async fn encrypt_all<'a>(
    http: &Http,
    grant: &Grant,
    plain: &'a [PlainSecret],
) -> Result<Vec<Encrypted<'a>>, HttpError> {
    let key = raw_project_key(grant)?;
    let mut sealed = 0;
    let mut out = Vec::with_capacity(plain.len());
    for p in plain {
        let envelopes = http.seals.envelopes(key, p, &mut sealed)?;
        out.push(encrypted(&envelopes, p));
    }
    if sealed > 0
        && let Err(e) = http.app.count_encryptions(&grant.project_id, sealed).await
    {
        // The answer is made; what failed is the bookkeeping, logged for
        // the operator. The budget is 2^32; a lost count is a few.
        tracing::warn!(error = %e, encryptions = sealed, "counting re-encryptions with the auth service failed");
    }
    Ok(out)
}

/// An end-to-end encrypted project's refusal, saying why for these clients.
fn explained(err: SecretsError) -> HttpError {
    match err {
        SecretsError::Denied(e) if e.reason == Reason::E2eeEnabled => {
            HttpError(SecretsError::Denied(AccessError::new(
                Reason::E2eeEnabled,
                "this project is end-to-end encrypted: Latchkey binds its ciphertexts to their \
                 location, which Infisical's encrypted GET /api/v3/secrets clients cannot check, \
                 and re-encrypting them would need the project key on the server; read it with \
                 Latchkey's gRPC API (latchkey secrets, latchkey-client) instead",
            )))
        }
        other => HttpError(other),
    }
}

/// `GET /api/v3/secrets`: one folder, encrypted per response.
pub(super) async fn list(
    State(http): State<Arc<Http>>,
    caller: Caller,
    headers: HeaderMap,
    pairs: Pairs,
) -> Result<Response, HttpError> {
    let params = Params::from_query(query(pairs)?);
    let folder = params.folder()?;
    let recursive = params.flag(&["recursive"], false)?;
    params.flag(&["include_imports", "includeImports"], false)?;
    let (grant, plain) = http
        .app
        .list_raw(&caller, &folder, recursive)
        .await
        .map_err(explained)?;
    let secrets = encrypt_all(&http, &grant, &plain).await?;
    Ok(json_with_etag(
        &headers,
        &Listing {
            secrets,
            imports: [],
        },
    ))
}

/// `GET /api/v3/secrets/{name}`; `type=personal` (these clients' default)
/// is served the shared secret, the only kind Latchkey has.
pub(super) async fn get(
    State(http): State<Arc<Http>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    pairs: Pairs,
) -> Result<Response, HttpError> {
    let params = Params::from_query(query(pairs)?);
    let (folder, name) = (params.folder()?, secret_name(&name)?);
    let (grant, plain) = http
        .app
        .get_raw(&caller, &folder, &name)
        .await
        .map_err(explained)?;
    let secret = encrypt_all(&http, &grant, std::slice::from_ref(&plain))
        .await?
        .pop()
        .ok_or_else(|| HttpError(SecretsError::Internal("no envelope made".to_owned())))?;
    Ok(json_with_etag(&headers, &One { secret }))
}
