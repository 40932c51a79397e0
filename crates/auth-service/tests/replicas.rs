//! Two real `latchkey-auth` processes sharing one PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_test_support::{Backend, TestDb, with_token};
use tonic_types::StatusExt;

const INTERNAL_KEY: &str = "replica-test-internal-key-0123456789";

/// A running `latchkey-auth` process, killed on drop.
struct Replica {
    child: Child,
    url: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary and waits for the line it logs once it listens.
fn start_replica(db_url: &str, data_dir: &std::path::Path) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey-auth"))
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_INTERNAL_KEY", INTERNAL_KEY)
        .env("LATCHKEY_AUTH_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .expect("latchkey-auth exited before listening")
            .unwrap();
        if line.contains("latchkey-auth listening") {
            break;
        }
    }
    // Keep draining the log so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Replica {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn authorize(url: &str, token: &str, project: &str) -> Result<(), tonic::Status> {
    let mut client = AuthServiceClient::connect(url.to_owned()).await.unwrap();
    let mut request = tonic::Request::new(auth_pb::AuthorizeRequest {
        token: token.to_owned(),
        client_ip: "127.0.0.1".into(),
        project_id: project.to_owned(),
        environment: "dev".into(),
        secret_path: "/".into(),
        action: auth_pb::Action::Read.into(),
        raw: false,
        recursive: false,
    });
    request
        .metadata_mut()
        .insert("x-latchkey-internal-key", INTERNAL_KEY.parse().unwrap());
    client.authorize(request).await.map(drop)
}

/// Sets up a project and an identity with `limit` uses through `url`; returns (project, token).
async fn limited_identity(url: &str, admin: &str, limit: i64) -> (String, String) {
    let mut auth = AuthServiceClient::connect(url.to_owned()).await.unwrap();
    let project = auth
        .create_project(with_token(
            auth_pb::CreateProjectRequest {
                name: "p".into(),
                e2ee: false,
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap()
        .id;
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

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
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
        tokio::spawn(async move { authorize(&url, &token, &project).await })
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
    authorize(&second.url, &token, &project).await.unwrap();

    AuthServiceClient::connect(first.url.clone())
        .await
        .unwrap()
        .revoke_access_token(auth_pb::RevokeAccessTokenRequest {
            access_token: token.clone(),
            token_id: String::new(),
        })
        .await
        .unwrap();

    // The other process may answer from its cached row for up to the bound
    // (LATCHKEY_STATE_CACHE_MILLIS, default 1 s); poll a little past it.
    let started = std::time::Instant::now();
    let status = loop {
        match authorize(&second.url, &token, &project).await {
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
