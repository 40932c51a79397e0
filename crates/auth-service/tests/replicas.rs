//! Two real `latchkey-auth` processes sharing one PostgreSQL database.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_test_support::{
    AuthorizeCall, Backend, ServiceProcess, TestDb, create_project_with, free_port, reason,
    with_token,
};

const INTERNAL_KEY: &str = "replica-test-internal-key-0123456789";

/// A running `latchkey-auth` process, killed on drop.
struct Replica {
    _process: ServiceProcess,
    url: String,
}

/// Starts the real binary and waits until it listens.
const ROOT_KEY: &str = "5c3f0e2d4b6a79881726354453627180a9b8c7d6e5f4031201f0e1d2c3b4a596";

fn start_replica(db_url: &str, data_dir: &std::path::Path) -> Replica {
    let addr = format!("127.0.0.1:{}", free_port());
    let process = ServiceProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_latchkey-auth")),
        &[
            ("DATABASE_URL", db_url),
            ("LATCHKEY_DATA_DIR", data_dir.to_str().unwrap()),
            ("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY),
            // Replicas share the root key: it signs access tokens and wraps project keys.
            ("LATCHKEY_ROOT_KEY", ROOT_KEY),
            ("LATCHKEY_AUTH_ADDR", addr.as_str()),
        ],
    );
    Replica {
        _process: process,
        url: format!("http://{addr}"),
    }
}

/// Sets up a project and an identity with `limit` uses through `url`; returns (project, token).
async fn limited_identity(url: &str, admin: &str, limit: i64) -> (String, String) {
    let mut auth = AuthServiceClient::connect(url.to_owned()).await.unwrap();
    let project = create_project_with(&mut auth, admin, false).await;
    let identity = auth
        .create_identity(with_token(
            auth_pb::CreateIdentityRequest {
                name: "w".into(),
                org_role: "member".into(),
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .identity
        .unwrap()
        .id;
    auth.attach_token_auth(with_token(
        auth_pb::AttachTokenAuthRequest {
            identity_id: identity.clone(),
            access_token_num_uses_limit: Some(limit),
            ..Default::default()
        },
        admin,
    ))
    .await
    .unwrap();
    auth.add_identity_to_project(with_token(
        auth_pb::AddIdentityToProjectRequest {
            project_id: project.clone(),
            identity_id: identity.clone(),
            role: "viewer".into(),
            scopes: Vec::new(),
        },
        admin,
    ))
    .await
    .unwrap();
    let token = auth
        .create_identity_access_token(with_token(
            auth_pb::CreateIdentityAccessTokenRequest {
                identity_id: identity,
                name: String::new(),
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    (project, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_allow_exactly_the_use_limit() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = start_replica(&db.url, dir.path());
    let second = start_replica(&db.url, dir.path());
    let admin = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let (project, token) = limited_identity(&first.url, &admin, 50).await;

    let calls = (0..200).map(|i| {
        let url = if i % 2 == 0 {
            first.url.clone()
        } else {
            second.url.clone()
        };
        let (token, project) = (token.clone(), project.clone());
        tokio::spawn(async move {
            AuthorizeCall::new(&url, INTERNAL_KEY, &token)
                .project(&project)
                .send()
                .await
                .map(drop)
        })
    });
    let (mut allowed, mut exhausted) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => allowed += 1,
            Err(status) => {
                assert_eq!(reason(&status), "TOKEN_USES_EXHAUSTED", "{status:?}");
                exhausted += 1;
            }
        }
    }

    assert_eq!((allowed, exhausted), (50, 150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_through_one_process_is_honoured_by_the_other_within_the_bound() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = start_replica(&db.url, dir.path());
    let second = start_replica(&db.url, dir.path());
    let admin = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let (project, token) = limited_identity(&first.url, &admin, 0).await;
    AuthorizeCall::new(&second.url, INTERNAL_KEY, &token)
        .project(&project)
        .send()
        .await
        .map(drop)
        .unwrap();

    AuthServiceClient::connect(first.url.clone())
        .await
        .unwrap()
        .revoke_access_token(auth_pb::RevokeAccessTokenRequest {
            access_token: token.clone(),
            token_id: String::new(),
            client_ip: String::new(),
        })
        .await
        .unwrap();

    // The other process may answer from its cached row for up to the bound
    // (LATCHKEY_STATE_CACHE_MILLIS, default 1 s); poll a little past it.
    let started = std::time::Instant::now();
    let status = loop {
        match AuthorizeCall::new(&second.url, INTERNAL_KEY, &token)
            .project(&project)
            .send()
            .await
            .map(drop)
        {
            Err(status) => break status,
            Ok(()) if started.elapsed() < std::time::Duration::from_millis(1500) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok(()) => panic!("still allowed {:?} after revocation", started.elapsed()),
        }
    };
    assert_eq!(reason(&status), "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_an_empty_database_migrate_once_and_make_one_admin() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();

    // Three processes at the same moment, each with its own data directory.
    let replicas: Vec<Replica> = std::thread::scope(|scope| {
        let starting: Vec<_> = dirs
            .iter()
            .map(|dir| scope.spawn(|| start_replica(&db.url, dir.path())))
            .collect();
        starting.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let admins: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.path().join("admin-token")).ok())
        .collect();
    assert_eq!(admins.len(), 1, "exactly one replica bootstraps the admin");
    for replica in &replicas {
        let listed = AuthServiceClient::connect(replica.url.clone())
            .await
            .unwrap()
            .list_projects(with_token(
                auth_pb::ListProjectsRequest {},
                admins[0].trim(),
            ))
            .await;
        assert!(listed.is_ok(), "{}: {listed:?}", replica.url);
    }
}
