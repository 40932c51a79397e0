//! The Infisical-compatible HTTP API on the secrets service, over a real
//! loopback socket with a minimal HTTP/1.1 client: the raw v3 and v4
//! endpoints read and write through the same use cases as gRPC, answer in
//! the shapes Infisical's clients decode, and deny with the same reasons.

use latchkey_proto::auth::v1 as auth_pb;
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
    pub(crate) fn json(&self) -> Value {
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
    parse_reply(&raw)
}

/// Sends `request` as it is (a head, perhaps a partial body) and reads
/// the answer the server gives without waiting for the rest.
async fn send_partial(addr: &str, request: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // The whole answer, or what came before the deadline.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(!raw.is_empty(), "no answer before the body arrived");
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
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
    // As on Infisical: a create of an existing secret and an update of a
    // missing one are refused, and change nothing.
    let again = http(
        &stack,
        "POST",
        "/api/v3/secrets/raw/DB_URL",
        Some(&token),
        &[],
        Some(serde_json::json!({
            "workspaceId": project, "environment": "dev", "secretPath": "/app",
            "secretValue": "postgres://clobbered",
        })),
    )
    .await;
    assert_error(&again, 400, "ALREADY_EXISTS");
    let missing = http(
        &stack,
        "PATCH",
        "/api/v3/secrets/raw/NOPE",
        Some(&token),
        &[],
        Some(serde_json::json!({
            "workspaceId": project, "environment": "dev", "secretPath": "/app", "secretValue": "v",
        })),
    )
    .await;
    assert_error(&missing, 404, "NOT_FOUND");

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
    // A secret-bearing answer is never stored by a cache nor sniffed.
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_eq!(first.header("x-content-type-options"), Some("nosniff"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_token_endpoint_describes_the_token_and_its_key_opens_with_the_key_part() {
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(
            &project,
            &["dev:/app/**", "prod:/"],
            &["read", "write"],
        ))
        .await;
    let access = latchkey_domain::token::access_token_part(&token).to_owned();
    // Both bearer forms: the operator sends the whole token.
    for bearer in [access.as_str(), token.as_str()] {
        let reply = http(
            &stack,
            "GET",
            "/api/v2/service-token",
            Some(bearer),
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.json());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["projectId"], project.as_str());
        assert_eq!(body["workspace"], project.as_str());
        assert_eq!(body["id"], token.split('.').nth(1).unwrap());
        assert_eq!(body["_id"], body["id"]);
        assert_eq!(
            body["scopes"],
            serde_json::json!([
                {"environment": "dev", "secretPath": "/app/**"},
                {"environment": "prod", "secretPath": "/"}
            ])
        );
        assert_eq!(body["permissions"], serde_json::json!(["read", "write"]));
        for time in ["createdAt", "updatedAt"] {
            assert!(chrono::DateTime::parse_from_rfc3339(body[time].as_str().unwrap()).is_ok());
        }
        assert!(body["expiresAt"].is_null(), "a token that never expires");
        // Infisical's envelope: AES-256-GCM under the key part's ASCII bytes,
        // no associated data, the tag apart.
        let sealed = latchkey_domain::crypto::Sealed {
            ciphertext: b64(&body["encryptedKey"]),
            iv: b64(&body["iv"]),
            tag: b64(&body["tag"]),
        };
        let holder = latchkey_domain::token::ServiceTokenSecret::parse(&token).unwrap();
        let project_key = holder.key().open(&sealed, &[]).unwrap();
        assert_eq!(project_key.len(), 32);
        assert!(project_key.iter().all(u8::is_ascii_hexdigit));
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            !text.contains(token.rsplit('.').next().unwrap()),
            "the key part never comes back"
        );
    }

    let (_, identity) = stack.identity_in_project(&project, "viewer", 0).await;
    let refused = http(
        &stack,
        "GET",
        "/api/v2/service-token",
        Some(&identity),
        &[],
        None,
    )
    .await;
    assert_error(&refused, 403, "PERMISSION_DENIED");
    let bad = http(
        &stack,
        "GET",
        "/api/v2/service-token",
        Some("st.x.y"),
        &[],
        None,
    )
    .await;
    assert_eq!(bad.status, 401);
}

