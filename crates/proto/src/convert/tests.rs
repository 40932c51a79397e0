//! The field-naming rules of every conversion: a bad request is refused
//! naming the field the caller must fix.

use latchkey_domain::InvalidInput;
use latchkey_domain::model::{
    Folder, IdentityId, NewServiceToken, Principal, ProjectId, ServiceTokenId,
};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::ports::{AuthorizationRequest, Grant};
use latchkey_domain::scope::{Action, Scope, Scopes};

use super::auth::RevokeTarget;
use crate::auth::v1 as auth;
use crate::secrets::v1 as secrets;

/// Spoils one field of a valid request.
type Spoil<R> = fn(&mut R);

const PROJECT: &str = "7a3e5c1e-0d2b-4c5e-9a3f-2f1d0c9b8a7e";

fn field<T: std::fmt::Debug>(result: Result<T, InvalidInput>) -> String {
    result.unwrap_err().field
}

fn scope(environment: &str, secret_path: &str) -> auth::Scope {
    auth::Scope {
        environment: environment.to_owned(),
        secret_path: secret_path.to_owned(),
    }
}

fn new_token() -> auth::CreateServiceTokenRequest {
    auth::CreateServiceTokenRequest {
        project_id: PROJECT.to_owned(),
        name: "ci".to_owned(),
        scopes: vec![scope("dev", "/**")],
        permissions: vec![auth::Permission::Read.into()],
        expires_in_seconds: 0,
        trusted_ips: vec![],
    }
}

#[test]
fn a_blank_id_is_required_in_the_field_the_request_names_it() {
    let get = auth::GetServiceTokenRequest {
        token_id: " ".to_owned(),
    };
    assert_eq!(field(ServiceTokenId::try_from(&get)), "token_id");
    let list = auth::ListIdentityAccessTokensRequest::default();
    assert_eq!(field(IdentityId::try_from(&list)), "identity_id");
    let project = auth::GetProjectRequest {
        project_id: " p1 ".to_owned(),
    };
    assert_eq!(ProjectId::try_from(&project).unwrap().as_str(), "p1");
}

#[test]
fn a_new_service_token_names_each_bad_field() {
    let ok = NewServiceToken::try_from(&new_token()).unwrap();
    assert_eq!(ok.name.as_str(), "ci");
    assert!(ok.permissions.read && !ok.permissions.write);

    let cases: Vec<(Spoil<auth::CreateServiceTokenRequest>, &str)> = vec![
        (|r| r.project_id.clear(), "project_id"),
        (|r| r.name = "a\u{7}".to_owned(), "name"),
        (
            |r| r.scopes.push(scope("Not An Env", "/")),
            "scopes[1].environment",
        ),
        (
            |r| r.scopes[0].secret_path = "relative".to_owned(),
            "scopes[0].secret_path",
        ),
        (|r| r.scopes.clear(), "scopes"),
        (|r| r.permissions.clear(), "permissions"),
        (|r| r.permissions = vec![1, 99], "permissions[1]"),
        (
            |r| r.trusted_ips = vec!["10.0.0.1".to_owned(), "nope".to_owned()],
            "trusted_ips[1]",
        ),
    ];
    for (break_it, expected) in cases {
        let mut req = new_token();
        break_it(&mut req);
        assert_eq!(field(NewServiceToken::try_from(&req)), expected);
    }
}

#[test]
fn an_environment_without_a_name_is_named_after_its_slug() {
    let req = auth::CreateEnvironmentRequest {
        project_id: PROJECT.to_owned(),
        slug: "qa".to_owned(),
        name: String::new(),
    };
    let (_, slug, name) = <(ProjectId, Environment, _)>::try_from(&req).unwrap();
    assert_eq!((slug.as_str(), name.as_str()), ("qa", "qa"));
    let bad = auth::CreateEnvironmentRequest {
        slug: "Q A".to_owned(),
        ..req
    };
    assert_eq!(
        field(<(
            ProjectId,
            Environment,
            latchkey_domain::model::DisplayName
        )>::try_from(&bad)),
        "slug"
    );
}

#[test]
fn revoking_needs_a_token_or_an_id() {
    let none = auth::RevokeAccessTokenRequest::default();
    assert_eq!(field(RevokeTarget::try_from(&none)), "access_token");
    let by_id = auth::RevokeAccessTokenRequest {
        access_token: "ignored".to_owned(),
        token_id: "t1".to_owned(),
        client_ip: String::new(),
    };
    assert!(
        matches!(RevokeTarget::try_from(&by_id), Ok(RevokeTarget::ById(id)) if id.as_str() == "t1")
    );
}

