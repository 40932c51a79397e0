//! Clients of the stack's services, as callers of each kind use them.

use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use tonic::transport::Channel;

use super::Stack;
use crate::requests::with_token;

impl Stack {
    /// A client of the auth service.
    pub async fn auth_client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::connect(self.auth_url.clone())
            .await
            .expect("connect auth")
    }

    /// A client of the secrets service.
    pub async fn secrets_client(&self) -> SecretsServiceClient<Channel> {
        SecretsServiceClient::connect(self.secrets_url.clone())
            .await
            .expect("connect secrets")
    }

    /// `SetSecretRaw` of `name` in `dev:path` of `project` (empty: the
    /// service token's own) with `token`; the version written.
    pub async fn set_raw(
        &self,
        token: &str,
        project: &str,
        path: &str,
        name: &str,
        value: &str,
    ) -> Result<u64, tonic::Status> {
        self.secrets_client()
            .await
            .set_secret_raw(with_token(
                latchkey_proto::secrets::v1::SetSecretRawRequest {
                    project_id: project.to_owned(),
                    environment: "dev".into(),
                    secret_path: path.into(),
                    name: name.into(),
                    value: value.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().version)
    }

    /// `LookupToken` with `token` (which uses none of its uses).
    pub async fn lookup(
        &self,
        token: &str,
    ) -> Result<latchkey_proto::auth::v1::LookupTokenResponse, tonic::Status> {
        self.auth_client()
            .await
            .lookup_token(with_token(
                latchkey_proto::auth::v1::LookupTokenRequest::default(),
                token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// `Authorize` for `token` as the secrets service would call it: a read
    /// of `dev:/` from 127.0.0.1 until told otherwise.
    pub fn authorize(&self, token: &str) -> crate::AuthorizeCall {
        crate::AuthorizeCall::new(&self.auth_url, &self.internal_key, token)
    }

    /// The Rust client library calling with `token`, as a service would:
    /// a service token's secrets are sealed and opened on this side.
    pub async fn secrets_as(&self, token: &str) -> latchkey_client::SecretsClient {
        let tls = latchkey_client::Tls::plaintext();
        let credential = latchkey_client::Credential::parse(token).expect("a whole token");
        let bearer = latchkey_client::Bearer::new(Some(&credential.bearer_text())).expect("bearer");
        let secrets = latchkey_client::channel::connect(&self.secrets_url, &tls)
            .await
            .expect("connect secrets");
        let auth = latchkey_client::channel::connect(&self.auth_url, &tls)
            .await
            .expect("connect auth");
        latchkey_client::SecretsClient::new(secrets, Some(auth), credential, bearer)
    }
}
