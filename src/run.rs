//! What the binary does with a validated [`Invocation`]: every action goes
//! through [`Startup`] (hardening first); running COMMAND is exec mode or
//! supervisor mode; the subcommands are in [`crate::commands`]. `main` only
//! maps the result to an exit code.

use crate::commands;
use crate::error::AppError;
use crate::exec;
use crate::invocation::{Action, Invocation, Mode, RunOptions};
use crate::launch::{FileHome, Launch};
use crate::startup::Startup;
use crate::supervise;

/// Runs the invocation. Returns only on failure in exec mode.
pub fn run(inv: Invocation) -> Result<u8, AppError> {
    let Invocation { global, action } = inv;
    match action {
        Action::Run(opts) => run_command(global, opts),
        Action::Keygen { out, bits } => commands::keygen(&Startup::begin(global)?, &out, bits),
        Action::Register => commands::register(&Startup::begin(global)?),
        Action::Whoami { json } => commands::whoami(&Startup::begin(global)?, json),
        Action::Check { json } => commands::check(&Startup::begin(global)?, json),
        Action::Trust => commands::trust(&Startup::begin(global)?),
        Action::RotateKey { new_key } => commands::rotate_key(&Startup::begin(global)?, &new_key),
    }
}

/// Finds COMMAND first (a typo fails fast, before any secret is fetched),
/// then starts up and runs it in the chosen mode.
fn run_command(global: crate::invocation::GlobalOptions, opts: RunOptions) -> Result<u8, AppError> {
    let path = std::env::var_os("PATH");
    let program = exec::resolve_program(&opts.command[0], path.as_deref())?;
    let startup = Startup::begin(global)?;
    let launch = Launch {
        program,
        argv: opts.command,
        env: opts.env,
        restore: opts.core_for_child.then(|| startup.hardening()),
    };
    match opts.mode {
        Mode::Supervise(supervision) => supervise::run(&startup, launch, supervision),
        Mode::Exec => exec_mode(&startup, launch),
    }
}

/// Resolves once and becomes COMMAND.
fn exec_mode(startup: &Startup, launch: Launch) -> Result<u8, AppError> {
    let config = startup.require_config()?;
    let resolved = startup.block_on(async {
        let mut session = startup.session(config)?;
        session.resolve().await
    })?;
    startup.report(&resolved);
    let plan = launch.plan(&resolved.secrets, FileHome::Command, &startup.ui)?;
    drop(resolved);
    startup.ui.note(&format!("exec {}", plan.program.display()));
    startup.ui.timing("exec");
    Err(AppError::Exec(exec::exec(plan)))
}
