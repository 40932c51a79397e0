//! The real `latchkey` binary against services started by the test.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;

use common::Cli;
use latchkey_test_support::{Backend, Stack};

async fn started() -> (Stack, String) {
    let stack = Stack::start(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let project = stack.create_project(false).await;
    (stack, project)
}

/// A token for dev:/backend/** and staging:/**, read and write.
async fn create_token(stack: &Stack, project: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "service-token",
        "create",
        "--projectId",
        project,
        "--scope=dev:/backend/**",
        "--scope=staging:/**",
        "--access-level=read",
        "--access-level=write",
        "--token-only",
    ];
    args.extend_from_slice(extra);
    let out = Cli::new(stack, &stack.admin_token).run(&args).await.ok();
    out.trim().to_owned()
}

/// `service-token get <id> --output json` of a full token.
async fn token_json(stack: &Stack, token: &str) -> serde_json::Value {
    let id = token.split('.').nth(1).unwrap();
    let out = Cli::new(stack, &stack.admin_token)
        .run(&["service-token", "get", id, "--output", "json"])
        .await
        .ok();
    serde_json::from_str(&out).unwrap()
}

async fn set(stack: &Stack, token: &str, pairs: &[&str], env: &str, path: &str) {
    let mut args = vec!["secrets", "set"];
    args.extend_from_slice(pairs);
    args.extend_from_slice(&["--env", env, "--path", path]);
    Cli::new(stack, token).run(&args).await.ok();
}

