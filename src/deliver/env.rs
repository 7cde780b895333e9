//! COMMAND's environment: built into an [`Envp`] that zeroizes every
//! buffer on drop and whose `Debug` prints names only, so neither a failed
//! exec nor a debug log can leave or show a value.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsString};
use std::os::unix::ffi::OsStringExt;

use zeroize::{Zeroize, Zeroizing};

use super::DeliverError;
use crate::contract::Secret;

/// The longest string, NUL included, that `execve(2)` accepts as one
/// argument or `NAME=value` entry (Linux: 32 pages of 4 KiB).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Which inherited variables [`build_env`] passes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Inherit {
    /// Every inherited variable (the default).
    #[default]
    All,
    /// `--pristine`: only these (exact names, or `PREFIX*`); COMMAND starts
    /// from an empty environment plus its secrets and these.
    Only(Vec<String>),
}

impl Inherit {
    /// Whether the inherited variable `name` is passed on.
    pub fn keeps(&self, name: &[u8]) -> bool {
        match self {
            Inherit::All => true,
            Inherit::Only(names) => names.iter().any(|n| match n.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix.as_bytes()),
                None => name == n.as_bytes(),
            }),
        }
    }
}

/// How [`build_env`] treats the inherited environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvOptions {
    /// An inherited variable wins over a secret of the same name; the secret
    /// is dropped and listed in [`Envp::not_overridden`].
    pub no_override: bool,
    /// Which inherited variables are passed on at all (`--pristine`,
    /// `--preserve-env`).
    pub inherit: Inherit,
}

/// The environment for the command, as `NAME=value` C strings.
///
/// Every buffer is zeroized on drop; `Debug` prints the names only.
#[derive(Default)]
pub struct Envp {
    vars: Vec<CString>,
    not_overridden: Vec<String>,
}

impl Envp {
    /// The entries, ready for `execve(2)`.
    pub fn as_slice(&self) -> &[CString] {
        &self.vars
    }

    /// The variable names, in order (safe to log).
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.vars.iter().map(|c| split_entry(c).0)
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.vars
            .iter()
            .map(|c| split_entry(c))
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Names of secrets that were dropped because an inherited variable of
    /// the same name was kept ([`EnvOptions::no_override`]); for `-v`.
    pub fn not_overridden(&self) -> &[String] {
        &self.not_overridden
    }
}

