//! `latchkey project ...`: projects, environments, allowlists, members.

use clap::Subcommand;
use latchkey_domain::path::Environment;
use latchkey_proto::auth::v1 as auth_pb;

use crate::context::Context;
use crate::error::CliError;
use crate::flags::{check_trusted_ips, scopes_from_flags};
use crate::output::{describe_scopes, slugs, table};

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Create a project with the environments dev, staging and prod.
    ///
    /// Example: latchkey project create --name demo --plain
    Create {
        /// Project name.
        #[arg(long)]
        name: String,
        /// End-to-end encryption: the server never decrypts this project's secrets.
        #[arg(long)]
        e2ee: bool,
        /// Print only the project id.
        #[arg(long)]
        plain: bool,
    },
    /// List projects.
    ///
    /// Example: latchkey project list
    List,
    /// Show a project: environments, allowlist, key usage.
    ///
    /// Example: latchkey project get --projectId 0b6f...
    Get {
        /// Project id [default: the linked folder's].
        #[arg(long = "projectId")]
        project_id: Option<String>,
    },
    /// Add an environment to a project.
    ///
    /// Example: latchkey project add-environment --slug qa --name "Quality assurance"
    AddEnvironment {
        /// Project id [default: the linked folder's].
        #[arg(long = "projectId")]
        project_id: Option<String>,
        /// Slug used in scopes and --env: lowercase letters, digits, `-`, `_`.
        #[arg(long)]
        slug: String,
        /// Display name [default: the slug].
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Replace a project's IP allowlist; with no --trusted-ip every address is allowed.
    ///
    /// Example: latchkey project set-trusted-ips --trusted-ip 10.0.0.0/8 --trusted-ip 192.0.2.7
    SetTrustedIps {
        /// Project id [default: the linked folder's].
        #[arg(long = "projectId")]
        project_id: Option<String>,
        /// Address or CIDR; repeatable.
        #[arg(long = "trusted-ip")]
        trusted_ips: Vec<String>,
    },
    /// Give an identity a role in a project (project admin).
    ///
    /// Example: latchkey project add-identity --identity-id <i> --role viewer --scope=dev:/backend/**
    AddIdentity {
        /// Project id [default: the linked folder's].
        #[arg(long = "projectId")]
        project_id: Option<String>,
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
        /// viewer (read), developer (read and write) or admin (also manages the project).
        #[arg(long)]
        role: String,
        /// Narrow the role to <environment>:<folder glob>; repeatable. Default: the whole project.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Remove an identity from a project (project admin).
    ///
    /// Example: latchkey project remove-identity --identity-id <i>
    RemoveIdentity {
        /// Project id [default: the linked folder's].
        #[arg(long = "projectId")]
        project_id: Option<String>,
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
}

/// Runs a project command.
pub(crate) async fn run(ctx: &Context, cmd: ProjectCommand) -> Result<(), CliError> {
    match cmd {
        ProjectCommand::Create { name, e2ee, plain } => {
            let project = ctx
                .auth()
                .await?
                .create_project(auth_pb::CreateProjectRequest { name, e2ee })
                .await?
                .into_inner()
                .project
                .unwrap_or_default();
            if plain {
                println!("{}", project.id);
            } else {
                print_projects(&[project]);
            }
        }
        ProjectCommand::List => {
            let projects = ctx
                .auth()
                .await?
                .list_projects(auth_pb::ListProjectsRequest {})
                .await?
                .into_inner()
                .projects;
            print_projects(&projects);
        }
        ProjectCommand::Get { project_id } => {
            let project = ctx.project(ctx.project_id(project_id)?).await?;
            print_project(&project);
        }
        ProjectCommand::AddEnvironment {
            project_id,
            slug,
            name,
        } => {
            let slug = Environment::parse(&slug)
                .map_err(|e| CliError::Input(format!("--slug: {}", e.message)))?;
            let project = ctx
                .auth()
                .await?
                .create_environment(auth_pb::CreateEnvironmentRequest {
                    project_id: ctx.project_id(project_id)?,
                    slug: slug.as_str().to_owned(),
                    name,
                })
                .await?
                .into_inner()
                .project
                .unwrap_or_default();
            print_project(&project);
        }
        ProjectCommand::SetTrustedIps {
            project_id,
            trusted_ips,
        } => {
            check_trusted_ips(&trusted_ips)?;
            let project = ctx
                .auth()
                .await?
                .set_project_trusted_ips(auth_pb::SetProjectTrustedIpsRequest {
                    project_id: ctx.project_id(project_id)?,
                    trusted_ips,
                })
                .await?
                .into_inner()
                .project
                .unwrap_or_default();
            print_project(&project);
        }
        ProjectCommand::AddIdentity {
            project_id,
            identity_id,
            role,
            scopes,
        } => {
            let membership = ctx
                .auth()
                .await?
                .add_identity_to_project(auth_pb::AddIdentityToProjectRequest {
                    project_id: ctx.project_id(project_id)?,
                    identity_id,
                    role,
                    scopes: scopes_from_flags(&scopes)?,
                })
                .await?
                .into_inner()
                .membership
                .unwrap_or_default();
            let scopes = describe_scopes(&membership.scopes);
            table(
                &["PROJECT", "IDENTITY", "ROLE", "SCOPES"],
                &[vec![
                    membership.project_id,
                    membership.identity_id,
                    membership.role,
                    if scopes.is_empty() {
                        "whole project".to_owned()
                    } else {
                        scopes
                    },
                ]],
            );
        }
        ProjectCommand::RemoveIdentity {
            project_id,
            identity_id,
        } => {
            let project_id = ctx.project_id(project_id)?;
            ctx.auth()
                .await?
                .remove_identity_from_project(auth_pb::RemoveIdentityFromProjectRequest {
                    project_id: project_id.clone(),
                    identity_id: identity_id.clone(),
                })
                .await?;
            println!("Identity {identity_id} removed from project {project_id}.");
        }
    }
    Ok(())
}

fn print_projects(projects: &[auth_pb::Project]) {
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|p| vec![p.id.clone(), p.name.clone(), p.e2ee.to_string(), slugs(p)])
        .collect();
    table(&["ID", "NAME", "E2EE", "ENVIRONMENTS"], &rows);
}

fn print_project(project: &auth_pb::Project) {
    let trusted = if project.trusted_ips.is_empty() {
        "any".to_owned()
    } else {
        project.trusted_ips.join(",")
    };
    let mut key_use = project.key_encryption_count.to_string();
    if project.key_rotation_recommended {
        key_use.push_str(" (rotate the project key: 90% of the 2^32 budget used)");
    }
    table(
        &["FIELD", "VALUE"],
        &[
            vec!["id".to_owned(), project.id.clone()],
            vec!["name".to_owned(), project.name.clone()],
            vec!["e2ee".to_owned(), project.e2ee.to_string()],
            vec!["environments".to_owned(), slugs(project)],
            vec!["trusted ips".to_owned(), trusted],
            vec!["key encryptions".to_owned(), key_use],
        ],
    );
}
