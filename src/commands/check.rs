//! `r4-exec check`: resolve and verify everything a run would, print where
//! each value comes from, never a value.

use std::collections::HashSet;

use crate::config::Delivery;
use crate::error::AppError;
use crate::resolve::ResolvedSecret;
use crate::startup::Startup;
use crate::ui;

/// `check`: resolve and verify everything, print no value. From R4 only:
/// it checks the server (the fallback copy is stored, never used). A
/// template or bundle is listed with every reference it was built from (each
/// verified like an explicit one), under its variable.
pub fn run(startup: &Startup, json: bool) -> Result<u8, AppError> {
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
