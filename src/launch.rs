//! COMMAND as data (watchexec's supervisor `Command`): what to start and how
//! its secrets are delivered, known before any secret is. [`Launch::plan`]
//! turns it and a verified set into an [`ExecPlan`] — program, argv,
//! environment, memfds and whether the core limit comes back — which exec
//! mode hands to `execve(2)` and supervisor mode to fork+exec, both through
//! [`crate::exec::exec`], the one place a command is started.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::config::Delivery;
use crate::contract::Secret;
use crate::error::AppError;
use crate::exec::ExecPlan;
use crate::harden::Hardening;
use crate::inject::{self, EnvOptions, Sealing};
use crate::resolve::ResolvedSecret;
use crate::sources::Sources;
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
    /// [`Launch::adopt`]). r4-exec's own variables are left out unless
    /// `--keep-r4-env`, so this copy never holds the API key.
    base: Vec<(OsString, OsString)>,
}

impl Launch {
    /// A launch that starts from the inherited environment.
    pub fn new(
        program: PathBuf,
        argv: Vec<OsString>,
        env: EnvOptions,
        restore: Option<Hardening>,
    ) -> Launch {
        let base = std::env::vars_os()
            .filter(|(n, _)| env.keep_r4_env || !crate::vars::is_own(n.as_encoded_bytes()))
            .collect();
        Launch {
            program,
            argv,
            env,
            restore,
            base,
        }
    }

    /// Takes the sources into the starting environment: variables that held
    /// a reference leave it, env-file values join it (`--no-override` keeps
    /// an inherited value over them; `-v` names each).
    pub fn adopt(&mut self, sources: &Sources, ui: &Ui) {
        let (base, kept) = sources.base_env(std::mem::take(&mut self.base), self.env.no_override);
        self.base = base;
        for name in kept {
            ui.note(&format!(
                "{name}: kept the inherited value over the env file's (--no-override)"
            ));
        }
    }

    /// The plan for `secrets`: `[env]` values in the environment, each
    /// `[files]` value in a memfd made as `sealing` says, its path in the
    /// environment. The plan's `keep_fds` are in the order of the `[files]`
    /// secrets in `secrets`.
    pub fn plan(
        &self,
        secrets: &[ResolvedSecret],
        sealing: Sealing,
        ui: &Ui,
    ) -> Result<ExecPlan, AppError> {
        let mut env_secrets: Vec<(String, Secret)> = Vec::new();
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
                    let fd = inject::memfd(&s.name, &s.value, sealing).map_err(|source| {
                        AppError::Deliver {
                            name: s.name.clone(),
                            source,
                        }
                    })?;
                    files.push((s.name.clone(), inject::memfd_path(fd.as_raw_fd())));
                    keep_fds.push(fd);
                }
            }
        }
        let envp = inject::build_env(self.base.iter().cloned(), &env_secrets, &files, &self.env)?;
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
