//! The command line as clap sees it, and nothing else: flags, their value
//! parsers and defaults (one constant each, shown in `--help` from that
//! constant). [`crate::invocation`] validates it into what the rest of the
//! program uses; nothing below `main` and `run` sees [`Cli`].

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod validate;
use nix::sys::signal::Signal;

use crate::invocation::OnChange;

/// `--timeout`: seconds for the whole run.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// `--watch-interval`: seconds between polls.
pub const DEFAULT_WATCH_INTERVAL_SECS: u64 = 30;
/// `--grace`: seconds between the stop signal and SIGKILL.
pub const DEFAULT_GRACE_SECS: u64 = 10;
/// `--stop-signal`.
pub const DEFAULT_STOP_SIGNAL: Signal = Signal::SIGTERM;
/// `keygen --out`: written in the current directory.
pub const DEFAULT_KEY_FILE: &str = "r4-agent.pem";
/// `keygen --bits`.
pub const DEFAULT_KEY_BITS: usize = 3072;

const EXAMPLES: &str = "\
Examples:
  r4-exec -- node server.js               run with the secrets of ./r4.toml
  r4-exec -c /etc/app/r4.toml -- /usr/bin/app
  r4-exec --watch --on-change signal:HUP -- sh -c 'exec nginx -c \"$NGINX_CONF\"'
                                          stay the parent; on a change, swap [files], HUP
  r4-exec keygen --out agent.pem          create the agent's RSA key (0600)
  r4-exec register                        register its public key with R4
  r4-exec whoami                          show the key's identity and policy
  r4-exec ls                              what this key can read, as references
  r4-exec init                            write a starter ./r4.toml from that
  r4-exec check                           resolve and verify, print no value
  r4-exec trust                           signer directories and a [trust] block

Docker: ENTRYPOINT [\"/r4-exec\",\"--\"]   Procfile: web: r4-exec -- node server.js";

fn after_help() -> String {
    format!("{EXAMPLES}\n\n{}", crate::exit::help_text())
}

/// Run a command with secrets from R4, verified and decrypted on this host.
#[derive(Debug, Parser)]
#[command(
    name = "r4-exec",
    version,
    after_help = after_help(),
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
    #[arg(long, global = true, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,

    /// Read NAME=value lines (dotenv syntax; values may be r4:// references); repeatable, later files win
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
}

