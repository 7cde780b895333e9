//! Replacing r4-exec with the command: an inspectable [`ExecPlan`] and the
//! one function, [`exec`], that performs it.
//!
//! r4-exec runs as a container entrypoint (`ENTRYPOINT ["/r4-exec","--"]`),
//! so the command must keep its PID: we `execve(2)` rather than spawn. That
//! skips what `std::process::Command` does for a child, so it is done here,
//! in one audited place, the way tini does it:
//!
//! - every descriptor above 2 except the ones meant for the child (the secret
//!   memfds) is marked close-on-exec, so sockets and config files never leak;
//! - every signal disposition is reset to the default (Rust's runtime ignores
//!   `SIGPIPE`; an ignored signal would stay ignored across exec) and the
//!   signal mask is emptied, so the command starts as if run directly;
//! - exit codes follow the shell: 127 not found, 126 not executable.
//!
//! [`resolve_program`] searches `PATH` like a shell; the caller runs it
//! before fetching any secret so that a typo fails fast and for free.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::libc;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{access, execve, AccessFlags};

use super::env::Envp;
use super::user::RunAs;
use crate::harden::Hardening;

/// `PATH` used when the variable is unset, as in most shells.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Exit code when the command is not found (shell and tini convention).
pub const EXIT_NOT_FOUND: u8 = crate::exit::COMMAND_NOT_FOUND;
/// Exit code when the command was found but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: u8 = crate::exit::NOT_EXECUTABLE;
/// Exit code when r4-exec itself failed to prepare the exec, as `env(1)`
/// and `timeout(1)` use it.
pub const EXIT_SETUP_FAILED: u8 = crate::exit::SETUP_FAILED;

/// Everything needed to become the command; built first, so tests can
/// inspect it, then handed to [`exec`].
///
/// `Debug` prints environment names, never values (see [`Envp`]).
#[derive(Debug)]
pub struct ExecPlan {
    /// The resolved program ([`resolve_program`]).
    pub program: PathBuf,
    /// The full argument vector, `argv[0]` included (conventionally the
    /// command as the user typed it).
    pub argv: Vec<CString>,
    /// The command's environment.
    pub envp: Envp,
    /// Descriptors the command inherits (secret memfds); every other
    /// descriptor above 2 is closed on exec.
    pub keep_fds: Vec<OwnedFd>,
    /// Give the command the core-file limit r4-exec started with (what
    /// hardening changed); `None` keeps core files off (`--no-core-for-child`).
    pub restore: Option<Hardening>,
    /// Whom the command runs as (`--user`): the process becomes that user
    /// after everything else is prepared, right before `execve(2)`.
    pub user: Option<RunAs>,
}

impl ExecPlan {
    /// The plan, run as `user` (see [`crate::deliver::user`]).
    pub fn run_as(mut self, user: Option<RunAs>) -> ExecPlan {
        self.user = user;
        self
    }

    /// Builds a plan from the command line as the OS gave it: `command[0]`
    /// becomes `argv[0]`. Fails only if an argument holds a NUL byte, which
    /// cannot happen for arguments r4-exec itself received.
    pub fn new(
        program: PathBuf,
        command: &[OsString],
        envp: Envp,
        keep_fds: Vec<OwnedFd>,
        restore: Option<Hardening>,
    ) -> Result<ExecPlan, ExecError> {
        let argv = command
            .iter()
            .enumerate()
            .map(|(index, arg)| {
                CString::new(arg.as_bytes()).map_err(|_| ExecError::NulInArgument { index })
            })
            .collect::<Result<_, _>>()?;
        Ok(ExecPlan {
            program,
            argv,
            envp,
            keep_fds,
            restore,
            user: None,
        })
    }
}

