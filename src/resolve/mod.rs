//! Configuration + references → a verified set of secrets.
//!
//! Fetching follows `[r4] plan` (module `fetch`, `docs/plan.md`): the sync
//! (`GET /vault/sync`: every vault the key can read with its wrapped key,
//! signer directory, summary checkpoint and item details, in one round, the
//! project detail concurrently) or only what the references name, over the
//! per-endpoint calls. A project given by name costs one more round (list,
//! then detail); legacy vaults one more (the server-held key). Everything is then
//! verified locally through the contract layer, one RSA unwrap per vault that
//! is actually referenced, and only the referenced fields are decrypted.
//!
//! All or nothing: every problem is collected (one per env var) and, if there
//! is any, no secret is returned.

mod compose;
mod fetch;
mod offline;
mod par;
mod prepare;
pub mod project;
pub mod select;
pub mod vault;

use std::collections::{HashMap, HashSet};

use crate::client::{Client, ClientError};
use crate::compose::template::PathSlot;
use crate::config::{Config, Delivery};
use crate::contract::checkpoint::VersionFloor;
use crate::contract::crypto::PrivateKey;
use crate::contract::directory::TrustPolicy;
use crate::contract::wire::{ItemSummary, SyncResponse, SyncVault, Vault};
use crate::contract::{EnvelopeError, KeyError, Secret, VaultModel, VerifyError};
use crate::fallback::FallbackError;
pub use fetch::{first_path, Listed, AUTO_SYNC_LIMIT};
pub use offline::{keep, restore};
use select::select;
use vault::{check_vault, Opener, VerifiedVault};

/// The warning of every run without a pin (`resolve`, `ls`, `init`): what
/// pinning would close, and where to start.
pub const UNPINNED: &str = "no signer or log key is pinned: signatures are checked against the directory the server serves; see `r4-exec trust`";

/// Options that change what is accepted.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Accept legacy vaults (server-held key; not zero-trust).
    pub allow_legacy: bool,
    /// Accept unencrypted vaults.
    pub allow_unencrypted: bool,
    /// Pins.
    pub trust: TrustPolicy,
}

/// One secret, verified and decrypted.
#[derive(Debug)]
pub struct ResolvedSecret {
    /// Env var name.
    pub name: String,
    /// Env var or memfd.
    pub delivery: Delivery,
    /// The reference (as configured, or derived for `[project]`).
    pub reference: String,
    /// Vault id.
    pub vault_id: String,
    /// Item id.
    pub item_id: String,
    /// Field id.
    pub field_id: String,
    /// Fingerprint of the signer whose checkpoint covered the value.
    pub signer: String,
    /// The value.
    pub value: Secret,
    /// Where a template's `{{ path:NAME }}` placeholders go in `value`
    /// (empty for everything else): the paths are known only once the files
    /// are handed over, and [`crate::launch`] inserts them then.
    pub paths: Vec<PathSlot>,
}

/// The outcome of a resolution.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Secrets, in configuration order then project order, then templates
    /// and bundles (built values).
    pub secrets: Vec<ResolvedSecret>,
    /// What templates and bundles were built from: one per reference, named
    /// after the variable it went into (for `check`, and for `--mask`,
    /// which masks each value on its own too).
    pub parts: Vec<ResolvedSecret>,
    /// Notes for `-v` (names only).
    pub notes: Vec<String>,
    /// Warnings shown once per run.
    pub warnings: Vec<String>,
    /// Every vault the resolution rested on, verified: what a fallback copy
    /// keeps, and the versions it keeps them at.
    pub vaults: Vec<UsedVault>,
    /// When the answer came from the fallback copy: how old it was.
    pub fallback_age: Option<std::time::Duration>,
}

/// A vault a resolution used, after it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedVault {
    /// Vault id.
    pub id: String,
    /// Its verified summary version.
    pub version: u64,
    /// How its values are protected.
    pub model: VaultModel,
}

