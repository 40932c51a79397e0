//! TLS for clients, mTLS between the services, and certificates reloaded
//! from their files, with throwaway certificates.

use std::sync::Arc;
use std::time::Duration;

use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use latchkey_test_support::{
    AuthorizeCall, Backend, ManualClock, Pki, TestDb, create_project_with,
    create_service_token_with, reason, with_token,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const INTERNAL_KEY: &str = "tls-test-internal-key-0123456789abcdef";

/// Both services over TLS, the secrets service calling `Authorize` on the
/// auth service's internal port with its client certificate.
struct TlsStack {
    auth: String,
    internal: String,
    secrets: String,
    admin: String,
    _dbs: (TestDb, TestDb),
    _dir: tempfile::TempDir,
    _stops: Vec<oneshot::Sender<()>>,
}

async fn start(pki: &Pki) -> TlsStack {
    let (auth_db, secrets_db) = (
        TestDb::create(Backend::Sqlite).await.unwrap(),
        TestDb::create(Backend::Sqlite).await.unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let tls = [
        ("LATCHKEY_TLS_CERT_FILE", path(&pki.server_cert)),
        ("LATCHKEY_TLS_KEY_FILE", path(&pki.server_key)),
        ("LATCHKEY_TLS_RELOAD_MILLIS", "100".to_owned()),
    ];
    let mut auth_vars = vec![
        ("LATCHKEY_DATA_DIR", data.clone()),
        ("DATABASE_URL", auth_db.url.clone()),
        ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY.to_owned()),
        ("LATCHKEY_TLS_CLIENT_CA_FILE", path(&pki.ca)),
        // Bound by the test below; the variable only declares the port.
        ("LATCHKEY_INTERNAL_ADDR", "127.0.0.1:0".to_owned()),
    ];
    auth_vars.extend(tls.clone());
    let auth_config = latchkey_auth_service::Config::from_vars(
        &latchkey_service_kit::config::Vars::from_pairs(auth_vars),
    )
    .unwrap();
    let running = latchkey_auth_service::startup::start(&auth_config, Arc::new(ManualClock::new()))
        .await
        .unwrap();
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth = format!("https://{}", public.local_addr().unwrap());
    let internal_url = format!("https://{}", internal.local_addr().unwrap());
    let (auth_tx, auth_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        latchkey_auth_service::startup::serve(
            &running,
            &auth_config,
            latchkey_auth_service::startup::Listeners {
                public,
                internal: Some(internal),
                health: None,
            },
            async {
                let _ = auth_rx.await;
            },
        )
        .await
        .unwrap();
    });

    let mut secrets_vars = vec![
        ("LATCHKEY_DATA_DIR", data.clone()),
        ("DATABASE_URL", secrets_db.url.clone()),
        ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY.to_owned()),
        ("LATCHKEY_AUTH_URL", internal_url.clone()),
        ("LATCHKEY_AUTH_CA_FILE", path(&pki.ca)),
        ("LATCHKEY_AUTH_CLIENT_CERT_FILE", path(&pki.client_cert)),
        ("LATCHKEY_AUTH_CLIENT_KEY_FILE", path(&pki.client_key)),
    ];
    secrets_vars.extend(tls);
    let secrets_config = latchkey_secrets_service::Config::from_vars(
        &latchkey_service_kit::config::Vars::from_pairs(secrets_vars),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let secrets = format!("https://{}", listener.local_addr().unwrap());
    let (secrets_tx, secrets_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        latchkey_secrets_service::startup::run(secrets_config, listener, async {
            let _ = secrets_rx.await;
        })
        .await
        .unwrap();
    });
    let admin = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    TlsStack {
        auth,
        internal: internal_url,
        secrets,
        admin,
        _dbs: (auth_db, secrets_db),
        _dir: dir,
        _stops: vec![auth_tx, secrets_tx],
    }
}

/// A TLS channel trusting `ca`, presenting `identity` when given.
async fn tls_channel(
    url: &str,
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(url.to_owned())?
        .tls_config(tls)?
        .connect()
        .await
}

async fn health(channel: Channel) -> Result<(), tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
}

