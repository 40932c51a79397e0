//! `latchkey`: the operator's and developer's command-line tool, modelled on
//! the Infisical CLI. Secrets are encrypted and decrypted here, on the
//! client, with the service token's key part.
//!
//! Modules form a DAG: `commands` parses and dispatches to one command
//! module each (`project`, `service_token`, `secrets`, `run`, `identity`,
//! `audit`, `login`),
//! which never import one another; what they share is below them:
//! `context` (settings and clients), `flags` (flags several commands take),
//! `output`, `config`, `client` (connections through `latchkey-client`)
//! and `error`.

#![allow(
    rustdoc::invalid_html_tags,
    reason = "clap turns these doc comments into --help, where <id> is a placeholder, not HTML"
)]
#![cfg_attr(
    test,
    expect(
        unused_crate_dependencies,
        reason = "the unit-test build links the dev-dependencies the integration tests use"
    )
)]

mod audit;
mod client;
mod commands;
mod config;
mod context;
mod error;
mod flags;
mod identity;
mod login;
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
