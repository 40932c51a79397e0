//! Infisical's machine-identity endpoints that take no bearer token: the
//! Universal Auth login `POST /api/v1/auth/universal-auth/login` (with
//! `{"clientId", "clientSecret"}`), the Kubernetes Auth login
//! `POST /api/v1/auth/kubernetes-auth/login` (with `{"identityId", "jwt"}`), and the renew and revoke of an access
//! token, `POST /api/v1/auth/token/renew` and `POST /api/v1/auth/token/revoke`
//! (with `{"accessToken"}`). The auth service logs in, renews or revokes
//! with its own rules (failure limits, max TTL, trusted IPs of the
//! client's address, revoked and expired credentials).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use latchkey_domain::identity::kubernetes_auth::MAX_JWT_BYTES;
use latchkey_domain::ports::{BearerToken, LoginCredentials};
use serde::Serialize;

use super::Http;
use super::audit::CallTrail;
use super::error::{HttpError, invalid};
use super::extract::{Body, TOKEN_BODY_BYTES};
use super::params::Params;
use super::reply::json;
use crate::app::Caller;

/// A Kubernetes login's body: a service-account JWT and an identity id.
const KUBERNETES_LOGIN_BODY_BYTES: usize = MAX_JWT_BYTES + 1024;

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
    let credentials = LoginCredentials::UniversalAuth {
        client_id: required(&params, "clientId", "the identity's client ID")?,
        client_secret: required(&params, "clientSecret", "a client secret")?,
    };
    login(&http, &trail, credentials).await
}

/// `POST /api/v1/auth/kubernetes-auth/login`, `{identityId, jwt}`: answers
/// as a renewal does.
pub(super) async fn login_kubernetes_auth(
    State(http): State<Arc<Http>>,
    CallTrail(trail): CallTrail,
    Body(body): Body<KUBERNETES_LOGIN_BODY_BYTES>,
) -> Result<Response, HttpError> {
    let params = Params::from_body(&body, Vec::new())?;
    let credentials = LoginCredentials::KubernetesAuth {
        identity_id: required(&params, "identityId", "the identity to log in as")?,
        jwt: required(&params, "jwt", "the workload's service-account token")?,
    };
    login(&http, &trail, credentials).await
}

fn required(params: &Params, field: &str, what: &str) -> Result<String, HttpError> {
    params
        .get(&[field])
        .map(str::to_owned)
        .ok_or_else(|| invalid(field, format!("required: {what}")))
}

async fn login(
    http: &Http,
    trail: &latchkey_service_kit::audit::Trail,
    credentials: LoginCredentials,
) -> Result<Response, HttpError> {
    let issued = http.app.login(trail, credentials).await?;
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
