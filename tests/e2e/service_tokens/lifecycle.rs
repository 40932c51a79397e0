//! The end of a service token's life: expiry and reaping, deactivation,
//! deletion, and the uses it is counted.

use super::*;

backend_tests!(
    expired_token_is_rejected_with_token_expired_and_later_reaped,
    deactivated_token_is_token_inactive_until_reactivated,
    deleted_token_is_rejected_with_token_revoked,
    uses_and_last_use_are_counted_and_lookup_consumes_none,
    unlimited_token_uses_are_batched_in_memory_and_reported_exactly_before_a_flush,
);

async fn expired_token_is_rejected_with_token_expired_and_later_reaped(backend: Backend) {
    let Some(stack) = Stack::start_with(
        backend,
        &[
            // The test runs the reaper itself, on the stack's clock.
            ("LATCHKEY_REAPER_INTERVAL_SECONDS", "86400"),
            ("LATCHKEY_EXPIRED_GRACE_SECONDS", "3600"),
        ],
    )
    .await
    else {
        return;
    };
    let project = stack.create_project(false).await;
    let mut request = Stack::token_request(&project, &["dev:/**"], &["read", "write"]);
    request.expires_in_seconds = 60;
    let token = stack.create_service_token(request).await;
    set(&stack, &token, "dev", "/", "K", "v").await.unwrap();
    assert_eq!(get(&stack, &token, "dev", "/", "K").await.unwrap(), "v");
    let listed = |stack: &Stack| {
        let project = project.clone();
        let url = stack.auth_url.clone();
        let admin = stack.admin_token.clone();
        async move {
            auth_pb::auth_service_client::AuthServiceClient::connect(url)
                .await
                .unwrap()
                .list_service_tokens(with_token(
                    auth_pb::ListServiceTokensRequest {
                        project_id: project,
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .tokens
                .len()
        }
    };
    assert_eq!(listed(&stack).await, 1);

    stack.clock.advance(Duration::seconds(61));

    let expired = || async {
        let status = assert_denied(
            get(&stack, &token, "dev", "/", "K").await,
            Code::Unauthenticated,
            "TOKEN_EXPIRED",
        );
        assert!(
            status.message().contains("create a new token"),
            "{}",
            status.message()
        );
    };
    expired().await;
    assert_eq!(
        listed(&stack).await,
        0,
        "expired tokens leave the listing at once"
    );
    // A reaper pass within the grace period keeps it.
    assert_eq!(stack.auth.app.reap().await.unwrap(), 0);
    assert!(stack.auth_db.dump().await.contains(&token_id(&token)));
    expired().await;
    assert!(token_meta(&stack, &token_id(&token)).await.is_ok());

    // Past the grace period the reaper deletes the row.
    stack.clock.advance(Duration::seconds(3600));
    assert_eq!(stack.auth.app.reap().await.unwrap(), 1);
    // The audit trail keeps the id of what it recorded, by design.
    assert!(
        !stack
            .auth_db
            .dump_without(&["audit_events"])
            .await
            .contains(&token_id(&token)),
        "the reaper deleted the expired token's row"
    );
    // A replica may answer from its cached row for up to the cache bound.
    stack.clock.advance(Duration::seconds(2));
    let gone = token_meta(&stack, &token_id(&token)).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // The id as the caller wrote it, not a Rust type's debug form.
    assert_eq!(
        gone.message(),
        format!("service token \"{}\" not found", token_id(&token))
    );
    assert_denied(
        get(&stack, &token, "dev", "/", "K").await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
}

async fn deactivated_token_is_token_inactive_until_reactivated(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    set(&stack, &token, "dev", "/backend", "K", "v")
        .await
        .unwrap();
    let set_active = |active: bool| {
        let stack = &stack;
        let id = token_id(&token);
        async move {
            stack
                .auth_client()
                .await
                .set_service_token_active(with_token(
                    auth_pb::SetServiceTokenActiveRequest {
                        token_id: id,
                        active,
                    },
                    &stack.admin_token,
                ))
                .await
                .unwrap()
                .into_inner()
                .token
                .unwrap()
        }
    };

    assert!(!set_active(false).await.active);
    assert_denied(
        get(&stack, &token, "dev", "/backend", "K").await,
        Code::Unauthenticated,
        "TOKEN_INACTIVE",
    );
    assert_denied(
        set(&stack, &token, "dev", "/backend", "K", "x").await,
        Code::Unauthenticated,
        "TOKEN_INACTIVE",
    );

    assert!(set_active(true).await.active);
    assert_eq!(
        get(&stack, &token, "dev", "/backend", "K").await.unwrap(),
        "v"
    );
}

async fn deleted_token_is_rejected_with_token_revoked(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    set(&stack, &token, "dev", "/backend", "K", "v")
        .await
        .unwrap();

    stack
        .auth_client()
        .await
        .delete_service_token(with_token(
            auth_pb::DeleteServiceTokenRequest {
                token_id: token_id(&token),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();

    assert_denied(
        get(&stack, &token, "dev", "/backend", "K").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_eq!(
        token_meta(&stack, &token_id(&token))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let listed = stack
        .auth_client()
        .await
        .list_service_tokens(with_token(
            auth_pb::ListServiceTokensRequest {
                project_id: project,
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(listed.is_empty());
}

async fn uses_and_last_use_are_counted_and_lookup_consumes_none(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    assert_eq!(
        token_meta(&stack, &token_id(&token))
            .await
            .unwrap()
            .use_count,
        0
    );

    set(&stack, &token, "dev", "/backend", "K", "v")
        .await
        .unwrap(); // 1 lookup + 1 use
    get(&stack, &token, "dev", "/backend", "K").await.unwrap(); // 1 use
    let _ = get(&stack, &token, "dev", "/elsewhere", "K").await; // denied: no use

    let meta = token_meta(&stack, &token_id(&token)).await.unwrap();
    assert_eq!(meta.use_count, 2);
    assert!(meta.last_used_at.is_some());
    let info = lookup(&stack, &token).await;
    assert_eq!(info.use_count, 2);
    assert_eq!(info.project_id, project);
    assert_eq!(info.token_type, i32::from(auth_pb::TokenType::Service));
    assert_eq!(info.scopes[0].secret_path, "/backend/**");
}

async fn unlimited_token_uses_are_batched_in_memory_and_reported_exactly_before_a_flush(
    backend: Backend,
) {
    use sea_orm::{ConnectionTrait, Statement};
    // A long interval keeps the background flusher out of the way.
    let Some(stack) =
        Stack::start_with(backend, &[("LATCHKEY_STATE_CACHE_MILLIS", "600000")]).await
    else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let id = token_id(&token);
    let stored_uses = || async {
        let db = sea_orm::Database::connect(&stack.auth_db.url)
            .await
            .unwrap();
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT use_count FROM service_tokens WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "use_count").unwrap()
    };

    for _ in 0..3 {
        stack
            .authorize(&token)
            .path("/backend")
            .send()
            .await
            .unwrap();
    }

    // The steady-state path wrote nothing; an admin's read adds the
    // unflushed uses, and after a flush counts them once, not twice.
    assert_eq!(stored_uses().await, 0);
    assert_eq!(token_meta(&stack, &id).await.unwrap().use_count, 3);
    stack.auth.app.flush_uses().await.unwrap();
    assert_eq!(stored_uses().await, 3);
    assert_eq!(token_meta(&stack, &id).await.unwrap().use_count, 3);
}