/// Help heading of the flags that select supervisor mode.
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

    /// Run COMMAND (and the holder of its files) as USER[:GROUP], names or numbers; its files become USER's. Overrides [r4] user
    #[arg(long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// As PID 1 (a container), exec COMMAND so it becomes PID 1, instead of staying its init
    #[arg(long)]
    pub no_init: bool,

    /// Start COMMAND from an empty environment: only its secrets and the variables --preserve-env names
    #[arg(long)]
    pub pristine: bool,

    /// Inherited variables to pass on with --pristine (implies it): comma-separated NAMEs or PREFIX*
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub preserve_env: Vec<String>,

    /// Supervisor mode: stay the parent, poll R4 and restart COMMAND when a secret it uses changes
    #[arg(long, help_heading = SUPERVISOR)]
    pub watch: bool,

    /// Seconds between polls with --watch, ±10% jitter; fractions allowed
    #[arg(long, value_name = "SECS", requires = "watch", help_heading = SUPERVISOR,
          default_value_t = Secs::whole(DEFAULT_WATCH_INTERVAL_SECS))]
    pub watch_interval: Secs,

    /// Signal that asks COMMAND to stop, before a restart or on exit with --reap
    #[arg(long, value_name = "SIG", help_heading = SUPERVISOR,
          default_value_t = SignalArg(DEFAULT_STOP_SIGNAL))]
    pub stop_signal: SignalArg,

    /// Seconds COMMAND gets after the stop signal before SIGKILL; fractions allowed
    #[arg(long, value_name = "SECS", help_heading = SUPERVISOR,
          default_value_t = Secs::whole(DEFAULT_GRACE_SECS))]
    pub grace: Secs,

    /// With --watch: delay the first poll, and the first after a change, by a random 0..SECS (spreads a fleet's polls)
    #[arg(long, value_name = "SECS", requires = "watch", help_heading = SUPERVISOR)]
    pub watch_splay: Option<Secs>,

    /// With --watch, when a value changes: restart COMMAND, signal:SIG (swap in changed [files], send SIG), or exit[:CODE] (stop COMMAND, exit CODE, default 75)
    #[arg(long, value_name = "POLICY", requires = "watch", conflicts_with = "reload_signal",
          help_heading = SUPERVISOR)]
    pub on_change: Option<OnChangeArg>,

    /// With --watch: swap in changed [files] secrets (same path) and send SIG instead of restarting (--on-change signal:SIG)
    #[arg(long, value_name = "SIG", requires = "watch", help_heading = SUPERVISOR)]
    pub reload_signal: Option<SignalArg>,

    /// Forward signals to COMMAND's whole process group, not COMMAND alone
    #[arg(long, help_heading = SUPERVISOR)]
    pub signal_group: bool,

    /// Reap every orphaned process (child subreaper); implied in supervisor mode when r4-exec is PID 1
    #[arg(long, help_heading = SUPERVISOR)]
    pub reap: bool,

    /// COMMAND starts a daemon and exits (pg_ctl start, nginx with daemon on): stay, reaping, until the last descendant exits; file paths stay valid that long. Implies --reap
    #[arg(long, conflicts_with = "watch", help_heading = SUPERVISOR)]
    pub forking: bool,

    /// Replace secret values (and their base64 and percent-encoded forms) in COMMAND's stdout and stderr
    #[arg(long, help_heading = SUPERVISOR)]
    pub mask: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the agent's RSA private key (PKCS#8 PEM, mode 0600)
    #[command(after_help = "Example:\n  r4-exec keygen --out /run/secrets/r4-agent.pem")]
    Keygen {
        /// Where to write it (never overwritten)
        #[arg(long, short, value_name = "FILE", default_value = DEFAULT_KEY_FILE)]
        out: PathBuf,
        /// Key size in bits: 2048, 3072 or 4096
        #[arg(long, default_value_t = DEFAULT_KEY_BITS)]
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
        new_key: PathBuf,
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
    /// List the vaults, items and fields this key can read, verified; never a value
    #[command(
        after_help = "Each field line starts with its reference, ready for r4.toml. No value is ever\nprinted, not even of a field marked not secret.\n\nExamples:\n  r4-exec ls\n  r4-exec ls 'r4://Production Secrets/Production DB'\n  r4-exec ls --toml >> r4.toml   # [env] lines with suggested names"
    )]
    Ls {
        /// Only this vault, item or field: r4://<vault>[/<item>[/<field>]]
        #[arg(value_name = "REF")]
        reference: Option<String>,
        /// Print [env] lines with suggested variable names instead
        #[arg(long)]
        toml: bool,
    },
    /// Write a starter r4.toml from what this key can read (never overwrites)
    #[command(
        after_help = "Writes ./r4.toml (or --config FILE): [r4] settings without the API key, and an\n[env] line per readable field, or a [project] table with --project.\n\nExamples:\n  r4-exec init && r4-exec check\n  r4-exec init --project 'Demo Project'"
    )]
    Init {
        /// Fetch every field of this project (name or id) instead of listing fields
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
    },
    /// Copy this binary into DIR as DIR/r4-exec (mode 0555), for an init container
    #[command(
        after_help = "Copies the running binary and does nothing else: no shell, no configuration,\nno network. kubectl-r4 wrap's init container runs it to put r4-exec in a\nMemory emptyDir the app's container then runs it from (docs/kubernetes.md).\n\nExample:\n  r4-exec install /r4/"
    )]
    Install {
        /// The directory to copy into (it must exist)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Parses the process's command line. A word where COMMAND belongs without
/// `--` before it (`r4-exec node server.js`) is the commonest first
/// mistake, and clap's "unexpected argument" alone does not say the fix.
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse().map_err(hint_dash_dash)
}

/// Adds the `--` advice to clap's error for a stray word (not a flag).
pub fn hint_dash_dash(e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    if arg.starts_with('-') {
        return e;
    }
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap::Error::raw(
        ErrorKind::UnknownArgument,
        format!(
            "unexpected argument '{arg}' found; to run it as COMMAND, put -- before it: r4-exec [OPTIONS] -- {arg} [ARGS...]"
        ),
    )
    .format(&mut cmd)
}

/// A number of seconds, fractions allowed (`0.2`, `30`), up to a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl Secs {
    /// Whole seconds (for defaults).
    pub const fn whole(secs: u64) -> Secs {
        Secs(Duration::from_secs(secs))
    }
}

