//! Access tokens are JWTs a client can read, verified without argon2 and
//! still checked against their rows; `ia.` tokens issued before keep working.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_domain::identity::AccessToken;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::IdentityId;
use latchkey_domain::ports::Clock as _;
use latchkey_domain::token::{IdentityTokenSecret, SecretHash, hash_secret};
use latchkey_store::auth::AuthStore;

use super::*;
use crate::jwt_claims as claims;

backend_tests!(
    token_auth_issues_a_jwt_whose_claims_a_client_can_read,
    jwt_with_a_changed_payload_or_signature_is_token_invalid,
    ia_token_issued_before_jwts_works_until_it_expires,
    jwt_presented_as_an_ia_token_id_is_token_invalid,
    holder_revokes_its_jwt_even_past_its_exp,
);

async fn token_auth_issues_a_jwt_whose_claims_a_client_can_read(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, token) = identity_with(
        &stack,
        &project,
        "viewer",
        auth_pb::AttachTokenAuthRequest {
            access_token_ttl: Some(600),
            access_token_max_ttl: Some(3600),
            ..Default::default()
        },
    )
    .await;
    let payload = claims(&token);
    assert_eq!(payload["identityId"], identity.as_str());
    assert_eq!(payload["authTokenType"], "identityAccessToken");
    assert_eq!(payload["authMethod"], "token-auth");
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        600
    );
    let listed = stack
        .auth_client()
        .await
        .list_identity_access_tokens(with_token(
            auth_pb::ListIdentityAccessTokensRequest {
                identity_id: identity.clone(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), 1);
    assert_eq!(payload["identityAccessTokenId"], listed[0].id.as_str());
    app_read(&stack, &token, &project).send().await.unwrap();
    // The bootstrap admin's token is one too, and never expires.
    let admin = claims(&stack.admin_token);
    assert!(admin.get("exp").is_none(), "{admin}");
}

async fn jwt_with_a_changed_payload_or_signature_is_token_invalid(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 0).await;
    let parts: Vec<&str> = token.split('.').collect();
    // The admin's identity in the payload, the viewer's signature kept.
    let mut payload = claims(&token);
    payload["identityId"] = claims(&stack.admin_token)["identityId"].clone();
    let raised = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[0] ^= 1;
    let resigned = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    for forged in [raised, resigned] {
        assert_denied(
            app_read(&stack, &forged, &project).send().await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
        assert_denied(
            stack.lookup(&forged).await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
    }
    app_read(&stack, &token, &project).send().await.unwrap();
}

/// An `ia.` token row as releases before JWTs wrote it: an argon2 hash of its secret.
async fn legacy_token(stack: &Stack, identity: &str, ttl_seconds: i64) -> String {
    let secret = IdentityTokenSecret::generate(&mut rand::rngs::OsRng);
    let now = stack.clock.now();
    let store = AuthStore::connect(&stack.auth_db.url).await.unwrap();
    store
        .insert_identity_token(&AccessToken {
            id: secret.id().into(),
            identity_id: IdentityId::from_stored(identity.to_owned()),
            name: "legacy".into(),
            secret_hash: Some(SecretHash::new(
                hash_secret(secret.secret(), &mut rand::rngs::OsRng).unwrap(),
            )),
            expires_at: Some(now + Duration::seconds(ttl_seconds)),
            revoked_at: None,
            use_count: 0,
            num_uses_limit: 0,
            ttl_seconds,
            max_ttl_seconds: ttl_seconds,
            trusted_ips: TrustedIps::default(),
            last_used_at: None,
            created_at: now,
        })
        .await
        .unwrap();
    secret.expose()
}

async fn ia_token_issued_before_jwts_works_until_it_expires(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, _) = stack.identity_in_project(&project, "viewer", 0).await;
    let legacy = legacy_token(&stack, &identity, 60).await;
    assert!(legacy.starts_with("ia."));
    app_read(&stack, &legacy, &project).send().await.unwrap();
    // Renewing an `ia.` token keeps it: there is nothing to re-sign.
    assert_eq!(renew(&stack, &legacy).await.unwrap().access_token, legacy);
    stack.clock.advance(Duration::seconds(61));
    assert_denied(
        app_read(&stack, &legacy, &project).send().await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
}

async fn jwt_presented_as_an_ia_token_id_is_token_invalid(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 0).await;
    // A JWT's row has no secret hash: its id with any secret is an unknown `ia.` token.
    let id = claims(&token)["identityAccessTokenId"]
        .as_str()
        .unwrap()
        .to_owned();
    let guess = format!("ia.{id}.{}", "0".repeat(64));
    assert_denied(
        app_read(&stack, &guess, &project).send().await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
}

async fn holder_revokes_its_jwt_even_past_its_exp(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = identity_with(
        &stack,
        &project,
        "viewer",
        auth_pb::AttachTokenAuthRequest {
            access_token_ttl: Some(60),
            access_token_max_ttl: Some(600),
            ..Default::default()
        },
    )
    .await;
    stack.clock.advance(Duration::seconds(50));
    let renewed = renew(&stack, &token).await.unwrap().access_token;
    assert_ne!(renewed, token, "a renewal signs a new token");
    stack.clock.advance(Duration::seconds(20)); // t=70: the first copy is past its exp
    assert_denied(
        stack.lookup(&token).await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
    assert!(stack.lookup(&renewed).await.is_ok());
    // The lapsed copy still proves possession: revoking with it ends the renewed one too.
    revoke(&stack, &token).await.unwrap();
    assert_denied(
        stack.lookup(&renewed).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
}