/// Why the command could not be started. [`ExecError::exit_code`] gives the
/// status to exit with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// No such command: not in `PATH`, or the path does not exist (127).
    #[error("{}: command not found", .program.display())]
    NotFound {
        /// The command as given, or the path tried.
        program: PathBuf,
    },
    /// The program exists but `execve(2)` reported `ENOENT`: its
    /// interpreter (`#!` line or ELF loader, e.g. in a scratch image) is
    /// missing (127).
    #[error("{}: cannot execute: its interpreter or dynamic loader was not found", .program.display())]
    InterpreterNotFound {
        /// The program.
        program: PathBuf,
    },
    /// The program exists but is a directory, lacks execute permission or
    /// has an unknown format (126).
    #[error("{}: cannot execute: {errno}", .program.display())]
    NotExecutable {
        /// The program.
        program: PathBuf,
        /// Why (`EACCES`, `EISDIR`, `ENOEXEC`, ...).
        errno: Errno,
    },
    /// An argument contains a NUL byte (126).
    #[error("argument {index} contains a NUL byte")]
    NulInArgument {
        /// Position in the command line (0 is the command).
        index: usize,
    },
    /// Preparing the process for exec failed (125); `step` names the step.
    #[error("cannot prepare to run the command ({step}): {errno}")]
    Setup {
        /// The step that failed.
        step: &'static str,
        /// The error it returned.
        errno: Errno,
    },
    /// `execve(2)` failed for another reason (`E2BIG`, `ENOMEM`, `ELOOP`,
    /// ...) (126).
    #[error("{}: cannot execute: {errno}", .program.display())]
    Other {
        /// The program.
        program: PathBuf,
        /// The error `execve(2)` returned.
        errno: Errno,
    },
}

impl ExecError {
    /// The exit status for this failure: 127 when the command or its
    /// interpreter is not found, 125 when r4-exec's own preparation failed,
    /// 126 otherwise (found but cannot be executed).
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecError::NotFound { .. } | ExecError::InterpreterNotFound { .. } => EXIT_NOT_FOUND,
            ExecError::Setup { .. } => EXIT_SETUP_FAILED,
            ExecError::NotExecutable { .. }
            | ExecError::NulInArgument { .. }
            | ExecError::Other { .. } => EXIT_NOT_EXECUTABLE,
        }
    }
}

