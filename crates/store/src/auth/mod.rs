//! The auth service's database.

mod access_tokens;
mod entity;
mod identities;
mod kubernetes_auth;
mod memberships;
mod migration;
mod projects;
mod service_tokens;
mod universal_auth;

use std::sync::Arc;

use latchkey_domain::ip::TrustedIps;
use latchkey_domain::scope::{Scope, ScopeCache, Scopes};
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use serde_json::json;

use crate::write::Writer;
use crate::{StoreError, connect, corrupt};

/// The auth service's repository.
#[derive(Debug, Clone)]
pub struct AuthStore {
    db: DatabaseConnection,
    writer: Writer,
    /// Scope lists by their stored text, compiled once: a row reloaded
    /// into the state cache every second does not recompile its globs.
    compiled: Arc<ScopeCache>,
}

impl AuthStore {
    /// Connects and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let db = connect(url).await?;
        migration::Migrator::up(&db, None).await?;
        Ok(Self {
            writer: Writer::for_db(&db),
            db,
            compiled: Arc::new(ScopeCache::default()),
        })
    }

    /// The audit table of this database, queueing its writes with this
    /// store's (on SQLite, one writer at a time).
    #[must_use]
    pub fn audit(&self) -> crate::audit::AuditStore {
        crate::audit::AuditStore::new(self.db.clone(), self.writer.clone())
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

/// The access-token settings every auth method stores in the same four
/// columns (TTL, max TTL, use limit, trusted IPs).
pub(super) fn access_settings(
    ttl_seconds: i64,
    max_ttl_seconds: i64,
    num_uses_limit: i64,
    trusted_ips: &str,
) -> Result<latchkey_domain::identity::TokenAuthConfig, StoreError> {
    Ok(latchkey_domain::identity::TokenAuthConfig {
        ttl_seconds,
        max_ttl_seconds,
        num_uses_limit: crate::to_u64(num_uses_limit, "access_token_num_uses_limit")?,
        trusted_ips: parse_ips(trusted_ips)?,
    })
}

pub(super) fn parse_ips(text: &str) -> Result<TrustedIps, StoreError> {
    let list: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt("trusted_ips", e))?;
    TrustedIps::parse(&list, "trusted_ips").map_err(|e| corrupt("trusted_ips", e))
}

/// A stored scope list, compiled once per distinct text.
pub(super) fn cached_scopes(cache: &ScopeCache, text: &str) -> Result<Scopes, StoreError> {
    cache.get_or_parse(text, || parse_scopes(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_scope_list_is_compiled_once_and_corrupt_text_fails_closed() {
        let cache = ScopeCache::new(1);
        let text = scopes_json(&Scopes::new(vec![Scope::new("dev", "/a/**").unwrap()]));

        let first = cached_scopes(&cache, &text).unwrap();
        let second = cached_scopes(&cache, &text).unwrap();

        assert_eq!(first, second);
        assert_eq!(cache.len(), 1);
        assert!(matches!(
            cached_scopes(&cache, "not json"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
