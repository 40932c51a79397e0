//! Infisical's request parameters to domain types. Clients put them in the
//! query string (reads) or a JSON body (writes, and the Python SDK's
//! delete); unknown parameters are ignored, as Infisical does, and errors
//! name the parameter as the client sent it.

use latchkey_domain::InvalidInput;
use latchkey_domain::model::Folder;
use latchkey_domain::path::SecretName;

use super::error::{HttpError, invalid};

/// The parameters of one request: body fields first, then the query string.
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    /// The query string's pairs.
    pub(super) fn from_query(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// The fields of a JSON object body, ahead of the query's `pairs`; an
    /// empty body adds nothing.
    pub(super) fn from_body(body: &[u8], pairs: Vec<(String, String)>) -> Result<Self, HttpError> {
        let mut params = Vec::new();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| invalid("body", format!("not JSON: {e}")))?;
            let serde_json::Value::Object(fields) = value else {
                return Err(invalid("body", "must be a JSON object"));
            };
            for (name, value) in fields {
                let text = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => continue,
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Number(n) => n.to_string(),
                    other => other.to_string(),
                };
                params.push((name, text));
            }
        }
        params.extend(pairs);
        Ok(Params(params))
    }

    /// The first non-empty value of any of `names` (Infisical's aliases).
    pub(super) fn get(&self, names: &[&str]) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| !v.is_empty() && names.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` even when empty (a secret's value may be).
    pub(super) fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: exactly `true` or `false`, as Infisical accepts.
    pub(super) fn flag(&self, names: &[&str], default: bool) -> Result<bool, HttpError> {
        match self.get(names) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(invalid(
                names[0],
                format!("{other:?} is not a boolean; send true or false"),
            )),
        }
    }

    /// The folder: `workspaceId` or `projectId` (blank is a service token's
    /// own project), `environment`, `secretPath` (default `/`).
    pub(super) fn folder(&self) -> Result<Folder, HttpError> {
        let project = self.get(&["workspaceId", "projectId"]);
        if project.is_none() && self.get(&["workspaceSlug"]).is_some() {
            return Err(invalid(
                "workspaceSlug",
                "Latchkey projects have no slugs; send workspaceId (the project id)",
            ));
        }
        let environment = self
            .get(&["environment"])
            .ok_or_else(|| invalid("environment", "required: the environment slug, e.g. dev"))?;
        Folder::parse(
            project.unwrap_or(""),
            "workspaceId",
            environment,
            self.get(&["secretPath"]).unwrap_or("/"),
        )
        .map_err(renamed)
    }

    /// Refuses `type=personal` on writes: Latchkey has shared secrets only.
    pub(super) fn shared_only(&self) -> Result<(), HttpError> {
        match self.get(&["type"]) {
            None | Some("shared") => Ok(()),
            Some(other) => Err(invalid(
                "type",
                format!("{other:?}: Latchkey has only shared secrets; send type=shared or omit it"),
            )),
        }
    }
}

/// A secret name from the URL path (already percent-decoded by the router).
pub(super) fn secret_name(name: &str) -> Result<SecretName, HttpError> {
    SecretName::parse(name).map_err(renamed)
}

/// The domain's field names as Infisical's clients call them.
fn renamed(mut err: InvalidInput) -> HttpError {
    err.field = match err.field.as_str() {
        "secret_path" => "secretPath".to_owned(),
        "name" => "secretName".to_owned(),
        "value" => "secretValue".to_owned(),
        _ => err.field,
    };
    HttpError::from(err)
}
