//! What the binary does with a parsed command line: the exec flow and the
//! subcommands. `main` only maps the result to an exit code.

use std::io::Write;
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::client::{Client, ClientOptions, Progress};
use crate::config::{Config, Delivery};
use crate::contract::crypto::PrivateKey;
use crate::contract::Secret;
use crate::error::AppError;
use crate::resolve::{self, ResolveOptions, Resolved};
use crate::{exec, harden, inject, settings};

/// Writes progress and warnings on stderr, prefixed, never values.
#[derive(Clone)]
pub struct Ui {
    verbose: u8,
    start: std::time::Instant,
}

impl Ui {
    /// A UI at verbosity `verbose`.
    pub fn new(verbose: u8) -> Ui {
        Ui {
            verbose,
            start: std::time::Instant::now(),
        }
    }

    /// With `-vv`, how long after start-up `what` was done: where the
    /// start-up time goes (BENCHMARKS.md), on the user's own machine.
    pub fn timing(&self, what: &str) {
        if self.verbose > 1 {
            let ms = self.start.elapsed().as_secs_f64() * 1000.0;
            eprintln!("r4-exec: [{ms:7.2} ms] {what}");
        }
    }

    /// Progress shown with `-v`.
    pub fn note(&self, msg: &str) {
        if self.verbose > 0 {
            eprintln!("r4-exec: {msg}");
        }
    }

    /// A warning, always shown.
    pub fn warn(&self, msg: &str) {
        eprintln!("r4-exec: warning: {msg}");
    }

    fn progress(&self) -> Option<Progress> {
        (self.verbose > 0).then(|| {
            let p: Progress = std::sync::Arc::new(|m: &str| eprintln!("r4-exec: {m}"));
            p
        })
    }
}

/// Runs the command line. Returns only on failure in exec mode.
pub fn run(cli: Cli) -> Result<u8, AppError> {
    let ui = Ui::new(cli.global.verbose);
    if cli.subcommand.is_some() && !cli.command.is_empty() {
        return Err(AppError::Usage(
            "a subcommand takes no COMMAND after --; run `r4-exec -- COMMAND` separately".into(),
        ));
    }
    match &cli.subcommand {
        Some(Command::Keygen { out, bits }) => keygen(out, *bits),
        Some(Command::Register) => block_on(&cli, register(&cli, &ui)),
        Some(Command::Whoami { json }) => block_on(&cli, whoami(&cli, &ui, *json)),
        Some(Command::Check { json }) => block_on(&cli, check(&cli, &ui, *json)),
        Some(Command::Trust) => block_on(&cli, trust(&cli, &ui)),
        Some(Command::RotateKey { new_key }) => block_on(&cli, rotate_key(&cli, &ui, new_key)),
        None => exec_mode(&cli, &ui),
    }
}

/// Runs `fut` on a fresh current-thread runtime under the `--timeout`
/// deadline; the runtime (and its connections) is gone when this returns.
fn block_on<T, F: std::future::Future<Output = Result<T, AppError>>>(
    cli: &Cli,
    fut: F,
) -> Result<T, AppError> {
    let deadline = Duration::from_secs(cli.global.timeout);
    let rt = runtime()?;
    rt.block_on(async {
        tokio::time::timeout(deadline, fut)
            .await
            .unwrap_or(Err(AppError::Deadline(deadline)))
    })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Other(format!("cannot start the async runtime: {e}")))
}

