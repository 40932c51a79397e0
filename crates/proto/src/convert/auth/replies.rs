//! Domain entities as the auth API returns them.

use latchkey_domain::crypto::key_rotation_recommended;
use latchkey_domain::identity::{
    ClientSecret, KubernetesAuthConfig, TokenAuthConfig, UniversalAuthConfig,
};
use latchkey_domain::model::{
    AccessToken, Identity, IdentityId, Membership, Project, ServiceToken,
};
use latchkey_domain::scope::{Permissions, Scopes};

use crate::auth::v1 as pb;
use crate::convert::timestamp;

/// Scopes as sent on the wire.
#[must_use]
pub fn scopes_pb(scopes: &Scopes) -> Vec<pb::Scope> {
    scopes
        .as_slice()
        .iter()
        .map(|s| pb::Scope {
            environment: s.environment.as_str().to_owned(),
            secret_path: s.glob.as_str().to_owned(),
        })
        .collect()
}

/// Permissions as sent on the wire, read before write.
#[must_use]
pub fn permissions_pb(permissions: Permissions) -> Vec<i32> {
    let mut out = Vec::new();
    if permissions.read {
        out.push(pb::Permission::Read.into());
    }
    if permissions.write {
        out.push(pb::Permission::Write.into());
    }
    out
}

impl From<&Project> for pb::Project {
    fn from(project: &Project) -> Self {
        pb::Project {
            id: project.id.as_str().to_owned(),
            name: project.name.clone(),
            e2ee: project.e2ee,
            environments: project
                .environments
                .iter()
                .map(|(slug, name)| pb::Environment {
                    slug: slug.as_str().to_owned(),
                    name: name.clone(),
                })
                .collect(),
            trusted_ips: project.trusted_ips.to_strings(),
            key_encryption_count: project.encryption_count,
            key_rotation_recommended: key_rotation_recommended(project.encryption_count),
            created_at: Some(timestamp(project.created_at)),
        }
    }
}

impl From<&ServiceToken> for pb::ServiceToken {
    fn from(token: &ServiceToken) -> Self {
        pb::ServiceToken {
            id: token.id.as_str().to_owned(),
            project_id: token.project_id.as_str().to_owned(),
            name: token.name.clone(),
            scopes: scopes_pb(&token.scopes),
            permissions: permissions_pb(token.permissions),
            expires_at: token.expires_at.map(timestamp),
            trusted_ips: token.trusted_ips.to_strings(),
            active: token.active,
            use_count: token.use_count,
            last_used_at: token.last_used_at.map(timestamp),
            created_at: Some(timestamp(token.created_at)),
        }
    }
}

impl From<&Identity> for pb::Identity {
    fn from(identity: &Identity) -> Self {
        pb::Identity {
            id: identity.id.as_str().to_owned(),
            name: identity.name.clone(),
            org_role: identity.org_role.as_str().to_owned(),
            created_at: Some(timestamp(identity.created_at)),
        }
    }
}

impl From<(&IdentityId, &TokenAuthConfig)> for pb::TokenAuthResponse {
    fn from((identity_id, config): (&IdentityId, &TokenAuthConfig)) -> Self {
        pb::TokenAuthResponse {
            config: Some(pb::TokenAuthConfig {
                identity_id: identity_id.as_str().to_owned(),
                access_token_ttl: config.ttl_seconds,
                access_token_max_ttl: config.max_ttl_seconds,
                access_token_num_uses_limit: i64::try_from(config.num_uses_limit)
                    .unwrap_or(i64::MAX),
                access_token_trusted_ips: config.trusted_ips.to_strings(),
            }),
        }
    }
}

impl From<&UniversalAuthConfig> for pb::UniversalAuthResponse {
    fn from(config: &UniversalAuthConfig) -> Self {
        let access = &config.access;
        pb::UniversalAuthResponse {
            config: Some(pb::UniversalAuthConfig {
                identity_id: config.identity_id.as_str().to_owned(),
                client_id: config.client_id.clone(),
                access_token_ttl: access.ttl_seconds,
                access_token_max_ttl: access.max_ttl_seconds,
                access_token_num_uses_limit: i64::try_from(access.num_uses_limit)
                    .unwrap_or(i64::MAX),
                access_token_trusted_ips: access.trusted_ips.to_strings(),
                client_secret_trusted_ips: config.client_secret_trusted_ips.to_strings(),
                created_at: Some(timestamp(config.created_at)),
            }),
        }
    }
}

impl From<&KubernetesAuthConfig> for pb::KubernetesAuthResponse {
    fn from(config: &KubernetesAuthConfig) -> Self {
        let access = &config.access;
        pb::KubernetesAuthResponse {
            config: Some(pb::KubernetesAuthConfig {
                identity_id: config.identity_id.as_str().to_owned(),
                issuer: config.issuer.clone(),
                keys: config.keys.clone(),
                allowed_audiences: config.allowed_audiences.join(","),
                allowed_namespaces: config.allowed_namespaces.join(","),
                allowed_names: config.allowed_names.join(","),
                access_token_ttl: access.ttl_seconds,
                access_token_max_ttl: access.max_ttl_seconds,
                access_token_num_uses_limit: i64::try_from(access.num_uses_limit)
                    .unwrap_or(i64::MAX),
                access_token_trusted_ips: access.trusted_ips.to_strings(),
                created_at: Some(timestamp(config.created_at)),
            }),
        }
    }
}

impl From<&ClientSecret> for pb::ClientSecretInfo {
    fn from(secret: &ClientSecret) -> Self {
        pb::ClientSecretInfo {
            id: secret.id.clone(),
            identity_id: secret.identity_id.as_str().to_owned(),
            description: secret.description.clone(),
            client_secret_prefix: secret.prefix.clone(),
            ttl: secret.ttl_seconds,
            num_uses_limit: secret.num_uses_limit,
            use_count: secret.use_count,
            last_used_at: secret.last_used_at.map(timestamp),
            created_at: Some(timestamp(secret.created_at)),
            revoked: secret.revoked_at.is_some(),
        }
    }
}

impl From<&AccessToken> for pb::IdentityAccessToken {
    fn from(token: &AccessToken) -> Self {
        pb::IdentityAccessToken {
            id: token.id.as_str().to_owned(),
            identity_id: token.identity_id.as_str().to_owned(),
            name: token.name.clone(),
            created_at: Some(timestamp(token.created_at)),
            expires_at: token.expires_at.map(timestamp),
            use_count: token.use_count,
            use_limit: token.num_uses_limit,
            last_used_at: token.last_used_at.map(timestamp),
            revoked: token.revoked_at.is_some(),
        }
    }
}

impl From<&Membership> for pb::ProjectMembership {
    fn from(membership: &Membership) -> Self {
        pb::ProjectMembership {
            project_id: membership.project_id.as_str().to_owned(),
            identity_id: membership.identity_id.as_str().to_owned(),
            role: membership.role.as_str().to_owned(),
            scopes: membership
                .scopes
                .as_ref()
                .map(scopes_pb)
                .unwrap_or_default(),
        }
    }
}
