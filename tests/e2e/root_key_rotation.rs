//! Rotating the root key: the previous key as secondary opens project keys
//! and each start rewraps them, so the old key can then be retired.

use std::sync::Arc;

use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_test_support::{
    AuthorizeCall, Backend, ManualClock, TestDb, backend_tests, create_project_with,
    create_service_token_with,
};
use tokio::sync::oneshot;

const INTERNAL_KEY: &str = "rotation-test-internal-key-0123456789";
const OLD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222222222222222222222222222";

backend_tests!(project_keys_survive_a_root_key_rotation_and_the_old_key_retires);

/// Runs the auth service on `db` with `vars` until the sender is dropped.
async fn auth(
    db: &TestDb,
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> (String, oneshot::Sender<()>) {
    let mut pairs = vec![
        ("LATCHKEY_DATA_DIR", dir.to_str().unwrap()),
        ("DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY),
    ];
    pairs.extend_from_slice(vars);
    let config = latchkey_auth_service::Config::from_vars(
        &latchkey_service_kit::config::Vars::from_pairs(pairs),
    )
    .unwrap();
    let running = latchkey_auth_service::startup::start(&config, Arc::new(ManualClock::new()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        latchkey_auth_service::startup::serve(&running, &config, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (url, tx)
}

/// The project key `Authorize` hands out for a raw read, or the failure.
async fn raw_project_key(url: &str, token: &str, project: &str) -> Result<String, tonic::Status> {
    Ok(AuthorizeCall::new(url, INTERNAL_KEY, token)
        .project(project)
        .raw()
        .send()
        .await?
        .project_key)
}

async fn project_keys_survive_a_root_key_rotation_and_the_old_key_retires(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (url, stop) = auth(&db, dir.path(), &[("LATCHKEY_ROOT_KEY", OLD)]).await;
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let mut client = AuthServiceClient::connect(url.clone()).await.unwrap();
    let project = create_project_with(&mut client, &admin, false).await;
    let token =
        create_service_token_with(&mut client, &admin, &project, &["dev:/**"], &["read"]).await;
    let before = raw_project_key(&url, &token, &project).await.unwrap();
    drop(stop);

    // Step 1: the new key primary, the old one secondary; the start rewraps.
    let (url, stop) = auth(
        &db,
        dir.path(),
        &[
            ("LATCHKEY_ROOT_KEY", NEW),
            ("LATCHKEY_ROOT_KEY_SECONDARY", OLD),
        ],
    )
    .await;
    let during = raw_project_key(&url, &token, &project).await.unwrap();
    drop(stop);
    // Step 2: the old key retired.
    let (url, stop) = auth(&db, dir.path(), &[("LATCHKEY_ROOT_KEY", NEW)]).await;
    let after = raw_project_key(&url, &token, &project).await.unwrap();
    drop(stop);
    let (url, _stop) = auth(&db, dir.path(), &[("LATCHKEY_ROOT_KEY", OLD)]).await;
    let with_old = raw_project_key(&url, &token, &project).await;

    assert_eq!(
        during, before,
        "the same project key, opened with the secondary"
    );
    assert_eq!(after, before, "rewrapped under the new key");
    let denied = with_old.unwrap_err();
    assert_eq!(
        denied.code(),
        tonic::Code::Internal,
        "the old root key no longer opens it"
    );
}
