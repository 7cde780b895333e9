//! r4-exec: run a command with secrets from R4, fetched as ciphertext,
//! verified against signed checkpoints and decrypted on this host.
//!
//! Layers, each with one job; data flows one way through them:
//! [`contract`] (wire types and every rule, pure) → `client` (HTTP) →
//! `resolve` (config + references → verified secrets) → `inject` → `exec`.
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
pub mod contract;
pub mod error;
pub mod exec;
pub mod harden;
pub mod inject;
pub mod mask;
pub mod reference;
pub mod resolve;
pub mod rotate;
pub mod run;
pub mod settings;
pub mod supervise;
pub mod trust;
pub mod wipe;
