//! COMMAND as data (watchexec's supervisor `Command`): what to start and how
//! its secrets are delivered, known before any secret is. [`Launch::prepare`]
//! turns it and a verified set into an [`ExecPlan`] — program, argv,
//! environment, memfds and whether the core limit comes back — which exec
//! mode hands to `execve(2)` and supervisor mode to fork+exec, both through
//! [`crate::deliver::exec::exec`], the one place a command is started. Where
//! the memfds live, and so which path COMMAND gets, is the caller's
//! [`FileHome`].

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::config::Delivery;
use crate::contract::Secret;
use crate::deliver::env::{self, EnvOptions};
use crate::deliver::exec::ExecPlan;
use crate::deliver::FileHome;
use crate::error::AppError;
use crate::harden::Hardening;
use crate::resolve::ResolvedSecret;
use crate::ui::Ui;

/// What to start, and how.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The program, found in `PATH` before any secret was fetched.
    pub program: PathBuf,
    /// COMMAND as given: `argv[0]` and its arguments.
    pub argv: Vec<OsString>,
    /// How the inherited environment is treated.
    pub env: EnvOptions,
    /// The core-file limit to give back to COMMAND (`None`:
    /// `--no-core-for-child`).
    pub restore: Option<Hardening>,
    /// COMMAND's starting environment, before secrets (see
    /// [`Launch::adopt`]).
    base: Vec<(OsString, OsString)>,
    /// The env files' plain values: the user's own configuration, so not
    /// filtered by `--pristine`, and applied like secrets of the lowest
    /// rank (a secret of the same name wins; `--no-override` lets an
    /// inherited value win over them).
    literals: Vec<(String, Secret)>,
}

impl Launch {
    /// A launch with an empty environment until [`Launch::adopt`].
    pub fn new(
        program: PathBuf,
        argv: Vec<OsString>,
        env: EnvOptions,
        restore: Option<Hardening>,
    ) -> Launch {
        Launch {
            program,
            argv,
            env,
            restore,
            base: Vec::new(),
            literals: Vec::new(),
        }
    }

    /// Takes COMMAND's starting environment from the sources: `inherited`,
    /// the process environment without the variables that held a reference
    /// (and r4-exec's own), and the env files' plain values as the
    /// lowest-ranked overrides ([`build_env`](env::build_env) applies
    /// `--no-override` and `-v` names what it kept).
    pub fn adopt(&mut self, inherited: Vec<(OsString, OsString)>, literals: &[(String, String)]) {
        self.base = inherited;
        self.literals = literals
            .iter()
            .map(|(n, v)| (n.clone(), Secret::new(v.as_bytes().to_vec())))
            .collect();
    }

    /// The exec plan for `secrets`: `[env]` values in the environment, each
    /// `[files]` value in a sealed, owner-read-only memfd kept by `home`,
    /// its path in the environment. With [`FileHome::Command`], the plan's
    /// `keep_fds` are in the order of the `[files]` secrets in `secrets`.
    pub fn prepare(
        &self,
        secrets: &[ResolvedSecret],
        mut home: FileHome<'_>,
        ui: &Ui,
    ) -> Result<ExecPlan, AppError> {
        // Refused before any file is handed over: a holder must not swap in
        // files for a set that cannot start.
        for s in secrets.iter().filter(|s| s.delivery == Delivery::Env) {
            env::check_variable(&s.name, s.value.expose())?;
        }
        // Env-file values first: a later override of the same name wins.
        let mut env_secrets: Vec<(String, Secret)> = self.literals.clone();
        let mut files: Vec<(String, String)> = Vec::new();
        let mut keep_fds: Vec<OwnedFd> = Vec::new();
        for s in secrets {
            ui.note(&format!(
                "{} <- {} ({} bytes)",
                s.name,
                s.reference,
                s.value.len()
            ));
            match s.delivery {
                Delivery::Env => env_secrets.push((s.name.clone(), s.value.clone())),
                Delivery::File => {
                    let placed = home
                        .put(&s.name, &s.value)
                        .map_err(|e| AppError::file(&s.name, e))?;
                    files.push((s.name.clone(), placed.path));
                    keep_fds.extend(placed.inherit);
                }
            }
        }
        let envp = env::build_env(self.base.iter().cloned(), &env_secrets, &files, &self.env)?;
        for name in envp.not_overridden() {
            ui.note(&format!("{name}: kept the inherited value (--no-override)"));
        }
        Ok(ExecPlan::new(
            self.program.clone(),
            &self.argv,
            envp,
            keep_fds,
            self.restore,
        )?)
    }
}
