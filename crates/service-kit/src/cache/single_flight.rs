//! Concurrent requests for the same key share one computation: the first
//! runs it, the others wait for its result. A caller that goes away does not
//! cancel the others (the next waiter takes over), and a failure is not
//! shared (each waiter then tries itself).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// Computations in progress, by key.
#[derive(Debug)]
pub struct SingleFlight<K, V> {
    map: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    /// `init`'s result, or that of the computation for `key` already running.
    pub async fn run<E, Fut>(&self, key: K, init: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        let share = Share::join(&self.map, key);
        share.cell.get_or_try_init(init).await.cloned()
    }

    /// Keys with a computation in progress.
    pub fn in_flight(&self) -> usize {
        self.map.lock().map_or(0, |map| map.len())
    }
}

/// One caller's share; the last to leave, by finishing or by being
/// cancelled, removes the map entry.
struct Share<'a, K: Hash + Eq, V> {
    map: &'a Mutex<HashMap<K, Arc<OnceCell<V>>>>,
    key: K,
    cell: Arc<OnceCell<V>>,
}

impl<'a, K: Hash + Eq + Clone, V> Share<'a, K, V> {
    fn join(map: &'a Mutex<HashMap<K, Arc<OnceCell<V>>>>, key: K) -> Self {
        let cell = match map.lock() {
            Ok(mut map) => map.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::new(OnceCell::new()),
        };
        Self { map, key, cell }
    }
}

impl<K: Hash + Eq, V> Drop for Share<'_, K, V> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && map.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, &self.cell))
            // Clones are made under this lock: two left means the map's and ours.
            && Arc::strong_count(&self.cell) <= 2
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_run_and_the_entry_is_gone_after() {
        let flight = Arc::new(SingleFlight::<&str, u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (go, wait) = tokio::sync::watch::channel(false);
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let (flight, runs, mut wait) = (flight.clone(), runs.clone(), wait.clone());
                tokio::spawn(async move {
                    flight
                        .run("k", || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            let _ = wait.wait_for(|go| *go).await;
                            Ok::<_, ()>(7)
                        })
                        .await
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        go.send(true).unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Ok(7));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flight.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_failure_is_not_kept() {
        let flight = SingleFlight::<&str, u32>::default();
        assert_eq!(
            flight.run("k", || async { Err::<u32, _>("down") }).await,
            Err("down")
        );
        assert_eq!(flight.run("k", || async { Ok::<_, &str>(1) }).await, Ok(1));
        assert_eq!(flight.in_flight(), 0);
    }
}
