//! The integration tests of r4-exec, in one test binary (one link of the
//! devserver stack instead of one per file): each module is an area, most of
//! them running the real `r4-exec` binary against an in-process r4-devserver;
//! [`util`] is the harness they share.
//!
//! `cargo test --test e2e` runs them all; `cargo test --test e2e fallback::`
//! one area; `cargo test --test e2e -- --list` names every test.

mod util;

mod admission;
mod arm64;
mod bad_input;
mod browse;
mod bundle_readers;
mod container;
mod docs;
mod e2e;
mod empty_root;
mod env_limit;
mod env_refs;
mod exec_plan;
mod fallback;
mod faults;
mod files;
mod hardened;
mod hygiene;
mod layers;
mod mask;
mod memory;
mod no_disk_trace;
mod outer;
mod parallel;
mod pid1;
mod plan;
mod proxy;
mod rotate;
mod rounds;
mod servers;
mod supervise;
mod tls;
mod tls_chains;
mod trust;
mod vault_writer;
