//! Infisical's Token Auth endpoints that the SDKs call on a machine
//! identity's access token: `POST /api/v1/auth/token/renew` and
//! `POST /api/v1/auth/token/revoke`, each with `{"accessToken": ...}` in the
//! body. The auth service renews or revokes, with its own rules (max TTL,
//! trusted IPs of the client's address, revoked and expired tokens).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use latchkey_domain::ports::BearerToken;
use serde::Serialize;

use super::Http;
use super::audit::CallTrail;
use super::error::{HttpError, invalid};
use super::extract::{Body, TOKEN_BODY_BYTES};
use super::params::Params;
use super::reply::json;
use crate::app::Caller;

fn access_token(body: &Bytes) -> Result<BearerToken, HttpError> {
    let params = Params::from_body(body, Vec::new())?;
    let token = params
        .get(&["accessToken"])
        .ok_or_else(|| invalid("accessToken", "required: the access token"))?;
    Ok(BearerToken::new(token))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenewReply<'a> {
    access_token: &'a str,
    expires_in: i64,
    #[serde(rename = "accessTokenMaxTTL")]
    access_token_max_ttl: i64,
    token_type: &'static str,
}

/// `POST /api/v1/auth/token/renew`.
pub(super) async fn renew(
    State(http): State<Arc<Http>>,
    CallTrail(trail): CallTrail,
    Body(body): Body<TOKEN_BODY_BYTES>,
) -> Result<Response, HttpError> {
    let caller = Caller::new(access_token(&body)?, trail);
    let renewed = http.app.renew_access_token(&caller).await?;
    Ok(json(&RenewReply {
        access_token: renewed.access_token.expose(),
        expires_in: renewed.expires_in,
        access_token_max_ttl: renewed.max_ttl,
        token_type: "Bearer",
    }))
}

#[derive(Serialize)]
struct RevokeReply {
    message: &'static str,
}

/// `POST /api/v1/auth/token/revoke`.
pub(super) async fn revoke(
    State(http): State<Arc<Http>>,
    CallTrail(trail): CallTrail,
    Body(body): Body<TOKEN_BODY_BYTES>,
) -> Result<Response, HttpError> {
    let caller = Caller::new(access_token(&body)?, trail);
    http.app.revoke_access_token(&caller).await?;
    Ok(json(&RevokeReply {
        message: "Successfully revoked access token",
    }))
}
