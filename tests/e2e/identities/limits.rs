//! Use limits of identity access tokens: exact under concurrency and across
//! replicas, reported by `LookupToken`, and argon2 run once per token.

use super::*;

backend_tests!(
    exactly_fifty_of_two_hundred_concurrent_calls_pass_a_limit_of_fifty,
    use_limit_is_exact_across_two_replicas_sharing_the_database,
    lookup_reports_uses_and_limit_without_consuming_one,
    limited_token_walkthrough_refuses_the_fourth_read,
    a_valid_tokens_second_call_does_not_run_argon2,
);

async fn exactly_fifty_of_two_hundred_concurrent_calls_pass_a_limit_of_fifty(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 50).await;

    let results = app_read(&stack, &token, &project)
        .send_concurrently(200)
        .await;

    assert_eq!(count_outcomes(results).await, (50, 150));
    assert_eq!(
        stack.lookup(&token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

async fn use_limit_is_exact_across_two_replicas_sharing_the_database(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let replica = stack.start_auth_replica().await;
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 50).await;

    let call = app_read(&stack, &token, &project);
    let on_replica = call.clone().at(&replica.url);
    let (on_first, on_replica) = tokio::join!(
        call.send_concurrently(100),
        on_replica.send_concurrently(100)
    );
    let results: Vec<_> = on_first.into_iter().chain(on_replica).collect();

    assert_eq!(count_outcomes(results).await, (50, 150));
    replica.stop().await;
}

async fn lookup_reports_uses_and_limit_without_consuming_one(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, token) = stack.identity_in_project(&project, "viewer", 5).await;
    app_read(&stack, &token, &project).send().await.unwrap();

    let first = stack.lookup(&token).await.unwrap();
    let second = stack.lookup(&token).await.unwrap();

    assert_eq!((first.use_count, first.use_limit), (1, 5));
    assert_eq!(second.use_count, 1);
    assert_eq!(first.token_type, i32::from(auth_pb::TokenType::Identity));
    assert_eq!(first.principal, format!("identity:{identity}"));
    let listed = stack
        .auth_client()
        .await
        .list_identity_access_tokens(with_token(
            auth_pb::ListIdentityAccessTokensRequest {
                identity_id: identity,
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].use_count, listed[0].use_limit, listed[0].revoked),
        (1, 5, false)
    );
    assert!(listed[0].last_used_at.is_some());
}

async fn limited_token_walkthrough_refuses_the_fourth_read(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, writer) = stack.identity_in_project(&project, "developer", 0).await;
    stack
        .set_raw(&writer, &project, "/backend", "DB_URL", "postgres://db")
        .await
        .unwrap();
    let (_, token) = stack.identity_in_project(&project, "viewer", 3).await;

    for _ in 0..3 {
        assert_eq!(
            read(&stack, &token, &project, "/backend", "DB_URL")
                .await
                .unwrap(),
            "postgres://db"
        );
    }
    let status = assert_denied(
        read(&stack, &token, &project, "/backend", "DB_URL").await,
        Code::Unauthenticated,
        "TOKEN_USES_EXHAUSTED",
    );
    assert!(status.message().contains("3 uses"), "{}", status.message());
}

async fn a_valid_tokens_second_call_does_not_run_argon2(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 0).await;
    let call = || {
        let call = app_read(&stack, &token, &project);
        async move { call.send().await }
    };
    call().await.unwrap();
    let runs = stack.auth.app.verifier().argon2_runs();

    call().await.unwrap();
    call().await.unwrap();

    assert_eq!(stack.auth.app.verifier().argon2_runs(), runs);
}