/// Splits `NAME=value` at the first `=`.
fn split_entry(entry: &CStr) -> (&[u8], &[u8]) {
    let bytes = entry.to_bytes();
    match bytes.iter().position(|&b| b == b'=') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

impl Drop for Envp {
    fn drop(&mut self) {
        for entry in self.vars.drain(..) {
            // into_bytes_with_nul reuses the allocation, so this wipes the
            // very buffer the value lived in.
            entry.into_bytes_with_nul().zeroize();
        }
    }
}

impl std::fmt::Debug for Envp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.names().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Builds the command's environment from the inherited one, the secrets to
/// deliver as variables and the `(name, path)` pairs that point at secret
/// files.
///
/// Rules:
/// - Inherited entries whose name or value holds a NUL byte, or whose name is
///   empty or holds `=`, are dropped; the first of duplicate inherited names
///   wins (as `getenv(3)` would see it).
/// - With `--pristine` ([`Inherit::Only`]), only the named inherited
///   variables are kept.
/// - r4-exec's own variables are not here to remove: the caller passes the
///   inherited environment without them unless `--keep-r4-env`
///   (`crate::startup::sources`). A secret named `R4_X` is the user's choice.
/// - A secret or file variable replaces an inherited variable of the same
///   name, in place, unless `opts.no_override`: then the inherited value is
///   kept and the name is listed in [`Envp::not_overridden`].
/// - Among secrets and files (secrets first, then files), a later entry of
///   the same name replaces an earlier one; each name is emitted once.
///
/// Inherited values are wiped as they are consumed, including the removed
/// ones.
pub fn build_env(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    secrets: &[(String, Secret)],
    files: &[(String, String)],
    opts: &EnvOptions,
) -> Result<Envp, DeliverError> {
    let mut builder = EnvBuilder::default();
    for (name, value) in inherited {
        let name = name.into_vec();
        let value = Zeroizing::new(value.into_vec());
        if opts.inherit.keeps(&name) && is_representable_name(&name) && !value.contains(&0) {
            builder.add_inherited(name, value);
        }
    }
    let overrides = secrets
        .iter()
        .map(|(n, s)| (n, s.expose()))
        .chain(files.iter().map(|(n, p)| (n, p.as_bytes())));
    for (name, value) in overrides {
        check_variable(name, value)?;
        builder.add_override(name, value, opts.no_override);
    }
    builder.finish()
}

/// Whether `name=value` can be one variable of COMMAND's environment: a
/// name `execve(2)` can carry, a value without NUL, within
/// [`MAX_ARG_STRLEN`]. The error names the variable, never the value.
/// [`build_env`] checks every secret with it, and a start checks the
/// `[env]` secrets with it before any file is handed over.
pub fn check_variable(name: &str, value: &[u8]) -> Result<(), DeliverError> {
    if !is_representable_name(name.as_bytes()) {
        return Err(DeliverError::InvalidName(name.to_owned()));
    }
    if value.contains(&0) {
        return Err(DeliverError::NulInValue(name.to_owned()));
    }
    if name.len() + 1 + value.len() + 1 > MAX_ARG_STRLEN {
        return Err(DeliverError::TooLong {
            name: name.to_owned(),
            bytes: value.len(),
        });
    }
    Ok(())
}

/// A name `execve(2)` can carry: non-empty, no `=`, no NUL.
fn is_representable_name(name: &[u8]) -> bool {
    !name.is_empty() && !name.contains(&b'=') && !name.contains(&0)
}

/// Where a pending variable came from.
#[derive(PartialEq, Eq)]
enum Origin {
    Inherited,
    Override,
}

/// The ordered, de-duplicated variables before they become C strings.
#[derive(Default)]
struct EnvBuilder {
    entries: Vec<(Vec<u8>, Zeroizing<Vec<u8>>, Origin)>,
    index: HashMap<Vec<u8>, usize>,
    not_overridden: Vec<String>,
}

impl EnvBuilder {
    /// Adds an inherited variable unless the name was already seen.
    fn add_inherited(&mut self, name: Vec<u8>, value: Zeroizing<Vec<u8>>) {
        if !self.index.contains_key(&name) {
            self.index.insert(name.clone(), self.entries.len());
            self.entries.push((name, value, Origin::Inherited));
        }
    }

    /// Adds or replaces a variable from a secret or a file.
    fn add_override(&mut self, name: &str, value: &[u8], no_override: bool) {
        let value = Zeroizing::new(value.to_vec());
        match self.index.get(name.as_bytes()) {
            Some(&i) if no_override && self.entries[i].2 == Origin::Inherited => {
                if !self.not_overridden.iter().any(|n| n == name) {
                    self.not_overridden.push(name.to_owned());
                }
            }
            Some(&i) => {
                self.entries[i].1 = value;
                self.entries[i].2 = Origin::Override;
            }
            None => {
                self.index
                    .insert(name.as_bytes().to_vec(), self.entries.len());
                self.entries
                    .push((name.as_bytes().to_vec(), value, Origin::Override));
            }
        }
    }

    /// Turns the entries into `NAME=value` C strings.
    fn finish(self) -> Result<Envp, DeliverError> {
        let mut envp = Envp {
            vars: Vec::with_capacity(self.entries.len()),
            not_overridden: self.not_overridden,
        };
        for (name, value, _) in &self.entries {
            envp.vars.push(env_entry(name, value)?);
        }
        Ok(envp)
    }
}

/// `NAME=value` as a C string, built in a buffer that never reallocates
/// (capacity includes the terminating NUL), so no unwiped copy is left
/// behind in freed memory.
fn env_entry(name: &[u8], value: &[u8]) -> Result<CString, DeliverError> {
    let mut buf = Vec::with_capacity(name.len() + 1 + value.len() + 1);
    buf.extend_from_slice(name);
    buf.push(b'=');
    buf.extend_from_slice(value);
    CString::new(buf).map_err(|e| {
        // Unreachable: names and values were checked for NUL. Wipe anyway.
        e.into_vec().zeroize();
        DeliverError::NulInValue(String::from_utf8_lossy(name).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(v: &str) -> Secret {
        Secret::new(v.as_bytes().to_vec())
    }

    fn inherited(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .collect()
    }

    fn entries(envp: &Envp) -> Vec<String> {
        envp.as_slice()
            .iter()
            .map(|c| c.to_str().expect("utf-8").to_owned())
            .collect()
    }

    #[test]
    fn secret_overrides_inherited_in_place() {
        let env = build_env(
            inherited(&[("A", "1"), ("DB_PASSWORD", "old"), ("B", "2")]),
            &[
                ("DB_PASSWORD".into(), secret("new")),
                ("NEW".into(), secret("n")),
            ],
            &[],
            &EnvOptions::default(),
        )
        .expect("env");
        assert_eq!(entries(&env), ["A=1", "DB_PASSWORD=new", "B=2", "NEW=n"]);
        assert!(env.not_overridden().is_empty());
    }

    #[test]
    fn no_override_keeps_inherited_and_reports_the_secret() {
        let env = build_env(
            inherited(&[("DB_PASSWORD", "old")]),
            &[
                ("DB_PASSWORD".into(), secret("new")),
                ("X".into(), secret("x")),
            ],
            &[("DB_PASSWORD".into(), "/proc/self/fd/3".into())],
            &EnvOptions {
                no_override: true,
                ..EnvOptions::default()
            },
        )
        .expect("env");
        assert_eq!(entries(&env), ["DB_PASSWORD=old", "X=x"]);
        assert_eq!(env.not_overridden(), ["DB_PASSWORD"]);
    }

    #[test]
    fn a_secret_named_r4_is_delivered() {
        let env = build_env(
            inherited(&[("R4_API_KEY", "agent-key")]),
            &[("R4_API_KEY".into(), secret("from-vault"))],
            &[],
            &EnvOptions::default(),
        )
        .expect("env");
        assert_eq!(entries(&env), ["R4_API_KEY=from-vault"]);
    }

    #[test]
    fn each_name_is_emitted_once() {
        let env = build_env(
            inherited(&[("A", "first"), ("A", "second"), ("B", "b")]),
            &[("C".into(), secret("1")), ("C".into(), secret("2"))],
            &[("C".into(), "/proc/self/fd/9".into())],
            &EnvOptions::default(),
        )
        .expect("env");
        assert_eq!(entries(&env), ["A=first", "B=b", "C=/proc/self/fd/9"]);
    }

    #[test]
    fn files_become_path_variables() {
        let env = build_env(
            inherited(&[]),
            &[],
            &[("TLS_KEY_FILE".into(), crate::deliver::memfd::memfd_path(5))],
            &EnvOptions::default(),
        )
        .expect("env");
        assert_eq!(env.get("TLS_KEY_FILE"), Some(&b"/proc/self/fd/5"[..]));
    }

    #[test]
    fn unrepresentable_inherited_entries_are_dropped() {
        let pairs = vec![
            (OsString::from("OK"), OsString::from("a=b")),
            (OsString::from("NUL_VAL"), OsString::from("a\0b")),
            (OsString::from("NUL\0NAME"), OsString::from("v")),
            (OsString::from("EQ=NAME"), OsString::from("v")),
            (OsString::from(""), OsString::from("v")),
        ];
        let env = build_env(pairs, &[], &[], &EnvOptions::default()).expect("env");
        assert_eq!(entries(&env), ["OK=a=b"]);
        assert_eq!(env.get("OK"), Some(&b"a=b"[..]));
    }

    #[test]
    fn unrepresentable_secrets_are_errors_without_the_value() {
        let err = build_env(
            inherited(&[]),
            &[("BIN".into(), Secret::new(b"top\0secret".to_vec()))],
            &[],
            &EnvOptions::default(),
        )
        .expect_err("NUL in value");
        assert_eq!(err, DeliverError::NulInValue("BIN".into()));
        assert!(!err.to_string().contains("secret"));
        let err = build_env(
            inherited(&[]),
            &[("A=B".into(), secret("v"))],
            &[],
            &EnvOptions::default(),
        )
        .expect_err("= in name");
        assert_eq!(err, DeliverError::InvalidName("A=B".into()));
    }

    #[test]
    fn a_value_over_max_arg_strlen_is_refused_naming_the_variable() {
        let fits = "x".repeat(MAX_ARG_STRLEN - "BIG=".len() - 1);
        let env = build_env(
            inherited(&[]),
            &[("BIG".into(), secret(&fits))],
            &[],
            &EnvOptions::default(),
        )
        .expect("exactly at the limit");
        assert_eq!(env.as_slice()[0].as_bytes_with_nul().len(), MAX_ARG_STRLEN);
        let over = format!("{fits}y");
        let err = build_env(
            inherited(&[]),
            &[("BIG".into(), secret(&over))],
            &[],
            &EnvOptions::default(),
        )
        .expect_err("one byte over");
        assert_eq!(
            err,
            DeliverError::TooLong {
                name: "BIG".into(),
                bytes: over.len()
            }
        );
        assert!(err.to_string().contains("map BIG in [files]"), "{err}");
    }

    #[test]
    fn the_limit_is_the_kernels_and_the_size_counts_variables() {
        // Linux's MAX_ARG_STRLEN: 32 pages of 4 KiB.
        assert_eq!(MAX_ARG_STRLEN, 131_072);
        let env = build_env(
            inherited(&[("HOME", "/root"), ("PATH", "/bin")]),
            &[("DB".into(), secret("s"))],
            &[],
            &EnvOptions::default(),
        )
        .expect("env");
        assert_eq!((env.len(), env.is_empty()), (3, false));
        assert!(Envp::default().is_empty());
    }

    #[test]
    fn debug_prints_names_only() {
        let env = build_env(
            inherited(&[("HOME", "/home/someone")]),
            &[("DB_PASSWORD".into(), secret("hunter2"))],
            &[],
            &EnvOptions::default(),
        )
        .expect("env");
        let dbg = format!("{env:?}");
        assert!(dbg.contains("DB_PASSWORD") && dbg.contains("HOME"), "{dbg}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("/home/someone"),
            "{dbg}"
        );
    }

    #[test]
    fn own_vars_cover_the_list_and_the_prefix() {
        for name in crate::vars::OWN {
            assert!(crate::vars::is_own(name.as_bytes()));
        }
        assert!(crate::vars::is_own(b"R4_ANYTHING"));
        assert!(!crate::vars::is_own(b"R4"));
        assert!(!crate::vars::is_own(b"r4_api_key"));
    }

    #[test]
    fn pristine_keeps_only_the_named_variables() {
        let opts = EnvOptions {
            inherit: Inherit::Only(vec!["PATH".into(), "LC_*".into(), "R4_CONFIG".into()]),
            ..EnvOptions::default()
        };
        let env = build_env(
            inherited(&[
                ("PATH", "/bin"),
                ("HOME", "/root"),
                ("LC_ALL", "C"),
                ("LANG", "C"),
            ]),
            &[("DB".into(), secret("s"))],
            &[],
            &opts,
        )
        .expect("env");
        assert_eq!(entries(&env), ["PATH=/bin", "LC_ALL=C", "DB=s"]);
        let empty = EnvOptions {
            inherit: Inherit::Only(Vec::new()),
            ..EnvOptions::default()
        };
        let env = build_env(inherited(&[("PATH", "/bin")]), &[], &[], &empty).unwrap();
        assert!(env.is_empty());
    }
}
