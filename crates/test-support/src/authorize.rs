//! The one way tests call `Authorize`: as the secrets service does, with
//! the internal key, built step by step from a default read.

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;

/// An `Authorize` call. Unless told otherwise it reads `dev:/` in the
/// token's own project for a client at 127.0.0.1, presenting the internal
/// key: `stack.authorize(&token).project(&p).write().from("192.0.2.7").send()`.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthorizeCall {
    url: String,
    internal_key: Option<String>,
    body: auth_pb::AuthorizeRequest,
}

impl AuthorizeCall {
    /// `token` (whole or its access part) asking the auth service at `url`.
    pub fn new(url: &str, internal_key: &str, token: &str) -> Self {
        Self {
            url: url.to_owned(),
            internal_key: Some(internal_key.to_owned()),
            body: auth_pb::AuthorizeRequest {
                token: latchkey_domain::token::access_token_part(token).to_owned(),
                client_ip: "127.0.0.1".into(),
                project_id: String::new(),
                environment: "dev".into(),
                secret_path: "/".into(),
                action: auth_pb::Action::Read.into(),
                raw: false,
                recursive: false,
            },
        }
    }

    /// Asks the auth service (replica) at `url` instead.
    pub fn at(mut self, url: &str) -> Self {
        url.clone_into(&mut self.url);
        self
    }

    /// In `project_id` (an identity token needs one).
    pub fn project(mut self, project_id: &str) -> Self {
        project_id.clone_into(&mut self.body.project_id);
        self
    }

    /// In `environment`.
    pub fn env(mut self, environment: &str) -> Self {
        environment.clone_into(&mut self.body.environment);
        self
    }

    /// At `secret_path`.
    pub fn path(mut self, secret_path: &str) -> Self {
        secret_path.clone_into(&mut self.body.secret_path);
        self
    }

    /// A write instead of a read.
    pub fn write(mut self) -> Self {
        self.body.action = auth_pb::Action::Write.into();
        self
    }

    /// A plaintext (`*Raw`) call, granted with the project key.
    pub fn raw(mut self) -> Self {
        self.body.raw = true;
        self
    }

    /// A recursive listing.
    pub fn recursive(mut self) -> Self {
        self.body.recursive = true;
        self
    }

    /// For a client at `client_ip`, as the secrets service reports it.
    pub fn from(mut self, client_ip: &str) -> Self {
        client_ip.clone_into(&mut self.body.client_ip);
        self
    }

    /// Presents `key` instead of the right internal key, or none.
    pub fn internal_key(mut self, key: Option<&str>) -> Self {
        self.internal_key = key.map(str::to_owned);
        self
    }

    /// The request, for a caller with its own client (TLS, say).
    #[must_use]
    pub fn request(&self) -> tonic::Request<auth_pb::AuthorizeRequest> {
        match &self.internal_key {
            Some(key) => crate::with_internal_key(self.body.clone(), key),
            None => tonic::Request::new(self.body.clone()),
        }
    }

    /// Sends the call on a new connection.
    pub async fn send(&self) -> Result<auth_pb::AuthorizeResponse, tonic::Status> {
        let mut client = AuthServiceClient::connect(self.url.clone())
            .await
            .map_err(|e| tonic::Status::unavailable(format!("connect {}: {e}", self.url)))?;
        client
            .authorize(self.request())
            .await
            .map(tonic::Response::into_inner)
    }

    /// Sends the call `n` times at once, each on its own connection; the
    /// answers in no particular order.
    pub async fn send_concurrently(
        &self,
        n: usize,
    ) -> Vec<Result<auth_pb::AuthorizeResponse, tonic::Status>> {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let call = self.clone();
                tokio::spawn(async move { call.send().await })
            })
            .collect();
        let mut answers = Vec::with_capacity(n);
        for call in calls {
            answers.push(call.await.expect("an Authorize task panicked"));
        }
        answers
    }
}
