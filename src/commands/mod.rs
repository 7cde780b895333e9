//! The subcommands, one file each (cargo's layout): `keygen`, `register`
//! and `whoami` ([`identity`]), [`rotate_key`], [`trust`], [`check`],
//! [`ls`] and [`init`] (both list what a key can read, [`browse`]), and
//! [`install`] (the binary copies itself, for an init container). Each
//! gets a hardened [`Startup`] and does its one job.

pub mod browse;
pub mod check;
pub mod identity;
pub mod init;
pub mod install;
pub mod ls;
pub mod rotate_key;
pub mod trust;

use crate::contract::directory::TrustPolicy;
use crate::startup::Startup;

/// The warning of an unpinned run: `ls` and `init` trust the directory
/// the server serves, as `check` does.
pub(crate) fn warn_unpinned(startup: &Startup, trust: &TrustPolicy) {
    if trust.is_unpinned() {
        startup.ui.warn(crate::resolve::UNPINNED);
    }
}