/// Finds the program a shell would run for `cmd`.
///
/// A `cmd` containing `/` is used as is. Otherwise each directory of
/// `path_var` ([`DEFAULT_PATH`] when `None`) is tried in order; an empty
/// entry means the current directory, as POSIX specifies. The first regular
/// file with execute permission wins. If none does, the result is
/// [`ExecError::NotExecutable`] when some candidate existed (a directory, or
/// without permission) and [`ExecError::NotFound`] otherwise.
pub fn resolve_program(cmd: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, ExecError> {
    if cmd.is_empty() {
        return Err(ExecError::NotFound {
            program: PathBuf::new(),
        });
    }
    if cmd.as_bytes().contains(&b'/') {
        let program = PathBuf::from(cmd);
        return check_executable(&program).map(|()| program);
    }
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut not_executable = None;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(cmd);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e @ ExecError::NotExecutable { .. }) => {
                not_executable.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    Err(not_executable.unwrap_or_else(|| ExecError::NotFound {
        program: PathBuf::from(cmd),
    }))
}

/// Whether `path` is something `execve(2)` can run: exists, is not a
/// directory, has execute permission for us.
fn check_executable(path: &Path) -> Result<(), ExecError> {
    let not_executable = |errno| ExecError::NotExecutable {
        program: path.to_owned(),
        errno,
    };
    match std::fs::metadata(path) {
        Err(_) => Err(ExecError::NotFound {
            program: path.to_owned(),
        }),
        Ok(meta) if meta.is_dir() => Err(not_executable(Errno::EISDIR)),
        Ok(_) => access(path, AccessFlags::X_OK).map_err(not_executable),
    }
}

/// Replaces the process with `plan`. Returns only on failure.
///
/// In order: restores the core-file limit (when the plan says so), marks
/// every descriptor above 2 close-on-exec, clears that flag
/// on `plan.keep_fds`, becomes `plan.user` (`--user`), resets all signal
/// dispositions to the default, empties
/// the signal mask, then calls `execve(2)`. The calling thread's mask is the
/// one the command inherits, so call this from the thread that should exec
/// (any thread works; the others vanish at exec).
///
/// On failure the process is left prepared (defaults everywhere, descriptors
/// close-on-exec): the caller should report the error and exit with
/// [`ExecError::exit_code`]. `plan` is dropped, which closes the kept
/// descriptors and wipes the environment.
pub fn exec(plan: ExecPlan) -> ExecError {
    let program = match CString::new(plan.program.as_os_str().as_bytes()) {
        Ok(p) => p,
        Err(_) => {
            return ExecError::NotFound {
                program: plan.program,
            }
        }
    };
    if let Err(e) = prepare(&plan) {
        return e;
    }
    let errno = match execve(&program, &plan.argv, plan.envp.as_slice()) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    exec_error(plan.program, errno)
}

/// Everything [`exec`] does to the process before `execve(2)`.
fn prepare(plan: &ExecPlan) -> Result<(), ExecError> {
    if let Some(h) = plan.restore {
        h.restore_for_child().map_err(|e| ExecError::Setup {
            step: "restore the core-file limit",
            errno: e.errno(),
        })?;
    }
    mark_fds_cloexec_from(3).map_err(setup("mark descriptors close-on-exec"))?;
    for fd in &plan.keep_fds {
        clear_cloexec(fd.as_raw_fd()).map_err(setup("pass a secret descriptor"))?;
    }
    if let Some(user) = &plan.user {
        super::user::switch(user).map_err(setup("become the --user"))?;
    }
    reset_signal_dispositions().map_err(setup("reset signal handlers"))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(setup("clear the signal mask"))
}

fn setup(step: &'static str) -> impl Fn(Errno) -> ExecError {
    move |errno| ExecError::Setup { step, errno }
}

/// Maps the `errno` of a failed `execve(2)` to the shell's categories.
fn exec_error(program: PathBuf, errno: Errno) -> ExecError {
    match errno {
        // execve says ENOENT for a missing interpreter too; tell them apart.
        Errno::ENOENT if program.exists() => ExecError::InterpreterNotFound { program },
        Errno::ENOENT | Errno::ENOTDIR => ExecError::NotFound { program },
        Errno::EACCES
        | Errno::EPERM
        | Errno::ENOEXEC
        | Errno::EISDIR
        | Errno::ETXTBSY
        | Errno::ELIBBAD => ExecError::NotExecutable { program, errno },
        _ => ExecError::Other { program, errno },
    }
}

/// Sets `FD_CLOEXEC` on every open descriptor `>= first`.
///
/// Uses `close_range(2)` with `CLOSE_RANGE_CLOEXEC` (Linux 5.11+), else walks
/// `/proc/self/fd`. If neither is available it fails rather than exec with
/// descriptors that might leak.
fn mark_fds_cloexec_from(first: RawFd) -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors; it closes nothing, so no OwnedFd is invalidated. The
    // arguments are plain integers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match Errno::result(rc) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS | Errno::EINVAL) => mark_fds_cloexec_via_proc(first),
        Err(e) => Err(e),
    }
}

/// Fallback of [`mark_fds_cloexec_from`]: lists `/proc/self/fd`.
fn mark_fds_cloexec_via_proc(first: RawFd) -> Result<(), Errno> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first)
        .collect();
    for fd in fds {
        match fcntl(fd, FcntlArg::F_GETFD) {
            Ok(flags) => {
                let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
                fcntl(fd, FcntlArg::F_SETFD(flags))?;
            }
            // The directory's own descriptor, closed since the listing.
            Err(Errno::EBADF) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Clears `FD_CLOEXEC` on `fd` so the command inherits it.
fn clear_cloexec(fd: RawFd) -> Result<(), Errno> {
    let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD)?);
    fcntl(fd, FcntlArg::F_SETFD(flags - FdFlag::FD_CLOEXEC)).map(drop)
}

