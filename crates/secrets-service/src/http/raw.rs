//! Plaintext secrets for projects without end-to-end encryption:
//! `/api/v3/secrets/raw[/{name}]` (the SDKs, the operator through go-sdk,
//! CLIs from 2024-07) and `/api/v4/secrets[/{name}]` (current CLIs), with
//! the same fields and the same answers. The server decrypts with the
//! project key the auth service grants for the call, as `*Raw` over gRPC.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_domain::model::{PlainSecret, Secret, WriteMode};
use serde::Serialize;

use super::Http;
use super::error::{HttpError, invalid};
use super::extract::{Body, WRITE_BODY_BYTES};
use super::params::{Params, secret_name};
use super::reply::{Listing, One, Pairs, json, json_with_etag, query, time};
use crate::app::Caller;

type Shared = State<Arc<Http>>;
type WriteBody = Body<WRITE_BODY_BYTES>;

/// A secret as Infisical's clients decode it (the union of the fields the
/// Python SDK requires and the Go structs read).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RawSecret<'a> {
    id: &'a str,
    #[serde(rename = "_id")]
    underscore_id: &'a str,
    workspace: &'a str,
    environment: &'a str,
    version: u64,
    r#type: &'static str,
    secret_key: &'a str,
    secret_value: &'a str,
    secret_comment: &'static str,
    secret_path: &'a str,
    secret_value_hidden: bool,
    skip_multiline_encoding: bool,
    secret_reminder_note: Option<()>,
    secret_reminder_repeat_days: Option<()>,
    secret_metadata: [(); 0],
    tags: [(); 0],
    created_at: String,
    updated_at: String,
}

impl<'a> RawSecret<'a> {
    /// `value` is `None` for an answer that must not carry it (a delete).
    fn new(secret: &'a Secret, value: Option<&'a str>) -> Self {
        RawSecret {
            id: &secret.id,
            underscore_id: &secret.id,
            workspace: secret.key.project_id.as_str(),
            environment: secret.key.environment.as_str(),
            version: secret.version,
            r#type: "shared",
            secret_key: secret.key.name.as_str(),
            secret_value: value.unwrap_or(""),
            secret_comment: "",
            secret_path: secret.key.path.as_str(),
            secret_value_hidden: value.is_none(),
            skip_multiline_encoding: false,
            secret_reminder_note: None,
            secret_reminder_repeat_days: None,
            secret_metadata: [],
            tags: [],
            created_at: time(secret.created_at),
            updated_at: time(secret.updated_at),
        }
    }

    fn plain(plain: &'a PlainSecret) -> Self {
        Self::new(&plain.secret, Some(&plain.value))
    }
}

/// `GET .../secrets/raw` and `GET /api/v4/secrets`: one folder, or it and
/// the folders below it that the token may read (`recursive=true`).
pub(super) async fn list(
    State(http): Shared,
    caller: Caller,
    headers: HeaderMap,
    pairs: Pairs,
) -> Result<Response, HttpError> {
    let params = Params::from_query(query(pairs)?);
    let folder = params.folder()?;
    let recursive = params.flag(&["recursive"], false)?;
    // Validated, then moot: there are no imports to include.
    params.flag(&["include_imports", "includeImports"], false)?;
    let (_, plain) = http.app.list_raw(&caller, &folder, recursive).await?;
    let body = Listing {
        secrets: plain.iter().map(RawSecret::plain).collect(),
        imports: [],
    };
    Ok(json_with_etag(&headers, &body))
}

/// `GET .../secrets/raw/{name}`; `type=personal` is served the shared
/// secret, the only kind Latchkey has.
pub(super) async fn get(
    State(http): Shared,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    pairs: Pairs,
) -> Result<Response, HttpError> {
    let params = Params::from_query(query(pairs)?);
    let (folder, name) = (params.folder()?, secret_name(&name)?);
    let (_, plain) = http.app.get_raw(&caller, &folder, &name).await?;
    Ok(json_with_etag(
        &headers,
        &One {
            secret: RawSecret::plain(&plain),
        },
    ))
}

/// `POST .../secrets/raw/{name}`: creates the secret; `400 ALREADY_EXISTS`
/// if it exists, as Infisical answers.
pub(super) async fn create(
    state: Shared,
    caller: Caller,
    name: Path<String>,
    pairs: Pairs,
    body: WriteBody,
) -> Result<Response, HttpError> {
    write(state, caller, name, pairs, body, false).await
}

/// `PATCH .../secrets/raw/{name}`: writes the next version of an existing
/// secret (`404` if there is none); renaming is refused.
pub(super) async fn update(
    state: Shared,
    caller: Caller,
    name: Path<String>,
    pairs: Pairs,
    body: WriteBody,
) -> Result<Response, HttpError> {
    write(state, caller, name, pairs, body, true).await
}

async fn write(
    State(http): Shared,
    caller: Caller,
    Path(name): Path<String>,
    pairs: Pairs,
    Body(body): WriteBody,
    update: bool,
) -> Result<Response, HttpError> {
    let params = Params::from_body(&body, query(pairs)?)?;
    let (folder, name) = (params.folder()?, secret_name(&name)?);
    params.shared_only()?;
    if params.get(&["secretComment"]).is_some() {
        return Err(invalid(
            "secretComment",
            "Latchkey does not store comments; omit it or send an empty one",
        ));
    }
    if update && params.get(&["newSecretName"]).is_some() {
        return Err(invalid(
            "newSecretName",
            "renaming is not supported; create the new name and delete the old one",
        ));
    }
    let value = params
        .value("secretValue")
        .ok_or_else(|| invalid("secretValue", "required: the value to store (may be empty)"))?;
    let mode = if update {
        WriteMode::UpdateOnly
    } else {
        WriteMode::CreateOnly
    };
    let secret = http
        .app
        .set_raw_as(&caller, &folder, &name, value, mode)
        .await?;
    Ok(json(&One {
        secret: RawSecret::new(&secret, Some(value)),
    }))
}

/// `DELETE .../secrets/raw/{name}` (parameters in the body or the query):
/// answers with the deleted secret, its value hidden (deleting needs only
/// write permission, which does not read).
pub(super) async fn delete(
    State(http): Shared,
    caller: Caller,
    Path(name): Path<String>,
    pairs: Pairs,
    Body(body): WriteBody,
) -> Result<Response, HttpError> {
    let params = Params::from_body(&body, query(pairs)?)?;
    let (folder, name) = (params.folder()?, secret_name(&name)?);
    params.shared_only()?;
    let deleted = http.app.delete(&caller, &folder, &name).await?;
    Ok(json(&One {
        secret: RawSecret::new(&deleted, None),
    }))
}
