//! Issuing service tokens: the bootstrap admin, who may create them, what
//! bad input is told, and what the database keeps.

use super::*;

backend_tests!(
    bootstrap_admin_token_is_private_written_once_and_is_an_admin,
    admin_calls_need_an_admin_identity,
    bad_input_is_invalid_argument_naming_the_field_and_changes_nothing,
    database_holds_no_copy_of_the_token_key_part,
);

async fn bootstrap_admin_token_is_private_written_once_and_is_an_admin(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let path = stack.data_dir().join("admin-token");

    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    let again = stack
        .auth
        .app
        .bootstrap_admin(&stack.data_dir().join("second-admin-token"))
        .await
        .unwrap();

    assert_eq!(mode & 0o777, 0o600);
    assert!(
        again.is_none(),
        "a database with an identity gets no second bootstrap admin"
    );
    assert!(!stack.data_dir().join("second-admin-token").exists());
    let info = lookup(&stack, &stack.admin_token).await;
    assert_eq!(info.token_type, i32::from(auth_pb::TokenType::Identity));
    assert_eq!(info.org_role, "admin");
    assert!(info.expires_at.is_none());
}

async fn admin_calls_need_an_admin_identity(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let mut auth = stack.auth_client().await;

    let status = assert_denied(
        auth.create_project(with_token(
            auth_pb::CreateProjectRequest {
                name: "x".into(),
                e2ee: false,
            },
            &token,
        ))
        .await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert!(status.message().contains("admin"));
    assert_denied(
        auth.list_projects(auth_pb::ListProjectsRequest {}).await,
        Code::Unauthenticated,
        "TOKEN_MALFORMED",
    );
    let projects = auth
        .list_projects(with_token(
            auth_pb::ListProjectsRequest {},
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .projects;
    assert_eq!(projects.len(), 1);
    let envs: Vec<_> = projects[0]
        .environments
        .iter()
        .map(|e| e.slug.as_str())
        .collect();
    assert_eq!(envs, ["dev", "staging", "prod"]);
    let created = auth
        .create_environment(with_token(
            auth_pb::CreateEnvironmentRequest {
                project_id: project.clone(),
                slug: "qa".into(),
                name: "QA".into(),
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert!(created.environments.iter().any(|e| e.slug == "qa"));
    let again = auth
        .create_environment(with_token(
            auth_pb::CreateEnvironmentRequest {
                project_id: project,
                slug: "qa".into(),
                name: String::new(),
            },
            &stack.admin_token,
        ))
        .await;
    assert_eq!(again.unwrap_err().code(), Code::AlreadyExists);
}

async fn bad_input_is_invalid_argument_naming_the_field_and_changes_nothing(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;

    for (path, hint) in [
        ("backend", "relative"),
        ("/backend/../x", "\"..\""),
        ("/a/./b", "\".\""),
        ("/a\u{1}", "control"),
    ] {
        let status = assert_denied(
            get_unchecked(&stack, &token, "dev", path, "K").await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert!(
            status.message().contains("secret_path"),
            "{}",
            status.message()
        );
        assert!(status.message().contains(hint), "{}", status.message());
    }
    let status = assert_denied(
        get_unchecked(&stack, &token, "Dev", "/", "K").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert!(status.message().contains("environment"));
    let status = assert_denied(
        get_unchecked(&stack, &token, "dev", "/", "A B").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert!(status.message().contains("name"));
    let bad_project = stack
        .secrets_client()
        .await
        .list_secrets(with_token(
            secrets_pb::ListSecretsRequest {
                project_id: "not-a-project".into(),
                environment: "dev".into(),
                secret_path: "/".into(),
                recursive: false,
            },
            &token,
        ))
        .await;
    let status = assert_denied(bad_project, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(
        status.message().contains("project_id"),
        "{}",
        status.message()
    );

    let mut auth = stack.auth_client().await;
    let cases: Vec<(auth_pb::CreateServiceTokenRequest, &str)> = vec![
        (
            Stack::token_request(&project, &["qa:/**"], &["read"]),
            "scopes[0].environment",
        ),
        (
            Stack::token_request(&project, &["dev:/**", "dev:backend"], &["read"]),
            "scopes[1].secret_path",
        ),
        (Stack::token_request(&project, &[], &["read"]), "scopes"),
        (
            Stack::token_request(&project, &["dev:/**"], &[]),
            "permissions",
        ),
        (
            auth_pb::CreateServiceTokenRequest {
                expires_in_seconds: -5,
                ..Stack::token_request(&project, &["dev:/**"], &["read"])
            },
            "expires_in_seconds",
        ),
        (
            auth_pb::CreateServiceTokenRequest {
                trusted_ips: vec!["127.0.0.1".into(), "300.1.1.1".into()],
                ..Stack::token_request(&project, &["dev:/**"], &["read"])
            },
            "trusted_ips[1]",
        ),
    ];
    for (request, field) in cases {
        let status = assert_denied(
            auth.create_service_token(with_token(request, &stack.admin_token))
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        let violation = status
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field
            .clone();
        assert_eq!(violation, field, "{}", status.message());
    }
    let listed = auth
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
    assert_eq!(listed.len(), 1, "rejected calls created nothing");
}

async fn database_holds_no_copy_of_the_token_key_part(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    set(&stack, &token, "dev", "/backend", "K", "v")
        .await
        .unwrap();
    let st = ServiceTokenSecret::parse(&token).unwrap();

    let dump = stack.auth_db.dump().await + &stack.secrets_db.dump().await;

    assert!(
        dump.contains(&st.id().to_string()),
        "the dump reads the token rows"
    );
    assert!(!dump.contains(st.key().expose()), "key part stored");
    assert!(
        !dump.contains(&hex::encode(st.key().expose())),
        "key part stored as bytes"
    );
    assert!(!dump.contains(st.secret()), "secret stored in clear");
}
