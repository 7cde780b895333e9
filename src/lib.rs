//! r4-exec: run a command with secrets from R4, fetched as ciphertext,
//! verified against signed checkpoints and decrypted on this host.
//!
//! Layers, each with one job; data flows up through them and no module
//! names a module of its own layer or of one above it. This drawing is the
//! rule: `tests/e2e/layers.rs` reads it and checks every `crate::` path
//! against it. A line names the modules of one layer, top first, separated
//! by single spaces; two or more spaces start the comment; a line that
//! starts with a space continues the comment above.
//!
//! ```text
//! run                  the action of a validated invocation
//! supervise commands   supervisor mode; one file per subcommand
//! startup cli          hardening, settings, sources, the session; clap + validation
//! invocation launch    the validated command line; COMMAND as data
//! error                every failure -> one exit code, one line each
//! deliver              env, sealed memfds, their holder, execve: how COMMAND
//!                      gets its secrets and starts
//! ui resolve mask      stderr and stdout; config + refs -> verified secrets;
//!                      --mask
//! client fallback      the machine API over HTTPS; the stored copy
//! config               r4.toml and env files
//! wipe compose harden  zeroing allocator; templates and bundles; hardening
//! contract reference exit vars hygiene localfile
//!                      wire rules (pure); exit codes; own env names; names a
//!                      vault writer may not choose; files a local user could swap
//! ```
#![warn(missing_docs)]

/// The wire contract, in its own crate (`contract/`, `r4-contract`) so the
/// devserver shares it without linking the client; re-exported so that
/// `crate::contract::…` and `r4_exec::contract::…` keep their meaning.
pub use r4_contract as contract;
/// `r4://` references (`r4_contract::reference`).
pub use r4_contract::reference;

pub mod cli;
pub mod client;
pub mod commands;
pub mod compose;
pub mod config;
pub mod deliver;
pub mod error;
pub mod exit;
pub mod fallback;
pub mod harden;
pub mod hygiene;
pub mod invocation;
pub mod launch;
pub mod localfile;
pub mod mask;
pub mod resolve;
pub mod run;
pub mod startup;
pub mod supervise;
pub mod ui;
pub mod vars;
pub mod wipe;
