//! Starting, signalling and reaping COMMAND in supervisor mode.
//!
//! COMMAND is started with `fork(2)` followed by [`crate::deliver::exec::exec`] in the
//! child — the very function exec mode ends with — so it starts exactly as in
//! exec mode: every descriptor above 2 but its secret memfds closed on exec,
//! every signal disposition reset to the default and the signal mask emptied
//! (r4-exec itself runs with every signal blocked), `argv`, environment and
//! 126/127 as in exec mode. `std::process::Command` with `pre_exec` was the
//! alternative; it would have meant a second, diverging copy of those steps.
//!
//! Between `fork` and `execve` the child only makes system calls (`setpgid`,
//! `tcsetpgrp`, `dup2`, `setrlimit`, `fcntl`, `rt_sigaction`,
//! `sigprocmask`); the [`crate::deliver::exec::ExecPlan`] is built before the fork.
//! The only allocations after it are `exec`'s C string of the program path
//! and the error message if `execve` fails; the C library's fork handlers
//! leave `malloc` usable in the child (glibc; musl since 1.2.1).

use std::os::fd::{AsFd, RawFd};

use nix::errno::Errno;
use nix::libc;
use nix::unistd::{dup2, fork, setpgid, ForkResult, Pid};

use crate::deliver::exec::{self, ExecError, ExecPlan, EXIT_SETUP_FAILED};
use crate::error::AppError;

/// How to start the child, beyond its [`ExecPlan`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpawnOptions {
    /// Write ends of the masking pipes, to become its stdout and stderr.
    pub stdio: Option<(RawFd, RawFd)>,
    /// Make its process group the terminal's foreground group (stdin is our
    /// controlling terminal and we were in the foreground).
    pub take_terminal: bool,
    /// `--mask` on a terminal: the pseudo-terminal slave that becomes its
    /// controlling terminal (it leads a session of its own), and whether it
    /// is its stdin too ([`super::terminal`]).
    pub session_tty: Option<(RawFd, bool)>,
}

/// Forks and execs `plan`. The child leads a new process group (its pid).
/// Returns its pid. The parent closes its copy of the plan's kept
/// descriptors (file secrets stay with the holder, [`crate::deliver::holder`]).
pub(crate) fn spawn(plan: ExecPlan, opts: &SpawnOptions) -> Result<Pid, AppError> {
    // SAFETY: the child branch runs only the async-signal-safe steps listed
    // in the module documentation and ends in execve(2) or _exit(2); it
    // never returns into the caller, touches no lock held by another thread
    // of ours except malloc's (made fork-safe by the C library) and never
    // unwinds.
    match unsafe { fork() } {
        Err(errno) => Err(AppError::Exec(ExecError::Setup {
            step: "fork",
            errno,
        })),
        Ok(ForkResult::Child) => in_child(plan, opts),
        Ok(ForkResult::Parent { child }) => {
            // Also done in the child: whichever runs first wins, so the
            // group exists before the parent signals it. EACCES once the
            // child has exec'd is expected. Not for a session leader to be:
            // setsid(2) fails in a process that already leads a group.
            if opts.session_tty.is_none() {
                let _ = setpgid(child, child);
            }
            drop(plan);
            Ok(child)
        }
    }
}

/// The child's side of [`spawn`]: never returns.
fn in_child(plan: ExecPlan, opts: &SpawnOptions) -> ! {
    if let Some((tty, stdin)) = opts.session_tty {
        let ok = super::terminal::make_controlling(tty).is_ok() && (!stdin || dup2(tty, 0).is_ok());
        if !ok {
            exit_now(i32::from(EXIT_SETUP_FAILED));
        }
    } else {
        let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    }
    if opts.take_terminal && opts.session_tty.is_none() {
        // SAFETY: plain system calls on descriptor 0. SIGTTOU is blocked
        // (inherited mask), so a background group may take the terminal.
        unsafe {
            libc::tcsetpgrp(0, libc::getpid());
        }
    }
    if let Some((out, err)) = opts.stdio {
        if dup2(out, 1).and_then(|_| dup2(err, 2)).is_err() {
            exit_now(i32::from(EXIT_SETUP_FAILED));
        }
    }
    let err = exec::exec(plan);
    let msg = format!("{}{err}\n", crate::ui::PREFIX);
    let _ = nix::unistd::write(std::io::stderr().as_fd(), msg.as_bytes());
    exit_now(i32::from(err.exit_code()))
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) ends the forked child at once, without running the
    // parent's atexit handlers or flushing its buffers (which belong to the
    // parent).
    unsafe { libc::_exit(code) }
}

/// Sends signal `signo` to `target` (a pid, or minus a process group id).
/// An already-exited target is not an error worth reporting: ESRCH is
/// returned and callers ignore it.
/// `target` 0 (no COMMAND yet) is refused: `kill(0, …)` would signal
/// r4-exec's own process group.
pub(crate) fn send(target: i32, signo: i32) -> Result<(), Errno> {
    if target == 0 {
        return Err(Errno::ESRCH);
    }
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    Errno::result(unsafe { libc::kill(target, signo) }).map(drop)
}

/// Whether process group `pgid` still has a member (zombies included).
pub(crate) fn group_alive(pgid: Pid) -> bool {
    send(-pgid.as_raw(), 0).is_ok()
}

/// The exit status to report for a `waitpid(2)` status: the code, or 128+N
/// for death by signal N (the shell's convention).
pub(crate) fn exit_code(status: i32) -> u8 {
    if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)) as u8
    } else {
        libc::WEXITSTATUS(status) as u8
    }
}

/// How COMMAND ended: the code to exit with, and the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// Its exit code, or 128+N.
    pub code: u8,
    /// N, when signal N killed it.
    pub signal: Option<i32>,
}

impl Ended {
    pub(crate) fn from_status(status: i32) -> Ended {
        Ended {
            code: exit_code(status),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        }
    }
}

/// Collects exited children without blocking: only `main` unless `all`
/// (r4-exec is PID 1 or a subreaper: every zombie is ours to reap). Returns
/// how `main` ended once it has.
pub(crate) fn reap(main: Pid, all: bool) -> Option<Ended> {
    let target = if all { -1 } else { main.as_raw() };
    let mut main_exit = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes the status into a local integer.
        let pid = unsafe { libc::waitpid(target, &mut status, libc::WNOHANG) };
        match pid {
            0 => break,
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => break,
            pid if pid == main.as_raw() => {
                main_exit = Some(Ended::from_status(status));
                if !all {
                    break;
                }
            }
            _ => {}
        }
    }
    main_exit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(libc::W_EXITCODE(0, 0)), 0);
        assert_eq!(exit_code(libc::W_EXITCODE(42, 0)), 42);
        assert_eq!(exit_code(libc::W_EXITCODE(0, libc::SIGTERM)), 143);
        assert_eq!(exit_code(libc::W_EXITCODE(0, libc::SIGKILL) | 0x80), 137);
        assert_eq!(exit_code(libc::W_EXITCODE(0, 40)), 168, "real-time signal");
    }

    #[test]
    fn signalling_a_process_that_is_gone_is_only_esrch() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert_eq!(send(pid, libc::SIGTERM), Err(Errno::ESRCH));
        assert!(!group_alive(Pid::from_raw(pid)));
    }
}
