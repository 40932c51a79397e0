//! Denial reasons (DESIGN.md's error table) and invalid input.

use std::fmt;

/// A stable reason for a denial, sent as `google.rpc.ErrorInfo.reason`.
///
/// The strings never change: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not a token of any known format.
    TokenMalformed,
    /// Unknown token id or wrong secret (deliberately indistinguishable).
    TokenInvalid,
    /// Past its expiry.
    TokenExpired,
    /// Revoked or deleted.
    TokenRevoked,
    /// A deactivated service token.
    TokenInactive,
    /// Maximum number of uses reached.
    TokenUsesExhausted,
    /// Client IP outside the token's or the project's allowlist.
    IpNotTrusted,
    /// Environment or path outside the token's scopes.
    ScopeDenied,
    /// The token lacks the permission or role for the call.
    PermissionDenied,
    /// A plaintext call on an end-to-end encrypted project.
    E2eeEnabled,
    /// The secrets service cannot reach the auth service.
    AuthUnavailable,
    /// Too many failed verifications from this client IP or for this token
    /// id, or too many new tokens waiting for verification: retry later.
    TooManyFailedAttempts,
    /// The database is busy or unreachable: retry later.
    StoreUnavailable,
    /// Audit is required and the call's event could not be recorded.
    AuditUnavailable,
}

/// The class of a [`Reason`], which each transport maps to its own status
/// (a gRPC code in `service_kit::status`, an HTTP status in the HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// `UNAUTHENTICATED`
    Unauthenticated,
    /// `PERMISSION_DENIED`
    PermissionDenied,
    /// `FAILED_PRECONDITION`
    FailedPrecondition,
    /// `UNAVAILABLE`
    Unavailable,
    /// `RESOURCE_EXHAUSTED`
    ResourceExhausted,
}

impl Reason {
    /// Every reason, for exhaustive tests and parsing.
    pub const ALL: [Reason; 14] = [
        Reason::TokenMalformed,
        Reason::TokenInvalid,
        Reason::TokenExpired,
        Reason::TokenRevoked,
        Reason::TokenInactive,
        Reason::TokenUsesExhausted,
        Reason::IpNotTrusted,
        Reason::ScopeDenied,
        Reason::PermissionDenied,
        Reason::E2eeEnabled,
        Reason::AuthUnavailable,
        Reason::TooManyFailedAttempts,
        Reason::StoreUnavailable,
        Reason::AuditUnavailable,
    ];

