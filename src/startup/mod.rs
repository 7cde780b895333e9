//! The one start-up path under every action that touches a credential or a
//! secret — exec mode, supervisor mode and its refreshes, `check`, `trust`,
//! `rotate-key`, `register`, `whoami` — in this order:
//!
//! 1. [`Startup::begin`]: harden the process (non-dumpable, no core file)
//!    before the API key or any private key is read;
//! 2. load settings and `r4.toml`;
//! 3. build the client and the resolve options;
//! 4. [`Session::resolve`]: fetch, with the private key parsed on a blocking
//!    thread while the request is in flight, then verify and decrypt with
//!    the session's version floor (a rollback across polls fails); keep
//!    the answer in the fallback copy, or, when R4 cannot be reached, verify
//!    and use that copy instead (`docs/fallback.md`).

pub mod settings;
pub mod sources;

mod session;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::client::{Client, ClientOptions};
use crate::config::{Config, ConfigError, FetchPlan};
use crate::error::AppError;
use crate::harden::{self, Hardening};
use crate::invocation::GlobalOptions;
use crate::resolve::{ResolveOptions, Resolved};
use crate::ui::Ui;
use crate::wipe;

pub use session::Session;
use sources::Sources;

/// Longest deadline of a single request; `--timeout` bounds the whole run.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Part of `--timeout` kept from the live attempt, when a fallback copy is
/// configured, for reading and verifying the copy (at most half of it).
const FALLBACK_RESERVE: Duration = Duration::from_secs(2);

/// What to do when there is no `./r4.toml` and no `--config`/`R4_CONFIG`.
const NO_CONFIG_HINT: &str = "write one with `r4-exec init` (or start from r4.toml.example), or pass --config FILE or set R4_CONFIG";

/// A hardened process with its global options.
#[derive(Debug)]
pub struct Startup {
    /// Progress and warnings.
    pub ui: Ui,
    /// `--config`, `-v`, `--timeout`.
    pub global: GlobalOptions,
    hardening: Hardening,
    /// `--keep-r4-env`: leave `R4_API_KEY` in the environment block.
    keep_env_credentials: bool,
}

impl Startup {
    /// Hardens the process first, then keeps the options.
    pub fn begin(global: GlobalOptions) -> Result<Startup, AppError> {
        let hardening = harden::harden()?;
        Ok(Startup {
            ui: Ui::new(global.verbose),
            global,
            hardening,
            keep_env_credentials: false,
        })
    }

    /// `--keep-r4-env`: COMMAND is given `R4_API_KEY`, so r4-exec must not
    /// wipe it from its environment.
    pub fn keep_env_credentials(&mut self) {
        self.keep_env_credentials = true;
    }

    /// What hardening changed, so COMMAND can get its limits back.
    pub fn hardening(&self) -> Hardening {
        self.hardening
    }

    /// Loads `r4.toml`. A missing default `./r4.toml` is fine when not
    /// `required` (subcommands that only need credentials).
    pub fn load_config(&self, required: bool) -> Result<Option<Config>, AppError> {
        let (path, explicit) = settings::config_path(self.global.config.as_deref());
        if !explicit && !required && !path.exists() {
            return Ok(None);
        }
        let config = Config::load(&path, required).map_err(|e| match e {
            // Only a missing default file is a question of where to look;
            // a problem inside a file that was found is that file's.
            ConfigError::Read { ref source, .. }
                if !explicit && source.kind() == std::io::ErrorKind::NotFound =>
            {
                AppError::from(e).with_hint(NO_CONFIG_HINT)
            }
            e => e.into(),
        })?;
        self.ui.timing("configuration loaded");
        Ok(Some(config))
    }

    /// Every source of references (`crate::startup::sources`): `r4.toml` when there
    /// is one, the `--env-file`s, the inherited environment. Something must
    /// be there to resolve.
    pub fn sources(&self) -> Result<Sources, AppError> {
        let config = self.load_config(false)?;
        let found = config.as_ref().map(|c| c.path.clone());
        // The one read of the process environment for COMMAND and for
        // references; `R4_API_KEY` leaves it here unless `--keep-r4-env`.
        let environment: Vec<_> = std::env::vars_os().collect();
        let keep_own = self.keep_env_credentials;
        let sources = sources::gather(config, &self.global.env_files, environment, keep_own)?;
        if sources.is_empty() {
            return Err(AppError::Usage(match found {
                Some(path) => format!(
                    "{}: nothing to fetch: add [env], [files] or [project] (or set a variable to an r4:// reference)",
                    path.display()
                ),
                None => "nothing to resolve: no ./r4.toml, and no variable or --env-file line holds an r4:// reference; write one with `r4-exec init` (or start from r4.toml.example), or pass --config FILE".into(),
            }));
        }
        for (name, origin) in &sources.origins {
            self.ui.note(&format!("{name}: reference from {origin}"));
        }
        Ok(sources)
    }