/// Sets every signal that can be changed, real-time ones included, to
/// `SIG_DFL`. Handlers are reset by `execve(2)` anyway; ignored signals are
/// not, and Rust's runtime ignores `SIGPIPE`.
///
/// Calls `rt_sigaction(2)` directly: the C library's `sigaction` refuses the
/// signals it reserves for itself (glibc: 32 and 33, musl: 32 to 34), yet a
/// parent can leave those ignored too, and the command would inherit that.
/// Only `SIGKILL` and `SIGSTOP`, which cannot change, are skipped.
fn reset_signal_dispositions() -> Result<(), Errno> {
    // The kernel's `struct sigaction` differs from the C library's, but for
    // both an all-zero value means: handler SIG_DFL (0), no flags, empty mask.
    // A zeroed `libc::sigaction` is larger than the kernel's on every Linux
    // architecture, so the kernel reads only zeros.
    // SAFETY: all-zero is a valid value for this plain C struct.
    let default: libc::sigaction = unsafe { std::mem::zeroed() };
    let sigrtmax = libc::SIGRTMAX();
    // The kernel's sigset_t size in bytes: _NSIG / 8, and _NSIG = SIGRTMAX + 1.
    let sigset_size = (sigrtmax as usize + 1) / 8;
    for sig in 1..=sigrtmax {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installs SIG_DFL, which runs no code of ours; `default`
        // outlives the call and is at least as large as the kernel's struct;
        // the old action is not requested (null).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const libc::sigaction,
                std::ptr::null_mut::<libc::sigaction>(),
                sigset_size,
            )
        };
        Errno::result(rc)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn make_file(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, "#!/bin/sh\n").expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    fn path_of(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).expect("join")
    }

    #[test]
    fn finds_first_executable_in_path() {
        let (a, b) = (tempdir(), tempdir());
        make_file(a.path(), "tool", 0o644);
        let want = make_file(b.path(), "tool", 0o755);
        let path = path_of(&[a.path(), b.path()]);
        assert_eq!(
            resolve_program(OsStr::new("tool"), Some(&path)).expect("found"),
            want
        );
    }

    #[test]
    fn not_in_path_is_127() {
        let a = tempdir();
        let path = path_of(&[a.path()]);
        let err = resolve_program(OsStr::new("no-such-tool"), Some(&path)).expect_err("missing");
        assert!(matches!(err, ExecError::NotFound { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 127);
        assert_eq!(err.to_string(), "no-such-tool: command not found");
    }

    #[test]
    fn only_non_executable_candidates_is_126() {
        let (a, b) = (tempdir(), tempdir());
        make_file(a.path(), "tool", 0o644);
        fs::create_dir(b.path().join("tool")).expect("mkdir");
        let path = path_of(&[b.path(), a.path()]);
        let err = resolve_program(OsStr::new("tool"), Some(&path)).expect_err("not executable");
        assert_eq!(err.exit_code(), 126);
        assert!(
            matches!(&err, ExecError::NotExecutable { errno: Errno::EISDIR, program } if program.starts_with(b.path())),
            "{err:?}"
        );
    }

    #[test]
    fn slash_paths_are_used_as_is() {
        let a = tempdir();
        let exe = make_file(a.path(), "run", 0o700);
        let empty = OsString::new();
        assert_eq!(
            resolve_program(exe.as_os_str(), Some(&empty)).expect("as is"),
            exe
        );
        let missing = a.path().join("missing");
        assert_eq!(
            resolve_program(missing.as_os_str(), None)
                .expect_err("missing")
                .exit_code(),
            127
        );
        assert_eq!(
            resolve_program(a.path().as_os_str(), None)
                .expect_err("directory")
                .exit_code(),
            126
        );
    }

    #[test]
    fn non_executable_path_is_126_unless_root() {
        let a = tempdir();
        let file = make_file(a.path(), "data", 0o644);
        let err = resolve_program(file.as_os_str(), None).expect_err("no x bit");
        // Even root needs at least one x bit for X_OK on a regular file.
        assert!(
            matches!(
                err,
                ExecError::NotExecutable {
                    errno: Errno::EACCES,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), 126);
    }

    #[test]
    fn default_path_finds_sh() {
        let p = resolve_program(OsStr::new("sh"), None).expect("sh in default PATH");
        assert!(p.ends_with("sh") && p.is_absolute(), "{p:?}");
        assert_eq!(
            resolve_program(OsStr::new(""), None)
                .expect_err("empty")
                .exit_code(),
            127
        );
    }

    #[test]
    fn exec_errno_mapping() {
        let missing = PathBuf::from("/nonexistent/x");
        assert_eq!(exec_error(missing.clone(), Errno::ENOENT).exit_code(), 127);
        assert!(matches!(
            exec_error(PathBuf::from("/bin/sh"), Errno::ENOENT),
            ExecError::InterpreterNotFound { .. }
        ));
        for errno in [Errno::EACCES, Errno::ENOEXEC, Errno::EISDIR, Errno::EPERM] {
            let e = exec_error(missing.clone(), errno);
            assert!(matches!(e, ExecError::NotExecutable { .. }), "{e:?}");
            assert_eq!(e.exit_code(), 126);
        }
        let e = exec_error(missing, Errno::E2BIG);
        assert!(matches!(e, ExecError::Other { .. }));
        assert_eq!(e.exit_code(), 126);
        assert_eq!(setup("x")(Errno::EMFILE).exit_code(), 125);
    }

    #[test]
    fn plan_debug_hides_values_and_argv_keeps_argv0() {
        let envp = crate::deliver::env::build_env(
            [(OsString::from("DB_PASSWORD"), OsString::from("hunter2"))],
            &[],
            &[],
            &crate::deliver::env::EnvOptions::default(),
        )
        .expect("env");
        let plan = ExecPlan::new(
            PathBuf::from("/bin/echo"),
            &[OsString::from("echo"), OsString::from("hi")],
            envp,
            Vec::new(),
            None,
        )
        .expect("plan");
        assert_eq!(plan.argv, [c"echo".to_owned(), c"hi".to_owned()]);
        let dbg = format!("{plan:?}");
        assert!(
            dbg.contains("DB_PASSWORD") && !dbg.contains("hunter2"),
            "{dbg}"
        );
    }

    #[test]
    fn proc_fallback_marks_descriptors_close_on_exec() {
        // dup(2) never sets FD_CLOEXEC. Starting at this descriptor keeps the
        // sweep away from most of the test harness's own descriptors.
        let fd = nix::unistd::dup(1).expect("dup");
        let cloexec = |fd| {
            FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).expect("F_GETFD"))
                .contains(FdFlag::FD_CLOEXEC)
        };
        assert!(!cloexec(fd));
        mark_fds_cloexec_via_proc(fd).expect("mark");
        assert!(cloexec(fd));
        clear_cloexec(fd).expect("clear");
        assert!(!cloexec(fd));
        nix::unistd::close(fd).expect("close");
    }

    #[test]
    fn nul_in_argument_is_rejected() {
        let err = ExecPlan::new(
            PathBuf::from("/bin/echo"),
            &[OsString::from("echo"), OsString::from("a\0b")],
            crate::deliver::env::Envp::default(),
            Vec::new(),
            None,
        )
        .expect_err("NUL");
        assert_eq!(err, ExecError::NulInArgument { index: 1 });
    }
}
