//! The subcommands: `keygen`, `register`, `whoami`, `rotate-key`, `trust`,
//! `check`, `ls`, `init`. Each gets a hardened [`Startup`] and does its one job.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use crate::browse::{self, Scope};
use crate::client::Client;
use crate::config::Delivery;
use crate::contract::crypto::PrivateKey;
use crate::contract::directory::TrustPolicy;
use crate::contract::wire::{ProjectDetail, SyncResponse};
use crate::error::AppError;
use crate::resolve::select::select;
use crate::resolve::ResolvedSecret;
use crate::settings;
use crate::startup::Startup;
use crate::ui;

/// `keygen`: a new RSA key, written 0600, never over an existing file.
pub fn keygen(startup: &Startup, out: &Path, bits: usize) -> Result<u8, AppError> {
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
        .map_err(|source| AppError::Write {
            path: out.to_path_buf(),
            source,
        })?;
    let shown = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    startup.ui.tell(&format!(
        "wrote a {bits}-bit RSA key to {} (mode 0600); next: export R4_PRIVATE_KEY_FILE={} (or set private_key_file in [r4]), then run `r4-exec register`",
        out.display(),
        shown.display()
    ));
    ui::outln(key.fingerprint());
    Ok(0)
}

/// `register`: the agent's public key, idempotent.
pub fn register(startup: &Startup) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let (path, client) = startup.agent(config.as_ref())?;
    let key = settings::load_private_key(path)?;
    startup.block_on(async { register_key(&client, &key).await })
}

async fn register_key(client: &Client, key: &PrivateKey) -> Result<u8, AppError> {
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
    ui::outln(&format!("{} {}", resp.status, resp.fingerprint));
    Ok(0)
}

/// `whoami`: the API key's identity and policy.
pub fn whoami(startup: &Startup, json: bool) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let me = startup.block_on(async { Ok(startup.client(config.as_ref())?.me().await?) })?;
    if json {
        ui::out_json(&me);
        return Ok(0);
    }
    match &me.agent {
        Some(a) => ui::outln(&format!("agent     {} ({})", a.name, a.id)),
        None => ui::outln(&format!("agent     (none: {} key)", me.api_key.scope)),
    }
    ui::outln(&format!("org       {} ({})", me.org.name, me.org.id));
    ui::outln(&format!("tenant    {} ({})", me.tenant.name, me.tenant.id));
    ui::outln(&format!(
        "api key   {} scope {}",
        me.api_key.id, me.api_key.scope
    ));
    ui::outln(&format!("policy    {}", me.api_key.permissions.join(", ")));
    match &me.runtime_key.fingerprint {
        Some(fp) if me.runtime_key.registered => ui::outln(&format!("key       {fp}")),
        _ => ui::outln("key       not registered (run `r4-exec register`)"),
    }
    for w in &me.warnings {
        ui::outln(&format!("warning   {w}"));
    }
    Ok(0)
}

/// `rotate-key`: re-wrap every vault key to a new runtime key.
pub fn rotate_key(startup: &Startup, new_key: &Path) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let (path, client) = startup.agent(config.as_ref())?;
    let current = settings::load_private_key(path)?;
    let pem = zeroize::Zeroizing::new(settings::read("new private key", new_key)?);
    let new = PrivateKey::from_pem(&pem).map_err(|source| AppError::Key {
        what: "new private key",
        path: new_key.to_path_buf(),
        source,
    })?;
    let trust = match &config {
        Some(c) => settings::trust(c)?,
        None => Default::default(),
    };
    let outcome =
        startup.block_on(async { crate::rotate::rotate(&client, &current, &new, &trust).await })?;
    match outcome {
        crate::rotate::Outcome::Rotated(resp) => {
            ui::outln(&format!("{} {}", resp.status, resp.fingerprint))
        }
        crate::rotate::Outcome::AlreadyDone(fp) => {
            ui::outln(&format!("unchanged {fp} (already rotated)"))
        }
    }
    startup.ui.tell(&format!(
        "now use {} as the private key (R4_PRIVATE_KEY_FILE or private_key_file); the old key is revoked",
        new_key.display()
    ));
    Ok(0)
}

