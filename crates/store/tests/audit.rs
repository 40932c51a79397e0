//! The audit table on SQLite and PostgreSQL, in both services' databases.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

use chrono::{DateTime, Duration, Utc};
use latchkey_domain::audit::chain::{ChainVerifier, ChainWriter, Chained, Start};
use latchkey_domain::audit::{AuditEvent, AuditKey, Outcome, SecretRef, Transport};
use latchkey_domain::crypto::RootKey;
use latchkey_store::StoreError;
use latchkey_store::audit::{AuditQuery, AuditStore};
use latchkey_store::auth::AuthStore;
use latchkey_store::secrets::SecretStore;
use latchkey_test_support::{Backend, TestDb, backend_tests};

backend_tests!(
    appended_events_read_back_exactly_and_their_chain_verifies,
    listings_filter_and_page_newest_first,
    a_batch_that_fails_stores_none_of_its_events,
    each_replica_is_its_own_chain,
    reaping_leaves_a_sealed_checkpoint_from_which_the_rest_verifies,
    the_query_matcher_keeps_what_the_database_listing_keeps,
);

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 123_456_000).unwrap()
}

fn key() -> AuditKey {
    AuditKey::derive(&RootKey::from_hex(&"ab".repeat(32)).unwrap())
}

fn event(n: u64, project: &str, principal: &str) -> AuditEvent {
    let mut e = AuditEvent::new(
        "secret.read",
        t0() + Duration::seconds(n as i64),
        Transport::Http,
    )
    .with_user_agent("infisical-python/1.0");
    e.outcome = if n.is_multiple_of(3) {
        Outcome::Denied
    } else {
        Outcome::Allowed
    };
    e.reason = if n.is_multiple_of(3) {
        "SCOPE_DENIED".into()
    } else {
        String::new()
    };
    e.principal = principal.to_owned();
    e.token_hmac = format!("{n:064x}");
    e.project_id = project.to_owned();
    e.environment = "dev".into();
    e.path = "/app".into();
    e.secrets = vec![
        SecretRef {
            name: format!("S{n}"),
            version: Some(n),
        },
        SecretRef {
            name: "100%_sure".into(),
            version: None,
        },
    ];
    e.client_ip = "192.0.2.7".into();
    e.forwarded_for = vec!["198.51.100.1".into(), "192.0.2.7".into()];
    e.method = "GET /api/v3/secrets/raw".into();
    e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736".into();
    e
}

fn links(replica: &str, events: Vec<AuditEvent>) -> Vec<Chained> {
    let mut writer = ChainWriter::new(replica, Start::GENESIS);
    events
        .into_iter()
        .map(|e| writer.append(&key(), e))
        .collect()
}

/// The audit tables of a fresh auth and secrets database.
async fn stores(backend: Backend) -> Option<(Vec<AuditStore>, TestDb, TestDb)> {
    let auth_db = TestDb::create(backend).await?;
    let secrets_db = TestDb::create(backend).await?;
    let auth = AuthStore::connect(&auth_db.url).await.unwrap().audit();
    let secrets = SecretStore::connect(&secrets_db.url).await.unwrap().audit();
    Some((vec![auth, secrets], auth_db, secrets_db))
}

fn all() -> AuditQuery {
    AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    }
}

async fn appended_events_read_back_exactly_and_their_chain_verifies(backend: Backend) {
    let Some((stores, _a, _s)) = stores(backend).await else {
        return;
    };
    for store in stores {
        let written = links(
            "r1",
            (1..=5).map(|n| event(n, "p1", "identity:i1")).collect(),
        );
        store.append(&written[..2]).await.unwrap();
        store.append(&written[2..]).await.unwrap();

        let read: Vec<Chained> = store
            .chain("r1", 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.link)
            .collect();

        assert_eq!(read, written);
        let key = key();
        let mut verifier = ChainVerifier::new(&key, "r1", Start::GENESIS);
        for link in read {
            verifier.push(link).unwrap();
        }
        assert_eq!(verifier.finish(), Ok(5));
        let after_three: Vec<u64> = store
            .chain("r1", 3, 100)
            .await
            .unwrap()
            .iter()
            .map(|s| s.link.sequence)
            .collect();
        assert_eq!(after_three, [4, 5]);
    }
}