/// A project and a read token for dev:/**, made over TLS.
async fn project_and_token(stack: &TlsStack, pki: &Pki) -> (String, String) {
    let mut auth =
        AuthServiceClient::new(tls_channel(&stack.auth, pki.ca_pem(), None).await.unwrap());
    let project = create_project_with(&mut auth, &stack.admin, false).await;
    let token =
        create_service_token_with(&mut auth, &stack.admin, &project, &["dev:/**"], &["read"]).await;
    (project, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_reach_both_services_which_talk_over_mtls_and_plaintext_is_refused() {
    let pki = Pki::new();
    let stack = start(&pki).await;
    let (_, token) = project_and_token(&stack, &pki).await;

    // ListSecrets succeeds only if the secrets service's Authorize call
    // passed the internal port's mTLS.
    let listed = list(&stack, &pki, &token).await;
    assert!(listed.is_ok(), "{listed:?}");

    for url in [&stack.auth, &stack.secrets, &stack.internal] {
        let plain = url.replace("https://", "http://");
        let answer = match Endpoint::from_shared(plain.clone())
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => health(channel).await,
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        };
        assert!(
            answer.is_err(),
            "a plaintext client got an answer from {plain}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_is_served_only_on_the_internal_port_to_callers_with_the_right_certificate() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let stack = start(&pki).await;
    let (project, token) = project_and_token(&stack, &pki).await;
    let call = |channel: Channel| {
        let request = AuthorizeCall::new(&stack.internal, INTERNAL_KEY, &token)
            .project(&project)
            .request();
        async move {
            AuthServiceClient::new(channel)
                .authorize(request)
                .await
                .map(drop)
        }
    };

    let public = call(
        tls_channel(&stack.auth, pki.ca_pem(), Some(pki.client_identity()))
            .await
            .unwrap(),
    )
    .await;
    let anonymous = match tls_channel(&stack.internal, pki.ca_pem(), None).await {
        Ok(channel) => call(channel).await,
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    let foreign = match tls_channel(
        &stack.internal,
        pki.ca_pem(),
        Some(stranger.client_identity()),
    )
    .await
    {
        Ok(channel) => call(channel).await,
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    let trusted = call(
        tls_channel(&stack.internal, pki.ca_pem(), Some(pki.client_identity()))
            .await
            .unwrap(),
    )
    .await;

    let public = public.unwrap_err();
    assert_eq!(public.code(), tonic::Code::PermissionDenied);
    assert_eq!(reason(&public), "PERMISSION_DENIED");
    assert!(
        public.message().contains("internal port"),
        "{}",
        public.message()
    );
    assert!(
        anonymous.is_err(),
        "no client certificate must not authorize"
    );
    assert!(
        foreign.is_err(),
        "a certificate from another CA must not authorize"
    );
    assert!(trusted.is_ok(), "{trusted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_server_certificate_is_served_to_new_connections_without_a_restart() {
    let pki = Pki::new();
    let next = Pki::new();
    let stack = start(&pki).await;
    health(tls_channel(&stack.auth, pki.ca_pem(), None).await.unwrap())
        .await
        .unwrap();
    assert!(
        tls_channel(&stack.auth, next.ca_pem(), None).await.is_err(),
        "the next CA is not trusted before the swap"
    );

    pki.swap_server_from(&next);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(channel) = tls_channel(&stack.auth, next.ca_pem(), None).await {
            health(channel).await.unwrap();
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not picked up within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tls_channel(&stack.auth, pki.ca_pem(), None).await.is_err(),
        "new connections no longer get the old certificate"
    );
}

/// Lists `dev:/` through the secrets service, which calls `Authorize` with
/// its client certificate.
async fn list(stack: &TlsStack, pki: &Pki, token: &str) -> Result<(), tonic::Status> {
    SecretsServiceClient::new(
        tls_channel(&stack.secrets, pki.ca_pem(), None)
            .await
            .unwrap(),
    )
    .list_secrets(with_token(
        secrets_pb::ListSecretsRequest {
            project_id: String::new(),
            environment: "dev".into(),
            secret_path: "/".into(),
            recursive: false,
        },
        token,
    ))
    .await
    .map(drop)
}

/// Polls `list` until its outcome is `ok` (true: success), for at most 10 s.
async fn until_list(
    stack: &TlsStack,
    pki: &Pki,
    token: &str,
    ok: bool,
) -> Result<(), tonic::Status> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let result = list(stack, pki, token).await;
        if result.is_ok() == ok || tokio::time::Instant::now() > deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secrets_service_picks_up_a_new_client_certificate_without_a_restart() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let stack = start(&pki).await;
    let (_, token) = project_and_token(&stack, &pki).await;
    list(&stack, &pki, &token).await.unwrap();
    let original = Pki::new();
    original.swap_client_from(&pki);

    pki.swap_client_from(&stranger);
    let refused = until_list(&stack, &pki, &token, false).await;
    pki.swap_client_from(&original);
    let restored = until_list(&stack, &pki, &token, true).await;

    let refused =
        refused.expect_err("a certificate from another CA is refused by the auth service");
    assert_eq!(reason(&refused), "AUTH_UNAVAILABLE", "{refused:?}");
    assert!(restored.is_ok(), "{restored:?}");
}
