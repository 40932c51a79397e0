//! The audit trail as an operator reads it: every call that touches a
//! token or a secret is one event, in the database of the service that
//! answered it, with the principal and the secrets' names and versions,
//! never a token, key part or value; a flood of malformed tokens becomes a
//! count per client prefix.

use chrono::Duration;
use latchkey_domain::audit::chain::Chained;
use latchkey_domain::audit::{Outcome, Transport};
use latchkey_domain::token::access_token_part;
use latchkey_proto::audit::v1 as audit_pb;
use latchkey_proto::audit::v1::audit_service_client::AuditServiceClient;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_store::audit::AuditQuery;
use latchkey_store::auth::AuthStore;
use latchkey_store::secrets::SecretStore;
use latchkey_test_support::{Backend, Stack, backend_tests, reason, with_bearer_text, with_token};

use crate::http_api::http_to;

backend_tests!(
    reads_and_writes_over_both_transports_are_recorded_with_principal_secret_and_version,
    a_denial_after_verification_is_its_own_event_with_the_tokens_hmac,
    malformed_tokens_are_counted_per_client_prefix_not_recorded_one_by_one,
    admin_calls_are_recorded_by_the_auth_service_with_their_target,
    no_row_of_either_database_holds_a_token_secret_or_a_value,
    an_org_admin_lists_events_newest_first_filtered_and_paged,
    a_project_admin_sees_only_its_projects_events_and_others_none,
    a_stream_resumed_from_its_cursor_delivers_each_event_exactly_once,
    verify_names_the_event_changed_removed_or_reordered,
    the_jsonl_file_holds_every_committed_event_in_chain_order,
    after_retention_the_rest_still_verifies_and_a_moved_checkpoint_is_named,
    an_unwritable_audit_table_fails_calls_audit_unavailable_then_recovers,
);

/// Every event the secrets service has committed, oldest first.
async fn secrets_events(stack: &Stack) -> Vec<Chained> {
    let store = SecretStore::connect(&stack.secrets_db.url).await.unwrap();
    oldest_first(store.audit().list(&everything()).await.unwrap())
}

/// Every event the auth service has committed, oldest first.
async fn auth_events(stack: &Stack) -> Vec<Chained> {
    let store = AuthStore::connect(&stack.auth_db.url).await.unwrap();
    oldest_first(store.audit().list(&everything()).await.unwrap())
}

fn everything() -> AuditQuery {
    AuditQuery {
        limit: 10_000,
        ..AuditQuery::default()
    }
}

fn oldest_first(mut rows: Vec<latchkey_store::audit::StoredEvent>) -> Vec<Chained> {
    rows.reverse();
    rows.into_iter().map(|r| r.link).collect()
}

async fn set_raw(stack: &Stack, token: &str, path: &str, name: &str, value: &str) -> u64 {
    stack.set_raw(token, "", path, name, value).await.unwrap()
}

