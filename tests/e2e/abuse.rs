//! Failed-attempt limits, end to end on both backends: over its budget a
//! client IP is refused before any argon2 work, with a retry delay that
//! reaches the caller through the secrets service, and wrong secrets for a
//! token id, from anywhere, never refuse its holder.

use latchkey_domain::model::ServiceTokenId;
use latchkey_domain::token::SecretHash;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_store::auth::AuthStore;
use latchkey_test_support::{Backend, Stack, assert_denied, backend_tests, with_token};
use tonic::Code;
use tonic_types::StatusExt;

backend_tests!(
    a_client_over_the_failure_limit_is_refused_while_another_ip_is_not,
    wrong_secrets_for_a_token_id_never_refuse_its_holder_and_cost_no_argon2,
    a_row_without_a_fingerprint_verifies_and_gets_one,
    oversized_inputs_are_refused_naming_the_field_and_the_limit,
    a_burst_of_first_calls_with_a_valid_token_is_all_allowed,
);

/// Both services with `token_burst` failures per token id and `ip_burst`
/// per client IP, and a read token on a new project.
async fn limited_stack(
    backend: Backend,
    token_burst: &str,
    ip_burst: &str,
) -> Option<(Stack, String)> {
    let stack = Stack::start_with(
        backend,
        &[
            ("LATCHKEY_TOKEN_FAILURE_BURST", token_burst),
            ("LATCHKEY_IP_FAILURE_BURST", ip_burst),
        ],
    )
    .await?;
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;
    Some((stack, token))
}

fn wrong_secret(token: &str, n: u32) -> String {
    let id = token.split('.').nth(1).unwrap();
    format!("st.{id}.{n:032x}")
}

