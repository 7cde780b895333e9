//! `r4-exec ls` and `r4-exec init`: what this key can read — vaults, items
//! and fields with their ids, types and whether each is secret — verified
//! the way a run verifies it ([`crate::resolve::vault`]: signer directory,
//! summary checkpoint, wrapped key, item signatures), so that a reference
//! copied from here resolves the same way under `check`. What fails
//! verification is reported, never listed.
//!
//! No value is ever shown, not even of a field marked not secret: "not
//! secret" is a label an operator chose, not a promise (a host name or a user
//! name can still matter to an attacker), and listings like this one end up
//! in terminals, tickets and CI logs. Nothing here copies a value.
//!
//! Here: the verified listing; [`render`]: it as text and as `[env]` lines;
//! [`starter`]: the `r4.toml` that `init` writes.

pub mod render;
pub mod starter;

use crate::contract::crypto::PrivateKey;
use crate::contract::directory::TrustPolicy;
use crate::contract::wire::{ItemSummary, ProjectDetail, SyncResponse, SyncVault, Vault};
use crate::contract::{VaultModel, VerifyError};
use crate::error::AppError;
use crate::invocation::Scope;
use crate::reference::{escape_segment, SCHEME};
use crate::resolve::select::select;
use crate::resolve::vault::{check_vault, Checked};
use crate::resolve::{Failure, Problem};

/// A field as listed: never its value.
#[derive(Debug, Clone)]
pub struct FieldView {
    /// Field id.
    pub id: String,
    /// Field name.
    pub name: String,
    /// Field type (PASSWORD, TEXT, ...).
    pub field_type: String,
    /// Whether R4 marks it secret.
    pub secret: bool,
    /// Its reference segment: the name when the name selects it, else the id.
    pub segment: String,
}

/// An item whose signature verified.
#[derive(Debug, Clone)]
pub struct ItemView {
    /// Item id.
    pub id: String,
    /// Item name.
    pub name: String,
    /// Item type (LOGIN, API_KEY, ...).
    pub item_type: String,
    /// Its reference segment.
    pub segment: String,
    /// Fingerprint of the key that signed it.
    pub signer: String,
    /// Its fields, in the item's order.
    pub fields: Vec<FieldView>,
}

/// A vault whose directory, summary and key verified.
#[derive(Debug, Clone)]
pub struct VaultView {
    /// Vault id.
    pub id: String,
    /// Vault name (not signed: reference a vault by id to be immune to a rename).
    pub name: String,
    /// Its reference segment.
    pub segment: String,
    /// How its values are protected.
    pub model: VaultModel,
    /// Its items, by name.
    pub items: Vec<ItemView>,
}

impl VaultView {
    /// Every field of the vault with its item and full reference.
    fn fields(&self) -> impl Iterator<Item = (&ItemView, &FieldView, String)> {
        self.items.iter().flat_map(move |i| {
            i.fields.iter().map(move |f| {
                let reference = format!("{SCHEME}{}/{}/{}", self.segment, i.segment, f.segment);
                (i, f, reference)
            })
        })
    }
}

/// What verified, and what did not.
#[derive(Debug, Default)]
pub struct Listing {
    /// Vaults, by name.
    pub vaults: Vec<VaultView>,
    /// Everything that failed (or that the scope named and does not exist).
    pub problems: Vec<Problem>,
}

impl Listing {
    /// `Ok` when nothing failed; otherwise every problem, and `outcome`
    /// (what that means for the command) as the last line.
    pub fn complete(self, outcome: &'static str) -> Result<Listing, AppError> {
        if self.problems.is_empty() {
            Ok(self)
        } else {
            Err(AppError::Incomplete {
                problems: self.problems,
                outcome,
            })
        }
    }
}

/// Verifies and lists what `scope` names in a full sync answer.
pub fn list(sync: &SyncResponse, key: &PrivateKey, trust: &TrustPolicy, scope: &Scope) -> Listing {
    let mut listing = Listing::default();
    let vaults: Vec<&SyncVault> = match &scope.vault {
        None => sync.vaults.iter().collect(),
        Some(segment) => match select("vault", segment, vaults_of(sync)) {
            Ok(v) => sync.vaults.iter().filter(|s| s.vault.id == v.id).collect(),
            Err(failure) => {
                listing.problems.push(problem(segment, failure));
                return listing;
            }
        },
    };
    add_vaults(&mut listing, sync, vaults, key, trust, scope);
    listing
}

