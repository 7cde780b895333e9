//! `r4-exec init`: a starter `r4.toml` from what this key can read
//! ([`super::browse`]), or from a project.

use std::io::Write;
use std::path::Path;

use crate::client::Client;
use crate::contract::directory::TrustPolicy;
use crate::contract::wire::{ProjectDetail, SyncResponse};
use crate::error::AppError;
use crate::invocation::Scope;
use crate::resolve::select::select;
use crate::startup::settings;
use crate::startup::Startup;

use super::browse;

/// `init`: a starter `r4.toml` from what this key can read, or from a
/// project; never over an existing file, never with the API key in it.
pub fn run(startup: &Startup, project: Option<&str>) -> Result<u8, AppError> {
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
    super::warn_unpinned(startup, &trust);
    let listing = match &detail {
        Some((_, d)) => browse::list_project(&sync, &key, &trust, d),
        None => browse::list(&sync, &key, &trust, &Scope::default()),
    };
    let listing = listing.complete("nothing was written")?;
    let key_file = std::path::absolute(&key_path).unwrap_or(key_path);
    let starter = browse::starter::Starter {
        base_url: &settings::base_url(None),
        private_key_file: Some(&key_file),
        project: detail.map(|(selector, d)| (selector, unseen(&sync, &d))),
    };
    let text = browse::starter::starter(&listing, &starter, &path)?;
    write_new(&path, text.as_bytes())?;
    for refusal in browse::render::refused_names(&listing) {
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
        format!("name = {}", browse::render::toml_string(&found.name))
    } else {
        format!("id = {}", browse::render::toml_string(&found.id))
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
