//! Unit tests of `config`.

use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn secret_comes_from_the_variable_or_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k");
    fs::write(&file, "from-file\n").unwrap();
    let vars = Vars::from_pairs([("A", " value "), ("B_FILE", file.to_str().unwrap())]);
    assert_eq!(vars.secret("A").unwrap().as_deref(), Some("value"));
    assert_eq!(vars.secret("B").unwrap().as_deref(), Some("from-file"));
    assert_eq!(vars.secret("C").unwrap(), None);
}

#[test]
fn setting_both_a_secret_and_its_file_is_refused_naming_the_variable() {
    let vars = Vars::from_pairs([("A", "x"), ("A_FILE", "/nope")]);
    assert_eq!(vars.secret("A").unwrap_err().variable, "A");
    let vars = Vars::from_pairs([("A_FILE", "/does/not/exist")]);
    assert_eq!(vars.secret("A").unwrap_err().variable, "A_FILE");
}

#[test]
fn production_requires_secrets_that_development_generates() {
    let dir = tempfile::tempdir().unwrap();
    let vars = Vars::default();
    let err = secret_or_dev_file(
        &vars,
        Mode::Production,
        "ROOT",
        dir.path(),
        "root.key",
        || "x".into(),
    )
    .unwrap_err();
    assert_eq!(err.variable, "ROOT");
    let first = secret_or_dev_file(
        &vars,
        Mode::Development,
        "ROOT",
        dir.path(),
        "root.key",
        || "gen1".into(),
    )
    .unwrap();
    let second = secret_or_dev_file(
        &vars,
        Mode::Development,
        "ROOT",
        dir.path(),
        "root.key",
        || "gen2".into(),
    )
    .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("gen1", "gen1"));
    let mode = fs::metadata(dir.path().join("root.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn database_url_defaults_to_sqlite_in_the_data_dir_and_rejects_other_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = database_url(&Vars::default(), &data, "auth.db").unwrap();
    assert!(
        url.starts_with("sqlite://") && url.ends_with("auth.db?mode=rwc"),
        "{url}"
    );
    assert!(data.is_dir());
    let vars = Vars::from_pairs([("DATABASE_URL", "mysql://x")]);
    assert_eq!(
        database_url(&vars, &data, "a").unwrap_err().variable,
        "DATABASE_URL"
    );
}

#[test]
fn unknown_mode_is_refused() {
    let vars = Vars::from_pairs([("LATCHKEY_ENV", "staging")]);
    assert_eq!(Mode::from_vars(&vars).unwrap_err().variable, "LATCHKEY_ENV");
    assert_eq!(
        Mode::from_vars(&Vars::default()).unwrap(),
        Mode::Development
    );
}
