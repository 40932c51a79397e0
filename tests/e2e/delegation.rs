//! Delegation never widens, and admin calls leak nothing: a project admin
//! narrowed by scopes manages only what lies inside them, project-wide
//! settings need an unscoped admin, and a caller who may not act gets the
//! same denial whether or not the object exists. On SQLite and PostgreSQL.

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_test_support::{Backend, Stack, assert_denied, backend_tests, with_token};
use tonic::Code;

backend_tests!(
    scoped_admin_cannot_create_a_token_wider_than_its_scopes,
    scoped_admin_cannot_change_project_wide_settings,
    scoped_admin_cannot_add_an_unscoped_or_wider_membership,
    scoped_admin_manages_only_tokens_inside_its_scopes,
    scoped_admin_removes_only_memberships_inside_its_scopes,
    token_admin_calls_deny_alike_whether_or_not_the_token_exists,
    admin_calls_authenticate_then_parse_before_any_lookup,
    project_allowlist_applies_to_project_admins,
    untrusted_ip_learns_nothing_of_whether_a_project_exists,
    unscoped_membership_cannot_reach_an_environment_the_project_lacks,
);

// ---- helpers ---------------------------------------------------------------

fn scope(s: &str) -> auth_pb::Scope {
    let (env, path) = s.split_once(':').unwrap();
    auth_pb::Scope {
        environment: env.to_owned(),
        secret_path: path.to_owned(),
    }
}

/// An identity with Token Auth (`trusted_ips`, empty for the default) and
/// `role` in `project`, narrowed to `scopes` when given; returns (id, token).
async fn member(
    stack: &Stack,
    project: &str,
    role: &str,
    scopes: &[&str],
    trusted_ips: &[&str],
) -> (String, String) {
    let identity = stack.create_identity("member").await;
    stack
        .attach_token_auth(auth_pb::AttachTokenAuthRequest {
            identity_id: identity.clone(),
            access_token_trusted_ips: trusted_ips.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        })
        .await;
    stack
        .auth_client()
        .await
        .add_identity_to_project(with_token(
            add_request(project, &identity, role, scopes),
            &stack.admin_token,
        ))
        .await
        .unwrap();
    let token = stack.create_access_token(&identity).await;
    (identity, token)
}

fn add_request(
    project: &str,
    identity: &str,
    role: &str,
    scopes: &[&str],
) -> auth_pb::AddIdentityToProjectRequest {
    auth_pb::AddIdentityToProjectRequest {
        project_id: project.to_owned(),
        identity_id: identity.to_owned(),
        role: role.to_owned(),
        scopes: scopes.iter().map(|s| scope(s)).collect(),
    }
}

/// A project and an admin of it narrowed to `dev:/team-a/**`.
async fn with_scoped_admin(stack: &Stack) -> (String, String) {
    let project = stack.create_project(false).await;
    let (_, admin) = member(stack, &project, "admin", &["dev:/team-a/**"], &[]).await;
    (project, admin)
}

