//! `latchkey-bench` (run by `make bench`): starts both services in-process on
//! loopback with SQLite, and two do-nothing ceilings: a bare health service
//! (one hop) and a server that calls it over one channel before answering
//! (two hops, what any secrets call costs with its mandatory `Authorize`).
//! It drives each with the same client at a fixed concurrency and reports
//! throughput, p50 and p99 latency, and the ratio of each throughput to the
//! ceilings'. Everything is measured in one run, because these machines are
//! shared and noisy: compare ratios, not runs.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use latchkey_client::Bearer;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use latchkey_service_kit::config::Vars;
use tokio::net::TcpListener;
use tonic::transport::Channel;

mod databases;
mod http;
mod setup;

// The allocator the service binaries use, since the bench runs them in-process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use databases::{Backend, Databases, store_tokens};
use setup::Setup;

/// Load generator for Latchkey.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Calls in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Only the scenarios whose name contains this (case-insensitive), e.g.
    /// `--only listsecrets` under a profiler; ratios need the ceilings.
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
    /// Print the results as JSON (one object per scenario) instead of a table.
    #[arg(long)]
    json: bool,
    /// The database both services use; PostgreSQL databases are created
    /// from `LATCHKEY_TEST_POSTGRES_URL` and dropped at the end.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Then store this many more service tokens (rows inserted directly) and
    /// measure `Authorize` again.
    #[arg(long, default_value_t = 0)]
    tokens: usize,
}

