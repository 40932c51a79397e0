//! Test helpers, used only as a dev-dependency:
//!
//! - [`Backend`] and [`TestDb`]: a fresh database per test, SQLite in a
//!   temporary directory or a new PostgreSQL database created from
//!   `LATCHKEY_TEST_POSTGRES_URL` and dropped afterwards.
//! - [`Stack`]: both services in-process on ephemeral loopback ports, with a
//!   [`ManualClock`] driving the auth service, and helpers for admin calls.
//! - [`AuthorizeCall`]: `Authorize` as the secrets service calls it, built
//!   from a default read (`stack.authorize(&token).write().from(ip)`).
//! - [`FakeAuthorizer`]: an `Authorizer` answering as told, recording each request.
//! - [`backend_tests!`]: runs each scenario once per backend.
//! - [`Pki`]: throwaway CA, server and client certificates for TLS tests.
//! - [`ServiceProcess`]: a service binary as a real process; admin calls
//!   against any auth service ([`create_project_with`], ...).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test support fails loudly: a broken fixture must stop the test"
)]

mod authorize;
mod clock;
mod db;
mod fake_authorizer;
mod pki;
mod process;
mod requests;
mod stack;

pub use authorize::AuthorizeCall;
pub use clock::ManualClock;
pub use db::{Backend, TestDb};
pub use fake_authorizer::FakeAuthorizer;
pub use pki::Pki;
pub use process::{
    ServiceProcess, built_binary, create_project_with, create_service_token_with, free_port,
    start_auth_process, with_internal_key,
};
pub use requests::{with_bearer_text, with_token};
pub use stack::{AuthReplica, Stack};

use tonic_types::StatusExt;

/// The `google.rpc.ErrorInfo` reason of a status, or empty.
#[must_use]
pub fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Asserts a call was denied with `code` and `reason` and a non-empty
/// message; returns the status for further checks.
#[track_caller]
pub fn assert_denied<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    want: &str,
) -> tonic::Status {
    let status = result.expect_err("call should be denied");
    assert_eq!(status.code(), code, "code of {status:?}");
    assert_eq!(reason(&status), want, "reason of {status:?}");
    assert!(!status.message().is_empty(), "message of {status:?}");
    status
}

/// Expands `backend_tests!(a, b)` into `sqlite::a`, `postgres::a`, ... test
/// functions that call `a(Backend::Sqlite)` and `a(Backend::Postgres)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Initialises test logging once; it prints only when `TEST_LOG` is set.
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_test_writer()
            .try_init();
    }
}
