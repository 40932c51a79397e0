//! What every endpoint shares: the caller, the query string, JSON replies
//! (with `ETag` where clients poll) and Infisical's time format.

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::{HttpError, invalid};

/// The query string's pairs, or why it does not parse.
pub(super) type Pairs =
    Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// A listing, raw or encrypted: `imports` is always there (clients require
/// the key) and empty (Latchkey has no secret imports).
#[derive(Serialize)]
pub(super) struct Listing<S> {
    pub(super) secrets: Vec<S>,
    pub(super) imports: [(); 0],
}

/// One secret, raw or encrypted.
#[derive(Serialize)]
pub(super) struct One<S> {
    pub(super) secret: S,
}

/// RFC 3339 in UTC with milliseconds, as Infisical sends.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn query(pairs: Pairs) -> Result<Vec<(String, String)>, HttpError> {
    pairs
        .map(|Query(pairs)| pairs)
        .map_err(|e| invalid("query", e.body_text()))
}

/// A JSON body with `Content-Type: application/json` (Go clients decode
/// nothing without it).
pub(super) fn json(body: &impl Serialize) -> Response {
    match encode(body) {
        Some(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn encode(body: &impl Serialize) -> Option<Vec<u8>> {
    serde_json::to_vec(body)
        .inspect_err(|e| tracing::error!(error = %e, "encoding a reply"))
        .ok()
}

/// [`json`] with an `ETag` of the body, or `304 Not Modified` when the
/// client's `If-None-Match` already names it (the operator polls so).
pub(super) fn json_with_etag(headers: &HeaderMap, body: &impl Serialize) -> Response {
    let Some(bytes) = encode(body) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
