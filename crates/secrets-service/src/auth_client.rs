//! `Authorizer` over gRPC: asks the auth service and fails closed.

use std::time::Duration;

use latchkey_domain::crypto::{Sealed, WireKey};
use latchkey_domain::ports::{AuthorizationRequest, AuthorizeError, Authorizer, Grant};
use latchkey_domain::scope::{Action, Scope, Scopes};
use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_service_kit::config::{INTERNAL_KEY_HEADER, InternalKey};
use latchkey_service_kit::status::access_error_of;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

/// The auth service's `Authorize`, called with the internal key.
#[derive(Debug, Clone)]
pub struct GrpcAuthorizer {
    client: AuthServiceClient<Channel>,
    internal_key: InternalKey,
}

impl GrpcAuthorizer {
    /// A client of the auth service at `url` (connected lazily, so the
    /// secrets service starts even while the auth service is down).
    pub fn new(
        url: &str,
        internal_key: InternalKey,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect_lazy();
        Ok(Self {
            client: AuthServiceClient::new(channel),
            internal_key,
        })
    }
}

impl Authorizer for GrpcAuthorizer {
    async fn authorize(&self, req: AuthorizationRequest) -> Result<Grant, AuthorizeError> {
        let mut request = tonic::Request::new(pb::AuthorizeRequest {
            token: req.token.expose().to_owned(),
            client_ip: req.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            project_id: req.project_id.unwrap_or_default(),
            environment: req.environment.as_str().to_owned(),
            secret_path: req.path.as_str().to_owned(),
            action: match req.action {
                Action::Read => pb::Action::Read.into(),
                Action::Write => pb::Action::Write.into(),
            },
            raw: req.raw,
            recursive: req.recursive,
        });
        let key = MetadataValue::try_from(self.internal_key.expose()).map_err(|_| {
            unavailable("the internal key is not valid metadata; check LATCHKEY_INTERNAL_KEY")
        })?;
        request.metadata_mut().insert(INTERNAL_KEY_HEADER, key);
        let reply = self
            .client
            .clone()
            .authorize(request)
            .await
            .map_err(|status| authorize_error(&status))?
            .into_inner();
        Ok(grant_from_pb(reply)?)
    }
}

/// A status from `Authorize` as the domain error: denials and bad input keep
/// their meaning; anything else means no decision, so the call fails closed.
fn authorize_error(status: &tonic::Status) -> AuthorizeError {
    if let Some(denial) = access_error_of(status) {
        return denial.into();
    }
    match status.code() {
        tonic::Code::InvalidArgument => {
            let field = status.get_error_details().bad_request().and_then(|b| {
                b.field_violations
                    .first()
                    .map(|v| (v.field.clone(), v.description.clone()))
            });
            match field {
                Some((field, description)) => InvalidInput::new(field, description).into(),
                None => InvalidInput::new("request", status.message()).into(),
            }
        }
        tonic::Code::NotFound => AuthorizeError::NotFound(status.message().to_owned()),
        code => {
            tracing::warn!(code = ?code, "auth service did not answer Authorize");
            unavailable(&format!(
                "the auth service could not authorize the call ({code:?}); try again later"
            ))
            .into()
        }
    }
}

fn grant_from_pb(reply: pb::AuthorizeResponse) -> Result<Grant, AccessError> {
    let bad = |what: &str| unavailable(&format!("the auth service sent a malformed {what}"));
    let scopes = reply
        .scopes
        .iter()
        .map(|s| Scope::new(&s.environment, &s.secret_path))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("scope"))?;
    let project_key = match reply.project_key.as_str() {
        "" => None,
        text => Some(WireKey::parse(text).map_err(|_| bad("project key"))?),
    };
    Ok(Grant {
        principal: reply.principal,
        project_id: reply.project_id,
        scopes: Scopes::new(scopes),
        encrypted_project_key: reply.encrypted_project_key.map(|k| Sealed {
            ciphertext: k.ciphertext,
            iv: k.iv,
            tag: k.tag,
        }),
        project_key,
    })
}

fn unavailable(message: &str) -> AccessError {
    AccessError::new(Reason::AuthUnavailable, message)
}
