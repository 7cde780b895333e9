//! `r4-exec ls`: what this key can read, verified ([`super::browse`]).

use crate::contract::directory::TrustPolicy;
use crate::error::AppError;
use crate::invocation::Scope;
use crate::startup::settings;
use crate::startup::Startup;
use crate::ui;

use super::browse;

/// `ls`: what this key can read, verified, as references; never a value.
pub fn run(startup: &Startup, scope: &Scope, toml: bool) -> Result<u8, AppError> {
    let config = startup.load_config(false)?;
    let trust = match &config {
        Some(c) => settings::trust(c)?,
        None => TrustPolicy::default(),
    };
    let (path, client) = startup.agent(config.as_ref())?;
    let key = settings::load_private_key(path)?;
    let sync = startup.block_on(async { Ok(client.sync(None).await?) })?;
    super::warn_unpinned(startup, &trust);
    let listing = browse::list(&sync, &key, &trust, scope);
    if toml {
        ui::out(&browse::render::env_lines(&listing).0);
        for refusal in browse::render::refused_names(&listing) {
            startup.ui.warn(&refusal);
        }
    } else {
        ui::out(&browse::render::render(&listing));
    }
    listing.complete("what failed is not listed")?;
    Ok(0)
}
