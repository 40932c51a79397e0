//! Two real `latchkey-secrets` processes on one database, each with its
//! ciphertext cache: a write or delete on one is read on the other within
//! `LATCHKEY_STATE_CACHE_MILLIS`, and the replica that wrote never serves
//! what it replaced. On SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use latchkey_test_support::{
    Backend, ServiceProcess, TestDb, backend_tests, create_project_with, create_service_token_with,
    free_port, with_token,
};
use tonic::transport::Channel;

backend_tests!(a_change_on_one_secrets_replica_reaches_the_other_within_the_cache_ttl);

const INTERNAL_KEY: &str = "replica-test-internal-key-0123456789";

/// The staleness bound the replicas run with.
const TTL: Duration = Duration::from_millis(1500);

/// Polling, process scheduling and call latency on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1000);

fn start(binary: &str, vars: &[(&str, String)]) -> ServiceProcess {
    ServiceProcess::start(&assert_cmd::cargo::cargo_bin(binary), vars)
}

/// `Some(value)` of dev:/app/K, or `None` when it is not found.
async fn read(client: &mut SecretsServiceClient<Channel>, token: &str) -> Option<String> {
    let request = secrets_pb::GetSecretRequest {
        project_id: String::new(),
        environment: "dev".into(),
        secret_path: "/app".into(),
        name: "K".into(),
    };
    match client.get_secret_raw(with_token(request, token)).await {
        Ok(reply) => Some(reply.into_inner().secret.unwrap().value),
        Err(status) if status.code() == tonic::Code::NotFound => None,
        Err(status) => panic!("get: {status:?}"),
    }
}

/// The values of dev:/ and everything below it.
async fn list(client: &mut SecretsServiceClient<Channel>, token: &str) -> Vec<String> {
    let request = secrets_pb::ListSecretsRequest {
        project_id: String::new(),
        environment: "dev".into(),
        secret_path: "/".into(),
        recursive: true,
    };
    let reply = client.list_secrets_raw(with_token(request, token)).await;
    reply
        .unwrap()
        .into_inner()
        .secrets
        .into_iter()
        .map(|s| s.value)
        .collect()
}

/// Polls `reader` until both its get and its listing show `want`; returns
/// how long that took from `since` and whether it answered stale first.
async fn converge(
    reader: &mut SecretsServiceClient<Channel>,
    token: &str,
    want: Option<&str>,
    since: Instant,
) -> (Duration, bool) {
    let listed: Vec<String> = want.iter().map(|v| (*v).to_owned()).collect();
    let mut stale = false;
    loop {
        if read(reader, token).await.as_deref() == want && list(reader, token).await == listed {
            return (since.elapsed(), stale);
        }
        stale = true;
        assert!(
            since.elapsed() < TTL + SLACK,
            "the other replica still serves the old state of dev:/app/K after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_change_on_one_secrets_replica_reaches_the_other_within_the_cache_ttl(backend: Backend) {
    let (Some(auth_db), Some(secrets_db)) =
        (TestDb::create(backend).await, TestDb::create(backend).await)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let auth_port = free_port();
    let _auth = start(
        "latchkey-auth",
        &[
            ("LATCHKEY_DATA_DIR", data_dir.clone()),
            ("DATABASE_URL", auth_db.url.clone()),
            ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY.to_owned()),
            ("LATCHKEY_AUTH_ADDR", format!("127.0.0.1:{auth_port}")),
        ],
    );
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let mut admin_client = AuthServiceClient::connect(format!("http://127.0.0.1:{auth_port}"))
        .await
        .unwrap();
    let project = create_project_with(&mut admin_client, &admin, false).await;
    let token = create_service_token_with(
        &mut admin_client,
        &admin,
        &project,
        &["dev:/**"],
        &["read", "write"],
    )
    .await;
    let mut replicas = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        replicas.push(start(
            "latchkey-secrets",
            &[
                ("LATCHKEY_DATA_DIR", data_dir.clone()),
                ("DATABASE_URL", secrets_db.url.clone()),
                ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY.to_owned()),
                ("LATCHKEY_SECRETS_ADDR", format!("127.0.0.1:{port}")),
                ("LATCHKEY_AUTH_URL", format!("http://127.0.0.1:{auth_port}")),
                ("LATCHKEY_STATE_CACHE_MILLIS", TTL.as_millis().to_string()),
            ],
        ));
        let mut client = SecretsServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        // Answered once it has migrated: SQLite replicas must not migrate at once.
        list(&mut client, &token).await;
        clients.push(client);
    }

    let mut stale_seen = false;
    for round in 0..4_usize {
        let (writer, reader) = (round % 2, 1 - round % 2);
        // The reader holds the current state in its cache.
        let before = read(&mut clients[reader], &token).await;
        list(&mut clients[reader], &token).await;

        let value = format!("v{round}");
        let change = if round < 3 {
            let request = secrets_pb::SetSecretRawRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/app".into(),
                name: "K".into(),
                value: value.clone(),
            };
            clients[writer]
                .set_secret_raw(with_token(request, &token))
                .await
                .map(drop)
        } else {
            let request = secrets_pb::DeleteSecretRequest {
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/app".into(),
                name: "K".into(),
            };
            clients[writer]
                .delete_secret(with_token(request, &token))
                .await
                .map(drop)
        };
        change.unwrap();
        let changed = Instant::now();
        let want = (round < 3).then_some(value.as_str());

        assert_eq!(
            read(&mut clients[writer], &token).await.as_deref(),
            want,
            "round {round}: the replica that wrote served what it replaced"
        );
        let expected: Vec<String> = want.iter().map(|v| (*v).to_owned()).collect();
        assert_eq!(list(&mut clients[writer], &token).await, expected);

        let (took, stale) = converge(&mut clients[reader], &token, want, changed).await;
        stale_seen |= stale && before.is_some();
        eprintln!(
            "round {round}: the other replica converged after {took:?} (stale first: {stale})"
        );
    }
    assert!(
        stale_seen,
        "the reading replica never answered from its cache, so this test proved no bound"
    );
}
