//! Kubernetes Auth: a workload logs in with the projected service-account
//! JWT its cluster signed, checked by Latchkey against the issuer's keys,
//! on both backends, over gRPC and Infisical's HTTP route.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_test_support::with_internal_key;
use serde_json::{Value, json};

use super::*;
use crate::jwt_claims;

const RSA_PRIVATE: &str =
    include_str!("../../../crates/domain/src/identity/kubernetes_auth/testdata/rsa-private.pem");
const RSA_PUBLIC: &str =
    include_str!("../../../crates/domain/src/identity/kubernetes_auth/testdata/rsa-public.pem");
const EC_PRIVATE: &str =
    include_str!("../../../crates/domain/src/identity/kubernetes_auth/testdata/ec-private.pem");
const EC_PUBLIC: &str =
    include_str!("../../../crates/domain/src/identity/kubernetes_auth/testdata/ec-public.pem");
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

backend_tests!(
    projected_service_account_token_logs_in_over_grpc_and_http,
    each_failed_check_refuses_the_login_naming_it,
    kubernetes_auth_settings_are_validated_naming_the_field,
);

// The domain's throwaway test keys stand in for a cluster's issuer.

/// What a kube-apiserver puts in a projected token for `ns`/`name`, issued now.
fn claims(stack: &Stack, ns: &str, name: &str) -> Value {
    use latchkey_domain::ports::Clock as _;
    let now = stack.clock.now().timestamp();
    json!({
        "aud": ["latchkey"],
        "exp": now + 600,
        "iat": now,
        "nbf": now,
        "iss": ISSUER,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": "5f1c0b7e"}}
    })
}

fn sign(alg: Algorithm, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        Algorithm::HS256 => EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        _ => EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap()
}

