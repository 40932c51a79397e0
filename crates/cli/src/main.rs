//! `latchkey`: the operator's and developer's command-line tool, modelled on
//! the Infisical CLI. Secrets are encrypted and decrypted here, on the
//! client, with the service token's key part.

mod client;
mod commands;
mod config;
mod identity;
mod output;
mod project;
mod run;
mod secrets;
mod service_token;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(err.exit_code())
        }
    }
}