/// Verifies and lists the vaults of a project that are shared with this key.
pub fn list_project(
    sync: &SyncResponse,
    key: &PrivateKey,
    trust: &TrustPolicy,
    project: &ProjectDetail,
) -> Listing {
    let mut listing = Listing::default();
    let vaults = sync
        .vaults
        .iter()
        .filter(|v| project.vaults.iter().any(|p| p.id == v.vault.id))
        .collect();
    add_vaults(&mut listing, sync, vaults, key, trust, &Scope::default());
    listing
}

fn add_vaults(
    listing: &mut Listing,
    sync: &SyncResponse,
    vaults: Vec<&SyncVault>,
    key: &PrivateKey,
    trust: &TrustPolicy,
    scope: &Scope,
) {
    for raw in vaults {
        let segment = segment_for(&raw.vault.id, &raw.vault.name, || {
            select("vault", &raw.vault.name, vaults_of(sync)).map(|v| v.id.as_str())
        });
        let label = format!("{SCHEME}{segment}");
        match verify_vault(raw, key, trust) {
            Ok(checked) => {
                let items = items(&checked, &label, scope, &mut listing.problems);
                listing.vaults.push(VaultView {
                    id: raw.vault.id.clone(),
                    name: raw.vault.name.clone(),
                    segment,
                    model: checked.model(),
                    items,
                });
            }
            Err(failure) => listing.problems.push(problem(&label, failure)),
        }
    }
    by_name(&mut listing.vaults, |v| &v.name);
}

/// The vault list entries of a sync answer: one iterator type, so that
/// `select` over vaults is compiled once here (the static binary has a
/// 6 MiB budget).
fn vaults_of(sync: &SyncResponse) -> impl Iterator<Item = &Vault> + Clone {
    sync.vaults.iter().map(|v| &v.vault)
}

/// Orders `items` by name, case-insensitively. The keys are sorted by one
/// non-generic function, so vaults and items share one copy of the sort
/// code (each generic sort costs about 7 KB of the static binary's budget).
fn by_name<T>(items: &mut Vec<T>, name: impl Fn(&T) -> &String) {
    let order = name_order(items.iter().map(|i| name(i).to_lowercase()).collect());
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

/// The positions of `names` in sorted order (ties in their given order).
fn name_order(names: Vec<String>) -> Vec<usize> {
    let mut keyed: Vec<(String, usize)> = names.into_iter().zip(0..).collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// A vault's directory and summary, then its wrapped key: signed for this
/// vault by a signer of the directory, wrapped to this agent's key, and
/// unwrapped (the DEK is wiped at once). That is what "this key can read
/// it" means.
fn verify_vault<'s>(
    raw: &'s SyncVault,
    key: &PrivateKey,
    trust: &TrustPolicy,
) -> Result<Checked<'s>, Failure> {
    let checked = check_vault(raw, None, trust)?;
    drop(checked.open_key(key)?);
    Ok(checked)
}

/// The items of a verified vault that `scope` names, each with its
/// signature checked; a failing item is a problem and is left out.
fn items(
    checked: &Checked<'_>,
    vault: &str,
    scope: &Scope,
    problems: &mut Vec<Problem>,
) -> Vec<ItemView> {
    let chosen: Vec<&ItemSummary> = match &scope.item {
        None => checked.item_summaries().collect(),
        Some(segment) => match select("item", segment, checked.item_summaries()) {
            Ok(item) => vec![item],
            Err(failure) => {
                problems.push(problem(&format!("{vault}/{segment}"), failure));
                return Vec::new();
            }
        },
    };
    let mut out = Vec::new();
    for summary in chosen {
        let segment = segment_for(&summary.id, &summary.name, || {
            select("item", &summary.name, checked.item_summaries()).map(|i| i.id.as_str())
        });
        let label = format!("{vault}/{segment}");
        match item(checked, summary, segment, scope) {
            Ok(view) => out.push(view),
            Err(failure) => problems.push(problem(&label, failure)),
        }
    }
    by_name(&mut out, |i| &i.name);
    out
}

