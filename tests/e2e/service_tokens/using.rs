//! Using a service token over gRPC: reads and writes by scope and
//! permission, trusted IPs, raw and end-to-end encrypted projects, and
//! malformed or wrong tokens.

use super::*;

backend_tests!(
    value_written_with_client_side_encryption_reads_back_decrypted,
    read_and_write_are_allowed_and_denied_by_scope,
    read_and_write_are_allowed_and_denied_by_permission,
    recursive_listing_returns_only_folders_in_scope,
    trusted_ips_allow_loopback_and_reject_others_with_ip_not_trusted,
    project_allowlist_rejects_with_ip_not_trusted,
    raw_calls_are_refused_on_e2ee_projects_with_e2ee_enabled,
    raw_calls_round_trip_on_projects_without_e2ee,
    access_token_alone_works_for_every_call_and_a_sent_key_part_is_never_used,
    malformed_token_is_token_malformed_without_verifying_anything,
    wrong_secret_and_unknown_id_are_both_token_invalid,
);

async fn value_written_with_client_side_encryption_reads_back_decrypted(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let value = "postgres://u:p@db/x?a=b\nline 2 \"quoted\" ünïcode";

    set(&stack, &token, "dev", "/backend", "DB_URL", value)
        .await
        .unwrap();

    assert_eq!(
        get(&stack, &token, "dev", "/backend", "DB_URL")
            .await
            .unwrap(),
        value
    );
    // Repeated and trailing slashes name the same folder.
    assert_eq!(
        get(&stack, &token, "dev", "//backend/", "DB_URL")
            .await
            .unwrap(),
        value
    );
}

async fn read_and_write_are_allowed_and_denied_by_scope(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    set(&stack, &token, "dev", "/backend/db", "A", "1")
        .await
        .unwrap();

    let status = assert_denied(
        get(&stack, &token, "dev", "/frontend", "A").await,
        Code::PermissionDenied,
        "SCOPE_DENIED",
    );
    assert!(
        status.message().contains("dev:/backend/**"),
        "{}",
        status.message()
    );
    assert_denied(
        get(&stack, &token, "prod", "/backend", "A").await,
        Code::PermissionDenied,
        "SCOPE_DENIED",
    );
    assert_denied(
        set(&stack, &token, "dev", "/frontend", "A", "2").await,
        Code::PermissionDenied,
        "SCOPE_DENIED",
    );
    assert_denied(
        set(&stack, &token, "staging", "/backend", "A", "2").await,
        Code::PermissionDenied,
        "SCOPE_DENIED",
    );
    // The denied write changed nothing.
    assert_eq!(
        get(&stack, &token, "dev", "/backend/db", "A")
            .await
            .unwrap(),
        "1"
    );
}

async fn read_and_write_are_allowed_and_denied_by_permission(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let writer = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["write"]))
        .await;
    let reader = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;

    set(&stack, &writer, "dev", "/", "K", "v").await.unwrap();
    let status = assert_denied(
        get(&stack, &writer, "dev", "/", "K").await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert!(status.message().contains("read"), "{}", status.message());
    assert_eq!(get(&stack, &reader, "dev", "/", "K").await.unwrap(), "v");
    assert_denied(
        set(&stack, &reader, "dev", "/", "K", "w").await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let delete = stack
        .secrets_client()
        .await
        .delete_secret(with_token(
            secrets_pb::DeleteSecretRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/".into(),
                name: "K".into(),
            },
            &reader,
        ))
        .await;
    assert_denied(delete, Code::PermissionDenied, "PERMISSION_DENIED");
    assert_eq!(get(&stack, &reader, "dev", "/", "K").await.unwrap(), "v");
}

