//! Sealed in-memory files: a file secret lives in a `memfd_create(2)`
//! descriptor, owner-read-only (0400) and sealed so nothing can change it
//! once written; the command reaches it through `/proc/<pid>/fd/N` of the
//! process that keeps the descriptor open (see [`fd_path`]).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::{lseek, write, Whence};

use super::DeliverError;
use crate::contract::Secret;

/// The mode of every secret memfd: read-only for its owner. `memfd_create(2)`
/// makes them 0777, and programs that check a key file's mode (OpenSSH's
/// `ssh-keygen -f` and identity files, libpq's `sslkey`) refuse anything
/// group- or world-accessible. Nothing ever needs to write one: a changed
/// value gets a new memfd (see [`crate::deliver::holder`]).
pub const MEMFD_MODE: u32 = 0o400;

/// Creates an anonymous in-memory file holding `contents`, mode
/// [`MEMFD_MODE`], sealed against any change
/// (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`).
///
/// The mode is set before the first byte is written, so there is no moment
/// at which the content is in a file others could open. The file offset is
/// rewound to 0, so a child that reads the inherited descriptor directly
/// sees the whole value. The descriptor is close-on-exec; the exec step
/// clears that flag only on the descriptors meant for the child
/// ([`crate::deliver::exec::ExecPlan::keep_fds`]). `name` is visible in
/// `/proc/PID/fd` as `memfd:NAME`, so it must not be secret.
pub fn sealed_memfd(name: &str, contents: &Secret) -> Result<OwnedFd, DeliverError> {
    let fd = create(name, MemFdCreateFlag::MFD_ALLOW_SEALING)?;
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(MEMFD_MODE)).map_err(memfd_err("fchmod"))?;
    write_all(&fd, contents.expose()).map_err(memfd_err("write"))?;
    lseek(fd.as_raw_fd(), 0, Whence::SeekSet).map_err(memfd_err("lseek"))?;
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SEAL;
    fcntl(fd.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals)).map_err(memfd_err("seal"))?;
    Ok(fd)
}

/// Makes `uid:gid` the owner of a sealed memfd (still mode `0400`): for a
/// COMMAND that runs as another user (`--user`, or a `gosu` step of its
/// own, a file's `owner`). Needs the privilege to chown (root).
pub fn give(fd: &OwnedFd, uid: u32, gid: u32) -> Result<(), DeliverError> {
    // SAFETY: fchown(2) on a descriptor we own, with integer arguments.
    let rc = unsafe { nix::libc::fchown(fd.as_raw_fd(), uid, gid) };
    Errno::result(rc)
        .map(drop)
        .map_err(memfd_err("fchown to the file's owner"))
}

/// `memfd_create(2)`, close-on-exec, with `flags`.
fn create(name: &str, flags: MemFdCreateFlag) -> Result<OwnedFd, DeliverError> {
    let cname = CString::new(name).map_err(|_| DeliverError::InvalidMemfdName(name.to_owned()))?;
    memfd_create(&cname, flags | MemFdCreateFlag::MFD_CLOEXEC).map_err(memfd_err("memfd_create"))
}

fn memfd_err(step: &'static str) -> impl Fn(Errno) -> DeliverError {
    move |errno| DeliverError::Memfd { step, errno }
}

