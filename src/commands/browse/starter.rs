//! The starter `r4.toml` that `init` writes: connection settings, then the
//! listing's `[env]` lines ([`super::render::env_lines`]) or a `[project]`.

use std::fmt::Write;
use std::path::Path;

use crate::config::Config;
use crate::contract::VaultModel;
use crate::error::AppError;

use super::render::{env_lines, toml_string};
use super::Listing;

/// What `init` writes besides the listing.
#[derive(Debug)]
pub struct Starter<'a> {
    /// The base URL in use.
    pub base_url: &'a str,
    /// The agent key in use, as an absolute path.
    pub private_key_file: Option<&'a Path>,
    /// `--project`: its selector line (`name = "…"` or `id = "…"`) and the
    /// vaults of the project this key cannot see.
    pub project: Option<(String, Vec<String>)>,
}

const STARTER_HEAD: &str = "\
# r4.toml: what r4-exec fetches from R4, written by `r4-exec init`.
# Every key is documented in r4.toml.example (README: Configuration).
# Next: `r4-exec check` verifies everything and prints no value;
# then `r4-exec -- COMMAND` runs COMMAND with these variables.
";

/// A starter `r4.toml` for `listing`: connection settings, then an `[env]`
/// line per field (or, with a project, its `[project]` table and the names
/// it yields, as comments). Validated as `r4-exec` will read it; an error
/// when it would fetch nothing.
pub fn starter(listing: &Listing, s: &Starter<'_>, path: &Path) -> Result<String, AppError> {
    let mut out = String::from(STARTER_HEAD);
    r4_table(&mut out, listing, s);
    let (env, active) = env_lines(listing);
    match &s.project {
        Some((selector, unseen)) => {
            let _ = writeln!(out, "\n[project]\n{selector}");
            let _ = writeln!(out, "# It yields these variables (all of them unless include/exclude):");
            for line in env.lines().skip(1) {
                let _ = writeln!(out, "#   {}", line.trim_start_matches("# "));
            }
            for vault in unseen {
                let _ = writeln!(out, "# Vault {vault} of the project is not shared with this key: a run skips it.");
            }
        }
        None if active == 0 => {
            return Err(AppError::Usage(
                "nothing to write: this key can read no field of an end-to-end encrypted vault (see `r4-exec ls`); share a vault with the agent in R4, or use --project".into(),
            ))
        }
        None => {
            let _ = writeln!(out, "\n# Keys and certificates are better in [files] (a sealed in-memory file, not an env var): move their lines there.");
            out.push_str(&env);
        }
    }
    Config::parse(&out, path, true).map_err(AppError::from)?;
    Ok(out)
}

/// `[r4]`: where the server and the agent key are, never the API key.
fn r4_table(out: &mut String, listing: &Listing, s: &Starter<'_>) {
    let _ = writeln!(out, "\n[r4]\nbase_url = {}", toml_string(s.base_url));
    let _ = writeln!(
        out,
        "# The API key is never written here: R4_API_KEY, api_key_file, or the systemd credential r4-api-key.\n# api_key_file = \"/run/secrets/r4-api-key\""
    );
    match s.private_key_file {
        Some(p) => {
            let _ = writeln!(
                out,
                "private_key_file = {}",
                toml_string(&p.display().to_string())
            );
        }
        None => {
            let _ = writeln!(out, "# private_key_file = \"/run/secrets/r4-agent.pem\"");
        }
    }
    for (model, key, why) in [
        (
            VaultModel::Legacy,
            "allow_legacy",
            "the server holds their key (not zero-trust)",
        ),
        (
            VaultModel::Unencrypted,
            "allow_unencrypted",
            "the server can read their values",
        ),
    ] {
        let names: Vec<String> = listing
            .vaults
            .iter()
            .filter(|v| v.model == model)
            .map(|v| format!("\"{}\"", v.name))
            .collect();
        if !names.is_empty() {
            let _ = writeln!(
                out,
                "# {} ({}): a run refuses them unless you accept that {why}:\n# {key} = true",
                names.join(", "),
                if model == VaultModel::Legacy {
                    "legacy"
                } else {
                    "unencrypted"
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::browse::fixture::view;

    #[test]
    fn a_starter_never_holds_an_api_key_and_parses() {
        let listing = Listing {
            vaults: vec![view(VaultModel::V3, &[("DB", "Password")])],
            problems: vec![],
        };
        let s = Starter {
            base_url: "https://r4.example/api/v1/machine",
            private_key_file: Some(Path::new("/keys/agent.pem")),
            project: None,
        };
        let text = starter(&listing, &s, Path::new("r4.toml")).unwrap();
        let c = Config::parse(&text, Path::new("r4.toml"), true).unwrap();
        assert_eq!(
            c.r4.private_key_file.as_deref(),
            Some(Path::new("/keys/agent.pem"))
        );
        assert_eq!(c.r4.api_key_file, None);
        assert!(!text.contains("rk_"), "{text}");
        let empty = Listing {
            vaults: vec![view(VaultModel::Legacy, &[("Old", "Token")])],
            problems: vec![],
        };
        let e = starter(&empty, &s, Path::new("r4.toml")).unwrap_err();
        assert!(e.to_string().starts_with("nothing to write"), "{e}");
    }
}
