//! The auth service's database.

mod access_tokens;
mod entity;
mod identities;
mod memberships;
mod migration;
mod projects;
mod service_tokens;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use latchkey_domain::ip::TrustedIps;
use latchkey_domain::scope::{Scope, Scopes};
use lru::LruCache;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use serde_json::json;

use crate::{StoreError, connect, corrupt};

/// The auth service's repository.
#[derive(Debug, Clone)]
pub struct AuthStore {
    db: DatabaseConnection,
    compiled: Arc<CompiledScopes>,
}

/// Scope lists by their stored text, compiled once: a row reloaded into the
/// state cache every second does not recompile its globs.
#[derive(Debug)]
pub(super) struct CompiledScopes(Mutex<LruCache<String, Scopes>>);

/// Distinct scope lists kept compiled.
const COMPILED_SCOPES: usize = 10_000;

impl CompiledScopes {
    pub(super) fn parse(&self, text: &str) -> Result<Scopes, StoreError> {
        if let Ok(mut memo) = self.0.lock()
            && let Some(scopes) = memo.get(text)
        {
            return Ok(scopes.clone());
        }
        let scopes = parse_scopes(text)?;
        if let Ok(mut memo) = self.0.lock() {
            memo.put(text.to_owned(), scopes.clone());
        }
        Ok(scopes)
    }
}

impl AuthStore {
    /// Connects and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let db = connect(url).await?;
        migration::Migrator::up(&db, None).await?;
        let capacity = NonZeroUsize::new(COMPILED_SCOPES).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            db,
            compiled: Arc::new(CompiledScopes(Mutex::new(LruCache::new(capacity)))),
        })
    }
}

pub(super) fn scopes_json(scopes: &Scopes) -> String {
    let list: Vec<_> = scopes
        .as_slice()
        .iter()
        .map(|s| json!({"environment": s.environment.as_str(), "secret_path": s.glob.as_str()}))
        .collect();
    json!(list).to_string()
}

fn parse_scopes(text: &str) -> Result<Scopes, StoreError> {
    let list: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(text).map_err(|e| corrupt("scopes", e))?;
    list.iter()
        .map(|s| {
            let env = s
                .get("environment")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let glob = s
                .get("secret_path")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            Scope::new(env, glob).map_err(|e| corrupt("scopes", e))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Scopes::new)
}

pub(super) fn parse_ips(text: &str) -> Result<TrustedIps, StoreError> {
    let list: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt("trusted_ips", e))?;
    TrustedIps::parse(&list, "trusted_ips").map_err(|e| corrupt("trusted_ips", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_list_is_compiled_once_and_shared_by_every_load() {
        let memo = CompiledScopes(Mutex::new(LruCache::new(NonZeroUsize::MIN)));
        let text = scopes_json(&Scopes::new(vec![Scope::new("dev", "/a/**").unwrap()]));

        let first = memo.parse(&text).unwrap();
        let second = memo.parse(&text).unwrap();

        assert_eq!(first, second);
        assert_eq!(memo.0.lock().unwrap().len(), 1);
        assert!(matches!(
            memo.parse("not json"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