async fn get_raw(
    stack: &Stack,
    token: &str,
    env: &str,
    name: &str,
) -> Result<secrets_pb::GetSecretRawResponse, tonic::Status> {
    stack
        .secrets_client()
        .await
        .get_secret_raw(with_token(
            secrets_pb::GetSecretRequest {
                project_id: String::new(),
                environment: env.into(),
                secret_path: "/app".into(),
                name: name.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn token_for(stack: &Stack, project: &str) -> String {
    stack
        .create_service_token(Stack::token_request(
            project,
            &["dev:/app/**"],
            &["read", "write"],
        ))
        .await
}

fn service_token_principal(token: &str) -> String {
    let id = token.split('.').nth(1).unwrap();
    format!("service-token:{id}")
}

async fn reads_and_writes_over_both_transports_are_recorded_with_principal_secret_and_version(
    backend: Backend,
) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    set_raw(&stack, &token, "/app", "DB_URL", "one").await;
    assert_eq!(set_raw(&stack, &token, "/app", "DB_URL", "two").await, 2);
    get_raw(&stack, &token, "dev", "DB_URL").await.unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = http_to(
        &stack.http_addr,
        "GET",
        "/api/v3/secrets/raw?environment=dev&secretPath=/app",
        Some(access_token_part(&token)),
        &[
            ("user-agent", "audit-test/1.0"),
            ("traceparent", traceparent),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);

    let events = secrets_events(&stack).await;
    let kinds: Vec<(&str, Transport)> = events
        .iter()
        .map(|l| (l.event.event_type.as_str(), l.event.transport))
        .collect();
    assert_eq!(
        kinds,
        [
            ("secret.write", Transport::Grpc),
            ("secret.write", Transport::Grpc),
            ("secret.read", Transport::Grpc),
            ("secret.list", Transport::Http),
        ]
    );
    let principal = service_token_principal(&token);
    let hmac = stack.auth.app.audit_key().token_hmac(&token);
    for link in &events {
        let e = &link.event;
        assert_eq!(e.outcome, Outcome::Allowed, "{e:?}");
        assert_eq!(e.principal, principal);
        assert_eq!(e.token_hmac, hmac, "the token is found by its HMAC");
        assert_eq!(
            (
                e.project_id.as_str(),
                e.environment.as_str(),
                e.path.as_str()
            ),
            (project.as_str(), "dev", "/app")
        );
        assert_eq!(e.client_ip, "127.0.0.1");
        assert!(link.replica.starts_with("secrets-"), "{}", link.replica);
    }
    let versions: Vec<Option<u64>> = events[..3]
        .iter()
        .map(|l| l.event.secrets[0].version)
        .collect();
    assert_eq!(versions, [Some(1), Some(2), Some(2)]);
    assert!(events.iter().all(|l| l.event.secrets[0].name == "DB_URL"));
    let listing = &events[3].event;
    assert_eq!(listing.method, "GET /api/v3/secrets/raw");
    assert_eq!(listing.user_agent, "audit-test/1.0");
    assert_eq!(
        listing.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    assert_eq!(
        listing.secrets[0].version, None,
        "a listing names its secrets only"
    );
    assert_eq!(
        events[2].event.method,
        "latchkey.secrets.v1.SecretsService/GetSecretRaw"
    );
    let sequences: Vec<u64> = events.iter().map(|l| l.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4], "one chain from its start, no gap");
}

async fn a_denial_after_verification_is_its_own_event_with_the_tokens_hmac(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;

    let denied = get_raw(&stack, &token, "prod", "DB_URL").await.unwrap_err();
    assert_eq!(reason(&denied), "SCOPE_DENIED");
    let missing = get_raw(&stack, &token, "dev", "NOPE").await.unwrap_err();
    assert_eq!(reason(&missing), "NOT_FOUND");

    let events = secrets_events(&stack).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let (scope, absent) = (&events[0].event, &events[1].event);
    assert_eq!(
        (
            scope.outcome,
            scope.reason.as_str(),
            scope.environment.as_str()
        ),
        (Outcome::Denied, "SCOPE_DENIED", "prod")
    );
    assert_eq!(
        scope.token_hmac,
        stack.auth.app.audit_key().token_hmac(&token)
    );
    assert_eq!(
        (scope.principal.as_str(), scope.project_id.as_str()),
        (service_token_principal(&token).as_str(), project.as_str()),
        "the auth service names whose verified token it denied"
    );
    assert_eq!(scope.secrets[0].name, "DB_URL", "what was asked for");
    assert_eq!(
        (absent.outcome, absent.reason.as_str()),
        (Outcome::Failed, "NOT_FOUND")
    );
    assert_eq!(
        absent.principal,
        service_token_principal(&token),
        "verified, then missing"
    );

    // A deactivated token is verified, then refused: its event says whose.
    stack
        .auth_client()
        .await
        .set_service_token_active(with_token(
            auth_pb::SetServiceTokenActiveRequest {
                token_id: token.split('.').nth(1).unwrap().to_owned(),
                active: false,
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    stack.clock.advance(Duration::seconds(2));
    let inactive = get_raw(&stack, &token, "dev", "DB_URL").await.unwrap_err();
    assert_eq!(reason(&inactive), "TOKEN_INACTIVE");
    let events = secrets_events(&stack).await;
    let last = &events.last().unwrap().event;
    assert_eq!(
        (
            last.reason.as_str(),
            last.principal.as_str(),
            last.project_id.as_str()
        ),
        (
            "TOKEN_INACTIVE",
            service_token_principal(&token).as_str(),
            project.as_str()
        )
    );
}

async fn malformed_tokens_are_counted_per_client_prefix_not_recorded_one_by_one(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    for _ in 0..20 {
        let refused = stack
            .secrets_client()
            .await
            .list_secrets_raw(with_bearer_text(
                secrets_pb::ListSecretsRequest {
                    project_id: String::new(),
                    environment: "dev".into(),
                    secret_path: "/app".into(),
                    recursive: false,
                },
                "not-a-token",
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&refused), "TOKEN_MALFORMED");
        let reply = http_to(
            &stack.http_addr,
            "GET",
            "/api/v3/secrets/raw?environment=dev&secretPath=/app",
            Some("garbage"),
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, 401);
    }
    assert!(
        secrets_events(&stack).await.is_empty(),
        "nothing yet: the interval is open"
    );

    // The interval ends; the next event's batch carries the aggregates.
    stack.clock.advance(Duration::seconds(11));
    set_raw(&stack, &token, "/app", "K", "v").await;

    let events = secrets_events(&stack).await;
    let aggregates: Vec<_> = events
        .iter()
        .filter(|l| l.event.event_type == "call.refused_unverified")
        .map(|l| &l.event)
        .collect();
    assert_eq!(
        aggregates.len(),
        1,
        "one per prefix and reason: {aggregates:?}"
    );
    assert_eq!(aggregates[0].reason, "TOKEN_MALFORMED");
    assert_eq!(aggregates[0].client_ip, "127.0.0.0/24");
    assert_eq!(aggregates[0].count, 40, "both transports, every call");
    assert_eq!(events.len(), 2, "the aggregate and the write: {events:?}");
}

async fn admin_calls_are_recorded_by_the_auth_service_with_their_target(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    let token_id = token.split('.').nth(1).unwrap();
    let mut auth = stack.auth_client().await;
    auth.delete_service_token(with_token(
        auth_pb::DeleteServiceTokenRequest {
            token_id: token_id.to_owned(),
        },
        &stack.admin_token,
    ))
    .await
    .unwrap();
    let refused = auth
        .delete_service_token(with_token(
            auth_pb::DeleteServiceTokenRequest {
                token_id: token_id.to_owned(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "TOKEN_REVOKED");

    let events = auth_events(&stack).await;
    let summary: Vec<(&str, Outcome, &str)> = events
        .iter()
        .map(|l| {
            (
                l.event.event_type.as_str(),
                l.event.outcome,
                l.event.target.as_str(),
            )
        })
        .collect();
    let target = service_token_principal(&token);
    assert_eq!(
        summary,
        [
            ("identity.bootstrap", Outcome::Allowed, summary[0].2),
            ("project.create", Outcome::Allowed, ""),
            ("service_token.create", Outcome::Allowed, target.as_str()),
            ("service_token.delete", Outcome::Allowed, target.as_str()),
            // Refused before its arguments were read: the token's HMAC
            // says who tried.
            ("service_token.delete", Outcome::Denied, ""),
        ]
    );
    let admin = stack.lookup(&stack.admin_token).await.unwrap().principal;
    assert_eq!(summary[0].2, admin, "the bootstrap names the admin it made");
    assert!(events[1..4].iter().all(|l| l.event.principal == admin));
    assert_eq!(events[1].event.project_id, project);
    assert_eq!(events[4].event.reason, "TOKEN_REVOKED");
    assert_eq!(
        events[4].event.token_hmac,
        stack.auth.app.audit_key().token_hmac(&token)
    );
    assert!(events.iter().all(|l| l.replica.starts_with("auth-")));
}

async fn no_row_of_either_database_holds_a_token_secret_or_a_value(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    let value = "sentinel-value-5f0c2a9e";
    set_raw(&stack, &token, "/app", "K", value).await;
    get_raw(&stack, &token, "dev", "K").await.unwrap();
    let _ = get_raw(&stack, &token, "prod", "K").await;
    let wrong_secret = format!("{}.{}", &token[..token.rfind('.').unwrap()], "x".repeat(8));
    let _ = get_raw(&stack, &wrong_secret, "dev", "K").await;

    let secret_part = token.split('.').nth(2).unwrap();
    let key_part = token.split('.').nth(3).unwrap();
    let admin_secret = stack.admin_token.rsplit('.').next().unwrap();
    for dump in [stack.auth_db.dump().await, stack.secrets_db.dump().await] {
        for (what, sentinel) in [
            ("the token's secret", secret_part),
            ("the token's key part", key_part),
            ("the value", value),
            ("the admin token's secret", admin_secret),
            ("the internal key", stack.internal_key.as_str()),
        ] {
            assert!(!dump.contains(sentinel), "{what} is stored");
        }
    }
    assert_eq!(
        secrets_events(&stack).await.len(),
        3,
        "the wrong token is counted, not recorded"
    );
}

async fn audit_client(url: &str) -> AuditServiceClient<tonic::transport::Channel> {
    AuditServiceClient::connect(url.to_owned()).await.unwrap()
}

async fn list(
    url: &str,
    token: &str,
    filter: audit_pb::AuditFilter,
    page_size: u32,
    page_token: &str,
) -> Result<audit_pb::ListAuditEventsResponse, tonic::Status> {
    audit_client(url)
        .await
        .list_audit_events(with_token(
            audit_pb::ListAuditEventsRequest {
                filter: Some(filter),
                page_size,
                page_token: page_token.to_owned(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn an_org_admin_lists_events_newest_first_filtered_and_paged(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    for name in ["A", "B", "C"] {
        set_raw(&stack, &token, "/app", name, "v").await;
    }
    let _ = get_raw(&stack, &token, "prod", "A").await;

    // Reading the trail is recorded too: these listings keep to the project.
    let in_project = || audit_pb::AuditFilter {
        project_id: project.clone(),
        ..Default::default()
    };
    let all = list(&stack.secrets_url, &stack.admin_token, in_project(), 0, "")
        .await
        .unwrap();
    let names: Vec<&str> = all
        .events
        .iter()
        .map(|e| e.secrets.first().map_or("", |s| s.name.as_str()))
        .collect();
    assert_eq!(names, ["A", "C", "B", "A"], "newest first");
    assert!(all.next_page_token.is_empty());

    let denied = list(
        &stack.secrets_url,
        &stack.admin_token,
        audit_pb::AuditFilter {
            outcome: "denied".into(),
            ..Default::default()
        },
        0,
        "",
    )
    .await
    .unwrap();
    assert_eq!(denied.events.len(), 1);
    assert_eq!(denied.events[0].reason, "SCOPE_DENIED");
    let by_hmac = list(
        &stack.secrets_url,
        &stack.admin_token,
        audit_pb::AuditFilter {
            token_hmac: stack.auth.app.audit_key().token_hmac(&token),
            secret_name: "B".into(),
            ..Default::default()
        },
        0,
        "",
    )
    .await
    .unwrap();
    assert_eq!(by_hmac.events.len(), 1);

    let first = list(&stack.secrets_url, &stack.admin_token, in_project(), 3, "")
        .await
        .unwrap();
    assert_eq!(first.events.len(), 3);
    let rest = list(
        &stack.secrets_url,
        &stack.admin_token,
        in_project(),
        3,
        &first.next_page_token,
    )
    .await
    .unwrap();
    let ids: Vec<i64> = first
        .events
        .iter()
        .chain(&rest.events)
        .map(|e| e.id)
        .collect();
    let listed: Vec<i64> = all.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, listed, "the pages together are the listing");

    // The auth service serves its own trail: the admin calls above.
    let admin_calls = list(
        &stack.auth_url,
        &stack.admin_token,
        Default::default(),
        0,
        "",
    )
    .await
    .unwrap();
    assert!(
        admin_calls
            .events
            .iter()
            .any(|e| e.event_type == "service_token.create")
    );
    // Reading the trail is itself recorded.
    assert!(
        secrets_events(&stack)
            .await
            .iter()
            .any(|l| l.event.event_type == "audit.list")
    );
}

async fn a_project_admin_sees_only_its_projects_events_and_others_none(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let mine = stack.create_project(false).await;
    let theirs = stack.create_project(false).await;
    for project in [&mine, &theirs] {
        let token = token_for(&stack, project).await;
        set_raw(&stack, &token, "/app", "K", "v").await;
    }
    let (_, admin) = stack.identity_in_project(&mine, "admin", 0).await;
    let (_, developer) = stack.identity_in_project(&mine, "developer", 0).await;

    for url in [&stack.secrets_url, &stack.auth_url] {
        let seen = list(url, &admin, Default::default(), 0, "").await.unwrap();
        assert!(!seen.events.is_empty(), "{url}");
        assert!(
            seen.events.iter().all(|e| e.project_id == mine),
            "{url}: {:?}",
            seen.events
        );
        let asked_for_theirs = list(
            url,
            &admin,
            audit_pb::AuditFilter {
                project_id: theirs.clone(),
                ..Default::default()
            },
            0,
            "",
        )
        .await
        .unwrap();
        assert!(asked_for_theirs.events.is_empty(), "{url}");
        let refused = list(url, &developer, Default::default(), 0, "")
            .await
            .unwrap_err();
        assert_eq!(reason(&refused), "PERMISSION_DENIED", "{url}");
    }
    let service_token = token_for(&stack, &mine).await;
    let refused = list(
        &stack.secrets_url,
        &service_token,
        Default::default(),
        0,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&refused), "PERMISSION_DENIED");
}

async fn a_stream_resumed_from_its_cursor_delivers_each_event_exactly_once(backend: Backend) {
    use tokio_stream::StreamExt as _;
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    let stream = |cursor: String| {
        let (url, admin) = (stack.secrets_url.clone(), stack.admin_token.clone());
        async move {
            audit_client(&url)
                .await
                .stream_audit_events(with_token(
                    audit_pb::StreamAuditEventsRequest {
                        filter: Some(audit_pb::AuditFilter {
                            event_type: "secret.write".into(),
                            ..Default::default()
                        }),
                        cursor,
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let next_names = |batch: &audit_pb::StreamAuditEventsResponse| -> Vec<String> {
        batch
            .events
            .iter()
            .map(|e| e.secrets[0].name.clone())
            .collect()
    };
    set_raw(&stack, &token, "/app", "BEFORE", "v").await;
    let mut first = stream(String::new()).await;
    let batch = first.next().await.unwrap().unwrap();
    assert_eq!(next_names(&batch), ["BEFORE"]);
    // Live: written after the stream caught up.
    set_raw(&stack, &token, "/app", "LIVE", "v").await;
    let mut live = Vec::new();
    let mut cursor = batch.cursor;
    while live.is_empty() {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(10), first.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        live = next_names(&batch);
        cursor = batch.cursor;
    }
    assert_eq!(live, ["LIVE"]);
    drop(first);

    // Hung up; more written; resumed from the last cursor.
    for name in ["X", "Y"] {
        set_raw(&stack, &token, "/app", name, "v").await;
    }
    let mut resumed = stream(cursor).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(10), resumed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.extend(next_names(&batch));
    }
    assert_eq!(seen, ["X", "Y"], "nothing missed, nothing repeated");
}

async fn verify(stack: &Stack) -> audit_pb::VerifyAuditLogResponse {
    audit_client(&stack.secrets_url)
        .await
        .verify_audit_log(with_token(
            audit_pb::VerifyAuditLogRequest {},
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn tamper(stack: &Stack, sql: &str) {
    use sea_orm::ConnectionTrait as _;
    let db = sea_orm::Database::connect(&stack.secrets_db.url)
        .await
        .unwrap();
    db.execute_unprepared(sql).await.unwrap();
}

async fn verify_names_the_event_changed_removed_or_reordered(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    for name in ["A", "B", "C", "D", "E", "F"] {
        set_raw(&stack, &token, "/app", name, "v").await;
    }
    let intact = verify(&stack).await;
    assert!(intact.intact, "{intact:?}");
    assert_eq!(intact.chains.len(), 1);
    assert_eq!(intact.chains[0].events, 6);

    // Verifying is recorded too: the chain grows by one each time; the
    // tampering below touches only the first six events.
    tamper(
        &stack,
        "UPDATE audit_events SET environment = 'prod' WHERE sequence = 2",
    )
    .await;
    let changed = verify(&stack).await;
    assert!(!changed.intact);
    assert_eq!(
        (
            changed.chains[0].problem.as_str(),
            changed.chains[0].problem_sequence
        ),
        ("changed", 2)
    );
    tamper(
        &stack,
        "UPDATE audit_events SET environment = 'dev' WHERE sequence = 2",
    )
    .await;
    assert!(verify(&stack).await.intact, "restored");

    tamper(
        &stack,
        "UPDATE audit_events SET sequence = 100 WHERE sequence = 3",
    )
    .await;
    tamper(
        &stack,
        "UPDATE audit_events SET sequence = 3 WHERE sequence = 4",
    )
    .await;
    tamper(
        &stack,
        "UPDATE audit_events SET sequence = 4 WHERE sequence = 100",
    )
    .await;
    let swapped = verify(&stack).await;
    assert_eq!(
        (
            swapped.chains[0].problem.as_str(),
            swapped.chains[0].problem_sequence
        ),
        ("reordered", 3),
        "two events swapped places"
    );

    tamper(&stack, "DELETE FROM audit_events WHERE sequence = 5").await;
    let removed = verify(&stack).await;
    assert!(!removed.intact);
    assert_eq!(
        removed.chains[0].problem_sequence, 3,
        "the first break is named first"
    );
}

async fn the_jsonl_file_holds_every_committed_event_in_chain_order(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth-audit.jsonl");
    let Some(stack) =
        Stack::start_with(backend, &[("LATCHKEY_AUDIT_FILE", file.to_str().unwrap())]).await
    else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stored = auth_events(&stack).await;
    let from_file: Vec<(String, u64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["replica"].as_str().unwrap().to_owned(),
                l["sequence"].as_u64().unwrap(),
                l["event_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let from_db: Vec<(String, u64, String)> = stored
        .iter()
        .map(|l| (l.replica.clone(), l.sequence, l.event.event_type.clone()))
        .collect();
    assert_eq!(from_file, from_db, "the same events, in the same order");
    assert!(lines.iter().all(|l| l["service"] == "auth"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(token.split('.').nth(2).unwrap()),
        "no token secret"
    );
    assert!(!text.contains(stack.admin_token.rsplit('.').next().unwrap()));
}

async fn after_retention_the_rest_still_verifies_and_a_moved_checkpoint_is_named(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    for name in ["OLD1", "OLD2", "OLD3"] {
        set_raw(&stack, &token, "/app", name, "v").await;
    }
    // 91 days on, retention (90 by default) reaps what came before.
    stack.clock.advance(Duration::days(91));
    let store = SecretStore::connect(&stack.secrets_db.url).await.unwrap();
    let key = stack.auth.app.audit_key();
    let cut = latchkey_domain::ports::Clock::now(&*stack.clock) - Duration::days(90);
    assert_eq!(store.audit().reap(cut, &key, 10_000).await.unwrap(), 3);
    set_raw(&stack, &token, "/app", "NEW", "v").await;

    let report = verify(&stack).await;
    assert!(report.intact, "{report:?}");
    assert_eq!(
        report.chains[0].first_sequence, 4,
        "the chain resumes after its checkpoint"
    );
    let names: Vec<String> = secrets_events(&stack)
        .await
        .iter()
        .filter_map(|l| l.event.secrets.first().map(|s| s.name.clone()))
        .collect();
    assert_eq!(names, ["NEW"]);

    // Moving the checkpoint over a removed event does not pass for retention.
    tamper(&stack, "DELETE FROM audit_events WHERE sequence = 4").await;
    tamper(&stack, "UPDATE audit_checkpoints SET sequence = 4").await;
    let moved = verify(&stack).await;
    assert!(!moved.intact);
    assert_eq!(
        (
            moved.chains[0].problem.as_str(),
            moved.chains[0].problem_sequence
        ),
        ("changed", 4)
    );
}

async fn an_unwritable_audit_table_fails_calls_audit_unavailable_then_recovers(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let project = stack.create_project(false).await;
    let token = token_for(&stack, &project).await;
    set_raw(&stack, &token, "/app", "K", "v").await;
    let (block, unblock) = match backend {
        Backend::Sqlite => (
            "CREATE TRIGGER block_audit BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(FAIL, 'audit table blocked by the test'); END",
            "DROP TRIGGER block_audit",
        ),
        Backend::Postgres => (
            "CREATE FUNCTION block_audit() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'audit table blocked by the test'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER block_audit BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION block_audit()",
            "DROP TRIGGER block_audit ON audit_events; DROP FUNCTION block_audit()",
        ),
    };
    tamper(&stack, block).await;

    for env in ["dev", "prod"] {
        let started = std::time::Instant::now();
        let refused = get_raw(&stack, &token, env, "K").await.unwrap_err();
        assert_eq!(reason(&refused), "AUDIT_UNAVAILABLE", "{env}: {refused:?}");
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert!(
            started.elapsed() < std::time::Duration::from_millis(1500),
            "{env}: refused after {:?}",
            started.elapsed()
        );
    }
    let reply = http_to(
        &stack.http_addr,
        "GET",
        "/api/v3/secrets/raw/K?environment=dev&secretPath=/app",
        Some(access_token_part(&token)),
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["reason"], "AUDIT_UNAVAILABLE");

    tamper(&stack, unblock).await;
    get_raw(&stack, &token, "dev", "K").await.unwrap();
    let report = verify(&stack).await;
    assert!(
        report.intact,
        "the chain continues without a gap: {report:?}"
    );
}
