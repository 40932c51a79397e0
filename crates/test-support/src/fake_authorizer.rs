//! An [`Authorizer`] that answers what the test told it to and remembers
//! every request, for testing the secrets service without an auth service.

use std::sync::Mutex;

use latchkey_domain::crypto::WireKey;
use latchkey_domain::model::{Principal, ProjectId, ServiceTokenId};
use latchkey_domain::ports::{AuthorizationRequest, AuthorizeError, Authorizer, Grant};
use latchkey_domain::scope::{Scope, Scopes};

/// Answers every call with one fixed result.
#[derive(Debug)]
pub struct FakeAuthorizer {
    answer: Result<Grant, AuthorizeError>,
    /// What raw requests get instead, when set.
    raw_answer: Option<AuthorizeError>,
    /// Encryptions counted through [`Authorizer::count_encryptions`].
    counted: std::sync::atomic::AtomicU64,
    asked: Mutex<Vec<AuthorizationRequest>>,
}

impl FakeAuthorizer {
    /// Grants every call.
    #[must_use]
    pub fn granting(grant: Grant) -> Self {
        Self {
            answer: Ok(grant),
            raw_answer: None,
            counted: std::sync::atomic::AtomicU64::new(0),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// Grants every call but raw ones, which it refuses with `error` (an
    /// end-to-end encrypted project's `E2EE_ENABLED`, say).
    #[must_use]
    pub fn refusing_raw(grant: Grant, error: impl Into<AuthorizeError>) -> Self {
        Self {
            answer: Ok(grant),
            raw_answer: Some(error.into()),
            counted: std::sync::atomic::AtomicU64::new(0),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// Refuses every call with `error`.
    #[must_use]
    pub fn refusing(error: impl Into<AuthorizeError>) -> Self {
        Self {
            answer: Err(error.into()),
            raw_answer: None,
            counted: std::sync::atomic::AtomicU64::new(0),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// A raw-capable grant in `project_id` over `dev:/**` for a service
    /// token, with `project_key` in clear (a project without e2ee).
    #[must_use]
    pub fn grant(project_id: &ProjectId, project_key: &WireKey) -> Grant {
        Grant {
            principal: Principal::ServiceToken(ServiceTokenId::generate()),
            project_id: project_id.clone(),
            scopes: Scopes::new(vec![Scope::new("dev", "/**").expect("scope")]),
            encrypted_project_key: None,
            project_key: Some(project_key.clone()),
        }
    }

    /// Encryptions counted so far.
    #[must_use]
    pub fn counted(&self) -> u64 {
        self.counted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every request asked so far, oldest first.
    #[must_use]
    pub fn asked(&self) -> Vec<AuthorizationRequest> {
        self.asked.lock().expect("fake authorizer lock").clone()
    }
}

#[async_trait::async_trait]
impl Authorizer for FakeAuthorizer {
    async fn authorize(&self, request: AuthorizationRequest) -> Result<Grant, AuthorizeError> {
        let raw = request.form == latchkey_domain::access::Form::Raw;
        self.asked
            .lock()
            .expect("fake authorizer lock")
            .push(request);
        match &self.raw_answer {
            Some(refusal) if raw => Err(refusal.clone()),
            _ => self.answer.clone(),
        }
    }

    async fn describe(
        &self,
        _token: latchkey_domain::ports::BearerToken,
        _client_ip: Option<std::net::IpAddr>,
    ) -> Result<Option<latchkey_domain::ports::ServiceTokenDetails>, AuthorizeError> {
        // A refusing fake refuses this too; a granting one knows no token.
        self.answer.clone().map(|_| None)
    }

    async fn renew(
        &self,
        token: latchkey_domain::ports::BearerToken,
        _client_ip: Option<std::net::IpAddr>,
    ) -> Result<latchkey_domain::ports::Renewed, AuthorizeError> {
        self.answer
            .clone()
            .map(|_| latchkey_domain::ports::Renewed {
                access_token: token,
                expires_in: 0,
                max_ttl: 0,
            })
    }

    async fn login(
        &self,
        _credentials: latchkey_domain::ports::LoginCredentials,
        _client_ip: Option<std::net::IpAddr>,
    ) -> Result<latchkey_domain::ports::LoggedIn, AuthorizeError> {
        self.answer
            .clone()
            .map(|grant| latchkey_domain::ports::LoggedIn {
                identity_id: latchkey_domain::model::IdentityId::from_stored(
                    grant.principal.to_string(),
                ),
                token: latchkey_domain::ports::Renewed {
                    access_token: latchkey_domain::ports::BearerToken::new("fake"),
                    expires_in: 0,
                    max_ttl: 0,
                },
            })
    }

    async fn revoke(
        &self,
        _token: latchkey_domain::ports::BearerToken,
        _client_ip: Option<std::net::IpAddr>,
    ) -> Result<(), AuthorizeError> {
        self.answer.clone().map(drop)
    }

    async fn count_encryptions(
        &self,
        _project_id: &ProjectId,
        count: u64,
    ) -> Result<(), AuthorizeError> {
        self.counted
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        self.answer.clone().map(drop)
    }

    async fn audit_key(&self) -> Result<latchkey_domain::audit::AuditKey, AuthorizeError> {
        Ok(latchkey_domain::audit::AuditKey::from_bytes([7; 32]))
    }

    async fn audit_reach(
        &self,
        _token: latchkey_domain::ports::BearerToken,
        _client_ip: Option<std::net::IpAddr>,
    ) -> Result<latchkey_domain::audit::reach::AuditReader, AuthorizeError> {
        Ok(latchkey_domain::audit::reach::AuditReader {
            principal: latchkey_domain::model::Principal::Identity(
                latchkey_domain::model::IdentityId::from_stored("fake-admin".into()),
            ),
            reach: latchkey_domain::audit::reach::AuditReach::All,
        })
    }
}
