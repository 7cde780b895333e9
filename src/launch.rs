//! COMMAND as data (watchexec's supervisor `Command`): what to start and how
//! its secrets are delivered, known before any secret is. [`Launch::plan`]
//! turns it and a verified set into an [`ExecPlan`] — program, argv,
//! environment, memfds and whether the core limit comes back — which exec
//! mode hands to `execve(2)` and supervisor mode to fork+exec, both through
//! [`crate::exec::exec`], the one place a command is started. Where the
//! memfds live, and so which path COMMAND gets, is the caller's
//! [`FileHome`].

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::config::Delivery;
use crate::contract::Secret;
use crate::error::AppError;
use crate::exec::ExecPlan;
use crate::harden::Hardening;
use crate::holder::Holder;
use crate::inject::{self, EnvOptions, InjectError};
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
    /// The env files' plain values: the user's own configuration, so not
    /// filtered by `--pristine`, and applied like secrets of the lowest
    /// rank (a secret of the same name wins; `--no-override` lets an
    /// inherited value win over them).
    literals: Vec<(String, Secret)>,
}

/// Which process keeps the `[files]` memfds open: the path COMMAND is given
/// is `/proc/<that pid>/fd/<n>`, valid for as long as that process holds the
/// descriptor, for COMMAND and every same-user descendant, including those
/// that closed the descriptors they inherited.
pub enum FileHome<'a> {
    /// Exec mode: COMMAND itself. It inherits each memfd at r4-exec's
    /// descriptor number and keeps r4-exec's pid across `execve(2)`, and it
    /// is dumpable again once exec'd, so its own user may open the path.
    Command,
    /// Supervisor mode: the [`Holder`] process. COMMAND inherits no memfd;
    /// the path outlives restarts of COMMAND, and a changed value is swapped
    /// in by the holder.
    Holder(&'a mut Holder),
}

impl FileHome<'_> {
    /// Keeps `fd` (variable `name`) where this home says; returns the path
    /// and, for COMMAND, the descriptor it must inherit.
    fn place(
        &mut self,
        name: &str,
        fd: OwnedFd,
        own_pid: &mut Option<u32>,
    ) -> Result<(String, Option<OwnedFd>), AppError> {
        match self {
            FileHome::Command => {
                let pid = match own_pid {
                    Some(pid) => *pid,
                    None => *own_pid.insert(inject::proc_self_pid()?),
                };
                Ok((inject::fd_path(pid, fd.as_raw_fd()), Some(fd)))
            }
            FileHome::Holder(holder) => Ok((holder.put(name, fd)?, None)),
        }
    }
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
            literals: Vec::new(),
        }
    }

    /// Takes the sources into the starting environment: variables that held
    /// a reference leave it, env-file values join it as the lowest-ranked
    /// overrides ([`build_env`](inject::build_env) applies `--no-override`
    /// and `-v` names what it kept).
    pub fn adopt(&mut self, sources: &Sources) {
        self.base = sources.base_env(std::mem::take(&mut self.base));
        self.literals = sources
            .literals
            .iter()
            .map(|(n, v)| (n.clone(), Secret::new(v.as_bytes().to_vec())))
            .collect();
    }

    /// The plan for `secrets`: `[env]` values in the environment, each
    /// `[files]` value in a sealed, owner-read-only memfd kept by `home`,
    /// its path in the environment. With [`FileHome::Command`], the plan's
    /// `keep_fds` are in the order of the `[files]` secrets in `secrets`.
    pub fn plan(
        &self,
        secrets: &[ResolvedSecret],
        mut home: FileHome<'_>,
        ui: &Ui,
    ) -> Result<ExecPlan, AppError> {
        // Refused before any file is handed over: a holder must not swap in
        // files for a set that cannot start.
        if let Some(s) = secrets
            .iter()
            .find(|s| s.delivery == Delivery::Env && s.value.expose().contains(&0))
        {
            return Err(InjectError::NulInValue(s.name.clone()).into());
        }
        // Env-file values first: a later override of the same name wins.
        let mut env_secrets: Vec<(String, Secret)> = self.literals.clone();
        let mut files: Vec<(String, String)> = Vec::new();
        let mut keep_fds: Vec<OwnedFd> = Vec::new();
        let mut own_pid = None;
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
                    let fd = inject::sealed_memfd(&s.name, &s.value).map_err(|source| {
                        AppError::Deliver {
                            name: s.name.clone(),
                            source,
                        }
                    })?;
                    let (path, inherit) = home.place(&s.name, fd, &mut own_pid)?;
                    files.push((s.name.clone(), path));
                    keep_fds.extend(inherit);
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
