//! The secrets use cases over a fake authorizer and a real store: every call
//! is authorised before the store is touched, `NOT_FOUND` is only ever said
//! to a caller the auth service granted, and the ciphertext cache is never
//! staler than its TTL (and never stale on the replica that wrote).

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::expect_used, reason = "a broken fixture must stop the test")]

use std::sync::Arc;

use latchkey_domain::access::Form;
use latchkey_domain::crypto::{Sealed, WireKey};
use latchkey_domain::model::{Folder, ProjectId};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::ports::{AuthorizeError, BearerToken, Clock as _, Grant};
use latchkey_domain::scope::{Action, Scope, Scopes};
use latchkey_domain::{AccessError, Reason};
use latchkey_secrets_service::app::{Caller, SecretsApp};
use latchkey_secrets_service::error::SecretsError;
use latchkey_secrets_service::store::CachedSecretStore;
use latchkey_service_kit::audit::{AuditLog, CallMeta, Trail};
use latchkey_store::secrets::SecretStore;
use latchkey_test_support::{Backend, FakeAuthorizer, ManualClock, TestDb};

/// How long a replica serves a read from memory, in these tests.
const TTL_MS: i64 = 1000;

/// One database and one clock; apps over them (each a replica with its own
/// cache) with different authorizers.
struct Fixture {
    db: TestDb,
    project: ProjectId,
    key: WireKey,
    clock: Arc<ManualClock>,
}

impl Fixture {
    async fn new() -> Self {
        Self {
            db: TestDb::create(Backend::Sqlite).await.expect("sqlite"),
            project: ProjectId::generate(),
            key: WireKey::generate(&mut rand::rngs::OsRng),
            clock: Arc::new(ManualClock::new()),
        }
    }

    fn grant(&self) -> Grant {
        FakeAuthorizer::grant(&self.project, &self.key)
    }

    async fn app(&self, authorizer: FakeAuthorizer) -> (SecretsApp, Arc<FakeAuthorizer>) {
        let store = SecretStore::connect(&self.db.url).await.expect("store");
        let authorizer = Arc::new(authorizer);
        let store = CachedSecretStore::new(
            store,
            self.clock.clone(),
            chrono::Duration::milliseconds(TTL_MS),
            1 << 20,
        );
        let app = SecretsApp::new(store, authorizer.clone(), AuditLog::off());
        (app, authorizer)
    }

    async fn granting(&self) -> (SecretsApp, Arc<FakeAuthorizer>) {
        self.app(FakeAuthorizer::granting(self.grant())).await
    }
}

fn caller() -> Caller {
    Caller::new(
        BearerToken::new("st.x.y"),
        Arc::new(Trail::new(CallMeta::internal("test"), None)),
    )
}

fn folder(path: &str) -> Folder {
    Folder {
        project_id: None,
        environment: Environment::parse("dev").expect("env"),
        path: SecretPath::parse(path).expect("path"),
    }
}

fn name(n: &str) -> SecretName {
    SecretName::parse(n).expect("name")
}

fn denied() -> AccessError {
    AccessError::new(Reason::ScopeDenied, "not in the token's scopes")
}

#[tokio::test]
async fn a_denied_caller_gets_the_same_denial_for_a_secret_that_exists_and_one_that_does_not() {
    let f = Fixture::new().await;
    let (granted, _) = f.granting().await;
    granted
        .set_raw(&caller(), &folder("/"), &name("DB_URL"), "postgres://x")
        .await
        .expect("set");

    let (refused, authorizer) = f.app(FakeAuthorizer::refusing(denied())).await;
    for secret in ["DB_URL", "MISSING"] {
        let err = refused
            .get_raw(&caller(), &folder("/"), &name(secret))
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, SecretsError::Denied(e) if e.reason == Reason::ScopeDenied),
            "{secret}: {err:?}"
        );
    }
    assert_eq!(authorizer.asked().len(), 2);
}

