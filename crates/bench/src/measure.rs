//! Running one scenario: `n` workers calling as fast as answers come, for a
//! set time after a one-second warm-up, each call's latency kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::BoxError;
use crate::scenarios::{Call, Kind, Scenario};

/// One scenario's outcome.
pub(crate) struct Outcome {
    pub(crate) label: String,
    pub(crate) kind: Kind,
    pub(crate) calls: usize,
    pub(crate) errors: usize,
    pub(crate) elapsed: Duration,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

impl Outcome {
    /// Calls per second.
    pub(crate) fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `s` (after its preparation) for `duration`, with its own number of
/// calls in flight or `n`; `tell` prints its memory figures, if it has any.
pub(crate) async fn scenario(
    s: Scenario,
    duration: Duration,
    n: usize,
    tell: bool,
) -> Result<Outcome, BoxError> {
    if let Some(prepare) = s.prepare {
        prepare.await?;
    }
    let (before, in_flight) = (memory_mib("VmRSS"), s.writers.unwrap_or(n));
    let outcome = measure(s.label, s.kind, duration, in_flight, s.call).await;
    if s.reports_memory && tell {
        let peak = memory_mib("VmHWM");
        println!(
            "{} with {in_flight} in flight: resident memory {before} MiB before, peak {peak} MiB (the whole bench process)",
            outcome.label
        );
    }
    Ok(outcome)
}

/// Runs `call` from `n` workers for `duration`, after a one-second warm-up.
async fn measure(label: String, kind: Kind, duration: Duration, n: usize, call: Call) -> Outcome {
    let label: Arc<str> = label.into();
    let warm_up = run_phase(&label, Duration::from_secs(1), n, &call);
    drop(warm_up.await);
    let start = Instant::now();
    let (mut latencies, errors) = run_phase(&label, duration, n, &call).await;
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Outcome {
        label: label.to_string(),
        kind,
        calls: latencies.len(),
        errors,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

/// Every call's latency in one phase, and how many failed.
async fn run_phase(
    label: &Arc<str>,
    phase: Duration,
    n: usize,
    call: &Call,
) -> (Vec<Duration>, usize) {
    let start = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let (call, label) = (call.clone(), label.clone());
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
    (latencies, errors)
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
