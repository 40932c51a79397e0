//! Machine identities with Token Auth, end to end, on SQLite and PostgreSQL.

use chrono::Duration;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_test_support::{Backend, Stack, assert_denied, backend_tests, reason, with_token};
use tonic::Code;
use tonic_types::StatusExt;

backend_tests!(
    exactly_fifty_of_two_hundred_concurrent_calls_pass_a_limit_of_fifty,
    use_limit_is_exact_across_two_replicas_sharing_the_database,
    access_token_used_past_its_ttl_is_token_expired,
    renewal_extends_by_the_ttl_but_never_past_the_max_ttl,
    renewing_a_revoked_or_exhausted_token_fails_with_its_reason,
    identity_trusted_ips_match_ipv4_and_ipv6_addresses_and_ranges,
    forwarded_address_from_an_untrusted_peer_is_ignored,
    revocation_is_immediate_where_made_and_within_the_cache_bound_elsewhere,
    viewer_reads_but_cannot_write_and_developer_writes,
    developer_cannot_manage_tokens_and_project_admin_can_only_in_its_project,
    no_access_identity_cannot_call_admin_methods,
    scopes_narrow_a_membership,
    a_valid_tokens_second_call_does_not_run_argon2,
    config_change_applies_to_tokens_issued_after_it,
    deleting_an_identity_revokes_its_tokens,
    identity_reads_and_writes_raw_but_not_on_e2ee_projects,
    token_auth_settings_are_validated_naming_the_field,
    lookup_reports_uses_and_limit_without_consuming_one,
    limited_token_walkthrough_refuses_the_fourth_read,
    holder_cannot_revoke_its_token_from_an_untrusted_ip,
);

// ---- helpers ---------------------------------------------------------------

