//! `Authorize`: whether the secrets service may serve a call, consuming
//! one use when it may.

use latchkey_domain::access::{
    Form, Target, check_client_ip, check_raw_allowed, check_scoped_access, check_token_state,
    uses_exhausted_error,
};
use latchkey_domain::crypto::{WireKey, key_rotation_recommended};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::Principal;
use latchkey_domain::model::{
    AccessToken, AccessTokenId, Identity, Project, ProjectId, ServiceToken,
};
use latchkey_domain::ports::{AuthorizationRequest, Grant};
use latchkey_domain::scope::{Action, Scopes};
use latchkey_domain::{AccessError, InvalidInput, Reason};

use super::{AuthApp, Authenticated, Freshness};
use crate::error::AuthError;

impl AuthApp {
    /// Refuses a caller without the internal key: only the secrets service
    /// may ask on a client's behalf (it vouches for the client IP).
    pub fn check_internal_key(&self, presented_key: Option<&str>) -> Result<(), AuthError> {
        if presented_key.is_some_and(|k| self.internal_key.matches(k)) {
            return Ok(());
        }
        Err(AccessError::new(
            Reason::PermissionDenied,
            "internal call: only the secrets service, presenting the internal key, may make it",
        )
        .into())
    }

    /// Decides whether the secrets service may serve a call, and consumes one
    /// use when it may. Only callers presenting the internal key are heard,
    /// because they vouch for the client IP.
    pub async fn authorize(
        &self,
        presented_key: Option<&str>,
        req: AuthorizationRequest,
    ) -> Result<Grant, AuthError> {
        self.check_internal_key(presented_key)?;
        match self
            .authenticate(&req.token, req.client_ip, Freshness::Cached)
            .await?
        {
            // Denied past verification: the denial names whose token it was.
            Authenticated::Service { token } => {
                let about = (
                    Principal::ServiceToken(token.id.clone()),
                    Some(token.project_id.clone()),
                );
                self.authorize_service_token(token, &req)
                    .await
                    .map_err(|e| e.about(about))
            }
            Authenticated::Identity { token, identity } => {
                let about = (
                    Principal::Identity(identity.id.clone()),
                    req.project_id.clone(),
                );
                self.authorize_identity(token, identity, &req)
                    .await
                    .map_err(|e| e.about(about))
            }
        }
    }

    pub(super) async fn authorize_service_token(
        &self,
        token: ServiceToken,
        req: &AuthorizationRequest,
    ) -> Result<Grant, AuthError> {
        if let Some(asked) = req.project_id.as_ref()
            && *asked != token.project_id
        {
            return Err(AccessError::new(
                Reason::PermissionDenied,
                format!(
                    "the service token belongs to project {}, not {asked}",
                    token.project_id
                ),
            )
            .into());
        }
        let project = self
            .load_project(&token.project_id, Freshness::Cached)
            .await?;
        check_client_ip(&token.trusted_ips, &project.trusted_ips, req.client_ip)?;
        check_scoped_access(&token.scopes, token.permissions, target(req))?;
        check_raw_allowed(req.form, project.e2ee)?;
        // Service tokens have no use limit: their uses are counted in memory and flushed.
        self.store.record_service_token_use(&token.id);
        self.count_write(&project, req.action).await?;
        Ok(Grant {
            principal: Principal::ServiceToken(token.id.clone()),
            project_key: self.raw_key(&project, req.form)?,
            project_id: project.id,
            scopes: token.scopes,
            encrypted_project_key: Some(token.encrypted_project_key),
        })
    }

