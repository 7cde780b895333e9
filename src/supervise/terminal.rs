//! `--mask` on a terminal: COMMAND gets a pseudo-terminal of its own, so it
//! still sees a terminal (`isatty`, colours, prompts, full-screen programs,
//! job control in its session), while everything it writes passes through
//! r4-exec's masker on its way to the real one.
//!
//! - COMMAND's stdout and stderr that were terminals (and stdin, if it was
//!   one) become the pseudo-terminal's slave side, which is also its
//!   controlling terminal: COMMAND leads a session of its own
//!   ([`super::child`]). Streams that were not terminals stay masked pipes.
//! - The slave starts with the real terminal's settings and window size;
//!   SIGWINCH to r4-exec copies the new size to it, and the kernel tells
//!   COMMAND's foreground group.
//! - r4-exec's own terminal is switched to raw mode while COMMAND runs, when
//!   r4-exec is in its foreground: every key (^C, ^Z, ^D included) reaches the
//!   slave's line discipline, which turns it into COMMAND's signals and
//!   end-of-file, as a terminal would. The mode is restored when COMMAND's
//!   output is drained (and on drop).
//!
//! Only the C library's portable calls are used (`posix_openpt`,
//! `grantpt`, `unlockpt`, `ptsname_r`, `tcgetattr`, `cfmakeraw`, `ioctl`).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::libc;

/// A pseudo-terminal pair.
pub(crate) struct Pty {
    /// r4-exec's side: COMMAND's output is read here, keys written here.
    pub master: OwnedFd,
    /// COMMAND's side.
    pub slave: OwnedFd,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A new pseudo-terminal with the settings and window size of `like` (the
/// real terminal), both ends close-on-exec.
pub(crate) fn open(like: RawFd) -> io::Result<Pty> {
    // SAFETY: each call takes descriptors and pointers to locals that
    // outlive it; every result is checked before use.
    unsafe {
        let m = check(libc::posix_openpt(
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        let master = OwnedFd::from_raw_fd(m);
        check(libc::grantpt(m))?;
        check(libc::unlockpt(m))?;
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(m, name.as_mut_ptr(), name.len()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let path = CStr::from_ptr(name.as_ptr());
        let s = check(libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        let slave = OwnedFd::from_raw_fd(s);
        let mut settings: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(like, &mut settings) == 0 {
            check(libc::tcsetattr(s, libc::TCSANOW, &settings))?;
        }
        copy_size(like, m);
        Ok(Pty { master, slave })
    }
}

/// Copies the window size of terminal `from` to `to` (a pty master): the
/// kernel then sends SIGWINCH to the slave's foreground group.
pub(crate) fn copy_size(from: RawFd, to: RawFd) {
    // SAFETY: TIOCGWINSZ writes a winsize we own; TIOCSWINSZ reads it.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &size);
        }
    }
}

/// Makes `tty` the calling process's controlling terminal (a new session
/// leader's; in the forked child, before exec).
pub(crate) fn make_controlling(tty: RawFd) -> io::Result<()> {
    // SAFETY: setsid(2) and ioctl(TIOCSCTTY) take no memory of ours.
    unsafe {
        check(libc::setsid())?;
        check(libc::ioctl(tty, libc::TIOCSCTTY, 0))?;
    }
    Ok(())
}

/// The real terminal in raw mode; restored by [`RawMode::restore`] or on
/// drop.
pub(crate) struct RawMode {
    fd: RawFd,
    saved: Option<libc::termios>,
}

impl RawMode {
    /// Raw mode on stdin, if it is a terminal and r4-exec is in its
    /// foreground (a background r4-exec must not take the keyboard).
    pub(crate) fn enter() -> RawMode {
        let fd = std::io::stdin().as_raw_fd();
        // SAFETY: terminal calls on descriptor 0 with termios values we own.
        let saved = unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            let ours = libc::isatty(fd) == 1 && libc::tcgetpgrp(fd) == libc::getpgrp();
            if ours && libc::tcgetattr(fd, &mut saved) == 0 {
                let mut raw = saved;
                libc::cfmakeraw(&mut raw);
                (libc::tcsetattr(fd, libc::TCSANOW, &raw) == 0).then_some(saved)
            } else {
                None
            }
        };
        RawMode { fd, saved }
    }

    /// Puts the terminal back as it was (once).
    pub(crate) fn restore(&mut self) {
        if let Some(saved) = self.saved.take() {
            // SAFETY: tcsetattr(3) with the termios saved by `enter`.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSADRAIN, &saved);
            }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pty_carries_bytes_and_its_size_follows() {
        let a = open(-1).unwrap();
        let b = open(-1).unwrap();
        let size = libc::winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: ioctls on descriptors we own with a winsize we own.
        unsafe {
            assert_eq!(
                libc::ioctl(a.master.as_raw_fd(), libc::TIOCSWINSZ, &size),
                0
            );
        }
        copy_size(a.slave.as_raw_fd(), b.master.as_raw_fd());
        // SAFETY: an all-zero winsize is a valid value of the plain C struct.
        let mut got: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                libc::ioctl(b.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut got),
                0
            );
        }
        assert_eq!((got.ws_row, got.ws_col), (33, 101));
        nix::unistd::write(&a.slave, b"x\n").unwrap();
        let mut buf = [0u8; 8];
        let n = nix::unistd::read(a.master.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"x\r\n", "the line discipline's ONLCR");
    }
}
