//! Admin set-up as the bootstrap admin: projects, service tokens,
//! identities and their access tokens.

use latchkey_proto::auth::v1 as auth_pb;

use super::Stack;
use crate::requests::with_token;

impl Stack {
    /// Creates an identity as the admin; returns its id.
    pub async fn create_identity(&self, org_role: &str) -> String {
        self.auth_client()
            .await
            .create_identity(with_token(
                auth_pb::CreateIdentityRequest {
                    name: format!("{org_role} identity"),
                    org_role: org_role.to_owned(),
                },
                &self.admin_token,
            ))
            .await
            .expect("create identity")
            .into_inner()
            .identity
            .expect("identity")
            .id
    }

    /// Attaches Token Auth as the admin.
    pub async fn attach_token_auth(&self, request: auth_pb::AttachTokenAuthRequest) {
        self.auth_client()
            .await
            .attach_token_auth(with_token(request, &self.admin_token))
            .await
            .expect("attach token auth");
    }

    /// Creates an access token for an identity as the admin; returns the token.
    pub async fn create_access_token(&self, identity_id: &str) -> String {
        self.auth_client()
            .await
            .create_identity_access_token(with_token(
                auth_pb::CreateIdentityAccessTokenRequest {
                    identity_id: identity_id.to_owned(),
                    name: String::new(),
                },
                &self.admin_token,
            ))
            .await
            .expect("create access token")
            .into_inner()
            .access_token
    }

    /// An identity with Token Auth (`limit` uses, default TTLs) and the
    /// `role` in `project`; returns (identity id, access token).
    pub async fn identity_in_project(
        &self,
        project_id: &str,
        role: &str,
        limit: i64,
    ) -> (String, String) {
        let identity = self.create_identity("member").await;
        self.attach_token_auth(auth_pb::AttachTokenAuthRequest {
            identity_id: identity.clone(),
            access_token_num_uses_limit: Some(limit),
            ..Default::default()
        })
        .await;
        self.auth_client()
            .await
            .add_identity_to_project(with_token(
                auth_pb::AddIdentityToProjectRequest {
                    project_id: project_id.to_owned(),
                    identity_id: identity.clone(),
                    role: role.to_owned(),
                    scopes: Vec::new(),
                },
                &self.admin_token,
            ))
            .await
            .expect("add identity to project");
        let token = self.create_access_token(&identity).await;
        (identity, token)
    }

    /// Creates a project as the admin; returns its id.
    pub async fn create_project(&self, e2ee: bool) -> String {
        crate::create_project_with(&mut self.auth_client().await, &self.admin_token, e2ee).await
    }

    /// Creates a service token as the admin; returns the full token.
    pub async fn create_service_token(
        &self,
        request: auth_pb::CreateServiceTokenRequest,
    ) -> String {
        self.auth_client()
            .await
            .create_service_token(with_token(request, &self.admin_token))
            .await
            .expect("create service token")
            .into_inner()
            .service_token
    }

    /// A token request with the given scopes (`"dev:/backend/**"`) and
    /// permissions (`"read"`, `"write"`), never expiring, any IP.
    #[must_use]
    pub fn token_request(
        project_id: &str,
        scopes: &[&str],
        permissions: &[&str],
    ) -> auth_pb::CreateServiceTokenRequest {
        auth_pb::CreateServiceTokenRequest {
            project_id: project_id.to_owned(),
            name: "test token".to_owned(),
            scopes: scopes
                .iter()
                .map(|s| {
                    let (env, path) = s.split_once(':').expect("env:path");
                    auth_pb::Scope {
                        environment: env.to_owned(),
                        secret_path: path.to_owned(),
                    }
                })
                .collect(),
            permissions: permissions
                .iter()
                .map(|p| match *p {
                    "read" => auth_pb::Permission::Read.into(),
                    "write" => auth_pb::Permission::Write.into(),
                    other => panic!("unknown permission {other}"),
                })
                .collect(),
            expires_in_seconds: 0,
            trusted_ips: Vec::new(),
        }
    }
}
