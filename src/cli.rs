//! The command line, as data (clap derive). `run` turns it into actions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::supervise::{parse_secs, parse_signal};

const EXAMPLES: &str = "\
Examples:
  r4-exec -- node server.js               run with the secrets of ./r4.toml
  r4-exec -c /etc/app/r4.toml -- /usr/bin/app
  r4-exec --watch --reload-signal HUP -- nginx -g 'daemon off;'
                                          stay the parent: refresh, forward signals
  r4-exec keygen --out agent.pem          create the agent's RSA key (0600)
  r4-exec register                        register its public key with R4
  r4-exec whoami                          show the key's identity and policy
  r4-exec check                           resolve and verify, print no value
  r4-exec trust                           signer directories and a [trust] block

Docker: ENTRYPOINT [\"/r4-exec\",\"--\"]   Procfile: web: r4-exec -- node server.js
Exit codes: 64 usage/config, 65 verification, 66 not found, 69 network,
77 auth/permission, 126 not executable, 127 not found; else COMMAND's own.";

/// Run a command with secrets from R4, verified and decrypted on this host.
#[derive(Debug, Parser)]
#[command(
    name = "r4-exec",
    version,
    after_help = EXAMPLES,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Shared options.
    #[command(flatten)]
    pub global: Global,

    /// Options of the default (exec) mode.
    #[command(flatten)]
    pub exec: ExecArgs,

    /// A subcommand instead of running COMMAND.
    #[command(subcommand)]
    pub subcommand: Option<Command>,

    /// The command to run, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Options every mode shares.
#[derive(Debug, Args)]
pub struct Global {
    /// Path of r4.toml [default: $R4_CONFIG, else ./r4.toml]
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Progress on stderr (names and ids, never values); repeat for more
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Give up after this many seconds in total
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

/// Help heading of the flags that select supervisor mode (`crate::supervise`).
const SUPERVISOR: &str = "Supervisor mode (r4-exec stays the parent)";

/// Options of exec mode.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Pass r4-exec's own R4_* variables (API key, key path) to COMMAND
    #[arg(long)]
    pub keep_r4_env: bool,

    /// Keep an inherited variable instead of overriding it with a secret
    #[arg(long)]
    pub no_override: bool,

    /// Keep core dumps disabled (RLIMIT_CORE 0) for COMMAND too
    #[arg(long)]
    pub no_core_for_child: bool,

    /// Supervisor mode: stay the parent, poll R4 and restart COMMAND when a secret it uses changes
    #[arg(long, help_heading = SUPERVISOR)]
    pub watch: bool,

    /// Seconds between polls with --watch, ±10% jitter; fractions allowed [default: 30]
    #[arg(long, value_name = "SECS", value_parser = parse_secs, requires = "watch", help_heading = SUPERVISOR)]
    pub watch_interval: Option<std::time::Duration>,

    /// Signal that asks COMMAND to stop, before a restart or on exit with --reap [default: TERM]
    #[arg(long, value_name = "SIG", value_parser = parse_signal, help_heading = SUPERVISOR)]
    pub stop_signal: Option<nix::sys::signal::Signal>,

    /// Seconds COMMAND gets after the stop signal before SIGKILL; fractions allowed [default: 10]
    #[arg(long, value_name = "SECS", value_parser = parse_secs, help_heading = SUPERVISOR)]
    pub grace: Option<std::time::Duration>,

    /// With --watch: rewrite changed [files] secrets in place and send SIG instead of restarting
    #[arg(long, value_name = "SIG", value_parser = parse_signal, requires = "watch", help_heading = SUPERVISOR)]
    pub reload_signal: Option<nix::sys::signal::Signal>,

    /// Forward signals to COMMAND's whole process group, not COMMAND alone
    #[arg(long, help_heading = SUPERVISOR)]
    pub signal_group: bool,

    /// Reap every orphaned process (child subreaper); implied in supervisor mode when r4-exec is PID 1
    #[arg(long, help_heading = SUPERVISOR)]
    pub reap: bool,

    /// Replace secret values (and their base64 and percent-encoded forms) in COMMAND's stdout and stderr
    #[arg(long, help_heading = SUPERVISOR)]
    pub mask: bool,
}

impl ExecArgs {
    /// Whether a flag asks for supervisor mode (r4-exec stays the parent)
    /// instead of exec mode.
    pub fn supervised(&self) -> bool {
        self.watch || self.mask || self.reap || self.signal_group
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the agent's RSA private key (PKCS#8 PEM, mode 0600)
    #[command(after_help = "Example:\n  r4-exec keygen --out /run/secrets/r4-agent.pem")]
    Keygen {
        /// Where to write it (never overwritten)
        #[arg(long, short, value_name = "FILE", default_value = "r4-agent.pem")]
        out: PathBuf,
        /// Key size in bits: 2048, 3072 or 4096
        #[arg(long, default_value_t = 3072)]
        bits: usize,
    },
    /// Register the agent's public key with R4 (idempotent)
    #[command(
        after_help = "Example:\n  R4_API_KEY=rk_… R4_PRIVATE_KEY_FILE=agent.pem r4-exec register"
    )]
    Register,
    /// Replace the registered runtime key: re-wrap every vault key to the new key
    #[command(
        after_help = "Example:\n  r4-exec keygen --out new.pem && r4-exec rotate-key --new-key new.pem\n  # then point R4_PRIVATE_KEY_FILE / private_key_file at new.pem\n\nThe current key file is never modified. If interrupted, run it again."
    )]
    RotateKey {
        /// The new private key (create it with `r4-exec keygen`)
        #[arg(long, value_name = "FILE")]
        new_key: std::path::PathBuf,
    },
    /// Show the API key's identity, policy and registered runtime key
    #[command(after_help = "Example:\n  r4-exec whoami --json")]
    Whoami {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show the signer directories of the configured vaults and a [trust] block to pin them
    #[command(
        after_help = "Example:\n  r4-exec trust >> pins.txt   # review, then paste the [trust] block into r4.toml"
    )]
    Trust,
    /// Resolve and verify everything, print names and sources, never values
    #[command(after_help = "Example:\n  r4-exec check && echo ready")]
    Check {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}