async fn recursive_listing_returns_only_folders_in_scope(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let all = stack
        .create_service_token(Stack::token_request(
            &project,
            &["dev:/**"],
            &["read", "write"],
        ))
        .await;
    for (path, name) in [
        ("/", "ROOT"),
        ("/backend", "B"),
        ("/backend/db", "DB"),
        ("/backends", "BS"),
        ("/frontend", "F"),
    ] {
        set(&stack, &all, "dev", path, name, "v").await.unwrap();
    }
    let scoped = stack
        .create_service_token(Stack::token_request(
            &project,
            &["dev:/backend/**"],
            &["read"],
        ))
        .await;
    let list = |token: String, path: &'static str| {
        let stack = &stack;
        async move {
            stack
                .secrets_client()
                .await
                .list_secrets(with_token(
                    secrets_pb::ListSecretsRequest {
                        project_id: String::new(),
                        environment: "dev".into(),
                        secret_path: path.into(),
                        recursive: true,
                    },
                    &token,
                ))
                .await
                .map(|r| {
                    r.into_inner()
                        .secrets
                        .into_iter()
                        .map(|s| format!("{}:{}", s.secret_path, s.name))
                        .collect::<Vec<_>>()
                })
        }
    };

    assert_eq!(
        list(scoped.clone(), "/").await.unwrap(),
        ["/backend:B", "/backend/db:DB"]
    );
    assert_eq!(
        list(scoped.clone(), "/backend").await.unwrap(),
        ["/backend:B", "/backend/db:DB"]
    );
    assert_eq!(
        list(scoped.clone(), "/frontend").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        list(all.clone(), "/backend").await.unwrap(),
        ["/backend:B", "/backend/db:DB"]
    );
    assert_eq!(list(all, "/").await.unwrap().len(), 5);
}

async fn trusted_ips_allow_loopback_and_reject_others_with_ip_not_trusted(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let mut allowed = Stack::token_request(&project, &["dev:/**"], &["read", "write"]);
    allowed.trusted_ips = vec!["127.0.0.1".into(), "::1".into()];
    let allowed = stack.create_service_token(allowed).await;
    let mut range = Stack::token_request(&project, &["dev:/**"], &["read", "write"]);
    range.trusted_ips = vec!["127.0.0.0/8".into()];
    let range = stack.create_service_token(range).await;
    let mut elsewhere = Stack::token_request(&project, &["dev:/**"], &["read", "write"]);
    elsewhere.trusted_ips = vec!["10.0.0.0/8".into(), "2001:db8::/32".into()];
    let elsewhere = stack.create_service_token(elsewhere).await;

    set(&stack, &allowed, "dev", "/", "K", "v").await.unwrap();
    assert_eq!(get(&stack, &range, "dev", "/", "K").await.unwrap(), "v");
    let status = assert_denied(
        get(&stack, &elsewhere, "dev", "/", "K").await,
        Code::PermissionDenied,
        "IP_NOT_TRUSTED",
    );
    assert!(
        status.message().contains("127.0.0.1"),
        "names the IP the server saw: {}",
        status.message()
    );
    assert_denied(
        set(&stack, &elsewhere, "dev", "/", "K", "x").await,
        Code::PermissionDenied,
        "IP_NOT_TRUSTED",
    );
    assert_eq!(get(&stack, &allowed, "dev", "/", "K").await.unwrap(), "v");
}

async fn project_allowlist_rejects_with_ip_not_trusted(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(
            &project,
            &["dev:/**"],
            &["read", "write"],
        ))
        .await;
    set(&stack, &token, "dev", "/", "K", "v").await.unwrap();
    let set_ips = |ips: Vec<String>| {
        let stack = &stack;
        let project = project.clone();
        async move {
            stack
                .auth_client()
                .await
                .set_project_trusted_ips(with_token(
                    auth_pb::SetProjectTrustedIpsRequest {
                        project_id: project,
                        trusted_ips: ips,
                    },
                    &stack.admin_token,
                ))
                .await
                .unwrap()
        }
    };

    set_ips(vec!["192.0.2.0/24".into()]).await;
    let status = assert_denied(
        get(&stack, &token, "dev", "/", "K").await,
        Code::PermissionDenied,
        "IP_NOT_TRUSTED",
    );
    assert!(status.message().contains("project"), "{}", status.message());

    set_ips(vec!["127.0.0.1/32".into()]).await;
    assert_eq!(get(&stack, &token, "dev", "/", "K").await.unwrap(), "v");
}

