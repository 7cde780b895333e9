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

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::client::{Client, ClientError, ClientOptions};
use crate::config::{Config, ConfigError, Plan};
use crate::contract::checkpoint::VersionFloor;
use crate::contract::crypto::PrivateKey;
use crate::error::AppError;
use crate::fallback::{self, FallbackError, Stored};
use crate::harden::{self, Hardening};
use crate::invocation::GlobalOptions;
use crate::resolve::{self, Failure, Fetched, Problem, ResolveOptions, Resolved};
use crate::settings;
use crate::sources::{self, Sources};
use crate::ui::Ui;
use crate::wipe;

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

    /// Every source of references (`crate::sources`): `r4.toml` when there
    /// is one, the `--env-file`s, the inherited environment. Something must
    /// be there to resolve.
    pub fn sources(&self) -> Result<Sources, AppError> {
        let config = self.load_config(false)?;
        let found = config.as_ref().map(|c| c.path.clone());
        let inherited: Vec<_> = std::env::vars_os().collect();
        let sources = sources::gather(config, &self.global.env_files, &inherited)?;
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
        if config.r4.plan == Plan::Referenced && config.project.is_some() {
            return Err(AppError::Usage(format!(
                "{}: plan = \"referenced\" fetches explicit references only; [project] needs every item of its vaults (plan = \"auto\" or \"sync\")",
                config.path.display()
            )));
        }
        let fallback = settings::fallback(Some(&config))?;
        let (key_path, client) = self.agent(Some(&config))?;
        self.forget_env_credentials();
        let key = KeySlot::Loading(tokio::task::spawn_blocking(move || {
            settings::load_private_key(key_path)
        }));
        let opts = ResolveOptions {
            allow_legacy: config.r4.allow_legacy,
            allow_unencrypted: config.r4.allow_unencrypted,
            trust: settings::trust(&config)?,
        };
        let timeout = self.global.timeout;
        Ok(Session {
            client,
            config,
            opts,
            key,
            floor: VersionFloor::default(),
            ui: self.ui.clone(),
            fallback,
            live_budget: timeout.saturating_sub(FALLBACK_RESERVE.min(timeout / 2)),
            kept: None,
        })
    }
}

/// The agent's private key, loading or loaded.
enum KeySlot {
    Loading(JoinHandle<Result<PrivateKey, AppError>>),
    Ready(PrivateKey),
}

/// A configuration, a client, the private key and the version floor: what
/// every resolution of a run shares.
pub struct Session {
    client: Client,
    config: Config,
    opts: ResolveOptions,
    key: KeySlot,
    floor: VersionFloor,
    ui: Ui,
    /// Where the fallback copy is kept, when configured.
    fallback: Option<fallback::Settings>,
    /// How long a start may wait for R4 before it turns to the copy.
    live_budget: Duration,
    /// What this session last wrote to the copy.
    kept: Option<Kept>,
}

/// An answer as stored in the fallback copy: ciphertext only.
struct Kept {
    body: Vec<u8>,
    versions: std::collections::BTreeMap<String, u64>,
    at_ms: u64,
}

impl Session {
    /// The client (the watcher's delta polls).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Fetches and verifies everything the configuration asks for, and
    /// keeps the answer in the fallback copy when one is configured. When
    /// R4 cannot be reached — and only then ([`resolve::is_outage`]), never
    /// after a verification failure or a 401, 403 or 404 — the copy is
    /// verified exactly like a live answer and used instead, with a warning.
    pub async fn resolve(&mut self) -> Result<Resolved, AppError> {
        self.resolve_with(self.fallback.is_some()).await
    }

    /// [`Session::resolve`] from R4 only: the supervisor's polls (a failed
    /// poll leaves COMMAND as it is; a successful one replaces whatever the
    /// copy gave) and `check`, which checks the server.
    pub async fn resolve_live(&mut self) -> Result<Resolved, AppError> {
        self.resolve_with(false).await
    }