impl FromStr for Secs {
    type Err = String;

    fn from_str(s: &str) -> Result<Secs, String> {
        let secs: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not a number of seconds"))?;
        if !(0.0..=31_536_000.0).contains(&secs) {
            return Err(format!("{s}: seconds must be between 0 and one year"));
        }
        Ok(Secs(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// A signal given as `TERM`, `SIGTERM`, `term` or `15`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalArg(pub Signal);

impl FromStr for SignalArg {
    type Err = String;

    fn from_str(s: &str) -> Result<SignalArg, String> {
        let t = s.trim();
        let parsed = match t.parse::<i32>() {
            Ok(n) => Signal::try_from(n).ok(),
            Err(_) => {
                let up = t.to_ascii_uppercase();
                let full = if up.starts_with("SIG") {
                    up
                } else {
                    format!("SIG{up}")
                };
                Signal::from_str(&full).ok()
            }
        };
        parsed
            .map(SignalArg)
            .ok_or_else(|| format!("\"{s}\" is not a signal name (TERM, HUP, USR1, ...) or number"))
    }
}

/// `--on-change`: `restart`, `signal:SIG` or `exit[:CODE]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnChangeArg(pub OnChange);

impl FromStr for OnChangeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<OnChangeArg, String> {
        let (policy, arg) = match s.split_once(':') {
            Some((p, a)) => (p, Some(a)),
            None => (s, None),
        };
        let policy = match (policy, arg) {
            ("restart", None) => OnChange::Restart,
            ("signal", Some(sig)) => OnChange::Signal(sig.parse::<SignalArg>()?.0),
            ("exit", None) => OnChange::Exit(crate::exit::CHANGED),
            ("exit", Some(code)) => OnChange::Exit(
                code.parse()
                    .map_err(|_| format!("\"{code}\" is not an exit code (0 to 255)"))?,
            ),
            _ => {
                return Err(format!(
                    "\"{s}\" is not a policy: restart, signal:SIG or exit[:CODE]"
                ))
            }
        };
        Ok(OnChangeArg(policy))
    }
}

impl fmt::Display for SignalArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_start_matches("SIG"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_with_fractions() {
        let secs = |s: &str| s.parse::<Secs>().map(|s| s.0);
        assert_eq!(secs("30"), Ok(Duration::from_secs(30)));
        assert_eq!(secs("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(secs("0"), Ok(Duration::ZERO));
        for bad in ["", "-1", "x", "NaN", "inf", "1e12"] {
            assert!(secs(bad).is_err(), "{bad}");
        }
        assert_eq!(Secs::whole(30).to_string(), "30");
    }

    #[test]
    fn signal_names_and_numbers_parse() {
        let sig = |s: &str| s.parse::<SignalArg>().map(|s| s.0);
        for s in ["TERM", "SIGTERM", "term", "15", " sigterm "] {
            assert_eq!(sig(s), Ok(Signal::SIGTERM), "{s}");
        }
        assert_eq!(sig("hup"), Ok(Signal::SIGHUP));
        assert_eq!(sig("USR1"), Ok(Signal::SIGUSR1));
        for bad in ["", "NOPE", "0", "99", "SIG"] {
            assert!(sig(bad).is_err(), "{bad}");
        }
        assert_eq!(SignalArg(Signal::SIGTERM).to_string(), "TERM");
    }

    #[test]
    fn change_policies_parse() {
        let policy = |s: &str| s.parse::<OnChangeArg>().map(|p| p.0);
        assert_eq!(policy("restart"), Ok(OnChange::Restart));
        assert_eq!(policy("signal:HUP"), Ok(OnChange::Signal(Signal::SIGHUP)));
        assert_eq!(policy("signal:10"), Ok(OnChange::Signal(Signal::SIGUSR1)));
        assert_eq!(policy("exit"), Ok(OnChange::Exit(crate::exit::CHANGED)));
        assert_eq!(policy("exit:0"), Ok(OnChange::Exit(0)));
        assert_eq!(policy("exit:255"), Ok(OnChange::Exit(255)));
        for bad in [
            "",
            "reload",
            "signal",
            "signal:",
            "signal:NOPE",
            "exit:256",
            "exit:-1",
            "restart:1",
        ] {
            assert!(policy(bad).is_err(), "{bad}");
        }
    }
}
