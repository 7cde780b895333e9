//! `[project]`: every field of a project's vaults, named as `/vault/env`
//! names them (contract §6.4), verified like explicit references. Explicit
//! `[env]`/`[files]` entries win over derived names; two fields deriving the
//! same unmapped name are an error, and so is a derived name that would set
//! a variable of a [`crate::hygiene`] family (`PATH`, `LD_*`, `GIT_*`, …).

use std::collections::{BTreeMap, HashSet};

use crate::client::{Client, ClientError};
use crate::config::{Config, Delivery, Project, ProjectSelector, ProjectSource};
use crate::contract::envelope::{self, Expect};
use crate::contract::envname::derive;
use crate::contract::wire::{EnvResponse, ProjectDetail};
use crate::contract::Secret;

use super::select::{select, Candidate};
use super::vault::Opener;
use super::{Failure, Problem, ResolvedSecret, Resolver, Target};

impl Candidate for crate::contract::wire::ProjectSummary {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// What `[project]` needs from the server (kept as is in the fallback
/// copy: no value in it is plaintext, see `super::offline`).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Fetched {
    /// The project detail (verified source).
    Detail(ProjectDetail),
    /// The `/vault/env` answer (env-endpoint source).
    Env(EnvResponse),
}

/// Fetches what the configuration's project needs, if it has one: the
/// project detail, or its `/vault/env` map. A project named by name costs
/// one more round (the project list).
pub async fn fetch(client: &Client, config: &Config) -> Result<Option<Fetched>, Failure> {
    let Some(p) = &config.project else {
        return Ok(None);
    };
    let id = project_id(client, &p.selector).await?;
    let fetched = match p.source {
        ProjectSource::Verified => client.project(&id).await.map(Fetched::Detail),
        ProjectSource::EnvEndpoint => client.env(&id).await.map(Fetched::Env),
    };
    fetched
        .map(Some)
        .map_err(|e: ClientError| Failure::Client(e))
}

/// The id of the project `selector` names: an id as is, a name looked up in
/// the project list (exact, else unique case-insensitive; anything else
/// fails with the candidates). The one place a project is selected.
pub async fn project_id(client: &Client, selector: &ProjectSelector) -> Result<String, Failure> {
    match selector {
        ProjectSelector::Id(id) => Ok(id.clone()),
        ProjectSelector::Name(name) => {
            let list = client.projects().await?;
            Ok(select("project", name, list.projects.iter())?.id.clone())
        }
    }
}

/// `source = "env-endpoint"`: opens every selected value of a `/vault/env`
/// answer. Envelopes are opened with the DEK of the vault their header names
/// (that vault's key and directory verified as usual); plaintext values are
/// accepted only with `allow_unencrypted`. Which name carries which value is
/// the server's word: this endpoint has no checkpoint.
pub(super) fn env_secrets(
    r: &mut Resolver<'_>,
    config: &Config,
    project: &Project,
    env: &EnvResponse,
    secrets: &mut Vec<ResolvedSecret>,
    problems: &mut Vec<Problem>,
) {
    let explicit = explicit_names(config);
    for name in env.collisions.iter().flatten() {
        if !explicit.contains(name.as_str()) && project.selects(name) {
            problems.push(Problem {
                name: Some(name.clone()),
                reference: Some(format!("/vault/env/{}", env.project_id)),
                failure: Failure::Collision(vec!["reported by the server".into()]),
            });
        }
    }
    for (name, value) in &env.env {
        if explicit.contains(name.as_str()) || !project.selects(name) {
            continue;
        }
        let reference = format!("/vault/env/{}#{name}", env.project_id);
        if let Some(failure) = startup_variable(name) {
            problems.push(Problem {
                name: Some(name.clone()),
                reference: Some(reference),
                failure,
            });
            continue;
        }
        match open_env_value(r, value) {
            Ok((vault_id, secret)) => secrets.push(ResolvedSecret {
                name: name.clone(),
                delivery: Delivery::Env,
                reference,
                vault_id,
                item_id: String::new(),
                field_id: String::new(),
                signer: "(server mapping; no checkpoint)".into(),
                value: secret,
                paths: Vec::new(),
            }),
            Err(failure) => problems.push(Problem {
                name: Some(name.clone()),
                reference: Some(reference),
                failure,
            }),
        }
    }
}