/// What a scenario is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The one-hop ceiling.
    OneHop,
    /// The two-hop ceiling.
    TwoHop,
    /// A call to the auth service (one hop).
    Auth,
    /// A call to the secrets service (two hops: it calls `Authorize`).
    Secrets,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let data = dir
        .path()
        .to_str()
        .ok_or("temp dir is not UTF-8")?
        .to_owned();
    let internal_key = "bench-internal-key-0123456789abcdef".to_owned();
    let echo_url = start_echo().await?;
    let databases = Databases::create(args.backend).await?;
    let (auth_url, auth_db) = start_auth(&data, &internal_key, databases.auth.as_deref()).await?;
    let (secrets_url, http_addr) = start_secrets(
        &data,
        &internal_key,
        &auth_url,
        databases.secrets.as_deref(),
    )
    .await?;
    let admin = std::fs::read_to_string(dir.path().join("admin-token"))?
        .trim()
        .to_owned();
    let setup = Setup::create(&auth_url, &secrets_url, &admin).await?;

    let tls = latchkey_client::Tls::plaintext();
    let auth_channel = latchkey_client::channel::connect(&auth_url, &tls).await?;
    let secrets_channel = latchkey_client::channel::connect(&secrets_url, &tls).await?;
    let echo = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(echo_url.clone())?.connect().await?,
    );
    let hop = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(start_hop(&echo_url).await?)?
            .connect()
            .await?,
    );
    let duration = Duration::from_secs(args.seconds);
    let n = args.concurrency;
    let wanted = |label: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| label.to_lowercase().contains(&o.to_lowercase()))
    };

    if !args.json {
        println!(
            "latchkey-bench: {n} calls in flight, {}s per scenario, {:?}, client and servers on one machine ({} cores)",
            args.seconds,
            args.backend,
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
        );
    }
    let mut results = Vec::new();
    for (label, kind, client) in [
        ("do-nothing gRPC call (ceiling)", Kind::OneHop, echo),
        ("do-nothing two-hop call (ceiling)", Kind::TwoHop, hop),
    ] {
        if !wanted(label) {
            continue;
        }
        results.push(
            measure(label, kind, duration, n, move || {
                let mut c = client.clone();
                async move {
                    c.check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(drop)
                }
            })
            .await,
        );
    }
    for (label, token, project, raw) in [
        (
            "Authorize, service token",
            setup.service_token.clone(),
            String::new(),
            false,
        ),
        (
            "Authorize, identity token",
            setup.identity_token.clone(),
            setup.project.clone(),
            true,
        ),
        (
            "Authorize, token with a use limit",
            setup.limited_token.clone(),
            setup.project.clone(),
            true,
        ),
    ] {
        if !wanted(label) {
            continue;
        }
        // The secrets service's side of the hop: the internal key on every call.
        let auth = AuthServiceClient::with_interceptor(
            auth_channel.clone(),
            Bearer::new(None)?.with_internal_key(&internal_key)?,
        );
        results.push(
            measure(
                label,
                Kind::Auth,
                duration,
                n,
                authorize(auth, token, project, raw),
            )
            .await,
        );
    }
    // The empty folder separates the fixed cost of a secrets call from its
    // payload (10 secrets, about 1.3 KB of reply).
    for (label, token, project, path, raw) in [
        (
            "ListSecrets, service token",
            setup.service_token.clone(),
            String::new(),
            "/bench",
            false,
        ),
        (
            "ListSecrets, service token, empty folder",
            setup.service_token.clone(),
            String::new(),
            "/bench/empty",
            false,
        ),
        (
            "ListSecretsRaw, identity token",
            setup.identity_token.clone(),
            setup.project.clone(),
            "/bench",
            true,
        ),
    ] {
        if !wanted(label) {
            continue;
        }
        let secrets = SecretsServiceClient::with_interceptor(
            secrets_channel.clone(),
            Bearer::new(Some(&token))?,
        );
        results.push(
            measure(label, Kind::Secrets, duration, n, move || {
                let mut c = secrets.clone();
                let request = secrets_pb::ListSecretsRequest {
                    project_id: project.clone(),
                    environment: "dev".into(),
                    secret_path: path.into(),
                    recursive: false,
                };
                async move {
                    if raw {
                        c.list_secrets_raw(request).await.map(drop)
                    } else {
                        c.list_secrets(request).await.map(drop)
                    }
                }
            })
            .await,
        );
    }
    // Infisical's SDKs' read of the same folder over the HTTP API.
    let label = "HTTP GET /api/v3/secrets/raw, identity token";
    if wanted(label) {
        let pool = http::Pool::new(&http_addr);
        let token = setup.identity_token.clone();
        let target = format!(
            "/api/v3/secrets/raw?workspaceId={}&environment=dev&secretPath=/bench",
            setup.project
        );
        results.push(
            measure(label, Kind::Secrets, duration, n, move || {
                let (pool, token, target) = (pool.clone(), token.clone(), target.clone());
                async move { pool.get(&target, &token).await }
            })
            .await,
        );
    }
    // Self-lookup, beside Authorize: what a client learns of its own token.
    let label = "LookupToken, service token";
    if wanted(label) {
        let auth = AuthServiceClient::with_interceptor(
            auth_channel.clone(),
            Bearer::new(Some(&setup.service_token))?,
        );
        results.push(
            measure(label, Kind::Auth, duration, n, move || {
                let mut c = auth.clone();
                async move {
                    c.lookup_token(auth_pb::LookupTokenRequest::default())
                        .await
                        .map(drop)
                }
            })
            .await,
        );
    }
    // Writes under contention: 4 and 64 writers, each writing the next
    // version of one of 16 secrets, over gRPC and HTTP.
    let writes = "/bench/writes";
    let mut writer_secrets = SecretsServiceClient::with_interceptor(
        secrets_channel.clone(),
        Bearer::new(Some(&setup.identity_token))?,
    );
    for i in 0..16 {
        writer_secrets
            .set_secret_raw(secrets_pb::SetSecretRawRequest {
                project_id: setup.project.clone(),
                environment: "dev".into(),
                secret_path: writes.into(),
                name: format!("W{i}"),
                value: "initial".into(),
            })
            .await?;
    }
    for writers in [4, 64] {
        let label: &'static str =
            Box::leak(format!("SetSecretRaw, {writers} writers").into_boxed_str());
        if wanted(label) {
            let (secrets, project) = (writer_secrets.clone(), setup.project.clone());
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            results.push(
                measure(label, Kind::Secrets, duration, writers, move || {
                    let mut c = secrets.clone();
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let request = secrets_pb::SetSecretRawRequest {
                        project_id: project.clone(),
                        environment: "dev".into(),
                        secret_path: writes.into(),
                        name: format!("W{}", i % 16),
                        value: format!("value {i}"),
                    };
                    async move { c.set_secret_raw(request).await.map(drop) }
                })
                .await,
            );
        }
        let label: &'static str = Box::leak(
            format!("HTTP PATCH /api/v3/secrets/raw, {writers} writers").into_boxed_str(),
        );
        if wanted(label) {
            let pool = http::Pool::new(&http_addr);
            let (token, project) = (setup.identity_token.clone(), setup.project.clone());
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            results.push(
                measure(label, Kind::Secrets, duration, writers, move || {
                    let (pool, token) = (pool.clone(), token.clone());
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let target = format!("/api/v3/secrets/raw/W{}", i % 16);
                    let body = serde_json::json!({
                        "workspaceId": project,
                        "environment": "dev",
                        "secretPath": writes,
                        "secretValue": format!("value {i}"),
                    })
                    .to_string();
                    async move {
                        pool.send(hyper::Method::PATCH, &target, &token, body.into())
                            .await
                    }
                })
                .await,
            );
        }
    }
    // Token creation (argon2 per token), with the process's peak memory.
    let label = "CreateServiceToken";
    if wanted(label) {
        let auth =
            AuthServiceClient::with_interceptor(auth_channel.clone(), Bearer::new(Some(&admin))?);
        let project = setup.project.clone();
        let before = memory_mib("VmRSS");
        results.push(
            measure(label, Kind::Auth, duration, n, move || {
                let mut c = auth.clone();
                let request = auth_pb::CreateServiceTokenRequest {
                    project_id: project.clone(),
                    name: "bench".into(),
                    scopes: vec![auth_pb::Scope {
                        environment: "dev".into(),
                        secret_path: "/**".into(),
                    }],
                    permissions: vec![auth_pb::Permission::Read.into()],
                    expires_in_seconds: 0,
                    trusted_ips: Vec::new(),
                };
                async move { c.create_service_token(request).await.map(drop) }
            })
            .await,
        );
        if !args.json {
            println!(
                "CreateServiceToken with {n} in flight: resident memory {before} MiB before, peak {} MiB (the whole bench process)",
                memory_mib("VmHWM")
            );
        }
    }
    if args.tokens > 0 {
        if !args.json {
            println!("storing {} more service tokens...", args.tokens);
        }
        store_tokens(&auth_db, &setup.project, args.tokens).await?;
        let label: &'static str = Box::leak(
            format!("Authorize, service token, +{} tokens", args.tokens).into_boxed_str(),
        );
        let auth = AuthServiceClient::with_interceptor(
            auth_channel.clone(),
            Bearer::new(None)?.with_internal_key(&internal_key)?,
        );
        let call = authorize(auth, setup.service_token.clone(), String::new(), false);
        results.push(measure(label, Kind::Auth, duration, n, call).await);
    }
    databases.drop_all().await;
    if args.json {
        println!("{}", report_json(&results));
    } else {
        report(&results);
    }
    Ok(())
}

