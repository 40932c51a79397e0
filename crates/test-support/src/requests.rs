//! Requests as Latchkey's clients send them.

/// A request carrying `authorization: Bearer <token>`, as every Latchkey
/// client sends it: a service token's key part is left out.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    with_bearer_text(message, latchkey_domain::token::access_token_part(token))
}

/// A request carrying `authorization: Bearer <text>` exactly as given (the
/// four-part form Infisical's operator sends, or anything malformed).
pub fn with_bearer_text<T>(message: T, text: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {text}").parse().expect("ascii token"),
    );
    request
}
