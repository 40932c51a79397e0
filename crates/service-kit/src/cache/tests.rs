use chrono::{DateTime, Duration, Utc};

use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

#[test]
fn entries_expire_after_the_ttl_by_the_given_clock() {
    let cache = TtlCache::new(Duration::seconds(1), 10);
    cache.put("a", 1, t0());
    assert_eq!(cache.get(&"a", t0() + Duration::milliseconds(999)), Some(1));
    assert_eq!(cache.get(&"a", t0() + Duration::seconds(1)), None);
    assert_eq!(cache.get(&"a", t0()), None, "an expired entry is dropped");
}

#[test]
fn removed_entries_are_reloaded_and_a_zero_ttl_disables_caching() {
    let cache = TtlCache::new(Duration::seconds(1), 10);
    cache.put("a", 1, t0());
    cache.remove(&"a");
    assert_eq!(cache.get(&"a", t0()), None);
    let off = TtlCache::new(Duration::zero(), 10);
    off.put("a", 1, t0());
    assert_eq!(off.get(&"a", t0()), None);
}

/// Loads `key` as `stale` while `invalidate` runs mid-load (after the
/// read, before the load returns), as a write committing would; returns
/// what the load gave its caller.
async fn load_across(
    cache: &std::sync::Arc<TtlCache<&'static str, &'static str>>,
    key: &'static str,
    stale: &'static str,
    invalidate: impl FnOnce(),
) -> Result<&'static str, ()> {
    let (read_tx, read_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let loader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(key, t0(), true, || async {
                    let _ = read_tx.send(());
                    let _ = go_rx.await;
                    Ok::<_, ()>(stale)
                })
                .await
        })
    };
    read_rx.await.unwrap();
    invalidate();
    go_tx.send(()).unwrap();
    loader.await.unwrap()
}

#[tokio::test]
async fn a_load_that_began_before_an_invalidation_is_not_cached() {
    let cache = std::sync::Arc::new(TtlCache::new(Duration::seconds(60), 10));
    for _ in 0..100 {
        // The row as it was before the revoking UPDATE, which commits and
        // invalidates while the load is in flight.
        let loaded = load_across(&cache, "token", "live", || cache.remove(&"token")).await;
        assert_eq!(loaded, Ok("live"));

        assert_eq!(
            cache.get(&"token", t0()),
            None,
            "the stale row was not cached"
        );
        let fresh = cache
            .get_or_load("token", t0(), true, || async { Ok::<_, ()>("revoked") })
            .await;
        assert_eq!(fresh, Ok("revoked"));
        cache.remove(&"token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_load_but_never_across_an_invalidation() {
    let cache = std::sync::Arc::new(TtlCache::new(Duration::seconds(60), 10));
    let loads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (go, wait) = tokio::sync::watch::channel(false);
    let miss = |value: &'static str| {
        let (cache, loads, mut wait) = (cache.clone(), loads.clone(), wait.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("token", t0(), true, || async move {
                    loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = wait.wait_for(|go| *go).await;
                    Ok::<_, ()>(value)
                })
                .await
        })
    };
    // Ten misses while one load is in flight: one load between them.
    let before: Vec<_> = (0..10).map(|_| miss("active")).collect();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The row changes here; a caller from now on must not get the load above.
    cache.remove(&"token");
    let after = miss("revoked");
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    go.send(true).unwrap();
    for call in before {
        assert_eq!(call.await.unwrap(), Ok("active"));
    }
    assert_eq!(after.await.unwrap(), Ok("revoked"));
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn a_weighted_cache_evicts_the_least_recently_used_to_stay_within_its_budget() {
    let cache = TtlCache::<&str, String>::weighted(Duration::seconds(60), 10, String::len);
    cache.put("a", "aaaa".to_owned(), t0());
    cache.put("b", "bbbb".to_owned(), t0());
    assert_eq!(
        cache.get(&"a", t0()).as_deref(),
        Some("aaaa"),
        "a is now recent"
    );
    cache.put("c", "cccc".to_owned(), t0());

    assert_eq!(cache.get(&"b", t0()), None, "b was least recently used");
    assert_eq!(cache.get(&"a", t0()).as_deref(), Some("aaaa"));
    assert_eq!(cache.get(&"c", t0()).as_deref(), Some("cccc"));
    assert_eq!(cache.size(), (2, 8));

    cache.put("a", "a".to_owned(), t0());
    assert_eq!(
        cache.size(),
        (2, 5),
        "a replaced value's weight is given back"
    );
    cache.put("huge", "x".repeat(11), t0());
    assert_eq!(
        cache.get(&"huge", t0()),
        None,
        "heavier than the whole budget"
    );
    assert_eq!(cache.size(), (2, 5), "and it evicted nothing");
}

#[test]
fn remove_where_forgets_exactly_the_keys_it_picks() {
    let cache = TtlCache::new(Duration::seconds(60), 10);
    for (key, value) in [("p1/a", 1), ("p1/b", 2), ("p2/a", 3)] {
        cache.put(key, value, t0());
    }
    cache.remove_where(|k| k.starts_with("p1/"));
    assert_eq!(cache.get(&"p1/a", t0()), None);
    assert_eq!(cache.get(&"p1/b", t0()), None);
    assert_eq!(cache.get(&"p2/a", t0()), Some(3));
    assert_eq!(cache.size(), (1, 1));
}

#[tokio::test]
async fn a_load_in_flight_during_remove_where_is_not_cached() {
    let cache = std::sync::Arc::new(TtlCache::new(Duration::seconds(60), 10));
    let loaded = load_across(&cache, "p1/a", "before the write", || {
        cache.remove_where(|k| k.starts_with("p1/"));
    })
    .await;
    assert_eq!(loaded, Ok("before the write"));
    assert_eq!(cache.get(&"p1/a", t0()), None);
}

#[test]
fn a_zero_budget_disables_a_weighted_cache() {
    let cache = TtlCache::<&str, String>::weighted(Duration::seconds(60), 0, String::len);
    cache.put("a", String::new(), t0());
    assert_eq!(cache.get(&"a", t0()), None);
}
