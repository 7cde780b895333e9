//! `[project]`: every field of a project's vaults, named as `/vault/env`
//! names them (contract §6.4), verified like explicit references. Explicit
//! `[env]`/`[files]` entries win over derived names; two fields deriving the
//! same unmapped name are an error.

use std::collections::{BTreeMap, HashSet};

use crate::client::{Client, ClientError};
use crate::config::{Config, Delivery, Project, ProjectSelector};
use crate::contract::envname::derive;
use crate::contract::wire::ProjectDetail;

use super::select::{select, Candidate};
use super::{Failure, Problem, Resolver, Target};

impl Candidate for crate::contract::wire::ProjectSummary {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Fetches the project detail, if the configuration has a project.
pub async fn fetch(client: &Client, config: &Config) -> Result<Option<ProjectDetail>, Failure> {
    let Some(p) = &config.project else {
        return Ok(None);
    };
    let id = match &p.selector {
        ProjectSelector::Id(id) => id.clone(),
        ProjectSelector::Name(name) => {
            let list = client.projects().await?;
            select("project", name, list.projects.iter())?.id.clone()
        }
    };
    client
        .project(&id)
        .await
        .map(Some)
        .map_err(|e: ClientError| Failure::Client(e))
}

/// Adds a target for every selected field of the project's visible vaults.
pub(super) fn targets(
    r: &mut Resolver<'_>,
    config: &Config,
    project: &Project,
    detail: &ProjectDetail,
    targets: &mut Vec<Target>,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) {
    let explicit: HashSet<&str> = config.entries.iter().map(|e| e.name.as_str()).collect();
    let mut derived: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for pv in &detail.vaults {
        if !r.sync.vaults.iter().any(|v| v.vault.id == pv.id) {
            notes.push(format!(
                "project vault \"{}\" ({}) is not shared with this agent; skipped",
                pv.name, pv.id
            ));
            continue;
        }
        let v = match r.vault(&pv.id) {
            Ok(v) => v,
            Err(failure) => {
                problems.push(Problem {
                    name: None,
                    reference: Some(format!("r4://{}", pv.name)),
                    failure,
                });
                continue;
            }
        };
        let mut items: Vec<_> = v.item_summaries().collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        for item in items {
            let (detail, signer) = match v.item(&item.id) {
                Ok(d) => d,
                Err(failure) => {
                    problems.push(Problem {
                        name: None,
                        reference: Some(format!("r4://{}/{}", pv.id, item.id)),
                        failure,
                    });
                    continue;
                }
            };
            for field in &detail.fields {
                let name = derive(&detail.name, &field.name);
                if explicit.contains(name.as_str()) || !project.selects(&name) {
                    continue;
                }
                derived.entry(name.clone()).or_default().push(Target {
                    name,
                    delivery: Delivery::Env,
                    reference: format!("r4://{}/{}/{}", pv.id, detail.id, field.id),
                    vault_id: pv.id.clone(),
                    item_id: detail.id.clone(),
                    field_id: field.id.clone(),
                    signer: signer.clone(),
                });
            }
        }
    }
    for (name, mut found) in derived {
        if found.len() == 1 {
            targets.push(found.pop().expect("one"));
        } else {
            problems.push(Problem {
                name: Some(name),
                reference: None,
                failure: Failure::Collision(found.into_iter().map(|t| t.reference).collect()),
            });
        }
    }
}
