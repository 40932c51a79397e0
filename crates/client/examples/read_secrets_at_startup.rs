//! A Rust service reading its configuration from Latchkey at start-up.
//!
//! ```text
//! LATCHKEY_TOKEN=st.... cargo run -p latchkey-client --example read_secrets_at_startup
//! ```
//!
//! With a service token the secrets are decrypted here, with the token's key
//! part, which never leaves this process; with an identity access token
//! (set `LATCHKEY_PROJECT_ID` too) the secrets service decrypts them.
//! `LATCHKEY_SECRETS_ADDR` (default `127.0.0.1:50052`), `LATCHKEY_ENV`
//! (default `dev`) and `LATCHKEY_PATH` (default `/`) say where to read.

#![expect(
    unused_crate_dependencies,
    reason = "an example links every dependency of the library"
)]

use std::collections::BTreeMap;
use std::process::ExitCode;

use latchkey_client::{Bearer, ClientError, Credential, Location, SecretsClient, Tls, channel};

/// The service's configuration: every secret of its folder, by name.
struct Settings(BTreeMap<String, String>);

async fn load() -> Result<Settings, Box<dyn std::error::Error>> {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let token = std::env::var("LATCHKEY_TOKEN").map_err(|_| "set LATCHKEY_TOKEN")?;
    let credential = Credential::parse(&token)?;
    let bearer = Bearer::new(Some(&credential.bearer_text()))?;
    let secrets = channel::connect(
        &var("LATCHKEY_SECRETS_ADDR", "127.0.0.1:50052"),
        &Tls::plaintext(),
    )
    .await?;
    let mut client = SecretsClient::new(secrets, None, credential, bearer);
    let project = std::env::var("LATCHKEY_PROJECT_ID").ok();
    let at = Location::new(
        project.as_deref(),
        &var("LATCHKEY_ENV", "dev"),
        &var("LATCHKEY_PATH", "/"),
    )?;
    let secrets = client.list(&at, false).await?;
    Ok(Settings(
        secrets.into_iter().map(|s| (s.name, s.value)).collect(),
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match load().await {
        Ok(Settings(settings)) => {
            // A real service would build its config from these; never print values.
            for name in settings.keys() {
                println!("loaded {name}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A denial carries a stable reason a deployment can alert on.
            match e.downcast_ref::<ClientError>() {
                Some(ClientError::Status(status)) => {
                    eprintln!("latchkey refused: {}", status.message())
                }
                _ => eprintln!("cannot load settings: {e}"),
            }
            ExitCode::FAILURE
        }
    }
}