/// Loads `r4.toml`. A missing default `./r4.toml` is fine for subcommands
/// that only need credentials (`required = false`).
pub(crate) fn load_config(cli: &Cli, required: bool) -> Result<Option<Config>, AppError> {
    let (path, explicit) = settings::config_path(cli.global.config.as_deref());
    if !explicit && !required && !path.exists() {
        return Ok(None);
    }
    match Config::load(&path, required) {
        Ok(config) => Ok(Some(config)),
        Err(e) if !explicit => {
            Err(AppError::from(e).with_hint("pass --config FILE or set R4_CONFIG"))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn client(config: Option<&Config>, cli: &Cli, ui: &Ui) -> Result<Client, AppError> {
    let conn = settings::connection(config)?;
    for w in &conn.warnings {
        ui.warn(w);
    }
    let mut opts = ClientOptions::new(conn.base_url, conn.api_key);
    opts.ca_pem = conn.ca_pem;
    opts.timeout = Duration::from_secs(cli.global.timeout.clamp(1, 10));
    opts.progress = ui.progress();
    Ok(Client::new(opts)?)
}

/// Resolves the configuration. The private key is parsed (PEM, DER, RSA key
/// check: ~1 ms) on a blocking thread while the request is in flight, since
/// nothing needs it before the answer arrives. A key that fails to load is
/// reported as soon as it fails, and wins over a network error, as if it had
/// been read first.
async fn resolve_all(config: &Config, cli: &Cli, ui: &Ui) -> Result<Resolved, AppError> {
    let key_path = settings::private_key_path(Some(config))?;
    let key_task = tokio::task::spawn_blocking(move || settings::load_private_key(key_path));
    let client = client(Some(config), cli, ui)?;
    let opts = ResolveOptions {
        allow_legacy: config.r4.allow_legacy,
        allow_unencrypted: config.r4.allow_unencrypted,
        trust: settings::trust(config)?,
    };
    ui.note(&format!("resolving from {}", client.base_url()));
    let joined = |r: Result<_, tokio::task::JoinError>| {
        r.map_err(|e| AppError::Other(format!("loading the private key: {e}")))?
    };
    let fetch = resolve::fetch(&client, config);
    tokio::pin!(fetch, key_task);
    let (key, fetched) = tokio::select! {
        key = &mut key_task => {
            let key = joined(key)?;
            ui.timing("private key loaded");
            (key, fetch.await)
        }
        fetched = &mut fetch => {
            ui.timing("answer received and parsed");
            (joined(key_task.await)?, fetched)
        }
    };
    ui.timing("answer and private key ready");
    let fetched = fetched.map_err(AppError::Resolve)?;
    let resolved = resolve::verify(&client, &fetched, &key, config, &opts, None)
        .await
        .map_err(AppError::Resolve)?;
    ui.timing("verified and decrypted");
    drop(key);
    for w in &resolved.warnings {
        ui.warn(w);
    }
    for n in &resolved.notes {
        ui.note(n);
    }
    Ok(resolved)
}

fn exec_mode(cli: &Cli, ui: &Ui) -> Result<u8, AppError> {
    let Some(program) = cli.command.first() else {
        return Err(AppError::Usage(
            "no command: usage is r4-exec [OPTIONS] -- COMMAND [ARGS...] (see --help)".into(),
        ));
    };
    let path = std::env::var_os("PATH");
    let program = exec::resolve_program(program, path.as_deref()).map_err(exec_error)?;
    let hardening = harden::harden().map_err(|e| AppError::Other(e.to_string()))?;
    if cli.exec.supervised() {
        return crate::supervise::run(cli, ui, program, hardening);
    }
    let config = load_config(cli, true)?.expect("required config is loaded");
    ui.timing("configuration loaded");
    let resolved = block_on(cli, resolve_all(&config, cli, ui))?;
    let plan = plan(cli, ui, program, resolved)?;
    if !cli.exec.no_core_for_child {
        hardening
            .restore_for_child()
            .map_err(|e| AppError::Other(e.to_string()))?;
    }
    ui.note(&format!("exec {}", plan.program.display()));
    ui.timing("exec");
    Err(exec_error(exec::exec(plan)))
}

fn exec_error(e: exec::ExecError) -> AppError {
    AppError::Exec {
        code: e.exit_code(),
        detail: e.to_string(),
    }
}

/// Builds the exec plan: memfds for `[files]`, the child's environment.
fn plan(
    cli: &Cli,
    ui: &Ui,
    program: std::path::PathBuf,
    resolved: Resolved,
) -> Result<exec::ExecPlan, AppError> {
    plan_with(cli, ui, program, resolved.secrets, inject::sealed_memfd)
}

/// [`plan`] with `memfd` creating the file of each `[files]` secret (the
/// supervisor's `--reload-signal` needs writable ones). The plan's
/// `keep_fds` are in the order of the `[files]` secrets in `secrets`.
pub(crate) fn plan_with(
    cli: &Cli,
    ui: &Ui,
    program: std::path::PathBuf,
    secrets: Vec<crate::resolve::ResolvedSecret>,
    memfd: fn(&str, &Secret) -> Result<std::os::fd::OwnedFd, inject::InjectError>,
) -> Result<exec::ExecPlan, AppError> {
    let mut env_secrets: Vec<(String, Secret)> = Vec::new();
    let mut files: Vec<(String, String)> = Vec::new();
    let mut keep_fds = Vec::new();
    for s in secrets {
        ui.note(&format!(
            "{} <- {} ({} bytes)",
            s.name,
            s.reference,
            s.value.len()
        ));
        match s.delivery {
            Delivery::Env => env_secrets.push((s.name, s.value)),
            Delivery::File => {
                let fd = memfd(&s.name, &s.value).map_err(|e| AppError::Inject {
                    name: s.name.clone(),
                    detail: e.to_string(),
                })?;
                use std::os::fd::AsRawFd;
                files.push((s.name, inject::memfd_path(fd.as_raw_fd())));
                keep_fds.push(fd);
            }
        }
    }
    let opts = inject::EnvOptions {
        keep_r4_env: cli.exec.keep_r4_env,
        no_override: cli.exec.no_override,
    };
    let envp =
        inject::build_env(std::env::vars_os(), &env_secrets, &files, &opts).map_err(|e| {
            AppError::Inject {
                name: String::new(),
                detail: e.to_string(),
            }
        })?;
    for name in envp.not_overridden() {
        ui.note(&format!("{name}: kept the inherited value (--no-override)"));
    }
    exec::ExecPlan::new(program, &cli.command, envp, keep_fds).map_err(exec_error)
}

fn keygen(out: &std::path::Path, bits: usize) -> Result<u8, AppError> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = PrivateKey::generate(bits).map_err(|e| AppError::Usage(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| {
            AppError::Usage(format!(
                "cannot create {}: {e}{}",
                out.display(),
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    " (refusing to overwrite an existing key)"
                } else {
                    ""
                }
            ))
        })?;
    let pem = key.to_pkcs8_pem();
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| AppError::Other(format!("writing {}: {e}", out.display())))?;
    eprintln!(
        "r4-exec: wrote a {bits}-bit RSA key to {} (mode 0600); next: r4-exec register",
        out.display()
    );
    println!("{}", key.fingerprint());
    Ok(0)
}

async fn register(cli: &Cli, ui: &Ui) -> Result<u8, AppError> {
    let config = load_config(cli, false)?;
    let key = settings::private_key(config.as_ref())?;
    let client = client(config.as_ref(), cli, ui)?;
    let req = crate::contract::wire::RegisterRequest {
        public_key: key.public().to_pem(),
        rotation: None,
    };
    let resp = client.register(&req).await.map_err(|e| match e.code() {
        Some("rotation_proof_required") => AppError::Client(e).with_hint(
            "a different runtime key is registered for this agent; to replace it, run `r4-exec rotate-key --new-key FILE` with the registered key as R4_PRIVATE_KEY_FILE",
        ),
        Some("key_revoked") => AppError::Client(e)
            .with_hint("this key was revoked; generate a new one with `r4-exec keygen`"),
        _ => AppError::Client(e),
    })?;
    println!("{} {}", resp.status, resp.fingerprint);
    Ok(0)
}

async fn whoami(cli: &Cli, ui: &Ui, json: bool) -> Result<u8, AppError> {
    let config = load_config(cli, false)?;
    let me = client(config.as_ref(), cli, ui)?.me().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&me).expect("wire type"));
        return Ok(0);
    }
    match &me.agent {
        Some(a) => println!("agent     {} ({})", a.name, a.id),
        None => println!("agent     (none: {} key)", me.api_key.scope),
    }
    println!("org       {} ({})", me.org.name, me.org.id);
    println!("tenant    {} ({})", me.tenant.name, me.tenant.id);
    println!("api key   {} scope {}", me.api_key.id, me.api_key.scope);
    println!("policy    {}", me.api_key.permissions.join(", "));
    match &me.runtime_key.fingerprint {
        Some(fp) if me.runtime_key.registered => println!("key       {fp}"),
        _ => println!("key       not registered (run `r4-exec register`)"),
    }
    for w in &me.warnings {
        println!("warning   {w}");
    }
    Ok(0)
}

