//! Receiving signals in supervisor mode: every signal is blocked in every
//! thread of r4-exec (blocked before the first thread exists, so all
//! inherit it) and read from a `signalfd(2)` in the event loop. Nothing runs
//! in a signal handler, and no signal can be lost or kill r4-exec by its
//! default action; only SIGKILL and SIGSTOP, which cannot be blocked, still
//! act on r4-exec itself.

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Blocks every signal in the calling thread; call it while r4-exec has one
/// thread. Returns the set to read from.
pub(crate) fn block_all() -> Result<SigSet, Errno> {
    let all = SigSet::all();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&all), None)?;
    Ok(all)
}

/// One signal as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Its number.
    pub signo: i32,
    /// The sender's pid (0 for the kernel, e.g. a terminal's ^C).
    pub pid: i32,
}

/// The blocked signals, readable from the event loop.
pub(crate) struct Signals {
    fd: AsyncFd<SignalFd>,
}

impl Signals {
    /// A non-blocking signalfd for `set`; must run inside the runtime.
    pub(crate) fn new(set: &SigSet) -> std::io::Result<Signals> {
        let fd = SignalFd::with_flags(set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        // SAFETY: the SignalFd owns its descriptor and is moved into the
        // AsyncFd, so the descriptor stays open, and stays the same one, for
        // the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Signals { fd })
    }

    /// Waits for at least one signal; returns all that are pending.
    pub(crate) async fn recv(&self) -> std::io::Result<Vec<Received>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut got = Vec::new();
            loop {
                match guard.get_inner().read_signal() {
                    Ok(Some(info)) => got.push(Received {
                        signo: info.ssi_signo as i32,
                        pid: info.ssi_pid as i32,
                    }),
                    Ok(None) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !got.is_empty() {
                return Ok(got);
            }
        }
    }

    /// Waits for a signal whose default action would have ended r4-exec
    /// (used before COMMAND exists); ignores the others, and those r4-exec
    /// sent itself.
    pub(crate) async fn until_fatal(&self, own_pid: i32) -> std::io::Result<i32> {
        loop {
            for s in self.recv().await? {
                if s.pid != own_pid && terminates_by_default(s.signo) {
                    return Ok(s.signo);
                }
            }
        }
    }
}

/// Whether a signal's default action ends the process (everything but the
/// ones ignored or stopping by default).
pub(crate) fn terminates_by_default(signo: i32) -> bool {
    !matches!(
        signo,
        libc::SIGCHLD
            | libc::SIGWINCH
            | libc::SIGURG
            | libc::SIGCONT
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// The signals that ask for a shutdown when they arrive during a restart:
/// the old COMMAND is then not replaced.
pub(crate) fn asks_to_stop(signo: i32) -> bool {
    matches!(signo, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// Dies of signal `signo`, as COMMAND did: default disposition, unblocked,
/// raised on this thread. Returns only if the signal does not end a process
/// by default (the caller then exits with 128+N). Not for PID 1, which the
/// kernel protects from signals it does not handle.
pub(crate) fn reraise(signo: i32) {
    if !terminates_by_default(signo) {
        return;
    }
    // SAFETY: plain system calls on integers and a local signal set; nothing
    // of ours is in use any more (the caller has wound everything down).
    unsafe {
        libc::signal(signo, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signo);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signo);
    }
}

/// A signal's name (`SIGTERM`), or `signal N` for real-time ones.
pub(crate) fn name(signo: i32) -> String {
    Signal::try_from(signo)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signo}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_actions() {
        assert!(terminates_by_default(libc::SIGTERM));
        assert!(terminates_by_default(libc::SIGUSR1));
        assert!(terminates_by_default(libc::SIGRTMIN()));
        assert!(!terminates_by_default(libc::SIGCHLD));
        assert!(!terminates_by_default(libc::SIGWINCH));
        assert_eq!(name(libc::SIGHUP), "SIGHUP");
        assert_eq!(name(40), "signal 40");
    }
}
