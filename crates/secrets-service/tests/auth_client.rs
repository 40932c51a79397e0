//! The `GrpcAuthorizer` against a fake auth service on port 0: each status
//! `Authorize` can answer with keeps its meaning, and anything that is not a
//! decision fails the call closed with `AUTH_UNAVAILABLE`.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::expect_used, reason = "a broken fixture must stop the test")]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};
use std::time::Duration;

use latchkey_domain::model::ProjectId;
use latchkey_domain::path::{Environment, SecretPath};
use latchkey_domain::ports::{AuthorizationRequest, AuthorizeError, Authorizer, BearerToken};
use latchkey_domain::scope::Action;
use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_secrets_service::auth_client::GrpcAuthorizer;
use latchkey_service_kit::config::InternalKey;
use latchkey_service_kit::status;
use tokio::net::TcpListener;
use tonic::server::NamedService;

/// An auth service whose every call answers `status`.
#[derive(Clone)]
struct FakeAuth(tonic::Status);

impl NamedService for FakeAuth {
    const NAME: &'static str = "latchkey.auth.v1.AuthService";
}

impl tower::Service<http::Request<tonic::body::Body>> for FakeAuth {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        ready(Ok(self.0.clone().into_http()))
    }
}

/// The authorizer's answer when the auth service replies `status`.
async fn answer_to(status: tonic::Status) -> AuthorizeError {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(FakeAuth(status))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let answer = authorize(&url).await;
    server.abort();
    answer
}

async fn authorize(url: &str) -> AuthorizeError {
    let authorizer = GrpcAuthorizer::new(
        url,
        InternalKey::new("k".repeat(32)),
        Duration::from_secs(2),
    )
    .expect("authorizer");
    authorizer
        .authorize(AuthorizationRequest {
            token: BearerToken::new("st.x.y"),
            client_ip: None,
            project_id: Some(ProjectId::generate()),
            environment: Environment::parse("dev").expect("env"),
            path: SecretPath::root(),
            action: Action::Read,
            form: latchkey_domain::access::Form::Sealed,
            recursive: false,
        })
        .await
        .expect_err("the fake never grants")
}

fn reason(err: &AuthorizeError) -> Option<Reason> {
    match err {
        AuthorizeError::Denied(e) => Some(e.reason),
        _ => None,
    }
}

#[tokio::test]
async fn a_denial_keeps_its_reason_and_message() {
    let denial = AccessError::new(Reason::ScopeDenied, "dev:/a is outside the token's scopes");
    let err = answer_to(status::access_denied(&denial)).await;
    match err {
        AuthorizeError::Denied(e) => {
            assert_eq!(e.reason, Reason::ScopeDenied);
            assert_eq!(e.message, denial.message);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_input_keeps_the_field_it_names() {
    let invalid = InvalidInput::new("project_id", "is required with an identity token");
    let err = answer_to(status::invalid_argument(&invalid)).await;
    assert!(
        matches!(&err, AuthorizeError::Invalid(e) if e.field == "project_id"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_project_stays_not_found() {
    let err = answer_to(status::not_found("project p1 not found")).await;
    assert!(
        matches!(&err, AuthorizeError::NotFound(m) if m.contains("p1")),
        "{err:?}"
    );
}

#[tokio::test]
async fn anything_that_is_not_a_decision_fails_closed() {
    for answer in [
        status::internal(),
        tonic::Status::unavailable("overloaded"),
        tonic::Status::unimplemented("old auth service"),
        tonic::Status::permission_denied("no ErrorInfo: a proxy, not the auth service"),
    ] {
        let code = answer.code();
        let err = answer_to(answer).await;
        assert_eq!(
            reason(&err),
            Some(Reason::AuthUnavailable),
            "{code:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn an_auth_service_that_is_not_listening_fails_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let err = authorize(&url).await;
    assert_eq!(reason(&err), Some(Reason::AuthUnavailable), "{err:?}");
}
