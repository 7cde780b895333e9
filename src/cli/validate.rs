//! The validation step: the clap structs ([`super::Cli`]) into a checked
//! [`Invocation`]. The only code outside `cli` that sees them is `main`.

use std::ffi::OsString;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Cli, Command, ExecArgs};
use crate::deliver::env::{EnvOptions, Inherit};
use crate::error::AppError;
use crate::invocation::Scope;
use crate::invocation::{
    Action, GlobalOptions, Invocation, Mode, OnChange, RunOptions, Supervision,
};

impl Invocation {
    /// Validates the command line.
    pub fn from_cli(cli: Cli) -> Result<Invocation, AppError> {
        let global = GlobalOptions {
            config: cli.global.config,
            verbose: cli.global.verbose,
            timeout: Duration::from_secs(cli.global.timeout),
            env_files: cli.global.env_file,
        };
        let action =
            match cli.subcommand {
                Some(_) if !cli.command.is_empty() => return Err(AppError::Usage(
                    "a subcommand takes no COMMAND after --; run `r4-exec -- COMMAND` separately"
                        .into(),
                )),
                Some(sub) => subcommand(sub)?,
                None => Action::Run(run_options(cli.exec, cli.command)?),
            };
        Ok(Invocation { global, action })
    }
}

fn subcommand(sub: Command) -> Result<Action, AppError> {
    Ok(match sub {
        Command::Keygen { out, bits } => Action::Keygen { out, bits },
        Command::Register => Action::Register,
        Command::RotateKey { new_key } => Action::RotateKey { new_key },
        Command::Whoami { json } => Action::Whoami { json },
        Command::Trust => Action::Trust,
        Command::Check { json } => Action::Check { json },
        Command::Ls { reference, toml } => Action::Ls {
            scope: match reference {
                Some(r) => Scope::parse(&r).map_err(AppError::Usage)?,
                None => Scope::default(),
            },
            toml,
        },
        Command::Init { project } => Action::Init { project },
        Command::Install { dir } => Action::Install { dir },
    })
}

fn run_options(args: ExecArgs, command: Vec<OsString>) -> Result<RunOptions, AppError> {
    if command.is_empty() {
        return Err(AppError::Usage(
            "no command: usage is r4-exec [OPTIONS] -- COMMAND [ARGS...] (see --help)".into(),
        ));
    }
    let supervised = args.watch || args.mask || args.reap || args.signal_group || args.forking;
    if supervised && args.no_init {
        return Err(AppError::Usage(
            "--no-init asks to exec COMMAND, and the supervisor flags to stay its parent; choose one".into(),
        ));
    }
    let mode = if supervised {
        Mode::Supervise(supervision(&args)?)
    } else {
        Mode::Exec {
            as_pid1: (!args.no_init).then(|| init(&args)),
        }
    };
    Ok(RunOptions {
        command,
        keep_r4_env: args.keep_r4_env,
        env: EnvOptions {
            no_override: args.no_override,
            inherit: inherit(&args)?,
        },
        core_for_child: !args.no_core_for_child,
        user: args.user.clone(),
        mode,
    })
}

/// `--pristine` and `--preserve-env` (which implies it): each name a valid
/// variable name, or one followed by `*` for a prefix.
fn inherit(args: &ExecArgs) -> Result<Inherit, AppError> {
    if !args.pristine && args.preserve_env.is_empty() {
        return Ok(Inherit::All);
    }
    for name in &args.preserve_env {
        let bare = name.strip_suffix('*').unwrap_or(name);
        let prefix_ok = name.ends_with('*') && bare.is_empty();
        if !prefix_ok && !crate::contract::envname::is_valid_env_name(bare) {
            return Err(AppError::Usage(format!(
                "--preserve-env: \"{name}\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*, or a prefix followed by *)"
            )));
        }
    }
    Ok(Inherit::Only(args.preserve_env.clone()))
}

fn supervision(args: &ExecArgs) -> Result<Supervision, AppError> {
    let interval = args.watch.then_some(args.watch_interval.0);
    if interval.is_some_and(|i| i.is_zero()) {
        return Err(AppError::Usage(
            "--watch-interval must be more than 0 seconds".into(),
        ));
    }
    let on_change = match (args.on_change, args.reload_signal) {
        (Some(policy), _) => policy.0,
        (None, Some(sig)) => OnChange::Signal(sig.0),
        (None, None) => OnChange::Restart,
    };
    if let OnChange::Signal(sig @ (Signal::SIGKILL | Signal::SIGSTOP)) = on_change {
        return Err(AppError::Usage(format!(
            "--reload-signal/--on-change signal:{sig} cannot be handled by COMMAND; use a signal it can catch (HUP, USR1, ...)"
        )));
    }
    Ok(Supervision {
        interval,
        splay: args.watch_splay.map_or(Duration::ZERO, |s| s.0),
        on_change,
        stop: args.stop_signal.0,
        grace: args.grace.0,
        group: args.signal_group,
        reap: args.reap || args.forking,
        forking: args.forking,
        mask: args.mask,
    })
}

/// What r4-exec does as PID 1 without a supervisor flag: tini's job —
/// forward signals, reap orphans, exit with COMMAND's status — with the
/// stop signal and grace period given (used when COMMAND exits and its
/// group lingers).
fn init(args: &ExecArgs) -> Supervision {
    Supervision {
        interval: None,
        splay: Duration::ZERO,
        on_change: OnChange::Restart,
        stop: args.stop_signal.0,
        grace: args.grace.0,
        group: false,
        reap: true,
        forking: false,
        mask: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Invocation, AppError> {
        let cli = Cli::try_parse_from(std::iter::once("r4-exec").chain(args.iter().copied()))
            .map_err(|e| AppError::Usage(e.to_string()))?;
        Invocation::from_cli(cli)
    }

    #[test]
    fn plain_command_is_exec_mode() {
        let inv = parse(&["--", "true"]).unwrap();
        let Action::Run(run) = inv.action else {
            panic!("not a run")
        };
        assert!(matches!(run.mode, Mode::Exec { as_pid1: Some(_) }));
        assert!(run.core_for_child);
        assert_eq!(inv.global.timeout, Duration::from_secs(30));
    }

    #[test]
    fn supervisor_flags_select_supervisor_mode_with_defaults() {
        for flag in ["--watch", "--mask", "--reap", "--signal-group", "--forking"] {
            let inv = parse(&[flag, "--", "true"]).unwrap();
            let Action::Run(RunOptions {
                mode: Mode::Supervise(s),
                ..
            }) = inv.action
            else {
                panic!("{flag}: not supervised")
            };
            assert_eq!(s.stop, Signal::SIGTERM);
            assert_eq!(s.grace, Duration::from_secs(10));
            let expected = (flag == "--watch").then_some(Duration::from_secs(30));
            assert_eq!(s.interval, expected, "{flag}");
        }
    }

    #[test]
    fn invalid_combinations_are_usage_errors() {
        for args in [
            &["check", "--", "true"][..],
            &[][..],
            &["--watch", "--watch-interval", "0", "--", "true"][..],
            &["--watch", "--reload-signal", "KILL", "--", "true"][..],
            &["--watch-interval", "5", "--", "true"][..],
        ] {
            assert!(matches!(parse(args), Err(AppError::Usage(_))), "{args:?}");
        }
    }
}