/// What went wrong for one entry. Data-free about values.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Failure {
    /// No such vault/item/field.
    NotFound {
        /// vault, item or field.
        what: &'static str,
        /// The segment.
        segment: String,
        /// What exists, by name and id.
        candidates: Vec<String>,
    },
    /// Several candidates match.
    Ambiguous {
        /// vault, item or field.
        what: &'static str,
        /// The segment.
        segment: String,
        /// The matches, by name and id.
        candidates: Vec<String>,
    },
    /// A signed object failed a check.
    Verify(VerifyError),
    /// An envelope failed a check.
    Envelope(EnvelopeError),
    /// A legacy value could not be decrypted.
    Legacy(KeyError),
    /// A legacy vault without `allow_legacy`.
    LegacyNotAllowed,
    /// An unencrypted vault without `allow_unencrypted`.
    UnencryptedNotAllowed,
    /// A template or bundle cannot be built (why; no value).
    Build(&'static str),
    /// Two fields of the project derive this name.
    Collision(Vec<String>),
    /// A derived name would set a variable that changes how programs are
    /// found, loaded or started ([`crate::hygiene`]); only an explicit
    /// `[env]` entry may set it.
    StartupVariable {
        /// The variable.
        name: String,
        /// The family of [`crate::hygiene`] it belongs to (`LD_*`).
        family: &'static str,
    },
    /// The server or network failed.
    Client(ClientError),
    /// The fallback copy could not be used.
    Fallback(FallbackError),
    /// A vault or item the lists name whose contents are not in the
    /// answer: a fallback copy keeps only what was in use when it was
    /// stored.
    NotFetched {
        /// vault or item.
        what: &'static str,
        /// Its id.
        id: String,
    },
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Self {
        Failure::Verify(e)
    }
}

impl From<EnvelopeError> for Failure {
    fn from(e: EnvelopeError) -> Self {
        Failure::Envelope(e)
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound {
                what,
                segment,
                candidates,
            } => {
                write!(f, "no {what} \"{segment}\"")?;
                if candidates.is_empty() {
                    write!(f, " (none visible to this key)")
                } else {
                    write!(f, " (candidates: {})", candidates.join(", "))
                }
            }
            Failure::Ambiguous {
                what,
                segment,
                candidates,
            } => write!(
                f,
                "{what} \"{segment}\" is ambiguous: {}; use an id",
                candidates.join(", ")
            ),
            Failure::Verify(e) => write!(f, "verification failed: {e}"),
            Failure::Envelope(e) => write!(f, "verification failed: {e}"),
            Failure::Legacy(e) => write!(f, "legacy value: {e}"),
            Failure::LegacyNotAllowed => write!(
                f,
                "legacy vault (server-held key, not zero-trust); set allow_legacy = true in [r4] to accept it"
            ),
            Failure::UnencryptedNotAllowed => write!(
                f,
                "unencrypted vault (values readable by the server); set allow_unencrypted = true in [r4] to accept it"
            ),
            Failure::Collision(refs) => write!(
                f,
                "several fields derive this name ({}); map it explicitly in [env]",
                refs.join(", ")
            ),
            Failure::StartupVariable { name, family } => write!(
                f,
                "[project] would set {name} ({family}, docs/security.md): map {name} explicitly in [env] to set it, or exclude it in [project]"
            ),
            Failure::Build(why) => write!(f, "{why}"),
            Failure::Client(e) => write!(f, "{e}"),
            Failure::Fallback(e) => write!(f, "fallback copy refused: {e}"),
            Failure::NotFetched { what, id } => write!(
                f,
                "{what} {id} is listed but its contents are not in the answer (a fallback copy keeps only what was in use when it was stored)"
            ),
        }
    }
}

/// One problem: the env var and reference it concerns, and what failed.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Env var, when the problem concerns one.
    pub name: Option<String>,
    /// Reference, when known.
    pub reference: Option<String>,
    /// What failed.
    pub failure: Failure,
}

/// Whether `problems` say only that R4 could not be reached: connection
/// errors, timeouts, 429 and 5xx, after the client's retries — what
/// [`ClientError::is_transient`] retries. Never an authoritative answer
/// (401, 403, 404, a malformed body) or a verification failure: only an
/// outage may start COMMAND from the fallback copy.
pub fn is_outage(problems: &[Problem]) -> bool {
    !problems.is_empty()
        && problems
            .iter()
            .all(|p| matches!(&p.failure, Failure::Client(e) if e.is_transient()))
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.reference) {
            (Some(n), Some(r)) => write!(f, "{n} ({r}): {}", self.failure),
            (Some(n), None) => write!(f, "{n}: {}", self.failure),
            (None, Some(r)) => write!(f, "{r}: {}", self.failure),
            (None, None) => write!(f, "{}", self.failure),
        }
    }
}

