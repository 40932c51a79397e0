//! Where committed events go besides the database, for log shippers and
//! SIEMs: a JSONL file (`LATCHKEY_AUDIT_FILE`), one event per line, and
//! OTLP log records where an OTLP endpoint is configured. They see only
//! what the database committed, in chain order; a tap that fails is
//! warned about and never fails a call (the database is the record).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_domain::audit::chain::Chained;
use latchkey_proto::convert::audit::{event_json, event_pb};

/// Receives each batch once it is committed.
pub trait Tap: Send + Sync + std::fmt::Debug + 'static {
    /// `links`, committed, in chain order.
    fn committed(&self, links: &[Chained]);
}

/// `link` as one line of JSON (no newline): the shape the API's JSON and
/// the CLI's `--format json` have, with the service that recorded it.
#[must_use]
pub fn json_line(service: &str, link: &Chained) -> String {
    event_json(service, &event_pb(0, link)).to_string()
}

/// Appends each committed event to a file as one JSON line.
#[derive(Debug)]
pub struct JsonlFile {
    service: String,
    path: PathBuf,
    file: Mutex<std::fs::File>,
    failures: AtomicU64,
}

impl JsonlFile {
    /// Opens `path` for appending (created mode 0600), for `service`'s events.
    pub fn open(path: &Path, service: &str) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Self {
            service: service.to_owned(),
            path: path.to_owned(),
            file: Mutex::new(options.open(path)?),
            failures: AtomicU64::new(0),
        })
    }
}

impl Tap for JsonlFile {
    fn committed(&self, links: &[Chained]) {
        let mut text = String::new();
        for link in links {
            text.push_str(&json_line(&self.service, link));
            text.push('\n');
        }
        let written = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("a writer panicked"))
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(e) = written {
            let before = self.failures.fetch_add(1, Ordering::Relaxed);
            // Each power of two: a full disk must not flood the log too.
            if (before + 1).is_power_of_two() {
                tracing::warn!(
                    path = %self.path.display(),
                    error = %e,
                    failures = before + 1,
                    "audit events could not be appended to LATCHKEY_AUDIT_FILE; the database still has them"
                );
            }
        }
    }
}

/// Emits each committed event as an OTLP log record (event name
/// `latchkey.audit`): its JSON line as the body, and the fields a collector
/// routes by as attributes.
#[derive(Debug)]
pub struct OtlpLogs {
    service: String,
    logger: opentelemetry_sdk::logs::SdkLogger,
}

impl OtlpLogs {
    /// Through `logger`, for `service`'s events.
    #[must_use]
    pub fn new(logger: opentelemetry_sdk::logs::SdkLogger, service: &str) -> Self {
        Self {
            service: service.to_owned(),
            logger,
        }
    }
}

impl Tap for OtlpLogs {
    fn committed(&self, links: &[Chained]) {
        use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
        for link in links {
            let e = &link.event;
            let mut record = self.logger.create_log_record();
            record.set_event_name("latchkey.audit");
            record.set_timestamp(std::time::SystemTime::from(e.time));
            record.set_severity_number(Severity::Info);
            record.set_severity_text("INFO");
            record.set_body(AnyValue::String(json_line(&self.service, link).into()));
            record.add_attributes([
                ("latchkey.audit.service", self.service.clone()),
                ("latchkey.audit.replica", link.replica.clone()),
                ("latchkey.audit.event_type", e.event_type.clone()),
                ("latchkey.audit.outcome", e.outcome.as_str().to_owned()),
                ("latchkey.audit.reason", e.reason.clone()),
                ("latchkey.audit.principal", e.principal.clone()),
                ("latchkey.audit.project_id", e.project_id.clone()),
                ("latchkey.audit.trace_id", e.trace_id.clone()),
            ]);
            record.add_attribute(
                "latchkey.audit.sequence",
                i64::try_from(link.sequence).unwrap_or(i64::MAX),
            );
            self.logger.emit(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use latchkey_domain::audit::chain::ChainWriter;
    use latchkey_domain::audit::{AuditEvent, AuditKey, SecretRef, Transport};

    use super::*;

    #[test]
    fn each_committed_event_is_one_json_line_with_its_chain_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let tap = JsonlFile::open(&path, "secrets").unwrap();
        let key = AuditKey::from_bytes([1; 32]);
        let mut chain =
            ChainWriter::new("secrets-h-1", latchkey_domain::audit::chain::Start::GENESIS);
        let mut event =
            AuditEvent::new("secret.read", chrono::DateTime::UNIX_EPOCH, Transport::Http);
        event.secrets = vec![SecretRef {
            name: "DB_URL".into(),
            version: Some(3),
        }];
        let links = vec![chain.append(&key, event.clone()), chain.append(&key, event)];

        tap.committed(&links);
        tap.committed(&links[..1]);

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["sequence"], 2);
        assert_eq!(lines[0]["service"], "secrets");
        assert_eq!(lines[0]["secrets"][0]["version"], 3);
        assert_eq!(lines[0]["time"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(lines[0]["mac"].as_str().unwrap().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
