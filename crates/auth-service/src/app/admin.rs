//! Who may administer what. Delegation never widens: an admin narrowed by
//! membership scopes manages only tokens and memberships whose every scope
//! lies inside its own, and project-wide settings (the IP allowlist,
//! environments, unscoped memberships) need an unscoped project admin or an
//! org admin.
//!
//! Every admin call authenticates first ([`AuthApp::caller`]), then the
//! transport parses its fields, then the use case asks
//! [`AuthApp::admin_of`] or [`AuthApp::admin_of_service_token`] before any
//! other read: a caller who may not act learns nothing of whether the
//! object exists.

use std::net::IpAddr;

use latchkey_domain::access::check_client_ip;
use latchkey_domain::audit::reach::{AuditReach, AuditReader, ProjectReach};
use latchkey_domain::identity::OrgRole;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{
    AccessToken, Identity, Principal, ProjectId, ServiceToken, ServiceTokenId,
};
use latchkey_domain::ports::BearerToken;
use latchkey_domain::scope::Scopes;
use latchkey_domain::{AccessError, Reason};

use super::{AuthApp, Freshness};
use crate::error::AuthError;

/// An authenticated identity about to make an admin call, not yet
/// authorised for any project.
#[derive(Debug, Clone)]
pub struct Caller {
    pub(super) token: AccessToken,
    pub(super) identity: Identity,
    pub(super) client_ip: Option<IpAddr>,
}

