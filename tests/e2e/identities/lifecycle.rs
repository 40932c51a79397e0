//! An access token's life under Token Auth: settings, issue, expiry,
//! renewal, revocation and the deletion of its identity.

use super::*;

backend_tests!(
    token_auth_settings_are_validated_naming_the_field,
    config_change_applies_to_tokens_issued_after_it,
    access_token_used_past_its_ttl_is_token_expired,
    renewal_extends_by_the_ttl_but_never_past_the_max_ttl,
    renewing_a_revoked_or_exhausted_token_fails_with_its_reason,
    revocation_is_immediate_where_made_and_within_the_cache_bound_elsewhere,
    holder_cannot_revoke_its_token_from_an_untrusted_ip,
    deleting_an_identity_revokes_its_tokens,
);

async fn token_auth_settings_are_validated_naming_the_field(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let identity = stack.create_identity("member").await;
    let mut auth = stack.auth_client().await;
    let cases = [
        (
            auth_pb::AttachTokenAuthRequest {
                access_token_ttl: Some(0),
                ..Default::default()
            },
            "access_token_ttl",
        ),
        (
            auth_pb::AttachTokenAuthRequest {
                access_token_ttl: Some(100),
                access_token_max_ttl: Some(50),
                ..Default::default()
            },
            "access_token_max_ttl",
        ),
        (
            auth_pb::AttachTokenAuthRequest {
                access_token_num_uses_limit: Some(-1),
                ..Default::default()
            },
            "access_token_num_uses_limit",
        ),
        (
            auth_pb::AttachTokenAuthRequest {
                access_token_trusted_ips: vec!["1.2.3.4/40".into()],
                ..Default::default()
            },
            "access_token_trusted_ips[0]",
        ),
    ];
    for (mut request, field) in cases {
        request.identity_id = identity.clone();
        let status = auth
            .attach_token_auth(with_token(request, &stack.admin_token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status
                .get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            field
        );
    }
    let missing = auth
        .create_identity_access_token(with_token(
            auth_pb::CreateIdentityAccessTokenRequest {
                identity_id: identity.clone(),
                name: String::new(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Code::NotFound,
        "rejected attaches changed nothing: {missing:?}"
    );
    let role = auth
        .create_identity(with_token(
            auth_pb::CreateIdentityRequest {
                name: "x".into(),
                org_role: "owner".into(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        role.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "org_role"
    );
}

async fn config_change_applies_to_tokens_issued_after_it(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, old) = stack.identity_in_project(&project, "viewer", 0).await;

    stack
        .auth_client()
        .await
        .update_token_auth(with_token(
            auth_pb::UpdateTokenAuthRequest {
                identity_id: identity.clone(),
                access_token_ttl: Some(60),
                access_token_max_ttl: Some(60),
                access_token_num_uses_limit: Some(1),
                access_token_trusted_ips: Vec::new(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    let new = stack.create_access_token(&identity).await;

    let (old_info, new_info) = (
        stack.lookup(&old).await.unwrap(),
        stack.lookup(&new).await.unwrap(),
    );
    assert_eq!((old_info.use_limit, new_info.use_limit), (0, 1));
    let ttl = |i: &auth_pb::LookupTokenResponse| i.expires_at.as_ref().unwrap().seconds;
    assert!(
        ttl(&old_info) - ttl(&new_info) > 2_000_000,
        "the old token keeps its 30-day TTL"
    );
    let config = stack
        .auth_client()
        .await
        .get_token_auth(with_token(
            auth_pb::GetTokenAuthRequest {
                identity_id: identity,
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    assert_eq!(
        (config.access_token_ttl, config.access_token_num_uses_limit),
        (60, 1)
    );
    assert_eq!(config.access_token_trusted_ips, ["0.0.0.0/0", "::/0"]);
}

async fn access_token_used_past_its_ttl_is_token_expired(backend: Backend) {
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
            access_token_max_ttl: Some(120),
            ..Default::default()
        },
    )
    .await;
    let (_, writer) = stack.identity_in_project(&project, "developer", 0).await;
    stack
        .set_raw(&writer, &project, "/app", "K", "v")
        .await
        .unwrap();
    assert_eq!(
        read(&stack, &token, &project, "/app", "K").await.unwrap(),
        "v"
    );

    stack.clock.advance(Duration::seconds(60));

    let status = assert_denied(
        read(&stack, &token, &project, "/app", "K").await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
    assert!(
        status.message().contains("create a new token"),
        "{}",
        status.message()
    );
}

async fn renewal_extends_by_the_ttl_but_never_past_the_max_ttl(backend: Backend) {
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
            access_token_max_ttl: Some(150),
            ..Default::default()
        },
    )
    .await;

    stack.clock.advance(Duration::seconds(50));
    let renewed = renew(&stack, &token).await.unwrap();
    assert_eq!(
        (
            renewed.expires_in,
            renewed.access_token_max_ttl,
            renewed.token_type.as_str()
        ),
        (60, 150, "Bearer")
    );
    stack.clock.advance(Duration::seconds(55)); // t=105: alive thanks to the renewal (expiry 110)
    // The renewal returned a new JWT; the presented copy lapsed at its own exp (t=60).
    let token = renewed.access_token;
    assert!(stack.lookup(&token).await.is_ok());

    let capped = renew(&stack, &token).await.unwrap(); // min(105 + 60, 0 + 150) = 150
    assert_eq!(capped.expires_in, 45);
    let token = capped.access_token;
    stack.clock.advance(Duration::seconds(45)); // t=150

    assert_denied(
        stack.lookup(&token).await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
    assert_denied(
        renew(&stack, &token).await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
}

async fn renewing_a_revoked_or_exhausted_token_fails_with_its_reason(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, token) = stack.identity_in_project(&project, "viewer", 1).await;
    app_read(&stack, &token, &project).send().await.unwrap();

    assert_denied(
        renew(&stack, &token).await,
        Code::Unauthenticated,
        "TOKEN_USES_EXHAUSTED",
    );

    let other = stack.create_access_token(&identity).await;
    revoke(&stack, &other).await.unwrap();
    assert_denied(
        renew(&stack, &other).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_denied(
        stack.lookup(&other).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
}

async fn revocation_is_immediate_where_made_and_within_the_cache_bound_elsewhere(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let replica = stack.start_auth_replica().await;
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 0).await;
    let on = |url: &str| {
        let call = app_read(&stack, &token, &project).at(url);
        async move { call.send().await }
    };
    on(&stack.auth_url).await.unwrap();
    on(&replica.url).await.unwrap(); // both replicas now hold the token's row in their caches

    revoke(&stack, &token).await.unwrap();

    // The replica that revoked dropped its cached row: refused at once.
    assert_denied(
        on(&stack.auth_url).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    // Another replica re-reads the row once its cached copy is older than the
    // bound (LATCHKEY_STATE_CACHE_MILLIS, 1 s by default), measured on the clock.
    stack.clock.advance(Duration::milliseconds(1000));
    assert_denied(
        on(&replica.url).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    replica.stop().await;
}

async fn holder_cannot_revoke_its_token_from_an_untrusted_ip(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, token) = identity_with(
        &stack,
        &project,
        "viewer",
        auth_pb::AttachTokenAuthRequest {
            access_token_trusted_ips: vec!["192.0.2.0/24".into()],
            ..Default::default()
        },
    )
    .await;

    let status = assert_denied(
        revoke(&stack, &token).await,
        Code::PermissionDenied,
        "IP_NOT_TRUSTED",
    );

    assert!(
        status.message().contains("127.0.0.1"),
        "{}",
        status.message()
    );
    let tokens = stack
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
    assert!(!tokens[0].revoked, "nothing changed");
}

async fn deleting_an_identity_revokes_its_tokens(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, token) = stack.identity_in_project(&project, "viewer", 0).await;
    let mut auth = stack.auth_client().await;

    auth.delete_identity(with_token(
        auth_pb::DeleteIdentityRequest {
            identity_id: identity.clone(),
        },
        &stack.admin_token,
    ))
    .await
    .unwrap();

    assert_denied(
        stack.lookup(&token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    let listed = auth
        .list_identities(with_token(
            auth_pb::ListIdentitiesRequest {},
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.identities.iter().all(|i| i.id != identity));
    let me = stack.lookup(&stack.admin_token).await.unwrap();
    let own = me.principal.trim_start_matches("identity:").to_owned();
    let status = auth
        .delete_identity(with_token(
            auth_pb::DeleteIdentityRequest { identity_id: own },
            &stack.admin_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "an admin cannot delete itself"
    );
}
