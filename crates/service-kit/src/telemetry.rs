//! Logs, traces and metrics for both services.
//!
//! - Logs go to stderr, filtered by `RUST_LOG` (default `info`), as JSON when
//!   `LATCHKEY_LOG_FORMAT=json`.
//! - Traces and metrics are exported over OTLP/gRPC when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and are off otherwise; the SDK
//!   reads the other standard variables (`OTEL_TRACES_SAMPLER`,
//!   `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_METRIC_EXPORT_INTERVAL`, ...), and
//!   `OTEL_SERVICE_NAME` names the service.
//! - The one span per RPC is `rpc_span`'s; [`continue_trace`] makes a span
//!   the child of the caller's W3C `traceparent`, and [`inject_trace_context`]
//!   carries the current span to the next hop.

use std::sync::OnceLock;

use latchkey_domain::token::AnyToken;
use opentelemetry::global;
use opentelemetry::metrics::{Counter, Gauge, Histogram};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Vars;
use crate::config::var;

/// Flushes and stops the exporters when dropped, so the last spans of a
/// shutting-down process are not lost.
#[derive(Debug, Default)]
#[must_use = "dropping the guard stops the exporters"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    logs: Option<SdkLoggerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Audit records first: they are the ones nobody may lose.
        if let Some(logs) = self.logs.take() {
            let _ = logs.shutdown();
        }
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown();
        }
        if let Some(meter) = self.meter.take() {
            let _ = meter.shutdown();
        }
    }
}

/// Where audit events go out as OTLP log records, once OTLP export is set up.
static AUDIT_LOGS: OnceLock<SdkLoggerProvider> = OnceLock::new();

/// The logger audit events are exported through as OTLP log records, when
/// an OTLP endpoint is configured (see [`init`]).
#[must_use]
pub fn audit_logger() -> Option<SdkLogger> {
    use opentelemetry::logs::LoggerProvider as _;
    AUDIT_LOGS.get().map(|p| p.logger("latchkey.audit"))
}

/// Sets up logging and, when an OTLP endpoint is configured, trace,
/// metric and audit log export under `OTEL_SERVICE_NAME` (default `default_name`).
/// Call once, from within the Tokio runtime (the OTLP client needs it).
pub fn init(vars: &Vars, default_name: &str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = vars.get(var::LOG_FORMAT) == Some("json");
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour only a terminal: log files and collectors get plain text.
        .with_ansi(!json && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // RUST_LOG filters the logs only: traces keep every RPC span whatever
    // the log level.
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    }
    .with_filter(filter);
    let endpoint = vars
        .get("OTEL_EXPORTER_OTLP_ENDPOINT")
        .or_else(|| vars.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
    let mut guard = TelemetryGuard::default();
    let otel = endpoint.and_then(|_| {
        let resource = Resource::builder()
            .with_service_name(vars.get_or("OTEL_SERVICE_NAME", default_name).to_owned())
            .build();
        let spans = match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("telemetry: OTLP trace exporter not started: {e}");
                return None;
            }
        };
        let tracer = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource.clone())
            .build();
        match opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => {
                let meter = SdkMeterProvider::builder()
                    .with_periodic_exporter(exporter)
                    .with_resource(resource.clone())
                    .build();
                global::set_meter_provider(meter.clone());
                guard.meter = Some(meter);
            }
            Err(e) => eprintln!("telemetry: OTLP metric exporter not started: {e}"),
        }
        match opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => {
                let logs = SdkLoggerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build();
                let _ = AUDIT_LOGS.set(logs.clone());
                guard.logs = Some(logs);
            }
            Err(e) => eprintln!("telemetry: OTLP log exporter not started: {e}"),
        }
        global::set_text_map_propagator(TraceContextPropagator::new());
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer.tracer("latchkey"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        guard.tracer = Some(tracer);
        Some(layer)
    });
    // Safe to call more than once (tests): only the first takes effect.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    guard
}

/// The metrics DESIGN.md and the deployment ask for; no-ops until a meter
/// provider is installed.
#[derive(Debug)]
pub struct Metrics {
    /// Calls by method and status.
    pub calls: Counter<u64>,
    /// Denials by reason.
    pub denials: Counter<u64>,
    /// Server-side duration of every call, by method (milliseconds).
    pub duration: Histogram<f64>,
    /// HTTP API requests, by route and status.
    pub http_requests: Counter<u64>,
    /// Server-side duration of HTTP API requests, by route (milliseconds).
    pub http_duration: Histogram<f64>,
    /// `Authorize` duration (milliseconds).
    pub authorize_duration: Histogram<f64>,
    /// Allowed uses of tokens, by token type.
    pub token_uses: Counter<u64>,
    /// Failed token verifications, by kind (`wrong_secret`, `unknown_id`).
    pub failed_verifications: Counter<u64>,
    /// Stored secrets that did not decrypt and were left out of a listing.
    pub undecryptable: Counter<u64>,
    /// Encryptions under a project key so far, by project, against the
    /// 2^32 budget of NIST SP 800-38D.
    pub key_encryptions: Gauge<u64>,
    /// The fraction of that budget used, by project.
    pub key_budget_used: Gauge<f64>,
    /// Audit events dropped (`best_effort` past the queue, or unwritable).
    pub audit_dropped: Counter<u64>,
}