async fn rotate_key(cli: &Cli, ui: &Ui, new_key: &std::path::Path) -> Result<u8, AppError> {
    let config = load_config(cli, false)?;
    let current = settings::private_key(config.as_ref())?;
    let pem =
        zeroize::Zeroizing::new(std::fs::read(new_key).map_err(|source| AppError::ReadFile {
            what: "new private key",
            path: new_key.to_path_buf(),
            source,
        })?);
    let new = PrivateKey::from_pem(&pem).map_err(|source| AppError::Key {
        what: "new private key",
        path: new_key.to_path_buf(),
        source,
    })?;
    let trust = match &config {
        Some(c) => settings::trust(c)?,
        None => Default::default(),
    };
    let client = client(config.as_ref(), cli, ui)?;
    match crate::rotate::rotate(&client, &current, &new, &trust).await? {
        crate::rotate::Outcome::Rotated(resp) => println!("{} {}", resp.status, resp.fingerprint),
        crate::rotate::Outcome::AlreadyDone(fp) => println!("unchanged {fp} (already rotated)"),
    }
    eprintln!(
        "r4-exec: now use {} as the private key (R4_PRIVATE_KEY_FILE or private_key_file); the old key is revoked",
        new_key.display()
    );
    Ok(0)
}

async fn trust(cli: &Cli, ui: &Ui) -> Result<u8, AppError> {
    let config = load_config(cli, true)?.expect("required config is loaded");
    let policy = settings::trust(&config)?;
    let me = settings::private_key(Some(&config)).ok();
    let client = client(Some(&config), cli, ui)?;
    let text = crate::trust::report(
        &client,
        &config,
        &policy,
        me.as_ref().map(|k| k.fingerprint()),
    )
    .await?;
    print!("{text}");
    Ok(0)
}

async fn check(cli: &Cli, ui: &Ui, json: bool) -> Result<u8, AppError> {
    let config = load_config(cli, true)?.expect("required config is loaded");
    let resolved = resolve_all(&config, cli, ui).await?;
    if json {
        let rows: Vec<serde_json::Value> = resolved
            .secrets
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "delivery": match s.delivery { Delivery::Env => "env", Delivery::File => "file" },
                    "reference": s.reference,
                    "vaultId": s.vault_id,
                    "itemId": s.item_id,
                    "fieldId": s.field_id,
                    "signer": s.signer,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    } else {
        for s in &resolved.secrets {
            let how = match s.delivery {
                Delivery::Env => "env ",
                Delivery::File => "file",
            };
            println!(
                "ok  {:<28} {how} {}  vault {} item {} field {}  signed by {}",
                s.name, s.reference, s.vault_id, s.item_id, s.field_id, s.signer
            );
        }
        println!("{} secret(s) resolved and verified", resolved.secrets.len());
    }
    Ok(0)
}
