//! Delivery of secrets to the command: as environment variables and as
//! sealed in-memory files.
//!
//! Both ways keep secrets off the filesystem. A file secret lives in a
//! `memfd_create(2)` descriptor, owner-read-only (0400) and sealed so nothing
//! can change it once written; the command reaches it through
//! `/proc/<pid>/fd/N` of the process that keeps the descriptor open (see
//! [`fd_path`]); no temporary file or tmpfs path is ever created.
//! The environment is built into an [`Envp`] that zeroizes every buffer on
//! drop and whose `Debug` prints names only, so neither a failed exec nor a
//! debug log can leave or show a value.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::{lseek, write, Whence};
use zeroize::{Zeroize, Zeroizing};

use crate::contract::Secret;

/// A secret could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    /// A memfd name contained a NUL byte.
    #[error("memfd name {0:?} contains a NUL byte")]
    InvalidMemfdName(String),
    /// A memfd system call failed; `step` names it.
    #[error("cannot create the in-memory file for a secret ({step}): {errno}")]
    Memfd {
        /// The call that failed (`memfd_create`, `write`, `seal`, ...).
        step: &'static str,
        /// The error it returned.
        errno: Errno,
    },
    /// A variable name is empty or contains `=` or NUL.
    #[error("{0:?} cannot be an environment variable name")]
    InvalidName(String),
    /// A secret value contains a NUL byte, which an environment variable
    /// cannot hold. The value itself is never part of the error.
    #[error("the value for {0} contains a NUL byte and cannot be an environment variable; deliver it as a file")]
    NulInValue(String),
    /// `NAME=value` is longer than the kernel takes for one variable
    /// ([`MAX_ARG_STRLEN`]); `execve(2)` would fail with E2BIG, naming
    /// nothing. The value itself is never part of the error.
    #[error("the value for {name} is {bytes} bytes: over the kernel's limit of 128 KiB for one environment variable (MAX_ARG_STRLEN); deliver it as a file: map {name} in [files] instead of [env]")]
    TooLong {
        /// The variable.
        name: String,
        /// The value's length.
        bytes: usize,
    },
    /// `/proc` is not mounted: a file secret's path could not be opened.
    #[error("file secrets are reached through /proc, which is not usable here ({0})")]
    NoProc(String),
}

/// The longest string, NUL included, that `execve(2)` accepts as one
/// argument or `NAME=value` entry (Linux: 32 pages of 4 KiB).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// The mode of every secret memfd: read-only for its owner. `memfd_create(2)`
/// makes them 0777, and programs that check a key file's mode (OpenSSH's
/// `ssh-keygen -f` and identity files, libpq's `sslkey`) refuse anything
/// group- or world-accessible. Nothing ever needs to write one: a changed
/// value gets a new memfd (see [`crate::holder`]).
pub const MEMFD_MODE: u32 = 0o400;

/// Creates an anonymous in-memory file holding `contents`, mode
/// [`MEMFD_MODE`], sealed against any change
/// (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`).
///
/// The mode is set before the first byte is written, so there is no moment
/// at which the content is in a file others could open. The file offset is
/// rewound to 0, so a child that reads the inherited descriptor directly
/// sees the whole value. The descriptor is close-on-exec; the exec step
/// clears that flag only on the descriptors meant for the child
/// ([`crate::exec::ExecPlan::keep_fds`]). `name` is visible in
/// `/proc/PID/fd` as `memfd:NAME`, so it must not be secret.
pub fn sealed_memfd(name: &str, contents: &Secret) -> Result<OwnedFd, InjectError> {
    let fd = create(name, MemFdCreateFlag::MFD_ALLOW_SEALING)?;
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(MEMFD_MODE)).map_err(memfd_err("fchmod"))?;
    write_all(&fd, contents.expose()).map_err(memfd_err("write"))?;
    lseek(fd.as_raw_fd(), 0, Whence::SeekSet).map_err(memfd_err("lseek"))?;
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SEAL;
    fcntl(fd.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals)).map_err(memfd_err("seal"))?;
    Ok(fd)
}

/// `memfd_create(2)`, close-on-exec, with `flags`.
fn create(name: &str, flags: MemFdCreateFlag) -> Result<OwnedFd, InjectError> {
    let cname = CString::new(name).map_err(|_| InjectError::InvalidMemfdName(name.to_owned()))?;
    memfd_create(&cname, flags | MemFdCreateFlag::MFD_CLOEXEC).map_err(memfd_err("memfd_create"))
}

fn memfd_err(step: &'static str) -> impl Fn(Errno) -> InjectError {
    move |errno| InjectError::Memfd { step, errno }
}

