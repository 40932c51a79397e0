//! Domain errors as gRPC statuses with a `google.rpc.ErrorInfo` (domain
//! `latchkey`, a stable reason), and back.

use std::collections::HashMap;

use latchkey_domain::error::StatusClass;
use latchkey_domain::model::{Principal, ProjectId};
use latchkey_domain::{AccessError, InvalidInput, Reason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo` domain of every Latchkey error.
pub const ERROR_DOMAIN: &str = "latchkey";

/// The `ErrorInfo` reason of bad input.
pub const INVALID_ARGUMENT_REASON: &str = "INVALID_ARGUMENT";

/// A denial as a status with its reason.
#[must_use]
pub fn access_denied(err: &AccessError) -> Status {
    let code = code_of(err.reason.status_class());
    let mut about = HashMap::new();
    if let Some(principal) = &err.principal {
        about.insert("principal".to_owned(), principal.to_string());
    }
    if let Some(project_id) = &err.project_id {
        about.insert("project_id".to_owned(), project_id.as_str().to_owned());
    }
    let mut details = ErrorDetails::with_error_info(err.reason.as_str(), ERROR_DOMAIN, about);
    if let Some(delay) = err.retry_after {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(code, &err.message, details)
}

fn code_of(class: StatusClass) -> Code {
    match class {
        StatusClass::Unauthenticated => Code::Unauthenticated,
        StatusClass::PermissionDenied => Code::PermissionDenied,
        StatusClass::FailedPrecondition => Code::FailedPrecondition,
        StatusClass::Unavailable => Code::Unavailable,
        StatusClass::ResourceExhausted => Code::ResourceExhausted,
    }
}

/// Bad input: `INVALID_ARGUMENT` naming the field, as a `BadRequest` field
/// violation and in the message.
#[must_use]
pub fn invalid_argument(err: &InvalidInput) -> Status {
    with_reason(
        Code::InvalidArgument,
        INVALID_ARGUMENT_REASON,
        &err.to_string(),
        Some((&err.field, &err.message)),
    )
}

/// `NOT_FOUND` with reason `NOT_FOUND`.
#[must_use]
pub fn not_found(message: &str) -> Status {
    with_reason(Code::NotFound, "NOT_FOUND", message, None)
}

/// `ALREADY_EXISTS` with reason `ALREADY_EXISTS`.
#[must_use]
pub fn already_exists(message: &str) -> Status {
    with_reason(Code::AlreadyExists, "ALREADY_EXISTS", message, None)
}

/// `INTERNAL` with a generic message; the cause is logged, never sent.
#[must_use]
pub fn internal() -> Status {
    with_reason(
        Code::Internal,
        "INTERNAL",
        "internal error; the server log has the details",
        None,
    )
}

/// An error and its causes, outermost first, as one line for the log:
/// `a: b: c`. Messages a cause repeats are not printed twice.
#[must_use]
pub fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// The `ErrorInfo` reason of a status, if it has one.
#[must_use]
pub fn reason_of(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
}

/// A status from another Latchkey service as a domain denial, when it carries
/// a known denial reason.
#[must_use]
pub fn access_error_of(status: &Status) -> Option<AccessError> {
    let details = status.get_error_details();
    let info = details.error_info()?;
    let reason = Reason::from_wire(&info.reason)?;
    let mut error = AccessError::new(reason, status.message());
    if let Some(principal) = info
        .metadata
        .get("principal")
        .and_then(|p| Principal::parse(p, "principal").ok())
    {
        let project = info
            .metadata
            .get("project_id")
            .and_then(|p| ProjectId::parse(p, "project_id").ok());
        error = error.about(principal, project);
    }
    Some(match details.retry_info().and_then(|r| r.retry_delay) {
        Some(delay) => error.retry_after(delay),
        None => error,
    })
}

/// tonic's own refusal of a message over the size limit (`OUT_OF_RANGE`
/// without a reason) rewritten in a response's `headers` as Latchkey's
/// `INVALID_ARGUMENT` naming the limit; the new status, when it was one.
pub(crate) fn clarify_oversized(
    status: &tonic::Status,
    headers: &mut http::HeaderMap,
) -> Option<tonic::Status> {
    let tonics_own = status.code() == tonic::Code::OutOfRange
        && status.get_error_details().error_info().is_none();
    if !tonics_own {
        return None;
    }
    let clear = invalid_argument(&InvalidInput::new(
        "request",
        format!(
            "the message is larger than the {} bytes a request may be ({})",
            crate::accept::MAX_REQUEST_BYTES,
            status.message()
        ),
    ));
    headers.remove("grpc-message");
    headers.remove("grpc-status-details-bin");
    let _ = clear.add_header(headers);
    Some(clear)
}

fn with_reason(code: Code, reason: &str, message: &str, field: Option<(&str, &str)>) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    if let Some((field, description)) = field {
        details.add_bad_request_violation(field, description);
    }
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn cause_chain_prints_every_cause_once() {
        let err = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(cause_chain(&err), "outer: disk on fire");
    }

    #[test]
    fn every_reason_gets_its_design_code_and_round_trips() {
        for reason in Reason::ALL {
            let status = access_denied(&AccessError::new(reason, "why"));
            assert_eq!(status.code(), code_of(reason.status_class()));
            assert_eq!(status.message(), "why");
            assert_eq!(
                access_error_of(&status),
                Some(AccessError::new(reason, "why"))
            );
        }
    }

    #[test]
    fn a_retry_delay_travels_as_retry_info_and_back() {
        let err = AccessError::new(Reason::TooManyFailedAttempts, "retry in 3 s")
            .retry_after(std::time::Duration::from_secs(3));
        let status = access_denied(&err);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.get_error_details().retry_info().unwrap().retry_delay,
            Some(std::time::Duration::from_secs(3))
        );
        assert_eq!(access_error_of(&status), Some(err));
    }

    #[test]
    fn the_principal_and_project_of_a_denial_travel_with_it() {
        let principal = Principal::parse("service-token:0b0c", "p").unwrap();
        let project = ProjectId::parse("proj-1", "p").unwrap();
        let err = AccessError::new(Reason::ScopeDenied, "not in scope")
            .about(principal.clone(), Some(project.clone()));
        let back = access_error_of(&access_denied(&err)).unwrap();
        assert_eq!(back, err);
        let anonymous = AccessError::new(Reason::TokenInvalid, "no");
        assert_eq!(
            access_error_of(&access_denied(&anonymous)).unwrap(),
            anonymous
        );
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = invalid_argument(&InvalidInput::new("secret_path", "is relative"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid secret_path: is relative");
        assert_eq!(reason_of(&status).as_deref(), Some("INVALID_ARGUMENT"));
        let details = status.get_error_details();
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(violation.field, "secret_path");
        assert_eq!(access_error_of(&status), None);
    }
}