async fn a_client_over_the_failure_limit_is_refused_while_another_ip_is_not(backend: Backend) {
    let Some((stack, token)) = limited_stack(backend, "100", "3").await else {
        return;
    };
    let runs = || stack.auth.app.verifier().argon2_runs();

    for n in 0..3 {
        let unknown = format!("st.{}.{n:032x}", uuid::Uuid::new_v4());
        assert_denied(
            stack.authorize(&unknown).from("192.0.2.7").send().await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
    }
    let before = runs();
    let refused = assert_denied(
        stack.authorize(&token).from("192.0.2.7").send().await,
        Code::ResourceExhausted,
        "TOO_MANY_FAILED_ATTEMPTS",
    );

    assert_eq!(runs(), before, "refused before any argon2");
    let delay = refused
        .get_error_details()
        .retry_info()
        .unwrap()
        .retry_delay;
    assert_eq!(delay, Some(std::time::Duration::from_secs(2)));
    assert!(
        refused.message().contains("192.0.2.7") && refused.message().contains("retry in 2 s"),
        "{}",
        refused.message()
    );
    // Another address is not held back, and its call verifies the token.
    stack
        .authorize(&token)
        .from("192.0.2.8")
        .send()
        .await
        .unwrap();
    // Through the secrets service (which passes on this test's address,
    // 127.0.0.1, a budget of its own) the reason and the delay survive the hop.
    let list = |n: u32| {
        let unknown = format!("st.{}.{n:032x}", uuid::Uuid::new_v4());
        let url = stack.secrets_url.clone();
        async move {
            secrets_pb::secrets_service_client::SecretsServiceClient::connect(url)
                .await
                .unwrap()
                .list_secrets(with_token(
                    secrets_pb::ListSecretsRequest {
                        project_id: String::new(),
                        environment: "dev".into(),
                        secret_path: "/".into(),
                        recursive: false,
                    },
                    &unknown,
                ))
                .await
        }
    };
    for n in 0..3 {
        assert_denied(list(n).await, Code::Unauthenticated, "TOKEN_INVALID");
    }
    let over = assert_denied(
        list(3).await,
        Code::ResourceExhausted,
        "TOO_MANY_FAILED_ATTEMPTS",
    );
    assert_eq!(
        over.get_error_details().retry_info().unwrap().retry_delay,
        Some(std::time::Duration::from_secs(2))
    );
}

/// The lockout attack: a token's id is not secret, so anyone can send
/// wrong secrets for it, from any number of addresses. Before the holder's
/// first call (as on a fresh replica, nothing verified yet) and after it.
async fn wrong_secrets_for_a_token_id_never_refuse_its_holder_and_cost_no_argon2(backend: Backend) {
    let Some((stack, token)) = limited_stack(backend, "2", "100").await else {
        return;
    };
    let runs = || stack.auth.app.verifier().argon2_runs();
    let before = runs();
    for n in 0..20 {
        assert_denied(
            stack
                .authorize(&wrong_secret(&token, n))
                .from(&format!("192.0.2.{}", 10 + n))
                .send()
                .await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
    }
    let unknown = format!("st.{}.{:032x}", uuid::Uuid::new_v4(), 7);
    assert_denied(
        stack.authorize(&unknown).from("192.0.2.9").send().await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    assert_eq!(
        runs(),
        before,
        "wrong secrets and unknown ids cost no argon2"
    );

    stack
        .authorize(&token)
        .from("192.0.2.1")
        .send()
        .await
        .unwrap();
    for n in 20..25 {
        assert_denied(
            stack
                .authorize(&wrong_secret(&token, n))
                .from("192.0.2.66")
                .send()
                .await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
        stack
            .authorize(&token)
            .from("192.0.2.2")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        runs(),
        before + 1,
        "one verification, for the holder's first call"
    );
}

/// Rows written before fingerprints existed (or under a root key since
/// rotated out) still verify, and carry a fingerprint afterwards.
async fn a_row_without_a_fingerprint_verifies_and_gets_one(backend: Backend) {
    let Some((stack, token)) = limited_stack(backend, "10", "100").await else {
        return;
    };
    let id = ServiceTokenId::parse(token.split('.').nth(1).unwrap(), "id").unwrap();
    let store = AuthStore::connect(&stack.auth_db.url).await.unwrap();
    let sealed = store.service_token(&id).await.unwrap().unwrap().secret_hash;
    assert!(
        sealed.as_str().starts_with("fp1."),
        "new rows carry a fingerprint"
    );
    let legacy = SecretHash::new(sealed.phc().to_owned());
    store
        .set_service_token_secret_hash(&id, &legacy)
        .await
        .unwrap();

    stack
        .authorize(&token)
        .from("192.0.2.1")
        .send()
        .await
        .unwrap();

    let after = store.service_token(&id).await.unwrap().unwrap().secret_hash;
    assert_eq!(after, sealed, "the same fingerprint, stored again");
}

async fn oversized_inputs_are_refused_naming_the_field_and_the_limit(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let mut auth = stack.auth_client().await;

    let scopes: Vec<String> = (0..65).map(|i| format!("dev:/s{i}")).collect();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let many = Stack::token_request(&project, &scopes, &["read"]);
    invalid(
        auth.create_service_token(with_token(many, &stack.admin_token))
            .await,
        "scopes",
        "at most 64",
    );
    let ips: Vec<String> = (0..257)
        .map(|i| format!("10.1.{}.{}", i / 256, i % 256))
        .collect();
    invalid(
        auth.set_project_trusted_ips(with_token(
            auth_pb::SetProjectTrustedIpsRequest {
                project_id: project.clone(),
                trusted_ips: ips,
            },
            &stack.admin_token,
        ))
        .await,
        "trusted_ips",
        "at most 256",
    );
    let environment = |slug: String| {
        with_token(
            auth_pb::CreateEnvironmentRequest {
                project_id: project.clone(),
                slug,
                name: String::new(),
            },
            &stack.admin_token,
        )
    };
    invalid(
        auth.create_environment(environment("x".repeat(100))).await,
        "slug",
        "1 to 32",
    );
    // A message past its method's real maximum is cut off while it arrives,
    // never buffered whole.
    invalid(
        auth.create_environment(environment("x".repeat(1_000_000)))
            .await,
        "request",
        "larger than 16384 bytes",
    );
    let deep = Stack::token_request(&project, &[&format!("dev:{}", "/a".repeat(33))], &["read"]);
    invalid(
        auth.create_service_token(with_token(deep, &stack.admin_token))
            .await,
        "scopes[0].secret_path",
        "at most 32 deep",
    );
    // Nothing of that was created.
    let listed = auth
        .list_service_tokens(with_token(
            auth_pb::ListServiceTokensRequest {
                project_id: project.clone(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tokens.is_empty());

    // Oversized bearer tokens: refused by name, and the connection lives on.
    for size in [17 * 1024, 64 * 1024] {
        let status = assert_denied(
            auth.lookup_token(with_token(
                auth_pb::LookupTokenRequest::default(),
                &format!("st.{}", "a".repeat(size)),
            ))
            .await,
            Code::Unauthenticated,
            "TOKEN_MALFORMED",
        );
        assert!(status.message().contains("4096"), "{}", status.message());
    }
    auth.lookup_token(with_token(
        auth_pb::LookupTokenRequest::default(),
        &stack.admin_token,
    ))
    .await
    .unwrap();

    // A message over the request limit gets Latchkey's error, not a bare OUT_OF_RANGE.
    let token = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["write"]))
        .await;
    let huge = stack
        .secrets_client()
        .await
        .set_secret(with_token(
            secrets_pb::SetSecretRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/".into(),
                name: "BIG".into(),
                ciphertext: vec![0; 2 * 1024 * 1024],
                iv: vec![0; 12],
                tag: vec![0; 16],
            },
            &token,
        ))
        .await;
    invalid(huge, "request", "1048576 bytes");
}

/// Asserts `INVALID_ARGUMENT` naming `field` and `limit`, in a short message.
#[track_caller]
fn invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str, limit: &str) {
    let status = assert_denied(result, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(
        status.message().contains(field) && status.message().contains(limit),
        "{field}: {}",
        status.message()
    );
    assert!(
        status.message().len() < 400,
        "the input is not echoed whole"
    );
}

/// A service starting 64 workers at once: their first calls arrive together,
/// before the token was ever verified. They share one argon2 run and spend
/// one attempt between them, so none is refused as a failure (the default
/// burst is 10 per token id).
async fn a_burst_of_first_calls_with_a_valid_token_is_all_allowed(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;
    let before = stack.auth.app.verifier().argon2_runs();
    for result in stack.authorize(&token).send_concurrently(64).await {
        assert!(result.is_ok(), "{:?}", result.err());
    }
    assert_eq!(stack.auth.app.verifier().argon2_runs(), before + 1);
}
