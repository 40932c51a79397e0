//! Service tokens end to end: both services over real gRPC on ephemeral
//! ports, on SQLite and on PostgreSQL.

use chrono::Duration;
use latchkey_client::crypto::{Requested, open_project_key, seal};
use latchkey_client::{ClientError, Location};
use latchkey_domain::crypto::WireKey;
use latchkey_domain::path::SecretName;
use latchkey_domain::token::{ServiceTokenSecret, access_token_part};
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_test_support::{
    Backend, Stack, assert_denied, backend_tests, with_bearer_text, with_token,
};
use tonic::Code;
use tonic_types::StatusExt;

backend_tests!(
    count_encryptions_is_internal_bounded_and_adds_to_the_keys_count,
    value_written_with_client_side_encryption_reads_back_decrypted,
    read_and_write_are_allowed_and_denied_by_scope,
    read_and_write_are_allowed_and_denied_by_permission,
    expired_token_is_rejected_with_token_expired_and_later_reaped,
    bootstrap_admin_token_is_private_written_once_and_is_an_admin,
    rotation_is_recommended_once_a_key_reaches_ninety_percent_of_its_budget,
    deactivated_token_is_token_inactive_until_reactivated,
    deleted_token_is_rejected_with_token_revoked,
    trusted_ips_allow_loopback_and_reject_others_with_ip_not_trusted,
    project_allowlist_rejects_with_ip_not_trusted,
    raw_calls_are_refused_on_e2ee_projects_with_e2ee_enabled,
    raw_calls_round_trip_on_projects_without_e2ee,
    secrets_service_fails_closed_with_auth_unavailable_when_auth_is_down,
    database_holds_no_copy_of_the_token_key_part,
    access_token_alone_works_for_every_call_and_a_sent_key_part_is_never_used,
    malformed_token_is_token_malformed_without_verifying_anything,
    wrong_secret_and_unknown_id_are_both_token_invalid,
    recursive_listing_returns_only_folders_in_scope,
    bad_input_is_invalid_argument_naming_the_field_and_changes_nothing,
    admin_calls_need_an_admin_identity,
    uses_and_last_use_are_counted_and_lookup_consumes_none,
    unlimited_token_uses_are_batched_in_memory_and_reported_exactly_before_a_flush,
    authorize_refuses_callers_without_the_internal_key,
    writes_count_encryptions_under_the_project_key,
    both_services_serve_health_and_reflection,
);

// ---- helpers ---------------------------------------------------------------

fn service_token(token: &str) -> ServiceTokenSecret {
    ServiceTokenSecret::parse(token).unwrap()
}

/// A service's answer, which is all these helpers expect to fail with.
fn status(err: ClientError) -> tonic::Status {
    match err {
        ClientError::Status(status) => status,
        other => panic!("not a service's answer: {other}"),
    }
}

fn location(env: &str, path: &str) -> Location {
    Location::new(None, env, path).unwrap()
}

/// The project key as a client holding `token` recovers it.
async fn project_key(stack: &Stack, token: &str) -> Result<(String, WireKey), tonic::Status> {
    let info = stack.lookup(token).await?;
    let key = open_project_key(
        &service_token(token),
        info.encrypted_project_key.map(Into::into),
    )
    .unwrap();
    Ok((info.project_id, key))
}

/// Writes through the client library, which encrypts on this side.
async fn set(
    stack: &Stack,
    token: &str,
    env: &str,
    path: &str,
    name: &str,
    value: &str,
) -> Result<(), tonic::Status> {
    let pair = (SecretName::parse(name).unwrap(), value.to_owned());
    stack
        .secrets_as(token)
        .await
        .set(&location(env, path), &[pair])
        .await
        .map(drop)
        .map_err(status)
}

/// Reads through the client library, which decrypts on this side.
async fn get(
    stack: &Stack,
    token: &str,
    env: &str,
    path: &str,
    name: &str,
) -> Result<String, tonic::Status> {
    stack
        .secrets_as(token)
        .await
        .get(&location(env, path), &SecretName::parse(name).unwrap())
        .await
        .map(|secret| secret.value)
        .map_err(status)
}

/// `GetSecret` exactly as given, nothing checked on this side: what the
/// server says to input a client library would refuse to send.
async fn get_unchecked(
    stack: &Stack,
    token: &str,
    env: &str,
    path: &str,
    name: &str,
) -> Result<secrets_pb::GetSecretResponse, tonic::Status> {
    stack
        .secrets_client()
        .await
        .get_secret(with_bearer_text(
            secrets_pb::GetSecretRequest {
                project_id: String::new(),
                environment: env.to_owned(),
                secret_path: path.to_owned(),
                name: name.to_owned(),
            },
            access_token_part(token),
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// `LookupToken` with `token`, which must succeed.
async fn lookup(stack: &Stack, token: &str) -> auth_pb::LookupTokenResponse {
    stack.lookup(token).await.unwrap()
}

async fn rw_token(stack: &Stack, project: &str) -> String {
    stack
        .create_service_token(Stack::token_request(
            project,
            &["dev:/backend/**"],
            &["read", "write"],
        ))
        .await
}

async fn token_meta(stack: &Stack, id: &str) -> Result<auth_pb::ServiceToken, tonic::Status> {
    stack
        .auth_client()
        .await
        .get_service_token(with_token(
            auth_pb::GetServiceTokenRequest {
                token_id: id.to_owned(),
            },
            &stack.admin_token,
        ))
        .await
        .map(|r| r.into_inner().token.unwrap())
}

fn token_id(token: &str) -> String {
    ServiceTokenSecret::parse(token).unwrap().id().to_string()
}

// ---- scenarios -------------------------------------------------------------

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
    assert!(
        !stack.auth_db.dump().await.contains(&token_id(&token)),
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
        !stack.secrets_db.dump().await.contains("K2"),
        "nothing was written"
    );
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
