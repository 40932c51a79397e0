//! Universal Auth over gRPC: an identity's client ID and client secrets
//! traded for JWT access tokens, on both backends.

use latchkey_test_support::with_internal_key;

use super::*;
use crate::jwt_claims;

backend_tests!(
    universal_auth_login_issues_a_jwt_that_reads,
    unknown_client_id_and_wrong_secret_are_the_same_token_invalid,
    client_secret_past_its_ttl_or_its_logins_is_refused_saying_so,
    revoked_client_secret_is_refused_at_once_on_another_replica,
    wrong_secrets_from_many_addresses_never_lock_out_the_holder,
    universal_auth_settings_are_validated_naming_the_field,
    concurrent_logins_with_a_three_login_secret_issue_exactly_three_tokens,
);

/// An identity with Universal Auth (`attach` over the defaults) and a
/// viewer role in `project`; returns (identity id, client ID).
async fn ua_identity(
    stack: &Stack,
    project: &str,
    mut attach: auth_pb::AttachUniversalAuthRequest,
) -> (String, String) {
    let (identity, _) = stack.identity_in_project(project, "viewer", 0).await;
    attach.identity_id = identity.clone();
    let config = stack
        .auth_client()
        .await
        .attach_universal_auth(with_token(attach, &stack.admin_token))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    (identity, config.client_id)
}

