//! What every handler needs before its use case: the caller, the client IP
//! (the one the secrets service names, only behind the gate and the
//! internal key), and the request's fields in domain types.

use std::net::IpAddr;
use std::sync::Arc;

use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::Principal;
use latchkey_domain::ports::BearerToken;
use latchkey_proto::INTERNAL_KEY_HEADER;
use latchkey_service_kit::audit::Trail;
use latchkey_service_kit::request::{bearer_token, client_ip};
use tonic::{Request, Response, Status};

use super::{AuthGrpc, AuthorizeGate};
use crate::app::{AuthApp, Caller};
use crate::error::AuthError;

impl AuthGrpc {
    /// Serves `app`, honouring `x-forwarded-for` only from `trusted_proxies`,
    /// with `Authorize` open to internal-key holders.
    #[must_use]
    pub fn new(app: Arc<AuthApp>, trusted_proxies: TrustedIps) -> Self {
        Self {
            app,
            trusted_proxies,
            gate: AuthorizeGate::InternalKey,
        }
    }

    /// Who may call `Authorize` on this listener.
    #[must_use]
    pub fn with_gate(mut self, gate: AuthorizeGate) -> Self {
        self.gate = gate;
        self
    }

    /// The call's audit trail, of `kind`, opened with how it arrived.
    pub(super) fn trail<T>(&self, request: &Request<T>, kind: &'static str) -> Trail {
        let trail = Trail::of_grpc(request, &self.trusted_proxies).watched_by(self.app.audit());
        trail.kind(kind);
        trail
    }

    /// Records the call, then answers it: `AUDIT_UNAVAILABLE` instead when
    /// its event could not be recorded.
    pub(super) async fn answer<T>(
        &self,
        trail: &Trail,
        result: Result<T, AuthError>,
    ) -> Result<Response<T>, Status> {
        let refused = result.as_ref().err().map(AuthError::reason);
        self.app
            .audit()
            .close(trail, refused)
            .await
            .map_err(AuthError::from)?;
        Ok(Response::new(result?))
    }

    /// [`Self::answer`], but for a call the secrets service made on its
    /// client's behalf (`on_behalf`), which the secrets service records.
    pub(super) async fn answer_unless<T>(
        &self,
        on_behalf: bool,
        trail: &Trail,
        result: Result<T, AuthError>,
    ) -> Result<Response<T>, Status> {
        if on_behalf {
            trail.recorded_elsewhere();
            return Ok(Response::new(result?));
        }
        self.answer(trail, result).await
    }

    /// Authenticates an admin call: first, before its fields are parsed.
    pub(super) async fn caller<T>(
        &self,
        request: &Request<T>,
        trail: &Trail,
    ) -> Result<Caller, AuthError> {
        let token = bearer(request)?;
        trail.presented(&token);
        let caller = self
            .app
            .caller(&token, self.ip(request))
            .await
            .inspect_err(|e| {
                // Denied past verification (an expired token): say whose.
                if let AuthError::Denied(denial) = e
                    && let Some(principal) = &denial.principal
                {
                    trail.verified(principal);
                }
            })?;
        trail.verified(&Principal::Identity(caller.identity().id.clone()));
        Ok(caller)
    }

    /// The caller's address, or, when the request names one (`named`), the
    /// address of the client the secrets service acts for: only it may name
    /// one, where `Authorize` is served and with the internal key.
    pub(super) fn client_ip_for<T>(
        &self,
        request: &Request<T>,
        named: &str,
    ) -> Result<Option<IpAddr>, AuthError> {
        if named.is_empty() {
            return Ok(self.ip(request));
        }
        self.check_gate(request)?;
        self.app
            .check_internal_key(presented_internal_key(request).as_deref())?;
        let ip = named.parse().map_err(|_| {
            AuthError::from(latchkey_domain::InvalidInput::new(
                "client_ip",
                format!(
                    "{} is not an IP address",
                    latchkey_domain::error::excerpt(named)
                ),
            ))
        })?;
        Ok(Some(ip))
    }

    pub(super) fn ip<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        client_ip(
            request.remote_addr().map(|a| a.ip()),
            request.metadata().as_ref(),
            &self.trusted_proxies,
        )
    }
}

/// The internal key an internal call presents, checked by the use case.
pub(super) fn presented_internal_key<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get(INTERNAL_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(super) fn bearer<T>(request: &Request<T>) -> Result<BearerToken, AuthError> {
    Ok(bearer_token(request.metadata().as_ref())?)
}

/// A request's arguments in domain types, or `INVALID_ARGUMENT` naming the field.
pub(super) fn parse<'a, R, T>(req: &'a R) -> Result<T, AuthError>
where
    T: TryFrom<&'a R, Error = latchkey_domain::InvalidInput>,
{
    Ok(T::try_from(req)?)
}
