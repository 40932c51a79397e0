//! `kill -9` of either service while 20 writers write: after a restart on
//! the same database, every acknowledged write is there, and so is its
//! audit event (audit is required by default: a call is answered only once
//! its event is committed). On SQLite and PostgreSQL, both services as real
//! processes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_domain::audit::Outcome;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use latchkey_store::audit::AuditQuery;
use latchkey_store::secrets::SecretStore;
use latchkey_test_support::{
    Backend, ServiceProcess, TestDb, backend_tests, create_project_with, create_service_token_with,
    free_port, with_token,
};

backend_tests!(
    killing_the_secrets_service_loses_no_acknowledged_write,
    killing_the_auth_service_loses_no_acknowledged_write,
);

/// Concurrent writers.
const WRITERS: usize = 20;

const INTERNAL_KEY: &str = "crash-test-internal-key-0123456789";

/// Both services on their own databases, restartable on the same ones.
struct Services {
    dir: tempfile::TempDir,
    auth_db: TestDb,
    secrets_db: TestDb,
    auth_port: u16,
    secrets_port: u16,
}

impl Services {
    fn auth(&self) -> ServiceProcess {
        ServiceProcess::start(
            &assert_cmd::cargo::cargo_bin("latchkey-auth"),
            &[
                (
                    "LATCHKEY_DATA_DIR",
                    self.dir.path().to_str().unwrap().to_owned(),
                ),
                ("DATABASE_URL", self.auth_db.url.clone()),
                ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY.to_owned()),
                (
                    "LATCHKEY_AUTH_ADDR",
                    format!("127.0.0.1:{}", self.auth_port),
                ),
            ],
        )
    }

    fn secrets(&self) -> ServiceProcess {
        ServiceProcess::start(
            &assert_cmd::cargo::cargo_bin("latchkey-secrets"),
            &[
                (
                    "LATCHKEY_DATA_DIR",
                    self.dir.path().to_str().unwrap().to_owned(),
                ),
                ("DATABASE_URL", self.secrets_db.url.clone()),
                ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY.to_owned()),
                (
                    "LATCHKEY_SECRETS_ADDR",
                    format!("127.0.0.1:{}", self.secrets_port),
                ),
                (
                    "LATCHKEY_AUTH_URL",
                    format!("http://127.0.0.1:{}", self.auth_port),
                ),
            ],
        )
    }

    fn secrets_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.secrets_port)
    }
}

async fn services(backend: Backend) -> Option<Services> {
    Some(Services {
        auth_db: TestDb::create(backend).await?,
        secrets_db: TestDb::create(backend).await?,
        dir: tempfile::tempdir().unwrap(),
        auth_port: free_port(),
        secrets_port: free_port(),
    })
}

fn write_request(writer: usize, n: u64) -> secrets_pb::SetSecretRawRequest {
    secrets_pb::SetSecretRawRequest {
        project_id: String::new(),
        environment: "dev".into(),
        secret_path: "/crash".into(),
        name: format!("W{writer}"),
        value: n.to_string(),
    }
}

/// Starts both, runs the writers, kills the one `kill_auth` names with
/// SIGKILL mid-write, restarts it and checks every acknowledged write.
async fn scenario(backend: Backend, kill_auth: bool) {
    let Some(services) = services(backend).await else {
        return;
    };
    let mut auth = Some(services.auth());
    let mut secrets = Some(services.secrets());
    let admin = std::fs::read_to_string(services.dir.path().join("admin-token")).unwrap();
    let mut admin_client =
        AuthServiceClient::connect(format!("http://127.0.0.1:{}", services.auth_port))
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

    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let successes: Arc<Vec<AtomicU64>> =
        Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    // Every acknowledged write, as (secret, version): each must have its event.
    let answered: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (acked, successes, answered, stop, token, url) = (
                acked.clone(),
                successes.clone(),
                answered.clone(),
                stop.clone(),
                token.clone(),
                services.secrets_url(),
            );
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let Ok(mut client) = SecretsServiceClient::connect(url.clone()).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let mut request = with_token(write_request(w, n), &token);
                    request.set_timeout(Duration::from_secs(2));
                    if let Ok(reply) = client.set_secret_raw(request).await {
                        acked[w].store(n, Ordering::SeqCst);
                        successes[w].fetch_add(1, Ordering::SeqCst);
                        let version = reply.into_inner().version;
                        answered.lock().unwrap().push((format!("W{w}"), version));
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = if kill_auth { &mut auth } else { &mut secrets };
    let process = victim.take().unwrap();
    process.signal("KILL");
    process.exit().await;
    let acked_at_kill: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    // Restart on the same database.
    *victim = Some(if kill_auth {
        services.auth()
    } else {
        services.secrets()
    });

    let mut client = SecretsServiceClient::connect(services.secrets_url())
        .await
        .unwrap();
    let mut written = 0;
    for (w, acked) in acked.iter().enumerate() {
        let acked = acked.load(Ordering::SeqCst);
        written += acked;
        if acked == 0 {
            continue;
        }
        let stored = client
            .get_secret_raw(with_token(
                secrets_pb::GetSecretRequest {
                    project_id: String::new(),
                    environment: "dev".into(),
                    secret_path: "/crash".into(),
                    name: format!("W{w}"),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .secret
            .unwrap();
        let value: u64 = stored.value.parse().unwrap();
        assert!(
            value >= acked,
            "writer {w}: acknowledged {acked}, stored {value}"
        );
        let succeeded = successes[w].load(Ordering::SeqCst);
        assert!(
            stored.version >= succeeded,
            "writer {w}: {succeeded} acknowledged writes, version {}",
            stored.version
        );
    }
    assert!(
        acked_at_kill.iter().filter(|n| **n > 0).count() >= WRITERS / 2,
        "the writers were writing when the kill came: {acked_at_kill:?}"
    );
    assert!(written > WRITERS as u64, "the writers wrote: {written}");

    let events = SecretStore::connect(&services.secrets_db.url)
        .await
        .unwrap()
        .audit()
        .list(&AuditQuery {
            event_type: Some("secret.write".into()),
            outcome: Some(Outcome::Allowed),
            limit: 1_000_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let recorded: HashSet<(String, u64)> = events
        .iter()
        .flat_map(|row| &row.link.event.secrets)
        .filter_map(|s| Some((s.name.clone(), s.version?)))
        .collect();
    let answered = answered.lock().unwrap();
    let missing: Vec<_> = answered.iter().filter(|w| !recorded.contains(*w)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered writes have no audit event: {missing:?}",
        missing.len(),
        answered.len()
    );
}

async fn killing_the_secrets_service_loses_no_acknowledged_write(backend: Backend) {
    scenario(backend, false).await;
}

async fn killing_the_auth_service_loses_no_acknowledged_write(backend: Backend) {
    scenario(backend, true).await;
}