/// `trust`: the signer directories and a `[trust]` block.
pub fn trust(startup: &Startup) -> Result<u8, AppError> {
    let config = startup.require_config()?;
    let policy = settings::trust(&config)?;
    let me = settings::private_key(Some(&config)).ok();
    let text = startup.block_on(async {
        let client = startup.client(Some(&config))?;
        crate::trust::report(
            &client,
            &config,
            &policy,
            me.as_ref().map(|k| k.fingerprint()),
        )
        .await
    })?;
    ui::out(&text);
    Ok(0)
}

/// `check`: resolve and verify everything, print no value. From R4 only:
/// it checks the server (the fallback copy is stored, never used). A
/// template or bundle is listed with every reference it was built from (each
/// verified like an explicit one), under its variable.
pub fn check(startup: &Startup, json: bool) -> Result<u8, AppError> {
    let sources = startup.sources()?;
    let composites: HashSet<String> = sources
        .config
        .composites
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let resolved = startup.block_on(async {
        let mut session = startup.session(sources.config)?;
        session.resolve_live().await
    })?;
    startup.report(&resolved);
    if json {
        let rows: Vec<serde_json::Value> = resolved
            .secrets
            .iter()
            .map(|s| {
                let mut row = origin_json(s);
                row["name"] = s.name.clone().into();
                row["delivery"] = delivery_name(s.delivery).into();
                if composites.contains(&s.name) {
                    row["parts"] = parts_of(&resolved.parts, &s.name)
                        .map(origin_json)
                        .collect();
                }
                row
            })
            .collect();
        ui::out_json(&rows);
        return Ok(0);
    }
    for s in &resolved.secrets {
        let how = format!("{:<4}", delivery_name(s.delivery));
        if composites.contains(&s.name) {
            ui::outln(&format!("ok  {:<28} {how} {}", s.name, s.reference));
            for p in parts_of(&resolved.parts, &s.name) {
                ui::outln(&format!("      {}", origin_text(p)));
            }
        } else {
            ui::outln(&format!("ok  {:<28} {how} {}", s.name, origin_text(s)));
        }
    }
    let inside = match resolved.parts.len() {
        0 => String::new(),
        n => format!(" ({n} reference(s) inside templates and bundles)"),
    };
    ui::outln(&format!(
        "{} secret(s) resolved and verified{inside}",
        resolved.secrets.len()
    ));
    Ok(0)
}

/// `ls`: what this key can read, verified, as references; never a value.
pub fn ls(startup: &Startup, scope: &Scope, toml: bool) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let trust = match &config {
        Some(c) => settings::trust(c)?,
        None => TrustPolicy::default(),
    };
    let (path, client) = startup.agent(config.as_ref())?;
    let key = settings::load_private_key(path)?;
    let sync = startup.block_on(async { Ok(client.sync(None).await?) })?;
    warn_unpinned(startup, &trust);
    let listing = browse::list(&sync, &key, &trust, scope);
    if toml {
        ui::out(&browse::env_lines(&listing).0);
        for refusal in browse::refused_names(&listing) {
            startup.ui.warn(&refusal);
        }
    } else {
        ui::out(&browse::render(&listing));
    }
    listing.complete("what failed is not listed")?;
    Ok(0)
}