async fn read(
    stack: &Stack,
    token: &str,
    project: &str,
    path: &str,
    name: &str,
) -> Result<String, tonic::Status> {
    stack
        .secrets_client()
        .await
        .get_secret_raw(with_token(
            secrets_pb::GetSecretRequest {
                project_id: project.to_owned(),
                environment: "dev".into(),
                secret_path: path.into(),
                name: name.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().secret.unwrap().value)
}

async fn write(
    stack: &Stack,
    token: &str,
    project: &str,
    path: &str,
    name: &str,
    value: &str,
) -> Result<u64, tonic::Status> {
    stack
        .secrets_client()
        .await
        .set_secret_raw(with_token(
            secrets_pb::SetSecretRawRequest {
                project_id: project.to_owned(),
                environment: "dev".into(),
                secret_path: path.into(),
                name: name.into(),
                value: value.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().version)
}

async fn renew(
    stack: &Stack,
    token: &str,
) -> Result<auth_pb::RenewAccessTokenResponse, tonic::Status> {
    stack
        .auth_client()
        .await
        .renew_access_token(auth_pb::RenewAccessTokenRequest {
            access_token: token.to_owned(),
            client_ip: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// An identity with Token Auth `config` (identity id filled in) and `role` in `project`.
async fn identity_with(
    stack: &Stack,
    project: &str,
    role: &str,
    mut config: auth_pb::AttachTokenAuthRequest,
) -> (String, String) {
    let identity = stack.create_identity("member").await;
    config.identity_id = identity.clone();
    stack.attach_token_auth(config).await;
    stack
        .auth_client()
        .await
        .add_identity_to_project(with_token(
            auth_pb::AddIdentityToProjectRequest {
                project_id: project.to_owned(),
                identity_id: identity.clone(),
                role: role.to_owned(),
                scopes: Vec::new(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    let token = stack.create_access_token(&identity).await;
    (identity, token)
}

async fn count_outcomes(
    results: Vec<Result<auth_pb::AuthorizeResponse, tonic::Status>>,
) -> (usize, usize) {
    let mut allowed = 0;
    let mut exhausted = 0;
    for result in results {
        match result {
            Ok(_) => allowed += 1,
            Err(status) => {
                assert_eq!(reason(&status), "TOKEN_USES_EXHAUSTED", "{status:?}");
                exhausted += 1;
            }
        }
    }
    (allowed, exhausted)
}

// ---- scenarios -------------------------------------------------------------

async fn exactly_fifty_of_two_hundred_concurrent_calls_pass_a_limit_of_fifty(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 50).await;

    let results = stack
        .authorize(&token)
        .project(&project)
        .path("/app")
        .raw()
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

    let call = stack.authorize(&token).project(&project).path("/app").raw();
    let on_replica = call.clone().at(&replica.url);
    let (on_first, on_replica) = tokio::join!(
        call.send_concurrently(100),
        on_replica.send_concurrently(100)
    );
    let results: Vec<_> = on_first.into_iter().chain(on_replica).collect();

    assert_eq!(count_outcomes(results).await, (50, 150));
    replica.stop().await;
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
    write(&stack, &writer, &project, "/app", "K", "v")
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
    assert!(stack.lookup(&token).await.is_ok());

    let capped = renew(&stack, &token).await.unwrap(); // min(105 + 60, 0 + 150) = 150
    assert_eq!(capped.expires_in, 45);
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
    stack
        .authorize(&token)
        .project(&project)
        .path("/app")
        .raw()
        .send()
        .await
        .unwrap();

    assert_denied(
        renew(&stack, &token).await,
        Code::Unauthenticated,
        "TOKEN_USES_EXHAUSTED",
    );

    let other = stack.create_access_token(&identity).await;
    stack
        .auth_client()
        .await
        .revoke_access_token(auth_pb::RevokeAccessTokenRequest {
            access_token: other.clone(),
            token_id: String::new(),
            client_ip: String::new(),
        })
        .await
        .unwrap();
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

async fn identity_trusted_ips_match_ipv4_and_ipv6_addresses_and_ranges(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = identity_with(
        &stack,
        &project,
        "viewer",
        auth_pb::AttachTokenAuthRequest {
            access_token_trusted_ips: vec![
                "127.0.0.1".into(),
                "10.0.0.0/8".into(),
                "2001:db8::/32".into(),
                "::1".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    let call = |ip: &'static str| {
        let call = stack
            .authorize(&token)
            .project(&project)
            .path("/app")
            .raw()
            .from(ip);
        async move { call.send().await }
    };

    for ip in [
        "127.0.0.1",
        "10.9.8.7",
        "2001:db8:ab::5",
        "::1",
        "::ffff:10.0.0.1",
    ] {
        assert!(call(ip).await.is_ok(), "{ip} should be trusted");
    }
    for ip in ["127.0.0.2", "11.0.0.1", "2001:db9::1", "::2"] {
        let status = assert_denied(call(ip).await, Code::PermissionDenied, "IP_NOT_TRUSTED");
        assert!(status.message().contains(ip), "{}", status.message());
    }
    // Through the secrets service the TCP peer (127.0.0.1) counts.
    let (_, writer) = stack.identity_in_project(&project, "developer", 0).await;
    write(&stack, &writer, &project, "/app", "K", "v")
        .await
        .unwrap();
    assert_eq!(
        read(&stack, &token, &project, "/app", "K").await.unwrap(),
        "v"
    );
}

async fn forwarded_address_from_an_untrusted_peer_is_ignored(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = identity_with(
        &stack,
        &project,
        "viewer",
        auth_pb::AttachTokenAuthRequest {
            access_token_trusted_ips: vec!["203.0.113.0/24".into()],
            ..Default::default()
        },
    )
    .await;
    let mut request = with_token(
        secrets_pb::ListSecretsRequest {
            project_id: project.clone(),
            environment: "dev".into(),
            secret_path: "/".into(),
            recursive: false,
        },
        &token,
    );
    request
        .metadata_mut()
        .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());

    let result = stack.secrets_client().await.list_secrets_raw(request).await;

    let status = assert_denied(result, Code::PermissionDenied, "IP_NOT_TRUSTED");
    assert!(
        status.message().contains("127.0.0.1"),
        "the peer, not the header: {}",
        status.message()
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
        let call = stack
            .authorize(&token)
            .project(&project)
            .path("/app")
            .raw()
            .at(url);
        async move { call.send().await }
    };
    on(&stack.auth_url).await.unwrap();
    on(&replica.url).await.unwrap(); // both replicas now hold the token's row in their caches

    stack
        .auth_client()
        .await
        .revoke_access_token(auth_pb::RevokeAccessTokenRequest {
            access_token: token.clone(),
            token_id: String::new(),
            client_ip: String::new(),
        })
        .await
        .unwrap();

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

async fn viewer_reads_but_cannot_write_and_developer_writes(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, viewer) = stack.identity_in_project(&project, "viewer", 0).await;
    let (_, developer) = stack.identity_in_project(&project, "developer", 0).await;

    assert_eq!(
        write(&stack, &developer, &project, "/app", "K", "v")
            .await
            .unwrap(),
        1
    );
    let status = assert_denied(
        write(&stack, &viewer, &project, "/app", "K", "x").await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert!(status.message().contains("write"), "{}", status.message());
    assert_eq!(
        read(&stack, &viewer, &project, "/app", "K").await.unwrap(),
        "v"
    );
    let (_, outsider) = {
        let identity = stack.create_identity("member").await;
        stack
            .attach_token_auth(auth_pb::AttachTokenAuthRequest {
                identity_id: identity.clone(),
                ..Default::default()
            })
            .await;
        let token = stack.create_access_token(&identity).await;
        (identity, token)
    };
    let status = assert_denied(
        read(&stack, &outsider, &project, "/app", "K").await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert!(
        status.message().contains("not a member"),
        "{}",
        status.message()
    );
}

async fn developer_cannot_manage_tokens_and_project_admin_can_only_in_its_project(
    backend: Backend,
) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let other_project = stack.create_project(false).await;
    let (_, developer) = stack.identity_in_project(&project, "developer", 0).await;
    let (_, admin) = stack.identity_in_project(&project, "admin", 0).await;
    let mut auth = stack.auth_client().await;
    let token_request = |p: &str| Stack::token_request(p, &["dev:/**"], &["read"]);

    let status = assert_denied(
        auth.create_service_token(with_token(token_request(&project), &developer))
            .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert!(status.message().contains("admin"), "{}", status.message());
    assert!(
        auth.create_service_token(with_token(token_request(&project), &admin))
            .await
            .is_ok()
    );
    assert_denied(
        auth.create_service_token(with_token(token_request(&other_project), &admin))
            .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_denied(
        auth.create_project(with_token(
            auth_pb::CreateProjectRequest {
                name: "x".into(),
                e2ee: false,
            },
            &admin,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
}

async fn no_access_identity_cannot_call_admin_methods(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let identity = stack.create_identity("no-access").await;
    stack
        .attach_token_auth(auth_pb::AttachTokenAuthRequest {
            identity_id: identity.clone(),
            ..Default::default()
        })
        .await;
    let token = stack.create_access_token(&identity).await;
    let mut auth = stack.auth_client().await;

    assert_denied(
        auth.list_projects(with_token(auth_pb::ListProjectsRequest {}, &token))
            .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_denied(
        auth.list_identities(with_token(auth_pb::ListIdentitiesRequest {}, &token))
            .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_denied(
        auth.create_service_token(with_token(
            Stack::token_request(&project, &["dev:/**"], &["read"]),
            &token,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let me = stack.lookup(&token).await.unwrap();
    assert_eq!(me.org_role, "no-access");
}

async fn scopes_narrow_a_membership(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let identity = stack.create_identity("member").await;
    stack
        .attach_token_auth(auth_pb::AttachTokenAuthRequest {
            identity_id: identity.clone(),
            ..Default::default()
        })
        .await;
    stack
        .auth_client()
        .await
        .add_identity_to_project(with_token(
            auth_pb::AddIdentityToProjectRequest {
                project_id: project.clone(),
                identity_id: identity.clone(),
                role: "developer".into(),
                scopes: vec![auth_pb::Scope {
                    environment: "dev".into(),
                    secret_path: "/app/**".into(),
                }],
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    let token = stack.create_access_token(&identity).await;

    assert_eq!(
        write(&stack, &token, &project, "/app/db", "K", "v")
            .await
            .unwrap(),
        1
    );
    let status = assert_denied(
        write(&stack, &token, &project, "/billing", "K", "v").await,
        Code::PermissionDenied,
        "SCOPE_DENIED",
    );
    assert!(
        status.message().contains("dev:/app/**"),
        "{}",
        status.message()
    );
    assert_denied(
        read(&stack, &token, &project, "/", "K").await,
        Code::PermissionDenied,
        "SCOPE_DENIED",
    );
}

async fn a_valid_tokens_second_call_does_not_run_argon2(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 0).await;
    let call = || {
        let call = stack.authorize(&token).project(&project).path("/app").raw();
        async move { call.send().await }
    };
    call().await.unwrap();
    let runs = stack.auth.app.verifier().argon2_runs();

    call().await.unwrap();
    call().await.unwrap();

    assert_eq!(stack.auth.app.verifier().argon2_runs(), runs);
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

async fn identity_reads_and_writes_raw_but_not_on_e2ee_projects(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let sealed_project = stack.create_project(true).await;
    let (_, token) = stack.identity_in_project(&project, "developer", 0).await;
    let identity = stack
        .lookup(&token)
        .await
        .unwrap()
        .principal
        .trim_start_matches("identity:")
        .to_owned();
    stack
        .auth_client()
        .await
        .add_identity_to_project(with_token(
            auth_pb::AddIdentityToProjectRequest {
                project_id: sealed_project.clone(),
                identity_id: identity,
                role: "developer".into(),
                scopes: Vec::new(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();

    write(&stack, &token, &project, "/", "K", "raw ✓")
        .await
        .unwrap();
    assert_eq!(
        read(&stack, &token, &project, "/", "K").await.unwrap(),
        "raw ✓"
    );
    assert_denied(
        write(&stack, &token, &sealed_project, "/", "K", "x").await,
        Code::FailedPrecondition,
        "E2EE_ENABLED",
    );
    let status = read(&stack, &token, "", "/", "K").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("project_id"),
        "{}",
        status.message()
    );
}

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

async fn lookup_reports_uses_and_limit_without_consuming_one(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (identity, token) = stack.identity_in_project(&project, "viewer", 5).await;
    stack
        .authorize(&token)
        .project(&project)
        .path("/app")
        .raw()
        .send()
        .await
        .unwrap();

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
    write(
        &stack,
        &writer,
        &project,
        "/backend",
        "DB_URL",
        "postgres://db",
    )
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
        stack
            .auth_client()
            .await
            .revoke_access_token(auth_pb::RevokeAccessTokenRequest {
                access_token: token.clone(),
                token_id: String::new(),
                client_ip: String::new(),
            })
            .await,
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
