//! `latchkey-secrets`: reads its configuration from the environment and
//! serves until SIGINT or SIGTERM.

#![expect(
    unused_crate_dependencies,
    reason = "a binary over its library: the library uses the dependencies"
)]

use std::process::ExitCode;

// glibc's malloc and free were a quarter of the CPU of a ListSecrets under
// load (arena locks, chunk splitting); mimalloc serves the many small,
// short-lived allocations of a gRPC call from per-thread pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use latchkey_secrets_service::config::Config;
use latchkey_secrets_service::startup::{Listeners, run};
use latchkey_service_kit::config::Vars;
use latchkey_service_kit::serve::{health_check, shutdown_signal};
use latchkey_service_kit::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let vars = Vars::from_process();
    // `latchkey-secrets health`: the container image's health check.
    if std::env::args().nth(1).as_deref() == Some("health") {
        return if health_check(
            &vars,
            latchkey_secrets_service::config::var::SECRETS_ADDR,
            latchkey_secrets_service::config::default::SECRETS_ADDR,
            "latchkey.secrets.v1.SecretsService",
        )
        .await
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    // Held to the end of main: dropping it flushes the last spans.
    let _telemetry = telemetry::init(&vars, "latchkey-secrets");
    let config = match Config::from_vars(&vars) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("latchkey-secrets: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let listeners = match Listeners::bind(&config) {
        Ok(listeners) => listeners,
        Err(e) => {
            eprintln!("latchkey-secrets: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(addr = %config.listen_addr, auth = %config.auth_url, "latchkey-secrets listening");
    match run(config, listeners, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-secrets: {e}");
            ExitCode::from(1)
        }
    }
}
