//! What an identity may do: project roles and scopes, raw calls, and the
//! addresses its tokens are trusted from.

use super::*;

backend_tests!(
    viewer_reads_but_cannot_write_and_developer_writes,
    developer_cannot_manage_tokens_and_project_admin_can_only_in_its_project,
    no_access_identity_cannot_call_admin_methods,
    scopes_narrow_a_membership,
    identity_reads_and_writes_raw_but_not_on_e2ee_projects,
    identity_trusted_ips_match_ipv4_and_ipv6_addresses_and_ranges,
    forwarded_address_from_an_untrusted_peer_is_ignored,
);

async fn viewer_reads_but_cannot_write_and_developer_writes(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, viewer) = stack.identity_in_project(&project, "viewer", 0).await;
    let (_, developer) = stack.identity_in_project(&project, "developer", 0).await;

    assert_eq!(
        stack
            .set_raw(&developer, &project, "/app", "K", "v")
            .await
            .unwrap(),
        1
    );
    let status = assert_denied(
        stack.set_raw(&viewer, &project, "/app", "K", "x").await,
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
        stack
            .set_raw(&token, &project, "/app/db", "K", "v")
            .await
            .unwrap(),
        1
    );
    let status = assert_denied(
        stack.set_raw(&token, &project, "/billing", "K", "v").await,
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

    stack
        .set_raw(&token, &project, "/", "K", "raw ✓")
        .await
        .unwrap();
    assert_eq!(
        read(&stack, &token, &project, "/", "K").await.unwrap(),
        "raw ✓"
    );
    assert_denied(
        stack.set_raw(&token, &sealed_project, "/", "K", "x").await,
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
        let call = app_read(&stack, &token, &project).from(ip);
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
    stack
        .set_raw(&writer, &project, "/app", "K", "v")
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
