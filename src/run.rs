//! What the binary does with a validated [`Invocation`]: every action goes
//! through [`Startup`] (hardening first); running COMMAND is exec mode or
//! supervisor mode; the subcommands are in [`crate::commands`]. `main` only
//! maps the result to an exit code.

use crate::commands;
use crate::deliver::exec;
use crate::deliver::FileHome;
use crate::error::AppError;
use crate::invocation::{Action, Invocation, Mode, RunOptions};
use crate::launch::Launch;
use crate::startup::Startup;
use crate::supervise;

/// Runs the invocation. Returns only on failure in exec mode.
pub fn run(inv: Invocation) -> Result<u8, AppError> {
    let Invocation { global, action } = inv;
    match action {
        Action::Run(opts) => run_command(global, opts),
        Action::Keygen { out, bits } => {
            commands::identity::keygen(&Startup::begin(global)?, &out, bits)
        }
        Action::Register => commands::identity::register(&Startup::begin(global)?),
        Action::Whoami { json } => commands::identity::whoami(&Startup::begin(global)?, json),
        Action::Check { json } => commands::check::run(&Startup::begin(global)?, json),
        Action::Trust => commands::trust::run(&Startup::begin(global)?),
        Action::RotateKey { new_key } => {
            commands::rotate_key::run(&Startup::begin(global)?, &new_key)
        }
        Action::Ls { scope, toml } => commands::ls::run(&Startup::begin(global)?, &scope, toml),
        Action::Init { project } => {
            commands::init::run(&Startup::begin(global)?, project.as_deref())
        }
        Action::Install { dir } => commands::install::run(&Startup::begin(global)?, &dir),
    }
}

/// Finds COMMAND first (a typo fails fast, before any secret is fetched),
/// then starts up and runs it in the chosen mode.
fn run_command(global: crate::invocation::GlobalOptions, opts: RunOptions) -> Result<u8, AppError> {
    let path = std::env::var_os("PATH");
    let program = exec::resolve_program(&opts.command[0], path.as_deref())?;
    let mut startup = Startup::begin(global)?;
    if opts.keep_r4_env {
        startup.keep_env_credentials();
    }
    let mut launch = Launch::new(
        program,
        opts.command,
        opts.env,
        opts.core_for_child.then(|| startup.hardening()),
    );
    launch.user_flag = opts.user;
    match opts.mode {
        Mode::Supervise(supervision) => supervise::run(&startup, launch, supervision),
        Mode::Exec {
            as_pid1: Some(init),
        } if std::process::id() == 1 => {
            startup
                .ui
                .note("PID 1: staying COMMAND's init (signals forwarded, orphans reaped; --no-init to exec)");
            supervise::run(&startup, launch, init)
        }
        Mode::Exec { .. } => exec_mode(&startup, launch),
    }
}

/// Resolves once and becomes COMMAND.
fn exec_mode(startup: &Startup, mut launch: Launch) -> Result<u8, AppError> {
    let sources = startup.sources()?;
    launch.adopt(sources.inherited, &sources.literals);
    launch.adopt_users(&sources.config)?;
    let resolved = startup.block_on(async {
        let mut session = startup.session(sources.config)?;
        session.resolve().await
    })?;
    startup.report(&resolved);
    let plan = launch.prepare(&resolved.secrets, FileHome::Command, &startup.ui)?;
    drop(resolved);
    startup.ui.note(&format!("exec {}", plan.program.display()));
    startup.ui.timing("exec");
    Err(AppError::Exec(exec::exec(plan)))
}
