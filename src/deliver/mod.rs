//! Delivery of secrets to COMMAND, and COMMAND's start: the environment
//! ([`env`](mod@env)), sealed in-memory files ([`memfd`]) and the process that keeps
//! them in supervisor mode ([`holder`]), and `execve(2)` ([`exec`]), the one
//! place a command starts. [`FileHome`] is the one door through which a file
//! secret reaches COMMAND, at start and on reload alike.
//!
//! Both ways keep secrets off the filesystem: no temporary file or tmpfs
//! path is ever created.

pub mod env;
pub mod exec;
pub mod holder;
pub mod memfd;
pub mod user;

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::contract::Secret;

/// A secret could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// A memfd name contained a NUL byte.
    #[error("memfd name {0:?} contains a NUL byte")]
    InvalidMemfdName(String),
    /// A memfd system call failed; `step` names it.
    #[error("cannot create the in-memory file for a secret ({step}): {errno}")]
    Memfd {
        /// The call that failed (`memfd_create`, `write`, `seal`, ...).
        step: &'static str,
        /// The error it returned.
        errno: Errno,
    },
    /// A variable name is empty or contains `=` or NUL.
    #[error("{0:?} cannot be an environment variable name")]
    InvalidName(String),
    /// A secret value contains a NUL byte, which an environment variable
    /// cannot hold. The value itself is never part of the error.
    #[error("the value for {0} contains a NUL byte and cannot be an environment variable; deliver it as a file")]
    NulInValue(String),
    /// `NAME=value` is longer than the kernel takes for one variable
    /// ([`env::MAX_ARG_STRLEN`]); `execve(2)` would fail with E2BIG, naming
    /// nothing. The value itself is never part of the error.
    #[error("the value for {name} is {bytes} bytes: over the kernel's limit of 128 KiB for one environment variable (MAX_ARG_STRLEN); deliver it as a file: map {name} in [files] instead of [env]")]
    TooLong {
        /// The variable.
        name: String,
        /// The value's length.
        bytes: usize,
    },
    /// A template's `{{ path:FILE }}` names no file secret of this run (or
    /// its own variable).
    #[error("the template of {name} has {{{{ path:{file} }}}}, but {file} is not another file secret here: map it in [files] or as an r4+file:// reference")]
    NoSuchFile {
        /// The variable whose template names the path.
        name: String,
        /// The name in the placeholder.
        file: String,
    },
    /// Templates name each other's paths in a circle, so none can be
    /// written first.
    #[error(
        "the templates of {0} name each other's paths ({{{{ path:… }}}}): one of them must not"
    )]
    PathCycle(String),
    /// `/proc` is not mounted: a file secret's path could not be opened.
    #[error("file secrets are reached through /proc, which is not usable here ({0})")]
    NoProc(String),
}

/// A file secret could not be handed over: creating its memfd failed, or
/// the holder that keeps it did.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The sealed memfd could not be made.
    #[error(transparent)]
    Memfd(#[from] DeliverError),
    /// The holder refused it or is gone.
    #[error(transparent)]
    Holder(#[from] holder::HolderError),
}

/// Which process keeps the `[files]` memfds open: the path COMMAND is given
/// is `/proc/<that pid>/fd/<n>`, valid for as long as that process holds the
/// descriptor, for COMMAND and every same-user descendant, including those
/// that closed the descriptors they inherited.
pub enum FileHome<'a> {
    /// Exec mode: COMMAND itself. It inherits each memfd at r4-exec's
    /// descriptor number and keeps r4-exec's pid across `execve(2)`, and it
    /// is dumpable again once exec'd, so its own user may open the path.
    Command,
    /// Supervisor mode: the [`holder::Holder`] process. COMMAND inherits no
    /// memfd; the path outlives restarts of COMMAND, and a changed value is
    /// swapped in by the holder.
    Holder(&'a mut holder::Holder),
}

/// A file secret handed over.
pub struct Placed {
    /// What COMMAND's variable holds: the path that opens the file.
    pub path: String,
    /// For [`FileHome::Command`], the descriptor COMMAND must inherit.
    pub inherit: Option<OwnedFd>,
}

impl FileHome<'_> {
    /// The one door through which a file secret reaches COMMAND, at start
    /// and on reload alike: `value` in a new sealed, owner-read-only memfd
    /// ([`memfd::sealed_memfd`]), owned by `owner` if given (`--user`, a
    /// file's `owner`), kept where this home says. The holder puts
    /// it in the slot `name` already has, atomically replacing the file its
    /// path opens, or in a new one.
    pub fn put(
        &mut self,
        name: &str,
        value: &Secret,
        owner: Option<&user::RunAs>,
    ) -> Result<Placed, FileError> {
        let fd = memfd::sealed_memfd(name, value)?;
        if let Some(owner) = owner {
            memfd::give(&fd, owner.uid, owner.gid)?;
        }
        match self {
            FileHome::Command => {
                let path = memfd::fd_path(memfd::proc_self_pid()?, fd.as_raw_fd());
                Ok(Placed {
                    path,
                    inherit: Some(fd),
                })
            }
            FileHome::Holder(holder) => Ok(Placed {
                path: holder.put(name, fd)?,
                inherit: None,
            }),
        }
    }
}
