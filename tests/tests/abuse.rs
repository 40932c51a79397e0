//! Failed-attempt limits, end to end on both backends: over its budget a
//! client IP or token id is refused before any argon2 work, with a retry
//! delay that reaches the caller through the secrets service, and a token
//! this replica already verified is never held back by others' failures.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_test_support::{Backend, Stack, assert_denied, backend_tests, with_token};
use tonic::Code;
use tonic_types::StatusExt;

backend_tests!(
    a_client_over_the_failure_limit_is_refused_while_another_ip_is_not,
    a_verified_token_is_not_held_back_by_failures_against_its_id,
);

/// `Authorize` of `dev:/` for `token` as the secrets service would ask it
/// for a client at `ip`.
async fn authorize(
    stack: &Stack,
    token: &str,
    ip: &str,
) -> Result<auth_pb::AuthorizeResponse, tonic::Status> {
    let mut request = tonic::Request::new(auth_pb::AuthorizeRequest {
        token: latchkey_domain::token::access_token_part(token).to_owned(),
        client_ip: ip.to_owned(),
        project_id: String::new(),
        environment: "dev".into(),
        secret_path: "/".into(),
        action: auth_pb::Action::Read.into(),
        raw: false,
        recursive: false,
    });
    request.metadata_mut().insert(
        "x-latchkey-internal-key",
        stack.internal_key.parse().unwrap(),
    );
    stack
        .auth_client()
        .await
        .authorize(request)
        .await
        .map(tonic::Response::into_inner)
}

fn wrong_secret(token: &str, n: u32) -> String {
    let id = token.split('.').nth(1).unwrap();
    format!("st.{id}.{n:032x}")
}

async fn a_client_over_the_failure_limit_is_refused_while_another_ip_is_not(backend: Backend) {
    let Some(stack) = Stack::start_with(
        backend,
        &[
            ("LATCHKEY_IP_FAILURE_BURST", "3"),
            ("LATCHKEY_TOKEN_FAILURE_BURST", "100"),
        ],
    )
    .await
    else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;
    let runs = || stack.auth.app.verifier().argon2_runs();

    for n in 0..3 {
        let unknown = format!("st.{}.{n:032x}", uuid::Uuid::new_v4());
        assert_denied(
            authorize(&stack, &unknown, "192.0.2.7").await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
    }
    let before = runs();
    let refused = assert_denied(
        authorize(&stack, &token, "192.0.2.7").await,
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
    authorize(&stack, &token, "192.0.2.8").await.unwrap();
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

async fn a_verified_token_is_not_held_back_by_failures_against_its_id(backend: Backend) {
    let Some(stack) = Stack::start_with(
        backend,
        &[
            ("LATCHKEY_TOKEN_FAILURE_BURST", "2"),
            ("LATCHKEY_IP_FAILURE_BURST", "100"),
        ],
    )
    .await
    else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;
    authorize(&stack, &token, "192.0.2.1").await.unwrap();

    for n in 0..2 {
        assert_denied(
            authorize(&stack, &wrong_secret(&token, n), "192.0.2.66").await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
    }
    let refused = assert_denied(
        authorize(&stack, &wrong_secret(&token, 3), "192.0.2.67").await,
        Code::ResourceExhausted,
        "TOO_MANY_FAILED_ATTEMPTS",
    );

    assert!(
        refused.message().contains("this token"),
        "{}",
        refused.message()
    );
    // The holder's token, verified before, is served without argon2.
    let before = stack.auth.app.verifier().argon2_runs();
    authorize(&stack, &token, "192.0.2.1").await.unwrap();
    authorize(&stack, &token, "192.0.2.2").await.unwrap();
    assert_eq!(stack.auth.app.verifier().argon2_runs(), before);
}
