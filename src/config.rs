//! `r4.toml`: what to fetch and how to reach R4.
//!
//! Parsed in two stages (ripgrep style): [`RawConfig`] is the file as written,
//! with unknown keys refused; [`Config`] is the validated form with references
//! parsed, names checked and every entry in one list. Environment overrides
//! (`R4_BASE_URL`, `R4_PRIVATE_KEY_FILE`) are applied by the caller, which
//! owns the process environment. See `r4.toml.example` for every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::contract::envname::is_valid_env_name;
use crate::reference::{Reference, ReferenceError};

/// Default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://r4.dev/api/v1/machine";

/// The file as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Connection settings.
    #[serde(default)]
    pub r4: RawR4,
    /// Env var -> reference.
    #[serde(default)]
    pub env: BTreeMap<String, RawEntry>,
    /// Env var (holding a path) -> reference, delivered in a memfd.
    #[serde(default)]
    pub files: BTreeMap<String, RawEntry>,
    /// A whole project.
    pub project: Option<RawProject>,
    /// Pins.
    #[serde(default)]
    pub trust: RawTrust,
    /// The fallback copy (`docs/fallback.md`).
    #[serde(default)]
    pub fallback: RawFallback,
}

/// `[fallback]`: where to keep the last verified answer, and how old it may
/// be when R4 cannot be reached. Validated by `crate::settings::fallback`,
/// where the environment overrides it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    /// The file.
    pub path: Option<PathBuf>,
    /// E.g. `"24h"`.
    pub max_age: Option<String>,
}

/// `[r4]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawR4 {
    /// API base URL.
    pub base_url: Option<String>,
    /// File holding the API key.
    pub api_key_file: Option<PathBuf>,
    /// The agent's private key (PEM).
    pub private_key_file: Option<PathBuf>,
    /// Extra CA certificate(s) (PEM).
    pub ca_file: Option<PathBuf>,
    /// Accept legacy (server-held key) vaults.
    #[serde(default)]
    pub allow_legacy: bool,
    /// Accept unencrypted vaults.
    #[serde(default)]
    pub allow_unencrypted: bool,
    /// How the answer is fetched (`docs/plan.md`).
    #[serde(default)]
    pub plan: Plan,
}

/// `[r4] plan`: one full sync, or only what the references name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Plan {
    /// A full sync, unless its answer turns out larger than a limit and
    /// every reference is explicit (default).
    #[default]
    Auto,
    /// Always one full `GET /vault/sync`.
    Sync,
    /// The vault list, the named vaults' item lists, keys and directories,
    /// and the named items' details; explicit references only.
    Referenced,
}

/// A reference, bare or as a table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[serde(expecting = "expected \"r4://<vault>/<item>/<field>\" or { ref = \"r4://…\" }")]
pub enum RawEntry {
    /// `NAME = "r4://…"`.
    Ref(String),
    /// `NAME = { ref = "r4://…" }`.
    Table(RawEntryTable),
}

/// Table form of an entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntryTable {
    /// The reference.
    #[serde(rename = "ref")]
    pub reference: String,
}

/// `[project]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    /// Project id.
    pub id: Option<String>,
    /// Project name (exact, else unique case-insensitive).
    pub name: Option<String>,
    /// Globs over derived names to keep (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs over derived names to drop.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `verified` (default) or `env-endpoint`.
    #[serde(default)]
    pub source: ProjectSource,
}

/// Where `[project]` values come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProjectSource {
    /// Every field fetched and verified like an explicit reference (default).
    #[default]
    Verified,
    /// One `GET /vault/env/:projectId`: envelopes are still authenticated by
    /// their vault's DEK, but which value carries which name is the server's
    /// word (the endpoint has no checkpoint).
    EnvEndpoint,
}

/// `[trust]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTrust {
    /// Pinned signer fingerprints.
    #[serde(default)]
    pub signers: Vec<String>,
    /// Pinned transparency-log public key (PEM file).
    pub log_public_key_file: Option<PathBuf>,
}

/// How a secret reaches the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The value in an env var.
    Env,
    /// A sealed memfd; the env var holds its path.
    File,
}

/// One validated `[env]`/`[files]` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Env var name.
    pub name: String,
    /// Where the value goes.
    pub delivery: Delivery,
    /// The reference as written.
    pub raw: String,
    /// Parsed.
    pub reference: Reference,
}

/// Which project.
#[derive(Debug, Clone)]
pub enum ProjectSelector {
    /// By id.
    Id(String),
    /// By name.
    Name(String),
}

/// Validated `[project]`.
#[derive(Debug, Clone)]
pub struct Project {
    /// Which project.
    pub selector: ProjectSelector,
    /// Keep names matching any of these (all when none).
    pub include: Option<globset::GlobSet>,
    /// Drop names matching any of these.
    pub exclude: Option<globset::GlobSet>,
    /// Where values come from.
    pub source: ProjectSource,
}