/// One item: its detail verified against the vault summary (§4.3), its
/// fields as `scope` selects them.
fn item(
    checked: &Checked<'_>,
    summary: &ItemSummary,
    segment: String,
    scope: &Scope,
) -> Result<ItemView, Failure> {
    let (id, detail) = checked
        .detail(&summary.id)
        .ok_or_else(|| Failure::Verify(VerifyError::NotInSummary(summary.id.to_string())))?;
    let signer = checked.check(detail, id)?;
    let fields = match &scope.field {
        None => detail.fields.iter().collect(),
        Some(segment) => vec![select("field", segment, detail.fields.iter())?],
    };
    let fields = fields
        .into_iter()
        .map(|f| FieldView {
            id: f.id.clone(),
            name: f.name.clone(),
            field_type: f.field_type.clone(),
            secret: f.is_secret,
            segment: segment_for(&f.id, &f.name, || {
                select("field", &f.name, detail.fields.iter()).map(|g| g.id.as_str())
            }),
        })
        .collect();
    Ok(ItemView {
        id: summary.id.to_string(),
        name: summary.name.to_string(),
        item_type: summary.item_type.to_string(),
        segment,
        signer,
        fields,
    })
}

/// The segment that names an object in a reference: its name (escaped)
/// when the name selects this very object, else its id, so that every
/// reference printed resolves, even among duplicate names.
fn segment_for<'a, F>(id: &str, name: &str, selected: F) -> String
where
    F: FnOnce() -> Result<&'a str, Failure>,
{
    match selected() {
        Ok(found) if found == id => escape_segment(name),
        _ => id.to_string(),
    }
}

fn problem(reference: &str, failure: Failure) -> Problem {
    Problem {
        name: None,
        reference: Some(reference.to_string()),
        failure,
    }
}

/// How a vault's values are protected, and what a run does with it.
pub(super) fn model_text(model: VaultModel) -> &'static str {
    match model {
        VaultModel::V3 => "end-to-end encrypted, key unwrapped with this agent's key",
        VaultModel::Legacy => {
            "legacy: the server holds the key; a run refuses it unless allow_legacy = true"
        }
        VaultModel::Unencrypted => {
            "unencrypted: the server can read it; a run refuses it unless allow_unencrypted = true"
        }
    }
}

/// One line per listed vault that a run refuses by default (legacy,
/// unencrypted): with `[project]` these fail `check` until the operator
/// opts in, which `init` must say rather than leave to be discovered.
pub fn refused_by_default(listing: &Listing) -> Vec<String> {
    listing
        .vaults
        .iter()
        .filter_map(|v| {
            let (kind, key) = match v.model {
                VaultModel::V3 => return None,
                VaultModel::Legacy => ("legacy (the server holds its key)", "allow_legacy"),
                VaultModel::Unencrypted => {
                    ("unencrypted (the server can read it)", "allow_unencrypted")
                }
            };
            Some(format!(
                "vault \"{}\" is {kind}: `r4-exec check` refuses it until {key} = true in [r4]",
                v.name
            ))
        })
        .collect()
}

#[cfg(test)]
pub(super) mod fixture {
    //! A listing built by hand, for the tests of [`super::render`] and
    //! [`super::starter`].
    use super::*;

    /// A vault of `model` with one item and field per pair.
    pub fn view(model: VaultModel, fields: &[(&str, &str)]) -> VaultView {
        let items = fields
            .iter()
            .map(|(item, field)| ItemView {
                id: format!("i-{item}"),
                name: item.to_string(),
                item_type: "LOGIN".into(),
                segment: escape_segment(item),
                signer: "sha256:00".into(),
                fields: vec![FieldView {
                    id: format!("f-{field}"),
                    name: field.to_string(),
                    field_type: "PASSWORD".into(),
                    secret: true,
                    segment: escape_segment(field),
                }],
            })
            .collect();
        VaultView {
            id: "v".into(),
            name: "V \"quoted\"".into(),
            segment: escape_segment("V \"quoted\""),
            model,
            items,
        }
    }
}
