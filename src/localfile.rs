//! Reading a file that a local user could swap: `r4.toml`, env files,
//! template files, key files, CA files, the fallback copy. The one way
//! r4-exec reads them:
//!
//! - opened `O_NONBLOCK`, so a FIFO put at the path cannot hold the start
//!   waiting for a writer, and `O_NOCTTY | O_CLOEXEC`;
//! - then checked with `fstat` on the open descriptor (no race with a swap
//!   after the check): only a **regular file** is read — a FIFO, a device
//!   (`/dev/zero` reads without end), a socket or a directory is refused
//!   before the first byte;
//! - read up to a **cap**, and refused when larger, so that no file makes
//!   r4-exec allocate without bound;
//! - with [`Follow::No`], a symlink at the path itself is refused too
//!   (`O_NOFOLLOW`): the fallback copy is a file r4-exec writes itself and
//!   never a link. Configuration and key files may be links (Kubernetes
//!   mounts secrets through `..data` symlinks), so they follow them — to a
//!   regular file only.
//!
//! Within `--timeout`: once these checks pass, the read is of a regular
//! file of bounded size, which a local file system serves at once; the
//! files that can make a read wait or never end are the ones refused.

use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::libc;
use zeroize::Zeroizing;

/// Whether a symlink at the path itself is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Follow it (to a regular file).
    Yes,
    /// Refuse it.
    No,
}

/// Caps, by kind of file.
pub mod cap {
    /// `r4.toml`, env files, template files.
    pub const CONFIG: u64 = 1 << 20;
    /// Private keys, API key files, CA and log-key PEM.
    pub const KEY: u64 = 1 << 20;
    /// The fallback copy: a sync answer of a large world.
    pub const FALLBACK: u64 = 64 << 20;
}

/// The bytes of the regular file at `path`, at most `max` of them
/// (module docs). Errors are `io::Error`s that name what is wrong, never
/// a byte of the file.
pub fn read(path: &Path, max: u64, follow: Follow) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let (file, len) = open_regular(path, follow)?;
    let too_large = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!("is larger than {max} bytes"),
        )
    };
    if len > max {
        return Err(too_large());
    }
    // The size may grow after fstat: read one byte past the cap to tell.
    let mut bytes = Zeroizing::new(Vec::with_capacity(len as usize));
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The first `max` bytes (or fewer) of the regular file at `path`, with
/// the checks of [`read`]; a longer file is not an error (the fallback
/// copy's stamp line, read without its body).
pub fn read_head(path: &Path, max: u64, follow: Follow) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let (file, len) = open_regular(path, follow)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(len.min(max) as usize));
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens `path` by the rules of the module; the file and its size.
fn open_regular(path: &Path, follow: Follow) -> std::io::Result<(std::fs::File, u64)> {
    // (std opens every file O_CLOEXEC itself.)
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if follow == Follow::No {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if follow == Follow::No => {
                Error::new(ErrorKind::InvalidInput, "is a symbolic link (refused)")
            }
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "is not a regular file (a FIFO, device, socket or directory: refused)",
        ));
    }
    Ok((file, meta.len()))
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64, follow: Follow) -> std::io::Result<Zeroizing<String>> {
    let mut bytes = read(path, max, follow)?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            let mut lost = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut lost);
            Err(Error::new(ErrorKind::InvalidData, "is not UTF-8 text"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: std::io::Result<Zeroizing<Vec<u8>>>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(&**read(&p, 5, Follow::No).unwrap(), b"12345");
        assert!(message(read(&p, 4, Follow::No)).contains("larger than 4 bytes"));
        assert_eq!(&**read_text(&p, 5, Follow::Yes).unwrap(), "12345");
        std::fs::write(&p, b"\xff").unwrap();
        assert!(read_text(&p, 5, Follow::Yes).is_err());
    }

    /// A FIFO would hold the start until a writer came; it is refused at
    /// once, whatever the caller asks.
    #[test]
    fn a_fifo_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        for follow in [Follow::Yes, Follow::No] {
            assert!(message(read(&p, 10, follow)).contains("not a regular file"));
        }
    }

    /// `/dev/zero` reads without end; a link to it is refused as a link
    /// without following, as a device with.
    #[test]
    fn devices_and_links_to_them_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(message(read(&link, 10, Follow::No)).contains("symbolic link"));
        assert!(message(read(&link, 10, Follow::Yes)).contains("not a regular file"));
        assert!(
            message(read(Path::new("/dev/zero"), 10, Follow::Yes)).contains("not a regular file")
        );
        assert!(message(read(dir.path(), 10, Follow::Yes)).contains("not a regular file"));
    }

    #[test]
    fn a_link_to_a_regular_file_is_followed_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(&**read(&link, 10, Follow::Yes).unwrap(), b"x");
        assert!(read(&link, 10, Follow::No).is_err());
    }

    #[test]
    fn a_head_is_read_without_the_rest_with_the_same_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"first line\nsecond").unwrap();
        assert_eq!(&**read_head(&p, 5, Follow::Yes).unwrap(), b"first");
        assert_eq!(
            &**read_head(&p, 100, Follow::Yes).unwrap(),
            b"first line\nsecond"
        );
        assert!(read_head(Path::new("/dev/zero"), 5, Follow::Yes).is_err());
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read_head(&link, 5, Follow::No).is_err());
        assert!(read_head(&link, 5, Follow::Yes).is_ok());
    }

    /// Only a refused link says so; a loop of links followed is the
    /// system's own error.
    #[test]
    fn a_loop_of_links_is_not_called_a_refused_link_when_links_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let followed = message(read(&a, 10, Follow::Yes));
        assert!(
            !followed.contains("refused") && !followed.is_empty(),
            "{followed}"
        );
        assert!(message(read(&a, 10, Follow::No)).contains("symbolic link (refused)"));
    }
}
