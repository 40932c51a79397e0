//! The repositories on SQLite and PostgreSQL.

#![expect(
    clippy::disallowed_methods,
    reason = "fixture timestamps; no Clock is under test here"
)]
#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

use chrono::{Duration, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{
    AccessTokenId, IdentityId, NewProject, ProjectId, SecretKey, ServiceToken, ServiceTokenId,
    WriteMode,
};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::scope::{Permissions, Scope, Scopes};
use latchkey_store::StoreError;
use latchkey_store::auth::AuthStore;
use latchkey_store::secrets::SecretStore;
use latchkey_test_support::{Backend, TestDb, backend_tests};

backend_tests!(
    migrations_are_idempotent_across_restarts,
    concurrent_writes_of_one_secret_get_distinct_versions,
    sixty_four_writers_over_two_connections_pools_all_succeed,
    a_write_that_fails_among_concurrent_writes_fails_alone,
    concurrent_creates_of_one_name_let_exactly_one_through,
    recursive_listing_treats_like_wildcards_and_case_literally,
    deleting_a_secret_removes_it_and_reports_absence,
    create_only_and_update_only_writes_refuse_without_changing_anything,
    revoked_token_keeps_its_hash_but_loses_its_key_copy,
    reaper_removes_expired_and_long_revoked_tokens_only,
    reaper_removes_long_expired_and_long_revoked_access_tokens_only,
    duplicate_environment_is_a_conflict,
    corrupt_limits_and_permissions_fail_closed,
);

fn sealed(byte: u8) -> Sealed {
    Sealed {
        ciphertext: vec![byte; 8],
        iv: vec![1; 12],
        tag: vec![2; 16],
    }
}

fn p1() -> ProjectId {
    ProjectId::from_stored("p1".to_owned())
}

fn key(path: &str, name: &str) -> SecretKey {
    SecretKey {
        project_id: p1(),
        environment: Environment::parse("dev").unwrap(),
        path: SecretPath::parse(path).unwrap(),
        name: SecretName::parse(name).unwrap(),
    }
}

async fn project(store: &AuthStore) -> ProjectId {
    let id = ProjectId::generate();
    store
        .insert_project(NewProject {
            id: id.clone(),
            name: "p".into(),
            e2ee: false,
            wrapped_key: sealed(0),
            environments: vec![(Environment::parse("dev").unwrap(), "Development".into())],
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    id
}

fn token(project_id: &ProjectId, expires_in: Option<i64>) -> ServiceToken {
    let now = Utc::now();
    ServiceToken {
        id: ServiceTokenId::generate(),
        project_id: project_id.clone(),
        name: "t".into(),
        secret_hash: "$argon2id$hash".into(),
        scopes: Scopes::new(vec![Scope::new("dev", "/**").unwrap()]),
        permissions: Permissions {
            read: true,
            write: false,
        },
        trusted_ips: TrustedIps::parse(&["10.0.0.0/8"], "t").unwrap(),
        expires_at: expires_in.map(|s| now + Duration::seconds(s)),
        active: true,
        revoked_at: None,
        encrypted_project_key: sealed(9),
        use_count: 0,
        last_used_at: None,
        created_at: now,
    }
}

async fn migrations_are_idempotent_across_restarts(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let first = SecretStore::connect(&db.url).await.unwrap();
    first
        .put(&key("/", "A"), sealed(1), Utc::now())
        .await
        .unwrap();

    let again = SecretStore::connect(&db.url).await.unwrap();

    assert_eq!(again.get(&key("/", "A")).await.unwrap().unwrap().version, 1);
    let Some(auth_db) = TestDb::create(backend).await else {
        return;
    };
    AuthStore::connect(&auth_db.url).await.unwrap();
    AuthStore::connect(&auth_db.url).await.unwrap();
}

async fn concurrent_writes_of_one_secret_get_distinct_versions(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = SecretStore::connect(&db.url).await.unwrap();
    let k = key("/app", "K");

    let writes = (0..6u8).map(|i| {
        let (store, k) = (store.clone(), k.clone());
        tokio::spawn(async move { store.put(&k, sealed(i), Utc::now()).await })
    });
    let mut versions = Vec::new();
    for w in writes {
        versions.push(w.await.unwrap().unwrap().version);
    }

    versions.sort_unstable();
    assert_eq!(
        versions,
        [1, 2, 3, 4, 5, 6],
        "every writer landed with its own version"
    );
    assert_eq!(store.get(&k).await.unwrap().unwrap().version, 6);
}

/// One write the database refuses (a trigger stands in for a full disk or
/// a broken row) among 32 concurrent ones, committed together on SQLite:
/// it fails, the others are written, and nothing of it is left.
async fn a_write_that_fails_among_concurrent_writes_fails_alone(backend: Backend) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = SecretStore::connect(&db.url).await.unwrap();
    let raw = sea_orm::Database::connect(&db.url).await.unwrap();
    let refuse = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON secret_versions \
             WHEN (SELECT name FROM secrets WHERE id = NEW.secret_id) = 'POISON' \
             BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF (SELECT name FROM secrets WHERE id = NEW.secret_id) = 'POISON' THEN \
             RAISE EXCEPTION 'poison refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON secret_versions \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ],
    };
    for statement in refuse {
        raw.execute_unprepared(statement).await.unwrap();
    }
    store
        .put(&key("/b", "KEPT"), sealed(1), Utc::now())
        .await
        .unwrap();
    // Another process holds SQLite's write lock while the writes queue, so
    // they are committed together once it lets go.
    let lock = raw.begin().await.unwrap();
    if backend == Backend::Sqlite {
        lock.execute_unprepared("UPDATE secrets SET version = version WHERE 0")
            .await
            .unwrap();
    }

    let writes = (0..32u8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = if n == 16 {
                    "POISON".to_owned()
                } else {
                    format!("K{n}")
                };
                store.put(&key("/b", &name), sealed(n), Utc::now()).await
            })
        })
        .collect::<Vec<_>>();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    lock.commit().await.unwrap();
    let mut failed = Vec::new();
    for (n, write) in writes.into_iter().enumerate() {
        if write.await.unwrap().is_err() {
            failed.push(n);
        }
    }

    assert_eq!(failed, vec![16], "only the refused write fails");
    assert!(store.get(&key("/b", "POISON")).await.unwrap().is_none());
    for n in (0..32u8).filter(|n| *n != 16) {
        let written = store
            .get(&key("/b", &format!("K{n}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((written.version, written.sealed), (1, sealed(n)));
    }
    assert_eq!(
        store
            .get(&key("/b", "KEPT"))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

/// Writes queue instead of failing: 64 writers, half through a second
/// store (as a second process would be, so SQLite's own lock arbitrates
/// between them), each reading then writing secrets others write too.
async fn sixty_four_writers_over_two_connections_pools_all_succeed(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let stores = [
        SecretStore::connect(&db.url).await.unwrap(),
        SecretStore::connect(&db.url).await.unwrap(),
    ];
    let writers = (0..64u8).map(|w| {
        let store = stores[usize::from(w % 2)].clone();
        tokio::spawn(async move {
            for n in 0..10u8 {
                let k = key("/load", &format!("K{}", (w + n) % 8));
                store.put(&k, sealed(n), Utc::now()).await?;
            }
            Ok::<_, StoreError>(())
        })
    });
    let mut failures = Vec::new();
    for writer in writers {
        if let Err(e) = writer.await.unwrap() {
            failures.push(e.to_string());
        }
    }

    assert!(
        failures.is_empty(),
        "{} writes failed: {failures:?}",
        failures.len()
    );
    let listed = stores[0]
        .list(
            &p1(),
            &Environment::parse("dev").unwrap(),
            &SecretPath::parse("/load").unwrap(),
            false,
        )
        .await
        .unwrap();
    let total: u64 = listed.iter().map(|s| s.version).sum();
    assert_eq!(total, 640, "every write landed as its own version");
}

/// Writes committed together still succeed or fail alone: of 16
/// concurrent create-only writes of one name exactly one lands, and the
/// others' refusals change nothing.
async fn concurrent_creates_of_one_name_let_exactly_one_through(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = SecretStore::connect(&db.url).await.unwrap();
    let k = key("/race", "ONCE");
    let creates = (0..16u8).map(|i| {
        let (store, k) = (store.clone(), k.clone());
        tokio::spawn(async move {
            store
                .put_as(&k, sealed(i), Utc::now(), WriteMode::CreateOnly)
                .await
        })
    });
    let mut landed = Vec::new();
    for create in creates {
        match create.await.unwrap() {
            Ok(Some(secret)) => landed.push(secret),
            Ok(None) | Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(landed.len(), 1, "exactly one create lands");
    let stored = store.get(&k).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.sealed, landed[0].sealed);
}

async fn recursive_listing_treats_like_wildcards_and_case_literally(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = SecretStore::connect(&db.url).await.unwrap();
    for path in ["/a_b", "/a_b/c", "/axb", "/A_B", "/a%", "/a%/x", "/abc"] {
        store
            .put(&key(path, "K"), sealed(1), Utc::now())
            .await
            .unwrap();
    }
    let dev = Environment::parse("dev").unwrap();
    let list = |path: &'static str| {
        let (store, dev) = (store.clone(), dev.clone());
        async move {
            store
                .list(&p1(), &dev, &SecretPath::parse(path).unwrap(), true)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.key.path.as_str().to_owned())
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(list("/a_b").await, ["/a_b", "/a_b/c"]);
    assert_eq!(list("/a%").await, ["/a%", "/a%/x"]);
    assert_eq!(list("/").await.len(), 7);
    let flat = store
        .list(&p1(), &dev, &SecretPath::parse("/a_b").unwrap(), false)
        .await
        .unwrap();
    assert_eq!(flat.len(), 1);
}

async fn create_only_and_update_only_writes_refuse_without_changing_anything(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = SecretStore::connect(&db.url).await.unwrap();
    let k = key("/", "A");
    let missing = store
        .put_as(&k, sealed(1), Utc::now(), WriteMode::UpdateOnly)
        .await
        .unwrap();
    assert!(missing.is_none());
    assert!(
        store.get(&k).await.unwrap().is_none(),
        "nothing was created"
    );

    let created = store
        .put_as(&k, sealed(2), Utc::now(), WriteMode::CreateOnly)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.version, 1);
    let twice = store
        .put_as(&k, sealed(3), Utc::now(), WriteMode::CreateOnly)
        .await
        .unwrap();
    assert!(twice.is_none());
    assert_eq!(
        store.get(&k).await.unwrap().unwrap().sealed,
        sealed(2),
        "unchanged"
    );

    let updated = store
        .put_as(&k, sealed(4), Utc::now(), WriteMode::UpdateOnly)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.version, 2);
    // PostgreSQL keeps microseconds: the creation time stays, to that precision.
    assert_eq!(
        (updated.created_at - created.created_at).num_milliseconds(),
        0
    );
}

async fn deleting_a_secret_removes_it_and_reports_absence(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = SecretStore::connect(&db.url).await.unwrap();
    store
        .put(&key("/", "A"), sealed(1), Utc::now())
        .await
        .unwrap();
    store
        .put(&key("/", "A"), sealed(2), Utc::now())
        .await
        .unwrap();

    assert!(store.delete(&key("/", "A")).await.unwrap().is_some());

    assert!(store.get(&key("/", "A")).await.unwrap().is_none());
    assert!(store.delete(&key("/", "A")).await.unwrap().is_none());
    let again = store
        .put(&key("/", "A"), sealed(3), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.version, 1, "history went with the secret");
}

async fn revoked_token_keeps_its_hash_but_loses_its_key_copy(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = AuthStore::connect(&db.url).await.unwrap();
    let p = project(&store).await;
    let t = token(&p, None);
    store.insert_service_token(&t).await.unwrap();
    assert_eq!(
        store
            .service_token(&t.id)
            .await
            .unwrap()
            .unwrap()
            .trusted_ips,
        t.trusted_ips
    );

    assert!(store.revoke_service_token(&t.id, Utc::now()).await.unwrap());

    let after = store.service_token(&t.id).await.unwrap().unwrap();
    assert!(after.revoked_at.is_some());
    assert_eq!(after.secret_hash, t.secret_hash);
    assert!(after.encrypted_project_key.ciphertext.is_empty());
    assert!(store.service_tokens(&p).await.unwrap().is_empty());
    assert!(
        !store.revoke_service_token(&t.id, Utc::now()).await.unwrap(),
        "already revoked"
    );
    assert!(
        !store.set_service_token_active(&t.id, false).await.unwrap(),
        "revoked tokens stay revoked"
    );
}

async fn reaper_removes_expired_and_long_revoked_tokens_only(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = AuthStore::connect(&db.url).await.unwrap();
    let p = project(&store).await;
    let (expired, live, forever, revoked) = (
        token(&p, Some(-1)),
        token(&p, Some(3600)),
        token(&p, None),
        token(&p, None),
    );
    for t in [&expired, &live, &forever, &revoked] {
        store.insert_service_token(t).await.unwrap();
    }
    store
        .revoke_service_token(&revoked.id, Utc::now() - Duration::days(8))
        .await
        .unwrap();

    let reaped = store
        .reap_service_tokens(Utc::now(), Utc::now() - Duration::days(7))
        .await
        .unwrap();

    assert_eq!(reaped, 2);
    assert!(store.service_token(&expired.id).await.unwrap().is_none());
    assert!(store.service_token(&revoked.id).await.unwrap().is_none());
    assert!(store.service_token(&live.id).await.unwrap().is_some());
    assert!(store.service_token(&forever.id).await.unwrap().is_some());
}

async fn duplicate_environment_is_a_conflict(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = AuthStore::connect(&db.url).await.unwrap();
    let p = project(&store).await;
    let dev = Environment::parse("dev").unwrap();

    let err = store
        .insert_environment(&p, &dev, "Dev again", Utc::now())
        .await
        .unwrap_err();

    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        store.project(&p).await.unwrap().unwrap().environments.len(),
        1
    );
}

async fn reaper_removes_long_expired_and_long_revoked_access_tokens_only(backend: Backend) {
    use latchkey_domain::identity::OrgRole;
    use latchkey_domain::model::{AccessToken, Identity};
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = AuthStore::connect(&db.url).await.unwrap();
    let now = Utc::now();
    let identity = Identity {
        id: IdentityId::generate(),
        name: "i".into(),
        org_role: OrgRole::Member,
        created_at: now,
    };
    let access = |expires_in_days: Option<i64>| AccessToken {
        id: AccessTokenId::generate(),
        identity_id: identity.id.clone(),
        name: "a".into(),
        secret_hash: Some("$argon2id$hash".into()),
        expires_at: expires_in_days.map(|d| now + Duration::days(d)),
        revoked_at: None,
        use_count: 0,
        num_uses_limit: 0,
        ttl_seconds: 60,
        max_ttl_seconds: 60,
        trusted_ips: TrustedIps::default(),
        last_used_at: None,
        created_at: now - Duration::days(30),
    };
    let (long_expired, just_expired, live, forever, long_revoked, just_revoked) = (
        access(Some(-8)),
        access(Some(-1)),
        access(Some(1)),
        access(None),
        access(Some(1)),
        access(Some(1)),
    );
    store
        .insert_identity_with_token(&identity, &long_expired)
        .await
        .unwrap();
    for t in [&just_expired, &live, &forever, &long_revoked, &just_revoked] {
        store.insert_identity_token(t).await.unwrap();
    }
    store
        .revoke_identity_token(&long_revoked.id, now - Duration::days(8))
        .await
        .unwrap();
    store
        .revoke_identity_token(&just_revoked.id, now - Duration::days(1))
        .await
        .unwrap();

    let week_ago = now - Duration::days(7);
    let reaped = store
        .reap_identity_tokens(week_ago, week_ago)
        .await
        .unwrap();

    assert_eq!(reaped, 2);
    for gone in [&long_expired, &long_revoked] {
        assert!(store.identity_token(&gone.id).await.unwrap().is_none());
    }
    for kept in [&just_expired, &live, &forever, &just_revoked] {
        assert!(store.identity_token(&kept.id).await.unwrap().is_some());
    }
}

async fn corrupt_limits_and_permissions_fail_closed(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = AuthStore::connect(&db.url).await.unwrap();
    let p = project(&store).await;
    let t = token(&p, None);
    store.insert_service_token(&t).await.unwrap();
    let raw = sea_orm::Database::connect(&db.url).await.unwrap();

    raw.execute_unprepared("UPDATE service_tokens SET permissions = 'read,admin'")
        .await
        .unwrap();
    let unknown_permission = store.service_token(&t.id).await.unwrap_err();
    raw.execute_unprepared("UPDATE service_tokens SET permissions = 'read', use_count = -1")
        .await
        .unwrap();
    let negative_count = store.service_token(&t.id).await.unwrap_err();

    assert!(
        matches!(&unknown_permission, StoreError::Corrupt(m) if m.contains("admin")),
        "{unknown_permission}"
    );
    assert!(
        matches!(&negative_count, StoreError::Corrupt(m) if m.contains("use_count")),
        "{negative_count}"
    );
}
