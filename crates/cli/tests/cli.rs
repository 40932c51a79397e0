//! The real `latchkey` binary against services started by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use assert_cmd::Command;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_test_support::{Backend, Stack, with_token};

/// Runs the CLI with `args` and `token`; returns (exit code, stdout, stderr).
async fn latchkey(stack: &Stack, token: &str, args: &[&str]) -> (i32, String, String) {
    let (auth, secrets) = (stack.auth_url.clone(), stack.secrets_url.clone());
    let token = token.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("latchkey")
            .unwrap()
            .env_clear()
            .env("LATCHKEY_AUTH_ADDR", auth)
            .env("LATCHKEY_SECRETS_ADDR", secrets)
            .env("LATCHKEY_TOKEN", token)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    })
    .await
    .unwrap()
}

async fn started() -> (Stack, String) {
    let stack = Stack::start(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let project = stack.create_project(false).await;
    (stack, project)
}

async fn create_token(stack: &Stack, project: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "service-token",
        "create",
        "--projectId",
        project,
        "--scope=dev:/backend/**",
        "--scope=staging:/**",
        "--access-level=read",
        "--access-level=write",
        "--token-only",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = latchkey(stack, &stack.admin_token, &args).await;
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

async fn token_meta(stack: &Stack, token: &str) -> auth_pb::ServiceToken {
    let id = token.split('.').nth(1).unwrap().to_owned();
    stack
        .auth_client()
        .await
        .get_service_token(with_token(
            auth_pb::GetServiceTokenRequest { token_id: id },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_only_prints_just_the_token_with_both_scopes_and_access_levels() {
    let (stack, project) = started().await;

    let token = create_token(&stack, &project, &[]).await;

    assert!(
        token.starts_with("st.") && !token.contains(char::is_whitespace),
        "{token:?}"
    );
    let meta = token_meta(&stack, &token).await;
    assert_eq!(meta.name, "Service token generated via CLI");
    let scopes: Vec<_> = meta
        .scopes
        .iter()
        .map(|s| format!("{}:{}", s.environment, s.secret_path))
        .collect();
    assert_eq!(scopes, ["dev:/backend/**", "staging:/**"]);
    assert_eq!(meta.permissions.len(), 2);
    let (code, _, err) = latchkey(
        &stack,
        &token,
        &["secrets", "set", "A=1", "--env", "staging", "--path", "/x"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_expiry_is_one_day_and_zero_never_expires() {
    let (stack, project) = started().await;

    let day = token_meta(&stack, &create_token(&stack, &project, &[]).await).await;
    let never = token_meta(
        &stack,
        &create_token(&stack, &project, &["--expiry-seconds", "0"]).await,
    )
    .await;

    assert_eq!(
        day.expires_at.unwrap().seconds - day.created_at.unwrap().seconds,
        86_400
    );
    assert!(never.expires_at.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_set_then_get_round_trips_awkward_values() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    let value = "line one\nline \"two\" = 'x'\tünïcødé ✓";

    let pair = format!("TRICKY={value}");
    let (code, _, err) = latchkey(
        &stack,
        &token,
        &[
            "secrets", "set", &pair, "--env", "dev", "--path", "/backend",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = latchkey(
        &stack,
        &token,
        &[
            "secrets",
            "get",
            "TRICKY",
            "--env",
            "dev",
            "--path",
            "/backend/",
            "--plain",
        ],
    )
    .await;

    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{value}\n"));
    let (_, listed, _) = latchkey(
        &stack,
        &token,
        &[
            "secrets",
            "list",
            "--env",
            "dev",
            "--path",
            "/",
            "--recursive",
        ],
    )
    .await;
    assert!(
        listed.contains("TRICKY") && listed.contains("/backend"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_refused_before_any_call_with_exit_code_2() {
    let (stack, project) = started().await;
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "service-token",
                "create",
                "--projectId",
                &project,
                "--scope=dev",
                "--access-level=read",
            ],
            "--scope",
        ),
        (
            &[
                "service-token",
                "create",
                "--projectId",
                &project,
                "--scope=dev:backend",
                "--access-level=read",
            ],
            "--scope",
        ),
        (
            &[
                "service-token",
                "create",
                "--projectId",
                &project,
                "--scope=dev:/",
                "--access-level=read",
                "--expiry-seconds",
                "-1",
            ],
            "--expiry-seconds",
        ),
        (&["secrets", "get", "A", "--path", "../etc"], "--path"),
    ];
    for (args, flag) in cases {
        let (code, _, err) = latchkey(&stack, &stack.admin_token, args).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
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
    assert!(listed.is_empty(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_print_reason_and_hint_with_their_exit_code() {
    let (mut stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;

    let (code, _, err) = latchkey(
        &stack,
        &token,
        &["secrets", "get", "A", "--env", "dev", "--path", "/frontend"],
    )
    .await;
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("SCOPE_DENIED") && err.contains("dev:/backend/**") && err.contains("hint:"),
        "{err}"
    );

    let (code, _, err) = latchkey(&stack, &token, &["project", "list"]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("PERMISSION_DENIED"), "{err}");

    let bogus = format!("{}0", &token[..token.len() - 1]);
    let (code, _, err) = latchkey(
        &stack,
        &bogus,
        &["secrets", "get", "A", "--env", "dev", "--path", "/backend"],
    )
    .await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("TOKEN_INVALID"), "{err}");

    stack.stop_auth().await;
    let (code, _, err) = latchkey(
        &stack,
        &token,
        &["secrets", "list", "--env", "dev", "--path", "/backend"],
    )
    .await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("AUTH_UNAVAILABLE"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_commands_issue_a_limited_token_that_stops_after_its_uses() {
    let (stack, project) = started().await;
    let service = create_token(&stack, &project, &[]).await;
    let (code, _, err) = latchkey(
        &stack,
        &service,
        &[
            "secrets", "set", "K=v", "--env", "dev", "--path", "/backend",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let admin = stack.admin_token.clone();

    let (code, id, err) = latchkey(
        &stack,
        &admin,
        &["identity", "create", "--name", "worker", "--plain"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_owned();
    let (code, _, err) = latchkey(
        &stack,
        &admin,
        &[
            "identity",
            "token-auth",
            "attach",
            "--identity-id",
            &id,
            "--ttl",
            "0",
        ],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("access_token_ttl"), "{err}");
    let (code, out, err) = latchkey(
        &stack,
        &admin,
        &[
            "identity",
            "token-auth",
            "attach",
            "--identity-id",
            &id,
            "--num-uses-limit",
            "2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0.0.0.0/0,::/0"), "{out}");
    let (code, _, err) = latchkey(
        &stack,
        &admin,
        &[
            "project",
            "add-identity",
            "--projectId",
            &project,
            "--identity-id",
            &id,
            "--role",
            "viewer",
            "--scope=dev:/backend/**",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = latchkey(
        &stack,
        &admin,
        &[
            "identity",
            "token",
            "create",
            "--identity-id",
            &id,
            "--token-only",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("ia."), "{token}");

    let get = [
        "secrets",
        "get",
        "K",
        "--env",
        "dev",
        "--path",
        "/backend",
        "--projectId",
        &project,
        "--plain",
    ];
    for _ in 0..2 {
        let (code, out, err) = latchkey(&stack, &token, &get).await;
        assert_eq!((code, out.as_str()), (0, "v\n"), "{err}");
    }
    let (code, _, err) = latchkey(&stack, &token, &get).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("TOKEN_USES_EXHAUSTED"), "{err}");
    let (code, _, err) = latchkey(&stack, &token, &["identity", "token", "renew"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("TOKEN_USES_EXHAUSTED"), "{err}");
    let (_, listed, _) = latchkey(
        &stack,
        &admin,
        &["identity", "token", "list", "--identity-id", &id],
    )
    .await;
    assert!(
        listed.contains("2/2") && listed.contains("active"),
        "{listed}"
    );
    let (code, _, err) = latchkey(
        &stack,
        &admin,
        &["identity", "token", "revoke", "--access-token", &token],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (_, listed, _) = latchkey(
        &stack,
        &admin,
        &["identity", "token", "list", "--identity-id", &id],
    )
    .await;
    assert!(listed.contains("revoked"), "{listed}");
}