fn open_env_value(r: &mut Resolver<'_>, value: &str) -> Result<(String, Secret), Failure> {
    if !envelope::is_envelope(value) {
        if !r.opts.allow_unencrypted {
            return Err(Failure::UnencryptedNotAllowed);
        }
        return Ok((String::new(), Secret::new(value.as_bytes().to_vec())));
    }
    let vid = envelope::peek_header(value)?.vid;
    if !r.sync.vaults.iter().any(|v| v.vault.id == vid) {
        return Err(Failure::NotFound {
            what: "vault",
            segment: vid,
            candidates: vec![],
        });
    }
    let v = r.vault(&vid)?;
    match &v.opener {
        Opener::V3 { dek, dek_version } => {
            let expect = Expect {
                vault_id: &vid,
                field_id: None,
                dek_version: *dek_version,
            };
            Ok((vid.clone(), envelope::open(value, dek, expect)?))
        }
        _ => Err(Failure::Envelope(crate::contract::EnvelopeError::Malformed)),
    }
}

/// What `[project]` selects: one target per derived name, the problems
/// (a vault or item that failed verification, two fields deriving one
/// name), and notes on what was skipped.
#[derive(Default)]
pub(super) struct Selection {
    pub targets: Vec<Target>,
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
}

/// A target for every selected field of the project's vaults that are
/// shared with the agent; explicit entries win over derived names.
pub(super) fn targets(
    r: &mut Resolver<'_>,
    config: &Config,
    project: &Project,
    detail: &ProjectDetail,
) -> Selection {
    let explicit = explicit_names(config);
    let wanted = |name: &str| !explicit.contains(name) && project.selects(name);
    let mut selection = Selection::default();
    let mut derived: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for pv in &detail.vaults {
        if !r.sync.vaults.iter().any(|v| v.vault.id == pv.id) {
            selection.notes.push(format!(
                "project vault \"{}\" ({}) is not shared with this agent; skipped",
                pv.name, pv.id
            ));
            continue;
        }
        for found in vault_fields(r, pv, &wanted) {
            match found {
                Ok(t) => derived.entry(t.name.clone()).or_default().push(t),
                Err(problem) => selection.problems.push(problem),
            }
        }
    }
    for (name, mut found) in derived {
        if found.len() == 1 {
            selection.targets.extend(found.pop());
        } else {
            selection.problems.push(Problem {
                name: Some(name),
                reference: None,
                failure: Failure::Collision(found.into_iter().map(|t| t.reference).collect()),
            });
        }
    }
    selection
}

/// Every field of one project vault whose derived name is `wanted`, in item
/// id order; a vault or item that fails verification is a problem.
fn vault_fields(
    r: &mut Resolver<'_>,
    pv: &crate::contract::wire::ProjectVault,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<Result<Target, Problem>> {
    let problem = |reference: String, failure| Problem {
        name: None,
        reference: Some(reference),
        failure,
    };
    let v = match r.vault(&pv.id) {
        Ok(v) => v,
        Err(failure) => return vec![Err(problem(format!("r4://{}", pv.name), failure))],
    };
    let mut items: Vec<_> = v.item_summaries().collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = Vec::new();
    for item in items {
        let (detail, signer) = match v.item(&item.id) {
            Ok(d) => d,
            Err(failure) => {
                out.push(Err(problem(format!("r4://{}/{}", pv.id, item.id), failure)));
                continue;
            }
        };
        for field in &detail.fields {
            let name = derive(&detail.name, &field.name);
            if let Some(failure) = startup_variable(&name).filter(|_| wanted(&name)) {
                let at = format!("r4://{}/{}/{}", pv.name, detail.name, field.name);
                out.push(Err(Problem {
                    name: Some(name),
                    reference: Some(at),
                    failure,
                }));
            } else if wanted(&name) {
                out.push(Ok(Target {
                    name,
                    delivery: Delivery::Env,
                    reference: format!("r4://{}/{}/{}", pv.id, detail.id, field.id),
                    vault_id: pv.id.clone(),
                    item_id: detail.id.clone(),
                    field_id: field.id.clone(),
                    signer: signer.clone(),
                }));
            }
        }
    }
    out
}

/// The refusal of a derived `name` that a vault writer may not choose
/// ([`crate::hygiene`]), if it is one.
fn startup_variable(name: &str) -> Option<Failure> {
    crate::hygiene::refusal(name).map(|family| Failure::StartupVariable {
        name: name.to_owned(),
        family,
    })
}

/// Names `r4.toml` maps itself (entries, templates, bundles): they win
/// over derived ones. Entries of lower sources (environment, env files) are
/// not among them: a derived name wins over those.
fn explicit_names(config: &Config) -> HashSet<&str> {
    config
        .entries
        .iter()
        .filter(|e| e.explicit)
        .map(|e| e.name.as_str())
        .chain(config.composites.iter().map(|c| c.name.as_str()))
        .collect()
}
