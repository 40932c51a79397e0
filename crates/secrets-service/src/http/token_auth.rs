//! Infisical's machine-identity endpoints that take no bearer token: the
//! Universal Auth login `POST /api/v1/auth/universal-auth/login` (with
//! `{"clientId", "clientSecret"}`), and the renew and revoke of an access
//! token, `POST /api/v1/auth/token/renew` and `POST /api/v1/auth/token/revoke`
//! (with `{"accessToken"}`). The auth service logs in, renews or revokes
//! with its own rules (failure limits, max TTL, trusted IPs of the
//! client's address, revoked and expired credentials).

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

/// `POST /api/v1/auth/universal-auth/login` (with or without a trailing
/// slash: Infisical's CLI sends one): answers as a renewal does.
pub(super) async fn login_universal_auth(
    State(http): State<Arc<Http>>,
    CallTrail(trail): CallTrail,
    Body(body): Body<TOKEN_BODY_BYTES>,
) -> Result<Response, HttpError> {
    let params = Params::from_body(&body, Vec::new())?;
    let client_id = params
        .get(&["clientId"])
        .ok_or_else(|| invalid("clientId", "required: the identity's client ID"))?;
    let client_secret = params
        .get(&["clientSecret"])
        .ok_or_else(|| invalid("clientSecret", "required: a client secret"))?;
    let issued = http
        .app
        .login_universal_auth(&trail, client_id, client_secret)
        .await?;
    Ok(json(&RenewReply {
        access_token: issued.access_token.expose(),
        expires_in: issued.expires_in,
        access_token_max_ttl: issued.max_ttl,
        token_type: "Bearer",
    }))
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
