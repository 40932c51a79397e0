//! End-to-end scenarios across the auth service, the secrets service and
//! the CLI, in one test binary (one link instead of eight). Each module is
//! one concern; every scenario starts its own stack on loopback ports, so
//! they run in parallel.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

mod abuse;
mod audit;
mod crash;
mod delegation;
mod http_api;
mod identities;
mod infisical_replays;
mod root_key_rotation;
mod secrets_replicas;
mod service_tokens;
mod telemetry;
mod tls;

/// The payload of an access token (a JWT), read as a client reads it: without a key.
fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS: {token}");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}
