//! Service binaries as real child processes, and the admin calls tests make
//! against any running auth service.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;

use crate::{Stack, with_token};

/// A service binary running as a child process; killed on drop.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `binary` with only `vars` in its environment (and
    /// `RUST_LOG=info` unless `vars` sets it) and waits for the line it logs
    /// once it listens.
    #[must_use]
    pub fn start<K: AsRef<str>, V: AsRef<str>>(binary: &Path, vars: &[(K, V)]) -> ServiceProcess {
        Self::spawn(Command::new(binary), vars)
    }

    /// Like [`ServiceProcess::start`], allowed at most `descriptors` open
    /// files (through util-linux's `prlimit`), as a small container would be.
    #[must_use]
    pub fn start_with_descriptor_limit<K: AsRef<str>, V: AsRef<str>>(
        binary: &Path,
        vars: &[(K, V)],
        descriptors: u64,
    ) -> ServiceProcess {
        let prlimit = std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("prlimit"))
                    .find(|candidate| candidate.exists())
            })
            .expect("prlimit (util-linux) on the PATH");
        let mut command = Command::new(prlimit);
        command
            .arg(format!("--nofile={descriptors}:{descriptors}"))
            .arg("--")
            .arg(binary);
        Self::spawn(command, vars)
    }

    fn spawn<K: AsRef<str>, V: AsRef<str>>(
        mut command: Command,
        vars: &[(K, V)],
    ) -> ServiceProcess {
        let mut child = command
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the service binary");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        loop {
            let line = lines
                .next()
                .expect("the service exited before listening")
                .expect("read the service's log");
            if line.contains(" listening") {
                break;
            }
        }
        // Keep draining the log so the process never blocks on a full pipe;
        // TEST_LOG (as for in-process servers) prints the child's log too.
        let show = std::env::var_os("TEST_LOG").is_some();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if show {
                    eprintln!("[child] {line}");
                }
            }
        });
        ServiceProcess { child: Some(child) }
    }

    /// The process id, to read `/proc/<pid>/...`.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The process's peak resident memory (`VmHWM`), in MiB.
    #[must_use]
    pub fn peak_rss_mib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status")
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("a VmHWM line")
            / 1024
    }

    /// How many of the process's threads have a name starting with `prefix`.
    #[must_use]
    pub fn threads_named(&self, prefix: &str) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .expect("read /proc/<pid>/task")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    }

    /// Sends a signal by name (`TERM`, `KILL`) with `kill`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Waits for the process to exit, off the async runtime.
    pub async fn exit(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait for the service")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The auth service `binary` on SQLite in `data_dir`, on a free loopback
/// port, with `extra` variables; returns it and its URL.
#[must_use]
pub fn start_auth_process(
    binary: &Path,
    data_dir: &Path,
    extra: &[(&str, &str)],
) -> (ServiceProcess, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut vars = vec![
        (
            "LATCHKEY_DATA_DIR",
            data_dir.to_str().expect("a UTF-8 path"),
        ),
        ("LATCHKEY_AUTH_ADDR", addr.as_str()),
    ];
    vars.extend_from_slice(extra);
    (
        ServiceProcess::start(binary, &vars),
        format!("http://{addr}"),
    )
}

/// A binary of this workspace (`latchkey-auth`, `latchkey-secrets`), which
/// must be built: `make test` builds every binary before the tests.
#[must_use]
pub fn built_binary(name: &str) -> std::path::PathBuf {
    let path = assert_cmd::cargo::cargo_bin(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (make test does)",
        path.display()
    );
    path
}

/// A free loopback port (bound and released, so another may take it), for
/// child processes, which bind their own; in-process servers are handed
/// listeners bound at port 0 instead, which no one can take in between.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Creates a project (dev, staging, prod) as `admin`; returns its id.
pub async fn create_project_with(
    auth: &mut AuthServiceClient<tonic::transport::Channel>,
    admin: &str,
    e2ee: bool,
) -> String {
    auth.create_project(with_token(
        auth_pb::CreateProjectRequest {
            name: "test project".into(),
            e2ee,
        },
        admin.trim(),
    ))
    .await
    .expect("create project")
    .into_inner()
    .project
    .expect("project")
    .id
}

/// Creates a service token as `admin` (see [`Stack::token_request`]);
/// returns the full token.
pub async fn create_service_token_with(
    auth: &mut AuthServiceClient<tonic::transport::Channel>,
    admin: &str,
    project: &str,
    scopes: &[&str],
    permissions: &[&str],
) -> String {
    auth.create_service_token(with_token(
        Stack::token_request(project, scopes, permissions),
        admin.trim(),
    ))
    .await
    .expect("create service token")
    .into_inner()
    .service_token
}

/// `body` with the internal key, as the secrets service sends `Authorize`.
#[must_use]
pub fn with_internal_key<T>(body: T, internal_key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(body);
    request.metadata_mut().insert(
        latchkey_proto::INTERNAL_KEY_HEADER,
        internal_key.parse().expect("an ASCII internal key"),
    );
    request
}
