//! `r4-exec trust`: shows, for every vault the configuration touches, the
//! signer directory the server serves (owner, fingerprint, status, inclusion
//! status) and prints a `[trust]` block to paste into `r4.toml`. Pinning turns
//! "whatever directory the server serves" into "these keys only" (contract §5).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::client::Client;
use crate::config::Config;
use crate::contract::directory::{verify_directory, OwnerType, TrustPolicy};
use crate::contract::wire::{SyncResponse, SyncVault};
use crate::error::AppError;
use crate::resolve::project::project_id;
use crate::resolve::select::select;
use crate::resolve::Problem;
use crate::startup::{settings, Startup};
use crate::ui;

/// Vaults of `sync` that `config` references (explicitly or via its
/// project). A reference or project that does not resolve is an error, as
/// in `check`: a report that skipped it would look complete.
async fn touched<'s>(
    client: &Client,
    config: &Config,
    sync: &'s SyncResponse,
) -> Result<Vec<&'s SyncVault>, AppError> {
    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    let inside: Vec<_> = config
        .composites
        .iter()
        .flat_map(|c| c.references())
        .collect();
    for e in config.entries.iter().chain(&inside) {
        match select(
            "vault",
            &e.reference.vault,
            sync.vaults.iter().map(|v| &v.vault),
        ) {
            Ok(v) => {
                ids.insert(v.id.clone());
            }
            Err(failure) => problems.push(Problem {
                name: Some(e.name.clone()),
                reference: Some(e.reference.to_string()),
                failure,
            }),
        }
    }
    if let Some(p) = &config.project {
        match project_id(client, &p.selector).await {
            Ok(id) => ids.extend(client.project(&id).await?.vaults.into_iter().map(|v| v.id)),
            Err(failure) => problems.push(Problem {
                name: None,
                reference: Some("[project]".into()),
                failure,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Resolve(problems));
    }
    Ok(sync
        .vaults
        .iter()
        .filter(|v| ids.contains(&v.vault.id))
        .collect())
}

/// Signers worth pinning: fingerprint -> (owner label, vault names).
type Pins = BTreeMap<String, (String, Vec<String>)>;

/// Renders the report for the vaults the configuration touches.
pub async fn report(
    client: &Client,
    config: &Config,
    policy: &TrustPolicy,
    my_fingerprint: Option<&str>,
) -> Result<String, AppError> {
    let sync = client.sync(None).await?;
    let vaults = touched(client, config, &sync).await?;
    let mut out = String::new();
    let mut pins = Pins::new();
    let mut logs = BTreeSet::new();
    for v in &vaults {
        logs.insert(v.signers.tree_head.body().log_id.clone());
        vault_section(&mut out, &mut pins, v, policy, my_fingerprint);
    }
    if vaults.is_empty() {
        let _ = writeln!(out, "no vault of this configuration is visible to this key");
    }
    trust_block(&mut out, &pins, &logs);
    Ok(out)
}

/// One vault: its verified directory, one line per signer; the active USER
/// signers and this agent's key become pins.
fn vault_section(
    out: &mut String,
    pins: &mut Pins,
    v: &SyncVault,
    policy: &TrustPolicy,
    my_fingerprint: Option<&str>,
) {
    let _ = writeln!(out, "vault \"{}\" ({})", v.vault.name, v.vault.id);
    let head = v.signers.tree_head.body();
    let verified = match verify_directory(&v.signers, &v.vault.id, policy) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(out, "  directory REFUSED: {e}");
            return;
        }
    };
    let mut signers: Vec<_> = verified.signers().collect();
    signers.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    for s in signers {
        let owner = match s.owner_type {
            OwnerType::User => "USER ",
            OwnerType::Agent => "AGENT",
        };
        let included = match s.included {
            Some(true) => "included",
            Some(false) => "NOT included",
            None => "inclusion unchecked (no log key pinned)",
        };
        let status = if s.active { "active " } else { "revoked" };
        let mine = Some(s.key_id.as_str()) == my_fingerprint;
        let me = if mine { "  (this agent)" } else { "" };
        let _ = writeln!(
            out,
            "  {owner} {status} {}  owner {}  {included}{me}",
            s.key_id, s.owner_id
        );
        if s.active && (s.owner_type == OwnerType::User || mine) {
            let entry = pins
                .entry(s.key_id.clone())
                .or_insert_with(|| (format!("{owner} {}", s.owner_id).replace("  ", " "), vec![]));
            entry.1.push(v.vault.name.clone());
        }
    }
    let _ = writeln!(
        out,
        "  tree head: log {} size {}",
        head.log_id, head.tree_size
    );
}

/// The `[trust]` block to paste, and a hint per transparency log.
fn trust_block(out: &mut String, pins: &Pins, logs: &BTreeSet<String>) {
    let _ = writeln!(
        out,
        "\n# Paste into r4.toml after checking each fingerprint with your R4 operator:"
    );
    let _ = writeln!(out, "[trust]\nsigners = [");
    for (fp, (owner, vaults)) in pins {
        let _ = writeln!(
            out,
            "  \"{fp}\",  # {} ({})",
            owner.trim(),
            vaults.join(", ")
        );
    }
    let _ = writeln!(out, "]");
    for log in logs {
        let _ = writeln!(
            out,
            "# log_public_key_file = \"/etc/r4/log.pem\"  # the log key with fingerprint {log}"
        );
    }
}

/// `trust`: the signer directories and a `[trust]` block.
pub fn run(startup: &Startup) -> Result<u8, AppError> {
    let config = startup.require_config()?;
    let policy = settings::trust(&config)?;
    let me = settings::private_key(Some(&config)).ok();
    let text = startup.block_on(async {
        let client = startup.client(Some(&config))?;
        report(
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
