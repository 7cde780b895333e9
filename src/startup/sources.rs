//! Where the references of a run come from, and which wins.
//!
//! Three sources, lowest first; for one name the highest wins:
//!
//! 1. the **inherited environment**: a variable whose whole value is a
//!    reference — `r4://Vault/Item/Field` for the value itself,
//!    `r4+file://Vault/Item/Field` for a sealed file whose path the variable
//!    then holds. A value that merely contains `r4://` is left alone; one
//!    that starts with either scheme but does not parse fails closed, naming
//!    the variable. r4-exec's own `R4_*` variables are never references;
//! 2. each **`--env-file`**, in order (a later file wins): plain values are
//!    set in COMMAND's environment, references are resolved;
//! 3. **`r4.toml`** `[env]`/`[files]`/`[project]`. A `[project]` name is
//!    known only once the project is fetched, so an entry of a lower source
//!    is kept with `explicit: false` and the resolver lets a derived name of
//!    the same name win over it (`resolve::select_targets`).
//!
//! The process environment is read once, by [`gather`]'s caller, and
//! r4-exec's own variables ([`crate::vars::is_own`]: `R4_API_KEY` and every
//! other `R4_*`) are taken out of it here, the one place: they are never
//! references, and they are not passed on to COMMAND unless `--keep-r4-env`.
//!
//! With `--no-override`, an inherited plain value wins over all of them (a
//! secret or an env-file value of the same name is dropped, and `-v` says
//! so). A variable whose inherited value was a reference never reaches
//! COMMAND as written: it holds the secret, or, overridden, the winner.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::dotenv;
use crate::config::{Config, Delivery, Entry};
use crate::error::AppError;
use crate::reference::{Reference, ReferenceError};

/// The scheme that asks for file delivery in the environment and env files.
pub const FILE_SCHEME: &str = "r4+file://";
/// The scheme of a reference delivered as the variable's value.
pub const VALUE_SCHEME: &str = "r4://";

/// The references and values of a run, merged.
#[derive(Debug)]
pub struct Sources {
    /// `r4.toml` (or an empty one) with every entry of every source.
    pub config: Config,
    /// Plain `NAME=value`s of the env files, for COMMAND's environment.
    pub literals: Vec<(String, String)>,
    /// COMMAND's inherited environment: the process environment without
    /// the variables that held a reference and, unless `--keep-r4-env`,
    /// without r4-exec's own. The env files' plain values
    /// ([`Sources::literals`]) are not merged here: they are the user's
    /// configuration, not inherited, so `--pristine` keeps them and a
    /// secret wins over them ([`crate::launch::Launch::adopt`]).
    pub inherited: Vec<(OsString, OsString)>,
    /// Where each entry came from (`r4.toml`, `FILE:LINE`, `environment`).
    pub origins: BTreeMap<String, String>,
}

/// A value that is a reference: how it is delivered and what it names.
fn as_reference(value: &str) -> Option<Result<(Delivery, String, Reference), ReferenceError>> {
    let (delivery, raw) = if let Some(rest) = value.strip_prefix(FILE_SCHEME) {
        (Delivery::File, format!("{VALUE_SCHEME}{rest}"))
    } else if value.starts_with(VALUE_SCHEME) {
        (Delivery::Env, value.to_owned())
    } else {
        return None;
    };
    Some(Reference::parse(&raw).map(|r| (delivery, raw, r)))
}

/// What one name is defined as in a lower source.
enum Definition {
    Reference(Entry),
    Literal(String),
}

/// Merges the sources. `config` is `r4.toml` when one was found;
/// `environment` is the process environment; `keep_own`: `--keep-r4-env`.
pub fn gather(
    config: Option<Config>,
    env_files: &[PathBuf],
    environment: Vec<(OsString, OsString)>,
    keep_own: bool,
) -> Result<Sources, AppError> {
    let mut lower: BTreeMap<String, (Definition, String)> = BTreeMap::new();
    let mut inherited = Vec::with_capacity(environment.len());
    for (name, value) in environment {
        if crate::vars::is_own(name.as_encoded_bytes()) {
            if keep_own {
                inherited.push((name, value));
            }
            continue;
        }
        let parsed = match (name.to_str(), value.to_str()) {
            (Some(n), Some(v)) => as_reference(v).map(|p| (n, p)),
            _ => None,
        };
        match parsed {
            Some((n, parsed)) => {
                let entry = entry(n, parsed, "the environment")?;
                lower.insert(
                    n.to_owned(),
                    (Definition::Reference(entry), "environment".into()),
                );
            }
            None => inherited.push((name, value)),
        }
    }
    for path in env_files {
        for pair in dotenv::read(path)? {
            let origin = format!("{}:{}", path.display(), pair.line);
            let definition = match as_reference(&pair.value) {
                Some(parsed) => Definition::Reference(entry(&pair.name, parsed, &origin)?),
                None => Definition::Literal(pair.value),
            };
            lower.insert(pair.name, (definition, origin));
        }
    }
    let mut config = config.unwrap_or_else(Config::empty);
    let mut origins: BTreeMap<String, String> = config
        .entries
        .iter()
        .map(|e| (e.name.clone(), "r4.toml".to_owned()))
        .collect();
    let mut literals = Vec::new();
    for (name, (definition, origin)) in lower {
        if origins.contains_key(&name) {
            continue;
        }
        match definition {
            Definition::Reference(e) => {
                config.entries.push(e);
                origins.insert(name, origin);
            }
            Definition::Literal(v) => literals.push((name, v)),
        }
    }
    Ok(Sources {
        config,
        literals,
        inherited,
        origins,
    })
}