    pub(super) async fn authorize_identity(
        &self,
        token: AccessToken,
        identity: Identity,
        req: &AuthorizationRequest,
    ) -> Result<Grant, AuthError> {
        let project_id = req.project_id.as_ref().ok_or_else(|| {
            InvalidInput::new(
                "project_id",
                "is required with an identity access token (service tokens know their project)",
            )
        })?;
        // The token's own IPs, then membership, before anything tells
        // whether the project exists.
        check_client_ip(&token.trusted_ips, &TrustedIps::default(), req.client_ip)?;
        let membership = self
            .store
            .membership(project_id, &identity.id, Freshness::Cached)
            .await?
            .ok_or_else(|| {
                AccessError::new(
                    Reason::PermissionDenied,
                    format!(
                        "identity {} is not a member of project {project_id}; an admin can add it with AddIdentityToProject",
                        identity.id
                    ),
                )
            })?;
        let project = self.load_project(project_id, Freshness::Cached).await?;
        check_client_ip(&token.trusted_ips, &project.trusted_ips, req.client_ip)?;
        let scopes = match membership.scopes {
            Some(scopes) => scopes,
            // An unscoped membership covers the project's environments, not any slug.
            None if project
                .environments
                .iter()
                .any(|(e, _)| *e == req.environment) =>
            {
                Scopes::everything_in(&req.environment)
            }
            None => {
                return Err(AccessError::new(
                    Reason::ScopeDenied,
                    format!(
                        "environment {:?} does not exist in project {}",
                        req.environment.as_str(),
                        project.id
                    ),
                )
                .into());
            }
        };
        check_scoped_access(&scopes, membership.role.permissions(), target(req))?;
        check_raw_allowed(req.form, project.e2ee)?;
        self.consume_identity_use(&token).await?;
        self.count_write(&project, req.action).await?;
        Ok(Grant {
            principal: Principal::Identity(identity.id.clone()),
            project_key: self.raw_key(&project, req.form)?,
            project_id: project.id,
            scopes,
            encrypted_project_key: None,
        })
    }

    /// Consumes one use in one atomic statement; when none is left (or the
    /// token expired or was revoked since it was read) says which.
    pub(super) async fn consume_identity_use(&self, token: &AccessToken) -> Result<(), AuthError> {
        if token.num_uses_limit == 0 {
            self.store.record_identity_token_use(&token.id);
            return Ok(());
        }
        if self.store.consume_identity_token_use(&token.id).await? {
            return Ok(());
        }
        self.denial_for(&token.id).await
    }

    /// Why a conditional update on a live token matched nothing.
    pub(super) async fn denial_for<T>(&self, token_id: &AccessTokenId) -> Result<T, AuthError> {
        let current = self
            .store
            .identity_token(token_id, Freshness::Fresh)
            .await?
            .ok_or_else(|| AccessError::new(Reason::TokenRevoked, "the token was deleted"))?;
        check_token_state(current.state(), self.clock.now())?;
        Err(uses_exhausted_error(current.num_uses_limit).into())
    }

    pub(super) async fn count_write(
        &self,
        project: &Project,
        action: Action,
    ) -> Result<(), AuthError> {
        if action == Action::Write {
            // Each write is one AES-GCM encryption under the project key, by the client or by us.
            let count = self.store.count_encryptions(project, 1);
            report_encryptions(&project.id, count);
        }
        Ok(())
    }

    /// Counts `count` encryptions the secrets service made under a
    /// project's key outside a write (re-encryptions for Infisical's older
    /// clients); internal, like `Authorize`. Returns the key's total.
    pub async fn count_encryptions(
        &self,
        presented_key: Option<&str>,
        project_id: &ProjectId,
        count: u64,
    ) -> Result<u64, AuthError> {
        self.check_internal_key(presented_key)?;
        if count == 0 || count > MAX_COUNTED_AT_ONCE {
            return Err(
                InvalidInput::new("count", format!("must be 1 to {MAX_COUNTED_AT_ONCE}")).into(),
            );
        }
        let project = self.load_project(project_id, Freshness::Cached).await?;
        let total = self.store.count_encryptions(&project, count);
        report_encryptions(&project.id, total);
        Ok(total)
    }

    pub(super) fn raw_key(
        &self,
        project: &Project,
        form: Form,
    ) -> Result<Option<WireKey>, AuthError> {
        if form == Form::Raw {
            self.project_key(project).map(Some)
        } else {
            Ok(None)
        }
    }
}

pub(super) fn target(req: &AuthorizationRequest) -> Target<'_> {
    Target {
        environment: &req.environment,
        path: &req.path,
        action: req.action,
        recursive: req.recursive,
    }
}

/// The most encryptions one `CountEncryptions` call may count.
const MAX_COUNTED_AT_ONCE: u64 = 1_000_000;

/// The key's encryption count as a metric, and a warning past 90% of its budget.
fn report_encryptions(project_id: &ProjectId, count: u64) {
    latchkey_service_kit::telemetry::record_key_encryptions(project_id.as_str(), count);
    if key_rotation_recommended(count) {
        tracing::warn!(
            project.id = %project_id,
            key.encryptions = count,
            "project key passed 90% of its 2^32 AES-GCM encryption budget; rotate it"
        );
    }
}
