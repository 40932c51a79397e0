//! Latchkey's domain: every rule about tokens, scopes, paths, IP allowlists,
//! expiry and encryption, with no I/O, so it can be tested exhaustively and the
//! services stay thin.
//!
//! - [`token`]: the service token and identity access token formats, argon2id
//!   hashing of their secrets, and the fingerprint that keys verification caches.
//! - [`path`]: environments, folder paths (normalised, never resolved) and secret names.
//! - [`scope`]: folder path globs, scopes and permissions.
//! - [`identity`]: machine identities, their roles and access tokens, and
//!   each auth method's configuration.
//! - [`ip`]: trusted IP allowlists.
//! - [`ttl`]: expiry arithmetic.
//! - [`crypto`]: keys and the AES-256-GCM envelope.
//! - [`access`]: the authorization decision, one check per denial reason.
//! - [`audit`]: audit events, their keyed chain, token HMACs, the flood tally.
//! - [`attempts`]: failed-attempt budgets, the rule the services' limiters apply.
//! - [`error`]: denial reasons and invalid input.
//! - [`model`]: the entities and principals the rules speak about.
//! - [`ports`]: the traits the services hold behind `Arc<dyn _>` (clock,
//!   authorizer), so tests substitute fakes.

pub mod access;
pub mod attempts;
pub mod audit;
pub mod crypto;
pub mod error;
mod glob;
pub mod identity;
pub mod ip;
pub mod model;
pub mod path;
pub mod ports;
pub mod scope;
pub mod token;
pub mod ttl;

pub use error::{AccessError, InvalidInput, Reason};
