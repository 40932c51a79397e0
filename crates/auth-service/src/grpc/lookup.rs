//! `LookupToken`'s reply: what the presented token is, for either kind.

use latchkey_domain::crypto::key_rotation_recommended;
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::convert::auth::{permissions_pb, scopes_pb};
use latchkey_proto::convert::timestamp;

use crate::app::{Authenticated, Lookup};

/// The reply describing `lookup`'s token.
pub(super) fn reply(lookup: Lookup) -> pb::LookupTokenResponse {
    let principal = lookup.caller.principal().to_string();
    match lookup.caller {
        Authenticated::Service { token, .. } => pb::LookupTokenResponse {
            token_type: pb::TokenType::Service.into(),
            principal,
            project_id: token.project_id.as_str().to_owned(),
            expires_at: token.expires_at.map(timestamp),
            use_count: token.use_count,
            use_limit: 0,
            scopes: scopes_pb(&token.scopes),
            permissions: permissions_pb(token.permissions),
            encrypted_project_key: Some((&token.encrypted_project_key).into()),
            key_encryption_count: lookup.key_encryption_count,
            key_rotation_recommended: key_rotation_recommended(lookup.key_encryption_count),
            org_role: String::new(),
            name: token.name,
            created_at: Some(timestamp(token.created_at)),
            token_id: token.id.into_string(),
        },
        Authenticated::Identity { token, identity } => pb::LookupTokenResponse {
            token_type: pb::TokenType::Identity.into(),
            principal,
            expires_at: token.expires_at.map(timestamp),
            use_count: token.use_count,
            org_role: identity.org_role.as_str().to_owned(),
            use_limit: token.num_uses_limit,
            name: token.name,
            created_at: Some(timestamp(token.created_at)),
            token_id: token.id.into_string(),
            ..Default::default()
        },
    }
}