#[tokio::test]
async fn a_refused_write_stores_nothing() {
    let f = Fixture::new().await;
    let (refused, authorizer) = f.app(FakeAuthorizer::refusing(denied())).await;
    let sealed = Sealed {
        ciphertext: vec![1; 8],
        iv: vec![0; 12],
        tag: vec![0; 16],
    };
    let set = refused
        .set(&caller(), &folder("/"), &name("K"), sealed)
        .await;
    let set_raw = refused
        .set_raw(&caller(), &folder("/"), &name("K"), "v")
        .await;
    assert!(matches!(set, Err(SecretsError::Denied(_))), "{set:?}");
    assert!(
        matches!(set_raw, Err(SecretsError::Denied(_))),
        "{set_raw:?}"
    );
    let asked = authorizer.asked();
    assert_eq!(asked.len(), 2);
    assert!(asked.iter().all(|r| r.action == Action::Write));

    let (reader, _) = f.granting().await;
    let (_, listed) = reader
        .list(&caller(), &folder("/"), true)
        .await
        .expect("list");
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn not_found_comes_only_after_a_grant() {
    let f = Fixture::new().await;
    let (app, authorizer) = f.granting().await;
    let get = app.get(&caller(), &folder("/"), &name("MISSING")).await;
    assert!(matches!(get, Err(SecretsError::NotFound(_))), "{get:?}");
    let delete = app.delete(&caller(), &folder("/"), &name("MISSING")).await;
    assert!(
        matches!(delete, Err(SecretsError::NotFound(_))),
        "{delete:?}"
    );
    assert_eq!(authorizer.asked().len(), 2);
}

#[tokio::test]
async fn the_authorizer_is_asked_about_exactly_the_folder_and_kind_of_call() {
    let f = Fixture::new().await;
    let (app, authorizer) = f.granting().await;
    let named = Folder {
        project_id: Some(f.project.clone()),
        ..folder("/a/b")
    };
    app.list_raw(&caller(), &named, true).await.expect("list");
    let _ = app.get(&caller(), &folder("/"), &name("K")).await;
    let asked = authorizer.asked();
    assert_eq!(asked[0].project_id, Some(f.project.clone()));
    assert_eq!(asked[0].path.as_str(), "/a/b");
    assert!(asked[0].form == Form::Raw && asked[0].recursive && asked[0].action == Action::Read);
    assert_eq!(asked[1].project_id, None);
    assert!(asked[1].form == Form::Sealed && !asked[1].recursive);
}

#[tokio::test]
async fn raw_reads_decrypt_under_the_grants_key_and_skip_folders_outside_the_scopes() {
    let f = Fixture::new().await;
    let (writer, _) = f.granting().await;
    for path in ["/", "/app", "/other"] {
        writer
            .set_raw(&caller(), &folder(path), &name("K"), &format!("v{path}"))
            .await
            .expect("set");
    }
    let mut grant = f.grant();
    grant.scopes = Scopes::new(vec![
        Scope::new("dev", "/").expect("scope"),
        Scope::new("dev", "/app/**").expect("scope"),
    ]);
    let (reader, _) = f.app(FakeAuthorizer::granting(grant)).await;
    let (_, plain) = reader
        .list_raw(&caller(), &folder("/"), true)
        .await
        .expect("list");
    let mut seen: Vec<_> = plain
        .iter()
        .map(|p| (p.secret.key.path.as_str().to_owned(), p.value.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("/".to_owned(), "v/".to_owned()),
            ("/app".to_owned(), "v/app".to_owned())
        ]
    );
}

/// A write-only token must not be able to break everyone's reads: where
/// the server may hold the project key, a client envelope that does not
/// open at its own location is refused, and stores nothing.
#[tokio::test]
async fn a_client_envelope_that_does_not_open_at_its_location_is_refused_where_there_is_no_e2ee() {
    let f = Fixture::new().await;
    let (app, authorizer) = f.granting().await;
    let garbage = Sealed {
        ciphertext: vec![1; 8],
        iv: vec![0; 12],
        tag: vec![0; 16],
    };
    let err = app
        .set(&caller(), &folder("/team-a"), &name("K"), garbage)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, SecretsError::Invalid(e) if e.field == "ciphertext"),
        "{err:?}"
    );
    // Sealed for another name: it would not open where it is stored.
    let elsewhere = f
        .key
        .seal(
            b"v",
            &latchkey_domain::crypto::secret_aad(f.project.as_str(), "dev", "/team-a", "OTHER"),
            &mut rand::rngs::OsRng,
        )
        .expect("seal");
    let err = app
        .set(&caller(), &folder("/team-a"), &name("K"), elsewhere)
        .await
        .expect_err("refused");
    assert!(matches!(&err, SecretsError::Invalid(_)), "{err:?}");
    assert!(
        authorizer
            .asked()
            .iter()
            .all(|r| r.form == Form::Raw && r.action == Action::Write)
    );
    let (_, listed) = app.list(&caller(), &folder("/"), true).await.expect("list");
    assert!(listed.is_empty(), "{listed:?}");
}

