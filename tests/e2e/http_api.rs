//! The Infisical-compatible HTTP API on the secrets service, over a real
//! loopback socket with a minimal HTTP/1.1 client: the raw v3 and v4
//! endpoints read and write through the same use cases as gRPC, answer in
//! the shapes Infisical's clients decode, and deny with the same reasons.

use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_test_support::{Backend, Stack, reason, with_token};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 exchange: status, headers (lower-case names) and body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn http(
    stack: &Stack,
    method: &str,
    target: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    http_to(&stack.http_addr, method, target, token, extra, body).await
}

/// One request to the HTTP API at `addr` (`host:port`), retrying the
/// connection while the port comes up.
pub(crate) async fn http_to(
    addr: &str,
    method: &str,
    target: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut stream = None;
    for _ in 0..100 {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            // The HTTP port is bound as the service starts serving.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let mut stream = stream.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("content-type: application/json\r\n");
    }
    if let Some(token) = token {
        request.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    for (k, v) in extra {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

fn assert_error(reply: &Reply, status: u16, reason: &str) -> Value {
    let body = reply.json();
    assert_eq!(reply.status, status, "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"].is_string() && body["reqId"].is_string(),
        "{body}"
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_token_writes_reads_lists_and_deletes_over_v3_raw_and_v4() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "developer", 0).await;
    let folder = format!("workspaceId={project}&environment=dev&secretPath=/app");

    let created = http(
        &stack,
        "POST",
        "/api/v3/secrets/raw/DB_URL",
        Some(&token),
        &[],
        Some(serde_json::json!({
            "workspaceId": project, "environment": "dev", "secretPath": "/app",
            "secretValue": "postgres://one", "type": "shared",
        })),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.json());
    assert_eq!(created.json()["secret"]["version"], 1);

    let updated = http(
        &stack,
        "PATCH",
        "/api/v4/secrets/DB_URL",
        Some(&token),
        &[],
        Some(serde_json::json!({
            "projectId": project, "environment": "dev", "secretPath": "/app/",
            "secretValue": "postgres://two",
        })),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.json());
    assert_eq!(updated.json()["secret"]["version"], 2);

    for target in [
        format!("/api/v3/secrets/raw/DB_URL?{folder}&include_imports=true&viewSecretValue=true"),
        format!("/api/v4/secrets/DB_URL?{folder}&type=shared&includeImports=true"),
    ] {
        let one = http(&stack, "GET", &target, Some(&token), &[], None).await;
        assert_eq!(one.status, 200, "{target}");
        assert_eq!(one.header("content-type"), Some("application/json"));
        let secret = &one.json()["secret"];
        assert_eq!(secret["secretKey"], "DB_URL");
        assert_eq!(secret["secretValue"], "postgres://two");
        assert_eq!(secret["secretPath"], "/app");
        assert_eq!(secret["environment"], "dev");
        assert_eq!(secret["workspace"], project.as_str());
        assert_eq!(secret["type"], "shared");
        assert!(secret["version"].is_u64());
        assert!(secret["tags"].as_array().is_some_and(Vec::is_empty));
        assert_eq!(secret["id"], secret["_id"]);
        for time in ["createdAt", "updatedAt"] {
            let text = secret[time].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(text).is_ok() && text.ends_with('Z'),
                "{time}: {text}"
            );
        }
    }

    for target in [
        format!("/api/v3/secrets/raw?{folder}&recursive=false&expandSecretReferences=true"),
        format!(
            "/api/v4/secrets?{folder}&includeImports=true&recursive=true&includePersonalOverrides=false"
        ),
    ] {
        let listed = http(&stack, "GET", &target, Some(&token), &[], None).await;
        assert_eq!(listed.status, 200, "{target}");
        let body = listed.json();
        assert_eq!(body["imports"], serde_json::json!([]));
        let names: Vec<_> = body["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["secretKey"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["DB_URL"], "{target}");
    }

    // The Python SDK sends the folder of a delete in the body.
    let deleted = http(
        &stack,
        "DELETE",
        "/api/v3/secrets/raw/DB_URL",
        Some(&token),
        &[],
        Some(
            serde_json::json!({"workspaceId": project, "environment": "dev", "secretPath": "/app"}),
        ),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.json());
    assert_eq!(deleted.json()["secret"]["secretKey"], "DB_URL");
    assert_eq!(deleted.json()["secret"]["secretValueHidden"], true);
    let gone = http(
        &stack,
        "GET",
        &format!("/api/v3/secrets/raw/DB_URL?{folder}"),
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_error(&gone, 404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_answers_304_to_its_own_etag_until_the_folder_changes() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "developer", 0).await;
    let list = format!("/api/v3/secrets/raw?workspaceId={project}&environment=dev");
    let write = |value: &'static str| {
        Some(
            serde_json::json!({"workspaceId": project, "environment": "dev", "secretValue": value}),
        )
    };
    http(
        &stack,
        "POST",
        "/api/v3/secrets/raw/K",
        Some(&token),
        &[],
        write("1"),
    )
    .await;

    let first = http(&stack, "GET", &list, Some(&token), &[], None).await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    let same = http(
        &stack,
        "GET",
        &list,
        Some(&token),
        &[("if-none-match", &etag)],
        None,
    )
    .await;
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    assert_eq!(same.header("etag"), Some(etag.as_str()));

    http(
        &stack,
        "PATCH",
        "/api/v3/secrets/raw/K",
        Some(&token),
        &[],
        write("2"),
    )
    .await;
    let changed = http(
        &stack,
        "GET",
        &list,
        Some(&token),
        &[("if-none-match", &etag)],
        None,
    )
    .await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(changed.json()["secrets"][0]["secretValue"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_naming_the_infisical_parameter_and_unknown_routes_404() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "developer", 0).await;
    let cases = [
        (
            format!("/api/v3/secrets/raw?workspaceId={project}"),
            "environment",
        ),
        (
            format!("/api/v3/secrets/raw?workspaceId={project}&environment=dev&recursive=yes"),
            "recursive",
        ),
        (
            format!("/api/v3/secrets/raw?workspaceId={project}&environment=dev&secretPath=../x"),
            "secretPath",
        ),
        (
            "/api/v3/secrets/raw?workspaceSlug=my-project&environment=dev".to_owned(),
            "workspaceSlug",
        ),
    ];
    for (target, field) in cases {
        let reply = http(&stack, "GET", &target, Some(&token), &[], None).await;
        let body = assert_error(&reply, 400, "INVALID_ARGUMENT");
        assert_eq!(body["field"], field, "{target}: {body}");
    }
    let comment = http(
        &stack,
        "POST",
        "/api/v3/secrets/raw/K",
        Some(&token),
        &[],
        Some(serde_json::json!({"workspaceId": project, "environment": "dev", "secretValue": "v", "secretComment": "dropped?"})),
    )
    .await;
    assert_eq!(
        assert_error(&comment, 400, "INVALID_ARGUMENT")["field"],
        "secretComment"
    );
    let unknown = http(&stack, "GET", "/api/v1/nothing", Some(&token), &[], None).await;
    assert_error(&unknown, 404, "NOT_FOUND");
}

/// The same denials over gRPC and HTTP: the same reason, and the HTTP
/// status Infisical's clients expect for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_carry_the_same_reason_over_grpc_and_http() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let e2ee = stack.create_project(true).await;
    let prod_only = stack
        .create_service_token(Stack::token_request(&project, &["prod:/**"], &["read"]))
        .await;
    let e2ee_token = stack
        .create_service_token(Stack::token_request(&e2ee, &["dev:/**"], &["read"]))
        .await;
    let access = |t: &str| latchkey_domain::token::access_token_part(t).to_owned();
    let cases = [
        (None, "TOKEN_MALFORMED", 401),
        (Some("not-a-token".to_owned()), "TOKEN_MALFORMED", 401),
        (
            Some(
                "st.00000000-0000-4000-8000-000000000000.00000000000000000000000000000000"
                    .to_owned(),
            ),
            "TOKEN_INVALID",
            401,
        ),
        (Some(access(&prod_only)), "SCOPE_DENIED", 403),
        // The four-part form is read the same way, its key part dropped.
        (Some(prod_only.clone()), "SCOPE_DENIED", 403),
        (Some(access(&e2ee_token)), "E2EE_ENABLED", 400),
    ];
    for (token, want, status) in cases {
        let reply = http(
            &stack,
            "GET",
            "/api/v3/secrets/raw?environment=dev&secretPath=/",
            token.as_deref(),
            &[],
            None,
        )
        .await;
        assert_error(&reply, status, want);

        let mut grpc = stack.secrets_client().await;
        let request = secrets_pb::ListSecretsRequest {
            project_id: String::new(),
            environment: "dev".into(),
            secret_path: "/".into(),
            recursive: false,
        };
        let request = match &token {
            Some(t) => with_token(request, t),
            None => tonic::Request::new(request),
        };
        let denied = grpc.list_secrets_raw(request).await.unwrap_err();
        assert_eq!(reason(&denied), want, "gRPC: {denied:?}");
    }
}