    async fn resolve_with(&mut self, may_fall_back: bool) -> Result<Resolved, AppError> {
        self.ui
            .note(&format!("resolving from {}", self.client.base_url()));
        let fetched = self.fetch(may_fall_back).await?;
        let received_ms = fallback::now_ms();
        match fetched {
            Ok(fetched) => self.verify_live(&fetched, received_ms).await,
            Err(live) if may_fall_back && resolve::is_outage(&live) => {
                self.resolve_copy(live).await
            }
            Err(live) => Err(AppError::Resolve(live)),
        }
    }

    /// The answer, and the private key. The first call overlaps the request
    /// with parsing the key (~1 ms): a key that fails to load is reported as
    /// soon as it fails, and wins over a network error, as if it had been
    /// read first. `bounded`: give up on R4 after the live budget.
    async fn fetch(&mut self, bounded: bool) -> Result<Result<Fetched, Vec<Problem>>, AppError> {
        let budget = bounded.then_some(self.live_budget);
        let fetch = fetch_within(&self.client, &self.config, budget);
        let fetched = match &mut self.key {
            KeySlot::Ready(_) => fetch.await,
            KeySlot::Loading(task) => {
                tokio::pin!(fetch);
                let (key, fetched) = tokio::select! {
                    key = &mut *task => {
                        let key = joined(key)?;
                        self.ui.timing("private key loaded");
                        (key, fetch.await)
                    }
                    fetched = &mut fetch => {
                        self.ui.timing("answer received and parsed");
                        (joined(task.await)?, fetched)
                    }
                };
                self.key = KeySlot::Ready(key);
                fetched
            }
        };
        self.ui.timing("answer and private key ready");
        Ok(fetched)
    }

    /// The loaded private key.
    fn key(&self) -> &PrivateKey {
        let KeySlot::Ready(key) = &self.key else {
            unreachable!("the key is loaded by the first fetch")
        };
        key
    }

    /// Verifies and decrypts `fetched`, live or from the copy alike.
    async fn verify(&mut self, fetched: &Fetched) -> Result<Resolved, Vec<Problem>> {
        let KeySlot::Ready(key) = &self.key else {
            unreachable!("the key is loaded by the first fetch")
        };
        let floor = Some(&mut self.floor);
        resolve::verify(&self.client, fetched, key, &self.config, &self.opts, floor).await
    }

    /// A live answer: verified, then kept.
    async fn verify_live(
        &mut self,
        fetched: &Fetched,
        received_ms: u64,
    ) -> Result<Resolved, AppError> {
        let mut resolved = self.verify(fetched).await.map_err(AppError::Resolve)?;
        self.ui.timing("verified and decrypted");
        if let Some(warning) = self.keep(fetched, &resolved, received_ms) {
            resolved.warnings.push(warning);
        }
        Ok(resolved)
    }

    /// Stores a verified live answer in the fallback copy, if configured;
    /// a warning when it was not stored. Never fails the run: the copy is
    /// for the next start.
    fn keep(&mut self, fetched: &Fetched, resolved: &Resolved, received_ms: u64) -> Option<String> {
        self.fallback.as_ref()?;
        let body = match resolve::keep(fetched, resolved) {
            Ok(body) => body,
            Err(why) => return Some(format!("fallback copy not stored: {why}")),
        };
        let versions = resolved
            .vaults
            .iter()
            .map(|v| (v.id.clone(), v.version))
            .collect();
        self.write_copy(Kept {
            body,
            versions,
            at_ms: received_ms,
        })
    }

    /// `--watch`, after a poll R4 answered with "nothing changed since the
    /// last answer": the copy is re-stamped with the time of that answer,
    /// so that its age stays the time since R4 last vouched for it (once a
    /// tenth of `max_age` has passed; not on every poll). The delta is the
    /// server's unsigned word, but a server could as well serve the same
    /// signed answer again in full, which would be stored the same way.
    pub fn refresh_copy(&mut self, answered_ms: u64) {
        let (Some(settings), Some(kept)) = (&self.fallback, &self.kept) else {
            return;
        };
        let due = kept.at_ms + (settings.max_age / 10).as_millis() as u64;
        if answered_ms < due {
            return;
        }
        let Some(kept) = self.kept.take() else { return };
        let refreshed = Kept {
            at_ms: answered_ms,
            ..kept
        };
        if let Some(problem) = self.write_copy(refreshed) {
            self.ui.note(&format!("refresh: {problem}"));
        }
    }

