//! Service tokens end to end: both services over real gRPC on ephemeral
//! ports, on SQLite and on PostgreSQL, by stage: [`issuing`], [`using`],
//! the [`lifecycle`]'s end, and the [`internal`] calls between the services.
//! The helpers below serve them all.

use chrono::Duration;
use latchkey_client::crypto::{Requested, open_project_key, seal};
use latchkey_client::{ClientError, Location};
use latchkey_domain::crypto::WireKey;
use latchkey_domain::path::SecretName;
use latchkey_domain::token::{ServiceTokenSecret, access_token_part};
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_test_support::{
    Backend, Stack, assert_denied, backend_tests, with_bearer_text, with_token,
};
use tonic::Code;
use tonic_types::StatusExt;

mod internal;
mod issuing;
mod lifecycle;
mod using;

// ---- helpers ---------------------------------------------------------------

fn service_token(token: &str) -> ServiceTokenSecret {
    ServiceTokenSecret::parse(token).unwrap()
}

/// A service's answer, which is all these helpers expect to fail with.
fn status(err: ClientError) -> tonic::Status {
    match err {
        ClientError::Status(status) => status,
        other => panic!("not a service's answer: {other}"),
    }
}

fn location(env: &str, path: &str) -> Location {
    Location::new(None, env, path).unwrap()
}

/// The project key as a client holding `token` recovers it.
async fn project_key(stack: &Stack, token: &str) -> Result<(String, WireKey), tonic::Status> {
    let info = stack.lookup(token).await?;
    let key = open_project_key(
        &service_token(token),
        info.encrypted_project_key.map(Into::into),
    )
    .unwrap();
    Ok((info.project_id, key))
}

/// Writes through the client library, which encrypts on this side.
async fn set(
    stack: &Stack,
    token: &str,
    env: &str,
    path: &str,
    name: &str,
    value: &str,
) -> Result<(), tonic::Status> {
    let pair = (SecretName::parse(name).unwrap(), value.to_owned());
    stack
        .secrets_as(token)
        .await
        .set(&location(env, path), &[pair])
        .await
        .map(drop)
        .map_err(status)
}

/// Reads through the client library, which decrypts on this side.
async fn get(
    stack: &Stack,
    token: &str,
    env: &str,
    path: &str,
    name: &str,
) -> Result<String, tonic::Status> {
    stack
        .secrets_as(token)
        .await
        .get(&location(env, path), &SecretName::parse(name).unwrap())
        .await
        .map(|secret| secret.value)
        .map_err(status)
}

/// `GetSecret` exactly as given, nothing checked on this side: what the
/// server says to input a client library would refuse to send.
async fn get_unchecked(
    stack: &Stack,
    token: &str,
    env: &str,
    path: &str,
    name: &str,
) -> Result<secrets_pb::GetSecretResponse, tonic::Status> {
    stack
        .secrets_client()
        .await
        .get_secret(with_bearer_text(
            secrets_pb::GetSecretRequest {
                project_id: String::new(),
                environment: env.to_owned(),
                secret_path: path.to_owned(),
                name: name.to_owned(),
            },
            access_token_part(token),
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// `LookupToken` with `token`, which must succeed.
async fn lookup(stack: &Stack, token: &str) -> auth_pb::LookupTokenResponse {
    stack.lookup(token).await.unwrap()
}

async fn rw_token(stack: &Stack, project: &str) -> String {
    stack
        .create_service_token(Stack::token_request(
            project,
            &["dev:/backend/**"],
            &["read", "write"],
        ))
        .await
}

async fn token_meta(stack: &Stack, id: &str) -> Result<auth_pb::ServiceToken, tonic::Status> {
    stack
        .auth_client()
        .await
        .get_service_token(with_token(
            auth_pb::GetServiceTokenRequest {
                token_id: id.to_owned(),
            },
            &stack.admin_token,
        ))
        .await
        .map(|r| r.into_inner().token.unwrap())
}

fn token_id(token: &str) -> String {
    ServiceTokenSecret::parse(token).unwrap().id().to_string()
}