/// A viewer in `project` with Kubernetes Auth trusting the test issuer's
/// RSA and EC keys for billing/worker with audience `latchkey`.
async fn k8s_identity(stack: &Stack, project: &str) -> String {
    let (identity, _) = stack.identity_in_project(project, "viewer", 0).await;
    stack
        .auth_client()
        .await
        .attach_kubernetes_auth(with_token(
            auth_pb::AttachKubernetesAuthRequest {
                identity_id: identity.clone(),
                issuer: Some(ISSUER.into()),
                keys: Some(format!("{RSA_PUBLIC}\n{EC_PUBLIC}")),
                allowed_audiences: Some("latchkey".into()),
                allowed_namespaces: Some("billing".into()),
                allowed_names: Some("worker".into()),
                access_token_ttl: Some(600),
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    identity
}

async fn login(
    stack: &Stack,
    identity: &str,
    jwt: &str,
) -> Result<auth_pb::LoginResponse, tonic::Status> {
    stack
        .auth_client()
        .await
        .login_kubernetes_auth(with_internal_key(
            auth_pb::LoginKubernetesAuthRequest {
                identity_id: identity.to_owned(),
                jwt: jwt.to_owned(),
                client_ip: "127.0.0.1".into(),
            },
            &stack.internal_key,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn projected_service_account_token_logs_in_over_grpc_and_http(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let identity = k8s_identity(&stack, &project).await;
    let jwt = sign(Algorithm::RS256, &claims(&stack, "billing", "worker"));
    let reply = login(&stack, &identity, &jwt).await.unwrap();
    assert_eq!(
        (reply.expires_in, reply.token_type.as_str()),
        (600, "Bearer")
    );
    let token_claims = jwt_claims(&reply.access_token);
    assert_eq!(token_claims["authMethod"], "kubernetes-auth");
    assert_eq!(
        token_claims["identityAuth"]["kubernetes"],
        json!({"namespace": "billing", "name": "worker"})
    );
    app_read(&stack, &reply.access_token, &project)
        .send()
        .await
        .unwrap();
    // Infisical's route, with an ES256 token: {identityId, jwt}.
    let es = sign(Algorithm::ES256, &claims(&stack, "billing", "worker"));
    let http = crate::http_api::http_to(
        &stack.http_addr,
        "POST",
        "/api/v1/auth/kubernetes-auth/login",
        None,
        &[],
        Some(json!({"identityId": identity, "jwt": es})),
    )
    .await;
    assert_eq!(http.status, 200, "{}", http.json());
    let body = http.json();
    assert_eq!(body["expiresIn"], 600);
    assert_eq!(body["tokenType"], "Bearer");
}

async fn each_failed_check_refuses_the_login_naming_it(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let identity = k8s_identity(&stack, &project).await;
    let good = claims(&stack, "billing", "worker");
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let now = good["iat"].as_i64().unwrap();
    let valid = sign(Algorithm::RS256, &good);
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let none = format!(
        "{}.{payload}.",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"none","typ":"JWT"}"#
        )
    );
    let cases = [
        (
            sign(Algorithm::RS256, &with("aud", json!("vault"))),
            Code::Unauthenticated,
            "TOKEN_INVALID",
            "audience",
        ),
        (
            sign(
                Algorithm::RS256,
                &with("iss", json!("https://evil.example")),
            ),
            Code::Unauthenticated,
            "TOKEN_INVALID",
            "issuer",
        ),
        (
            sign(Algorithm::RS256, &with("exp", json!(now - 120))),
            Code::Unauthenticated,
            "TOKEN_EXPIRED",
            "expired",
        ),
        (
            sign(Algorithm::RS256, &with("nbf", json!(now + 120))),
            Code::Unauthenticated,
            "TOKEN_INVALID",
            "not valid yet",
        ),
        (
            sign(Algorithm::RS256, &claims(&stack, "other", "worker")),
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            "namespace",
        ),
        (
            sign(Algorithm::RS256, &claims(&stack, "billing", "admin")),
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            "service account",
        ),
        (
            format!("{head}.{payload}.{}", "A".repeat(342)),
            Code::Unauthenticated,
            "TOKEN_INVALID",
            "signature",
        ),
        (
            none,
            Code::Unauthenticated,
            "TOKEN_MALFORMED",
            "RS256 or ES256",
        ),
        (
            sign(Algorithm::HS256, &good),
            Code::Unauthenticated,
            "TOKEN_INVALID",
            "only RS256 and ES256",
        ),
    ];
    for (jwt, code, reason, says) in cases {
        let status = assert_denied(login(&stack, &identity, &jwt).await, code, reason);
        assert!(
            status.message().contains(says),
            "{says}: {}",
            status.message()
        );
        assert!(!status.message().contains(&jwt), "never echoes the JWT");
    }
    // The right token still logs in.
    login(&stack, &identity, &valid).await.unwrap();
}

async fn kubernetes_auth_settings_are_validated_naming_the_field(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let identity = stack.create_identity("member").await;
    let mut auth = stack.auth_client().await;
    for (request, field) in [
        (
            auth_pb::AttachKubernetesAuthRequest {
                keys: Some(RSA_PUBLIC.into()),
                ..Default::default()
            },
            "issuer",
        ),
        (
            auth_pb::AttachKubernetesAuthRequest {
                issuer: Some(ISSUER.into()),
                ..Default::default()
            },
            "keys",
        ),
        (
            auth_pb::AttachKubernetesAuthRequest {
                issuer: Some(ISSUER.into()),
                keys: Some(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.into()),
                ..Default::default()
            },
            "keys",
        ),
    ] {
        let status = assert_denied(
            auth.attach_kubernetes_auth(with_token(
                auth_pb::AttachKubernetesAuthRequest {
                    identity_id: identity.clone(),
                    ..request
                },
                &stack.admin_token,
            ))
            .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    // An identity without Kubernetes Auth: its logins are NOT_FOUND, saying so.
    let status = assert_denied(
        login(&stack, &identity, "a.b.c").await,
        Code::NotFound,
        "NOT_FOUND",
    );
    assert!(
        status.message().contains("no Kubernetes Auth"),
        "{status:?}"
    );
}