/// A project with e2ee grants no key: the envelope is stored as the client
/// sealed it, after a second, non-raw authorization.
#[tokio::test]
async fn on_an_e2ee_project_a_client_envelope_is_stored_unopened() {
    let f = Fixture::new().await;
    let mut grant = f.grant();
    grant.project_key = None;
    let (app, authorizer) = f
        .app(FakeAuthorizer::refusing_raw(
            grant,
            AccessError::new(Reason::E2eeEnabled, "e2ee"),
        ))
        .await;
    let opaque = Sealed {
        ciphertext: vec![1; 8],
        iv: vec![0; 12],
        tag: vec![0; 16],
    };
    app.set(&caller(), &folder("/"), &name("K"), opaque)
        .await
        .expect("stored");
    let asked: Vec<Form> = authorizer.asked().iter().map(|r| r.form).collect();
    assert_eq!(asked, [Form::Raw, Form::Sealed]);
}

/// One stored row that does not decrypt is left out of raw listings; the
/// rest are served.
#[tokio::test]
async fn a_row_that_does_not_decrypt_is_left_out_of_raw_listings_never_failing_them() {
    let f = Fixture::new().await;
    let (app, _) = f.granting().await;
    write(&app, "/team-a", "GOOD", "fine").await;
    write(&app, "/team-b", "ALSO_GOOD", "fine too").await;
    // Damaged in the database (or written before envelopes were checked).
    let store = SecretStore::connect(&f.db.url).await.expect("store");
    let damaged = latchkey_domain::model::SecretKey {
        project_id: f.project.clone(),
        environment: Environment::parse("dev").expect("env"),
        path: SecretPath::parse("/team-a").expect("path"),
        name: name("BAD"),
    };
    let garbage = Sealed {
        ciphertext: vec![1; 8],
        iv: vec![0; 12],
        tag: vec![0; 16],
    };
    store
        .put(&damaged, garbage, f.clock.now())
        .await
        .expect("put");
    f.clock.advance(chrono::Duration::milliseconds(TTL_MS));

    let mut values = listed(&app, "/", true).await;
    values.sort();
    assert_eq!(values, ["fine", "fine too"]);
}

#[tokio::test]
async fn an_auth_service_that_cannot_decide_fails_the_call_closed() {
    let f = Fixture::new().await;
    let down = AuthorizeError::Denied(AccessError::new(Reason::AuthUnavailable, "down"));
    let (app, _) = f.app(FakeAuthorizer::refusing(down)).await;
    let err = app
        .get_raw(&caller(), &folder("/"), &name("K"))
        .await
        .expect_err("closed");
    assert!(
        matches!(&err, SecretsError::Denied(e) if e.reason == Reason::AuthUnavailable),
        "{err:?}"
    );
}

async fn read(app: &SecretsApp, path: &str, secret: &str) -> Option<String> {
    match app.get_raw(&caller(), &folder(path), &name(secret)).await {
        Ok((_, plain)) => Some(plain.value),
        Err(SecretsError::NotFound(_)) => None,
        Err(e) => panic!("get {path}/{secret}: {e:?}"),
    }
}