    /// The wire string, e.g. `TOKEN_EXPIRED`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TokenMalformed => "TOKEN_MALFORMED",
            Reason::TokenInvalid => "TOKEN_INVALID",
            Reason::TokenExpired => "TOKEN_EXPIRED",
            Reason::TokenRevoked => "TOKEN_REVOKED",
            Reason::TokenInactive => "TOKEN_INACTIVE",
            Reason::TokenUsesExhausted => "TOKEN_USES_EXHAUSTED",
            Reason::IpNotTrusted => "IP_NOT_TRUSTED",
            Reason::ScopeDenied => "SCOPE_DENIED",
            Reason::PermissionDenied => "PERMISSION_DENIED",
            Reason::E2eeEnabled => "E2EE_ENABLED",
            Reason::AuthUnavailable => "AUTH_UNAVAILABLE",
            Reason::TooManyFailedAttempts => "TOO_MANY_FAILED_ATTEMPTS",
            Reason::StoreUnavailable => "STORE_UNAVAILABLE",
            Reason::AuditUnavailable => "AUDIT_UNAVAILABLE",
        }
    }

    /// Parses a wire string back into a reason.
    #[must_use]
    pub fn from_wire(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The gRPC status class DESIGN.md assigns to this reason.
    #[must_use]
    pub fn status_class(self) -> StatusClass {
        match self {
            Reason::TokenMalformed
            | Reason::TokenInvalid
            | Reason::TokenExpired
            | Reason::TokenRevoked
            | Reason::TokenInactive
            | Reason::TokenUsesExhausted => StatusClass::Unauthenticated,
            Reason::IpNotTrusted | Reason::ScopeDenied | Reason::PermissionDenied => {
                StatusClass::PermissionDenied
            }
            Reason::E2eeEnabled => StatusClass::FailedPrecondition,
            Reason::AuthUnavailable | Reason::StoreUnavailable | Reason::AuditUnavailable => {
                StatusClass::Unavailable
            }
            Reason::TooManyFailedAttempts => StatusClass::ResourceExhausted,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A denied call: a stable reason and a message a person can act on.
///
/// Messages never contain a token, a key or a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct AccessError {
    /// Why the call was denied.
    pub reason: Reason,
    /// What happened and what to do about it.
    pub message: String,
    /// When retrying may succeed (`google.rpc.RetryInfo`), for denials that pass.
    pub retry_after: Option<std::time::Duration>,
    /// Whose verified token was denied, when verification passed (so the
    /// audit trail names the principal of a scope denial).
    pub principal: Option<crate::model::Principal>,
    /// The project the denied call was about, when known.
    pub project_id: Option<crate::model::ProjectId>,
}

impl AccessError {
    /// A denial with `reason` and `message`.
    #[must_use]
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retry_after: None,
            principal: None,
            project_id: None,
        }
    }

    /// The same denial, of `principal`'s verified token, about `project_id`.
    #[must_use]
    pub fn about(
        mut self,
        principal: crate::model::Principal,
        project_id: Option<crate::model::ProjectId>,
    ) -> Self {
        self.principal = Some(principal);
        self.project_id = project_id;
        self
    }

    /// The database is busy or unreachable (`STORE_UNAVAILABLE`); a retry
    /// after a second may succeed. Nothing was changed.
    #[must_use]
    pub fn store_unavailable() -> Self {
        Self::new(
            Reason::StoreUnavailable,
            "the database is busy or unreachable; nothing was changed, retry in a moment",
        )
        .retry_after(std::time::Duration::from_secs(1))
    }

    /// Audit is required and this call's event could not be recorded
    /// (`AUDIT_UNAVAILABLE`); a retry after a second may succeed.
    #[must_use]
    pub fn audit_unavailable() -> Self {
        Self::new(
            Reason::AuditUnavailable,
            "audit is required and this call's event could not be recorded, so the call was \
             not answered; retry in a moment",
        )
        .retry_after(std::time::Duration::from_secs(1))
    }

    /// The same denial, saying a retry after `delay` may succeed.
    #[must_use]
    pub fn retry_after(mut self, delay: std::time::Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

/// `raw` quoted for an error message, cut to its first 64 characters: a
/// message never echoes an oversized input whole.
#[must_use]
pub fn excerpt(raw: &str) -> String {
    const SHOWN: usize = 64;
    match raw.char_indices().nth(SHOWN) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!("{:?}... ({} characters)", &raw[..cut], raw.chars().count()),
    }
}

/// Bad input: names the field and says what is wrong. Maps to `INVALID_ARGUMENT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct InvalidInput {
    /// The request field, e.g. `secret_path` or `scopes[1].environment`.
    pub field: String,
    /// What is wrong and, where useful, a hint.
    pub message: String,
}

impl InvalidInput {
    /// Invalid input in `field`.
    #[must_use]
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error reported against another field name, e.g. an indexed one.
    #[must_use]
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_wire_string() {
        for reason in Reason::ALL {
            assert_eq!(Reason::from_wire(reason.as_str()), Some(reason));
        }
        assert_eq!(Reason::from_wire("NOPE"), None);
    }

    #[test]
    fn reasons_map_to_the_status_classes_of_the_design_table() {
        use StatusClass::*;
        let table = [
            ("TOKEN_MALFORMED", Unauthenticated),
            ("TOKEN_INVALID", Unauthenticated),
            ("TOKEN_EXPIRED", Unauthenticated),
            ("TOKEN_REVOKED", Unauthenticated),
            ("TOKEN_INACTIVE", Unauthenticated),
            ("TOKEN_USES_EXHAUSTED", Unauthenticated),
            ("IP_NOT_TRUSTED", PermissionDenied),
            ("SCOPE_DENIED", PermissionDenied),
            ("PERMISSION_DENIED", PermissionDenied),
            ("E2EE_ENABLED", FailedPrecondition),
            ("AUTH_UNAVAILABLE", Unavailable),
            ("TOO_MANY_FAILED_ATTEMPTS", ResourceExhausted),
            ("STORE_UNAVAILABLE", Unavailable),
            ("AUDIT_UNAVAILABLE", Unavailable),
        ];
        assert_eq!(table.len(), Reason::ALL.len());
        for (wire, class) in table {
            let reason = Reason::from_wire(wire).unwrap();
            assert_eq!(reason.status_class(), class, "{wire}");
        }
    }

    #[test]
    fn excerpts_cut_long_inputs() {
        assert_eq!(excerpt("dev"), "\"dev\"");
        let long = excerpt(&"x".repeat(1_000_000));
        assert!(
            long.len() < 100 && long.ends_with("(1000000 characters)"),
            "{long}"
        );
    }

    #[test]
    fn invalid_input_names_its_field() {
        let err = InvalidInput::new("secret_path", "must start with /").in_field("scopes[0]");
        assert_eq!(err.to_string(), "invalid scopes[0]: must start with /");
    }
}
