//! Where the CLI's settings come from.
//!
//! - The project: `--projectId`, else `.latchkey.json` in the working folder
//!   or the nearest parent (written by `latchkey init`).
//! - Server addresses: flags, then `LATCHKEY_AUTH_ADDR`/`LATCHKEY_SECRETS_ADDR`
//!   (both handled by clap), then the user config file, then the `make run`
//!   defaults.
//! - The token: `--token`, then `LATCHKEY_TOKEN`, then the one `latchkey
//!   login` stored in the user config file (mode 0600).
//!
//! The user config file is `$XDG_CONFIG_HOME/latchkey/config.json` (or the
//! platform's equivalent), overridden by `LATCHKEY_CONFIG_DIR`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The file `latchkey init` writes to link a folder to a project.
pub(crate) const PROJECT_FILE: &str = ".latchkey.json";

/// The auth service address `make run` listens on.
pub(crate) const DEFAULT_AUTH_ADDR: &str = "http://127.0.0.1:50051";
/// The secrets service address `make run` listens on.
pub(crate) const DEFAULT_SECRETS_ADDR: &str = "http://127.0.0.1:50052";

/// `.latchkey.json`: the project a folder belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProjectFile {
    /// The project id.
    pub(crate) project_id: String,
    /// The environment commands use when `--env` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default_environment: Option<String>,
}

/// The user's config file: addresses and the token `latchkey login` stored.
#[derive(Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserConfig {
    /// Auth service address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) auth_addr: Option<String>,
    /// Secrets service address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secrets_addr: Option<String>,
    /// The stored token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("auth_addr", &self.auth_addr)
            .field("secrets_addr", &self.secrets_addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The folder holding the user config file, if the platform has one.
pub(crate) fn user_config_dir() -> Option<PathBuf> {
    match std::env::var_os("LATCHKEY_CONFIG_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::config_dir().map(|d| d.join("latchkey")),
    }
}

/// The user config file's path.
pub(crate) fn user_config_path() -> Option<PathBuf> {
    user_config_dir().map(|d| d.join("config.json"))
}

impl UserConfig {
    /// Reads the user config file; a missing file is an empty config.
    pub(crate) fn load() -> Result<UserConfig, CliError> {
        let Some(path) = user_config_path() else {
            return Ok(UserConfig::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::Input(format!(
                    "{} is not a valid latchkey config: {e}; fix or delete it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UserConfig::default()),
            Err(e) => Err(CliError::Input(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes the user config file with mode 0600, since it may hold a token.
    pub(crate) fn save(&self) -> Result<PathBuf, CliError> {
        let path = user_config_path().ok_or_else(|| {
            CliError::Input(
                "no config directory on this machine: set LATCHKEY_CONFIG_DIR or HOME".to_owned(),
            )
        })?;
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CliError::Input(format!("cannot encode the config: {e}")))?;
        write_private(&path, &text)?;
        Ok(path)
    }
}

/// Writes `text` to `path` readable by its owner only, replacing it
/// atomically so a reader never sees half a file or a wider mode.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let fail = |e: std::io::Error| CliError::Input(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Finds `.latchkey.json` in `start` or the nearest parent that has one.
pub(crate) fn find_project_file(start: &Path) -> Result<Option<(PathBuf, ProjectFile)>, CliError> {
    for dir in start.ancestors() {
        let path = dir.join(PROJECT_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file = serde_json::from_str(&text).map_err(|e| {
                    CliError::Input(format!(
                        "{} is not valid: {e}; run `latchkey init` again",
                        path.display()
                    ))
                })?;
                return Ok(Some((path, file)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CliError::Input(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(None)
}

/// Writes `.latchkey.json` into `dir`.
pub(crate) fn write_project_file(dir: &Path, file: &ProjectFile) -> Result<PathBuf, CliError> {
    let path = dir.join(PROJECT_FILE);
    let text = serde_json::to_string_pretty(file)
        .map_err(|e| CliError::Input(format!("cannot encode {PROJECT_FILE}: {e}")))?;
    std::fs::write(&path, format!("{text}\n"))
        .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// The linked project of the working folder, if any.
pub(crate) fn linked_project() -> Result<Option<ProjectFile>, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::Input(format!("cannot read the working folder: {e}")))?;
    Ok(find_project_file(&cwd)?.map(|(_, file)| file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_file_is_found_in_a_parent_folder() {
        let root = tempfile::tempdir().unwrap();
        let file = ProjectFile {
            project_id: "p1".to_owned(),
            default_environment: Some("staging".to_owned()),
        };
        write_project_file(root.path(), &file).unwrap();
        let nested = root.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();

        let (path, found) = find_project_file(&nested).unwrap().unwrap();

        assert_eq!(path, root.path().join(PROJECT_FILE));
        assert_eq!(found.project_id, "p1");
        assert_eq!(found.default_environment.as_deref(), Some("staging"));
    }

    #[test]
    fn project_file_uses_infisical_style_camel_case_keys() {
        let text = serde_json::to_string(&ProjectFile {
            project_id: "p".to_owned(),
            default_environment: Some("dev".to_owned()),
        })
        .unwrap();

        assert_eq!(text, r#"{"projectId":"p","defaultEnvironment":"dev"}"#);
    }

    #[test]
    fn a_broken_project_file_is_refused_with_its_path() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(PROJECT_FILE), "{").unwrap();

        let err = find_project_file(root.path()).unwrap_err().to_string();

        assert!(
            err.contains(PROJECT_FILE) && err.contains("latchkey init"),
            "{err}"
        );
    }

    #[test]
    fn private_files_are_written_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("nested/config.json");

        write_private(&path, "{}").unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn user_config_debug_hides_the_token() {
        let config = UserConfig {
            token: Some("st.secret".to_owned()),
            ..UserConfig::default()
        };

        assert!(!format!("{config:?}").contains("st.secret"));
    }
}
