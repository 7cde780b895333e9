//! Every failure of the binary, mapped once to an exit code and to one-line
//! messages (one per problem) that name the env var, the reference and the
//! failed check, rage-style: what failed, then what to do.
//!
//! | code | class |
//! |------|-------|
//! | 64 | usage or configuration: flags, `r4.toml`, key files, refused URL, legacy/unencrypted not allowed |
//! | 65 | verification: a signature, checkpoint, envelope or answer failed a check of the contract |
//! | 66 | not found: a reference does not resolve, or the server answered 404 |
//! | 69 | network or service unavailable: connect/timeout, 429, 5xx |
//! | 77 | authentication or permission: 401, 403, key not registered or replaced |
//! | 126 | COMMAND found but not executable |
//! | 127 | COMMAND not found |
//!
//! When several problems occur, the code is that of the most serious class, in
//! the order verification, authentication, not found, network, usage.

use std::path::PathBuf;

use thiserror::Error;

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::contract::KeyError;
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
            Class::Usage => 64,
            Class::Verify => 65,
            Class::NotFound => 66,
            Class::Network => 69,
            Class::Auth => 77,
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
    /// Delivery into memfds failed.
    #[error("delivering {name}: {detail}")]
    Inject {
        /// Env var.
        name: String,
        /// What failed.
        detail: String,
    },
    /// COMMAND could not be executed.
    #[error("{detail}")]
    Exec {
        /// 126 or 127 or 64.
        code: u8,
        /// What failed.
        detail: String,
    },
    /// An error with advice on what to do.
    #[error("{0}; {1}")]
    Hinted(Box<AppError>, &'static str),
    /// Anything else (I/O writing output, key generation).
    #[error("{0}")]
    Other(String),
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
        Failure::NotFound { .. } | Failure::Ambiguous { .. } => Class::NotFound,
        Failure::Verify(crate::contract::VerifyError::WrongRecipient { .. }) => Class::Auth,
        Failure::Verify(_) | Failure::Envelope(_) | Failure::Legacy(_) => Class::Verify,
        Failure::LegacyNotAllowed | Failure::UnencryptedNotAllowed | Failure::Collision(_) => {
            Class::Usage
        }
        Failure::Client(e) => client_class(e),
    }
}

impl AppError {
    /// Adds advice to the message.
    pub fn with_hint(self, hint: &'static str) -> AppError {
        AppError::Hinted(Box::new(self), hint)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Hinted(inner, _) => inner.exit_code(),
            AppError::Client(e) => client_class(e).code(),
            AppError::Resolve(problems) => problems
                .iter()
                .map(|p| failure_class(&p.failure))
                .max()
                .unwrap_or(Class::Usage)
                .code(),
            AppError::Deadline(_) => Class::Network.code(),
            AppError::Exec { code, .. } => *code,
            AppError::Inject { .. } | AppError::Other(_) => 70,
            _ => Class::Usage.code(),
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
            other => vec![other.to_string()],
        }
    }
}
