//! Machine identities with Token Auth, end to end, on SQLite and PostgreSQL:
//! a token's [`lifecycle`], what its identity may [`access`], and its use
//! [`limits`]. The helpers below serve them all.

use chrono::Duration;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_test_support::{Backend, Stack, assert_denied, backend_tests, reason, with_token};
use tonic::Code;
use tonic_types::StatusExt;

mod access;
mod jwt;
mod kubernetes_auth;
mod lifecycle;
mod limits;
mod universal_auth;

// ---- helpers ---------------------------------------------------------------

/// `Authorize` of a raw read of `dev:/app` in `project`, the call these
/// scenarios make with an identity's token; refine it before `send`.
fn app_read(stack: &Stack, token: &str, project: &str) -> latchkey_test_support::AuthorizeCall {
    stack.authorize(token).project(project).path("/app").raw()
}

async fn read(
    stack: &Stack,
    token: &str,
    project: &str,
    path: &str,
    name: &str,
) -> Result<String, tonic::Status> {
    stack
        .secrets_client()
        .await
        .get_secret_raw(with_token(
            secrets_pb::GetSecretRequest {
                project_id: project.to_owned(),
                environment: "dev".into(),
                secret_path: path.into(),
                name: name.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().secret.unwrap().value)
}

async fn renew(
    stack: &Stack,
    token: &str,
) -> Result<auth_pb::RenewAccessTokenResponse, tonic::Status> {
    stack
        .auth_client()
        .await
        .renew_access_token(auth_pb::RenewAccessTokenRequest {
            access_token: token.to_owned(),
            client_ip: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Revokes `token` as its holder does, presenting it.
async fn revoke(
    stack: &Stack,
    token: &str,
) -> Result<auth_pb::RevokeAccessTokenResponse, tonic::Status> {
    stack
        .auth_client()
        .await
        .revoke_access_token(auth_pb::RevokeAccessTokenRequest {
            access_token: token.to_owned(),
            token_id: String::new(),
            client_ip: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// An identity with Token Auth `config` (identity id filled in) and `role` in `project`.
async fn identity_with(
    stack: &Stack,
    project: &str,
    role: &str,
    mut config: auth_pb::AttachTokenAuthRequest,
) -> (String, String) {
    let identity = stack.create_identity("member").await;
    config.identity_id = identity.clone();
    stack.attach_token_auth(config).await;
    stack
        .auth_client()
        .await
        .add_identity_to_project(with_token(
            auth_pb::AddIdentityToProjectRequest {
                project_id: project.to_owned(),
                identity_id: identity.clone(),
                role: role.to_owned(),
                scopes: Vec::new(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    let token = stack.create_access_token(&identity).await;
    (identity, token)
}

async fn count_outcomes(
    results: Vec<Result<auth_pb::AuthorizeResponse, tonic::Status>>,
) -> (usize, usize) {
    let mut allowed = 0;
    let mut exhausted = 0;
    for result in results {
        match result {
            Ok(_) => allowed += 1,
            Err(status) => {
                assert_eq!(reason(&status), "TOKEN_USES_EXHAUSTED", "{status:?}");
                exhausted += 1;
            }
        }
    }
    (allowed, exhausted)
}
