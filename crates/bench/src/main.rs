//! `latchkey-bench` (run by `make bench`): starts both services in-process on
//! loopback with SQLite, and a do-nothing gRPC server (a bare health service)
//! as the ceiling, then drives each with the same client at a fixed
//! concurrency and reports throughput, p50 and p99 latency, and the ratio of
//! each throughput to the ceiling's. Everything is measured in one run,
//! because these machines are shared and noisy: compare ratios, not runs.

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

mod setup;

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
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    let auth_url = start_auth(&data, &internal_key).await?;
    let secrets_url = start_secrets(&data, &internal_key, &auth_url).await?;
    let admin = std::fs::read_to_string(dir.path().join("admin-token"))?
        .trim()
        .to_owned();
    let setup = Setup::create(&auth_url, &secrets_url, &admin).await?;

    let tls = latchkey_client::Tls::plaintext();
    let auth_channel = latchkey_client::channel::connect(&auth_url, &tls).await?;
    let secrets_channel = latchkey_client::channel::connect(&secrets_url, &tls).await?;
    let echo = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(echo_url)?.connect().await?,
    );
    let duration = Duration::from_secs(args.seconds);
    let n = args.concurrency;

    println!(
        "latchkey-bench: {n} calls in flight, {}s per scenario, SQLite, client and servers on one machine ({} cores)",
        args.seconds,
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    let mut results = Vec::new();
    results.push(
        measure("do-nothing gRPC call (ceiling)", duration, n, move || {
            let mut c = echo.clone();
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
    ] {
        // The secrets service's side of the hop: the internal key on every call.
        let auth = AuthServiceClient::with_interceptor(
            auth_channel.clone(),
            Bearer::new(None)?.with_internal_key(&internal_key)?,
        );
        results.push(
            measure(label, duration, n, move || {
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
                async move { c.authorize(request).await.map(drop) }
            })
            .await,
        );
    }
    for (label, token, project, raw) in [
        (
            "ListSecrets, service token",
            setup.service_token.clone(),
            String::new(),
            false,
        ),
        (
            "ListSecretsRaw, identity token",
            setup.identity_token.clone(),
            setup.project.clone(),
            true,
        ),
    ] {
        let secrets = SecretsServiceClient::with_interceptor(
            secrets_channel.clone(),
            Bearer::new(Some(&token))?,
        );
        results.push(
            measure(label, duration, n, move || {
                let mut c = secrets.clone();
                let request = secrets_pb::ListSecretsRequest {
                    project_id: project.clone(),
                    environment: "dev".into(),
                    secret_path: "/bench".into(),
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
    report(&results);
    Ok(())
}

/// One scenario's outcome.
struct Outcome {
    label: &'static str,
    calls: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// Runs `call` from `n` workers for `duration`, after a one-second warm-up.
async fn measure<F, Fut>(label: &'static str, duration: Duration, n: usize, call: F) -> Outcome
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
                        if call().await.is_err() {
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

fn report(results: &[Outcome]) {
    let rate = |o: &Outcome| o.calls as f64 / o.elapsed.as_secs_f64();
    let ceiling = results.first().map_or(1.0, rate);
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "scenario", "calls/s", "p50 µs", "p99 µs", "vs ceil", "errors"
    );
    for o in results {
        println!(
            "{:<34} {:>10.0} {:>10} {:>10} {:>8.2}x {:>7}",
            o.label,
            rate(o),
            o.p50.as_micros(),
            o.p99.as_micros(),
            rate(o) / ceiling,
            o.errors
        );
    }
}

async fn start_echo() -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(latchkey_service_kit::serve::incoming(listener)),
    );
    Ok(url)
}

async fn start_auth(data: &str, internal_key: &str) -> Result<String, BoxError> {
    let vars = Vars::from_pairs([
        ("LATCHKEY_DATA_DIR", data),
        ("LATCHKEY_INTERNAL_KEY", internal_key),
    ]);
    let config = latchkey_auth_service::Config::from_vars(&vars)?;
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
    Ok(url)
}

async fn start_secrets(data: &str, internal_key: &str, auth_url: &str) -> Result<String, BoxError> {
    let vars = Vars::from_pairs([
        ("LATCHKEY_DATA_DIR", data),
        ("LATCHKEY_INTERNAL_KEY", internal_key),
        ("LATCHKEY_AUTH_URL", auth_url),
    ]);
    let config = latchkey_secrets_service::Config::from_vars(&vars)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ =
            latchkey_secrets_service::startup::run(config, listener, std::future::pending()).await;
    });
    Ok(url)
}
