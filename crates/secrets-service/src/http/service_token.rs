//! `GET /api/v2/service-token`: what the presented service token is, as
//! Infisical's CLI, operator and older SDKs read it first (to learn the
//! project, and for the E2EE clients the project key under the token's key
//! part). Uses none of the token's uses.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::Http;
use super::error::HttpError;
use super::reply::{json, time};
use crate::app::Caller;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Scope<'a> {
    environment: &'a str,
    secret_path: &'a str,
}

/// The fields every client of the endpoint requires: `projectId` (Python)
/// and `workspace` (Node, Go) both name the project.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Details<'a> {
    id: &'a str,
    #[serde(rename = "_id")]
    underscore_id: &'a str,
    #[serde(rename = "__v")]
    revision: u8,
    name: &'a str,
    project_id: &'a str,
    workspace: &'a str,
    scopes: Vec<Scope<'a>>,
    permissions: Vec<&'static str>,
    last_used: Option<()>,
    expires_at: Option<String>,
    encrypted_key: String,
    iv: String,
    tag: String,
    created_by: &'static str,
    created_at: String,
    updated_at: String,
}

/// The handler.
pub(super) async fn describe(
    State(http): State<Arc<Http>>,
    caller: Caller,
) -> Result<Response, HttpError> {
    let token = http.app.describe_token(&caller).await?;
    let key = &token.encrypted_project_key;
    let permissions = [("read", token.read), ("write", token.write)]
        .into_iter()
        .filter_map(|(name, has)| has.then_some(name))
        .collect();
    Ok(json(&Details {
        id: &token.id,
        underscore_id: &token.id,
        revision: 0,
        name: &token.name,
        project_id: token.project_id.as_str(),
        workspace: token.project_id.as_str(),
        scopes: token
            .scopes
            .iter()
            .map(|(environment, secret_path)| Scope {
                environment,
                secret_path,
            })
            .collect(),
        permissions,
        last_used: None,
        expires_at: token.expires_at.map(time),
        encrypted_key: STANDARD.encode(&key.ciphertext),
        iv: STANDARD.encode(&key.iv),
        tag: STANDARD.encode(&key.tag),
        created_by: "latchkey",
        created_at: time(token.created_at),
        updated_at: time(token.created_at),
    }))
}