async fn client_secret(stack: &Stack, identity: &str, ttl: i64, num_uses_limit: i64) -> String {
    stack
        .auth_client()
        .await
        .create_universal_auth_client_secret(with_token(
            auth_pb::CreateUniversalAuthClientSecretRequest {
                identity_id: identity.to_owned(),
                description: "ci".into(),
                ttl,
                num_uses_limit,
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .client_secret
}

/// Logs in at `url` as a client at `from`, as the secrets service's HTTP
/// API does on a client's behalf (the internal key vouches for the address).
async fn login_at(
    stack: &Stack,
    url: &str,
    client_id: &str,
    secret: &str,
    from: &str,
) -> Result<auth_pb::LoginResponse, tonic::Status> {
    latchkey_proto::auth::v1::auth_service_client::AuthServiceClient::connect(url.to_owned())
        .await
        .unwrap()
        .login_universal_auth(with_internal_key(
            auth_pb::LoginUniversalAuthRequest {
                client_id: client_id.to_owned(),
                client_secret: secret.to_owned(),
                client_ip: from.to_owned(),
            },
            &stack.internal_key,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn login(
    stack: &Stack,
    client_id: &str,
    secret: &str,
) -> Result<auth_pb::LoginResponse, tonic::Status> {
    login_at(stack, &stack.auth_url, client_id, secret, "127.0.0.1").await
}

async fn universal_auth_login_issues_a_jwt_that_reads(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, client_id) = ua_identity(
        &stack,
        &project,
        auth_pb::AttachUniversalAuthRequest {
            access_token_ttl: Some(600),
            access_token_max_ttl: Some(3600),
            ..Default::default()
        },
    )
    .await;
    let secret = client_secret(&stack, &identity, 0, 0).await;
    let reply = login(&stack, &client_id, &secret).await.unwrap();
    assert_eq!(
        (
            reply.expires_in,
            reply.access_token_max_ttl,
            reply.token_type.as_str()
        ),
        (600, 3600, "Bearer")
    );
    let claims = jwt_claims(&reply.access_token);
    assert_eq!(claims["identityId"], identity.as_str());
    assert_eq!(claims["authMethod"], "universal-auth");
    assert_eq!(claims["identityAccessTokenId"], reply.token_id.as_str());
    app_read(&stack, &reply.access_token, &project)
        .send()
        .await
        .unwrap();

    // A second login with the same secret is another token.
    let again = login(&stack, &client_id, &secret).await.unwrap();
    assert_ne!(again.token_id, reply.token_id);
    let listed = stack
        .auth_client()
        .await
        .list_universal_auth_client_secrets(with_token(
            auth_pb::ListUniversalAuthClientSecretsRequest {
                identity_id: identity.clone(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .client_secrets;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].use_count, 2);
    assert_eq!(listed[0].client_secret_prefix, &secret[..4]);
    assert_eq!(claims["clientSecretId"], listed[0].id.as_str());
    assert!(!format!("{listed:?}").contains(&secret), "never the secret");
}

async fn unknown_client_id_and_wrong_secret_are_the_same_token_invalid(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, client_id) = ua_identity(&stack, &project, Default::default()).await;
    let secret = client_secret(&stack, &identity, 0, 0).await;
    let wrong = "0".repeat(64);
    let unknown = "0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b";
    let by_wrong_secret = assert_denied(
        login(&stack, &client_id, &wrong).await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    let by_unknown_id = assert_denied(
        login(&stack, unknown, &secret).await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    assert_eq!(by_wrong_secret.message(), by_unknown_id.message());
    // Not a secret's shape at all: bad input, naming the field.
    let status = assert_denied(
        login(&stack, &client_id, "short").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert!(status.message().contains("client_secret"), "{status:?}");
    login(&stack, &client_id, &secret).await.unwrap();
}

async fn client_secret_past_its_ttl_or_its_logins_is_refused_saying_so(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, client_id) = ua_identity(&stack, &project, Default::default()).await;
    let short = client_secret(&stack, &identity, 60, 0).await;
    let twice = client_secret(&stack, &identity, 0, 2).await;
    login(&stack, &client_id, &short).await.unwrap();
    login(&stack, &client_id, &twice).await.unwrap();
    login(&stack, &client_id, &twice).await.unwrap();
    let used_up = assert_denied(
        login(&stack, &client_id, &twice).await,
        Code::Unauthenticated,
        "TOKEN_USES_EXHAUSTED",
    );
    assert!(
        used_up.message().contains("client secret"),
        "{}",
        used_up.message()
    );
    stack.clock.advance(Duration::seconds(60));
    let expired = assert_denied(
        login(&stack, &client_id, &short).await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
    assert!(
        expired.message().contains("client secret expired"),
        "{}",
        expired.message()
    );
}

async fn revoked_client_secret_is_refused_at_once_on_another_replica(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let replica = stack.start_auth_replica().await;
    let project = stack.create_project(false).await;
    let (identity, client_id) = ua_identity(&stack, &project, Default::default()).await;
    let secret = client_secret(&stack, &identity, 0, 0).await;
    login_at(&stack, &replica.url, &client_id, &secret, "127.0.0.1")
        .await
        .unwrap();
    let secret_id = stack
        .auth_client()
        .await
        .list_universal_auth_client_secrets(with_token(
            auth_pb::ListUniversalAuthClientSecretsRequest {
                identity_id: identity.clone(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .client_secrets[0]
        .id
        .clone();
    stack
        .auth_client()
        .await
        .revoke_universal_auth_client_secret(with_token(
            auth_pb::RevokeUniversalAuthClientSecretRequest {
                identity_id: identity.clone(),
                client_secret_id: secret_id,
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    // Logins read client secrets from the database: no cache to wait out.
    assert_denied(
        login_at(&stack, &replica.url, &client_id, &secret, "127.0.0.1").await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    replica.stop().await;
}

async fn wrong_secrets_from_many_addresses_never_lock_out_the_holder(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, client_id) = ua_identity(&stack, &project, Default::default()).await;
    let secret = client_secret(&stack, &identity, 0, 0).await;
    // More wrong secrets than a client ID's budget (10), from 40 addresses.
    for i in 0..40 {
        let wrong = format!("{:064x}", i + 1);
        let from = format!("192.0.2.{}", i + 1);
        assert_denied(
            login_at(&stack, &stack.auth_url, &client_id, &wrong, &from).await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
    }
    login_at(&stack, &stack.auth_url, &client_id, &secret, "198.51.100.7")
        .await
        .unwrap();
}

async fn universal_auth_settings_are_validated_naming_the_field(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let identity = stack.create_identity("member").await;
    let mut auth = stack.auth_client().await;
    for (attach, field) in [
        (
            auth_pb::AttachUniversalAuthRequest {
                access_token_ttl: Some(0),
                ..Default::default()
            },
            "access_token_ttl",
        ),
        (
            auth_pb::AttachUniversalAuthRequest {
                client_secret_trusted_ips: vec!["not-an-ip".into()],
                ..Default::default()
            },
            "client_secret_trusted_ips[0]",
        ),
    ] {
        let status = assert_denied(
            auth.attach_universal_auth(with_token(
                auth_pb::AttachUniversalAuthRequest {
                    identity_id: identity.clone(),
                    ..attach
                },
                &stack.admin_token,
            ))
            .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    // Nothing was attached by the refusals.
    assert_denied(
        auth.get_universal_auth(with_token(
            auth_pb::GetUniversalAuthRequest {
                identity_id: identity.clone(),
            },
            &stack.admin_token,
        ))
        .await,
        Code::NotFound,
        "NOT_FOUND",
    );
    let config = auth
        .attach_universal_auth(with_token(
            auth_pb::AttachUniversalAuthRequest {
                identity_id: identity.clone(),
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    assert_eq!(
        (config.access_token_ttl, config.access_token_max_ttl),
        (2_592_000, 2_592_000)
    );
    assert_eq!(config.client_secret_trusted_ips, ["0.0.0.0/0", "::/0"]);
    assert_denied(
        auth.attach_universal_auth(with_token(
            auth_pb::AttachUniversalAuthRequest {
                identity_id: identity.clone(),
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await,
        Code::AlreadyExists,
        "ALREADY_EXISTS",
    );
    let status = assert_denied(
        auth.create_universal_auth_client_secret(with_token(
            auth_pb::CreateUniversalAuthClientSecretRequest {
                identity_id: identity.clone(),
                ttl: -1,
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert!(status.message().contains("ttl"), "{status:?}");
}

async fn concurrent_logins_with_a_three_login_secret_issue_exactly_three_tokens(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, client_id) = ua_identity(&stack, &project, Default::default()).await;
    let secret = client_secret(&stack, &identity, 0, 3).await;
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (url, key) = (stack.auth_url.clone(), stack.internal_key.clone());
        let (client_id, secret) = (client_id.clone(), secret.clone());
        logins.spawn(async move {
            latchkey_proto::auth::v1::auth_service_client::AuthServiceClient::connect(url)
                .await
                .unwrap()
                .login_universal_auth(with_internal_key(
                    auth_pb::LoginUniversalAuthRequest {
                        client_id,
                        client_secret: secret,
                        client_ip: "127.0.0.1".into(),
                    },
                    &key,
                ))
                .await
        });
    }
    let results = logins.join_all().await;
    let issued = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(issued, 3, "{results:?}");
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(reason(&refused), "TOKEN_USES_EXHAUSTED", "{refused:?}");
    }
}