/// The secrets service names the client's address when it looks a token up
/// on the client's behalf; nobody else may, or trusted IPs could be dodged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_internal_key_may_name_the_client_ip_of_a_token_lookup() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let mut request = Stack::token_request(&project, &["dev:/**"], &["read"]);
    request.trusted_ips = vec!["127.0.0.1".into()];
    let token = stack.create_service_token(request).await;
    let access = latchkey_domain::token::access_token_part(&token).to_owned();
    let lookup = |client_ip: &str, internal_key: Option<&str>| {
        let body = auth_pb::LookupTokenRequest {
            client_ip: client_ip.to_owned(),
        };
        let mut request = match internal_key {
            Some(key) => latchkey_test_support::with_internal_key(body, key),
            None => tonic::Request::new(body),
        };
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {access}").parse().unwrap());
        request
    };
    let mut auth = stack.auth_client().await;

    let spoofed = auth
        .lookup_token(lookup("127.0.0.1", None))
        .await
        .unwrap_err();
    assert_eq!(reason(&spoofed), "PERMISSION_DENIED", "{spoofed:?}");
    let wrong_key = auth
        .lookup_token(lookup("127.0.0.1", Some("not-the-internal-key-0123456789")))
        .await
        .unwrap_err();
    assert_eq!(reason(&wrong_key), "PERMISSION_DENIED");
    let outside = auth
        .lookup_token(lookup("10.1.2.3", Some(&stack.internal_key)))
        .await
        .unwrap_err();
    assert_eq!(reason(&outside), "IP_NOT_TRUSTED", "{outside:?}");
    let inside = auth
        .lookup_token(lookup("127.0.0.1", Some(&stack.internal_key)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inside.project_id, project);
    let own = auth
        .lookup_token(lookup("", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        own.name, inside.name,
        "without client_ip: the caller itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encrypted_reads_refuse_an_e2ee_project_saying_why() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(true).await;
    let token = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;
    let access = latchkey_domain::token::access_token_part(&token).to_owned();
    for target in [
        "/api/v3/secrets?environment=dev&secretPath=/",
        "/api/v3/secrets/DB_URL?environment=dev&type=personal",
    ] {
        let reply = http(&stack, "GET", target, Some(&access), &[], None).await;
        let body = assert_error(&reply, 400, "E2EE_ENABLED");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("end-to-end encrypted") && message.contains("gRPC"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn universal_auth_login_answers_infisicals_shape_with_or_without_a_trailing_slash() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let (identity, _) = stack.identity_in_project(&project, "viewer", 0).await;
    let mut auth = stack.auth_client().await;
    let client_id = auth
        .attach_universal_auth(with_token(
            auth_pb::AttachUniversalAuthRequest {
                identity_id: identity.clone(),
                access_token_ttl: Some(600),
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap()
        .client_id;
    let client_secret = auth
        .create_universal_auth_client_secret(with_token(
            auth_pb::CreateUniversalAuthClientSecretRequest {
                identity_id: identity.clone(),
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .client_secret;
    let read = format!("/api/v3/secrets/raw?workspaceId={project}&environment=dev");
    for route in [
        "/api/v1/auth/universal-auth/login",
        "/api/v1/auth/universal-auth/login/",
    ] {
        let body = serde_json::json!({ "clientId": client_id, "clientSecret": client_secret });
        let reply = http(&stack, "POST", route, None, &[], Some(body)).await;
        assert_eq!(reply.status, 200, "{route}: {}", reply.json());
        let login = reply.json();
        // Infisical's four fields, numbers as JSON numbers.
        assert_eq!(login["expiresIn"], 600, "{login}");
        assert_eq!(login["accessTokenMaxTTL"], 2_592_000, "{login}");
        assert_eq!(login["tokenType"], "Bearer", "{login}");
        let token = login["accessToken"].as_str().unwrap();
        assert_eq!(crate::jwt_claims(token)["authMethod"], "universal-auth");
        let listed = http(&stack, "GET", &read, Some(token), &[], None).await;
        assert_eq!(listed.status, 200, "{}", listed.json());
    }
    let wrong = http(
        &stack,
        "POST",
        "/api/v1/auth/universal-auth/login",
        None,
        &[],
        Some(serde_json::json!({ "clientId": client_id, "clientSecret": "0".repeat(64) })),
    )
    .await;
    assert_error(&wrong, 401, "TOKEN_INVALID");
    let missing = http(
        &stack,
        "POST",
        "/api/v1/auth/universal-auth/login",
        None,
        &[],
        Some(serde_json::json!({ "clientId": client_id })),
    )
    .await;
    assert_eq!(
        assert_error(&missing, 400, "INVALID_ARGUMENT")["field"],
        "clientSecret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_renew_and_revoke_work_on_the_access_token_in_the_body() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let (_, token) = stack.identity_in_project(&project, "viewer", 0).await;
    let body = || Some(serde_json::json!({ "accessToken": token }));
    let read = format!("/api/v3/secrets/raw?workspaceId={project}&environment=dev");

    let renewed = http(
        &stack,
        "POST",
        "/api/v1/auth/token/renew",
        None,
        &[],
        body(),
    )
    .await;
    assert_eq!(renewed.status, 200, "{}", renewed.json());
    let reply = renewed.json();
    // A JWT renews to a JWT for the same token row.
    let renewed_token = reply["accessToken"].as_str().unwrap();
    assert_eq!(
        crate::jwt_claims(renewed_token)["identityAccessTokenId"],
        crate::jwt_claims(&token)["identityAccessTokenId"]
    );
    assert_eq!(reply["tokenType"], "Bearer");
    assert!(
        reply["expiresIn"].as_i64().is_some_and(|s| s > 0),
        "{reply}"
    );
    assert!(reply["accessTokenMaxTTL"].is_i64(), "{reply}");
    assert_eq!(
        http(&stack, "GET", &read, Some(renewed_token), &[], None)
            .await
            .status,
        200
    );

    let missing = http(&stack, "POST", "/api/v1/auth/token/revoke", None, &[], None).await;
    assert_eq!(
        assert_error(&missing, 400, "INVALID_ARGUMENT")["field"],
        "accessToken"
    );

    let revoked = http(
        &stack,
        "POST",
        "/api/v1/auth/token/revoke",
        None,
        &[],
        body(),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.json());
    assert_eq!(
        revoked.json()["message"],
        "Successfully revoked access token"
    );
    let after = http(&stack, "GET", &read, Some(&token), &[], None).await;
    assert_error(&after, 401, "TOKEN_REVOKED");
    let renew_revoked = http(
        &stack,
        "POST",
        "/api/v1/auth/token/renew",
        None,
        &[],
        body(),
    )
    .await;
    assert_error(&renew_revoked, 401, "TOKEN_REVOKED");
}

/// Asks the same listing over HTTP and gRPC with `token`; both must refuse
/// with `want`, HTTP with `status`.
async fn refused_alike(stack: &Stack, token: &str, project: &str, want: &str, status: u16) {
    let target = format!("/api/v3/secrets/raw?workspaceId={project}&environment=dev");
    let reply = http(stack, "GET", &target, Some(token), &[], None).await;
    assert_error(&reply, status, want);
    let request = secrets_pb::ListSecretsRequest {
        project_id: project.to_owned(),
        environment: "dev".into(),
        secret_path: "/".into(),
        recursive: false,
    };
    let denied = stack
        .secrets_client()
        .await
        .list_secrets_raw(with_token(request, token))
        .await
        .unwrap_err();
    assert_eq!(reason(&denied), want, "gRPC: {denied:?}");
}

/// Every denial reason of DESIGN.md over HTTP, each with the status
/// Infisical's clients expect and the same reason as over gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_denial_reason_comes_back_over_http_with_its_status() {
    use latchkey_proto::auth::v1 as auth_pb;
    let mut stack = Stack::start_with(
        Backend::Sqlite,
        &[
            ("LATCHKEY_IP_FAILURE_BURST", "2"),
            ("LATCHKEY_IP_FAILURE_REFILL_SECONDS", "600"),
        ],
    )
    .await
    .unwrap();
    let project = stack.create_project(false).await;
    let service = |scopes: &'static [&'static str], permissions: &'static [&'static str]| {
        Stack::token_request(&project, scopes, permissions)
    };
    let id_of = |token: &str| token.split('.').nth(1).unwrap().to_owned();
    let admin = stack.admin_token.clone();

    // PERMISSION_DENIED: a write-only token reads.
    let write_only = stack
        .create_service_token(service(&["dev:/**"], &["write"]))
        .await;
    refused_alike(&stack, &write_only, &project, "PERMISSION_DENIED", 403).await;

    // IP_NOT_TRUSTED: the token allows another address than loopback.
    let mut request = service(&["dev:/**"], &["read"]);
    request.trusted_ips = vec!["10.0.0.1".into()];
    let elsewhere = stack.create_service_token(request).await;
    refused_alike(&stack, &elsewhere, &project, "IP_NOT_TRUSTED", 403).await;

    // TOKEN_INACTIVE and TOKEN_REVOKED.
    let inactive = stack
        .create_service_token(service(&["dev:/**"], &["read"]))
        .await;
    let mut auth = stack.auth_client().await;
    auth.set_service_token_active(with_token(
        auth_pb::SetServiceTokenActiveRequest {
            token_id: id_of(&inactive),
            active: false,
        },
        &admin,
    ))
    .await
    .unwrap();
    refused_alike(&stack, &inactive, &project, "TOKEN_INACTIVE", 401).await;
    let deleted = stack
        .create_service_token(service(&["dev:/**"], &["read"]))
        .await;
    auth.delete_service_token(with_token(
        auth_pb::DeleteServiceTokenRequest {
            token_id: id_of(&deleted),
        },
        &admin,
    ))
    .await
    .unwrap();
    refused_alike(&stack, &deleted, &project, "TOKEN_REVOKED", 401).await;

    // TOKEN_USES_EXHAUSTED: one use, spent.
    let (_, once) = stack.identity_in_project(&project, "viewer", 1).await;
    let target = format!("/api/v3/secrets/raw?workspaceId={project}&environment=dev");
    assert_eq!(
        http(&stack, "GET", &target, Some(&once), &[], None)
            .await
            .status,
        200
    );
    refused_alike(&stack, &once, &project, "TOKEN_USES_EXHAUSTED", 401).await;

    // TOKEN_EXPIRED: a minute's token, two minutes later.
    let mut request = service(&["dev:/**"], &["read"]);
    request.expires_in_seconds = 60;
    let short = stack.create_service_token(request).await;
    stack.clock.advance(chrono::Duration::minutes(2));
    refused_alike(&stack, &short, &project, "TOKEN_EXPIRED", 401).await;

    // TOO_MANY_FAILED_ATTEMPTS, with Retry-After: two wrong secrets spend
    // this address's budget (never the token id's: see abuse.rs), so it
    // comes last of the checks that reach the auth service.
    let guarded = stack
        .create_service_token(service(&["dev:/**"], &["read"]))
        .await;
    let wrong = format!("st.{}.{:032x}", id_of(&guarded), 7);
    for _ in 0..2 {
        let reply = http(&stack, "GET", &target, Some(&wrong), &[], None).await;
        assert_error(&reply, 401, "TOKEN_INVALID");
    }
    let limited = http(&stack, "GET", &target, Some(&wrong), &[], None).await;
    assert_error(&limited, 429, "TOO_MANY_FAILED_ATTEMPTS");
    assert!(
        limited
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)),
        "{:?}",
        limited.headers
    );
    refused_alike(&stack, &wrong, &project, "TOO_MANY_FAILED_ATTEMPTS", 429).await;

    // AUTH_UNAVAILABLE: the auth service is gone; the secrets service
    // fails closed, cache or not.
    let valid = stack
        .create_service_token(service(&["dev:/**"], &["read"]))
        .await;
    stack.stop_auth().await;
    refused_alike(&stack, &valid, &project, "AUTH_UNAVAILABLE", 503).await;
}

/// A write's body is read only after its token: one without a token (or
/// a malformed one) is refused at once, whatever its body announces or
/// holds, and a body over the limit is refused naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_refused_for_its_token_before_its_body_and_for_its_size_by_name() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let (_, developer) = stack.identity_in_project(&project, "developer", 0).await;
    let head = |token: Option<&str>, length: usize| {
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        format!(
            "POST /api/v3/secrets/raw/X HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
             content-type: application/json\r\n{auth}content-length: {length}\r\n\r\n"
        )
    };

    // 1 MiB announced, a few bytes sent, the rest never comes.
    for token in [None, Some("st.not-a-token")] {
        let partial = format!("{}{{\"workspaceId\": \"", head(token, 1 << 20));
        let reply = send_partial(&stack.http_addr, partial.as_bytes()).await;
        assert_error(&reply, 401, "TOKEN_MALFORMED");
    }
    // Not JSON, and no token: the token is what is wrong first.
    let garbage = format!("{}{{not json", head(None, 9));
    let reply = send_partial(&stack.http_addr, garbage.as_bytes()).await;
    assert_error(&reply, 401, "TOKEN_MALFORMED");

    // With a token, a body announced over the limit is refused before it is sent.
    let reply = send_partial(&stack.http_addr, head(Some(&developer), 1 << 20).as_bytes()).await;
    let body = assert_error(&reply, 400, "INVALID_ARGUMENT");
    assert_eq!(body["field"], "body", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("larger than"),
        "{body}"
    );
    // And one that only grows past it while arriving (chunked, no length).
    let value = "v".repeat(500 * 1024);
    let chunk = format!(
        "{{\"workspaceId\":\"{project}\",\"environment\":\"dev\",\"secretValue\":\"{value}\"}}"
    );
    let chunked = format!(
        "POST /api/v3/secrets/raw/X HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
         content-type: application/json\r\nauthorization: Bearer {developer}\r\n\
         transfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let reply = send_partial(&stack.http_addr, chunked.as_bytes()).await;
    let body = assert_error(&reply, 400, "INVALID_ARGUMENT");
    assert_eq!(body["field"], "body", "{body}");
}

/// The older clients' encrypted reads seal each secret version once per
/// project key and reuse it: a poll repeats the same bytes (so its ETag
/// holds) and costs no encryption, and every seal made is counted against
/// the key's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_reads_seal_each_version_once_and_count_every_seal() {
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let token = stack
        .create_service_token(Stack::token_request(
            &project,
            &["dev:/**"],
            &["read", "write"],
        ))
        .await;
    let access = latchkey_domain::token::access_token_part(&token).to_owned();
    let (_, writer) = stack.identity_in_project(&project, "developer", 0).await;
    for name in ["A", "B"] {
        let body =
            serde_json::json!({"workspaceId": project, "environment": "dev", "secretValue": "v1"});
        let reply = http(
            &stack,
            "POST",
            &format!("/api/v3/secrets/raw/{name}"),
            Some(&writer),
            &[],
            Some(body),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let count = || async { stack.lookup(&access).await.unwrap().key_encryption_count };
    let written = count().await;
    assert_eq!(written, 2, "one encryption per write");

    let list = "/api/v3/secrets?environment=dev";
    let first = http(&stack, "GET", list, Some(&access), &[], None).await;
    assert_eq!(first.status, 200);
    let second = http(&stack, "GET", list, Some(&access), &[], None).await;
    assert_eq!(first.json(), second.json(), "the same envelopes, reused");
    assert_eq!(
        count().await,
        written + 6,
        "name, value and comment of two secrets, once"
    );

    let body =
        serde_json::json!({"workspaceId": project, "environment": "dev", "secretValue": "v2"});
    http(
        &stack,
        "PATCH",
        "/api/v3/secrets/raw/A",
        Some(&writer),
        &[],
        Some(body),
    )
    .await;
    let third = http(&stack, "GET", list, Some(&access), &[], None).await;
    assert_ne!(third.json(), second.json(), "a new version, new envelopes");
    assert_eq!(count().await, written + 1 + 6 + 3);
}