// ---- service tokens --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_only_prints_just_the_token_and_both_scopes_and_access_levels_work() {
    let (stack, project) = started().await;

    let token = create_token(&stack, &project, &[]).await;

    assert!(
        token.starts_with("st.") && !token.contains(char::is_whitespace),
        "{token:?}"
    );
    let meta = token_json(&stack, &token).await;
    assert_eq!(meta["name"], "Service token generated via CLI");
    assert_eq!(
        meta["scopes"],
        serde_json::json!(["dev:/backend/**", "staging:/**"])
    );
    assert_eq!(meta["permissions"], serde_json::json!(["read", "write"]));
    set(&stack, &token, &["A=in-staging"], "staging", "/x").await;
    set(&stack, &token, &["B=in-dev"], "dev", "/backend/api").await;
    let staging = Cli::new(&stack, &token)
        .run(&[
            "secrets", "get", "A", "--env", "staging", "--path", "/x", "--plain",
        ])
        .await
        .ok();
    let dev = Cli::new(&stack, &token)
        .run(&[
            "secrets",
            "get",
            "B",
            "--env",
            "dev",
            "--path",
            "/backend/api",
            "--plain",
        ])
        .await
        .ok();
    assert_eq!(
        (staging.as_str(), dev.as_str()),
        ("in-staging\n", "in-dev\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_expiry_is_one_day_and_zero_never_expires() {
    let (stack, project) = started().await;

    let day = token_json(&stack, &create_token(&stack, &project, &[]).await).await;
    let never = token_json(
        &stack,
        &create_token(&stack, &project, &["--expiry-seconds", "0"]).await,
    )
    .await;

    assert_eq!(day["expiresInSeconds"], 86_400);
    assert!(day["expiresAt"].is_string(), "{day}");
    assert_eq!(never["expiresInSeconds"], 0);
    assert!(never["expiresAt"].is_null(), "{never}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_token_list_get_deactivate_activate_and_delete() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &["--name", "ci deploy"]).await;
    let id = token.split('.').nth(1).unwrap().to_owned();
    let admin = || Cli::new(&stack, &stack.admin_token);
    let read = || async {
        Cli::new(&stack, &token)
            .run(&["secrets", "list", "--env", "staging"])
            .await
    };

    let listed = admin()
        .run(&["service-token", "list", "--projectId", &project])
        .await
        .ok();
    assert!(
        listed.contains(&id) && listed.contains("ci deploy") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(&token), "the list never shows the token");

    let shown = admin()
        .run(&["service-token", "deactivate", &id])
        .await
        .ok();
    assert!(shown.contains("inactive"), "{shown}");
    let denied = read().await;
    assert_eq!(denied.code, 3, "{}", denied.err);
    assert!(denied.err.contains("TOKEN_INACTIVE"), "{}", denied.err);

    admin().run(&["service-token", "activate", &id]).await.ok();
    read().await.ok();

    admin().run(&["service-token", "delete", &id]).await.ok();
    let denied = read().await;
    assert_eq!(denied.code, 3, "{}", denied.err);
    assert!(denied.err.contains("TOKEN_REVOKED"), "{}", denied.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_refused_before_any_call_with_exit_code_2() {
    let (stack, project) = started().await;
    let create = |extra: &'static [&'static str]| {
        let mut args = vec![
            "service-token".to_owned(),
            "create".to_owned(),
            "--projectId".to_owned(),
            project.clone(),
            "--access-level=read".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (create(&["--scope=dev"]), "--scope"),
        (create(&["--scope=dev:backend"]), "--scope"),
        (create(&["--scope=nope:/"]), "--scope"),
        (
            create(&["--scope=dev:/", "--expiry-seconds", "-1"]),
            "--expiry-seconds",
        ),
        (
            create(&["--scope=dev:/", "--trusted-ip", "10.0.0.300"]),
            "--trusted-ip",
        ),
        (
            vec![
                "secrets".into(),
                "get".into(),
                "A".into(),
                "--path".into(),
                "../etc".into(),
            ],
            "--path",
        ),
        (
            vec![
                "secrets".into(),
                "get".into(),
                "A".into(),
                "--env".into(),
                "Dev Env".into(),
            ],
            "--env",
        ),
    ];
    for (args, flag) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = Cli::new(&stack, &stack.admin_token).run(&args).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.err);
        assert!(out.err.contains(flag), "{args:?}: {}", out.err);
    }
    let unknown = Cli::new(&stack, &stack.admin_token)
        .run(
            &create(&["--scope=nope:/"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await;
    assert!(
        unknown.err.contains("dev,staging,prod"),
        "names the environments the project has: {}",
        unknown.err
    );
    let listed = Cli::new(&stack, &stack.admin_token)
        .run(&[
            "service-token",
            "list",
            "--projectId",
            &project,
            "--output",
            "json",
        ])
        .await
        .ok();
    assert_eq!(listed.trim(), "[]", "nothing was created");
}

// ---- secrets ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_set_then_get_round_trips_awkward_values() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    let value = "line one\nline \"two\" = 'x'\tünïcødé ✓ $HOME \\n";

    set(
        &stack,
        &token,
        &[&format!("TRICKY={value}")],
        "dev",
        "/backend",
    )
    .await;
    let plain = Cli::new(&stack, &token)
        .run(&[
            "secrets",
            "get",
            "TRICKY",
            "--env",
            "dev",
            "--path",
            "/backend/",
            "--plain",
        ])
        .await
        .ok();
    let json = Cli::new(&stack, &token)
        .run(&[
            "secrets",
            "list",
            "--env",
            "dev",
            "--path",
            "/",
            "--recursive",
            "--output",
            "json",
        ])
        .await
        .ok();

    assert_eq!(plain, format!("{value}\n"));
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed[0]["name"], "TRICKY");
    assert_eq!(listed[0]["value"], value);
    assert_eq!(listed[0]["path"], "/backend");
    assert_eq!(listed[0]["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_come_from_a_dotenv_file_or_standard_input() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.env"),
        "# comment\nFROM_FILE=\"a b\\nc\"\nexport SECOND='x=y'\n",
    )
    .unwrap();
    let pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n";

    Cli::new(&stack, &token)
        .dir(dir.path())
        .run(&[
            "secrets", "set", "--file", "app.env", "--env", "dev", "--path", "/backend",
        ])
        .await
        .ok();
    Cli::new(&stack, &token)
        .stdin(pem)
        .run(&[
            "secrets", "set", "TLS_KEY", "--env", "dev", "--path", "/backend",
        ])
        .await
        .ok();
    let exported = Cli::new(&stack, &token)
        .run(&[
            "export", "--env", "dev", "--path", "/backend", "--format", "json",
        ])
        .await
        .ok();

    let map: BTreeMap<String, String> = serde_json::from_str(&exported).unwrap();
    assert_eq!(map["FROM_FILE"], "a b\nc");
    assert_eq!(map["SECOND"], "x=y");
    assert_eq!(
        map["TLS_KEY"],
        pem.trim_end_matches('\n'),
        "one trailing newline is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_delete_removes_the_secret_and_a_second_delete_is_not_found() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    set(&stack, &token, &["GONE=1", "KEPT=2"], "dev", "/backend").await;

    Cli::new(&stack, &token)
        .run(&[
            "secrets", "delete", "GONE", "--env", "dev", "--path", "/backend",
        ])
        .await
        .ok();
    let again = Cli::new(&stack, &token)
        .run(&[
            "secrets", "delete", "GONE", "--env", "dev", "--path", "/backend",
        ])
        .await;
    let left = Cli::new(&stack, &token)
        .run(&[
            "export", "--env", "dev", "--path", "/backend", "--format", "json",
        ])
        .await
        .ok();

    assert_eq!(again.code, 1, "{}", again.err);
    assert!(again.err.contains("not found"), "{}", again.err);
    let map: BTreeMap<String, String> = serde_json::from_str(&left).unwrap();
    assert_eq!(map, BTreeMap::from([("KEPT".to_owned(), "2".to_owned())]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_output_parses_back_to_the_same_map_in_every_format() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    let expected = BTreeMap::from([
        (
            "MULTI".to_owned(),
            "a\nb \"q\" 'x' = $NOT_EXPANDED \\ ✓".to_owned(),
        ),
        ("PLAIN".to_owned(), "value".to_owned()),
        ("EMPTY".to_owned(), String::new()),
    ]);
    let pairs: Vec<String> = expected.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let pairs: Vec<&str> = pairs.iter().map(String::as_str).collect();
    set(&stack, &token, &pairs, "dev", "/backend").await;
    let export = |format: &'static str| {
        Cli::new(&stack, &token).run(&[
            "export", "--env", "dev", "--path", "/backend", "--format", format,
        ])
    };

    let dotenv = export("dotenv").await.ok();
    let json = export("json").await.ok();
    let yaml = export("yaml").await.ok();

    let from_dotenv: BTreeMap<String, String> = dotenvy::from_read_iter(dotenv.as_bytes())
        .map(Result::unwrap)
        .collect();
    assert_eq!(from_dotenv, expected, "{dotenv}");
    assert_eq!(
        serde_json::from_str::<BTreeMap<String, String>>(&json).unwrap(),
        expected
    );
    assert_eq!(
        serde_yaml_ng::from_str::<BTreeMap<String, String>>(&yaml).unwrap(),
        expected
    );

    // --output-file writes the same text to a file only its owner reads.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.env");
    let printed = Cli::new(&stack, &token)
        .run(&[
            "export",
            "--env",
            "dev",
            "--path",
            "/backend",
            "--output-file",
            file.to_str().unwrap(),
        ])
        .await
        .ok();
    assert!(printed.is_empty(), "nothing on stdout: {printed}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), dotenv);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

// ---- run -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_injects_secrets_and_passes_the_exit_code_through() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    set(
        &stack,
        &token,
        &["DB_URL=postgres://db/app", "MULTI=a\nb"],
        "dev",
        "/backend",
    )
    .await;

    let out = Cli::new(&stack, &token)
        .run(&[
            "run",
            "--env",
            "dev",
            "--path",
            "/backend",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$DB_URL\" \"$MULTI\"; exit 7",
        ])
        .await;

    assert_eq!(out.code, 7, "{}", out.err);
    assert_eq!(out.out, "postgres://db/app|a\nb");
    assert!(out.err.contains("injecting 2 of 2 secrets"), "{}", out.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_keeps_existing_variables_unless_override_and_reads_recursively() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    set(&stack, &token, &["K=secret", "TOP=top"], "dev", "/backend").await;
    set(
        &stack,
        &token,
        &["K=deeper", "DEEP=deep"],
        "dev",
        "/backend/api",
    )
    .await;
    let show = ["sh", "-c", "printf '%s %s %s' \"$K\" \"$TOP\" \"$DEEP\""];
    let run = |extra: &'static [&'static str]| {
        let mut args = vec![
            "run",
            "--env",
            "dev",
            "--path",
            "/backend",
            "--recursive",
            "--silent",
        ];
        args.extend_from_slice(extra);
        args.push("--");
        args.extend_from_slice(&show);
        Cli::new(&stack, &token).env("K", "preset").run(&args)
    };

    let kept = run(&[]).await.ok();
    let replaced = run(&["--override"]).await.ok();

    assert_eq!(kept, "preset top deep");
    assert_eq!(
        replaced, "secret top deep",
        "the folder nearest --path wins"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_loader_variables_unless_allowed() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    set(
        &stack,
        &token,
        &["BASH_ENV=/tmp/evil.sh", "DB_URL=x"],
        "dev",
        "/backend",
    )
    .await;
    let run = |extra: &'static [&'static str]| {
        let mut args = vec!["run", "--env", "dev", "--path", "/backend"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", "printf '%s' \"$BASH_ENV\""]);
        let cli = Cli::new(&stack, &token);
        async move { cli.run(&args).await }
    };

    let refused = run(&[]).await;
    let allowed = run(&["--allow-loader-vars"]).await;

    assert_eq!(refused.code, 2, "{}", refused.err);
    assert!(
        refused.err.contains("BASH_ENV") && refused.err.contains("--allow-loader-vars"),
        "{}",
        refused.err
    );
    assert!(refused.out.is_empty(), "the command never ran");
    assert_eq!(allowed.code, 0, "{}", allowed.err);
    assert_eq!(allowed.out, "/tmp/evil.sh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_secret_names_that_are_not_variable_names() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    set(&stack, &token, &["my-key=1", "OK=2"], "dev", "/backend").await;

    let out = Cli::new(&stack, &token)
        .run(&[
            "run", "--env", "dev", "--path", "/backend", "--", "sh", "-c", "echo ran",
        ])
        .await;

    assert_eq!(out.code, 2, "{}", out.err);
    assert!(
        out.err.contains("my-key") && out.err.contains("not valid environment variable names"),
        "{}",
        out.err
    );
    assert!(!out.out.contains("ran"), "the command never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_of_a_missing_command_exits_127() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;

    let out = Cli::new(&stack, &token)
        .run(&[
            "run",
            "--env",
            "dev",
            "--path",
            "/backend",
            "--",
            "no-such-command-latchkey",
        ])
        .await;

    assert_eq!(out.code, 127, "{}", out.err);
    assert!(out.err.contains("no-such-command-latchkey"), "{}", out.err);
}

// ---- configuration ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_links_a_folder_so_commands_in_it_and_below_need_no_project_or_env() {
    let (stack, project) = started().await;
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("src/deep");
    std::fs::create_dir_all(&nested).unwrap();

    Cli::new(&stack, &stack.admin_token)
        .dir(dir.path())
        .run(&["init", "--projectId", &project, "--env", "staging"])
        .await
        .ok();
    let token = Cli::new(&stack, &stack.admin_token)
        .dir(&nested)
        .run(&[
            "service-token",
            "create",
            "--scope=staging:/**",
            "--access-level=read",
            "--access-level=write",
            "--token-only",
        ])
        .await
        .ok();
    let token = token.trim();
    Cli::new(&stack, token)
        .dir(&nested)
        .run(&["secrets", "set", "WHERE=linked"])
        .await
        .ok();
    let read = Cli::new(&stack, token)
        .run(&["secrets", "get", "WHERE", "--env", "staging", "--plain"])
        .await
        .ok();

    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(".latchkey.json")).unwrap())
            .unwrap();
    assert_eq!(file["projectId"], project.as_str());
    assert_eq!(file["defaultEnvironment"], "staging");
    assert_eq!(
        read, "linked\n",
        "the default environment came from .latchkey.json"
    );
    // A service token of another project acts on its own project there.
    let other = stack.create_project(false).await;
    let foreign = create_token(&stack, &other, &[]).await;
    Cli::new(&stack, &foreign)
        .dir(&nested)
        .run(&["secrets", "set", "OTHER=1", "--path", "/"])
        .await
        .ok();
    let bad = Cli::new(&stack, &stack.admin_token)
        .dir(dir.path())
        .run(&["init", "--projectId", &project, "--env", "qa"])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.err);
    assert!(
        bad.err.contains("--env") && bad.err.contains("qa"),
        "{}",
        bad.err
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_needing_a_project_say_how_to_give_one() {
    let (stack, _) = started().await;

    let out = Cli::new(&stack, &stack.admin_token)
        .run(&["service-token", "list"])
        .await;

    assert_eq!(out.code, 2, "{}", out.err);
    assert!(
        out.err.contains("--projectId") && out.err.contains("latchkey init"),
        "{}",
        out.err
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_the_token_privately_and_later_commands_use_it_until_logout() {
    use std::os::unix::fs::PermissionsExt;
    let (stack, _) = started().await;
    let dir = tempfile::tempdir().unwrap();
    let addrs = |cli: Cli| {
        cli.dir(dir.path())
            .env("LATCHKEY_AUTH_ADDR", &stack.auth_url)
            .env("LATCHKEY_SECRETS_ADDR", &stack.secrets_url)
    };

    let login = addrs(Cli::bare())
        .run(&["login", "--token", &stack.admin_token])
        .await
        .ok();
    let listed = addrs(Cli::bare()).run(&["project", "list"]).await.ok();
    addrs(Cli::bare()).run(&["logout"]).await.ok();
    let after = addrs(Cli::bare()).run(&["project", "list"]).await;

    let config = dir.path().join(".config/config.json");
    assert!(login.contains("identity:"), "{login}");
    assert!(
        !login.contains(&stack.admin_token),
        "login never prints the token"
    );
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(listed.contains("test project"), "{listed}");
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains(&stack.admin_token)
    );
    assert_eq!(after.code, 3, "{}", after.err);
    assert!(
        after.err.contains("TOKEN_MALFORMED") && after.err.contains("latchkey login"),
        "{}",
        after.err
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_does_not_log_in() {
    let (stack, _) = started().await;
    let dir = tempfile::tempdir().unwrap();

    let out = Cli::new(&stack, "st.nope")
        .dir(dir.path())
        .run(&["login"])
        .await;

    assert_eq!(out.code, 3, "{}", out.err);
    assert!(!dir.path().join(".config/config.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_token_with_a_damaged_key_part_does_not_log_in() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (access, key) = token.rsplit_once('.').unwrap();
    let damaged = format!("{access}.{}", key.chars().rev().collect::<String>());

    let out = Cli::new(&stack, &damaged)
        .dir(dir.path())
        .run(&["login"])
        .await;

    assert_eq!(out.code, 3, "{}", out.err);
    assert!(out.err.contains("TOKEN_KEY_DAMAGED"), "{}", out.err);
    assert!(!dir.path().join(".config/config.json").exists());
    let ok = Cli::new(&stack, &token)
        .dir(dir.path())
        .run(&["login"])
        .await;
    assert_eq!(ok.code, 0, "{}", ok.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_come_from_flags_then_environment_then_the_config_file() {
    let (stack, _) = started().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".config")).unwrap();
    let dead = "http://127.0.0.1:9"; // discard port: nothing listens
    let write_config = |auth: &str| {
        std::fs::write(
            dir.path().join(".config/config.json"),
            serde_json::json!({ "authAddr": auth, "token": stack.admin_token }).to_string(),
        )
        .unwrap();
    };

    write_config(&stack.auth_url);
    let from_file = Cli::bare().dir(dir.path()).run(&["project", "list"]).await;
    write_config(dead);
    let env_wins = Cli::bare()
        .dir(dir.path())
        .env("LATCHKEY_AUTH_ADDR", &stack.auth_url)
        .run(&["project", "list"])
        .await;
    let flag_wins = Cli::bare()
        .dir(dir.path())
        .env("LATCHKEY_AUTH_ADDR", dead)
        .run(&["--auth-addr", &stack.auth_url, "project", "list"])
        .await;
    let dead_file = Cli::bare().dir(dir.path()).run(&["project", "list"]).await;

    from_file.ok();
    env_wins.ok();
    flag_wins.ok();
    assert_eq!(dead_file.code, 5, "{}", dead_file.err);
    assert!(dead_file.err.contains("127.0.0.1:9"), "{}", dead_file.err);
}

// ---- errors ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_class_has_its_exit_code_reason_and_hint() {
    let (mut stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    let (auth, secrets) = (stack.auth_url.clone(), stack.secrets_url.clone());
    let get = |token: String, path: &'static str| {
        Cli::bare()
            .env("LATCHKEY_AUTH_ADDR", &auth)
            .env("LATCHKEY_SECRETS_ADDR", &secrets)
            .env("LATCHKEY_TOKEN", &token)
            .run(&["secrets", "get", "A", "--env", "dev", "--path", path])
    };

    // Permission: the scopes and the path asked for.
    let out = get(token.clone(), "/frontend").await;
    assert_eq!(out.code, 4, "{}", out.err);
    assert!(
        out.err.contains("SCOPE_DENIED")
            && out.err.contains("dev:/backend/**")
            && out.err.contains("\"/frontend\"")
            && out.err.contains("hint:"),
        "{}",
        out.err
    );

    // Permission: the IP the server saw.
    let fenced = create_token(&stack, &project, &["--trusted-ip", "192.0.2.7"]).await;
    let out = get(fenced, "/backend").await;
    assert_eq!(out.code, 4, "{}", out.err);
    assert!(
        out.err.contains("IP_NOT_TRUSTED")
            && out.err.contains("127.0.0.1")
            && out.err.contains("trusted IPs"),
        "{}",
        out.err
    );

    // Permission: e2ee projects refuse server-side decryption.
    let sealed_project = stack.create_project(true).await;
    let (_, identity) = stack
        .identity_in_project(&sealed_project, "viewer", 0)
        .await;
    let out = Cli::new(&stack, &identity)
        .run(&["secrets", "list", "--projectId", &sealed_project])
        .await;
    assert_eq!(out.code, 4, "{}", out.err);
    assert!(
        out.err.contains("E2EE_ENABLED") && out.err.contains("use a service token"),
        "{}",
        out.err
    );

    // Authentication: a wrong secret, a damaged key part, then expiry.
    // One character changed, never to itself.
    let (access, key) = token.rsplit_once('.').unwrap();
    let flip = |text: &str| {
        let last = if text.ends_with('0') { '1' } else { '0' };
        format!("{}{last}", &text[..text.len() - 1])
    };
    let out = get(format!("{}.{key}", flip(access)), "/backend").await;
    assert_eq!(out.code, 3, "{}", out.err);
    assert!(out.err.contains("TOKEN_INVALID"), "{}", out.err);
    // The server never sees the key part: the CLI finds the damage itself.
    set(&stack, &token, &["A=1"], "dev", "/backend").await;
    let out = get(format!("{access}.{}", flip(key)), "/backend").await;
    assert_eq!(out.code, 3, "{}", out.err);
    assert!(
        out.err.contains("TOKEN_KEY_DAMAGED")
            && out.err.contains("key part")
            && out.err.contains("copy it whole again"),
        "{}",
        out.err
    );
    let short = create_token(&stack, &project, &["--expiry-seconds", "60"]).await;
    stack.clock.advance(chrono::Duration::seconds(61));
    let out = get(short, "/backend").await;
    assert_eq!(out.code, 3, "{}", out.err);
    assert!(
        out.err.contains("TOKEN_EXPIRED") && out.err.contains("create a new one"),
        "{}",
        out.err
    );

    // Input: refused before any call.
    let out = get(token.clone(), "relative").await;
    assert_eq!(out.code, 2, "{}", out.err);

    // Unavailable: the secrets service fails closed without the auth service.
    stack.stop_auth().await;
    let out = get(token, "/backend").await;
    assert_eq!(out.code, 5, "{}", out.err);
    assert!(
        out.err.contains("AUTH_UNAVAILABLE") && out.err.contains("hint:"),
        "{}",
        out.err
    );
}

// ---- projects and identities -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_get_add_environment_and_set_trusted_ips() {
    let (stack, project) = started().await;
    let admin = || Cli::new(&stack, &stack.admin_token);

    admin()
        .run(&[
            "project",
            "add-environment",
            "--projectId",
            &project,
            "--slug",
            "qa",
        ])
        .await
        .ok();
    admin()
        .run(&[
            "project",
            "set-trusted-ips",
            "--projectId",
            &project,
            "--trusted-ip",
            "10.0.0.0/8",
        ])
        .await
        .ok();
    let shown = admin()
        .run(&["project", "get", "--projectId", &project])
        .await
        .ok();
    let bad = admin()
        .run(&[
            "project",
            "set-trusted-ips",
            "--projectId",
            &project,
            "--trusted-ip",
            "nope",
        ])
        .await;

    assert!(shown.contains("dev,staging,prod,qa"), "{shown}");
    assert!(shown.contains("10.0.0.0/8"), "{shown}");
    assert_eq!(bad.code, 2, "{}", bad.err);
    assert!(bad.err.contains("--trusted-ip"), "{}", bad.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_commands_issue_a_limited_token_that_stops_after_its_uses() {
    let (stack, project) = started().await;
    let service = create_token(&stack, &project, &[]).await;
    set(&stack, &service, &["K=v"], "dev", "/backend").await;
    let admin = || Cli::new(&stack, &stack.admin_token);

    let id = admin()
        .run(&["identity", "create", "--name", "worker", "--plain"])
        .await
        .ok();
    let id = id.trim().to_owned();
    let bad = admin()
        .run(&[
            "identity",
            "token-auth",
            "attach",
            "--identity-id",
            &id,
            "--ttl",
            "0",
        ])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.err);
    assert!(bad.err.contains("access_token_ttl"), "{}", bad.err);
    let attached = admin()
        .run(&[
            "identity",
            "token-auth",
            "attach",
            "--identity-id",
            &id,
            "--num-uses-limit",
            "2",
        ])
        .await
        .ok();
    assert!(attached.contains("0.0.0.0/0,::/0"), "{attached}");
    admin()
        .run(&[
            "project",
            "add-identity",
            "--projectId",
            &project,
            "--identity-id",
            &id,
            "--role",
            "viewer",
            "--scope=dev:/backend/**",
        ])
        .await
        .ok();
    let token = admin()
        .run(&[
            "identity",
            "token",
            "create",
            "--identity-id",
            &id,
            "--token-only",
        ])
        .await
        .ok();
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let get = [
        "secrets",
        "get",
        "K",
        "--env",
        "dev",
        "--path",
        "/backend",
        "--projectId",
        &project,
        "--plain",
    ];
    for _ in 0..2 {
        let out = Cli::new(&stack, &token).run(&get).await.ok();
        assert_eq!(out, "v\n");
    }
    let out = Cli::new(&stack, &token).run(&get).await;
    assert_eq!(out.code, 3, "{}", out.err);
    assert!(out.err.contains("TOKEN_USES_EXHAUSTED"), "{}", out.err);
    let out = Cli::new(&stack, &token)
        .run(&["identity", "token", "renew"])
        .await;
    assert_eq!(out.code, 3, "{}", out.err);
    assert!(out.err.contains("TOKEN_USES_EXHAUSTED"), "{}", out.err);
    let listed = admin()
        .run(&["identity", "token", "list", "--identity-id", &id])
        .await
        .ok();
    assert!(
        listed.contains("2/2") && listed.contains("active"),
        "{listed}"
    );
    admin()
        .run(&["identity", "token", "revoke", "--access-token", &token])
        .await
        .ok();
    let listed = admin()
        .run(&["identity", "token", "list", "--identity-id", &id])
        .await
        .ok();
    assert!(listed.contains("revoked"), "{listed}");
}

// ---- audit -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_list_merges_both_services_and_hash_finds_a_tokens_calls() {
    let (stack, project) = started().await;
    let token = create_token(&stack, &project, &[]).await;
    set(&stack, &token, &["DB_URL=postgres://x"], "dev", "/backend").await;
    let admin = || Cli::new(&stack, &stack.admin_token);

    let listed = admin()
        .run(&["audit", "list", "--format", "json"])
        .await
        .ok();
    let events: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap(),
                e["event_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("secrets", "secret.write")), "{kinds:?}");
    assert!(
        kinds.contains(&("auth", "service_token.create")),
        "{kinds:?}"
    );
    let times: Vec<&str> = events.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert!(!listed.contains("postgres://x"), "no value in the trail");

    let hmac = admin().run(&["audit", "hash", &token]).await.ok();
    let by_token = admin()
        .run(&[
            "audit",
            "list",
            "--token-hmac",
            hmac.trim(),
            "--secret",
            "DB_URL",
        ])
        .await
        .ok();
    assert!(by_token.contains("secret.write"), "{by_token}");
    assert!(by_token.contains("DB_URL@1"), "{by_token}");

    let verified = admin().run(&["audit", "verify"]).await;
    assert_eq!(verified.code, 0, "{}", verified.out);
    assert!(
        verified.out.contains("Every chain is intact."),
        "{}",
        verified.out
    );

    let refused = Cli::new(&stack, &token).run(&["audit", "list"]).await;
    assert_eq!(refused.code, 4, "{}", refused.err);
    assert!(refused.err.contains("PERMISSION_DENIED"), "{}", refused.err);
}

// ---- machine logins ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_universal_auth_or_a_service_account_token_stores_the_access_token() {
    let (stack, project) = started().await;
    let service = create_token(&stack, &project, &[]).await;
    set(&stack, &service, &["K=v"], "dev", "/backend").await;
    let admin = || Cli::new(&stack, &stack.admin_token);
    let id = admin()
        .run(&["identity", "create", "--name", "worker", "--plain"])
        .await
        .ok()
        .trim()
        .to_owned();
    admin()
        .run(&[
            "project",
            "add-identity",
            "--projectId",
            &project,
            "--identity-id",
            &id,
            "--role",
            "viewer",
            "--scope=dev:/backend/**",
        ])
        .await
        .ok();
    admin()
        .run(&["identity", "universal-auth", "attach", "--identity-id", &id])
        .await
        .ok();
    let client_id = admin()
        .run(&[
            "identity",
            "universal-auth",
            "get",
            "--identity-id",
            &id,
            "--plain",
        ])
        .await
        .ok()
        .trim()
        .to_owned();
    let client_secret = admin()
        .run(&[
            "identity",
            "universal-auth",
            "client-secret",
            "create",
            "--identity-id",
            &id,
            "--plain",
        ])
        .await
        .ok()
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let fresh = || {
        Cli::bare()
            .dir(dir.path())
            .env("LATCHKEY_AUTH_ADDR", &stack.auth_url)
            .env("LATCHKEY_SECRETS_ADDR", &stack.secrets_url)
    };
    let read = [
        "secrets",
        "get",
        "K",
        "--projectId",
        &project,
        "--env",
        "dev",
        "--path",
        "/backend",
        "--plain",
    ];

    // The Infisical CLI's variables give the credentials.
    let login = fresh()
        .env("INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", &client_id)
        .env("INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET", &client_secret)
        .run(&["login", "--method", "universal-auth"])
        .await
        .ok();
    assert!(login.contains(&id), "{login}");
    assert!(!login.contains(&client_secret), "never prints the secret");
    assert_eq!(fresh().run(&read).await.ok().trim(), "v");
    let wrong = fresh()
        .run(&[
            "login",
            "--method",
            "universal-auth",
            "--client-id",
            &client_id,
            "--client-secret",
            &"0".repeat(64),
        ])
        .await;
    assert_eq!(wrong.code, 3, "{}", wrong.err);
    assert!(wrong.err.contains("TOKEN_INVALID"), "{}", wrong.err);
    let missing = fresh().run(&["login", "--method", "universal-auth"]).await;
    assert!(missing.err.contains("--client-id"), "{}", missing.err);

    // Kubernetes: the service-account token from its file, checked against the issuer's key.
    let keys = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../domain/src/identity/kubernetes_auth/testdata"
    );
    let public = format!("{keys}/rsa-public.pem");
    admin()
        .run(&[
            "identity",
            "kubernetes-auth",
            "attach",
            "--identity-id",
            &id,
            "--issuer",
            "https://kubernetes.default.svc",
            "--keys-file",
            &public,
            "--allowed-audiences",
            "latchkey",
        ])
        .await
        .ok();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "aud": ["latchkey"], "iss": "https://kubernetes.default.svc", "exp": now + 600, "iat": now,
        "sub": "system:serviceaccount:billing:worker",
        "kubernetes.io": {"namespace": "billing", "serviceaccount": {"name": "worker"}}
    });
    let private = std::fs::read_to_string(format!("{keys}/rsa-private.pem")).unwrap();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    let token_file = dir.path().join("sa-token");
    std::fs::write(&token_file, format!("{jwt}\n")).unwrap();
    let plain = fresh()
        .run(&[
            "login",
            "--method",
            "kubernetes",
            "--machine-identity-id",
            &id,
            "--service-account-token-path",
            token_file.to_str().unwrap(),
            "--plain",
        ])
        .await
        .ok();
    assert_eq!(plain.trim().split('.').count(), 3, "only the JWT: {plain}");
    assert_eq!(fresh().run(&read).await.ok().trim(), "v");
}
