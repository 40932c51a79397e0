//! The results: a table, or JSON for scripts, with each throughput as a
//! ratio of the ceilings'.

use crate::measure::Outcome;
use crate::scenarios::{AUDIT_OFF, Kind};

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

/// The results as a table, with each throughput's ratios to the ceilings'.
pub(crate) fn report(results: &[Outcome]) {
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
    for o in results {
        let Some(base) = o.label.strip_suffix(AUDIT_OFF) else {
            continue;
        };
        if let Some(audited) = results.iter().find(|r| r.label == base) {
            println!(
                "{base}: audit required at {:.2}x of audit off",
                audited.rate() / o.rate()
            );
        }
    }
}

/// The results as a JSON array, for scripts that compare ratios.
pub(crate) fn report_json(results: &[Outcome]) -> serde_json::Value {
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
