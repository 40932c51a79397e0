//! `latchkey-auth`: reads its configuration from the environment and serves
//! until SIGINT or SIGTERM.

#![expect(
    unused_crate_dependencies,
    reason = "a binary over its library: the library uses the dependencies"
)]

use std::process::ExitCode;
use std::sync::Arc;

// glibc's malloc and free were a quarter of the CPU of a ListSecrets under
// load (arena locks, chunk splitting); mimalloc serves the many small,
// short-lived allocations of a gRPC call from per-thread pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use latchkey_auth_service::config::Config;
use latchkey_auth_service::startup::{Listeners, serve, start};
use latchkey_domain::ports::SystemClock;
use latchkey_service_kit::config::Vars;
use latchkey_service_kit::serve::{health_check, shutdown_signal};
use latchkey_service_kit::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let vars = Vars::from_process();
    // `latchkey-auth health`: the container image's health check.
    if std::env::args().nth(1).as_deref() == Some("health") {
        return if health_check(
            &vars,
            latchkey_auth_service::config::var::AUTH_ADDR,
            latchkey_auth_service::config::default::AUTH_ADDR,
            "latchkey.auth.v1.AuthService",
        )
        .await
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    // Held to the end of main: dropping it flushes the last spans.
    let _telemetry = telemetry::init(&vars, "latchkey-auth");
    let config = match Config::from_vars(&vars) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("latchkey-auth: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let running = match start(&config, Arc::new(SystemClock)).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("latchkey-auth: {e}");
            return ExitCode::from(1);
        }
    };
    // Bound only once ready, so a client that can connect finds the admin token written.
    let listeners = match Listeners::bind(&config) {
        Ok(listeners) => listeners,
        Err(e) => {
            eprintln!("latchkey-auth: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &running.admin_token_file {
        tracing::info!(path = %path.display(), "bootstrap admin token written (mode 0600)");
    }
    tracing::info!(
        addr = %config.listen_addr,
        internal_addr = ?config.internal_addr,
        health_addr = ?config.listening.health_addr,
        tls = config.listening.tls.is_some(),
        admin_token_file = %config.admin_token_file.display(),
        "latchkey-auth listening"
    );
    match serve(&running, &config, listeners, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-auth: {e}");
            ExitCode::from(1)
        }
    }
}