async fn raw_calls_are_refused_on_e2ee_projects_with_e2ee_enabled(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(true).await;
    let token = stack
        .create_service_token(Stack::token_request(
            &project,
            &["dev:/**"],
            &["read", "write"],
        ))
        .await;
    let mut secrets = stack.secrets_client().await;

    let set_raw = secrets
        .set_secret_raw(with_token(
            secrets_pb::SetSecretRawRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/".into(),
                name: "K".into(),
                value: "v".into(),
            },
            &token,
        ))
        .await;
    assert_denied(set_raw, Code::FailedPrecondition, "E2EE_ENABLED");
    let list_raw = secrets
        .list_secrets_raw(with_token(
            secrets_pb::ListSecretsRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/".into(),
                recursive: false,
            },
            &token,
        ))
        .await;
    assert_denied(list_raw, Code::FailedPrecondition, "E2EE_ENABLED");
    // Client-side encryption still works on e2ee projects.
    set(&stack, &token, "dev", "/", "K", "v").await.unwrap();
    assert_eq!(get(&stack, &token, "dev", "/", "K").await.unwrap(), "v");
    let get_raw = secrets
        .get_secret_raw(with_token(
            secrets_pb::GetSecretRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/".into(),
                name: "K".into(),
            },
            &token,
        ))
        .await;
    assert_denied(get_raw, Code::FailedPrecondition, "E2EE_ENABLED");
}

