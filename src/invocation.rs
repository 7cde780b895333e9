//! The second stage of the command line (ripgrep's `lowargs` → `hiargs`),
//! as plain data: the mode, the command, the environment options.
//! `Invocation::from_cli` (in `cli/validate.rs`, the one place that reads
//! the clap structs) checks what clap cannot and builds it. Everything below
//! `run` takes these values, never the command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::browse::Scope;
use crate::inject::EnvOptions;

/// What to do, validated.
#[derive(Debug)]
pub struct Invocation {
    /// Options every action shares.
    pub global: GlobalOptions,
    /// The action.
    pub action: Action,
}

/// Options every action shares.
#[derive(Debug, Clone)]
pub struct GlobalOptions {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `-v` count.
    pub verbose: u8,
    /// `--timeout`: the whole run (each request gets at most 10 s of it).
    pub timeout: Duration,
    /// `--env-file`, in order.
    pub env_files: Vec<PathBuf>,
}

/// One action of the binary.
#[derive(Debug)]
pub enum Action {
    /// Run COMMAND with its secrets (exec or supervisor mode).
    Run(RunOptions),
    /// `keygen`.
    Keygen {
        /// Where to write the key.
        out: PathBuf,
        /// RSA modulus size.
        bits: usize,
    },
    /// `register`.
    Register,
    /// `rotate-key`.
    RotateKey {
        /// The new private key file.
        new_key: PathBuf,
    },
    /// `whoami`.
    Whoami {
        /// `--json`.
        json: bool,
    },
    /// `trust`.
    Trust,
    /// `check`.
    Check {
        /// `--json`.
        json: bool,
    },
    /// `ls`.
    Ls {
        /// What to list.
        scope: Scope,
        /// `--toml`.
        toml: bool,
    },
    /// `init`.
    Init {
        /// `--project`.
        project: Option<String>,
    },
}

/// How to run COMMAND.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// COMMAND and its arguments; never empty.
    pub command: Vec<OsString>,
    /// How the inherited environment is treated.
    pub env: EnvOptions,
    /// Restore the core-file limit for COMMAND (not `--no-core-for-child`).
    pub core_for_child: bool,
    /// Exec or supervisor mode.
    pub mode: Mode,
}

/// Whether r4-exec becomes COMMAND or stays its parent.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `execve(2)`: COMMAND keeps r4-exec's PID. As PID 1 (a container),
    /// r4-exec stays COMMAND's init instead, with these options, unless
    /// `--no-init` (then `None`).
    Exec {
        /// Supervision to use when r4-exec is PID 1.
        as_pid1: Option<Supervision>,
    },
    /// r4-exec stays the parent.
    Supervise(Supervision),
}

/// Supervisor mode's options, checked.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// `--watch`: the poll interval.
    pub interval: Option<Duration>,
    /// `--reload-signal`.
    pub reload: Option<Signal>,
    /// `--stop-signal`.
    pub stop: Signal,
    /// `--grace`.
    pub grace: Duration,
    /// `--signal-group`.
    pub group: bool,
    /// `--reap`.
    pub reap: bool,
    /// `--mask`.
    pub mask: bool,
}
