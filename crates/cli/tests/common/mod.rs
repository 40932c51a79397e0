//! Runs the real `latchkey` binary for the CLI tests.
//!
//! Every run gets a clean environment, a throwaway working folder and its
//! own user config folder, so no developer's `.latchkey.json` or login leaks
//! in.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    reason = "shared by test crates that each use part of it"
)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use latchkey_test_support::Stack;

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "stderr: {}", self.err);
        self.out
    }
}

/// A run under way, borrowing nothing.
pub type Pending = std::pin::Pin<Box<dyn Future<Output = Out> + Send>>;

/// One invocation of the binary.
pub struct Cli {
    auth: Option<String>,
    secrets: Option<String>,
    token: Option<String>,
    dir: Option<PathBuf>,
    envs: Vec<(String, String)>,
    stdin: Option<String>,
}

impl Cli {
    /// Pointed at `stack` through `LATCHKEY_AUTH_ADDR`/`LATCHKEY_SECRETS_ADDR`, calling with `token`.
    pub fn new(stack: &Stack, token: &str) -> Cli {
        Cli {
            auth: Some(stack.auth_url.clone()),
            secrets: Some(stack.secrets_url.clone()),
            token: Some(token.to_owned()),
            dir: None,
            envs: Vec::new(),
            stdin: None,
        }
    }

    /// No address and no token from the environment.
    pub fn bare() -> Cli {
        Cli {
            auth: None,
            secrets: None,
            token: None,
            dir: None,
            envs: Vec::new(),
            stdin: None,
        }
    }

    /// Runs in `dir`, with the user config under `dir/.config`.
    pub fn dir(mut self, dir: &Path) -> Cli {
        self.dir = Some(dir.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Cli {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn stdin(mut self, text: &str) -> Cli {
        self.stdin = Some(text.to_owned());
        self
    }

    /// Runs with `args`; owns everything, so callers may build args in place.
    pub fn run<S: AsRef<str>>(self, args: &[S]) -> Pending {
        let args: Vec<String> = args.iter().map(|s| s.as_ref().to_owned()).collect();
        let task = tokio::task::spawn_blocking(move || {
            let scratch = tempfile::tempdir().unwrap();
            let dir = self.dir.unwrap_or_else(|| scratch.path().to_owned());
            let mut cmd = Command::cargo_bin("latchkey").unwrap();
            cmd.env_clear()
                .current_dir(&dir)
                .env("LATCHKEY_CONFIG_DIR", dir.join(".config"))
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
            if let Some(auth) = self.auth {
                cmd.env("LATCHKEY_AUTH_ADDR", auth);
            }
            if let Some(secrets) = self.secrets {
                cmd.env("LATCHKEY_SECRETS_ADDR", secrets);
            }
            if let Some(token) = self.token {
                cmd.env("LATCHKEY_TOKEN", token);
            }
            for (k, v) in self.envs {
                cmd.env(k, v);
            }
            cmd.write_stdin(self.stdin.unwrap_or_default());
            let out = cmd.args(args).output().unwrap();
            Out {
                code: out.status.code().unwrap_or(-1),
                out: String::from_utf8(out.stdout).unwrap(),
                err: String::from_utf8(out.stderr).unwrap(),
            }
        });
        Box::pin(async move { task.await.unwrap() })
    }
}
