//! r4-exec: run a command with secrets from R4, fetched as ciphertext,
//! verified against signed checkpoints and decrypted on this host.
//!
//! Layers, each with one job; data flows one way through them:
//! [`contract`] (wire types and every rule, pure) → `client` (HTTP) →
//! `resolve` (config + references → verified secrets) → `inject` → `exec`.
#![warn(missing_docs)]

/// The wire contract, in its own crate (`contract/`, `r4-contract`) so the
/// devserver shares it without linking the client; re-exported so that
/// `crate::contract::…` and `r4_exec::contract::…` keep their meaning.
pub use r4_contract as contract;
/// `r4://` references (`r4_contract::reference`).
pub use r4_contract::reference;

pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod exec;
pub mod harden;
pub mod inject;
pub mod mask;
pub mod resolve;
pub mod rotate;
pub mod run;
pub mod settings;
pub mod supervise;
pub mod trust;