    /// `r4.toml`, for actions that read only its settings and entries
    /// (`trust`): the same sources as a run.
    pub fn require_config(&self) -> Result<Config, AppError> {
        Ok(self.sources()?.config)
    }

    /// A client for the configured server, with the API key from settings.
    pub fn client(&self, config: Option<&Config>) -> Result<Client, AppError> {
        let conn = settings::connection(config)?;
        for w in &conn.warnings {
            self.ui.warn(w);
        }
        let mut opts = ClientOptions::new(conn.base_url, conn.api_key);
        opts.ca_pem = conn.ca_pem;
        opts.timeout = self
            .global
            .timeout
            .min(MAX_REQUEST_TIMEOUT)
            .max(Duration::from_secs(1));
        opts.progress = self.ui.progress();
        Ok(Client::new(opts)?)
    }

    /// The agent's two credentials: the private key's path and a client
    /// holding the API key. When both are missing (a first run), both are
    /// reported at once rather than one per attempt.
    pub fn agent(&self, config: Option<&Config>) -> Result<(PathBuf, Client), AppError> {
        match (settings::private_key_path(config), self.client(config)) {
            (Ok(path), Ok(client)) => Ok((path, client)),
            (Err(key), Err(api)) => Err(AppError::Several(vec![key, api])),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        }
    }

    /// Prints a resolution's warnings and notes.
    pub fn report(&self, resolved: &Resolved) {
        for w in &resolved.warnings {
            self.ui.warn(w);
        }
        for n in &resolved.notes {
            self.ui.note(n);
        }
    }

    /// Wipes `R4_API_KEY` from r4-exec's environment block (and removes it
    /// from its environment) once the client holds its own copy: nothing
    /// reads it there again, and `/proc/PID/environ` would show it for the
    /// life of the process (a supervisor lives as long as COMMAND). Not with
    /// `--keep-r4-env`. See `crate::wipe`.
    fn forget_env_credentials(&self) {
        if self.keep_env_credentials {
            return;
        }
        // SAFETY: r4-exec has one thread here: the runtime is current-thread
        // and the private key's loading thread, the verification threads,
        // the masking threads and COMMAND all come later, so nothing reads
        // the environment meanwhile.
        let forgotten = unsafe { wipe::forget_env(wipe::CREDENTIAL_VARS) };
        let names = wipe::CREDENTIAL_VARS.join(", ");
        if !forgotten.block_found {
            self.ui.note(&format!("cannot locate the environment block (/proc/self/stat): {names} removed from the environment, but /proc/PID/environ (root only) still shows it"));
        } else if forgotten.wiped > 0 {
            self.ui
                .note(&format!("wiped {names} from the environment block"));
        }
    }

    /// A current-thread runtime for the network part of an action.
    pub fn runtime(&self) -> Result<tokio::runtime::Runtime, AppError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AppError::system("cannot start the async runtime"))
    }

    /// Runs `fut` on a fresh runtime under `--timeout`; the runtime and its
    /// connections are gone when this returns.
    pub fn block_on<T>(
        &self,
        fut: impl Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let deadline = self.global.timeout;
        self.runtime()?.block_on(async {
            tokio::time::timeout(deadline, fut)
                .await
                .unwrap_or(Err(AppError::Deadline(deadline)))
        })
    }

    /// Everything needed to resolve `config`, repeatedly. Must be called
    /// inside a runtime: the private key starts loading at once.
    pub fn session(&self, config: Config) -> Result<Session, AppError> {
        if config.r4.plan == FetchPlan::Referenced && config.project.is_some() {
            return Err(AppError::Usage(format!(
                "{}: plan = \"referenced\" fetches explicit references only; [project] needs every item of its vaults (plan = \"auto\" or \"sync\")",
                config.path.display()
            )));
        }
        let fallback = settings::fallback(Some(&config))?;
        let (key_path, client) = self.agent(Some(&config))?;
        self.forget_env_credentials();
        let opts = ResolveOptions {
            allow_legacy: config.r4.allow_legacy,
            allow_unencrypted: config.r4.allow_unencrypted,
            trust: settings::trust(&config)?,
        };
        let timeout = self.global.timeout;
        let live_budget = timeout.saturating_sub(FALLBACK_RESERVE.min(timeout / 2));
        Ok(Session::new(
            client,
            config,
            opts,
            key_path,
            self.ui.clone(),
            fallback,
            live_budget,
        ))
    }
}