fn general(failure: impl Into<Failure>) -> Vec<Problem> {
    vec![Problem {
        name: None,
        reference: None,
        failure: failure.into(),
    }]
}

/// State shared while resolving: the sync answer, vaults verified so far, the
/// legacy key if one was fetched.
struct Resolver<'s> {
    sync: &'s SyncResponse,
    /// The vault list and item lists, when the answer was fetched by parts.
    listed: Option<&'s Listed>,
    /// Every vault the key can see: what a reference's vault is selected
    /// from (the vault list, else the sync answer's entries).
    entries: Vec<&'s Vault>,
    key: &'s PrivateKey,
    opts: &'s ResolveOptions,
    vaults: HashMap<String, Result<VerifiedVault<'s>, Failure>>,
    legacy_key: Option<PrivateKey>,
}

impl<'s> Resolver<'s> {
    fn new(fetched: &'s Fetched, key: &'s PrivateKey, opts: &'s ResolveOptions) -> Resolver<'s> {
        let listed = fetched.listed.as_ref();
        let entries = match listed {
            Some(l) => l.vaults.iter().collect(),
            None => fetched.sync.vaults.iter().map(|v| &v.vault).collect(),
        };
        Resolver {
            sync: &fetched.sync,
            listed,
            entries,
            key,
            opts,
            vaults: HashMap::new(),
            legacy_key: None,
        }
    }

    /// The answer's entry for `vault_id`.
    fn raw(&self, vault_id: &str) -> Option<&'s SyncVault> {
        self.sync.vaults.iter().find(|v| v.vault.id == vault_id)
    }

    /// The vault's item list, when it was fetched as such.
    fn listed_items(&self, vault_id: &str) -> Option<&'s [ItemSummary]> {
        self.listed
            .and_then(|l| l.items.get(vault_id))
            .map(Vec::as_slice)
    }

    fn vault(&mut self, vault_id: &str) -> Result<&VerifiedVault<'s>, Failure> {
        if !self.vaults.contains_key(vault_id) {
            let verified = match self.raw(vault_id) {
                Some(raw) => verify_one(raw, self.listed_items(vault_id), self.key, self.opts),
                None => Err(Failure::NotFetched {
                    what: "vault",
                    id: vault_id.to_string(),
                }),
            };
            self.vaults.insert(vault_id.to_string(), verified);
        }
        self.vaults[vault_id].as_ref().map_err(Clone::clone)
    }

    fn needs_legacy_key(&self) -> bool {
        self.vaults
            .values()
            .any(|v| matches!(v, Ok(v) if matches!(v.opener, Opener::Legacy)))
    }
}

/// Verifies one vault of the sync answer (directory, summary, then its key)
/// and applies the options that refuse legacy and unencrypted vaults.
fn verify_one<'s>(
    raw: &'s SyncVault,
    listed: Option<&'s [ItemSummary]>,
    key: &PrivateKey,
    opts: &ResolveOptions,
) -> Result<VerifiedVault<'s>, Failure> {
    let checked = check_vault(raw, listed, &opts.trust)?;
    refused(checked.model(), opts)?;
    let opener = checked.open_key(key)?;
    Ok(checked.into_verified(opener))
}

/// Refuses the vault models the options do not accept.
fn refused(model: VaultModel, opts: &ResolveOptions) -> Result<(), Failure> {
    match model {
        VaultModel::Legacy if !opts.allow_legacy => Err(Failure::LegacyNotAllowed),
        VaultModel::Unencrypted if !opts.allow_unencrypted => Err(Failure::UnencryptedNotAllowed),
        _ => Ok(()),
    }
}

/// A field designated by the configuration, before its value is opened.
struct Target {
    name: String,
    delivery: Delivery,
    reference: String,
    vault_id: String,
    item_id: String,
    field_id: String,
    signer: String,
}

impl Target {
    /// The target with its opened value.
    fn resolved(self, value: Secret) -> ResolvedSecret {
        ResolvedSecret {
            name: self.name,
            delivery: self.delivery,
            reference: self.reference,
            vault_id: self.vault_id,
            item_id: self.item_id,
            field_id: self.field_id,
            signer: self.signer,
            value,
            paths: Vec::new(),
        }
    }
}

/// Resolves everything `config` asks for.
pub async fn resolve(
    client: &Client,
    key: &PrivateKey,
    config: &Config,
    opts: &ResolveOptions,
) -> Result<Resolved, Vec<Problem>> {
    resolve_with_floor(client, key, config, opts, None).await
}

