//! Templates and bundles ([`crate::config::Composite`]): every reference in
//! them is selected, verified and opened exactly like an explicit entry
//! (a failure names the variable and where the reference is written: the
//! template and its line, or the bundle key), then the value is built from
//! them in memory. All or nothing, like the rest of a resolution: one
//! failing reference and no composite is built.
//!
//! A bundle of `"project"` takes every variable `[project]` derives out of
//! the environment and into itself.

use std::collections::HashSet;

use crate::compose::bundle;
use crate::compose::template::PathSlot;
use crate::config::{Composite, CompositeKind, Config, Members};
use crate::contract::Secret;

use super::{
    explicit_target, open_target, Failure, Problem, Resolved, ResolvedSecret, Resolver, Target,
};

/// The targets of each composite, in configuration order; a reference that
/// does not resolve is a problem (and leaves a hole the build never reaches).
pub(super) fn select(
    r: &mut Resolver<'_>,
    config: &Config,
    problems: &mut Vec<Problem>,
) -> Vec<Vec<Target>> {
    let mut selected = Vec::new();
    for c in &config.composites {
        let mut targets = Vec::new();
        for e in c.references() {
            match explicit_target(r, &e) {
                Ok(t) => targets.push(t),
                Err(failure) => problems.push(Problem {
                    name: Some(e.name),
                    reference: Some(e.raw),
                    failure,
                }),
            }
        }
        selected.push(targets);
    }
    selected
}

/// Opens the selected references and, if every one of the resolution
/// opened, builds each composite into `out.secrets`, its parts into
/// `out.parts`.
pub(super) fn build(
    r: &mut Resolver<'_>,
    config: &Config,
    selected: Vec<Vec<Target>>,
    overridden: &HashSet<String>,
    out: &mut Resolved,
    problems: &mut Vec<Problem>,
) {
    let mut opened = Vec::new();
    for targets in selected {
        let mut parts = Vec::new();
        for t in targets {
            match open_target(r, &t) {
                Ok(value) => parts.push(t.resolved(value)),
                Err(failure) => problems.push(Problem {
                    name: Some(t.name),
                    reference: Some(t.reference),
                    failure,
                }),
            }
        }
        opened.push(parts);
    }
    if !problems.is_empty() {
        return;
    }
    let project = take_project(config, overridden, out);
    for (c, mut parts) in config.composites.iter().zip(opened) {
        if c.takes_project() {
            parts = project.iter().map(|s| as_part(c, s)).collect();
        }
        match build_one(c, &parts, &project) {
            Ok((value, paths)) => out.secrets.push(whole(c, value, paths, parts.len())),
            Err((reference, why)) => problems.push(Problem {
                name: Some(c.name.clone()),
                reference: Some(reference),
                failure: Failure::Build(why),
            }),
        }
        out.parts.extend(parts);
    }
}

/// When a bundle takes `"project"`: the derived variables, out of the
/// environment, in name order. Derived ones are those no resolved entry or
/// composite names (explicit names win over derived ones; `overridden`
/// entries of lower sources lost to a derived name and were not resolved).
fn take_project(
    config: &Config,
    overridden: &HashSet<String>,
    out: &mut Resolved,
) -> Vec<ResolvedSecret> {
    if !config.composites.iter().any(Composite::takes_project) {
        return Vec::new();
    }
    let explicit: HashSet<&str> = config
        .entries
        .iter()
        .filter(|e| !overridden.contains(&e.name))
        .map(|e| e.name.as_str())
        .chain(config.composites.iter().map(|c| c.name.as_str()))
        .collect();
    let (mut project, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut out.secrets)
        .into_iter()
        .partition(|s| !explicit.contains(s.name.as_str()));
    out.secrets = rest;
    project.sort_by(|a, b| a.name.cmp(&b.name));
    project
}

/// A project variable as a part of bundle `c` (for `check` and `--mask`).
fn as_part(c: &Composite, s: &ResolvedSecret) -> ResolvedSecret {
    ResolvedSecret {
        name: c.name.clone(),
        delivery: c.delivery,
        reference: format!("{} as {}", s.reference, s.name),
        vault_id: s.vault_id.clone(),
        item_id: s.item_id.clone(),
        field_id: s.field_id.clone(),
        signer: s.signer.clone(),
        value: s.value.clone(),
        paths: Vec::new(),
    }
}

/// The value of `c` from its opened parts (and the project's variables);
/// else where it failed and why.
fn build_one(
    c: &Composite,
    parts: &[ResolvedSecret],
    project: &[ResolvedSecret],
) -> Result<(Secret, Vec<PathSlot>), (String, &'static str)> {
    match &c.kind {
        CompositeKind::Template(t) => {
            let values: Vec<&[u8]> = parts.iter().map(|p| p.value.expose()).collect();
            t.render(&values)
                .ok_or_else(|| (format!("template {}", t.origin()), "a value is missing"))
        }
        CompositeKind::Bundle { format, members } => {
            let entries: Vec<(&str, &[u8])> = match members {
                Members::Refs(refs) => refs
                    .iter()
                    .zip(parts)
                    .map(|((key, _), p)| (key.as_str(), p.value.expose()))
                    .collect(),
                Members::Project => project
                    .iter()
                    .map(|s| (s.name.as_str(), s.value.expose()))
                    .collect(),
            };
            bundle::render(*format, &entries)
                .map(|value| (value, Vec::new()))
                .map_err(|e| (format!("{} bundle, key {}", format.name(), e.key), e.reason))
        }
    }
}

/// The built value of `c`, as the secret delivered.
fn whole(c: &Composite, value: Secret, paths: Vec<PathSlot>, parts: usize) -> ResolvedSecret {
    let reference = match &c.kind {
        CompositeKind::Template(t) => format!("template {} ({parts} placeholders)", t.origin()),
        CompositeKind::Bundle { format, members } => format!(
            "{} bundle of {}{parts} secrets",
            format.name(),
            match members {
                Members::Project => "[project], ",
                Members::Refs(_) => "",
            }
        ),
    };
    ResolvedSecret {
        name: c.name.clone(),
        delivery: c.delivery,
        reference,
        vault_id: String::new(),
        item_id: String::new(),
        field_id: String::new(),
        signer: String::new(),
        value,
        paths,
    }
}