async fn write(app: &SecretsApp, path: &str, secret: &str, value: &str) {
    app.set_raw(&caller(), &folder(path), &name(secret), value)
        .await
        .expect("set");
}

async fn listed(app: &SecretsApp, path: &str, recursive: bool) -> Vec<String> {
    let (_, plain) = app
        .list_raw(&caller(), &folder(path), recursive)
        .await
        .expect("list");
    plain.into_iter().map(|p| p.value).collect()
}

#[tokio::test]
async fn the_replica_that_wrote_never_serves_what_it_replaced_or_deleted() {
    let f = Fixture::new().await;
    let (app, _) = f.granting().await;
    write(&app, "/app", "K", "v1").await;
    // Fill every kind of entry that the next write can change.
    assert_eq!(read(&app, "/app", "K").await.as_deref(), Some("v1"));
    assert_eq!(listed(&app, "/app", false).await, ["v1"]);
    assert_eq!(listed(&app, "/", true).await, ["v1"]);

    write(&app, "/app", "K", "v2").await;
    assert_eq!(read(&app, "/app", "K").await.as_deref(), Some("v2"));
    assert_eq!(listed(&app, "/app", false).await, ["v2"]);
    assert_eq!(listed(&app, "/", true).await, ["v2"]);

    app.delete(&caller(), &folder("/app"), &name("K"))
        .await
        .expect("delete");
    assert_eq!(read(&app, "/app", "K").await, None);
    assert!(listed(&app, "/app", false).await.is_empty());
    assert!(listed(&app, "/", true).await.is_empty());

    // A cached "not found" goes too when the secret is created.
    write(&app, "/app", "K", "v3").await;
    assert_eq!(read(&app, "/app", "K").await.as_deref(), Some("v3"));
}

#[tokio::test]
async fn another_replicas_write_and_delete_are_read_here_within_the_ttl() {
    let f = Fixture::new().await;
    let (writer, _) = f.granting().await;
    let (reader, _) = f.granting().await;
    writer
        .set_raw(&caller(), &folder("/"), &name("K"), "v1")
        .await
        .expect("set");
    assert_eq!(read(&reader, "/", "K").await.as_deref(), Some("v1"));
    assert_eq!(listed(&reader, "/", false).await, ["v1"]);

    writer
        .set_raw(&caller(), &folder("/"), &name("K"), "v2")
        .await
        .expect("set");
    f.clock.advance(chrono::Duration::milliseconds(TTL_MS - 1));
    // Served from memory until the TTL (so this test sees the cache at work)...
    assert_eq!(read(&reader, "/", "K").await.as_deref(), Some("v1"));
    assert_eq!(listed(&reader, "/", false).await, ["v1"]);
    f.clock.advance(chrono::Duration::milliseconds(1));
    // ...and never after it.
    assert_eq!(read(&reader, "/", "K").await.as_deref(), Some("v2"));
    assert_eq!(listed(&reader, "/", false).await, ["v2"]);

    writer
        .delete(&caller(), &folder("/"), &name("K"))
        .await
        .expect("delete");
    f.clock.advance(chrono::Duration::milliseconds(TTL_MS));
    assert_eq!(read(&reader, "/", "K").await, None, "deleted");
    assert!(listed(&reader, "/", false).await.is_empty());
}

#[tokio::test]
async fn a_zero_ttl_reads_the_database_on_every_call() {
    let f = Fixture::new().await;
    let (writer, _) = f.granting().await;
    let store = SecretStore::connect(&f.db.url).await.expect("store");
    let uncached = SecretsApp::new(
        CachedSecretStore::new(store, f.clock.clone(), chrono::Duration::zero(), 1 << 20),
        Arc::new(FakeAuthorizer::granting(f.grant())),
        AuditLog::off(),
    );
    for value in ["v1", "v2"] {
        writer
            .set_raw(&caller(), &folder("/"), &name("K"), value)
            .await
            .expect("set");
        assert_eq!(read(&uncached, "/", "K").await.as_deref(), Some(value));
    }
}
