//! What a call through the client can fail with.

/// A client failure: bad settings, no connection, a service's answer, or
/// an answer that does not open with the token's key.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An address, TLS setting or token that cannot be used; nothing was sent.
    #[error("{0}")]
    Config(String),
    /// A service could not be reached.
    #[error("cannot reach {addr}: {cause}")]
    Unreachable {
        /// The URL dialled.
        addr: String,
        /// Why, with the causes' own words.
        cause: String,
    },
    /// The connection broke during a call: usually TLS settings that do
    /// not match the server's.
    #[error("the connection failed: {cause}")]
    Connection {
        /// Why, with the causes' own words.
        cause: String,
    },
    /// A service refused or failed the call; its status carries the
    /// stable reason (`google.rpc.ErrorInfo`).
    #[error("{}", .0.message())]
    Status(tonic::Status),
    /// The service token's key part does not open its project key: the
    /// servers never see the key part, so only the client can tell.
    #[error(
        "TOKEN_KEY_DAMAGED: the key part of this service token (after its last '.') does not open the token's project key"
    )]
    DamagedKeyPart,
    /// An answer that does not decrypt, or is not what was asked for.
    #[error("{0}")]
    Crypto(String),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        // A status the server sent has no source; one with a source was made
        // on this side from a broken connection.
        let from_server = tonic_types::StatusExt::get_error_details(&status)
            .error_info()
            .is_some();
        match std::error::Error::source(&status) {
            Some(source) if !from_server => ClientError::Connection {
                cause: error_chain(status.message(), Some(source)),
            },
            _ => ClientError::Status(status),
        }
    }
}

/// An error's text and its sources': a transport error alone says only
/// "transport error", its sources say what failed (refused, certificate,
/// handshake).
pub(crate) fn error_chain(
    head: &str,
    mut source: Option<&(dyn std::error::Error + 'static)>,
) -> String {
    let mut cause = head.to_owned();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !cause.contains(&text) {
            cause = format!("{cause}: {text}");
        }
        source = inner.source();
    }
    cause
}
