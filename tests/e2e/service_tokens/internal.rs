//! The services among themselves: `Authorize` and `CountEncryptions` only
//! with the internal key, the key's encryption budget, failing closed,
//! health and reflection.

use super::*;

backend_tests!(
    authorize_refuses_callers_without_the_internal_key,
    count_encryptions_is_internal_bounded_and_adds_to_the_keys_count,
    writes_count_encryptions_under_the_project_key,
    rotation_is_recommended_once_a_key_reaches_ninety_percent_of_its_budget,
    secrets_service_fails_closed_with_auth_unavailable_when_auth_is_down,
    both_services_serve_health_and_reflection,
    the_audit_key_goes_only_to_internal_callers_and_hashes_tokens_alike,
);

async fn authorize_refuses_callers_without_the_internal_key(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;

    assert_denied(
        stack
            .authorize(&token)
            .path("/backend")
            .internal_key(None)
            .send()
            .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_denied(
        stack
            .authorize(&token)
            .path("/backend")
            .internal_key(Some("wrong-key-wrong-key-wrong-key-00"))
            .send()
            .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let grant = stack
        .authorize(&token)
        .path("/backend")
        .send()
        .await
        .unwrap();
    assert_eq!(grant.project_id, project);
    assert!(
        grant.project_key.is_empty(),
        "no clear project key for non-raw calls"
    );
}

/// The secrets service's count of its own re-encryptions: only with the
/// internal key, 1 to 1,000,000 at a time, added to the key's count.
async fn count_encryptions_is_internal_bounded_and_adds_to_the_keys_count(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let request = |count| auth_pb::CountEncryptionsRequest {
        project_id: project.clone(),
        count,
    };
    let mut auth = stack.auth_client().await;

    let outsider = auth
        .count_encryptions(with_token(request(5), &stack.admin_token))
        .await
        .unwrap_err();
    assert_eq!(outsider.code(), Code::PermissionDenied, "{outsider:?}");
    for bad in [0, 1_000_001] {
        let refused = auth
            .count_encryptions(latchkey_test_support::with_internal_key(
                request(bad),
                &stack.internal_key,
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad}: {refused:?}");
        assert!(refused.message().contains("count"), "{}", refused.message());
    }
    assert_eq!(lookup(&stack, &token).await.key_encryption_count, 0);

    let counted = auth
        .count_encryptions(latchkey_test_support::with_internal_key(
            request(5),
            &stack.internal_key,
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(counted.key_encryption_count, 5);
    assert_eq!(lookup(&stack, &token).await.key_encryption_count, 5);
}

async fn writes_count_encryptions_under_the_project_key(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    for i in 0..3 {
        set(&stack, &token, "dev", "/backend", "K", &i.to_string())
            .await
            .unwrap();
    }
    get(&stack, &token, "dev", "/backend", "K").await.unwrap();

    let info = lookup(&stack, &token).await;
    assert_eq!(info.key_encryption_count, 3);
    assert!(!info.key_rotation_recommended);

    // Counted in memory, then written with the batched use counts.
    stack.auth.app.flush_uses().await.unwrap();
    let store = latchkey_store::auth::AuthStore::connect(&stack.auth_db.url)
        .await
        .unwrap();
    let id = latchkey_domain::model::ProjectId::parse(&project, "project").unwrap();
    let stored = store.project(&id).await.unwrap().unwrap();
    assert_eq!(stored.encryption_count, 3, "flushed to the database");
    assert_eq!(
        lookup(&stack, &token).await.key_encryption_count,
        3,
        "and counted once"
    );
}

async fn rotation_is_recommended_once_a_key_reaches_ninety_percent_of_its_budget(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    // 2^32 real encryptions are out of reach: start the counter one short of the threshold.
    let db = sea_orm::Database::connect(&stack.auth_db.url)
        .await
        .unwrap();
    db.execute_unprepared(&format!(
        "UPDATE projects SET encryption_count = 3865470565 WHERE id = '{project}'"
    ))
    .await
    .unwrap();
    // A change behind the service's back is read within the state bound.
    stack.clock.advance(Duration::seconds(2));
    assert!(!lookup(&stack, &token).await.key_rotation_recommended);

    set(&stack, &token, "dev", "/backend", "K", "v")
        .await
        .unwrap();

    let after = lookup(&stack, &token).await;
    assert_eq!(after.key_encryption_count, 3_865_470_566);
    assert!(after.key_rotation_recommended);
    assert_eq!(
        get(&stack, &token, "dev", "/backend", "K").await.unwrap(),
        "v",
        "still usable"
    );
}

async fn secrets_service_fails_closed_with_auth_unavailable_when_auth_is_down(backend: Backend) {
    let Some(mut stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let (project_id, key) = project_key(&stack, &token).await.unwrap();
    set(&stack, &token, "dev", "/backend", "K", "v")
        .await
        .unwrap();

    stack.stop_auth().await;

    let mut secrets = stack.secrets_client().await;
    let list = secrets
        .list_secrets(with_token(
            secrets_pb::ListSecretsRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                recursive: false,
            },
            &token,
        ))
        .await;
    assert_denied(list, Code::Unavailable, "AUTH_UNAVAILABLE");
    let s = seal(&key, &project_id, "dev", "/backend", "K2", "new").unwrap();
    let write = secrets
        .set_secret(with_token(
            secrets_pb::SetSecretRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                name: "K2".into(),
                ciphertext: s.ciphertext,
                iv: s.iv,
                tag: s.tag,
            },
            &token,
        ))
        .await;
    assert_denied(write, Code::Unavailable, "AUTH_UNAVAILABLE");
    assert!(
        !stack
            .secrets_db
            .dump_without(&["audit_events"])
            .await
            .contains("K2"),
        "nothing was written"
    );
}

async fn both_services_serve_health_and_reflection(backend: Backend) {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    for (url, own, other) in [
        (
            &stack.auth_url,
            "latchkey.auth.v1.AuthService",
            "latchkey.secrets.v1.SecretsService",
        ),
        (
            &stack.secrets_url,
            "latchkey.secrets.v1.SecretsService",
            "latchkey.auth.v1.AuthService",
        ),
    ] {
        let channel = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(tonic_health::pb::HealthCheckRequest {
                service: own.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            health.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );

        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            stream.message().await.unwrap().unwrap().message_response
        else {
            panic!("not a list response");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        for want in [
            own,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(
            !names.iter().any(|n| n == other),
            "{other} is not served here: {names:?}"
        );
    }
}

/// `GetAuditKey`: only with the internal key (an admin token is not
/// enough), and the key it gives hashes a token as the domain says.
async fn the_audit_key_goes_only_to_internal_callers_and_hashes_tokens_alike(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let mut auth = stack.auth_client().await;
    let admin = auth
        .get_audit_key(with_token(
            auth_pb::GetAuditKeyRequest {},
            &stack.admin_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(admin.code(), Code::PermissionDenied, "{admin:?}");

    let key = auth
        .get_audit_key(latchkey_test_support::with_internal_key(
            auth_pb::GetAuditKeyRequest {},
            &stack.internal_key,
        ))
        .await
        .unwrap()
        .into_inner()
        .audit_key;

    let key: [u8; 32] = key.try_into().unwrap();
    let key = latchkey_domain::audit::AuditKey::from_bytes(key);
    assert_eq!(key, stack.auth.app.audit_key());
    assert_eq!(key.token_hmac(&stack.admin_token).len(), 64);
}
