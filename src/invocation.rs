//! The second stage of the command line (ripgrep's `lowargs` → `hiargs`),
//! as plain data: the mode, the command, the environment options.
//! `Invocation::from_cli` (in `cli/validate.rs`, the one place that reads
//! the clap structs) checks what clap cannot and builds it. Everything below
//! `run` takes these values, never the command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::deliver::env::EnvOptions;
use crate::reference::{unescape_segment, ReferenceError, SCHEME};

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
    /// `install`.
    Install {
        /// Where the copy goes.
        dir: PathBuf,
    },
}

/// How to run COMMAND.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// COMMAND and its arguments; never empty.
    pub command: Vec<OsString>,
    /// `--keep-r4-env`: COMMAND inherits r4-exec's own variables, the API
    /// key among them.
    pub keep_r4_env: bool,
    /// How the inherited environment is treated.
    pub env: EnvOptions,
    /// Restore the core-file limit for COMMAND (not `--no-core-for-child`).
    pub core_for_child: bool,
    /// `--user USER[:GROUP]`, as written (resolved with `[r4] user` once the
    /// configuration is read: [`crate::launch::Launch::adopt_users`]).
    pub user: Option<String>,
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

/// What `--watch` does when a value COMMAND uses changes (`--on-change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Stop COMMAND and start it again with the new values (the default).
    Restart,
    /// When only `[files]` values changed, swap each in and send this
    /// signal; a changed environment value restarts (`--reload-signal`).
    Signal(Signal),
    /// Stop COMMAND and exit with this code, so that the orchestrator
    /// (Kubernetes, Nomad, systemd) replaces the whole unit, rolling it by
    /// its own rules, instead of r4-exec restarting COMMAND in place.
    Exit(u8),
}

/// Supervisor mode's options, checked.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// `--watch`: the poll interval.
    pub interval: Option<Duration>,
    /// `--watch-splay`: the first poll, and the first after a change, waits
    /// a further uniform random time in this window (zero: none).
    pub splay: Duration,
    /// `--on-change` (or `--reload-signal`).
    pub on_change: OnChange,
    /// `--stop-signal`.
    pub stop: Signal,
    /// `--grace`.
    pub grace: Duration,
    /// `--signal-group`.
    pub group: bool,
    /// `--reap`.
    pub reap: bool,
    /// `--forking`: COMMAND is a launcher; r4-exec stays while what it
    /// started runs.
    pub forking: bool,
    /// `--mask`.
    pub mask: bool,
}

/// What `ls` lists: everything, or one vault, item or field, each segment
/// an id or a name matched as in a reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Vault segment.
    pub vault: Option<String>,
    /// Item segment (only with a vault).
    pub item: Option<String>,
    /// Field segment (only with an item).
    pub field: Option<String>,
}

impl Scope {
    /// Parses `r4://<vault>[/<item>[/<field>]]` (a trailing `/` is ignored),
    /// with the escapes of a full reference.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let bad = |why: String| format!("\"{text}\": {why}; expected r4://<vault>[/<item>]");
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("does not start with r4://".into()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let raw: Vec<&str> = rest.split('/').collect();
        if raw.len() > 3 {
            return Err(bad(format!("{} segments, at most 3", raw.len())));
        }
        let mut segs = Vec::new();
        for (i, seg) in raw.iter().enumerate() {
            if seg.is_empty() {
                return Err(bad(ReferenceError::Empty(i + 1).to_string()));
            }
            segs.push(
                unescape_segment(seg)
                    .ok_or_else(|| bad(ReferenceError::Escape(i + 1).to_string()))?,
            );
        }
        let mut segs = segs.into_iter();
        Ok(Scope {
            vault: segs.next(),
            item: segs.next(),
            field: segs.next(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_like_references() {
        let s = Scope::parse("r4://Production Secrets/CI%2FCD").unwrap();
        assert_eq!(s.vault.as_deref(), Some("Production Secrets"));
        assert_eq!(s.item.as_deref(), Some("CI/CD"));
        assert_eq!(s.field, None);
        assert_eq!(Scope::parse("r4://V/").unwrap().item, None);
        assert_eq!(
            Scope::parse("r4://V/I/F").unwrap().field.as_deref(),
            Some("F")
        );
        for (bad, why) in [
            ("V/I", "does not start with r4://"),
            ("r4://", "segment 1 of the reference is empty"),
            ("r4://V//F", "segment 2 of the reference is empty"),
            ("r4://V/I/F/G", "4 segments, at most 3"),
            ("r4://V%20", "bad escape in segment 1"),
        ] {
            let e = Scope::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
