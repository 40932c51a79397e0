//! Both services as real processes, each allowed 1,024 open files, under
//! what an attacker on the network can do without a valid token: hold
//! connections half-open on every port, start requests whose bodies never
//! come, and flood wrong secrets. Valid calls keep succeeding throughout.
//! A test binary of its own, so the floods slow no other test.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::time::{Duration, Instant};

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use latchkey_test_support::{
    AuthorizeCall, ServiceProcess, create_project_with, create_service_token_with, free_port,
    with_token,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INTERNAL_KEY: &str = "hostile-load-internal-key-0123456789abcdef";
const DESCRIPTORS: u64 = 1024;
/// Deadlines short enough for a test to wait for them.
const FIRST_BYTE_MILLIS: u64 = 1000;
const HEADER_MILLIS: u64 = 2000;

/// Both services on loopback, every port apart.
struct Services {
    _auth: ServiceProcess,
    secrets: ServiceProcess,
    auth_public: String,
    auth_internal: String,
    auth_health: String,
    secrets_grpc: String,
    secrets_http: String,
    secrets_health: String,
    admin: String,
    _dir: tempfile::TempDir,
}

fn start(extra_auth: &[(&str, &str)]) -> Services {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<String> = (0..6)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let common = |vars: &[(&str, &str)]| {
        let mut all = vec![
            (
                "LATCHKEY_DATA_DIR".to_owned(),
                dir.path().to_str().unwrap().to_owned(),
            ),
            ("LATCHKEY_INTERNAL_KEY".to_owned(), INTERNAL_KEY.to_owned()),
            (
                "LATCHKEY_FIRST_BYTE_TIMEOUT_MILLIS".to_owned(),
                FIRST_BYTE_MILLIS.to_string(),
            ),
            (
                "LATCHKEY_HEADER_TIMEOUT_MILLIS".to_owned(),
                HEADER_MILLIS.to_string(),
            ),
            (
                "RUST_LOG".to_owned(),
                "warn,latchkey_auth=info,latchkey_secrets=info".to_owned(),
            ),
        ];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        all
    };
    let mut auth_vars = common(&[
        ("LATCHKEY_AUTH_ADDR", &ports[0]),
        ("LATCHKEY_INTERNAL_ADDR", &ports[1]),
        ("LATCHKEY_HEALTH_ADDR", &ports[2]),
    ]);
    auth_vars.extend(
        extra_auth
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let auth = ServiceProcess::start_with_descriptor_limit(
        &latchkey_test_support::built_binary("latchkey-auth"),
        &auth_vars,
        DESCRIPTORS,
    );
    let secrets = ServiceProcess::start_with_descriptor_limit(
        &latchkey_test_support::built_binary("latchkey-secrets"),
        &common(&[
            ("LATCHKEY_SECRETS_ADDR", &ports[3]),
            ("LATCHKEY_HTTP_ADDR", &ports[4]),
            ("LATCHKEY_HEALTH_ADDR", &ports[5]),
            ("LATCHKEY_AUTH_URL", &format!("http://{}", ports[1])),
        ]),
        DESCRIPTORS,
    );
    let admin = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    Services {
        _auth: auth,
        secrets,
        auth_public: ports[0].clone(),
        auth_internal: ports[1].clone(),
        auth_health: ports[2].clone(),
        secrets_grpc: ports[3].clone(),
        secrets_http: ports[4].clone(),
        secrets_health: ports[5].clone(),
        admin,
        _dir: dir,
    }
}

impl Services {
    async fn project_and_token(&self) -> (String, String) {
        let mut auth = AuthServiceClient::connect(format!("http://{}", self.auth_public))
            .await
            .unwrap();
        let project = create_project_with(&mut auth, &self.admin, false).await;
        let token =
            create_service_token_with(&mut auth, &self.admin, &project, &["dev:/**"], &["read"])
                .await;
        (project, token)
    }

    /// One valid call on every port, each on a new connection.
    async fn every_port_answers(&self, project: &str, token: &str) {
        let access = latchkey_domain::token::access_token_part(token).to_owned();
        let mut auth = AuthServiceClient::connect(format!("http://{}", self.auth_public))
            .await
            .unwrap();
        auth.lookup_token(with_token(auth_pb::LookupTokenRequest::default(), &access))
            .await
            .unwrap();
        let mut internal = AuthServiceClient::connect(format!("http://{}", self.auth_internal))
            .await
            .unwrap();
        internal
            .authorize(
                AuthorizeCall::new(
                    &format!("http://{}", self.auth_internal),
                    INTERNAL_KEY,
                    token,
                )
                .project(project)
                .request(),
            )
            .await
            .unwrap();
        for health in [&self.auth_health, &self.secrets_health] {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{health}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .unwrap();
        }
        let mut secrets = SecretsServiceClient::connect(format!("http://{}", self.secrets_grpc))
            .await
            .unwrap();
        secrets
            .list_secrets(with_token(
                secrets_pb::ListSecretsRequest {
                    project_id: project.to_owned(),
                    environment: "dev".into(),
                    secret_path: "/".into(),
                    recursive: false,
                },
                &access,
            ))
            .await
            .unwrap();
        let status = http_status(
            &self.secrets_http,
            &format!(
                "GET /api/v3/secrets/raw?workspaceId={project}&environment=dev HTTP/1.1\r\n\
                 host: x\r\nauthorization: Bearer {access}\r\nconnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status, 200, "HTTP API");
    }

    fn ports(&self) -> [(&str, &str); 6] {
        [
            ("auth public", self.auth_public.as_str()),
            ("auth internal", self.auth_internal.as_str()),
            ("auth health", self.auth_health.as_str()),
            ("secrets gRPC", self.secrets_grpc.as_str()),
            ("secrets HTTP", self.secrets_http.as_str()),
            ("secrets health", self.secrets_health.as_str()),
        ]
    }
}

/// The status of one HTTP/1.1 exchange on a new connection.
async fn http_status(addr: &str, request: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&head[..n])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Whether the server closed `stream` (its reads end or fail) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            // Bytes before the close (a refusal's answer): keep reading.
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_on_every_port_never_stop_valid_calls_and_are_closed_at_their_deadline()
 {
    let services = start(&[]);
    let (project, token) = services.project_and_token().await;
    services.every_port_answers(&project, &token).await;

    for (name, addr) in services.ports() {
        // 1,100 connections, more than the process may open: half a request
        // line on the HTTP port, not even a preface on the gRPC ones.
        let mut held = Vec::with_capacity(1100);
        for _ in 0..1100 {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                continue;
            };
            if name == "secrets HTTP" {
                let _ = stream.write_all(b"GET /api/v3/secr").await;
            }
            held.push(stream);
        }
        let started = Instant::now();
        services.every_port_answers(&project, &token).await;

        // Every held connection is closed by its header deadline (or
        // sooner, to make room), with a second's slack.
        let deadline = Duration::from_millis(HEADER_MILLIS + 1000);
        let mut open = 0;
        for stream in &mut held {
            let left = deadline.saturating_sub(started.elapsed());
            if !closed_within(stream, left.max(Duration::from_millis(10))).await {
                open += 1;
            }
        }
        assert_eq!(open, 0, "{name}: connections left open past the deadline");
    }
    services.every_port_answers(&project, &token).await;
}

/// A request that announces a 1 MiB body and sends one byte of it, on a
/// new HTTP/2 (prior knowledge) connection: the body never completes.
async fn h2_partial(addr: &str, path: &str, headers: &[(&str, &str)], first: Vec<u8>) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let encoder = H2Writer;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(encoder.frame(0x4, 0, 0, &[])); // SETTINGS
    out.extend(encoder.frame(0x1, 0x4, 1, &encoder.headers(addr, path, headers)));
    out.extend(encoder.frame(0x0, 0, 1, &first)); // DATA, no END_STREAM
    stream.write_all(&out).await.unwrap();
    stream
}

/// Just enough HTTP/2 to start requests: frames and literal headers.
#[derive(Default)]
struct H2Writer;

impl H2Writer {
    fn frame(&self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap();
        let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        frame.extend(stream.to_be_bytes());
        frame.extend(payload);
        frame
    }

    fn headers(&self, authority: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        let mut literal = |name: &str, value: &str| {
            // Literal header field without indexing, new name (RFC 7541 6.2.2).
            block.push(0x00);
            block.push(u8::try_from(name.len()).unwrap());
            block.extend(name.as_bytes());
            assert!(value.len() < 127);
            block.push(u8::try_from(value.len()).unwrap());
            block.extend(value.as_bytes());
        };
        literal(":method", "POST");
        literal(":scheme", "http");
        literal(":authority", authority);
        literal(":path", path);
        for (name, value) in extra {
            literal(name, value);
        }
        block
    }
}

fn rss_mib(process: &ServiceProcess) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", process.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenless_partial_bodies_grow_neither_service_and_valid_calls_succeed() {
    let services = start(&[]);
    let (project, token) = services.project_and_token().await;
    services.every_port_answers(&project, &token).await;
    let idle_secrets = rss_mib(&services.secrets);
    let idle_auth = rss_mib(&services._auth);

    let mut held = Vec::new();
    // 300 over HTTP/1.1: each announces 1 MiB and sends one byte.
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&services.secrets_http).await.unwrap();
        let _ = stream
            .write_all(
                b"POST /api/v3/secrets/raw/X HTTP/1.1\r\nhost: x\r\n\
                  content-type: application/json\r\ncontent-length: 1048576\r\n\r\n{",
            )
            .await;
        held.push(stream);
    }
    // 300 over h2c to the HTTP API, and 300 gRPC messages announcing 1 MiB
    // to each gRPC service.
    let grpc_prefix = {
        let mut prefix = vec![0u8];
        prefix.extend(1_048_576u32.to_be_bytes());
        prefix.push(0x0a);
        prefix
    };
    let grpc = [("content-type", "application/grpc"), ("te", "trailers")];
    for _ in 0..300 {
        held.push(
            h2_partial(
                &services.secrets_http,
                "/api/v3/secrets/raw/X",
                &[
                    ("content-type", "application/json"),
                    ("content-length", "1048576"),
                ],
                b"{".to_vec(),
            )
            .await,
        );
        held.push(
            h2_partial(
                &services.secrets_grpc,
                "/latchkey.secrets.v1.SecretsService/SetSecretRaw",
                &grpc,
                grpc_prefix.clone(),
            )
            .await,
        );
        held.push(
            h2_partial(
                &services.auth_public,
                "/latchkey.auth.v1.AuthService/CreateProject",
                &grpc,
                grpc_prefix.clone(),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    services.every_port_answers(&project, &token).await;

    let (secrets_now, auth_now) = (rss_mib(&services.secrets), rss_mib(&services._auth));
    eprintln!(
        "RSS under 1,200 partial bodies: secrets {idle_secrets} -> {secrets_now} MiB, auth {idle_auth} -> {auth_now} MiB"
    );
    assert!(
        secrets_now <= idle_secrets + 128,
        "the secrets service grew from {idle_secrets} to {secrets_now} MiB"
    );
    assert!(
        auth_now <= idle_auth + 128,
        "the auth service grew from {idle_auth} to {auth_now} MiB"
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_auth_service_never_locks_a_token_out_for_wrong_secrets_against_its_id() {
    let services = start(&[]);
    let (project, token) = services.project_and_token().await;
    let id = token.split('.').nth(1).unwrap().to_owned();
    let mut internal = AuthServiceClient::connect(format!("http://{}", services.auth_internal))
        .await
        .unwrap();
    let url = format!("http://{}", services.auth_internal);
    let call = |token: String, ip: &'static str| {
        AuthorizeCall::new(&url, INTERNAL_KEY, &token)
            .project(&project)
            .from(ip)
            .request()
    };
    // No verification of the victim's token is cached: a fresh process, as
    // after a restart, and one wrong secret for its id every 200 ms from
    // another address, the victim calling in between.
    for n in 0..15u32 {
        let wrong = format!("st.{id}.{n:032x}");
        let refused = internal
            .authorize(call(wrong, "192.0.2.66"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        internal
            .authorize(call(token.clone(), "192.0.2.1"))
            .await
            .unwrap_or_else(|e| panic!("the holder's call {n} was refused: {e:?}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slash_64_flood_behind_a_trusted_proxy_leaves_a_fresh_tokens_first_call_prompt() {
    let services = start(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]);
    let (project, _) = services.project_and_token().await;
    let mut auth = AuthServiceClient::connect(format!("http://{}", services.auth_public))
        .await
        .unwrap();
    let fresh = create_service_token_with(
        &mut auth,
        &services.admin,
        &project,
        &["dev:/**"],
        &["read"],
    )
    .await;
    let flood: Vec<_> = (0..8)
        .map(|worker| {
            let url = format!("http://{}", services.auth_public);
            tokio::spawn(async move {
                let mut client = AuthServiceClient::connect(url).await.unwrap();
                for n in 0..150u32 {
                    let wrong = format!("st.{}.{n:032x}", uuid::Uuid::new_v4());
                    let mut request = with_token(auth_pb::LookupTokenRequest::default(), &wrong);
                    let address = format!("2001:db8:1:2:{worker:x}:{n:x}::1");
                    request
                        .metadata_mut()
                        .insert("x-forwarded-for", address.parse().unwrap());
                    let _ = client.lookup_token(request).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut request = with_token(
        auth_pb::LookupTokenRequest::default(),
        latchkey_domain::token::access_token_part(&fresh),
    );
    request
        .metadata_mut()
        .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
    auth.lookup_token(request).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a fresh token's first call took {:?}",
        started.elapsed()
    );
    for worker in flood {
        worker.await.unwrap();
    }
}
