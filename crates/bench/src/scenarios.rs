//! The scenarios, as a table: each a label, what it is compared with, how
//! many calls it keeps in flight, and the call it repeats.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use latchkey_client::Bearer;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

use crate::databases::store_tokens;
use crate::setup::Setup;
use crate::{BoxError, http};

/// What a scenario is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The one-hop ceiling.
    OneHop,
    /// The two-hop ceiling.
    TwoHop,
    /// A call to the auth service (one hop).
    Auth,
    /// A call to the secrets service (two hops: it calls `Authorize`).
    Secrets,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// The call a scenario's workers repeat.
pub(crate) type Call = Arc<dyn Fn() -> BoxFuture<Result<(), tonic::Status>> + Send + Sync>;

/// One row of the table.
pub(crate) struct Scenario {
    pub(crate) label: String,
    pub(crate) kind: Kind,
    /// Calls in flight; `None` is the run's `--concurrency`.
    pub(crate) writers: Option<usize>,
    /// Print the process's resident and peak memory around it.
    pub(crate) reports_memory: bool,
    /// Run just before it, when it is run.
    pub(crate) prepare: Option<BoxFuture<Result<(), BoxError>>>,
    pub(crate) call: Call,
}

/// What the scenarios call: both services, the ceilings, and the setup.
pub(crate) struct Targets {
    pub(crate) auth: Channel,
    pub(crate) secrets: Channel,
    /// The same secrets service with `LATCHKEY_AUDIT=off`.
    pub(crate) unaudited: Channel,
    pub(crate) unaudited_http_addr: String,
    pub(crate) echo: HealthClient<Channel>,
    pub(crate) hop: HealthClient<Channel>,
    pub(crate) http_addr: String,
    pub(crate) internal_key: String,
    pub(crate) admin: String,
    pub(crate) setup: Setup,
}

/// The label of a scenario's twin against the secrets service with audit
/// off; the report prints each audited figure as a ratio of its twin's.
pub(crate) const AUDIT_OFF: &str = ", audit off";

/// The folder the write scenarios write 16 secrets in, turn about.
const WRITES: &str = "/bench/writes";

/// Every scenario, in the order they run; the last, with `tokens` more
/// service tokens stored in `auth_db` first.
pub(crate) async fn table(
    t: &Targets,
    auth_db: &str,
    tokens: usize,
) -> Result<Vec<Scenario>, BoxError> {
    let s = &t.setup;
    let mut rows = Vec::new();
    for (label, kind, client) in [
        ("do-nothing gRPC call (ceiling)", Kind::OneHop, &t.echo),
        ("do-nothing two-hop call (ceiling)", Kind::TwoHop, &t.hop),
    ] {
        let client = client.clone();
        rows.push(row(
            label,
            kind,
            call(move || {
                let mut c = client.clone();
                async move {
                    let request = tonic_health::pb::HealthCheckRequest::default();
                    c.check(request).await.map(drop)
                }
            }),
        ));
    }
    for (label, token, project, raw) in [
        ("Authorize, service token", &s.service_token, "", false),
        (
            "Authorize, identity token",
            &s.identity_token,
            &s.project,
            true,
        ),
        (
            "Authorize, token with a use limit",
            &s.limited_token,
            &s.project,
            true,
        ),
    ] {
        rows.push(row(label, Kind::Auth, authorize(t, token, project, raw)?));
    }
    // The empty folder separates the fixed cost of a secrets call from its
    // payload (10 secrets, about 1.3 KB of reply).
    for (label, token, project, path, raw) in [
        (
            "ListSecrets, service token",
            &s.service_token,
            "",
            "/bench",
            false,
        ),
        (
            "ListSecrets, service token, empty folder",
            &s.service_token,
            "",
            "/bench/empty",
            false,
        ),
        (
            "ListSecretsRaw, identity token",
            &s.identity_token,
            &s.project,
            "/bench",
            true,
        ),
    ] {
        rows.push(row(
            label,
            Kind::Secrets,
            list(&t.secrets, token, project, path, raw)?,
        ));
        if label == "ListSecrets, service token" {
            rows.push(row(
                &format!("{label}{AUDIT_OFF}"),
                Kind::Secrets,
                list(&t.unaudited, token, project, path, raw)?,
            ));
        }
    }
    // Infisical's SDKs' read of the same folder over the HTTP API.
    let target = format!(
        "/api/v3/secrets/raw?workspaceId={}&environment=dev&secretPath=/bench",
        s.project
    );
    for (suffix, addr) in [("", &t.http_addr), (AUDIT_OFF, &t.unaudited_http_addr)] {
        let (pool, token, target) = (
            http::Pool::new(addr),
            s.identity_token.clone(),
            target.clone(),
        );
        rows.push(row(
            &format!("HTTP GET /api/v3/secrets/raw, identity token{suffix}"),
            Kind::Secrets,
            call(move || {
                let (pool, token, target) = (pool.clone(), token.clone(), target.clone());
                async move { pool.get(&target, &token).await }
            }),
        ));
    }
    // Self-lookup, beside Authorize: what a client learns of its own token.
    let auth =
        AuthServiceClient::with_interceptor(t.auth.clone(), Bearer::new(Some(&s.service_token))?);
    rows.push(row(
        "LookupToken, service token",
        Kind::Auth,
        call(move || {
            let mut c = auth.clone();
            async move {
                c.lookup_token(auth_pb::LookupTokenRequest::default())
                    .await
                    .map(drop)
            }
        }),
    ));
    // Writes under contention, over gRPC and HTTP.
    seed_writes(t).await?;
    for writers in [4, 64] {
        rows.push(Scenario {
            writers: Some(writers),
            ..row(
                &format!("SetSecretRaw, {writers} writers"),
                Kind::Secrets,
                set_raw(t)?,
            )
        });
        rows.push(Scenario {
            writers: Some(writers),
            ..row(
                &format!("HTTP PATCH /api/v3/secrets/raw, {writers} writers"),
                Kind::Secrets,
                patch_raw(t),
            )
        });
    }
    // Logins: the same client secret again and again (argon2 only for the
    // first), and a projected service-account token checked by signature.
    rows.push(row(
        "LoginUniversalAuth, one client secret",
        Kind::Auth,
        universal_auth_login(t).await?,
    ));
    rows.push(row(
        "LoginKubernetesAuth, RS256 service-account token",
        Kind::Auth,
        kubernetes_login(t).await?,
    ));
    // Token creation (argon2 per token), with the process's peak memory.
    rows.push(Scenario {
        reports_memory: true,
        ..row("CreateServiceToken", Kind::Auth, create_token(t)?)
    });
    if tokens > 0 {
        let (auth_db, project) = (auth_db.to_owned(), s.project.clone());
        rows.push(Scenario {
            prepare: Some(Box::pin(async move {
                store_tokens(&auth_db, &project, tokens).await
            })),
            ..row(
                &format!("Authorize, service token, +{tokens} tokens"),
                Kind::Auth,
                authorize(t, &s.service_token, "", false)?,
            )
        });
    }
    Ok(rows)
}