/// The process's metrics, made on first use from the global meter
/// provider, so [`init`] must run first to export them.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = global::meter_with_scope(InstrumentationScope::builder("latchkey").build());
        Metrics {
            calls: meter
                .u64_counter("latchkey.rpc.calls")
                .with_description("gRPC calls served, by method and status")
                .build(),
            denials: meter
                .u64_counter("latchkey.denials")
                .with_description("Denied calls, by reason")
                .build(),
            duration: meter
                .f64_histogram("latchkey.rpc.duration")
                .with_unit("ms")
                .with_description("Server-side duration of gRPC calls, by method")
                .build(),
            http_requests: meter
                .u64_counter("latchkey.http.requests")
                .with_description("HTTP API requests served, by route and status")
                .build(),
            http_duration: meter
                .f64_histogram("latchkey.http.duration")
                .with_unit("ms")
                .with_description("Server-side duration of HTTP API requests, by route")
                .build(),
            authorize_duration: meter
                .f64_histogram("latchkey.authorize.duration")
                .with_unit("ms")
                .with_description("Duration of Authorize on the auth service")
                .build(),
            token_uses: meter
                .u64_counter("latchkey.token.uses")
                .with_description("Allowed uses of tokens, by token type")
                .build(),
            failed_verifications: meter
                .u64_counter("latchkey.token.failed_verifications")
                .with_description("Failed token verifications, by kind")
                .build(),
            undecryptable: meter
                .u64_counter("latchkey.secrets.undecryptable")
                .with_description("Stored secrets that did not decrypt, left out of listings")
                .build(),
            key_encryptions: meter
                .u64_gauge("latchkey.project_key.encryptions")
                .with_description("AES-GCM encryptions under a project key so far")
                .build(),
            key_budget_used: meter
                .f64_gauge("latchkey.project_key.budget_used")
                .with_description("Fraction of the 2^32 encryption budget of a project key used")
                .build(),
            audit_dropped: meter
                .u64_counter("latchkey.audit.dropped")
                .with_description("Audit events dropped in best_effort mode")
                .build(),
        }
    })
}

/// Records a failed token verification (`wrong_secret` or `unknown_id`).
pub fn record_failed_verification(kind: &'static str) {
    metrics()
        .failed_verifications
        .add(1, &[KeyValue::new("failure", kind)]);
}

/// Records `n` audit events dropped in `best_effort` mode.
pub fn record_audit_dropped(n: u64) {
    metrics().audit_dropped.add(n, &[]);
}

/// Records a stored secret that did not decrypt and was left out of a listing.
pub fn record_undecryptable() {
    metrics().undecryptable.add(1, &[]);
}

/// Records one allowed use of a token of `kind` (`service` or `identity`).
pub fn record_token_use(kind: &'static str) {
    metrics()
        .token_uses
        .add(1, &[KeyValue::new("token.type", kind)]);
}

/// Records a project key's encryption count and the share of its budget.
pub fn record_key_encryptions(project_id: &str, count: u64) {
    let project = [KeyValue::new("project.id", project_id.to_owned())];
    let m = metrics();
    m.key_encryptions.record(count, &project);
    #[expect(clippy::cast_precision_loss, reason = "a ratio for a dashboard")]
    m.key_budget_used.record(
        count as f64 / latchkey_domain::crypto::ENCRYPTION_LIMIT as f64,
        &project,
    );
}

/// Records a token's type and id (its public part) on `span`.
pub fn record_token(span: &tracing::Span, token: &str) {
    if let Ok(parsed) = AnyToken::parse(token) {
        let kind = match parsed {
            AnyToken::Service(_) => "service",
            AnyToken::Identity(_) | AnyToken::Jwt(_) => "identity",
        };
        span.record("latchkey.token.type", kind);
        let mut id = latchkey_domain::token::Uuid::encode_buffer();
        span.record(
            "latchkey.token.id",
            &*parsed.id().hyphenated().encode_lower(&mut id),
        );
    }
}

/// Makes `span` the child of the W3C trace context in `headers`, if any
/// (the HTTP API's requests; the gRPC layer does the same itself).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(parent);
}

/// Writes `span`'s W3C trace context into `headers` (an HTTP response, so
/// a caller can find the trace of its request).
pub fn inject_trace_headers(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Writes the current span's W3C trace context into outgoing metadata.
pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MetadataInjector(metadata))
    });
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}