/// Writes all of `buf`, retrying short writes and `EINTR`.
fn write_all(fd: impl AsFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match write(fd.as_fd(), buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The path through which the calling process reaches its own descriptor
/// `fd`: `/proc/self/fd/N`. Not what COMMAND is given: `self` means whoever
/// opens it, so a descendant of COMMAND would look in its own table (see
/// [`fd_path`]).
pub fn memfd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

/// The path of descriptor `fd` of the process `pid` (as `/proc` numbers it):
/// `/proc/<pid>/fd/<fd>`, what a `[files]` variable holds.
///
/// Unlike `/proc/self/fd/N`, it names the same file for every process that
/// opens it: COMMAND, and any descendant that closed the descriptors it
/// inherited (Python's `subprocess` does by default, so do daemons), as long
/// as the holder `pid` keeps `fd` open and the opener may look into the
/// holder's descriptors (same user and the holder dumpable, or root). Each
/// open gets a fresh offset at 0; nothing exists on any filesystem. It needs
/// `/proc` mounted in the opener's mount namespace, which container
/// runtimes provide.
pub fn fd_path(pid: u32, fd: RawFd) -> String {
    format!("/proc/{pid}/fd/{fd}")
}

/// This process's pid as the mounted `/proc` numbers it (`/proc/self` is a
/// link to it). `getpid(2)` would give the pid in our own PID namespace,
/// which is not the one of `/proc` when a namespace was entered without
/// remounting it (`unshare -p -f` without `--mount-proc`).
pub fn proc_self_pid() -> Result<u32, InjectError> {
    let link = std::fs::read_link("/proc/self").map_err(|e| InjectError::NoProc(e.to_string()))?;
    link.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| InjectError::NoProc(format!("/proc/self -> {}", link.display())))
}

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
    /// Keep r4-exec's own variables ([`crate::vars::OWN`] and every other `R4_*`)
    /// in the command's environment.
    pub keep_r4_env: bool,
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
/// - Inherited `R4_*` variables are removed unless `opts.keep_r4_env`
///   ([`crate::vars::is_own`]). Secrets are never removed by this rule: a secret named
///   `R4_X` is the user's choice.
/// - A secret or file variable replaces an inherited variable of the same
///   name, in place, unless `opts.no_override`: then the inherited value is
///   kept and the name is listed in [`Envp::not_overridden`].
/// - Among secrets and files (secrets first, then files), a later entry of
///   the same name replaces an earlier one; each name is emitted once.
///
/// Inherited values are wiped as they are consumed, including the removed
/// ones (the API key is among them).
pub fn build_env(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    secrets: &[(String, Secret)],
    files: &[(String, String)],
    opts: &EnvOptions,
) -> Result<Envp, InjectError> {
    let mut builder = EnvBuilder::default();
    for (name, value) in inherited {
        let name = name.into_vec();
        let value = Zeroizing::new(value.into_vec());
        let droppable =
            !opts.inherit.keeps(&name) || (!opts.keep_r4_env && crate::vars::is_own(&name));
        if !droppable && is_representable_name(&name) && !value.contains(&0) {
            builder.add_inherited(name, value);
        }
    }
    let overrides = secrets
        .iter()
        .map(|(n, s)| (n, s.expose()))
        .chain(files.iter().map(|(n, p)| (n, p.as_bytes())));
    for (name, value) in overrides {
        if !is_representable_name(name.as_bytes()) {
            return Err(InjectError::InvalidName(name.clone()));
        }
        if value.contains(&0) {
            return Err(InjectError::NulInValue(name.clone()));
        }
        if name.len() + 1 + value.len() + 1 > MAX_ARG_STRLEN {
            return Err(InjectError::TooLong {
                name: name.clone(),
                bytes: value.len(),
            });
        }
        builder.add_override(name, value, opts.no_override);
    }
    builder.finish()
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
    fn finish(self) -> Result<Envp, InjectError> {
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
fn env_entry(name: &[u8], value: &[u8]) -> Result<CString, InjectError> {
    let mut buf = Vec::with_capacity(name.len() + 1 + value.len() + 1);
    buf.extend_from_slice(name);
    buf.push(b'=');
    buf.extend_from_slice(value);
    CString::new(buf).map_err(|e| {
        // Unreachable: names and values were checked for NUL. Wipe anyway.
        e.into_vec().zeroize();
        InjectError::NulInValue(String::from_utf8_lossy(name).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

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
    fn memfd_holds_the_value_and_is_readable_by_path() {
        let fd = sealed_memfd("test-secret", &secret("s3cr3t\nline2")).expect("memfd");
        let by_path = std::fs::read(memfd_path(fd.as_raw_fd())).expect("read by path");
        assert_eq!(by_path, b"s3cr3t\nline2");
        // The descriptor itself is rewound: a reader of the fd sees it all.
        let mut file = std::fs::File::from(fd);
        let mut direct = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut direct).expect("read fd");
        assert_eq!(direct, b"s3cr3t\nline2");
    }

    #[test]
    fn memfd_is_sealed_and_close_on_exec() {
        let fd = sealed_memfd("sealed", &secret("value")).expect("memfd");
        let raw = fd.as_raw_fd();
        let seals =
            SealFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GET_SEALS).expect("F_GET_SEALS"));
        for s in [
            SealFlag::F_SEAL_WRITE,
            SealFlag::F_SEAL_SHRINK,
            SealFlag::F_SEAL_GROW,
            SealFlag::F_SEAL_SEAL,
        ] {
            assert!(seals.contains(s), "{s:?} missing from {seals:?}");
        }
        assert_eq!(write(&fd, b"x"), Err(Errno::EPERM));
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .open(memfd_path(raw))
            .expect("open for writing is allowed, writing is not");
        assert_eq!(write(&reopened, b"x"), Err(Errno::EPERM));
        assert_eq!(
            nix::unistd::ftruncate(&fd, 0),
            Err(Errno::EPERM),
            "cannot shrink"
        );
        let flags = fcntl(raw, FcntlArg::F_GETFD).expect("F_GETFD");
        assert_ne!(flags & nix::libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn memfd_holds_empty_and_binary_values() {
        let fd = sealed_memfd("empty", &Secret::new(Vec::new())).expect("memfd");
        assert_eq!(
            std::fs::read(memfd_path(fd.as_raw_fd())).expect("read"),
            b""
        );
        let bin: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let fd = sealed_memfd("big", &Secret::new(bin.clone())).expect("memfd");
        assert_eq!(
            std::fs::read(memfd_path(fd.as_raw_fd())).expect("read"),
            bin
        );
    }

    #[test]
    fn memfd_name_with_nul_is_rejected() {
        assert!(matches!(
            sealed_memfd("a\0b", &secret("v")),
            Err(InjectError::InvalidMemfdName(_))
        ));
    }

    #[test]
    fn memfd_path_names_the_fd() {
        assert_eq!(memfd_path(7), "/proc/self/fd/7");
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
    fn r4_variables_are_removed() {
        let mut pairs: Vec<(&str, &str)> = crate::vars::OWN.iter().map(|n| (*n, "v")).collect();
        pairs.extend([("R4_FUTURE_OPTION", "v"), ("R4", "kept"), ("XR4_A", "kept")]);
        pairs.push(("PATH", "/bin"));
        let env = build_env(inherited(&pairs), &[], &[], &EnvOptions::default()).expect("env");
        assert_eq!(entries(&env), ["R4=kept", "XR4_A=kept", "PATH=/bin"]);
    }

    #[test]
    fn keep_r4_env_keeps_them() {
        let pairs = [("R4_API_KEY", "k"), ("R4_OTHER", "o")];
        let opts = EnvOptions {
            keep_r4_env: true,
            ..EnvOptions::default()
        };
        let env = build_env(inherited(&pairs), &[], &[], &opts).expect("env");
        assert_eq!(entries(&env), ["R4_API_KEY=k", "R4_OTHER=o"]);
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
            &[("TLS_KEY_FILE".into(), memfd_path(5))],
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
        assert_eq!(err, InjectError::NulInValue("BIN".into()));
        assert!(!err.to_string().contains("secret"));
        let err = build_env(
            inherited(&[]),
            &[("A=B".into(), secret("v"))],
            &[],
            &EnvOptions::default(),
        )
        .expect_err("= in name");
        assert_eq!(err, InjectError::InvalidName("A=B".into()));
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
            InjectError::TooLong {
                name: "BIG".into(),
                bytes: over.len()
            }
        );
        assert!(err.to_string().contains("map BIG in [files]"), "{err}");
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
    fn memfd_is_owner_read_only_before_anything_is_written() {
        use std::os::unix::fs::PermissionsExt;
        let fd = sealed_memfd("mode", &secret("key material")).expect("memfd");
        let meta = std::fs::metadata(memfd_path(fd.as_raw_fd())).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o7777, MEMFD_MODE);
        // Sealed: not even its owner can make it writable and change it.
        std::fs::set_permissions(
            memfd_path(fd.as_raw_fd()),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod is not sealed");
        assert_eq!(write(&fd, b"x"), Err(Errno::EPERM));
    }

    #[test]
    fn fd_path_names_the_holder_and_proc_self_is_this_process() {
        assert_eq!(fd_path(42, 7), "/proc/42/fd/7");
        let pid = proc_self_pid().expect("/proc mounted");
        assert_eq!(pid, std::process::id());
        let fd = sealed_memfd("by-pid", &secret("v")).expect("memfd");
        let by_pid = std::fs::read(fd_path(pid, fd.as_raw_fd())).expect("read by pid");
        assert_eq!(by_pid, b"v");
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
                ("R4_CONFIG", "r4.toml"),
            ]),
            &[("DB".into(), secret("s"))],
            &[],
            &opts,
        )
        .expect("env");
        // R4_* stays an own variable: named or not, it needs --keep-r4-env.
        assert_eq!(entries(&env), ["PATH=/bin", "LC_ALL=C", "DB=s"]);
        let keep = EnvOptions {
            keep_r4_env: true,
            ..opts
        };
        let env = build_env(inherited(&[("R4_CONFIG", "r4.toml")]), &[], &[], &keep).unwrap();
        assert_eq!(entries(&env), ["R4_CONFIG=r4.toml"]);
        let empty = EnvOptions {
            inherit: Inherit::Only(Vec::new()),
            ..EnvOptions::default()
        };
        let env = build_env(inherited(&[("PATH", "/bin")]), &[], &[], &empty).unwrap();
        assert!(env.is_empty());
    }
}