/// A memory figure of this process from `/proc/self/status` (`VmRSS`,
/// `VmHWM`), in MiB; 0 where it cannot be read.
fn memory_mib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .trim_start_matches(':')
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kib| kib / 1024)
}

/// One `Authorize` call for `token`, as the secrets service makes it.
fn authorize(
    auth: AuthServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>,
    token: String,
    project: String,
    raw: bool,
) -> impl Fn() -> BoxFuture<Result<(), tonic::Status>> + Send + Sync + 'static {
    move || {
        let mut c = auth.clone();
        let request = tonic::Request::new(auth_pb::AuthorizeRequest {
            token: token.clone(),
            client_ip: "127.0.0.1".into(),
            project_id: project.clone(),
            environment: "dev".into(),
            secret_path: "/bench".into(),
            action: auth_pb::Action::Read.into(),
            raw,
            recursive: false,
        });
        Box::pin(async move { c.authorize(request).await.map(drop) })
    }
}

/// One scenario's outcome.
struct Outcome {
    label: &'static str,
    kind: Kind,
    calls: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// Runs `call` from `n` workers for `duration`, after a one-second warm-up.
async fn measure<F, Fut>(
    label: &'static str,
    kind: Kind,
    duration: Duration,
    n: usize,
    call: F,
) -> Outcome
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let call = Arc::new(call);
    for phase in [Duration::from_secs(1), duration] {
        let start = Instant::now();
        let workers: Vec<_> = (0..n)
            .map(|_| {
                let call = call.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    while start.elapsed() < phase {
                        let t = Instant::now();
                        if let Err(status) = call().await {
                            // The first of each worker's errors says what went wrong.
                            if errors == 0 {
                                eprintln!(
                                    "latchkey-bench: {label}: {:?}: {}",
                                    status.code(),
                                    status.message()
                                );
                            }
                            errors += 1;
                        }
                        latencies.push(t.elapsed());
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for worker in workers {
            if let Ok((l, e)) = worker.await {
                latencies.extend(l);
                errors += e;
            }
        }
        if phase == duration {
            let elapsed = start.elapsed();
            latencies.sort_unstable();
            let pct = |p: f64| {
                latencies
                    .get(
                        ((latencies.len() as f64 * p) as usize)
                            .min(latencies.len().saturating_sub(1)),
                    )
                    .copied()
                    .unwrap_or_default()
            };
            return Outcome {
                label,
                kind,
                calls: latencies.len(),
                errors,
                elapsed,
                p50: pct(0.50),
                p99: pct(0.99),
            };
        }
    }
    unreachable!("the loop returns in its last phase")
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// Each scenario's throughput against the one-hop ceiling, and a secrets
/// call's against the two-hop one too (`None` when a ceiling was not run).
fn ratios(results: &[Outcome]) -> Vec<(Option<f64>, Option<f64>)> {
    let ceiling = |kind| results.iter().find(|o| o.kind == kind).map(Outcome::rate);
    let (one, two) = (ceiling(Kind::OneHop), ceiling(Kind::TwoHop));
    results
        .iter()
        .map(|o| {
            let vs_two = matches!(o.kind, Kind::TwoHop | Kind::Secrets)
                .then_some(two)
                .flatten();
            (one.map(|c| o.rate() / c), vs_two.map(|c| o.rate() / c))
        })
        .collect()
}

fn report(results: &[Outcome]) {
    let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
        "scenario", "calls/s", "p50 µs", "p99 µs", "vs 1-hop", "vs 2-hop", "errors"
    );
    for (o, (one, two)) in results.iter().zip(ratios(results)) {
        println!(
            "{:<44} {:>9.0} {:>9} {:>9} {:>8} {:>8} {:>7}",
            o.label,
            o.rate(),
            o.p50.as_micros(),
            o.p99.as_micros(),
            ratio(one),
            ratio(two),
            o.errors
        );
    }
}

/// The results as a JSON array, for scripts that compare ratios.
fn report_json(results: &[Outcome]) -> serde_json::Value {
    serde_json::Value::Array(
        results
            .iter()
            .zip(ratios(results))
            .map(|(o, (one, two))| {
                serde_json::json!({
                    "scenario": o.label,
                    "calls_per_second": o.rate(),
                    "p50_us": o.p50.as_micros(),
                    "p99_us": o.p99.as_micros(),
                    "vs_one_hop": one,
                    "vs_two_hop": two,
                    "errors": o.errors,
                })
            })
            .collect(),
    )
}

/// A do-nothing server that calls the echo server at `echo_url` over one
/// channel before answering: the floor of any call that makes one more hop.
async fn start_hop(echo_url: &str) -> Result<String, BoxError> {
    let next = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(echo_url.to_owned())?.connect().await?,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let connections = ceiling_connections();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(connections.activity())
            .add_service(tonic_health::pb::health_server::HealthServer::new(Hop(
                next,
            )))
            .serve_with_incoming(connections.incoming(listener)),
    );
    Ok(url)
}

/// The two-hop ceiling's service.
struct Hop(tonic_health::pb::health_client::HealthClient<Channel>);

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for Hop {
    async fn check(
        &self,
        request: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
        self.0.clone().check(request.into_inner()).await
    }

    type WatchStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<
                    Item = Result<tonic_health::pb::HealthCheckResponse, tonic::Status>,
                > + Send,
        >,
    >;

    async fn watch(
        &self,
        _request: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the two-hop ceiling answers Check only",
        ))
    }
}

