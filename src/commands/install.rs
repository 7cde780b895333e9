//! `install DIR`: the running binary copies itself to `DIR/r4-exec`, mode
//! 0555, and does nothing else.
//!
//! Why a subcommand: `kubectl-r4 wrap` adds an init container that puts
//! r4-exec into a Memory `emptyDir` the app's container runs it from. The
//! r4-exec image is `FROM scratch` (no shell, no `cp`), and a copy by the
//! binary itself needs no shell in any image, runs as any user under a
//! read-only root and the restricted Pod Security Standard, and reads no
//! configuration, key or network: nothing about it can depend on a secret.
//!
//! The copy is written to a temporary name in `DIR` and renamed over
//! `DIR/r4-exec`, so a restarted init container (or two at once) never
//! leaves a half-written binary at the path a container executes.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::AppError;
use crate::startup::Startup;

/// The name of the copy inside `DIR`.
pub const NAME: &str = "r4-exec";
/// Its mode: read and execute for everyone (the app's container may run as
/// any user), writable by no one.
pub const MODE: u32 = 0o555;

/// Copies `/proc/self/exe` to `dir/r4-exec`; returns 0.
pub fn run(startup: &Startup, dir: &Path) -> Result<u8, AppError> {
    let dest = dir.join(NAME);
    let bytes = install(Path::new("/proc/self/exe"), dir).map_err(|source| AppError::Write {
        path: dest.clone(),
        source,
    })?;
    startup.ui.tell(&format!(
        "installed {} ({bytes} bytes, mode {MODE:o})",
        dest.display()
    ));
    Ok(0)
}

/// Copies `source` to `dir/r4-exec` through a temporary file in `dir`
/// (created exclusively, never through a symlink), mode [`MODE`]; returns
/// the number of bytes copied.
pub fn install(source: &Path, dir: &Path) -> io::Result<u64> {
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    let temp = temp_name(dir);
    let copied = copy_to(source, &temp).and_then(|bytes| {
        std::fs::rename(&temp, dir.join(NAME))?;
        Ok(bytes)
    });
    if copied.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    copied
}

fn temp_name(dir: &Path) -> PathBuf {
    dir.join(format!(".{NAME}.{}.tmp", std::process::id()))
}

fn copy_to(source: &Path, temp: &Path) -> io::Result<u64> {
    let mut from = File::open(source)?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o600)
        .open(temp)?;
    let bytes = io::copy(&mut from, &mut to)?;
    // Exactly MODE whatever the umask, and only once the content is whole.
    to.set_permissions(Permissions::from_mode(MODE))?;
    to.sync_all()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_whole_read_and_execute_only_and_replaces_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::write(&source, b"new binary").unwrap();
        let into = dir.path().join("r4");
        std::fs::create_dir(&into).unwrap();
        std::fs::write(into.join(NAME), b"old").unwrap();
        assert_eq!(install(&source, &into).unwrap(), 10);
        let dest = into.join(NAME);
        assert_eq!(std::fs::read(&dest).unwrap(), b"new binary");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, MODE);
        let names: Vec<_> = std::fs::read_dir(&into).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_missing_or_non_directory_target_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::write(&source, b"x").unwrap();
        assert!(install(&source, &dir.path().join("absent")).is_err());
        assert_eq!(
            install(&source, &source).unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        let missing = install(&dir.path().join("no-source"), dir.path());
        assert!(missing.is_err());
        assert!(!dir.path().join(NAME).exists());
        assert!(!temp_name(dir.path()).exists());
    }
}
