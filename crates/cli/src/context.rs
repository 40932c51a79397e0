//! What a command needs to call the services: addresses, TLS, token and
//! the folder's linked project, resolved once from flags, environment and
//! config files.

use latchkey_client::{AuthClient, ClientError, Credential, SecretsClient, Tls};
use latchkey_domain::path::{Environment, SecretPath};
use latchkey_proto::auth::v1 as auth_pb;

use crate::client::{self, TlsFiles};
use crate::config::{self, ProjectFile, UserConfig};
use crate::error::CliError;
use crate::flags::{Global, Location};
use crate::output::SecretRow;

/// What a command needs to call the services: addresses, TLS, token and
/// the folder's linked project.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) auth_addr: String,
    pub(crate) secrets_addr: String,
    token: Option<String>,
    tls: Tls,
    linked: Option<ProjectFile>,
}

impl Context {
    /// Resolves every setting in the documented order.
    pub(crate) fn resolve(global: Global) -> Result<Context, CliError> {
        let user = UserConfig::load()?;
        let tls = TlsFiles {
            enabled: global.tls,
            ca_cert: global.ca_cert,
            client_cert: global.client_cert,
            client_key: global.client_key,
        }
        .load()?;
        Ok(Context {
            auth_addr: global
                .auth_addr
                .or(user.auth_addr)
                .unwrap_or_else(|| config::DEFAULT_AUTH_ADDR.to_owned()),
            secrets_addr: global
                .secrets_addr
                .or(user.secrets_addr)
                .unwrap_or_else(|| config::DEFAULT_SECRETS_ADDR.to_owned()),
            token: global.token.or(user.token).filter(|t| !t.is_empty()),
            tls,
            linked: config::linked_project()?,
        })
    }

    /// The token, or an error saying the three ways to give one.
    pub(crate) fn token(&self) -> Result<&str, CliError> {
        self.token.as_deref().ok_or_else(|| {
            CliError::Input(
                "no token: pass --token, set LATCHKEY_TOKEN, or run `latchkey login --token <token>`"
                    .to_owned(),
            )
        })
    }

    /// A client of the auth service calling with no token, for a login.
    pub(crate) async fn auth_without_token(&self) -> Result<AuthClient, CliError> {
        client::auth(&self.auth_addr, &self.tls, None).await
    }

    /// A client of the auth service, calling with the token if there is one.
    pub(crate) async fn auth(&self) -> Result<AuthClient, CliError> {
        client::auth(&self.auth_addr, &self.tls, self.token.as_deref()).await
    }

    /// A client of the audit API of the service at `addr`, calling with the token.
    pub(crate) async fn audit(&self, addr: &str) -> Result<client::AuditClient, CliError> {
        client::audit(addr, &self.tls, Some(self.token()?)).await
    }

    /// What the token is (`LookupToken`, which uses none of its uses).
    pub(crate) async fn lookup_token(&self) -> Result<auth_pb::LookupTokenResponse, CliError> {
        Ok(self
            .auth()
            .await?
            .lookup_token(auth_pb::LookupTokenRequest::default())
            .await?
            .into_inner())
    }

    /// A client of the secrets service calling with `credential`; `writes`
    /// also connects the auth service, which a service token writes through.
    pub(crate) async fn secrets(
        &self,
        credential: Credential,
        writes: bool,
    ) -> Result<SecretsClient, CliError> {
        let auth = writes.then_some(self.auth_addr.as_str());
        client::secrets(&self.secrets_addr, auth, &self.tls, credential).await
    }

    /// `--projectId`, else the linked folder's project.
    pub(crate) fn project_id(&self, flag: Option<String>) -> Result<String, CliError> {
        flag.filter(|p| !p.is_empty())
            .or_else(|| self.linked.as_ref().map(|l| l.project_id.clone()))
            .ok_or_else(|| {
                CliError::Input(format!(
                    "--projectId is required: pass it, or link this folder with `latchkey init --projectId <id>` (no {} found here or above)",
                    config::PROJECT_FILE
                ))
            })
    }

    /// `--env`, else the linked folder's default environment, else `dev`;
    /// validated.
    pub(crate) fn environment(&self, flag: Option<String>) -> Result<Environment, CliError> {
        let env = flag
            .or_else(|| {
                self.linked
                    .as_ref()
                    .and_then(|l| l.default_environment.clone())
            })
            .unwrap_or_else(|| "dev".to_owned());
        Environment::parse(&env).map_err(|e| CliError::Input(format!("--env: {}", e.message)))
    }

    /// A project, by id.
    pub(crate) async fn project(&self, project_id: String) -> Result<auth_pb::Project, CliError> {
        Ok(self
            .auth()
            .await?
            .get_project(auth_pb::GetProjectRequest { project_id })
            .await?
            .into_inner()
            .project
            .unwrap_or_default())
    }

    /// The decrypted secrets of a folder (and, with `recursive`, of the folders
    /// below it that the token may read), ordered by path, then name.
    pub(crate) async fn fetch(
        &self,
        at: &Location,
        recursive: bool,
    ) -> Result<Vec<SecretRow>, CliError> {
        let (credential, location) = self.prepare(at)?;
        let mut client = self.secrets(credential, false).await?;
        Ok(client
            .list(&location, recursive)
            .await?
            .into_iter()
            .map(SecretRow::from)
            .collect())
    }

    /// Checks the token's kind and the location flags before any call; paths
    /// are normalised so the client binds the same path into the ciphertext as
    /// the server stores.
    pub(crate) fn prepare(
        &self,
        at: &Location,
    ) -> Result<(Credential, latchkey_client::Location), CliError> {
        let credential = Credential::parse(self.token()?).map_err(|e| match e {
            ClientError::Config(m) => CliError::Input(format!("--token: {m}")),
            other => other.into(),
        })?;
        let env = self.environment(at.env.clone())?;
        let path = SecretPath::parse(&at.path)
            .map_err(|e| CliError::Input(format!("--path: {}", e.message)))?;
        let project_id = match credential {
        Credential::Identity(_) => Some(self.project_id(at.project_id.clone()).map_err(|_| {
            CliError::Input(
                "--projectId is required with an identity token (or link the folder with `latchkey init`)"
                    .to_owned(),
            )
        })?),
        // A service token is bound to one project: a linked folder's project
        // must not override it, so only an explicit flag is sent.
        Credential::Service(_) => at.project_id.clone(),
    };
        let location = latchkey_client::Location {
            project_id: project_id.filter(|p| !p.is_empty()),
            environment: env,
            path,
        };
        Ok((credential, location))
    }
}
