//! What every handler takes from its request before it runs: the caller
//! (its bearer token, well-formed, and its client address), and the body,
//! read only afterwards, through a limit and a deadline. A request
//! without a well-formed token is refused before one byte of its body is
//! read, since axum runs a handler's extractors in order and the body's last.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use latchkey_domain::model::MAX_VALUE_BYTES;
use latchkey_domain::token::AnyToken;
use latchkey_service_kit::request::{MAX_TOKEN_BYTES, bearer_token};

use super::Http;
use super::audit::CallTrail;
use super::error::{HttpError, invalid};
use crate::app::Caller;

/// How long a request's body may take to arrive once its handler reads it.
const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The largest write body: a value at its limit with every byte escaped
/// as JSON's `\u00XX` (six bytes), and room for the other parameters.
pub(super) const WRITE_BODY_BYTES: usize = 6 * MAX_VALUE_BYTES + 16 * 1024;

/// The largest Token Auth body: `{"accessToken": ...}` with a token at its limit.
pub(super) const TOKEN_BODY_BYTES: usize = MAX_TOKEN_BYTES + 1024;

impl FromRequestParts<Arc<Http>> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        http: &Arc<Http>,
    ) -> Result<Self, Self::Rejection> {
        let CallTrail(trail) = CallTrail::from_request_parts(parts, http).await?;
        let token = bearer_token(&parts.headers)?;
        AnyToken::parse(token.expose())?;
        Ok(Caller::new(token, trail))
    }
}

/// A request body of at most `MAX` bytes, received within the body deadline.
#[derive(Debug)]
pub(super) struct Body<const MAX: usize>(pub(super) Bytes);

impl<S: Send + Sync, const MAX: usize> FromRequest<S> for Body<MAX> {
    type Rejection = HttpError;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let too_large = || {
            invalid(
                "body",
                format!("is larger than {MAX} bytes, the most this endpoint accepts"),
            )
        };
        let announced = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|len| len > MAX as u64) {
            return Err(too_large());
        }
        let body = Limited::new(request.into_body(), MAX);
        match tokio::time::timeout(BODY_DEADLINE, body.collect()).await {
            Err(_) => Err(invalid(
                "body",
                format!("was not received within {} s", BODY_DEADLINE.as_secs()),
            )),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(_)) => Err(invalid("body", "could not be read: the connection failed")),
            Ok(Ok(collected)) => Ok(Body(collected.to_bytes())),
        }
    }
}
