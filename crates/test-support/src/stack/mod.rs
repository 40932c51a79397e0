//! Both services in-process on ephemeral loopback ports: starting and
//! stopping them here, calling them in [`clients`], admin set-up in [`admin`].

mod admin;
mod clients;

use std::sync::Arc;

use latchkey_auth_service::startup::{Running, serve, start};
use latchkey_service_kit::config::Vars;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::db::{Backend, TestDb};

use crate::clock::ManualClock;

/// Both services, running.
#[derive(Debug)]
pub struct Stack {
    /// `http://127.0.0.1:<port>` of the auth service.
    pub auth_url: String,
    /// `http://127.0.0.1:<port>` of the secrets service.
    pub secrets_url: String,
    /// `127.0.0.1:<port>` of the secrets service's Infisical-compatible HTTP API.
    pub http_addr: String,
    /// The bootstrap admin's token.
    pub admin_token: String,
    /// The auth service's use cases (counters, reaper).
    pub auth: Running,
    /// The auth service's clock.
    pub clock: Arc<ManualClock>,
    /// The auth database.
    pub auth_db: TestDb,
    /// The secrets database.
    pub secrets_db: TestDb,
    /// The internal key both services share.
    pub internal_key: String,
    auth_extra: Vec<(String, String)>,
    auth_stop: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    secrets_stop: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    dir: tempfile::TempDir,
}

impl Stack {
    /// Starts both services on `backend`, or `None` when that backend is not
    /// configured (PostgreSQL without `LATCHKEY_TEST_POSTGRES_URL`).
    pub async fn start(backend: Backend) -> Option<Stack> {
        Self::start_with(backend, &[]).await
    }

    /// Like [`Stack::start`], with extra auth service variables (which win).
    pub async fn start_with(backend: Backend, auth_extra: &[(&str, &str)]) -> Option<Stack> {
        crate::init_test_log();
        let auth_db = TestDb::create(backend).await?;
        let secrets_db = TestDb::create(backend).await?;
        let dir = tempfile::tempdir().expect("temp dir");
        let internal_key = "test-internal-key-0123456789abcdef".to_owned();
        let data_dir = dir.path().to_str().expect("utf-8 temp path").to_owned();
        let clock = Arc::new(ManualClock::new());
        let auth = spawn_auth(
            &auth_db.url,
            &data_dir,
            &internal_key,
            clock.clone(),
            auth_extra,
        )
        .await;
        let (auth_url, running, auth_stop) = (auth.url, auth.running, auth.stop);
        let admin_token = std::fs::read_to_string(dir.path().join("admin-token"))
            .expect("admin token file")
            .trim()
            .to_owned();

        // Bound here and handed over: no port is released and taken again.
        let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let http_addr = http_listener.local_addr().expect("addr").to_string();
        let secrets_vars = Vars::from_pairs([
            ("LATCHKEY_DATA_DIR", data_dir.as_str()),
            ("DATABASE_URL", secrets_db.url.as_str()),
            ("LATCHKEY_INTERNAL_KEY", internal_key.as_str()),
            ("LATCHKEY_AUTH_URL", auth_url.as_str()),
            ("LATCHKEY_AUTH_TIMEOUT_MS", "1000"),
        ]);
        let secrets_config =
            latchkey_secrets_service::Config::from_vars(&secrets_vars).expect("secrets config");
        let secrets_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind secrets");
        let secrets_url = format!("http://{}", secrets_listener.local_addr().expect("addr"));
        let (secrets_tx, secrets_rx) = oneshot::channel::<()>();
        // Started (migrated) before it serves: the first call finds it ready.
        let authorizer =
            latchkey_secrets_service::startup::authorizer(&secrets_config).expect("auth client");
        let secrets_running = latchkey_secrets_service::startup::start(
            &secrets_config,
            Arc::new(authorizer),
            clock.clone(),
        )
        .await
        .expect("secrets start");
        let secrets_task = tokio::spawn(async move {
            latchkey_secrets_service::startup::serve(
                &secrets_running,
                &secrets_config,
                latchkey_secrets_service::startup::Listeners {
                    grpc: secrets_listener,
                    http: Some(http_listener),
                    health: None,
                },
                async {
                    let _ = secrets_rx.await;
                },
            )
            .await
            .expect("secrets serve");
        });
        let stack = Stack {
            auth_url,
            secrets_url,
            http_addr,
            admin_token,
            auth: running,
            clock,
            auth_extra: auth_extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            auth_db,
            secrets_db,
            internal_key,
            auth_stop: Some(auth_stop),
            secrets_stop: Some((secrets_tx, secrets_task)),
            dir,
        };
        stack.wait_for_secrets().await;
        Some(stack)
    }

    /// The auth service's data directory (admin token, generated keys).
    #[must_use]
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts another auth service replica on the same database and clock
    /// (tests of limits and revocation across replicas).
    pub async fn start_auth_replica(&self) -> AuthReplica {
        let extra: Vec<(&str, &str)> = self
            .auth_extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let data_dir = self
            .dir
            .path()
            .to_str()
            .expect("utf-8 temp path")
            .to_owned();
        spawn_auth(
            &self.auth_db.url,
            &data_dir,
            &self.internal_key,
            self.clock.clone(),
            &extra,
        )
        .await
    }

    /// Stops the auth service and waits until it no longer serves.
    pub async fn stop_auth(&mut self) {
        if let Some((tx, task)) = self.auth_stop.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
    }

    async fn wait_for_secrets(&self) {
        // The listener is bound before serving, so connecting succeeds at once;
        // this only waits for the store to be migrated and the server to answer.
        for _ in 0..200 {
            if let Ok(channel) = Channel::from_shared(self.secrets_url.clone())
                .expect("url")
                .connect()
                .await
            {
                let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
                if client
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("secrets service did not become healthy");
    }
}

/// A running auth service.
#[derive(Debug)]
pub struct AuthReplica {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its use cases.
    pub running: Running,
    stop: (oneshot::Sender<()>, JoinHandle<()>),
}

impl AuthReplica {
    /// Stops it and waits until it no longer serves.
    pub async fn stop(self) {
        let (tx, task) = self.stop;
        let _ = tx.send(());
        let _ = task.await;
    }
}

async fn spawn_auth(
    db_url: &str,
    data_dir: &str,
    internal_key: &str,
    clock: Arc<ManualClock>,
    extra: &[(&str, &str)],
) -> AuthReplica {
    let mut pairs = vec![
        ("LATCHKEY_DATA_DIR", data_dir),
        ("DATABASE_URL", db_url),
        ("LATCHKEY_INTERNAL_KEY", internal_key),
        ("LATCHKEY_REAPER_INTERVAL_SECONDS", "3600"),
    ];
    pairs.extend_from_slice(extra);
    let config =
        latchkey_auth_service::Config::from_vars(&Vars::from_pairs(pairs)).expect("auth config");
    let running = start(&config, clock).await.expect("auth start");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind auth");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = oneshot::channel::<()>();
    let task = {
        let running = running.clone();
        tokio::spawn(async move {
            serve(&running, &config, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("auth serve");
        })
    };
    AuthReplica {
        url,
        running,
        stop: (tx, task),
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (tx, _) in [self.auth_stop.take(), self.secrets_stop.take()]
            .into_iter()
            .flatten()
        {
            let _ = tx.send(());
        }
    }
}