async fn raw_calls_round_trip_on_projects_without_e2ee(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let mut secrets = stack.secrets_client().await;

    let version = secrets
        .set_secret_raw(with_token(
            secrets_pb::SetSecretRawRequest {
                project_id: project.clone(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                name: "API".into(),
                value: "raw value".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .version;
    assert_eq!(version, 1);

    let raw = secrets
        .get_secret_raw(with_token(
            secrets_pb::GetSecretRequest {
                project_id: project.clone(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                name: "API".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .secret
        .unwrap();
    assert_eq!(raw.value, "raw value");
    // The server encrypted with the same scheme a client uses.
    assert_eq!(
        get(&stack, &token, "dev", "/backend", "API").await.unwrap(),
        "raw value"
    );
    set(&stack, &token, "dev", "/backend", "API", "from client")
        .await
        .unwrap();
    let listed = secrets
        .list_secrets_raw(with_token(
            secrets_pb::ListSecretsRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                recursive: false,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .secrets;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].value.as_str(), listed[0].version),
        ("from client", 2)
    );
}

/// Every call a service token makes, sent with `bearer` as is, with the
/// client-side crypto of `holder` (the whole token); returns what each
/// answered, in a form two bearers can be compared by.
async fn every_service_token_call(
    stack: &Stack,
    holder: &str,
    bearer: &str,
    name: &str,
) -> Vec<String> {
    let mut auth = stack.auth_client().await;
    let mut secrets = stack.secrets_client().await;
    let lookup = auth
        .lookup_token(with_bearer_text(
            auth_pb::LookupTokenRequest::default(),
            bearer,
        ))
        .await
        .unwrap()
        .into_inner();
    let grant = stack
        .authorize(bearer)
        .path("/backend")
        .raw()
        .send()
        .await
        .unwrap();
    // The client's key, from the envelope LookupToken returned.
    let project_key = open_project_key(
        &service_token(holder),
        lookup.encrypted_project_key.clone().map(Into::into),
    )
    .unwrap();
    let at = |name: &str| secrets_pb::GetSecretRequest {
        project_id: String::new(),
        environment: "dev".into(),
        secret_path: "/backend".into(),
        name: name.to_owned(),
    };
    let s = seal(
        &project_key,
        &lookup.project_id,
        "dev",
        "/backend",
        name,
        "client value",
    )
    .unwrap();
    let version = secrets
        .set_secret(with_bearer_text(
            secrets_pb::SetSecretRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                name: name.to_owned(),
                ciphertext: s.ciphertext,
                iv: s.iv,
                tag: s.tag,
            },
            bearer,
        ))
        .await
        .unwrap()
        .into_inner()
        .secret
        .unwrap()
        .version;
    let got = secrets
        .get_secret(with_bearer_text(at(name), bearer))
        .await
        .unwrap()
        .into_inner();
    let listed = secrets
        .list_secrets(with_bearer_text(
            secrets_pb::ListSecretsRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                recursive: false,
            },
            bearer,
        ))
        .await
        .unwrap()
        .into_inner();
    let raw_name = format!("{name}_RAW");
    secrets
        .set_secret_raw(with_bearer_text(
            secrets_pb::SetSecretRawRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                name: raw_name.clone(),
                value: "server value".into(),
            },
            bearer,
        ))
        .await
        .unwrap();
    let raw = secrets
        .get_secret_raw(with_bearer_text(at(&raw_name), bearer))
        .await
        .unwrap()
        .into_inner()
        .secret
        .unwrap();
    let raw_listed = secrets
        .list_secrets_raw(with_bearer_text(
            secrets_pb::ListSecretsRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/backend".into(),
                recursive: false,
            },
            bearer,
        ))
        .await
        .unwrap()
        .into_inner();
    let asked = Requested {
        project_id: &lookup.project_id,
        environment: "dev",
        path: "/backend",
        name: Some(name),
        recursive: false,
    };
    let value = asked
        .open(&project_key, &got.secret.unwrap())
        .unwrap()
        .value;
    vec![
        lookup.principal,
        grant.principal,
        version.to_string(),
        value,
        listed.secrets.len().to_string(),
        raw.value,
        raw_listed.secrets.len().to_string(),
    ]
}

async fn access_token_alone_works_for_every_call_and_a_sent_key_part_is_never_used(
    backend: Backend,
) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let access = access_token_part(&token);
    assert_eq!(access.matches('.').count(), 2, "st.<id>.<secret>");
    // A key part of the right shape that opens nothing: a server that
    // unwrapped anything with it would fail the call.
    let decoy = format!("{access}.{}", "0f".repeat(16));

    let three = every_service_token_call(&stack, &token, access, "A").await;
    let four = every_service_token_call(&stack, &token, &decoy, "B").await;
    let genuine = every_service_token_call(&stack, &token, &token, "C").await;

    assert_eq!(three[0], format!("service-token:{}", token_id(&token)));
    assert_eq!(three[3], "client value");
    assert_eq!(three[5], "server value");
    assert_eq!(
        (three[6].as_str(), four[6].as_str(), genuine[6].as_str()),
        ("2", "4", "6"),
        "every write landed"
    );
    for (a, b) in three
        .iter()
        .zip(&four)
        .filter(|(a, _)| !a.chars().all(|c| c.is_ascii_digit()))
    {
        assert_eq!(a, b, "the decoy key part changed nothing");
    }
}

async fn malformed_token_is_token_malformed_without_verifying_anything(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let runs_before = stack.auth.app.verifier().argon2_runs();
    // A real token id with an upper-cased key part: malformed by format alone.
    let (access, key) = token.rsplit_once('.').unwrap();
    let malformed = format!("{access}.{}", key.to_uppercase());

    for bad in [malformed.as_str(), "st.nope", "Bearer", ""] {
        assert_denied(
            get_unchecked(&stack, bad, "dev", "/backend", "K").await,
            Code::Unauthenticated,
            "TOKEN_MALFORMED",
        );
    }
    let missing = stack
        .secrets_client()
        .await
        .list_secrets(secrets_pb::ListSecretsRequest {
            project_id: String::new(),
            environment: "dev".into(),
            secret_path: "/".into(),
            recursive: false,
        })
        .await;
    let status = assert_denied(missing, Code::Unauthenticated, "TOKEN_MALFORMED");
    assert!(status.message().contains("authorization: Bearer"));
    assert_eq!(
        stack.auth.app.verifier().argon2_runs(),
        runs_before,
        "no secret was verified"
    );
}

async fn wrong_secret_and_unknown_id_are_both_token_invalid(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = rw_token(&stack, &project).await;
    let parts: Vec<&str> = token.split('.').collect();
    let wrong_secret = format!("st.{}.{}.{}", parts[1], "0".repeat(32), parts[3]);
    let unknown_id = format!("st.{}.{}.{}", uuid::Uuid::new_v4(), parts[2], parts[3]);

    let a = assert_denied(
        get(&stack, &wrong_secret, "dev", "/backend", "K").await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    let b = assert_denied(
        get(&stack, &unknown_id, "dev", "/backend", "K").await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    assert_eq!(a.message(), b.message(), "indistinguishable");
}