/// [`resolve`], keeping `floor` across calls (the supervisor's polls): every
/// vault summary that verified is recorded in it, and one older than a
/// summary seen before is a rollback (§4.5) that fails the resolution.
pub async fn resolve_with_floor(
    client: &Client,
    key: &PrivateKey,
    config: &Config,
    opts: &ResolveOptions,
    floor: Option<&mut VersionFloor>,
) -> Result<Resolved, Vec<Problem>> {
    let fetched = fetch(client, config, None).await?;
    verify(client, &fetched, key, config, opts, floor).await
}

/// What the server answered for a configuration, not verified yet: the
/// first half of [`resolve`], which needs no private key, so that a caller
/// can parse its key while this is in flight.
pub struct Fetched {
    /// The sync answer, or the same shape assembled from the per-vault
    /// endpoints (only the named vaults and items; see [`plan`]).
    sync: SyncResponse,
    /// The vault and item lists of the referenced plan.
    listed: Option<Listed>,
    project: Option<project::Fetched>,
    /// The `-v` line that says how this was fetched.
    note: String,
}

/// Fetches everything `config` needs, by the configured plan ([`FetchPlan`](crate::config::FetchPlan), module `fetch`);
/// `known`, the items of the world at the last verified answer, lets the
/// default plan decide without asking first.
pub async fn fetch(
    client: &Client,
    config: &Config,
    known: Option<u64>,
) -> Result<Fetched, Vec<Problem>> {
    fetch::fetch(client, config, known).await
}

impl Fetched {
    /// How many items the world of this answer holds (what `known` is).
    pub fn world_size(&self) -> Option<u64> {
        fetch::world_size(&self.sync, self.listed.as_ref())
    }

    /// The delta cursor of this answer when it is a full sync: the state it
    /// was verified over, so that `--watch`'s first poll can ask what
    /// changed since instead of a second full sync. `None` for the
    /// referenced plan (no sync was asked for).
    pub fn cursor(&self) -> Option<&str> {
        (self.sync.mode == "full" && !self.sync.cursor.is_empty()).then_some(&self.sync.cursor)
    }
}

