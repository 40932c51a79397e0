//! The CLI's error type: what went wrong, the hint that helps, and the
//! exit code class it belongs to.

use latchkey_client::ClientError;
use latchkey_domain::Reason;
use latchkey_domain::error::StatusClass;
use tonic_types::StatusExt;

/// A failure, with the exit code class it belongs to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad flags or input, refused before any call.
    #[error("error: {0}")]
    Input(String),
    /// A denial or failure reported by a service.
    #[error("error: {reason}: {message}{hint}")]
    Server {
        reason: String,
        message: String,
        hint: String,
        exit: u8,
    },
    /// A service could not be reached.
    #[error(
        "error: cannot reach {addr}: {cause}\nhint: is `make run` running? Set --auth-addr/--secrets-addr or LATCHKEY_AUTH_ADDR/LATCHKEY_SECRETS_ADDR."
    )]
    Unreachable { addr: String, cause: String },
    /// The connection broke during a call: usually TLS settings that do
    /// not match the server's.
    #[error(
        "error: the connection failed: {cause}\nhint: check the address and TLS settings: --tls or --ca-cert for a TLS server, --client-cert and --client-key where it requires mTLS, http:// for a plaintext one"
    )]
    Connection { cause: String },
    /// Data from the server did not decrypt with the token's key.
    #[error("error: {0}")]
    Crypto(String),
    /// The service token's key part does not open its project key: the
    /// servers never see the key part, so only the client can tell.
    #[error(
        "error: TOKEN_KEY_DAMAGED: the key part of this service token (after its last '.') does not open the token's project key\nhint: the token was damaged or mistyped: copy it whole again, as it was issued"
    )]
    DamagedKeyPart,
    /// `latchkey run` could not start the command.
    #[error("error: cannot run {program:?}: {cause}")]
    Spawn {
        program: String,
        cause: String,
        exit: u8,
    },
}

impl CliError {
    /// Exit codes: 2 input, 3 authentication, 4 permission, 5 unavailable,
    /// 126/127 a command `latchkey run` could not start (as shells do), 1
    /// anything else.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Server { exit, .. } => *exit,
            CliError::Unreachable { .. } | CliError::Connection { .. } => 5,
            CliError::Crypto(_) => 1,
            CliError::DamagedKeyPart => 3,
            CliError::Spawn { exit, .. } => *exit,
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        let info = status
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone());
        // A status the server sent has no source; one with a source was made
        // on this side from a broken connection.
        if info.is_none() && std::error::Error::source(&status).is_some() {
            return ClientError::from(status).into();
        }
        let reason = info.unwrap_or_else(|| format!("{:?}", status.code()).to_uppercase());
        let known = Reason::from_wire(&reason);
        let exit = match known.map(Reason::status_class) {
            Some(StatusClass::Unauthenticated) => 3,
            Some(StatusClass::PermissionDenied | StatusClass::FailedPrecondition) => 4,
            // Temporary, like an unavailable service: retry after the delay.
            Some(StatusClass::Unavailable | StatusClass::ResourceExhausted) => 5,
            None => match status.code() {
                tonic::Code::InvalidArgument => 2,
                tonic::Code::Unauthenticated => 3,
                tonic::Code::PermissionDenied => 4,
                tonic::Code::Unavailable => 5,
                _ => 1,
            },
        };
        let hint = match known {
            Some(Reason::TokenExpired) => {
                "\nhint: the token expired; create a new one (`latchkey service-token create`, or `latchkey identity token create` for an identity)"
            }
            Some(Reason::TokenMalformed) => {
                "\nhint: pass the whole token with --token, LATCHKEY_TOKEN or `latchkey login`"
            }
            Some(Reason::TokenInvalid) => {
                "\nhint: the token is unknown or mistyped; check that it was copied whole, or create a new one"
            }
            Some(Reason::TokenRevoked) => {
                "\nhint: the token was deleted or revoked; create a new one"
            }
            Some(Reason::TokenInactive) => {
                "\nhint: the token is deactivated; an admin can run `latchkey service-token activate <id>`"
            }
            Some(Reason::TokenUsesExhausted) => {
                "\nhint: the token used all its uses; create a new access token"
            }
            Some(Reason::ScopeDenied) => {
                "\nhint: the message lists the token's scopes and the path asked for; ask for a path inside them, or create a token whose --scope covers it"
            }
            Some(Reason::IpNotTrusted) => {
                "\nhint: the IP above is the one the server saw; add it to the token's or project's trusted IPs"
            }
            Some(Reason::PermissionDenied) => {
                "\nhint: the token lacks the permission or role this needs; see the message for which"
            }
            Some(Reason::E2eeEnabled) => {
                "\nhint: the project is end-to-end encrypted; use a service token (decrypts on this machine) or a project without e2ee"
            }
            Some(Reason::AuthUnavailable) => {
                "\nhint: the secrets service cannot reach the auth service; check that both are running"
            }
            Some(Reason::StoreUnavailable) => {
                "\nhint: the service's database is busy or unreachable; nothing was changed, retry in a moment"
            }
            Some(Reason::AuditUnavailable) => {
                "\nhint: the service could not record the call in its audit trail (its database is busy or unwritable), so it did not answer; retry in a moment, and tell the operator if it persists"
            }
            Some(Reason::TooManyFailedAttempts) => {
                "\nhint: too many failed verifications from this address or for this token; wait as long as the message says, and check that the token was copied whole"
            }
            None => "",
        };
        CliError::Server {
            reason,
            message: status.message().to_owned(),
            hint: hint.to_owned(),
            exit,
        }
    }
}

impl From<ClientError> for CliError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Config(m) => CliError::Input(m),
            ClientError::Unreachable { addr, cause } => CliError::Unreachable { addr, cause },
            ClientError::Connection { cause } => CliError::Connection { cause },
            ClientError::Status(status) => status.into(),
            ClientError::DamagedKeyPart => CliError::DamagedKeyPart,
            ClientError::Crypto(m) => CliError::Crypto(m),
        }
    }
}
