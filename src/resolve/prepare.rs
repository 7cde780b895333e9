//! Verifying, before the references are walked, everything they will need,
//! with independent checks spread over the cores ([`super::par`]).
//!
//! Two passes: first each named vault's directory and summary (cheap, one
//! job per vault), then, all at once, every vault's RSA unwrap and every
//! named item's signature check. An item check needs its vault's directory
//! and summary but not its key, so the expensive unwraps (~0.26 ms each)
//! overlap with the item checks (~20 µs each) instead of holding them up.
//!
//! The walk in [`super::verify`] stays sequential and is the single place
//! that decides what is reported; this pass only fills the caches it reads
//! (verified vaults, checked items). Anything this pass does not foresee is
//! verified lazily by the walk, so it changes the cost of a resolution, never
//! its outcome.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::config::{Config, Entry};
use crate::contract::directory::{ParsedKey, SignerKeys};
use crate::contract::wire::{ItemDetail, SyncVault};

use super::project::Fetched;
use super::select::select;
use super::vault::{check_vault_with, Checked, Opener};
use super::{par, refused, Failure, Resolver};

/// Jobs per thread below which the second pass stays on one thread.
const JOBS_PER_THREAD: usize = 4;

/// One unit of the second pass.
enum Job<'s> {
    /// Refuse checked vault `n` if the options do, else unwrap its key.
    Open(usize),
    /// Check an item of checked vault `n`.
    Item(usize, &'s str, &'s ItemDetail),
}

/// The outcome of a [`Job`].
enum Done {
    Open(Result<Opener, Failure>),
    Item(Result<String, Failure>),
}

/// The vaults a resolution names: the one of each explicit entry (in entry
/// order, `None` when its vault segment does not select one) and those of
/// the fetched project that the agent can see.
struct Named<'s> {
    by_entry: Vec<Option<&'s SyncVault>>,
    in_project: Vec<&'s SyncVault>,
}

/// Verifies the vaults and items `config` (and the fetched project) name.
pub(super) fn prepare<'s>(r: &mut Resolver<'s>, config: &Config, project: Option<&Fetched>) {
    // Explicit entries, then the references inside templates and bundles.
    let entries = config.all_references();
    let named = named(r, &entries, project);
    // Pass 1: directories and summaries of the vaults not verified yet,
    // each distinct signer key parsed once for all of them.
    let todo = pending(r, &named);
    let trust = &r.opts.trust;
    let keys = signer_keys(&todo);
    let work: Vec<_> = todo
        .iter()
        .map(|v| (*v, r.listed_items(&v.vault.id)))
        .collect();
    let checked: Vec<Result<Checked<'s>, Failure>> =
        par::map(&work, JOBS_PER_THREAD, |(v, listed)| {
            check_vault_with(v, *listed, trust, &keys)
        });
    // Pass 2: unwraps and item checks together.
    let jobs = jobs(&entries, &named, &todo, &checked);
    let (key, opts) = (r.key, r.opts);
    let done = par::map(&jobs, JOBS_PER_THREAD, |job| match job {
        Job::Open(n) => Done::Open(match &checked[*n] {
            Ok(c) => refused(c.model(), opts).and_then(|()| c.open_key(key)),
            Err(e) => Err(e.clone()),
        }),
        Job::Item(n, id, detail) => Done::Item(match &checked[*n] {
            Ok(c) => c.check(detail, id),
            Err(e) => Err(e.clone()),
        }),
    });
    assemble(r, &todo, checked, &jobs, done);
}

/// The public keys of the signers of `vaults`, each distinct PEM text
/// parsed once (on the cores, when there are enough of them): the vaults
/// of an answer mostly share their signers.
fn signer_keys(vaults: &[&SyncVault]) -> SignerKeys {
    let mut seen = HashSet::new();
    let pems: Vec<&str> = vaults
        .iter()
        .flat_map(|v| &v.signers.signers)
        .map(|s| s.public_key.as_str())
        .filter(|pem| seen.insert(*pem))
        .collect();
    par::map(&pems, JOBS_PER_THREAD, |pem| ParsedKey::parse(pem))
        .into_iter()
        .collect()
}

