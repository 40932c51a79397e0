//! The authorization decision, one check per denial reason, so the auth
//! service only loads records and calls these in order.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::ip::TrustedIps;
use crate::path::{Environment, SecretPath};
use crate::scope::{Action, Permissions, Scopes};
use crate::ttl::is_expired;
use crate::{AccessError, Reason};

/// The lifecycle state of a token, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    /// Expiry; `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// False when a service token is deactivated.
    pub active: bool,
    /// True when revoked or deleted.
    pub revoked: bool,
    /// Allowed uses so far.
    pub use_count: u64,
    /// Maximum uses; 0 is unlimited.
    pub use_limit: u64,
}

/// Checks revocation, expiry, the use limit and activation, in that order.
pub fn check_token_state(state: TokenState, now: DateTime<Utc>) -> Result<(), AccessError> {
    if state.revoked {
        return Err(AccessError::new(
            Reason::TokenRevoked,
            "the token was revoked or deleted; ask an admin for a new token",
        ));
    }
    if is_expired(state.expires_at, now) {
        let at = state
            .expires_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default();
        return Err(AccessError::new(
            Reason::TokenExpired,
            format!("the token expired at {at}; create a new token"),
        ));
    }
    if uses_exhausted(state.use_count, state.use_limit) {
        return Err(uses_exhausted_error(state.use_limit));
    }
    if !state.active {
        return Err(AccessError::new(
            Reason::TokenInactive,
            "the service token is deactivated; an admin can reactivate it with SetServiceTokenActive",
        ));
    }
    Ok(())
}

/// True when a token with `use_limit` (0 = unlimited) has no use left.
#[must_use]
pub fn uses_exhausted(use_count: u64, use_limit: u64) -> bool {
    use_limit > 0 && use_count >= use_limit
}

/// The denial for a token that reached its use limit.
#[must_use]
pub fn uses_exhausted_error(use_limit: u64) -> AccessError {
    AccessError::new(
        Reason::TokenUsesExhausted,
        format!("the token reached its limit of {use_limit} uses; create a new access token"),
    )
}

/// Checks the client address against the token's and the project's
/// allowlists. An unknown address passes only where both lists are empty.
pub fn check_client_ip(
    token_ips: &TrustedIps,
    project_ips: &TrustedIps,
    client_ip: Option<IpAddr>,
) -> Result<(), AccessError> {
    for (list, owner) in [(token_ips, "token"), (project_ips, "project")] {
        if list.is_empty() {
            continue;
        }
        match client_ip {
            Some(ip) if list.allows(ip) => {}
            Some(ip) => {
                return Err(AccessError::new(
                    Reason::IpNotTrusted,
                    format!(
                        "client IP {} is not in the {owner}'s trusted IPs; add it or call from an allowed address",
                        crate::ip::canonical(ip)
                    ),
                ));
            }
            None => {
                return Err(AccessError::new(
                    Reason::IpNotTrusted,
                    format!("the client IP is unknown and the {owner} has trusted IPs"),
                ));
            }
        }
    }
    Ok(())
}

/// Where a call wants to act.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The environment.
    pub environment: &'a Environment,
    /// The folder.
    pub path: &'a SecretPath,
    /// Read or write.
    pub action: Action,
    /// A recursive listing: the folder itself need not be in scope, because
    /// the caller filters each folder below it with the token's scopes.
    pub recursive: bool,
}

/// Checks permission, then scope.
pub fn check_scoped_access(
    scopes: &Scopes,
    permissions: Permissions,
    target: Target<'_>,
) -> Result<(), AccessError> {
    if !permissions.allows(target.action) {
        let have = match permissions.describe() {
            p if p.is_empty() => "no".to_owned(),
            p => p,
        };
        return Err(AccessError::new(
            Reason::PermissionDenied,
            format!(
                "the token has {have} permission but this call needs {}; create a token with --access-level={}",
                target.action.as_str(),
                target.action.as_str()
            ),
        ));
    }
    let in_scope = if target.recursive {
        scopes.has_environment(target.environment)
    } else {
        scopes.allows(target.environment, target.path)
    };
    if !in_scope {
        return Err(AccessError::new(
            Reason::ScopeDenied,
            format!(
                "environment {:?} path {:?} is outside the token's scopes ({})",
                target.environment.as_str(),
                target.path.as_str(),
                scopes.describe()
            ),
        ));
    }
    Ok(())
}

/// Whether a call's secrets travel as the client's ciphertext or in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Ciphertext the token holder opens (the non-raw calls).
    Sealed,
    /// Plaintext: the server decrypts or encrypts (the `*Raw` calls), so it
    /// needs the project key and the project must not be end-to-end encrypted.
    Raw,
}