    /// Writes `kept`; remembers it (for [`Session::refresh_copy`]) when it
    /// is now the copy on disk.
    fn write_copy(&mut self, kept: Kept) -> Option<String> {
        let settings = self.fallback.as_ref()?;
        let base_url = self.client.base_url();
        let versions = kept.versions.clone();
        let stored = fallback::store(
            settings,
            self.key(),
            base_url,
            &kept.body,
            versions,
            kept.at_ms,
        );
        self.ui.timing("fallback copy stored");
        match stored {
            Ok(Stored::Written) => {
                let path = settings.path.display();
                self.ui.note(&format!("fallback copy stored in {path}"));
                self.kept = Some(kept);
                None
            }
            Ok(Stored::Current { stored_at_ms }) => {
                self.ui.note("fallback copy already holds this answer");
                self.kept = Some(Kept {
                    at_ms: stored_at_ms,
                    ..kept
                });
                None
            }
            Ok(Stored::KeptNewer {
                vault_id,
                stored,
                answer,
            }) => Some(format!(
                "fallback copy not replaced: vault {vault_id} is at version {answer} in this answer but at {stored} in the stored copy (the copy only moves forward)"
            )),
            Err(e) => Some(format!("fallback copy not stored: {e}")),
        }
    }

    /// R4 cannot be reached (`live` says how): the fallback copy, checked
    /// (stamp, age) and verified like a live answer, with the session's
    /// version floor. If it cannot be used, the run fails with the live
    /// problems and the reason.
    async fn resolve_copy(&mut self, mut live: Vec<Problem>) -> Result<Resolved, AppError> {
        let settings = self.fallback.clone().expect("called with a fallback");
        let refused = |mut live: Vec<Problem>, e: FallbackError| {
            live.push(copy_problem(e));
            AppError::Resolve(live)
        };
        let base_url = self.client.base_url().to_string();
        let public = self.key().public();
        let copy = match fallback::load(&settings, public, &base_url, fallback::now_ms()) {
            Ok(copy) => copy,
            Err(e) => return Err(refused(live, e)),
        };
        let path = settings.path.clone();
        let fetched = match resolve::restore(&copy.body) {
            Ok(fetched) => fetched,
            Err(what) => return Err(refused(live, FallbackError::Malformed { path, what })),
        };
        let mut resolved = match self.verify(&fetched).await {
            Ok(resolved) => resolved,
            Err(problems) => {
                live.extend(problems);
                return Err(refused(live, FallbackError::Unusable(path)));
            }
        };
        self.ui.timing("fallback copy verified and decrypted");
        resolved.warnings.push(format!(
            "R4 cannot be reached ({}); started from the fallback copy {}, stored {} ago (max_age {})",
            live[0],
            settings.path.display(),
            fallback::human(copy.age),
            fallback::human(settings.max_age),
        ));
        resolved.fallback_age = Some(copy.age);
        Ok(resolved)
    }
}

/// [`resolve::fetch`], given up after `budget` (as a timeout, an outage).
async fn fetch_within(
    client: &Client,
    config: &Config,
    budget: Option<Duration>,
) -> Result<Fetched, Vec<Problem>> {
    let fetch = resolve::fetch(client, config);
    let Some(after) = budget else {
        return fetch.await;
    };
    match tokio::time::timeout(after, fetch).await {
        Ok(fetched) => fetched,
        Err(_) => Err(vec![Problem {
            name: None,
            reference: None,
            failure: Failure::Client(ClientError::Timeout {
                method: "GET",
                path: "/vault/sync".into(),
                after,
            }),
        }]),
    }
}

/// The line that says why the copy was not used.
fn copy_problem(e: FallbackError) -> Problem {
    Problem {
        name: None,
        reference: None,
        failure: Failure::Fallback(e),
    }
}

fn joined(
    r: Result<Result<PrivateKey, AppError>, tokio::task::JoinError>,
) -> Result<PrivateKey, AppError> {
    r.map_err(|e| AppError::System {
        what: "loading the private key",
        source: std::io::Error::other(e),
    })?
}
