//! Both services as real processes exporting over OTLP to a receiver this
//! test runs: one `ListSecrets` is one trace across both services, and
//! each audit event is also an OTLP log record.
//!
//! Needs the service binaries built (`make test` builds them first).

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use latchkey_test_support::{
    ServiceProcess, create_project_with, create_service_token_with, free_port, with_token,
};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

const INTERNAL_KEY: &str = "telemetry-test-internal-key-0123456789";

/// Everything the services exported: spans with their service name, and
/// the names of metrics.
#[derive(Debug, Default, Clone)]
struct Received {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    metrics: Arc<Mutex<Vec<(String, String)>>>,
    logs: Arc<Mutex<Vec<Record>>>,
}

/// A log record: service, event name, body, attributes.
type Record = (String, String, String, Vec<KeyValue>);

fn service_name(attributes: &[KeyValue]) -> String {
    attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let name = service_name(&resource.resource.unwrap_or_default().attributes);
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (name.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut metrics = self.metrics.lock().unwrap();
        for resource in request.into_inner().resource_metrics {
            let name = service_name(&resource.resource.unwrap_or_default().attributes);
            for scope in resource.scope_metrics {
                metrics.extend(scope.metrics.into_iter().map(|m| (name.clone(), m.name)));
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut logs = self.logs.lock().unwrap();
        for resource in request.into_inner().resource_logs {
            let name = service_name(&resource.resource.unwrap_or_default().attributes);
            for scope in resource.scope_logs {
                logs.extend(scope.log_records.into_iter().map(|r| {
                    let body = match r.body.and_then(|b| b.value) {
                        Some(Value::StringValue(s)) => s,
                        other => format!("{other:?}"),
                    };
                    (name.clone(), r.event_name, body, r.attributes)
                }));
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(span: &Span, key: &str) -> String {
    match attribute(span, key) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_list_secrets_is_one_trace_across_both_services_without_the_token() {
    // Arrange: the receiver, then both services exporting to it.
    let received = Received::default();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", receiver.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .add_service(MetricsServiceServer::new(received.clone()))
            .add_service(LogsServiceServer::new(received.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(receiver)),
    );
    let dir = tempfile::tempdir().unwrap();
    let (auth_port, secrets_port, http_port) = (free_port(), free_port(), free_port());
    let common = |addr_var: &'static str, port: u16| {
        vec![
            (addr_var, format!("127.0.0.1:{port}")),
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap().to_owned()),
            ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY.to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200".to_owned()),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100".to_owned()),
            // Logs at warn (but the "listening" line): spans are exported
            // whatever the log level.
            (
                "RUST_LOG",
                "warn,latchkey_auth=info,latchkey_secrets=info".to_owned(),
            ),
        ]
    };
    let _auth = ServiceProcess::start(
        &latchkey_test_support::built_binary("latchkey-auth"),
        &common("LATCHKEY_AUTH_ADDR", auth_port),
    );
    let mut secrets_vars = common("LATCHKEY_SECRETS_ADDR", secrets_port);
    secrets_vars.push(("LATCHKEY_AUTH_URL", format!("http://127.0.0.1:{auth_port}")));
    secrets_vars.push(("LATCHKEY_HTTP_ADDR", format!("127.0.0.1:{http_port}")));
    let _secrets = ServiceProcess::start(
        &latchkey_test_support::built_binary("latchkey-secrets"),
        &secrets_vars,
    );
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let mut auth = AuthServiceClient::connect(format!("http://127.0.0.1:{auth_port}"))
        .await
        .unwrap();
    let project = create_project_with(&mut auth, &admin, false).await;
    let token =
        create_service_token_with(&mut auth, &admin, &project, &["dev:/**"], &["read"]).await;
    let token_id = token.split('.').nth(1).unwrap().to_owned();
    let (trace_id, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");

    // Act: a ListSecrets that carries the client's W3C trace context.
    let mut request = with_token(
        secrets_pb::ListSecretsRequest {
            project_id: String::new(),
            environment: "dev".into(),
            secret_path: "/".into(),
            recursive: false,
        },
        &token,
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{client_span}-01").parse().unwrap(),
    );
    SecretsServiceClient::connect(format!("http://127.0.0.1:{secrets_port}"))
        .await
        .unwrap()
        .list_secrets(request)
        .await
        .unwrap();

    // Assert: both spans in the client's trace, secrets the parent of auth.
    let in_trace = |service: &str, name: &str| {
        received
            .spans
            .lock()
            .unwrap()
            .iter()
            .find(|(s, span)| {
                s == service && span.name == name && hex::encode(&span.trace_id) == trace_id
            })
            .map(|(_, span)| span.clone())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (list, authorize) = loop {
        let list = in_trace(
            "latchkey-secrets",
            "latchkey.secrets.v1.SecretsService/ListSecrets",
        );
        let authorize = in_trace("latchkey-auth", "latchkey.auth.v1.AuthService/Authorize");
        if let (Some(list), Some(authorize)) = (list, authorize) {
            break (list, authorize);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans not exported within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hex::encode(&list.parent_span_id), client_span);
    assert_eq!(
        authorize.parent_span_id, list.span_id,
        "the auth span is the secrets span's child"
    );
    for span in [&list, &authorize] {
        assert_eq!(text(span, "rpc.system"), "grpc");
        assert_eq!(text(span, "rpc.grpc.status_code"), "0");
        assert_eq!(text(span, "latchkey.token.type"), "service");
        assert_eq!(text(span, "latchkey.token.id"), token_id);
    }
    assert_eq!(text(&list, "rpc.method"), "ListSecrets");
    assert_eq!(text(&authorize, "rpc.method"), "Authorize");
    let secret_part = token.split('.').nth(2).unwrap();
    for (_, span) in received.spans.lock().unwrap().iter() {
        for kv in &span.attributes {
            let value = format!("{:?}", kv.value);
            assert!(
                !value.contains(secret_part) && !value.contains(INTERNAL_KEY),
                "attribute {} of span {} holds a secret",
                kv.key,
                span.name
            );
        }
    }
    // The CLI continues a script's trace from TRACEPARENT.
    let (cli_trace, cli_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let cli = Command::new(assert_cmd::cargo::cargo_bin("latchkey"))
        .env_clear()
        .env("LATCHKEY_AUTH_ADDR", format!("127.0.0.1:{auth_port}"))
        .env("LATCHKEY_SECRETS_ADDR", format!("127.0.0.1:{secrets_port}"))
        .env("LATCHKEY_TOKEN", &token)
        .env("LATCHKEY_CONFIG_DIR", dir.path().join("cli-config"))
        .env("TRACEPARENT", format!("00-{cli_trace}-{cli_span}-01"))
        .current_dir(dir.path())
        .args(["secrets", "list", "--env", "dev"])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let from_cli = loop {
        let found = received
            .spans
            .lock()
            .unwrap()
            .iter()
            .find(|(s, span)| s == "latchkey-secrets" && hex::encode(&span.trace_id) == cli_trace)
            .map(|(_, span)| span.clone());
        if let Some(span) = found {
            break span;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span in the CLI's trace within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hex::encode(&from_cli.parent_span_id), cli_span);

    // The HTTP API: the same trace across both services, and the trace
    // context written back on the response.
    let (http_trace, http_client_span) = ("5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b8");
    let reply = crate::http_api::http_to(
        &format!("127.0.0.1:{http_port}"),
        "GET",
        "/api/v3/secrets/raw?environment=dev&secretPath=/",
        Some(&token),
        &[(
            "traceparent",
            &format!("00-{http_trace}-{http_client_span}-01"),
        )],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("traceparent")
            .is_some_and(|t| t.contains(http_trace)),
        "{:?}",
        reply.headers
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (http_span, http_authorize) = loop {
        let spans = received.spans.lock().unwrap().clone();
        let find = |service: &str, name: &str| {
            spans
                .iter()
                .find(|(s, span)| {
                    s == service && span.name == name && hex::encode(&span.trace_id) == http_trace
                })
                .map(|(_, span)| span.clone())
        };
        if let (Some(h), Some(a)) = (
            find("latchkey-secrets", "GET /api/v3/secrets/raw"),
            find("latchkey-auth", "latchkey.auth.v1.AuthService/Authorize"),
        ) {
            break (h, a);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "HTTP spans not exported within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hex::encode(&http_span.parent_span_id), http_client_span);
    assert_eq!(http_authorize.parent_span_id, http_span.span_id);
    assert_eq!(text(&http_span, "http.route"), "/api/v3/secrets/raw");
    assert_eq!(text(&http_span, "http.response.status_code"), "200");
    assert_eq!(text(&http_span, "latchkey.token.id"), token_id);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = received.metrics.lock().unwrap().clone();
        let has =
            |service: &str, name: &str| metrics.iter().any(|(s, m)| s == service && m == name);
        if has("latchkey-secrets", "latchkey.rpc.calls")
            && has("latchkey-secrets", "latchkey.http.requests")
            && has("latchkey-auth", "latchkey.rpc.calls")
            && has("latchkey-auth", "latchkey.authorize.duration")
            && has("latchkey-auth", "latchkey.token.uses")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics not exported within 15 s: {metrics:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The audit trail as OTLP log records: the first ListSecrets, with the
    // caller's trace id, and no token secret in any record.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let record = loop {
        let found = received
            .logs
            .lock()
            .unwrap()
            .iter()
            .find_map(|(s, name, body, attrs)| {
                let has = |k: &str, v: &str| {
                    attrs.iter().any(|kv| {
                        kv.key == k
                            && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
                            Some(Value::StringValue(s)) if s == v)
                    })
                };
                (s == "latchkey-secrets"
                    && name == "latchkey.audit"
                    && has("latchkey.audit.event_type", "secret.list")
                    && has("latchkey.audit.trace_id", trace_id))
                .then(|| body.clone())
            });
        if let Some(body) = found {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "audit log records not exported within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let line: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(line["principal"], format!("service-token:{token_id}"));
    for (_, _, body, attrs) in received.logs.lock().unwrap().iter() {
        assert!(
            !body.contains(secret_part),
            "a log record holds the token's secret"
        );
        assert!(!format!("{attrs:?}").contains(secret_part));
    }
}