/// Refuses plaintext calls on end-to-end encrypted projects.
pub fn check_raw_allowed(form: Form, e2ee: bool) -> Result<(), AccessError> {
    if form == Form::Raw && e2ee {
        return Err(AccessError::new(
            Reason::E2eeEnabled,
            "the project has end-to-end encryption, so the server cannot decrypt: \
             use the non-raw calls with a service token and decrypt on the client",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn live() -> TokenState {
        TokenState {
            expires_at: Some(now() + Duration::seconds(1)),
            active: true,
            revoked: false,
            use_count: 0,
            use_limit: 0,
        }
    }

    #[test]
    fn exhausted_token_is_rejected_with_token_uses_exhausted() {
        let state = TokenState {
            use_count: 3,
            use_limit: 3,
            ..live()
        };
        let err = check_token_state(state, now()).unwrap_err();
        assert_eq!(err.reason, Reason::TokenUsesExhausted);
        assert!(err.message.contains('3'));
        let left = TokenState {
            use_count: 2,
            use_limit: 3,
            ..live()
        };
        assert_eq!(check_token_state(left, now()), Ok(()));
        let unlimited = TokenState {
            use_count: 1_000_000,
            ..live()
        };
        assert_eq!(check_token_state(unlimited, now()), Ok(()));
    }

    #[test]
    fn live_token_passes_state_checks() {
        assert_eq!(check_token_state(live(), now()), Ok(()));
        let forever = TokenState {
            expires_at: None,
            ..live()
        };
        assert_eq!(
            check_token_state(forever, now() + Duration::days(9999)),
            Ok(())
        );
    }

    #[test]
    fn expired_token_is_rejected_with_token_expired() {
        let err = check_token_state(live(), now() + Duration::seconds(1)).unwrap_err();
        assert_eq!(err.reason, Reason::TokenExpired);
        assert!(err.message.contains("create a new token"));
    }

    #[test]
    fn deactivated_token_is_rejected_with_token_inactive() {
        let state = TokenState {
            active: false,
            ..live()
        };
        assert_eq!(
            check_token_state(state, now()).unwrap_err().reason,
            Reason::TokenInactive
        );
    }

    #[test]
    fn revocation_wins_over_expiry_and_inactivity() {
        let state = TokenState {
            expires_at: Some(now()),
            active: false,
            revoked: true,
            use_count: 9,
            use_limit: 1,
        };
        assert_eq!(
            check_token_state(state, now()).unwrap_err().reason,
            Reason::TokenRevoked
        );
    }

    #[test]
    fn client_ip_must_be_in_token_and_project_lists() {
        let local = TrustedIps::parse(&["127.0.0.1"], "t").unwrap();
        let private = TrustedIps::parse(&["10.0.0.0/8"], "t").unwrap();
        let none = TrustedIps::default();
        let ip = Some("127.0.0.1".parse().unwrap());
        assert_eq!(check_client_ip(&local, &none, ip), Ok(()));
        assert_eq!(check_client_ip(&none, &none, ip), Ok(()));
        assert_eq!(check_client_ip(&none, &none, None), Ok(()));
        let err = check_client_ip(&private, &none, ip).unwrap_err();
        assert_eq!(err.reason, Reason::IpNotTrusted);
        assert!(err.message.contains("127.0.0.1"));
        assert!(err.message.contains("token"));
        let err = check_client_ip(&local, &private, ip).unwrap_err();
        assert!(err.message.contains("project"));
        assert_eq!(
            check_client_ip(&local, &none, None).unwrap_err().reason,
            Reason::IpNotTrusted
        );
    }

    fn scopes() -> Scopes {
        Scopes::new(vec![Scope::new("dev", "/backend/**").unwrap()])
    }

    fn target<'a>(
        env: &'a Environment,
        path: &'a SecretPath,
        action: Action,
        recursive: bool,
    ) -> Target<'a> {
        Target {
            environment: env,
            path,
            action,
            recursive,
        }
    }

    #[test]
    fn scoped_access_checks_permission_then_scope() {
        let dev = Environment::parse("dev").unwrap();
        let prod = Environment::parse("prod").unwrap();
        let inside = SecretPath::parse("/backend/db").unwrap();
        let outside = SecretPath::parse("/frontend").unwrap();
        let read = Permissions {
            read: true,
            write: false,
        };
        assert_eq!(
            check_scoped_access(&scopes(), read, target(&dev, &inside, Action::Read, false)),
            Ok(())
        );
        let err = check_scoped_access(&scopes(), read, target(&dev, &inside, Action::Write, false))
            .unwrap_err();
        assert_eq!(err.reason, Reason::PermissionDenied);
        assert!(err.message.contains("--access-level=write"));
        let err = check_scoped_access(&scopes(), read, target(&dev, &outside, Action::Read, false))
            .unwrap_err();
        assert_eq!(err.reason, Reason::ScopeDenied);
        assert!(err.message.contains("dev:/backend/**"));
        assert!(err.message.contains("/frontend"));
        assert_eq!(
            check_scoped_access(&scopes(), read, target(&prod, &inside, Action::Read, false))
                .unwrap_err()
                .reason,
            Reason::ScopeDenied
        );
    }

    #[test]
    fn recursive_listing_needs_only_the_environment_in_scope() {
        let dev = Environment::parse("dev").unwrap();
        let prod = Environment::parse("prod").unwrap();
        let root = SecretPath::root();
        let read = Permissions {
            read: true,
            write: false,
        };
        assert_eq!(
            check_scoped_access(&scopes(), read, target(&dev, &root, Action::Read, true)),
            Ok(())
        );
        assert_eq!(
            check_scoped_access(&scopes(), read, target(&prod, &root, Action::Read, true))
                .unwrap_err()
                .reason,
            Reason::ScopeDenied
        );
    }

    #[test]
    fn raw_calls_are_refused_only_on_e2ee_projects() {
        assert_eq!(check_raw_allowed(Form::Raw, false), Ok(()));
        assert_eq!(check_raw_allowed(Form::Sealed, true), Ok(()));
        assert_eq!(
            check_raw_allowed(Form::Raw, true).unwrap_err().reason,
            Reason::E2eeEnabled
        );
    }
}
