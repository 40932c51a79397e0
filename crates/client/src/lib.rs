//! `latchkey-client`: what a Rust program calling Latchkey uses, the
//! `latchkey` CLI included.
//!
//! - [`channel`]: channels to the services, plaintext or TLS (mTLS with a
//!   client certificate).
//! - [`interceptor`]: the [`Bearer`] every call carries (a service token
//!   without its key part, a trace context, the internal key for tools
//!   standing in for the secrets service).
//! - [`secrets`]: [`SecretsClient`], typed reads and writes for either kind
//!   of token; a service token's secrets are decrypted here.
//! - [`crypto`]: opening the project key with the token's key part, and
//!   sealing and opening secrets with the associated data of the location
//!   *asked for*, so a server cannot substitute another folder's ciphertext.
//! - [`dotenv`]: the dotenv format secrets are exported in and read from.
//! - [`error`]: what a call through the client can fail with.
//!
//! A service that reads its secrets at start-up (the runnable version is
//! `examples/read_secrets_at_startup.rs`):
//!
//! ```no_run
//! use latchkey_client::{Bearer, Credential, Location, SecretsClient, Tls, channel};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let token = std::env::var("LATCHKEY_TOKEN")?;
//! let credential = Credential::parse(&token)?;
//! let bearer = Bearer::new(Some(&credential.bearer_text()))?;
//! let secrets = channel::connect("127.0.0.1:50052", &Tls::plaintext()).await?;
//! let mut client = SecretsClient::new(secrets, None, credential, bearer);
//! for secret in client.list(&Location::new(None, "dev", "/")?, false).await? {
//!     println!("{} is set (version {})", secret.name, secret.version);
//! }
//! # Ok(())
//! # }
//! ```

#![cfg_attr(
    test,
    expect(
        unused_crate_dependencies,
        reason = "the unit-test build links the example's dev-dependencies"
    )
)]

pub mod channel;
pub mod crypto;
pub mod dotenv;
pub mod error;
pub mod interceptor;
pub mod secrets;

pub use channel::Tls;
pub use crypto::PlainSecret;
pub use error::ClientError;
pub use interceptor::Bearer;
pub use secrets::{AuthClient, Credential, Location, RawSecretsClient, SecretsClient};
