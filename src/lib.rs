//! r4-exec: run a command with secrets from R4, fetched as ciphertext,
//! verified against signed checkpoints and decrypted on this host.
//!
//! Layers, each with one job; data flows up through them and no module
//! names a module of its own layer or of one above it (`tests/e2e/layers.rs`
//! checks every `crate::` path; CI runs it):
//!
//! ```text
//! run                         the action of a validated invocation
//! supervise   commands        supervisor mode; the subcommands
//! startup  cli                hardening, settings, client, key, resolve (once); clap + validation
//! invocation  launch          validated command line; COMMAND as data
//! settings sources rotate trust  settings; references by source
//! browse                      `ls`/`init`: what a key can read, verified
//! error                       every failure -> one exit code, one line each
//! holder                      supervisor mode's keeper of file secrets
//! exec                        execve(2): the one place COMMAND starts
//! inject                      env and memfd delivery
//! ui  resolve  mask           stderr reporter; config + refs -> verified secrets
//! client  fallback            the machine API over HTTPS; the stored copy
//! config  harden  dotenv      r4.toml; process hardening; env-file syntax
//! wipe  template  bundle      zeroing allocator; {{ r4://… }} templates; dotenv/JSON bundles
//! contract reference exit vars hygiene localfile  wire rules (pure); exit
//!                             codes; own env names; names a vault writer may
//!                             not choose; reading files a local user could swap
//! ```
#![warn(missing_docs)]

/// The wire contract, in its own crate (`contract/`, `r4-contract`) so the
/// devserver shares it without linking the client; re-exported so that
/// `crate::contract::…` and `r4_exec::contract::…` keep their meaning.
pub use r4_contract as contract;
/// `r4://` references (`r4_contract::reference`).
pub use r4_contract::reference;

pub mod browse;
pub mod bundle;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod dotenv;
pub mod error;
pub mod exec;
pub mod exit;
pub mod fallback;
pub mod harden;
pub mod holder;
pub mod hygiene;
pub mod inject;
pub mod invocation;
pub mod launch;
pub mod localfile;
pub mod mask;
pub mod resolve;
pub mod rotate;
pub mod run;
pub mod settings;
pub mod sources;
pub mod startup;
pub mod supervise;
pub mod template;
pub mod trust;
pub mod ui;
pub mod vars;
pub mod wipe;
