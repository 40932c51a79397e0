//! `latchkey-bench` (run by `make bench`): starts both services in-process on
//! loopback, and the do-nothing [`ceilings`]; drives each of the
//! [`scenarios`] with the same client at a fixed concurrency ([`measure`]);
//! and reports throughput, p50 and p99 latency, and each throughput's ratio
//! to the ceilings' ([`report`]). Everything is measured in one run, because
//! these machines are shared and noisy: compare ratios, not runs.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

mod ceilings;
mod databases;
mod http;
mod measure;
mod report;
mod scenarios;
mod services;
mod setup;

// The allocator the service binaries use, since the bench runs them in-process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use databases::{Backend, Databases};

/// Load generator for Latchkey.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Calls in flight (the write scenarios set their own).
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let databases = Databases::create(args.backend).await?;
    let (targets, auth_db) = services::start(dir.path(), &databases).await?;
    let (duration, n) = (Duration::from_secs(args.seconds), args.concurrency);
    if !args.json {
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        println!(
            "latchkey-bench: {n} calls in flight, {}s per scenario, {:?}, client and servers on one machine ({cores} cores)",
            args.seconds, args.backend
        );
    }
    let only = args.only.as_ref().map(|o| o.to_lowercase());
    let mut results = Vec::new();
    for s in scenarios::table(&targets, &auth_db, args.tokens).await? {
        if only
            .as_ref()
            .is_some_and(|o| !s.label.to_lowercase().contains(o))
        {
            continue;
        }
        results.push(measure::scenario(s, duration, n, !args.json).await?);
    }
    databases.drop_all().await;
    if args.json {
        println!("{}", report::report_json(&results));
    } else {
        report::report(&results);
    }
    Ok(())
}
