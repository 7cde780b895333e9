//! `--reload-signal`: `[files]` secrets in memfds that r4-exec can rewrite
//! while COMMAND runs.
//!
//! Sealing (see [`crate::inject::sealed_memfd`]) is for contents that never
//! change, so these memfds are **not** sealed against writes. They are
//! created without `MFD_ALLOW_SEALING`, which leaves `F_SEAL_SEAL` set from
//! the start: nobody, COMMAND included, can add a seal that would block the
//! next rewrite. COMMAND holds the same open file (inherited descriptor, same
//! offset) and can write to it too; that is its own business.
//!
//! A rewrite is, in this order: `ftruncate(fd, 0)`, write the new value from
//! offset 0, `lseek(fd, 0)` (the shared offset: a COMMAND that reads the
//! inherited descriptor itself reads from the start again). Only then is the
//! reload signal sent. A read that races the rewrite (before the signal) can
//! see an empty or partial value; COMMAND should re-read when signalled, by
//! opening the path again (`/proc/self/fd/N`, unchanged) or by `pread` at 0.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::unistd::{ftruncate, lseek, write, Whence};

use crate::contract::Secret;
use crate::inject::InjectError;

/// A memfd holding `contents` that r4-exec can [`rewrite`]; close-on-exec
/// until the exec step clears the flag for COMMAND.
pub(crate) fn writable_memfd(name: &str, contents: &Secret) -> Result<OwnedFd, InjectError> {
    let cname = CString::new(name).map_err(|_| InjectError::InvalidMemfdName(name.to_owned()))?;
    let fd =
        memfd_create(&cname, MemFdCreateFlag::MFD_CLOEXEC).map_err(|errno| InjectError::Memfd {
            step: "memfd_create",
            errno,
        })?;
    rewrite(&fd, contents).map_err(|errno| InjectError::Memfd {
        step: "write",
        errno,
    })?;
    Ok(fd)
}

/// Replaces the whole content of `fd` with `contents` (truncate, write,
/// rewind).
pub(crate) fn rewrite(fd: &OwnedFd, contents: &Secret) -> Result<(), Errno> {
    ftruncate(fd, 0)?;
    lseek(fd.as_raw_fd(), 0, Whence::SeekSet)?;
    let mut buf = contents.expose();
    while !buf.is_empty() {
        match write(fd.as_fd(), buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    lseek(fd.as_raw_fd(), 0, Whence::SeekSet).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::memfd_path;
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};

    #[test]
    fn rewritten_in_place_same_path_and_no_seal_can_be_added() {
        let fd = writable_memfd("reload-test", &Secret::new(b"first value, long".to_vec()))
            .expect("memfd");
        let path = memfd_path(fd.as_raw_fd());
        assert_eq!(std::fs::read(&path).unwrap(), b"first value, long");
        rewrite(&fd, &Secret::new(b"second".to_vec())).expect("rewrite");
        assert_eq!(std::fs::read(&path).unwrap(), b"second", "truncated");
        let seals =
            SealFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GET_SEALS).unwrap());
        assert_eq!(seals, SealFlag::F_SEAL_SEAL);
        assert!(fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_WRITE)
        )
        .is_err());
        // The shared offset is back at 0 for a reader of the descriptor.
        let mut file = std::fs::File::from(fd);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut file, &mut s).unwrap();
        assert_eq!(s, "second");
    }
}