fn named<'s>(r: &Resolver<'s>, entries: &[Cow<Entry>], project: Option<&Fetched>) -> Named<'s> {
    let by_entry = entries
        .iter()
        .map(|e| {
            let vault = select("vault", &e.reference.vault, r.entries.iter().copied()).ok()?;
            r.raw(&vault.id)
        })
        .collect();
    let in_project = match project {
        Some(Fetched::Detail(d)) => d.vaults.iter().filter_map(|pv| r.raw(&pv.id)).collect(),
        _ => Vec::new(),
    };
    Named {
        by_entry,
        in_project,
    }
}

/// The named vaults not verified yet, each once.
fn pending<'s>(r: &Resolver<'s>, named: &Named<'s>) -> Vec<&'s SyncVault> {
    let mut todo: Vec<&'s SyncVault> = Vec::new();
    for v in named.by_entry.iter().flatten().chain(&named.in_project) {
        let id = v.vault.id.as_str();
        if !r.vaults.contains_key(id) && !todo.iter().any(|t| t.vault.id == id) {
            todo.push(v);
        }
    }
    todo
}

/// The second pass: one `Open` per checked vault, one `Item` per named item
/// of a checked vault (each once).
fn jobs<'s>(
    entries: &[Cow<Entry>],
    named: &Named<'s>,
    todo: &[&'s SyncVault],
    checked: &[Result<Checked<'s>, Failure>],
) -> Vec<Job<'s>> {
    let position = |id: &str| todo.iter().position(|t| t.vault.id == id);
    let mut jobs: Vec<Job<'s>> = Vec::new();
    for (n, c) in checked.iter().enumerate() {
        if c.is_ok() {
            jobs.push(Job::Open(n));
        }
    }
    let mut seen = HashSet::new();
    let mut item = |n: usize, id: &str| {
        if let Ok(c) = &checked[n] {
            if let Some((id, detail)) = c.detail(id) {
                if seen.insert((n, id)) {
                    jobs.push(Job::Item(n, id, detail));
                }
            }
        }
    };
    for (entry, raw) in entries.iter().zip(&named.by_entry) {
        let Some(n) = raw.and_then(|raw| position(&raw.vault.id)) else {
            continue;
        };
        let Ok(c) = &checked[n] else { continue };
        if let Ok(found) = select("item", &entry.reference.item, c.item_summaries()) {
            item(n, &found.id);
        }
    }
    for raw in &named.in_project {
        if let Some(n) = position(&raw.vault.id) {
            for i in &raw.items {
                item(n, &i.id);
            }
        }
    }
    jobs
}

/// A vault is verified when its directory, summary and key are; the
/// outcomes of its item checks are recorded in it.
fn assemble<'s>(
    r: &mut Resolver<'s>,
    todo: &[&'s SyncVault],
    checked: Vec<Result<Checked<'s>, Failure>>,
    jobs: &[Job<'s>],
    done: Vec<Done>,
) {
    let mut openers: Vec<Option<Result<Opener, Failure>>> = todo.iter().map(|_| None).collect();
    let mut items: Vec<Vec<(&str, Result<String, Failure>)>> =
        todo.iter().map(|_| vec![]).collect();
    for (job, outcome) in jobs.iter().zip(done) {
        match (job, outcome) {
            (Job::Open(n), Done::Open(o)) => openers[*n] = Some(o),
            (Job::Item(n, id, _), Done::Item(o)) => items[*n].push((id, o)),
            _ => unreachable!("each job has the outcome of its kind"),
        }
    }
    for (((raw, c), opener), outcomes) in todo.iter().zip(checked).zip(openers).zip(items) {
        let verified = c.and_then(|c| {
            let opener = opener.expect("every checked vault has an Open job")?;
            let mut v = c.into_verified(opener);
            for (id, o) in outcomes {
                v.record(id, o);
            }
            Ok(v)
        });
        r.vaults.insert(raw.vault.id.clone(), verified);
    }
}