async fn start_echo() -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let connections = ceiling_connections();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(connections.activity())
            .add_service(health)
            .serve_with_incoming(connections.incoming(listener)),
    );
    Ok(url)
}

/// The ceilings accept through the services' listener layer, so they pay
/// the same per-connection and per-call guard.
fn ceiling_connections() -> latchkey_service_kit::listen::Connections {
    use latchkey_service_kit::listen::{ConnectionLimits, Connections, descriptor_limit};
    Connections::new(
        ConnectionLimits::for_descriptors(descriptor_limit()),
        latchkey_domain::ip::TrustedIps::default(),
    )
}

/// The auth service on a free port: its URL and its database's.
async fn start_auth(
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

/// Starts the secrets service; returns its gRPC URL and its HTTP API's address.
async fn start_secrets(
    data: &str,
    internal_key: &str,
    auth_url: &str,
    database: Option<&str>,
) -> Result<(String, String), BoxError> {
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let http_addr = http.local_addr()?.to_string();
    let mut pairs = vec![
        ("LATCHKEY_DATA_DIR", data),
        ("LATCHKEY_INTERNAL_KEY", internal_key),
        ("LATCHKEY_AUTH_URL", auth_url),
    ];
    pairs.extend(database.map(|url| ("DATABASE_URL", url)));
    let vars = Vars::from_pairs(pairs);
    let config = latchkey_secrets_service::Config::from_vars(&vars)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let listeners = latchkey_secrets_service::startup::Listeners {
            grpc: listener,
            http: Some(http),
            health: None,
        };
        let _ =
            latchkey_secrets_service::startup::run(config, listeners, std::future::pending()).await;
    });
    Ok((url, http_addr))
}