fn row(label: &str, kind: Kind, call: Call) -> Scenario {
    Scenario {
        label: label.to_owned(),
        kind,
        writers: None,
        reports_memory: false,
        prepare: None,
        call,
    }
}

/// `f` as a [`Call`].
fn call<F, Fut>(f: F) -> Call
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// One `Authorize` call for `token` reading `dev:/bench`, as the secrets
/// service makes it: the internal key on every call.
pub(crate) fn authorize(
    t: &Targets,
    token: &str,
    project: &str,
    raw: bool,
) -> Result<Call, BoxError> {
    let auth = AuthServiceClient::with_interceptor(
        t.auth.clone(),
        Bearer::new(None)?.with_internal_key(&t.internal_key)?,
    );
    let request = auth_pb::AuthorizeRequest {
        token: token.to_owned(),
        client_ip: "127.0.0.1".into(),
        project_id: project.to_owned(),
        environment: "dev".into(),
        secret_path: "/bench".into(),
        action: auth_pb::Action::Read.into(),
        raw,
        recursive: false,
    };
    Ok(call(move || {
        let (mut c, request) = (auth.clone(), request.clone());
        async move { c.authorize(request).await.map(drop) }
    }))
}

fn list(
    channel: &Channel,
    token: &str,
    project: &str,
    path: &str,
    raw: bool,
) -> Result<Call, BoxError> {
    let secrets =
        SecretsServiceClient::with_interceptor(channel.clone(), Bearer::new(Some(token))?);
    let request = secrets_pb::ListSecretsRequest {
        project_id: project.to_owned(),
        environment: "dev".into(),
        secret_path: path.to_owned(),
        recursive: false,
    };
    Ok(call(move || {
        let (mut c, request) = (secrets.clone(), request.clone());
        async move {
            if raw {
                c.list_secrets_raw(request).await.map(drop)
            } else {
                c.list_secrets(request).await.map(drop)
            }
        }
    }))
}

/// The secrets service as the identity token's holder.
fn writer(
    t: &Targets,
) -> Result<SecretsServiceClient<InterceptedService<Channel, Bearer>>, BoxError> {
    Ok(SecretsServiceClient::with_interceptor(
        t.secrets.clone(),
        Bearer::new(Some(&t.setup.identity_token))?,
    ))
}

fn write_request(project: &str, i: usize) -> secrets_pb::SetSecretRawRequest {
    secrets_pb::SetSecretRawRequest {
        project_id: project.to_owned(),
        environment: "dev".into(),
        secret_path: WRITES.into(),
        name: format!("W{}", i % 16),
        value: format!("value {i}"),
    }
}

/// The 16 secrets the writers write the next version of.
async fn seed_writes(t: &Targets) -> Result<(), BoxError> {
    let mut secrets = writer(t)?;
    for i in 0..16 {
        secrets
            .set_secret_raw(write_request(&t.setup.project, i))
            .await?;
    }
    Ok(())
}

