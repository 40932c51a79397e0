//! Scope lists kept compiled, by a text key: a scope list that arrives again
//! (a row reloaded into a cache, a grant for the same token) reuses its
//! compiled globs instead of compiling them on every call.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

use super::Scopes;

/// A bounded map from a scope list's text to its compiled form.
#[derive(Debug)]
pub struct ScopeCache(Mutex<LruCache<String, Scopes>>);

impl ScopeCache {
    /// Distinct scope lists kept by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// Keeps at most `capacity` lists (at least one), least recently used out first.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self(Mutex::new(LruCache::new(capacity)))
    }

    /// The list for `key`, compiled by `parse` only the first time.
    pub fn get_or_parse<E>(
        &self,
        key: &str,
        parse: impl FnOnce() -> Result<Scopes, E>,
    ) -> Result<Scopes, E> {
        if let Ok(mut memo) = self.0.lock()
            && let Some(scopes) = memo.get(key)
        {
            return Ok(scopes.clone());
        }
        let scopes = parse()?;
        if let Ok(mut memo) = self.0.lock() {
            memo.put(key.to_owned(), scopes.clone());
        }
        Ok(scopes)
    }

    /// How many lists are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |memo| memo.len())
    }

    /// Whether none is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ScopeCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;

    #[test]
    fn a_list_is_compiled_once_per_key_and_errors_are_not_kept() {
        let cache = ScopeCache::new(2);
        let mut compiled = 0;
        for _ in 0..3 {
            let scopes = cache
                .get_or_parse("dev:/a/**", || {
                    compiled += 1;
                    Ok::<_, ()>(Scopes::new(vec![Scope::new("dev", "/a/**").unwrap()]))
                })
                .unwrap();
            assert_eq!(scopes.as_slice().len(), 1);
        }
        assert_eq!(compiled, 1);
        assert!(
            cache
                .get_or_parse("bad", || Err::<Scopes, _>("no"))
                .is_err()
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_least_recently_used_list_leaves_first() {
        let cache = ScopeCache::new(1);
        let parse = || Ok::<_, ()>(Scopes::new(Vec::new()));
        cache.get_or_parse("a", parse).unwrap();
        cache.get_or_parse("b", parse).unwrap();
        assert_eq!(cache.len(), 1);
        let mut again = false;
        cache
            .get_or_parse("a", || {
                again = true;
                parse()
            })
            .unwrap();
        assert!(again, "a was evicted by b");
    }
}