impl Project {
    /// Whether a derived name passes include/exclude.
    pub fn selects(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(name))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(name))
    }
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[r4]`.
    pub r4: RawR4,
    /// Every explicit entry.
    pub entries: Vec<Entry>,
    /// `[project]`.
    pub project: Option<Project>,
    /// `[trust]`.
    pub trust: RawTrust,
    /// `[fallback]`.
    pub fallback: RawFallback,
}

/// A configuration problem. Messages name the file and the key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown key (message has line and column).
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// toml's message, with line/column.
        message: String,
    },
    /// Invalid env var name.
    #[error(
        "{path}: [{table}] {name}: not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
    )]
    BadName {
        /// File.
        path: PathBuf,
        /// `env` or `files`.
        table: &'static str,
        /// The name.
        name: String,
    },
    /// The same name in `[env]` and `[files]`.
    #[error("{path}: {name} is mapped twice (in [env] and in [files])")]
    Duplicate {
        /// File.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// A reference that does not parse.
    #[error("{path}: [{table}] {name} = \"{reference}\": {source}")]
    Reference {
        /// File.
        path: PathBuf,
        /// `env` or `files`.
        table: &'static str,
        /// The name.
        name: String,
        /// The reference text.
        reference: String,
        /// Why.
        source: ReferenceError,
    },
    /// `[project]` problems.
    #[error("{path}: [project] {message}")]
    Project {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Nothing to fetch.
    #[error("{path}: nothing to fetch: add [env], [files] or [project]")]
    Empty {
        /// File.
        path: PathBuf,
    },
}

impl Config {
    /// No `r4.toml`: defaults everywhere, nothing to fetch (the environment
    /// and env files may add entries, see `crate::sources`).
    pub fn empty() -> Config {
        Config {
            path: PathBuf::from("(no r4.toml)"),
            r4: RawR4::default(),
            entries: Vec::new(),
            project: None,
            trust: RawTrust::default(),
            fallback: RawFallback::default(),
        }
    }

    /// Reads and validates `path`; `require_entries` refuses a file with
    /// nothing to fetch (subcommands that only need credentials pass false).
    pub fn load(path: &Path, require_entries: bool) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path, require_entries)
    }

    /// Validates `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path, require_entries: bool) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let p = || path.to_path_buf();
        let mut entries = Vec::new();
        for (table, delivery, map) in [
            ("env", Delivery::Env, &raw.env),
            ("files", Delivery::File, &raw.files),
        ] {
            for (name, entry) in map {
                if !is_valid_env_name(name) {
                    return Err(ConfigError::BadName {
                        path: p(),
                        table,
                        name: name.clone(),
                    });
                }
                let text = match entry {
                    RawEntry::Ref(s) => s,
                    RawEntry::Table(t) => &t.reference,
                };
                let reference =
                    Reference::parse(text).map_err(|source| ConfigError::Reference {
                        path: p(),
                        table,
                        name: name.clone(),
                        reference: text.clone(),
                        source,
                    })?;
                entries.push(Entry {
                    name: name.clone(),
                    delivery,
                    raw: text.clone(),
                    reference,
                });
            }
        }
        if let Some(name) = raw.env.keys().find(|n| raw.files.contains_key(*n)) {
            return Err(ConfigError::Duplicate {
                path: p(),
                name: name.clone(),
            });
        }
        let project = raw
            .project
            .as_ref()
            .map(|rp| project(rp, path))
            .transpose()?;
        if require_entries && entries.is_empty() && project.is_none() {
            return Err(ConfigError::Empty { path: p() });
        }
        Ok(Config {
            path: path.to_path_buf(),
            r4: raw.r4,
            entries,
            project,
            trust: raw.trust,
            fallback: raw.fallback,
        })
    }
}

fn project(rp: &RawProject, path: &Path) -> Result<Project, ConfigError> {
    let err = |message: String| ConfigError::Project {
        path: path.to_path_buf(),
        message,
    };
    let selector = match (&rp.id, &rp.name) {
        (Some(id), None) => ProjectSelector::Id(id.clone()),
        (None, Some(name)) => ProjectSelector::Name(name.clone()),
        _ => return Err(err("needs exactly one of id or name".into())),
    };
    let globs = |list: &[String], key: &str| -> Result<Option<globset::GlobSet>, ConfigError> {
        if list.is_empty() {
            return Ok(None);
        }
        let mut b = globset::GlobSetBuilder::new();
        for g in list {
            b.add(globset::Glob::new(g).map_err(|e| err(format!("{key}: {e}")))?);
        }
        b.build().map(Some).map_err(|e| err(format!("{key}: {e}")))
    };
    Ok(Project {
        selector,
        include: globs(&rp.include, "include")?,
        exclude: globs(&rp.exclude, "exclude")?,
        source: rp.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("r4.toml"), true)
    }

    #[test]
    fn both_entry_forms_and_files() {
        let c = parse(
            r#"
            [env]
            A = "r4://V/I/F"
            B = { ref = "r4://V/I/G" }
            [files]
            C = "r4://V/I/H"
            "#,
        )
        .unwrap();
        let names: Vec<_> = c
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.delivery))
            .collect();
        assert_eq!(
            names,
            vec![
                ("A", Delivery::Env),
                ("B", Delivery::Env),
                ("C", Delivery::File)
            ]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse("[env]\nA = \"r4://V/I/F\"\n[nope]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `nope`") && e.contains("line 3"),
            "{e}"
        );
        let e = parse("[env]\n1A = \"r4://V/I/F\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1A: not a valid environment variable name"),
            "{e}"
        );
        let e = parse("[env]\nA = \"r4://V/I/F\"\n[files]\nA = \"r4://V/I/F\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("A is mapped twice"), "{e}");
        let e = parse("[env]\nA = \"vault://V/I/F\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[env] A = \"vault://V/I/F\": a reference starts with r4://"),
            "{e}"
        );
        let e = parse("[env]\nA = { ref = \"r4://V/I/F\", extra = 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("r4.toml"), "{e}");
        assert!(matches!(parse(""), Err(ConfigError::Empty { .. })));
        let e = parse("[project]\nid = \"x\"\nname = \"y\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one of id or name"), "{e}");
    }

    #[test]
    fn project_globs() {
        let c = parse("[project]\nname = \"P\"\ninclude = [\"PROD_*\"]\nexclude = [\"*_TEST\"]\n")
            .unwrap();
        let p = c.project.unwrap();
        assert!(p.selects("PROD_DB"));
        assert!(!p.selects("PROD_DB_TEST"));
        assert!(!p.selects("DEV_DB"));
    }
}