fn set_raw(t: &Targets) -> Result<Call, BoxError> {
    let (secrets, project) = (writer(t)?, t.setup.project.clone());
    let next = Arc::new(AtomicUsize::new(0));
    Ok(call(move || {
        let mut c = secrets.clone();
        let request = write_request(&project, next.fetch_add(1, Ordering::Relaxed));
        async move { c.set_secret_raw(request).await.map(drop) }
    }))
}

fn patch_raw(t: &Targets) -> Call {
    let pool = http::Pool::new(&t.http_addr);
    let (token, project) = (t.setup.identity_token.clone(), t.setup.project.clone());
    let next = Arc::new(AtomicUsize::new(0));
    call(move || {
        let (pool, token) = (pool.clone(), token.clone());
        let i = next.fetch_add(1, Ordering::Relaxed);
        let target = format!("/api/v3/secrets/raw/W{}", i % 16);
        let body = serde_json::json!({
            "workspaceId": project,
            "environment": "dev",
            "secretPath": WRITES,
            "secretValue": format!("value {i}"),
        })
        .to_string();
        async move {
            pool.send(hyper::Method::PATCH, &target, &token, body.into())
                .await
        }
    })
}

fn create_token(t: &Targets) -> Result<Call, BoxError> {
    let auth = AuthServiceClient::with_interceptor(t.auth.clone(), Bearer::new(Some(&t.admin))?);
    let request = auth_pb::CreateServiceTokenRequest {
        project_id: t.setup.project.clone(),
        name: "bench".into(),
        scopes: vec![auth_pb::Scope {
            environment: "dev".into(),
            secret_path: "/**".into(),
        }],
        permissions: vec![auth_pb::Permission::Read.into()],
        expires_in_seconds: 0,
        trusted_ips: Vec::new(),
    };
    Ok(call(move || {
        let (mut c, request) = (auth.clone(), request.clone());
        async move { c.create_service_token(request).await.map(drop) }
    }))
}

/// An identity with `attach` run for it by the admin: its id.
async fn login_identity(t: &Targets) -> Result<String, BoxError> {
    let mut auth =
        AuthServiceClient::with_interceptor(t.auth.clone(), Bearer::new(Some(&t.admin))?);
    let identity = auth
        .create_identity(auth_pb::CreateIdentityRequest {
            name: "bench-login".into(),
            org_role: "member".into(),
        })
        .await?
        .into_inner()
        .identity
        .ok_or("no identity")?
        .id;
    Ok(identity)
}

async fn universal_auth_login(t: &Targets) -> Result<Call, BoxError> {
    let identity = login_identity(t).await?;
    let mut auth =
        AuthServiceClient::with_interceptor(t.auth.clone(), Bearer::new(Some(&t.admin))?);
    let client_id = auth
        .attach_universal_auth(auth_pb::AttachUniversalAuthRequest {
            identity_id: identity.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .config
        .ok_or("no config")?
        .client_id;
    let client_secret = auth
        .create_universal_auth_client_secret(auth_pb::CreateUniversalAuthClientSecretRequest {
            identity_id: identity,
            ..Default::default()
        })
        .await?
        .into_inner()
        .client_secret;
    let client = AuthServiceClient::new(t.auth.clone());
    let request = auth_pb::LoginUniversalAuthRequest {
        client_id,
        client_secret,
        client_ip: String::new(),
    };
    Ok(call(move || {
        let (mut c, request) = (client.clone(), request.clone());
        async move { c.login_universal_auth(request).await.map(drop) }
    }))
}

/// The domain's throwaway test issuer keys stand in for a cluster's.
const K8S_PRIVATE: &str =
    include_str!("../../domain/src/identity/kubernetes_auth/testdata/rsa-private.pem");
const K8S_PUBLIC: &str =
    include_str!("../../domain/src/identity/kubernetes_auth/testdata/rsa-public.pem");

async fn kubernetes_login(t: &Targets) -> Result<Call, BoxError> {
    const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
    let identity = login_identity(t).await?;
    let mut auth =
        AuthServiceClient::with_interceptor(t.auth.clone(), Bearer::new(Some(&t.admin))?);
    auth.attach_kubernetes_auth(auth_pb::AttachKubernetesAuthRequest {
        identity_id: identity.clone(),
        issuer: Some(ISSUER.into()),
        keys: Some(K8S_PUBLIC.into()),
        allowed_audiences: Some("latchkey".into()),
        ..Default::default()
    })
    .await?;
    let now = latchkey_domain::ports::Clock::now(&latchkey_domain::ports::SystemClock).timestamp();
    let claims = serde_json::json!({
        "aud": ["latchkey"], "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 3600,
        "sub": "system:serviceaccount:bench:worker",
        "kubernetes.io": {"namespace": "bench", "serviceaccount": {"name": "worker"}}
    });
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(K8S_PRIVATE.as_bytes())?,
    )?;
    let client = AuthServiceClient::new(t.auth.clone());
    let request = auth_pb::LoginKubernetesAuthRequest {
        identity_id: identity,
        jwt,
        client_ip: String::new(),
    };
    Ok(call(move || {
        let (mut c, request) = (client.clone(), request.clone());
        async move { c.login_kubernetes_auth(request).await.map(drop) }
    }))
}