/// Writes all of `buf`, retrying short writes and `EINTR`.
fn write_all(fd: impl AsFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match write(fd.as_fd(), buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The path through which the calling process reaches its own descriptor
/// `fd`: `/proc/self/fd/N`. Not what COMMAND is given: `self` means whoever
/// opens it, so a descendant of COMMAND would look in its own table (see
/// [`fd_path`]).
pub fn memfd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

/// The path of descriptor `fd` of the process `pid` (as `/proc` numbers it):
/// `/proc/<pid>/fd/<fd>`, what a `[files]` variable holds.
///
/// Unlike `/proc/self/fd/N`, it names the same file for every process that
/// opens it: COMMAND, and any descendant that closed the descriptors it
/// inherited (Python's `subprocess` does by default, so do daemons), as long
/// as the holder `pid` keeps `fd` open and the opener may look into the
/// holder's descriptors (same user and the holder dumpable, or root). Each
/// open gets a fresh offset at 0; nothing exists on any filesystem. It needs
/// `/proc` mounted in the opener's mount namespace, which container
/// runtimes provide.
pub fn fd_path(pid: u32, fd: RawFd) -> String {
    format!("/proc/{pid}/fd/{fd}")
}

/// This process's pid as the mounted `/proc` numbers it (`/proc/self` is a
/// link to it). `getpid(2)` would give the pid in our own PID namespace,
/// which is not the one of `/proc` when a namespace was entered without
/// remounting it (`unshare -p -f` without `--mount-proc`).
pub fn proc_self_pid() -> Result<u32, DeliverError> {
    let link = std::fs::read_link("/proc/self").map_err(|e| DeliverError::NoProc(e.to_string()))?;
    link.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| DeliverError::NoProc(format!("/proc/self -> {}", link.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(v: &str) -> Secret {
        Secret::new(v.as_bytes().to_vec())
    }

    #[test]
    fn memfd_holds_the_value_and_is_readable_by_path() {
        let fd = sealed_memfd("test-secret", &secret("s3cr3t\nline2")).expect("memfd");
        let by_path = std::fs::read(memfd_path(fd.as_raw_fd())).expect("read by path");
        assert_eq!(by_path, b"s3cr3t\nline2");
        // The descriptor itself is rewound: a reader of the fd sees it all.
        let mut file = std::fs::File::from(fd);
        let mut direct = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut direct).expect("read fd");
        assert_eq!(direct, b"s3cr3t\nline2");
    }

    #[test]
    fn memfd_is_sealed_and_close_on_exec() {
        let fd = sealed_memfd("sealed", &secret("value")).expect("memfd");
        let raw = fd.as_raw_fd();
        let seals =
            SealFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GET_SEALS).expect("F_GET_SEALS"));
        for s in [
            SealFlag::F_SEAL_WRITE,
            SealFlag::F_SEAL_SHRINK,
            SealFlag::F_SEAL_GROW,
            SealFlag::F_SEAL_SEAL,
        ] {
            assert!(seals.contains(s), "{s:?} missing from {seals:?}");
        }
        assert_eq!(write(&fd, b"x"), Err(Errno::EPERM));
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .open(memfd_path(raw))
            .expect("open for writing is allowed, writing is not");
        assert_eq!(write(&reopened, b"x"), Err(Errno::EPERM));
        assert_eq!(
            nix::unistd::ftruncate(&fd, 0),
            Err(Errno::EPERM),
            "cannot shrink"
        );
        let flags = fcntl(raw, FcntlArg::F_GETFD).expect("F_GETFD");
        assert_ne!(flags & nix::libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn memfd_holds_empty_and_binary_values() {
        let fd = sealed_memfd("empty", &Secret::new(Vec::new())).expect("memfd");
        assert_eq!(
            std::fs::read(memfd_path(fd.as_raw_fd())).expect("read"),
            b""
        );
        let bin: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let fd = sealed_memfd("big", &Secret::new(bin.clone())).expect("memfd");
        assert_eq!(
            std::fs::read(memfd_path(fd.as_raw_fd())).expect("read"),
            bin
        );
    }

    #[test]
    fn memfd_name_with_nul_is_rejected() {
        assert!(matches!(
            sealed_memfd("a\0b", &secret("v")),
            Err(DeliverError::InvalidMemfdName(_))
        ));
    }

    #[test]
    fn memfd_path_names_the_fd() {
        assert_eq!(memfd_path(7), "/proc/self/fd/7");
    }

    #[test]
    fn memfd_is_owner_read_only_before_anything_is_written() {
        use std::os::unix::fs::PermissionsExt;
        let fd = sealed_memfd("mode", &secret("key material")).expect("memfd");
        let meta = std::fs::metadata(memfd_path(fd.as_raw_fd())).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o7777, MEMFD_MODE);
        // Sealed: not even its owner can make it writable and change it.
        std::fs::set_permissions(
            memfd_path(fd.as_raw_fd()),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod is not sealed");
        assert_eq!(write(&fd, b"x"), Err(Errno::EPERM));
    }

    #[test]
    fn fd_path_names_the_holder_and_proc_self_is_this_process() {
        assert_eq!(fd_path(42, 7), "/proc/42/fd/7");
        let pid = proc_self_pid().expect("/proc mounted");
        assert_eq!(pid, std::process::id());
        let fd = sealed_memfd("by-pid", &secret("v")).expect("memfd");
        let by_pid = std::fs::read(fd_path(pid, fd.as_raw_fd())).expect("read by pid");
        assert_eq!(by_pid, b"v");
    }
}