/// Verifies and decrypts what [`fetch`] returned: the second half of
/// [`resolve_with_floor`]. `client` is used only for a legacy vault's key.
pub async fn verify(
    client: &Client,
    fetched: &Fetched,
    key: &PrivateKey,
    config: &Config,
    opts: &ResolveOptions,
    floor: Option<&mut VersionFloor>,
) -> Result<Resolved, Vec<Problem>> {
    let project = fetched.project.as_ref();
    let mut out = Resolved::default();
    out.notes.push(fetched.note.clone());
    if opts.trust.is_unpinned() {
        out.warnings.push(UNPINNED.into());
    }
    let mut r = Resolver::new(fetched, key, opts);
    prepare::prepare(&mut r, config, project);
    let (targets, overridden, mut problems) = select_targets(&mut r, config, project, &mut out);
    let composites = compose::select(&mut r, config, &mut problems);
    if r.needs_legacy_key() && problems.is_empty() {
        r.legacy_key = Some(legacy_key(client).await?);
        out.warnings.push(
            "a legacy vault is in use: its values are decrypted with a key the server holds (not zero-trust)".into(),
        );
    }
    for t in targets {
        match open_target(&mut r, &t) {
            Ok(value) => out.secrets.push(t.resolved(value)),
            Err(failure) => problems.push(Problem {
                name: Some(t.name),
                reference: Some(t.reference),
                failure,
            }),
        }
    }
    compose::build(
        &mut r,
        config,
        composites,
        &overridden,
        &mut out,
        &mut problems,
    );
    if let Some(floor) = floor {
        problems.extend(record_versions(&r, floor));
    }
    out.vaults = used_vaults(&r);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The fields to open: each entry, then what `[project]` selects (a
/// `/vault/env` project's values are opened here, into `out`). `r4.toml`
/// is above the environment and env files, so a name `[project]` derives
/// wins over an entry of those lower sources: that entry is not resolved
/// at all, and its name is returned with the overridden ones.
fn select_targets(
    r: &mut Resolver<'_>,
    config: &Config,
    project: Option<&project::Fetched>,
    out: &mut Resolved,
) -> (Vec<Target>, HashSet<String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let derived = project_targets(r, config, project, out, &mut problems);
    let derived_names: HashSet<&str> = derived
        .iter()
        .map(|t| t.name.as_str())
        .chain(out.secrets.iter().map(|s| s.name.as_str()))
        .collect();
    let mut overridden = HashSet::new();
    let mut targets = Vec::new();
    for entry in &config.entries {
        if !entry.explicit && derived_names.contains(entry.name.as_str()) {
            out.notes.push(format!(
                "{}: [project] in r4.toml wins over {} from a lower source",
                entry.name, entry.raw
            ));
            overridden.insert(entry.name.clone());
            continue;
        }
        match explicit_target(r, entry) {
            Ok(t) => targets.push(t),
            Err(failure) => problems.push(Problem {
                name: Some(entry.name.clone()),
                reference: Some(entry.raw.clone()),
                failure,
            }),
        }
    }
    targets.extend(derived);
    (targets, overridden, problems)
}

/// What `[project]` selects: the targets of a verified project, or (for a
/// `/vault/env` project) its values opened into `out.secrets`.
fn project_targets(
    r: &mut Resolver<'_>,
    config: &Config,
    project: Option<&project::Fetched>,
    out: &mut Resolved,
    problems: &mut Vec<Problem>,
) -> Vec<Target> {
    match (&config.project, project) {
        (Some(p), Some(project::Fetched::Detail(detail))) => {
            let selection = project::targets(r, config, p, detail);
            problems.extend(selection.problems);
            out.notes.extend(selection.notes);
            selection.targets
        }
        (Some(p), Some(project::Fetched::Env(env))) => {
            out.warnings.push(
                "[project] source = \"env-endpoint\": names are mapped to values by the server (no checkpoint); values are still decrypted and authenticated locally".into(),
            );
            project::env_secrets(r, config, p, env, &mut out.secrets, problems);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The key the server holds for legacy vaults (`GET /vault/encryption-key`).
async fn legacy_key(client: &Client) -> Result<PrivateKey, Vec<Problem>> {
    let pair = client.encryption_key().await.map_err(general)?;
    PrivateKey::from_pem(pair.private_key.expose()).map_err(|e| general(Failure::Legacy(e)))
}

/// The vaults that verified, sorted by id.
fn used_vaults(r: &Resolver<'_>) -> Vec<UsedVault> {
    let mut used: Vec<UsedVault> = r
        .vaults
        .values()
        .filter_map(|v| v.as_ref().ok())
        .map(|v| UsedVault {
            id: v.summary().vault_id.clone(),
            version: v.summary().version,
            model: v.model(),
        })
        .collect();
    used.sort_by(|a, b| a.id.cmp(&b.id));
    used
}

/// Records every verified vault summary in `floor`; one older than a
/// summary seen before is a rollback (§4.5).
fn record_versions(r: &Resolver<'_>, floor: &mut VersionFloor) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (vault_id, v) in &r.vaults {
        let Ok(v) = v else { continue };
        if let Err(e) = floor.observe(v.summary()) {
            problems.push(Problem {
                name: None,
                reference: Some(format!("vault {vault_id}")),
                failure: Failure::Verify(e),
            });
        }
    }
    problems
}

fn explicit_target(r: &mut Resolver<'_>, entry: &crate::config::Entry) -> Result<Target, Failure> {
    let reference = &entry.reference;
    let vault_entry = select("vault", &reference.vault, r.entries.iter().copied())?;
    let vault_id = vault_entry.id.clone();
    let v = r.vault(&vault_id)?;
    let item = select("item", &reference.item, v.item_summaries())?;
    let (detail, signer) = v.item(&item.id)?;
    let field = select("field", &reference.field, detail.fields.iter())?;
    Ok(Target {
        name: entry.name.clone(),
        delivery: entry.delivery,
        reference: entry.raw.clone(),
        vault_id,
        item_id: detail.id.clone(),
        field_id: field.id.clone(),
        signer,
    })
}

fn open_target(r: &mut Resolver<'_>, t: &Target) -> Result<Secret, Failure> {
    let legacy = r.legacy_key.take();
    let result = (|| {
        let v = r.vault(&t.vault_id)?;
        let (detail, _) = v.item(&t.item_id)?;
        let field = detail
            .fields
            .iter()
            .find(|f| f.id == t.field_id)
            .expect("field id from the same verified detail");
        v.open(field, legacy.as_ref())
    })();
    r.legacy_key = legacy;
    result
}