async fn token_count(stack: &Stack, project: &str) -> usize {
    stack
        .auth_client()
        .await
        .list_service_tokens(with_token(
            auth_pb::ListServiceTokensRequest {
                project_id: project.to_owned(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .tokens
        .len()
}

// ---- scenarios -------------------------------------------------------------

async fn scoped_admin_cannot_create_a_token_wider_than_its_scopes(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let (project, admin) = with_scoped_admin(&stack).await;
    let mut auth = stack.auth_client().await;
    let prod = Stack::token_request(&project, &["prod:/**"], &["read", "write"]);
    let mixed = Stack::token_request(&project, &["dev:/team-a/api", "dev:/**"], &["read"]);
    let inside = Stack::token_request(&project, &["dev:/team-a/api/**"], &["read", "write"]);

    let refused = assert_denied(
        auth.create_service_token(with_token(prod, &admin)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let refused_mixed = assert_denied(
        auth.create_service_token(with_token(mixed, &admin)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_eq!(
        token_count(&stack, &project).await,
        0,
        "nothing was created"
    );
    let created = auth.create_service_token(with_token(inside, &admin)).await;

    assert!(
        refused.message().contains("prod:/**") && refused.message().contains("dev:/team-a/**"),
        "{}",
        refused.message()
    );
    assert!(
        refused_mixed.message().contains("dev:/**"),
        "{}",
        refused_mixed.message()
    );
    assert!(created.is_ok(), "{created:?}");
}

async fn scoped_admin_cannot_change_project_wide_settings(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let (project, scoped) = with_scoped_admin(&stack).await;
    let (_, unscoped) = member(&stack, &project, "admin", &[], &[]).await;
    let mut auth = stack.auth_client().await;
    let clear = || auth_pb::SetProjectTrustedIpsRequest {
        project_id: project.clone(),
        trusted_ips: Vec::new(),
    };
    let env = || auth_pb::CreateEnvironmentRequest {
        project_id: project.clone(),
        slug: "qa".into(),
        name: String::new(),
    };

    let allowlist = assert_denied(
        auth.set_project_trusted_ips(with_token(clear(), &scoped))
            .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let environment = assert_denied(
        auth.create_environment(with_token(env(), &scoped)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );

    assert!(
        allowlist.message().contains("IP allowlist"),
        "{}",
        allowlist.message()
    );
    assert!(
        environment.message().contains("unscoped project admin"),
        "{}",
        environment.message()
    );
    auth.set_project_trusted_ips(with_token(clear(), &unscoped))
        .await
        .unwrap();
    auth.create_environment(with_token(env(), &unscoped))
        .await
        .unwrap();
}

async fn scoped_admin_cannot_add_an_unscoped_or_wider_membership(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let (project, admin) = with_scoped_admin(&stack).await;
    let other = stack.create_identity("member").await;
    let mut auth = stack.auth_client().await;

    let unscoped = assert_denied(
        auth.add_identity_to_project(with_token(
            add_request(&project, &other, "admin", &[]),
            &admin,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let wider = assert_denied(
        auth.add_identity_to_project(with_token(
            add_request(&project, &other, "viewer", &["prod:/db"]),
            &admin,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let inside = auth
        .add_identity_to_project(with_token(
            add_request(&project, &other, "admin", &["dev:/team-a/web/**"]),
            &admin,
        ))
        .await;

    assert!(
        unscoped.message().contains("unscoped membership"),
        "{}",
        unscoped.message()
    );
    assert!(wider.message().contains("prod:/db"), "{}", wider.message());
    assert!(inside.is_ok(), "{inside:?}");
}

async fn scoped_admin_manages_only_tokens_inside_its_scopes(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let (project, admin) = with_scoped_admin(&stack).await;
    let prod = stack
        .create_service_token(Stack::token_request(&project, &["prod:/**"], &["read"]))
        .await;
    let team = stack
        .create_service_token(Stack::token_request(
            &project,
            &["dev:/team-a/x"],
            &["read"],
        ))
        .await;
    let id = |t: &str| t.split('.').nth(1).unwrap().to_owned();
    let mut auth = stack.auth_client().await;

    let get = assert_denied(
        auth.get_service_token(with_token(
            auth_pb::GetServiceTokenRequest {
                token_id: id(&prod),
            },
            &admin,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_denied(
        auth.delete_service_token(with_token(
            auth_pb::DeleteServiceTokenRequest {
                token_id: id(&prod),
            },
            &admin,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_denied(
        auth.set_service_token_active(with_token(
            auth_pb::SetServiceTokenActiveRequest {
                token_id: id(&prod),
                active: false,
            },
            &admin,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let listed = auth
        .list_service_tokens(with_token(
            auth_pb::ListServiceTokensRequest {
                project_id: project.clone(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .tokens;

    assert!(!get.message().contains(&project), "{}", get.message());
    assert_eq!(
        listed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![id(&team)],
        "only the token inside its scopes"
    );
    auth.set_service_token_active(with_token(
        auth_pb::SetServiceTokenActiveRequest {
            token_id: id(&team),
            active: false,
        },
        &admin,
    ))
    .await
    .unwrap();
    auth.delete_service_token(with_token(
        auth_pb::DeleteServiceTokenRequest {
            token_id: id(&team),
        },
        &admin,
    ))
    .await
    .unwrap();
    assert_eq!(
        token_count(&stack, &project).await,
        1,
        "the prod token is untouched"
    );
}

async fn scoped_admin_removes_only_memberships_inside_its_scopes(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let (project, admin) = with_scoped_admin(&stack).await;
    let (unscoped, _) = member(&stack, &project, "viewer", &[], &[]).await;
    let (prod, _) = member(&stack, &project, "viewer", &["prod:/**"], &[]).await;
    let (team, _) = member(&stack, &project, "viewer", &["dev:/team-a/x"], &[]).await;
    let mut auth = stack.auth_client().await;
    let remove = |identity: &str| {
        with_token(
            auth_pb::RemoveIdentityFromProjectRequest {
                project_id: project.clone(),
                identity_id: identity.to_owned(),
            },
            &admin,
        )
    };

    assert_denied(
        auth.remove_identity_from_project(remove(&unscoped)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_denied(
        auth.remove_identity_from_project(remove(&prod)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    auth.remove_identity_from_project(remove(&team))
        .await
        .unwrap();
}

async fn token_admin_calls_deny_alike_whether_or_not_the_token_exists(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;
    let existing = token.split('.').nth(1).unwrap().to_owned();
    let unknown = uuid::Uuid::new_v4().to_string();
    // A member identity with no membership anywhere.
    let outsider = stack.create_identity("member").await;
    stack
        .attach_token_auth(auth_pb::AttachTokenAuthRequest {
            identity_id: outsider.clone(),
            ..Default::default()
        })
        .await;
    let outsider = stack.create_access_token(&outsider).await;
    let mut auth = stack.auth_client().await;
    let get = |id: &str| {
        with_token(
            auth_pb::GetServiceTokenRequest {
                token_id: id.to_owned(),
            },
            &outsider,
        )
    };

    let a = assert_denied(
        auth.get_service_token(get(&existing)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let b = assert_denied(
        auth.get_service_token(get(&unknown)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );

    assert_eq!(a.message(), b.message(), "indistinguishable");
    assert!(!a.message().contains(&project), "{}", a.message());
}

async fn admin_calls_authenticate_then_parse_before_any_lookup(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let mut auth = stack.auth_client().await;
    let empty = || auth_pb::GetProjectRequest {
        project_id: String::new(),
    };

    let unauthenticated = auth.get_project(empty()).await;
    let invalid = auth
        .get_project(with_token(empty(), &stack.admin_token))
        .await;

    assert_denied(unauthenticated, Code::Unauthenticated, "TOKEN_MALFORMED");
    let status = assert_denied(invalid, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(
        status.message().contains("project_id"),
        "{}",
        status.message()
    );
    // A member with no admin role: parsed first, then denied, never "in project ;".
    let project = stack.create_project(false).await;
    let (_, viewer) = member(&stack, &project, "viewer", &[], &[]).await;
    let status = assert_denied(
        auth.get_project(with_token(empty(), &viewer)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert!(
        !status.message().contains("in project ;"),
        "{}",
        status.message()
    );
}

async fn project_allowlist_applies_to_project_admins(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, admin) = member(&stack, &project, "admin", &[], &[]).await;
    let mut auth = stack.auth_client().await;
    auth.set_project_trusted_ips(with_token(
        auth_pb::SetProjectTrustedIpsRequest {
            project_id: project.clone(),
            trusted_ips: vec!["192.0.2.0/24".into()],
        },
        &stack.admin_token,
    ))
    .await
    .unwrap();

    let status = assert_denied(
        auth.create_service_token(with_token(
            Stack::token_request(&project, &["dev:/**"], &["read"]),
            &admin,
        ))
        .await,
        Code::PermissionDenied,
        "IP_NOT_TRUSTED",
    );

    assert!(
        status.message().contains("127.0.0.1"),
        "{}",
        status.message()
    );
    assert_eq!(token_count(&stack, &project).await, 0);
}

async fn untrusted_ip_learns_nothing_of_whether_a_project_exists(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let other = stack.create_project(false).await;
    let (_, fenced) = member(&stack, &project, "viewer", &[], &["127.0.0.1/32"]).await;
    let (_, open) = member(&stack, &project, "viewer", &[], &[]).await;
    let authorize = |token: &str, project: &str, ip: &str| {
        stack.authorize(token).project(project).raw().from(ip)
    };
    let random = uuid::Uuid::new_v4().to_string();

    // From an untrusted IP: the same answer for a real and a random project.
    for p in [&project, &random] {
        assert_denied(
            authorize(&fenced, p, "192.0.2.7").send().await,
            Code::PermissionDenied,
            "IP_NOT_TRUSTED",
        );
    }
    // Trusted, but not a member: the same answer for another real and a random one.
    let a = assert_denied(
        authorize(&open, &other, "127.0.0.1").send().await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let b = assert_denied(
        authorize(&open, &random, "127.0.0.1").send().await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert_eq!(
        a.message().replace(&other, "<p>"),
        b.message().replace(&random, "<p>")
    );
}

async fn unscoped_membership_cannot_reach_an_environment_the_project_lacks(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let (_, developer) = member(&stack, &project, "developer", &[], &[]).await;
    let write = |env: &str| {
        stack
            .authorize(&developer)
            .project(&project)
            .env(env)
            .write()
            .raw()
    };

    let status = assert_denied(
        write("qa").send().await,
        Code::PermissionDenied,
        "SCOPE_DENIED",
    );

    assert!(status.message().contains("\"qa\""), "{}", status.message());
    assert!(write("dev").send().await.is_ok());
}
