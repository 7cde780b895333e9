//! Process hardening applied before the first secret is in memory.
//!
//! Between fetching secrets and `execve(2)`, r4-exec holds plaintext values,
//! the agent's private key and the API key. A crash in that window must not
//! write them to a core file, and another process of the same user must not
//! read them through `ptrace(2)` or `/proc/PID/mem`. Two settings do that:
//!
//! - `prctl(PR_SET_DUMPABLE, 0)`: no core dump, no ptrace attach by
//!   non-root, `/proc/PID/{mem,environ,fd}` owned by root.
//! - `RLIMIT_CORE` soft limit 0: no core file even where dumpable processes
//!   dump through `core_pattern`. Only the *soft* limit is lowered, so an
//!   unprivileged process can raise it back for the child.
//!
//! [`Hardening::restore_for_child`] undoes the core limit just before exec,
//! so the command runs with the limits it would have had without r4-exec
//! (unless the user asks to keep the hardening; the caller decides). The
//! dumpable flag is deliberately *not* restored here: `execve(2)` resets it
//! to 1 for any program that does not change credentials (not setuid/setgid,
//! no file capabilities), so restoring it ourselves would only reopen the
//! window in which our memory, secrets included, can be dumped or traced.

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// A resource-limit value (`rlim_t`), as `getrlimit(2)` reports it.
pub type RlimValue = nix::libc::rlim_t;

/// What [`harden`] changed, so it can be undone for the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    /// `RLIMIT_CORE` as it was before: `(soft, hard)`.
    pub old_core: (RlimValue, RlimValue),
    /// `PR_GET_DUMPABLE` as it was before. Informational: `execve(2)` resets
    /// the flag for the new program, see the module documentation.
    pub old_dumpable: bool,
}

/// A hardening step failed. r4-exec must not go on to fetch secrets then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HardenError {
    /// `prctl(PR_GET_DUMPABLE / PR_SET_DUMPABLE)` failed.
    #[error("cannot mark the process non-dumpable: {0}")]
    Dumpable(Errno),
    /// `getrlimit` / `setrlimit(RLIMIT_CORE)` failed.
    #[error("cannot change the core-file size limit: {0}")]
    CoreLimit(Errno),
}

/// Makes the process non-dumpable and sets the soft `RLIMIT_CORE` to 0.
///
/// Call it first thing in `main`, before any secret (including the API key
/// from the environment) is copied anywhere. The hard core limit is kept, so
/// [`Hardening::restore_for_child`] can raise the soft limit again.
pub fn harden() -> Result<Hardening, HardenError> {
    let old_dumpable = prctl::get_dumpable().map_err(HardenError::Dumpable)?;
    let old_core = getrlimit(Resource::RLIMIT_CORE).map_err(HardenError::CoreLimit)?;
    prctl::set_dumpable(false).map_err(HardenError::Dumpable)?;
    setrlimit(Resource::RLIMIT_CORE, 0, old_core.1).map_err(HardenError::CoreLimit)?;
    Ok(Hardening {
        old_core,
        old_dumpable,
    })
}

impl HardenError {
    /// The system call's error.
    pub fn errno(&self) -> Errno {
        match self {
            HardenError::Dumpable(e) | HardenError::CoreLimit(e) => *e,
        }
    }
}

impl Hardening {
    /// Restores the soft and hard `RLIMIT_CORE` recorded by [`harden`], just
    /// before exec. Leaves the process non-dumpable: `execve(2)` resets that
    /// flag for the new program itself (module documentation says why).
    pub fn restore_for_child(&self) -> Result<(), HardenError> {
        let (soft, hard) = self.old_core;
        setrlimit(Resource::RLIMIT_CORE, soft, hard).map_err(HardenError::CoreLimit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, because dumpable and the core limit are process-wide and
    /// unit tests share a process: it checks both directions and leaves the
    /// process as it found it.
    #[test]
    fn harden_then_restore_for_child() {
        let before_core = getrlimit(Resource::RLIMIT_CORE).expect("getrlimit");
        let before_dumpable = prctl::get_dumpable().expect("get_dumpable");

        let h = harden().expect("harden");
        assert_eq!(h.old_core, before_core);
        assert_eq!(h.old_dumpable, before_dumpable);
        assert!(!prctl::get_dumpable().expect("get_dumpable"));
        let (soft, hard) = getrlimit(Resource::RLIMIT_CORE).expect("getrlimit");
        assert_eq!(soft, 0, "soft core limit is 0");
        assert_eq!(hard, before_core.1, "hard core limit is untouched");

        h.restore_for_child().expect("restore");
        assert_eq!(
            getrlimit(Resource::RLIMIT_CORE).expect("getrlimit"),
            before_core
        );
        assert!(
            !prctl::get_dumpable().expect("get_dumpable"),
            "restore_for_child leaves dumpable to execve"
        );

        prctl::set_dumpable(before_dumpable).expect("reset dumpable for other tests");
    }
}