async fn listings_filter_and_page_newest_first(backend: Backend) {
    let Some((stores, _a, _s)) = stores(backend).await else {
        return;
    };
    let store = &stores[1];
    let events = (1..=9)
        .map(|n| {
            let project = if n % 2 == 0 { "p2" } else { "p1" };
            event(n, project, &format!("identity:i{}", n % 3))
        })
        .collect();
    store.append(&links("r1", events)).await.unwrap();
    let sequences = |rows: Vec<latchkey_store::audit::StoredEvent>| -> Vec<u64> {
        rows.iter().map(|s| s.link.sequence).collect()
    };

    assert_eq!(
        sequences(store.list(&all()).await.unwrap()),
        [9, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    let first = store.list(&AuditQuery { limit: 4, ..all() }).await.unwrap();
    let next = store
        .list(&AuditQuery {
            limit: 4,
            before_id: first.last().map(|s| s.id),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(sequences(next), [5, 4, 3, 2]);
    let cases: [(AuditQuery, &[u64]); 8] = [
        (
            AuditQuery {
                projects: Some(vec!["p2".into()]),
                ..all()
            },
            &[8, 6, 4, 2],
        ),
        (
            AuditQuery {
                projects: Some(Vec::new()),
                ..all()
            },
            &[],
        ),
        (
            AuditQuery {
                principal: Some("identity:i0".into()),
                ..all()
            },
            &[9, 6, 3],
        ),
        (
            AuditQuery {
                outcome: Some(Outcome::Denied),
                ..all()
            },
            &[9, 6, 3],
        ),
        (
            AuditQuery {
                token_hmac: Some(format!("{:064x}", 7)),
                ..all()
            },
            &[7],
        ),
        (
            AuditQuery {
                secret_name: Some("S4".into()),
                ..all()
            },
            &[4],
        ),
        // LIKE's wildcards in a name are literal.
        (
            AuditQuery {
                secret_name: Some("100%_sure".into()),
                ..all()
            },
            &[9, 8, 7, 6, 5, 4, 3, 2, 1],
        ),
        (
            AuditQuery {
                from: Some(t0() + Duration::seconds(3)),
                to: Some(t0() + Duration::seconds(5)),
                ..all()
            },
            &[4, 3],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(
            sequences(store.list(&query).await.unwrap()),
            expected,
            "{query:?}"
        );
    }
    assert!(
        store
            .list(&AuditQuery {
                secret_name: Some("S".into()),
                ..all()
            })
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_batch_that_fails_stores_none_of_its_events(backend: Backend) {
    let Some((stores, _a, _s)) = stores(backend).await else {
        return;
    };
    let store = &stores[0];
    let chain = links(
        "r1",
        (1..=4).map(|n| event(n, "p1", "identity:i1")).collect(),
    );
    store.append(&chain[..2]).await.unwrap();

    // Its second link takes a place already held: the whole batch fails.
    let err = store
        .append(&[chain[2].clone(), chain[1].clone()])
        .await
        .unwrap_err();

    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.list(&all()).await.unwrap().len(), 2);
    store.append(&chain[2..]).await.unwrap();
    assert_eq!(store.list(&all()).await.unwrap().len(), 4);
}

async fn each_replica_is_its_own_chain(backend: Backend) {
    let Some((stores, _a, _s)) = stores(backend).await else {
        return;
    };
    let store = &stores[1];
    store
        .append(&links("b", vec![event(1, "p1", "x"), event(2, "p1", "x")]))
        .await
        .unwrap();
    store
        .append(&links("a", vec![event(3, "p1", "x")]))
        .await
        .unwrap();

    assert_eq!(
        store.replicas().await.unwrap(),
        [("a".to_owned(), 1), ("b".to_owned(), 1)]
    );
    assert_eq!(store.chain("b", 0, 10).await.unwrap().len(), 2);
}

async fn reaping_leaves_a_sealed_checkpoint_from_which_the_rest_verifies(backend: Backend) {
    let Some((stores, _a, _s)) = stores(backend).await else {
        return;
    };
    for store in stores {
        // Events at t0 + 1 s ... t0 + 10 s, in two chains.
        for replica in ["r1", "r2"] {
            let written = links(replica, (1..=10).map(|n| event(n, "p1", "i")).collect());
            store.append(&written).await.unwrap();
        }
        // Before t0 + 6.5 s: the first six of each; three per call at most.
        let before = t0() + Duration::milliseconds(6_500);
        assert_eq!(store.reap(before, &key(), 3).await.unwrap(), 6);
        assert_eq!(store.reap(before, &key(), 3).await.unwrap(), 6);
        assert_eq!(
            store.reap(before, &key(), 3).await.unwrap(),
            0,
            "nothing left to reap"
        );

        let checkpoints = store.checkpoints().await.unwrap();
        assert_eq!(checkpoints.len(), 2);
        for checkpoint in checkpoints {
            assert_eq!(checkpoint.sequence, 6);
            let key = key();
            let start = checkpoint.start(&key).unwrap();
            let mut verifier = ChainVerifier::new(&key, &checkpoint.replica, start);
            for row in store.chain(&checkpoint.replica, 0, 100).await.unwrap() {
                verifier.push(row.link).unwrap();
            }
            assert_eq!(verifier.finish().unwrap(), 4, "events 7 to 10 verify");
        }
        // A reap with an earlier cut never moves a checkpoint back.
        store.reap(t0(), &key(), 100).await.unwrap();
        assert!(
            store
                .checkpoints()
                .await
                .unwrap()
                .iter()
                .all(|c| c.sequence == 6)
        );
    }
}

async fn the_query_matcher_keeps_what_the_database_listing_keeps(backend: Backend) {
    let Some((stores, _a, _s)) = stores(backend).await else {
        return;
    };
    let store = &stores[1];
    let events: Vec<_> = (1..=12)
        .map(|n| {
            event(
                n,
                if n % 2 == 0 { "p1" } else { "p2" },
                &format!("identity:i{}", n % 3),
            )
        })
        .collect();
    store.append(&links("r1", events)).await.unwrap();
    let queries = [
        AuditQuery {
            outcome: Some(Outcome::Denied),
            ..all()
        },
        AuditQuery {
            projects: Some(vec!["p1".into()]),
            principal: Some("identity:i1".into()),
            ..all()
        },
        AuditQuery {
            secret_name: Some("S4".into()),
            ..all()
        },
        AuditQuery {
            from: Some(t0() + Duration::seconds(5)),
            to: Some(t0() + Duration::seconds(9)),
            ..all()
        },
    ];
    let every = store.chain("r1", 0, 100).await.unwrap();
    for query in queries {
        let mut listed: Vec<u64> = store
            .list(&query)
            .await
            .unwrap()
            .iter()
            .map(|r| r.link.sequence)
            .collect();
        listed.reverse();
        let matched: Vec<u64> = every
            .iter()
            .filter(|r| query.matches(&r.link.event))
            .map(|r| r.link.sequence)
            .collect();
        assert!(!matched.is_empty(), "{query:?}");
        assert_eq!(listed, matched, "{query:?}");
    }
}