fn authorize() -> auth::AuthorizeRequest {
    auth::AuthorizeRequest {
        token: "st.x.y".to_owned(),
        client_ip: "10.0.0.1".to_owned(),
        project_id: String::new(),
        environment: "dev".to_owned(),
        secret_path: String::new(),
        action: auth::Action::Read.into(),
        raw: false,
        recursive: false,
    }
}

#[test]
fn an_authorize_request_defaults_to_the_root_and_the_tokens_project() {
    let req = AuthorizationRequest::try_from(authorize()).unwrap();
    assert_eq!(req.path, SecretPath::root());
    assert_eq!(req.project_id, None);
    assert_eq!(req.action, Action::Read);
    let back = auth::AuthorizeRequest::from(&req);
    assert_eq!(back.secret_path, "/");
    assert_eq!(back.client_ip, "10.0.0.1");
}

#[test]
fn an_authorize_request_names_each_bad_field() {
    let cases: Vec<(Spoil<auth::AuthorizeRequest>, &str)> = vec![
        (|r| r.action = 0, "action"),
        (|r| r.client_ip = "not-an-ip".to_owned(), "client_ip"),
        (|r| r.environment = "Dev Env".to_owned(), "environment"),
        (|r| r.secret_path = "a/b".to_owned(), "secret_path"),
        (|r| r.project_id = "a b".to_owned(), "project_id"),
    ];
    for (break_it, expected) in cases {
        let mut req = authorize();
        break_it(&mut req);
        assert_eq!(field(AuthorizationRequest::try_from(req)), expected);
    }
}

#[test]
fn a_grant_survives_the_wire_and_a_malformed_one_names_its_field() {
    let grant = Grant {
        principal: Principal::Identity(IdentityId::from_stored("i1".to_owned())),
        project_id: ProjectId::from_stored(PROJECT.to_owned()),
        scopes: Scopes::new(vec![Scope::new("dev", "/a/**").unwrap()]),
        encrypted_project_key: None,
        project_key: None,
    };
    let back = Grant::try_from(auth::AuthorizeResponse::from(&grant)).unwrap();
    assert_eq!(back.principal, grant.principal);
    assert_eq!(back.project_id, grant.project_id);
    assert_eq!(back.scopes, grant.scopes);

    let mut bad = auth::AuthorizeResponse::from(&grant);
    bad.principal = "user:1".to_owned();
    assert_eq!(field(Grant::try_from(bad)), "principal");
    let mut bad = auth::AuthorizeResponse::from(&grant);
    bad.project_key = "short".to_owned();
    assert_eq!(field(Grant::try_from(bad)), "project_key");
}

#[test]
fn a_secrets_request_takes_a_blank_project_as_the_tokens_and_an_empty_path_as_the_root() {
    let req = secrets::GetSecretRequest {
        project_id: String::new(),
        environment: "dev".to_owned(),
        secret_path: String::new(),
        name: "API_KEY".to_owned(),
    };
    let (folder, name) = <(Folder, SecretName)>::try_from(&req).unwrap();
    assert_eq!(folder.project_id, None);
    assert_eq!(folder.path, SecretPath::root());
    assert_eq!(name.as_str(), "API_KEY");
}

#[test]
fn a_secrets_request_names_each_bad_field() {
    let base = secrets::DeleteSecretRequest {
        project_id: PROJECT.to_owned(),
        environment: "dev".to_owned(),
        secret_path: "/".to_owned(),
        name: "K".to_owned(),
    };
    assert!(<(Folder, SecretName)>::try_from(&base).is_ok());
    let cases: Vec<(Spoil<secrets::DeleteSecretRequest>, &str)> = vec![
        (|r| r.project_id = "p1".to_owned(), "project_id"),
        (|r| r.environment.clear(), "environment"),
        (|r| r.secret_path = "x".to_owned(), "secret_path"),
        (|r| r.name = "a b".to_owned(), "name"),
    ];
    for (break_it, expected) in cases {
        let mut req = base.clone();
        break_it(&mut req);
        assert_eq!(field(<(Folder, SecretName)>::try_from(&req)), expected);
    }
}
