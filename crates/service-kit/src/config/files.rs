//! Files that hold secrets: created once, mode 0600, in a 0700 directory.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Reads `path`, or creates it atomically with `generate()` and mode 0600.
/// When two processes race, both read what the first wrote.
pub fn load_or_create(path: &Path, generate: impl FnOnce() -> String) -> io::Result<String> {
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir)?;
    }
    match write_private(path, &generate()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // The winner of a race may still be writing: wait for a complete line.
    for _ in 0..50 {
        let text = fs::read_to_string(path)?;
        if text.ends_with('\n') {
            return Ok(text.trim().to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "file is incomplete",
    ))
}

/// Creates `path` with mode 0600 and writes `content` and a newline; fails if it exists.
pub fn write_private(path: &Path, content: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

pub(super) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
