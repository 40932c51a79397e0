//! Failures as Infisical's clients read them: the HTTP status and
//! `{statusCode, message, error, reqId}`, plus Latchkey's stable `reason`
//! (and `field` for bad input). Every client reads `message`; the CLI also
//! reads `reqId` and `error`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_domain::InvalidInput;
use latchkey_domain::error::StatusClass;
use serde::Serialize;

use crate::error::{Outcome, SecretsError};

/// A failed request.
#[derive(Debug)]
pub(super) struct HttpError(pub(super) SecretsError);

impl<E: Into<SecretsError>> From<E> for HttpError {
    fn from(err: E) -> Self {
        HttpError(err.into())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    status_code: u16,
    message: &'a str,
    error: &'a str,
    req_id: String,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        self.0.log();
        let invalid_message;
        let (status, reason, message, field, retry_after): (_, &'static str, _, _, _) = match self
            .0
            .outcome()
        {
            Outcome::Denied(e) => (
                http_status(e.reason.status_class()),
                e.reason.as_str(),
                e.message.as_str(),
                None,
                e.retry_after,
            ),
            Outcome::Invalid(e) => {
                invalid_message = e.to_string();
                (
                    StatusCode::BAD_REQUEST,
                    latchkey_service_kit::status::INVALID_ARGUMENT_REASON,
                    invalid_message.as_str(),
                    Some(e.field.as_str()),
                    None,
                )
            }
            Outcome::NotFound(m) => (StatusCode::NOT_FOUND, "NOT_FOUND", m, None, None),
            // Infisical answers a create of an existing secret with a 400.
            Outcome::AlreadyExists(m) => (StatusCode::BAD_REQUEST, "ALREADY_EXISTS", m, None, None),
            Outcome::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error; the service log has the details",
                None,
                None,
            ),
        };
        let body = Body {
            status_code: status.as_u16(),
            message,
            error: error_name(status),
            req_id: request_id(),
            reason,
            field,
        };
        tracing::debug!(req_id = %body.req_id, status = status.as_u16(), "HTTP error");
        let mut response = (status, Json(&body)).into_response();
        response
            .extensions_mut()
            .insert(super::trace::Refused(reason));
        if let Some(delay) = retry_after {
            let seconds = delay.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// A request that took longer than the request timeout: 503, retryable.
pub(super) fn timed_out(after: std::time::Duration) -> Response {
    let message = format!(
        "the request took longer than {} s and was abandoned; retry",
        after.as_secs()
    );
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let body = Body {
        status_code: status.as_u16(),
        message: &message,
        error: error_name(status),
        req_id: request_id(),
        reason: "TIMEOUT",
        field: None,
    };
    tracing::warn!(req_id = %body.req_id, timeout_seconds = after.as_secs(), "HTTP request timed out");
    let mut response = (status, [(header::RETRY_AFTER, "1")], Json(&body)).into_response();
    response
        .extensions_mut()
        .insert(super::trace::Refused("TIMEOUT"));
    response
}

/// The HTTP status of a denial's class, as Infisical's clients expect: 401
/// for the token, 403 for access, 400 for an end-to-end encrypted project,
/// 503 and 429 to retry (the gRPC codes are `service_kit::status`'s).
fn http_status(class: StatusClass) -> StatusCode {
    match class {
        StatusClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        StatusClass::PermissionDenied => StatusCode::FORBIDDEN,
        StatusClass::FailedPrecondition => StatusCode::BAD_REQUEST,
        StatusClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        StatusClass::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
    }
}

/// Infisical's `error` names for the statuses it sends.
fn error_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::UNAUTHORIZED => "UnauthorizedError",
        StatusCode::FORBIDDEN => "PermissionDenied",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::TOO_MANY_REQUESTS => "RateLimitExceeded",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        _ => "InternalServerError",
    }
}

/// A fresh id for the caller to quote; it is logged with the error.
fn request_id() -> String {
    format!("req-{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// Any path this API does not serve: 404 naming it.
pub(super) async fn unknown_route(uri: axum::http::Uri) -> HttpError {
    HttpError(SecretsError::NotFound(format!(
        "Latchkey does not serve {}; see the README's table of the Infisical endpoints it serves",
        uri.path()
    )))
}

/// Bad input in `field` (an Infisical parameter name).
pub(super) fn invalid(field: &str, message: impl Into<String>) -> HttpError {
    HttpError(SecretsError::Invalid(InvalidInput::new(field, message)))
}

#[cfg(test)]
mod tests {
    use latchkey_domain::Reason;

    use super::*;

    #[test]
    fn reasons_map_to_the_http_statuses_infisicals_clients_expect() {
        let table = [
            ("TOKEN_MALFORMED", 401),
            ("TOKEN_INVALID", 401),
            ("TOKEN_EXPIRED", 401),
            ("TOKEN_REVOKED", 401),
            ("TOKEN_INACTIVE", 401),
            ("TOKEN_USES_EXHAUSTED", 401),
            ("IP_NOT_TRUSTED", 403),
            ("SCOPE_DENIED", 403),
            ("PERMISSION_DENIED", 403),
            ("E2EE_ENABLED", 400),
            ("AUTH_UNAVAILABLE", 503),
            ("TOO_MANY_FAILED_ATTEMPTS", 429),
            ("STORE_UNAVAILABLE", 503),
            ("AUDIT_UNAVAILABLE", 503),
        ];
        assert_eq!(table.len(), Reason::ALL.len());
        for (wire, status) in table {
            let reason = Reason::from_wire(wire).unwrap();
            assert_eq!(
                http_status(reason.status_class()).as_u16(),
                status,
                "{wire}"
            );
        }
    }
}