fn entry(
    name: &str,
    parsed: Result<(Delivery, String, Reference), ReferenceError>,
    origin: &str,
) -> Result<Entry, AppError> {
    let (delivery, raw, reference) = parsed.map_err(|e| {
        AppError::Usage(format!(
            "{name} (from {origin}) looks like a reference but is not one: {e}; a reference is r4://Vault/Item/Field (or r4+file://… for a file)"
        ))
    })?;
    Ok(Entry {
        name: name.to_owned(),
        delivery,
        raw,
        reference,
        explicit: false,
    })
}

impl Sources {
    /// Whether there is anything to resolve.
    pub fn is_empty(&self) -> bool {
        self.config.entries.is_empty()
            && self.config.composites.is_empty()
            && self.config.project.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(n, v)| (n.into(), v.into())).collect()
    }

    #[test]
    fn only_whole_references_are_taken() {
        let s = gather(
            None,
            &[],
            env(&[
                ("A", "r4://V/I/F"),
                ("B", "see r4://V/I/F"),
                ("C", "r4+file://V/I/key"),
                ("R4_CONFIG", "r4://V/I/F"),
                ("HOME", "/root"),
            ]),
            false,
        )
        .unwrap();
        let names: Vec<_> = s
            .config
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.delivery, e.raw.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("A", Delivery::Env, "r4://V/I/F"),
                ("C", Delivery::File, "r4://V/I/key")
            ]
        );
        assert_eq!(s.origins["A"], "environment");
    }

    #[test]
    fn a_broken_reference_fails_closed_naming_the_variable() {
        let err = gather(None, &[], env(&[("DB", "r4://only/two")]), false).unwrap_err();
        assert!(
            err.to_string().contains("DB (from the environment)"),
            "{err}"
        );
    }

    #[test]
    fn empty_only_without_entries_and_project() {
        assert!(gather(None, &[], vec![], false).unwrap().is_empty());
        assert!(!gather(None, &[], env(&[("A", "r4://V/I/F")]), false)
            .unwrap()
            .is_empty());
        let project =
            Config::parse("[project]\nname = \"P\"\n", "r4.toml".as_ref(), false).unwrap();
        assert!(!gather(Some(project), &[], vec![], false)
            .unwrap()
            .is_empty());
    }

    #[test]
    /// Before `--pristine`/`--preserve-env` is applied: an own variable
    /// needs `--keep-r4-env` whatever `--preserve-env` names.
    fn the_inherited_environment_loses_references_and_own_variables() {
        let mut pairs: Vec<(&str, &str)> = crate::vars::OWN.iter().map(|n| (*n, "v")).collect();
        pairs.extend([("R4_FUTURE_OPTION", "r4://V/I/F"), ("R4", "kept")]);
        pairs.extend([("XR4_A", "kept"), ("A", "r4://V/I/F"), ("HOME", "/root")]);
        let s = gather(None, &[], env(&pairs), false).unwrap();
        assert_eq!(
            s.inherited,
            env(&[("R4", "kept"), ("XR4_A", "kept"), ("HOME", "/root")])
        );
        assert_eq!(s.config.entries.len(), 1, "an own variable is no reference");
    }

    #[test]
    fn keep_r4_env_keeps_own_variables_but_never_as_references() {
        let pairs = [("R4_API_KEY", "k"), ("R4_OTHER", "r4://V/I/F")];
        let s = gather(None, &[], env(&pairs), true).unwrap();
        assert_eq!(s.inherited, env(&pairs));
        assert!(s.is_empty());
    }
}
