//! What the scenarios need in the database: made through the API, as a user would.

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as secrets_pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;

use crate::BoxError;

/// A project with a few secrets, a service token, an unlimited identity
/// token and one with a use limit no run reaches.
pub(crate) struct Setup {
    pub(crate) project: String,
    pub(crate) service_token: String,
    pub(crate) identity_token: String,
    /// An identity token with a use limit: every use is one atomic UPDATE.
    pub(crate) limited_token: String,
}

impl Setup {
    pub(crate) async fn create(
        auth_url: &str,
        secrets_url: &str,
        admin: &str,
    ) -> Result<Self, BoxError> {
        let mut auth = AuthServiceClient::connect(auth_url.to_owned()).await?;
        let project = auth
            .create_project(with_token(
                auth_pb::CreateProjectRequest {
                    name: "bench".into(),
                    e2ee: false,
                },
                admin,
            )?)
            .await?
            .into_inner()
            .project
            .ok_or("no project")?
            .id;
        let service_token = auth
            .create_service_token(with_token(
                auth_pb::CreateServiceTokenRequest {
                    project_id: project.clone(),
                    name: "bench".into(),
                    scopes: vec![auth_pb::Scope {
                        environment: "dev".into(),
                        secret_path: "/**".into(),
                    }],
                    permissions: vec![
                        auth_pb::Permission::Read.into(),
                        auth_pb::Permission::Write.into(),
                    ],
                    expires_in_seconds: 0,
                    trusted_ips: Vec::new(),
                },
                admin,
            )?)
            .await?
            .into_inner()
            .service_token;
        // Every call sends only the access token; the key part stays here.
        let service_token = latchkey_domain::token::access_token_part(&service_token).to_owned();
        let identity_token = new_identity_token(&mut auth, admin, &project, "bench", None).await?;
        let limited_token = new_identity_token(
            &mut auth,
            admin,
            &project,
            "bench-limited",
            Some(1_000_000_000),
        )
        .await?;
        let mut secrets = SecretsServiceClient::connect(secrets_url.to_owned()).await?;
        for i in 0..10 {
            secrets
                .set_secret_raw(with_token(
                    secrets_pb::SetSecretRawRequest {
                        project_id: project.clone(),
                        environment: "dev".into(),
                        secret_path: "/bench".into(),
                        name: format!("SECRET_{i}"),
                        value: "x".repeat(64),
                    },
                    &identity_token,
                )?)
                .await?;
        }
        Ok(Self {
            project,
            service_token,
            identity_token,
            limited_token,
        })
    }
}

/// An access token of a new developer identity in `project`, with Token
/// Auth's `uses` limit (none: unlimited).
async fn new_identity_token(
    auth: &mut AuthServiceClient<tonic::transport::Channel>,
    admin: &str,
    project: &str,
    name: &str,
    uses: Option<i64>,
) -> Result<String, BoxError> {
    let identity = auth
        .create_identity(with_token(
            auth_pb::CreateIdentityRequest {
                name: name.into(),
                org_role: "member".into(),
            },
            admin,
        )?)
        .await?
        .into_inner()
        .identity
        .ok_or("no identity")?
        .id;
    auth.attach_token_auth(with_token(
        auth_pb::AttachTokenAuthRequest {
            identity_id: identity.clone(),
            access_token_num_uses_limit: uses,
            ..Default::default()
        },
        admin,
    )?)
    .await?;
    auth.add_identity_to_project(with_token(
        auth_pb::AddIdentityToProjectRequest {
            project_id: project.to_owned(),
            identity_id: identity.clone(),
            role: "developer".into(),
            scopes: Vec::new(),
        },
        admin,
    )?)
    .await?;
    Ok(auth
        .create_identity_access_token(with_token(
            auth_pb::CreateIdentityAccessTokenRequest {
                identity_id: identity,
                name: name.into(),
            },
            admin,
        )?)
        .await?
        .into_inner()
        .access_token)
}

/// A request as a Latchkey client sends it: a service token's key part stays here.
fn with_token<T>(message: T, token: &str) -> Result<tonic::Request<T>, tonic::Status> {
    let mut request = tonic::Request::new(message);
    let token = latchkey_domain::token::access_token_part(token);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| tonic::Status::internal("token is not ASCII"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}