impl Caller {
    /// The identity making the call.
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Where an admin call acts: the whole organisation, or one project (whose
/// admins may also make it).
#[derive(Debug, Clone, Copy)]
pub(super) enum AdminScope<'a> {
    /// Org admins only.
    Org,
    /// Org admins and the project's admins.
    Project(&'a ProjectId),
}

/// An identity allowed to administer, and how far that reaches.
#[derive(Debug, Clone)]
pub(super) struct Admin {
    reach: Reach,
}

#[derive(Debug, Clone)]
enum Reach {
    /// An org admin: everything.
    Org,
    /// A project's admin, narrowed to `scopes` when they are set.
    Project { scopes: Option<Scopes> },
}

impl Admin {
    /// The admin's scopes when it is narrowed by them; `None` is unscoped.
    #[must_use]
    pub(super) fn scopes(&self) -> Option<&Scopes> {
        match &self.reach {
            Reach::Org | Reach::Project { scopes: None } => None,
            Reach::Project { scopes: Some(s) } => Some(s),
        }
    }

    /// Refuses `what` (a token's or membership's scopes) unless every one
    /// of `scopes` lies inside the admin's own.
    pub(super) fn require_covers(&self, scopes: &Scopes, what: &str) -> Result<(), AuthError> {
        let Some(own) = self.scopes() else {
            return Ok(());
        };
        match own.first_uncovered(scopes) {
            None => Ok(()),
            Some(over) => Err(AccessError::new(
                Reason::PermissionDenied,
                format!(
                    "{what} would reach {over}, outside this admin's scopes ({}): a scoped admin \
                     grants only what it holds",
                    own.describe()
                ),
            )
            .into()),
        }
    }

    /// Refuses `what`, a project-wide change, to an admin narrowed by scopes.
    pub(super) fn require_unscoped(&self, what: &str) -> Result<(), AuthError> {
        match self.scopes() {
            None => Ok(()),
            Some(own) => Err(AccessError::new(
                Reason::PermissionDenied,
                format!(
                    "{what} needs an unscoped project admin or an org admin; this admin is narrowed to {}",
                    own.describe()
                ),
            )
            .into()),
        }
    }

    /// True when the admin may manage a token or membership with `scopes`.
    #[must_use]
    pub(super) fn covers(&self, scopes: &Scopes) -> bool {
        self.scopes()
            .is_none_or(|own| own.first_uncovered(scopes).is_none())
    }
}

impl AuthApp {
    /// Admits org admins, and for [`AdminScope::Project`] that project's
    /// admins calling from inside its IP allowlist; consumes one use.
    pub(super) async fn admin_of(
        &self,
        caller: &Caller,
        scope: AdminScope<'_>,
    ) -> Result<Admin, AuthError> {
        let admin = match self.reach(caller, scope).await? {
            Some(reach) => Admin { reach },
            None => {
                let needs = match scope {
                    AdminScope::Org => "org role admin".to_owned(),
                    AdminScope::Project(p) => {
                        format!("org role admin or the admin role in project {p}")
                    }
                };
                return Err(denied(caller, &needs));
            }
        };
        self.consume_identity_use(&caller.token).await?;
        Ok(admin)
    }

    /// Admits org admins, and admins of the token's project whose scopes
    /// cover the token's. Unknown tokens get the same denial as others'
    /// tokens. Returns the token's row when it was read.
    pub(super) async fn admin_of_service_token(
        &self,
        caller: &Caller,
        token_id: &ServiceTokenId,
    ) -> Result<(Admin, Option<ServiceToken>), AuthError> {
        let needs = "org role admin, or the admin role in the token's project with scopes covering the token's";
        if caller.identity.org_role == OrgRole::Admin {
            return Ok((self.admin_of(caller, AdminScope::Org).await?, None));
        }
        let token = self
            .store
            .service_token(token_id, Freshness::Fresh)
            .await?
            .ok_or_else(|| denied(caller, needs))?;
        let reach = self
            .reach(caller, AdminScope::Project(&token.project_id))
            .await?
            .ok_or_else(|| denied(caller, needs))?;
        let admin = Admin { reach };
        if !admin.covers(&token.scopes) {
            return Err(denied(caller, needs));
        }
        self.consume_identity_use(&caller.token).await?;
        Ok((admin, Some(token)))
    }

    /// Whose audit events `caller` may read: an org admin every event; a
    /// project admin those of the projects it administers (each inside its
    /// IP allowlist), narrowed to its scopes; anyone else is refused.
    /// Consumes one use.
    pub async fn audit_reach(&self, caller: &Caller) -> Result<AuditReader, AuthError> {
        let reach = if caller.identity.org_role == OrgRole::Admin {
            AuditReach::All
        } else {
            let mut projects = Vec::new();
            let memberships = self.store.memberships_of(&caller.identity.id).await?;
            for membership in memberships.into_iter().filter(|m| m.role.manages_project()) {
                let project = self
                    .load_project(&membership.project_id, Freshness::Fresh)
                    .await?;
                let allowed = check_client_ip(
                    &TrustedIps::default(),
                    &project.trusted_ips,
                    caller.client_ip,
                );
                if allowed.is_ok() {
                    projects.push(ProjectReach {
                        project_id: membership.project_id.into_string(),
                        scopes: membership.scopes,
                    });
                }
            }
            if projects.is_empty() {
                return Err(denied(
                    caller,
                    "org role admin, or the admin role in a project, to read the audit trail",
                ));
            }
            AuditReach::Projects(projects)
        };
        self.consume_identity_use(&caller.token).await?;
        Ok(AuditReader {
            principal: Principal::Identity(caller.identity.id.clone()),
            reach,
        })
    }

    /// [`Self::audit_reach`] of `token`'s holder, for the internal caller
    /// presenting `presented_key` (the secrets service's audit API).
    pub async fn audit_reach_for(
        &self,
        presented_key: Option<&str>,
        token: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<AuditReader, AuthError> {
        self.check_internal_key(presented_key)?;
        let caller = self.caller(token, client_ip).await?;
        self.audit_reach(&caller).await
    }

    /// How far `caller` reaches in `scope`, or `None` when it may not act.
    async fn reach(
        &self,
        caller: &Caller,
        scope: AdminScope<'_>,
    ) -> Result<Option<Reach>, AuthError> {
        // Org admins can change any allowlist, so one would not hold them.
        if caller.identity.org_role == OrgRole::Admin {
            return Ok(Some(Reach::Org));
        }
        let AdminScope::Project(project_id) = scope else {
            return Ok(None);
        };
        let Some(membership) = self
            .store
            .membership(project_id, &caller.identity.id, Freshness::Fresh)
            .await?
            .filter(|m| m.role.manages_project())
        else {
            return Ok(None);
        };
        // A member may learn that its project exists; now apply its allowlist.
        let project = self.load_project(project_id, Freshness::Fresh).await?;
        check_client_ip(
            &TrustedIps::default(),
            &project.trusted_ips,
            caller.client_ip,
        )?;
        Ok(Some(Reach::Project {
            scopes: membership.scopes,
        }))
    }
}

pub(super) fn denied(caller: &Caller, needs: &str) -> AuthError {
    AccessError::new(
        Reason::PermissionDenied,
        format!(
            "this call needs {needs}; identity {} has org role {}",
            caller.identity.id,
            caller.identity.org_role.as_str()
        ),
    )
    .into()
}
