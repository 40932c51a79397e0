//! Both services in-process on loopback, as `make run` starts them, with
//! the ceilings and the setup the scenarios call.

use std::sync::Arc;

use latchkey_service_kit::config::Vars;
use tokio::net::TcpListener;

use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

use crate::databases::Databases;
use crate::scenarios::Targets;
use crate::{BoxError, ceilings, setup};

/// Starts the ceilings and both services, and sets up what the scenarios
/// need; returns them with the auth database's URL.
pub(crate) async fn start(
    dir: &std::path::Path,
    databases: &Databases,
) -> Result<(Targets, String), BoxError> {
    let data = dir.to_str().ok_or("temp dir is not UTF-8")?;
    let internal_key = "bench-internal-key-0123456789abcdef".to_owned();
    let echo_url = ceilings::start_echo().await?;
    let (auth_url, auth_db) = start_auth(data, &internal_key, databases.auth.as_deref()).await?;
    let (secrets_url, http_addr) = start_secrets(
        data,
        &internal_key,
        &auth_url,
        databases.secrets.as_deref(),
        "required",
    )
    .await?;
    // The same service with audit off, on the same database, to measure
    // what recording costs.
    let (unaudited_url, unaudited_http_addr) = start_secrets(
        data,
        &internal_key,
        &auth_url,
        databases.secrets.as_deref(),
        "off",
    )
    .await?;
    let admin = std::fs::read_to_string(dir.join("admin-token"))?
        .trim()
        .to_owned();
    let setup = setup::Setup::create(&auth_url, &secrets_url, &admin).await?;
    let tls = latchkey_client::Tls::plaintext();
    let connect =
        |url: String| async move { Ok::<_, BoxError>(Channel::from_shared(url)?.connect().await?) };
    let targets = Targets {
        auth: latchkey_client::channel::connect(&auth_url, &tls).await?,
        secrets: latchkey_client::channel::connect(&secrets_url, &tls).await?,
        unaudited: latchkey_client::channel::connect(&unaudited_url, &tls).await?,
        unaudited_http_addr,
        echo: HealthClient::new(connect(echo_url.clone()).await?),
        hop: HealthClient::new(connect(ceilings::start_hop(&echo_url).await?).await?),
        http_addr,
        internal_key,
        admin,
        setup,
    };
    Ok((targets, auth_db))
}

/// The auth service on a free port: its URL and its database's.
pub(crate) async fn start_auth(
    data: &str,
    internal_key: &str,
    database: Option<&str>,
) -> Result<(String, String), BoxError> {
    let mut pairs = vec![
        ("LATCHKEY_DATA_DIR", data),
        ("LATCHKEY_INTERNAL_KEY", internal_key),
    ];
    pairs.extend(database.map(|url| ("DATABASE_URL", url)));
    let vars = Vars::from_pairs(pairs);
    let config = latchkey_auth_service::Config::from_vars(&vars)?;
    let database_url = config.database_url.clone();
    let running = latchkey_auth_service::startup::start(
        &config,
        Arc::new(latchkey_domain::ports::SystemClock),
    )
    .await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = latchkey_auth_service::startup::serve(
            &running,
            &config,
            listener,
            std::future::pending(),
        )
        .await;
    });
    Ok((url, database_url))
}

/// Starts the secrets service with `LATCHKEY_AUDIT=audit`; returns its
/// gRPC URL and its HTTP API's address.
pub(crate) async fn start_secrets(
    data: &str,
    internal_key: &str,
    auth_url: &str,
    database: Option<&str>,
    audit: &str,
) -> Result<(String, String), BoxError> {
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let http_addr = http.local_addr()?.to_string();
    let mut pairs = vec![
        ("LATCHKEY_DATA_DIR", data),
        ("LATCHKEY_INTERNAL_KEY", internal_key),
        ("LATCHKEY_AUTH_URL", auth_url),
        ("LATCHKEY_AUDIT", audit),
    ];
    pairs.extend(database.map(|url| ("DATABASE_URL", url)));
    let vars = Vars::from_pairs(pairs);
    let config = latchkey_secrets_service::Config::from_vars(&vars)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    // Migrated before the next one starts: two on one SQLite file must not
    // migrate at once.
    let authorizer = Arc::new(latchkey_secrets_service::startup::authorizer(&config)?);
    let running = latchkey_secrets_service::startup::start(
        &config,
        authorizer,
        Arc::new(latchkey_domain::ports::SystemClock),
    )
    .await?;
    tokio::spawn(async move {
        let listeners = latchkey_secrets_service::startup::Listeners {
            grpc: listener,
            http: Some(http),
            health: None,
        };
        let _ = latchkey_secrets_service::startup::serve(
            &running,
            &config,
            listeners,
            std::future::pending(),
        )
        .await;
    });
    Ok((url, http_addr))
}
