//! Every failure of the binary, mapped once to an exit code (the table is
//! [`crate::exit`]) and to one-line messages (one per problem) that name the
//! env var, the reference and the failed check, rage-style: what failed,
//! then what to do. Each variant keeps the error of the layer it came from;
//! the exit code is chosen by matching on those kinds.
//!
//! When several problems occur, the code is that of the most serious class, in
//! the order verification, authentication, not found, network, usage.

use std::path::PathBuf;

use thiserror::Error;

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::contract::KeyError;
use crate::deliver::exec::ExecError;
use crate::deliver::holder::HolderError;
use crate::deliver::{DeliverError, FileError};
use crate::exit;
use crate::harden::HardenError;
use crate::resolve::{Failure, Problem};

/// Exit code classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// 64.
    Usage,
    /// 69.
    Network,
    /// 66.
    NotFound,
    /// 77.
    Auth,
    /// 65.
    Verify,
}

impl Class {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Class::Usage => exit::USAGE,
            Class::Verify => exit::VERIFY,
            Class::NotFound => exit::NOT_FOUND,
            Class::Network => exit::UNAVAILABLE,
            Class::Auth => exit::AUTH,
        }
    }
}

/// A failure of the binary.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AppError {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// Bad `r4.toml`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An `--env-file` that cannot be read or parsed.
    #[error(transparent)]
    EnvFile(#[from] crate::config::dotenv::DotenvError),
    /// A key file that cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        /// Which file.
        what: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A key that cannot be used.
    #[error("{what} {path}: {source}")]
    Key {
        /// Which key.
        what: &'static str,
        /// Path.
        path: PathBuf,
        /// Why.
        source: KeyError,
    },
    /// No or empty API key.
    #[error("{0}")]
    ApiKey(String),
    /// A single request failed.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// Resolution problems (one line each).
    #[error("{} problem(s) resolving secrets", .0.len())]
    Resolve(Vec<Problem>),
    /// The whole run exceeded `--timeout`.
    #[error("gave up after {0:?} (--timeout); the server is too slow or unreachable")]
    Deadline(std::time::Duration),
    /// The environment for COMMAND could not be built.
    #[error(transparent)]
    Inject(#[from] DeliverError),
    /// A secret could not be delivered as a file.
    #[error("delivering {name}: {source}")]
    Deliver {
        /// Env var.
        name: String,
        /// What failed.
        source: DeliverError,
    },
    /// COMMAND could not be started.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The holder of file secrets (supervisor mode) failed.
    #[error(transparent)]
    Holder(#[from] HolderError),
    /// The process could not be hardened before secrets were fetched.
    #[error(transparent)]
    Harden(#[from] HardenError),
    /// A system facility r4-exec needs failed (runtime, signals, pipes).
    #[error("{what}: {source}")]
    System {
        /// What r4-exec was doing.
        what: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// An error with advice on what to do.
    #[error("{0}; {1}")]
    Hinted(Box<AppError>, &'static str),
    /// The `--mask` patterns could not be built.
    #[error(transparent)]
    Mask(#[from] crate::mask::MaskError),
    /// Writing a file r4-exec creates (`keygen`).
    #[error("writing {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Independent problems found together (both credentials missing), so
    /// that one run reports all of them; the exit code is the first one's.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<AppError>),
    /// `ls`/`init`: what failed verification (one line each), and what
    /// that means for the command (`outcome`, the last line).
    #[error("{} problem(s); {outcome}", .problems.len())]
    Incomplete {
        /// What failed.
        problems: Vec<Problem>,
        /// What the command did about it.
        outcome: &'static str,
    },
}

fn client_class(e: &ClientError) -> Class {
    match e {
        ClientError::Api { status, .. } => match status {
            401 | 403 | 409 => Class::Auth,
            404 => Class::NotFound,
            429 | 500..=599 => Class::Network,
            _ => Class::Usage,
        },
        ClientError::Network { .. } | ClientError::Timeout { .. } => Class::Network,
        ClientError::Decode { .. } | ClientError::TooLarge { .. } => Class::Verify,
        _ => Class::Usage,
    }
}

fn failure_class(f: &Failure) -> Class {
    match f {
        Failure::NotFound { .. } | Failure::Ambiguous { .. } | Failure::NotFetched { .. } => {
            Class::NotFound
        }
        Failure::Verify(crate::contract::VerifyError::WrongRecipient { .. }) => Class::Auth,
        Failure::Verify(_) | Failure::Envelope(_) | Failure::Legacy(_) => Class::Verify,
        Failure::LegacyNotAllowed
        | Failure::UnencryptedNotAllowed
        | Failure::Collision(_)
        | Failure::StartupVariable { .. }
        | Failure::Build(_) => Class::Usage,
        Failure::Client(e) => client_class(e),
        Failure::Fallback(e) if e.is_tampering() => Class::Verify,
        Failure::Fallback(_) => Class::Network,
    }
}

impl AppError {
    /// A system facility failed while doing `what`.
    pub fn system(what: &'static str) -> impl Fn(std::io::Error) -> AppError {
        move |source| AppError::System { what, source }
    }

    /// File secret `name` could not be handed over.
    pub fn file(name: &str, e: FileError) -> AppError {
        match e {
            FileError::Memfd(source) => AppError::Deliver {
                name: name.to_owned(),
                source,
            },
            FileError::Holder(e) => AppError::Holder(e),
        }
    }

    /// Adds advice to the message.
    pub fn with_hint(self, hint: &'static str) -> AppError {
        AppError::Hinted(Box::new(self), hint)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Hinted(inner, _) => inner.exit_code(),
            AppError::Client(e) => client_class(e).code(),
            AppError::Resolve(problems) | AppError::Incomplete { problems, .. } => problems
                .iter()
                .map(|p| failure_class(&p.failure))
                .max()
                .unwrap_or(Class::Usage)
                .code(),
            AppError::Several(errors) => errors.first().map_or(exit::USAGE, AppError::exit_code),
            // A configuration problem, not a system failure: [files] is the fix.
            AppError::Inject(
                DeliverError::TooLong { .. }
                | DeliverError::NoSuchFile { .. }
                | DeliverError::PathCycle(_),
            ) => Class::Usage.code(),
            AppError::Deadline(_) => Class::Network.code(),
            AppError::Exec(e) => e.exit_code(),
            AppError::Inject(_)
            | AppError::Deliver { .. }
            | AppError::Holder(_)
            | AppError::Harden(_)
            | AppError::System { .. }
            | AppError::Mask(_)
            | AppError::Write { .. } => exit::SOFTWARE,
            AppError::Usage(_)
            | AppError::Config(_)
            | AppError::EnvFile(_)
            | AppError::ReadFile { .. }
            | AppError::Key { .. }
            | AppError::ApiKey(_) => Class::Usage.code(),
        }
    }

    /// The lines to print on stderr (without the `r4-exec: ` prefix).
    pub fn lines(&self) -> Vec<String> {
        match self {
            AppError::Resolve(problems) => {
                let mut lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                lines.push("COMMAND was not started".into());
                lines
            }
            AppError::Incomplete { problems, outcome } => problems
                .iter()
                .map(|p| p.to_string())
                .chain(std::iter::once(outcome.to_string()))
                .collect(),
            AppError::Several(errors) => errors.iter().flat_map(AppError::lines).collect(),
            other => vec![other.to_string()],
        }
    }
}