/// `init`: a starter `r4.toml` from what this key can read, or from a
/// project; never over an existing file, never with the API key in it.
pub fn init(startup: &Startup, project: Option<&str>) -> Result<u8, AppError> {
    let (path, _) = settings::config_path(startup.global.config.as_deref());
    if path.exists() {
        return Err(AppError::Usage(format!(
            "{} exists and `r4-exec init` never overwrites; edit it, or pass --config NEW_FILE",
            path.display()
        )));
    }
    let (key_path, client) = startup.agent(None)?;
    let key = settings::load_private_key(key_path.clone())?;
    let trust = TrustPolicy::default();
    let (sync, detail) = startup.block_on(async {
        let sync = client.sync(None).await?;
        let detail = match project {
            Some(p) => Some(project_detail(&client, p).await?),
            None => None,
        };
        Ok((sync, detail))
    })?;
    warn_unpinned(startup, &trust);
    let listing = match &detail {
        Some((_, d)) => browse::list_project(&sync, &key, &trust, d),
        None => browse::list(&sync, &key, &trust, &Scope::default()),
    };
    let listing = listing.complete("nothing was written")?;
    let key_file = std::path::absolute(&key_path).unwrap_or(key_path);
    let starter = browse::Starter {
        base_url: &settings::base_url(None),
        private_key_file: Some(&key_file),
        project: detail.map(|(selector, d)| (selector, unseen(&sync, &d))),
    };
    let text = browse::starter(&listing, &starter, &path)?;
    write_new(&path, text.as_bytes())?;
    for refusal in browse::refused_names(&listing) {
        startup.ui.warn(&refusal);
    }
    if project.is_some() {
        for refusal in browse::refused_by_default(&listing) {
            startup.ui.warn(&refusal);
        }
    }
    startup.ui.tell(&format!(
        "wrote {} from {} vault(s); next: `r4-exec check`, then `r4-exec -- COMMAND`",
        path.display(),
        listing.vaults.len()
    ));
    Ok(0)
}

/// The project `name_or_id` names, and the line that selects it in
/// `[project]`: by name when the name selects it unambiguously, else by id.
async fn project_detail(
    client: &Client,
    name_or_id: &str,
) -> Result<(String, ProjectDetail), AppError> {
    let list = client.projects().await?;
    let found = select("project", name_or_id, list.projects.iter()).map_err(|failure| {
        AppError::Incomplete {
            problems: vec![project_problem(name_or_id, failure)],
            outcome: "nothing was written",
        }
    })?;
    let by_name =
        select("project", &found.name, list.projects.iter()).is_ok_and(|p| p.id == found.id);
    let selector = if by_name {
        format!("name = {}", browse::toml_string(&found.name))
    } else {
        format!("id = {}", browse::toml_string(&found.id))
    };
    Ok((selector, client.project(&found.id).await?))
}

fn project_problem(name_or_id: &str, failure: crate::resolve::Failure) -> crate::resolve::Problem {
    crate::resolve::Problem {
        name: None,
        reference: Some(format!("--project {name_or_id}")),
        failure,
    }
}

/// Vaults of the project that this key cannot see, by name.
fn unseen(sync: &SyncResponse, project: &ProjectDetail) -> Vec<String> {
    project
        .vaults
        .iter()
        .filter(|pv| !sync.vaults.iter().any(|v| v.vault.id == pv.id))
        .map(|pv| format!("\"{}\" ({})", pv.name, pv.id))
        .collect()
}

/// The warning of an unpinned run: `ls` and `init` trust the directory
/// the server serves, as `check` does.
fn warn_unpinned(startup: &Startup, trust: &TrustPolicy) {
    if trust.is_unpinned() {
        startup.ui.warn(crate::resolve::UNPINNED);
    }
}

/// Writes a new file (mode 0644: it holds no secret); an existing one is
/// an error, so two `init`s racing cannot clobber each other.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let write = |source| AppError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(write)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(write)
}

/// The references a template or bundle named `name` was built from.
fn parts_of<'a>(
    parts: &'a [ResolvedSecret],
    name: &'a str,
) -> impl Iterator<Item = &'a ResolvedSecret> {
    parts.iter().filter(move |p| p.name == name)
}

fn delivery_name(d: Delivery) -> &'static str {
    match d {
        Delivery::Env => "env",
        Delivery::File => "file",
    }
}

/// Where a value comes from, on one line: reference, ids, signer.
fn origin_text(s: &ResolvedSecret) -> String {
    format!(
        "{}  vault {} item {} field {}  signed by {}",
        s.reference, s.vault_id, s.item_id, s.field_id, s.signer
    )
}

fn origin_json(s: &ResolvedSecret) -> serde_json::Value {
    serde_json::json!({
        "reference": s.reference,
        "vaultId": s.vault_id,
        "itemId": s.item_id,
        "fieldId": s.field_id,
        "signer": s.signer,
    })
}
