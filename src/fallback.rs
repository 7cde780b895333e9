//! The fallback copy (issue #14, `docs/fallback.md`): the last answer R4
//! gave that verified, kept on disk so that r4-exec can start through an
//! outage. What is kept is signed ciphertext that only the agent's private
//! key opens; it is verified again, exactly like a live answer, every time
//! it is used (`crate::startup::Session`). This module only stores and
//! loads the bytes: what goes in them is `crate::resolve`'s business.
//!
//! The file is one line of *stamp* — JSON signed with the agent's own key
//! (RSA-PSS, as the contract signs) — then the answer:
//!
//! ```text
//! {"kind":"r4-exec.fallback-stamp.v1","baseUrl":…,"storedAtMs":…,"bodyDigest":"sha256:…","versions":{…},"signerKeyId":…,"signature":…}
//! {"format":1,"sync":{…},"project":…}
//! ```
//!
//! Why a signed stamp: the age of a copy is the one thing the server's
//! signatures cannot vouch for. The contract's checkpoints carry `issuedAt`,
//! but that is when a checkpoint was issued (when the vault last changed),
//! not when it was served, and §4.5 rules out comparing it with a clock; a
//! copy of an unchanged vault is as valid a year later. So the age comes
//! from r4-exec's own clock when it stored the answer, and that time is
//! signed with the agent key: whoever can write the file but not read the
//! key (a shared cache volume, a backup restored over it) cannot make an
//! old copy look young, edit the versions that keep the copy moving
//! forward, or pass another deployment's copy off as this one's.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::libc;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::contract::checkpoint::VersionFloor;
use crate::contract::crypto::{digest, PrivateKey, PublicKey};
use crate::contract::{time, Signed, VerifyError};

/// `kind` of a stamp: no contract object has it, so a stamp signed by the
/// agent key can never pass for one (§4.5 checks `kind` first).
pub const STAMP_KIND: &str = "r4-exec.fallback-stamp.v1";
/// `max_age` when none is configured.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How far in the future a stamp may be (clock adjustments) before the copy
/// is refused: a clock that moved back a long way cannot be trusted with
/// the age.
pub const FUTURE_TOLERANCE: Duration = Duration::from_secs(300);

/// Where the copy lives and how old it may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// The file.
    pub path: PathBuf,
    /// Older copies are refused.
    pub max_age: Duration,
    /// `[fallback] prefer`: a valid copy is used without asking R4 first.
    pub prefer: bool,
}

/// What the stamp line says, signed by the agent key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stamp {
    /// Always [`STAMP_KIND`].
    pub kind: String,
    /// The server the answer came from.
    pub base_url: String,
    /// When it was received, for people.
    pub stored_at: String,
    /// When it was received (Unix ms): the age is counted from here.
    pub stored_at_ms: u64,
    /// Digest of the body (everything after the stamp line).
    pub body_digest: String,
    /// Summary version of each vault the answer was verified with.
    pub versions: BTreeMap<String, u64>,
    /// Items visible in the answer (the list's counts, or the sync's
    /// details): what the default plan decides on at the next start
    /// without asking first ([`size_hint`]). Absent in older copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_items: Option<u64>,
    /// The agent key's fingerprint.
    pub signer_key_id: String,
    /// RSA-PSS signature (`b64`).
    #[serde(default)]
    pub signature: String,
}

/// A copy that passed the stamp checks; its body is still to be verified
/// like a live answer.
#[derive(Debug)]
pub struct Copy {
    /// The answer as stored.
    pub body: Vec<u8>,
    /// How long ago it was stored.
    pub age: Duration,
}

/// What [`store`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// The copy now holds the new answer.
    Written,
    /// The stored copy already holds this answer, intact, stamped less than
    /// a tenth of `max_age` before it was received: not rewritten (a
    /// restart loop does not rewrite and fsync the copy on every start).
    Current {
        /// When it was stamped.
        stored_at_ms: u64,
    },
    /// The stored copy is newer than the answer for a vault, so it stays.
    KeptNewer {
        /// The vault.
        vault_id: String,
        /// Its version in the stored copy.
        stored: u64,
        /// Its version in the answer.
        answer: u64,
    },
}

/// Why a copy cannot be used or written. Paths and versions only.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackError {
    /// No copy has been stored yet.
    #[error("{} does not exist (no answer has been stored yet)", .0.display())]
    Missing(PathBuf),
    /// The file cannot be read.
    #[error("cannot read {}: {detail}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        detail: String,
    },
    /// Not a file r4-exec wrote, or cut short.
    #[error("{} is not a copy r4-exec wrote ({what})", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// The stamp's signature does not verify with the agent key.
    #[error("{}: the stamp's signature does not verify: the copy was modified", .0.display())]
    BadStamp(PathBuf),
    /// The answer differs from the one that was stamped.
    #[error("{}: the answer was modified after it was stored (digest differs from the stamp)", .0.display())]
    BodyDigest(PathBuf),
    /// Stamped by another key, e.g. before `rotate-key`.
    #[error("{}: stamped by another agent key ({found}); it is replaced at the next successful start", .path.display())]
    OtherKey {
        /// The file.
        path: PathBuf,
        /// The fingerprint it names.
        found: String,
    },
    /// Stored from another server.
    #[error("{}: stored from {stored}, not from {configured}", .path.display())]
    OtherServer {
        /// The file.
        path: PathBuf,
        /// Base URL in the stamp.
        stored: String,
        /// Base URL configured now.
        configured: String,
    },
    /// Older than `max_age`.
    #[error("{}: stored {} ago, older than max_age {}", .path.display(), human(*.age), human(*.max_age))]
    TooOld {
        /// The file.
        path: PathBuf,
        /// Its age.
        age: Duration,
        /// The limit.
        max_age: Duration,
    },
    /// Stamped in the future: the clock cannot be trusted with the age.
    #[error("{}: stamped {} in the future (the clock moved back)", .path.display(), human(*.ahead))]
    Future {
        /// The file.
        path: PathBuf,
        /// How far ahead.
        ahead: Duration,
    },
    /// The stored answer failed the contract's checks or does not resolve
    /// the configuration (the problems are listed before this, each with
    /// its own exit class).
    #[error("{}: the stored answer does not verify or resolve (above), so it is not used", .0.display())]
    Unusable(PathBuf),
    /// Writing failed.
    #[error("cannot write {}: {detail}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        detail: String,
    },
}

impl FallbackError {
    /// Whether the copy was changed by someone without the agent key (as
    /// opposed to missing, old or from elsewhere): a verification failure,
    /// exit 65.
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            FallbackError::Malformed { .. }
                | FallbackError::BadStamp(_)
                | FallbackError::BodyDigest(_)
        )
    }
}

/// Parses `max_age`: one or more `<number><unit>`, unit `s`, `m`, `h` or
/// `d` (`"24h"`, `"90m"`, `"1d12h"`); zero is refused.
pub fn parse_max_age(text: &str) -> Result<Duration, String> {
    let bad = || format!("\"{text}\" is not a duration such as \"24h\", \"90m\" or \"7d\"");
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match rest[digits..].chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    if total == 0 {
        return Err(format!("\"{text}\" is zero: no copy would ever be used"));
    }
    Ok(Duration::from_secs(total))
}

/// A duration for people, in its two largest units: `"3h 12m"`, `"45s"`,
/// `"1d"`, `"2d 3h"`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let units = [
        (s / 86_400, "d"),
        (s / 3600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let first = units.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    units[first..(first + 2).min(4)]
        .iter()
        .enumerate()
        .filter(|(i, (n, _))| *i == 0 || *n > 0)
        .map(|(_, (n, unit))| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Loads the copy at `settings.path` for `base_url` and checks its stamp:
/// signed by `key`, body unchanged, same server, not in the future, not
/// older than `max_age` at `now_ms`. The body is not verified here.
pub fn load(
    settings: &CopyOptions,
    key: &PublicKey,
    base_url: &str,
    now_ms: u64,
) -> Result<Copy, FallbackError> {
    let path = &settings.path;
    let bytes = read(path)?;
    let (stamp, body) = split(path, &bytes)?;
    let stamp = check_stamp(path, &stamp, key, base_url)?;
    if digest(body) != stamp.body_digest {
        return Err(FallbackError::BodyDigest(path.clone()));
    }
    let age = age(path, stamp.stored_at_ms, now_ms)?;
    if age > settings.max_age {
        return Err(FallbackError::TooOld {
            path: path.clone(),
            age,
            max_age: settings.max_age,
        });
    }
    Ok(Copy {
        body: body.to_vec(),
        age,
    })
}

/// Stores `body`, the answer received at `received_ms` from `base_url` and
/// verified with these summary `versions`, stamped with `key`, atomically
/// (temporary file in the same directory, fsync, rename, fsync of the
/// directory; mode 0600). A stored copy that is newer for any vault stays
/// (the copy only moves forward).
pub fn store(
    settings: &CopyOptions,
    key: &PrivateKey,
    base_url: &str,
    body: &[u8],
    versions: BTreeMap<String, u64>,
    visible_items: Option<u64>,
    received_ms: u64,
) -> Result<Stored, FallbackError> {
    let body_digest = digest(body);
    let stored = existing(settings, key.public(), base_url, body);
    if let Some(verdict) = stored.as_ref().and_then(|s| {
        newer(s, &versions).or_else(|| current(s, &body_digest, received_ms, settings))
    }) {
        return Ok(verdict);
    }
    let stamp = Stamp {
        kind: STAMP_KIND.into(),
        base_url: base_url.into(),
        stored_at: time::rfc3339_millis(received_ms),
        stored_at_ms: received_ms,
        body_digest,
        versions,
        visible_items,
        signer_key_id: String::new(),
        signature: String::new(),
    };
    let mut line = serde_json::to_vec(&Signed::sign(&stamp, key)).expect("a stamp serializes");
    line.push(b'\n');
    write_atomic(&settings.path, &[&line, body])?;
    Ok(Stored::Written)
}

/// How many items the world of the stored copy held, as its stamp says, if
/// it names `base_url`: read from the first line only (at most 16 KiB, the
/// rules of [`crate::localfile`]), not verified — the number only chooses
/// the default plan's first request (`docs/plan.md`); whatever it says,
/// the answer is verified the same way. `None` when there is no such copy.
pub fn size_hint(settings: &CopyOptions, base_url: &str) -> Option<u64> {
    use crate::localfile::{read_head, Follow};
    let head = read_head(&settings.path, 16 << 10, Follow::No).ok()?;
    let line = head.split(|&b| b == b'\n').next()?;
    let stamp: serde_json::Value = crate::contract::wire::from_json(line).ok()?;
    if stamp.get("baseUrl")?.as_str()? != base_url {
        return None;
    }
    stamp.get("visibleItems")?.as_u64()
}

/// The stamp of the stored copy, if it verifies for this key and server,
/// and whether the answer under it is byte for byte `answer`. With the
/// stamp's digest equal to `answer`'s (checked by [`current`]) that is the
/// check that the stored body is intact, by a comparison instead of a
/// second SHA-256 of a body that can be 1.5 MB.
fn existing(
    settings: &CopyOptions,
    key: &PublicKey,
    base_url: &str,
    answer: &[u8],
) -> Option<(Stamp, bool)> {
    let bytes = read(&settings.path).ok()?;
    let (stamp, body) = split(&settings.path, &bytes).ok()?;
    let stamp = check_stamp(&settings.path, &stamp, key, base_url).ok()?;
    Some((stamp.clone(), body == answer))
}

/// [`Stored::KeptNewer`] when the stored copy is newer than `versions` for
/// a vault: the contract's rollback rule (§4.5) applied across runs. Only a
/// stamp that verifies has a say.
fn newer((stored, _): &(Stamp, bool), versions: &BTreeMap<String, u64>) -> Option<Stored> {
    let mut floor = VersionFloor::default();
    for (vault_id, version) in &stored.versions {
        floor.observe_version(vault_id, *version).ok()?;
    }
    versions.iter().find_map(|(vault_id, version)| {
        match floor.observe_version(vault_id, *version) {
            Err(VerifyError::Rollback { seen, found }) => Some(Stored::KeptNewer {
                vault_id: vault_id.clone(),
                stored: seen,
                answer: found,
            }),
            _ => None,
        }
    })
}

/// [`Stored::Current`] when the stored copy is this very answer (its body
/// the same bytes, its stamp that body's digest) and recently stamped.
fn current(
    (stored, same): &(Stamp, bool),
    body_digest: &str,
    received_ms: u64,
    settings: &CopyOptions,
) -> Option<Stored> {
    if received_ms < stored.stored_at_ms {
        return None; // a stamp later than the answer is not "recent"
    }
    let fresh = !restamp_due(stored.stored_at_ms, settings.max_age, received_ms);
    (*same && stored.body_digest == body_digest && fresh).then_some(Stored::Current {
        stored_at_ms: stored.stored_at_ms,
    })
}

/// Whether an answer at `answered_ms` re-stamps a copy of the same answer
/// stamped at `stamped_ms`: once a tenth of `max_age` has passed. Younger,
/// the copy is left as it is (by a start, and by a `--watch` poll that
/// changed nothing), so that the file is not rewritten every interval.
pub fn restamp_due(stamped_ms: u64, max_age: Duration, answered_ms: u64) -> bool {
    let tenth = u64::try_from((max_age / 10).as_millis()).unwrap_or(u64::MAX);
    answered_ms >= stamped_ms.saturating_add(tenth)
}

/// The copy's bytes: a regular file, never through a link, at most
/// [`crate::localfile::cap::FALLBACK`] bytes ([`crate::localfile`]: a FIFO or
/// a link to `/dev/zero` put at the path is refused before any read).
///
/// Taken out of `localfile`'s `Zeroizing` buffer: the copy holds ciphertext,
/// wrapped keys and signed metadata, never a value or a key, and
/// `zeroize`'s byte-by-byte volatile loop took 0.7 ms for a 1.5 MB copy on
/// every start that keeps one. The binary's allocator still wipes the
/// block when it is freed, at `memset` speed ([`crate::wipe`]).
fn read(path: &Path) -> Result<Vec<u8>, FallbackError> {
    use crate::localfile::{cap, Follow};
    match crate::localfile::read(path, cap::FALLBACK, Follow::No) {
        Ok(mut bytes) => Ok(std::mem::take(&mut *bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(FallbackError::Missing(path.to_path_buf()))
        }
        Err(e) => Err(FallbackError::Read {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

/// The stamp (parsed, not checked) and the body.
fn split<'b>(path: &Path, bytes: &'b [u8]) -> Result<(Signed<Stamp>, &'b [u8]), FallbackError> {
    let malformed = |what| FallbackError::Malformed {
        path: path.to_path_buf(),
        what,
    };
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| malformed("no stamp line"))?;
    let stamp =
        crate::contract::wire::from_json(&bytes[..newline]).map_err(|_| malformed("bad stamp"))?;
    Ok((stamp, &bytes[newline + 1..]))
}

/// Checks a stamp's kind, key and signature, then its server.
fn check_stamp<'s>(
    path: &Path,
    stamp: &'s Signed<Stamp>,
    key: &PublicKey,
    base_url: &str,
) -> Result<&'s Stamp, FallbackError> {
    let body = stamp.body();
    if body.kind != STAMP_KIND {
        return Err(FallbackError::Malformed {
            path: path.to_path_buf(),
            what: "not a fallback stamp",
        });
    }
    if stamp.signer_key_id() != key.fingerprint() {
        return Err(FallbackError::OtherKey {
            path: path.to_path_buf(),
            found: stamp.signer_key_id().to_string(),
        });
    }
    if !key.verify_pss(&stamp.signed_bytes(), stamp.signature()) {
        return Err(FallbackError::BadStamp(path.to_path_buf()));
    }
    if body.base_url != base_url {
        return Err(FallbackError::OtherServer {
            path: path.to_path_buf(),
            stored: body.base_url.clone(),
            configured: base_url.to_string(),
        });
    }
    Ok(body)
}

/// `now_ms - stored_ms`; a stamp more than [`FUTURE_TOLERANCE`] ahead is
/// refused, one less far ahead counts as new.
fn age(path: &Path, stored_ms: u64, now_ms: u64) -> Result<Duration, FallbackError> {
    let ahead = Duration::from_millis(stored_ms.saturating_sub(now_ms));
    if ahead > FUTURE_TOLERANCE {
        return Err(FallbackError::Future {
            path: path.to_path_buf(),
            ahead,
        });
    }
    Ok(Duration::from_millis(now_ms.saturating_sub(stored_ms)))
}

/// Writes `parts` to `path` so that a reader sees the old file or the new
/// one, whole, even across a crash: a new temporary file in the same
/// directory (mode 0600, never following a link), fsync, rename over
/// `path`, fsync of the directory. The temporary file is removed on error.
fn write_atomic(path: &Path, parts: &[&[u8]]) -> Result<(), FallbackError> {
    let failed = |e: std::io::Error| FallbackError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let dir = directory(path).map_err(failed)?;
    let tmp = temporary_name(path).map_err(failed)?;
    let written = write_new(&tmp, parts).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(failed)
}

/// The directory of `path`, created (mode 0700) if missing.
fn directory(path: &Path) -> std::io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    Ok(dir)
}

/// `.NAME.<random>.tmp` beside `path`.
fn temporary_name(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| std::io::Error::other("system RNG failed"))?;
    let tmp = format!(".{}.{}.tmp", name.to_string_lossy(), hex::encode(random));
    Ok(path.with_file_name(tmp))
}

/// Creates `tmp` (it must not exist), mode 0600 whatever the umask, writes
/// `parts` and syncs it.
fn write_new(tmp: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    for part in parts {
        f.write_all(part)?;
    }
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> &'static PrivateKey {
        static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(2048).unwrap())
    }

    fn settings(dir: &Path) -> CopyOptions {
        CopyOptions {
            path: dir.join("sub/copy.json"),
            max_age: Duration::from_secs(3600),
            prefer: false,
        }
    }

    const URL: &str = "https://r4.example/api/v1/machine";
    const T0: u64 = 1_768_473_000_000;

    fn versions(v: u64) -> BTreeMap<String, u64> {
        BTreeMap::from([("vault-a".to_string(), v)])
    }

    #[test]
    fn max_age_syntax() {
        assert_eq!(parse_max_age("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_max_age("1d12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse_max_age("90s"), Ok(Duration::from_secs(90)));
        for bad in [
            "",
            "24",
            "h",
            "1w",
            "-1h",
            "0s",
            "1h 30m",
            "99999999999999999999d",
        ] {
            assert!(parse_max_age(bad).is_err(), "{bad}");
        }
        assert_eq!(human(Duration::from_secs(11_520)), "3h 12m");
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(183_600)), "2d 3h");
        assert_eq!(human(Duration::from_secs(86_400)), "1d");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(Duration::ZERO), "0s");
    }

    #[test]
    fn stored_then_loaded_with_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let stored = store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0).unwrap();
        assert_eq!(stored, Stored::Written);
        let mode = std::fs::metadata(&s.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(s.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["copy.json"], "no temporary file is left");
        let copy = load(&s, key().public(), URL, T0 + 60_000).unwrap();
        assert_eq!(copy.body, b"{\"a\":1}");
        assert_eq!(copy.age, Duration::from_secs(60));
    }

    #[test]
    fn old_future_and_foreign_copies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        store(&s, key(), URL, b"{}", versions(3), None, T0).unwrap();
        let pk = key().public();
        let late = T0 + 3_600_001;
        assert!(matches!(
            load(&s, pk, URL, late),
            Err(FallbackError::TooOld { .. })
        ));
        let early = T0 - FUTURE_TOLERANCE.as_millis() as u64 - 1;
        assert!(matches!(
            load(&s, pk, URL, early),
            Err(FallbackError::Future { .. })
        ));
        assert!(load(&s, pk, URL, T0 - 1000).is_ok(), "a small skew is fine");
        assert!(matches!(
            load(&s, pk, "https://other.example/api/v1/machine", T0),
            Err(FallbackError::OtherServer { .. })
        ));
        let other = PrivateKey::generate(2048).unwrap();
        assert!(matches!(
            load(&s, other.public(), URL, T0),
            Err(FallbackError::OtherKey { .. })
        ));
        let missing = CopyOptions {
            path: dir.path().join("none"),
            ..s
        };
        assert!(matches!(
            load(&missing, pk, URL, T0),
            Err(FallbackError::Missing(_))
        ));
    }

    /// The attack: someone who can write the file but not read the key
    /// makes an old copy look new, or changes the answer.
    #[test]
    fn an_edited_stamp_or_body_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0).unwrap();
        let original = std::fs::read_to_string(&s.path).unwrap();
        let younger = original.replace(
            &format!("\"storedAtMs\":{T0}"),
            &format!("\"storedAtMs\":{}", T0 + 7_200_000),
        );
        assert_ne!(younger, original);
        std::fs::write(&s.path, younger).unwrap();
        let e = load(&s, key().public(), URL, T0 + 7_200_000).unwrap_err();
        assert!(
            matches!(e, FallbackError::BadStamp(_)) && e.is_tampering(),
            "{e}"
        );
        std::fs::write(&s.path, original.replace("\"a\":1", "\"a\":2")).unwrap();
        let e = load(&s, key().public(), URL, T0).unwrap_err();
        assert!(
            matches!(e, FallbackError::BodyDigest(_)) && e.is_tampering(),
            "{e}"
        );
        std::fs::write(&s.path, "garbage").unwrap();
        let e = load(&s, key().public(), URL, T0).unwrap_err();
        assert!(e.is_tampering(), "{e}");
    }

    /// The attack: a server replays an older, validly signed answer; it
    /// must not replace the newer copy an outage would start from.
    #[test]
    fn the_copy_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        store(&s, key(), URL, b"{\"v\":5}", versions(5), None, T0).unwrap();
        let older = store(&s, key(), URL, b"{\"v\":4}", versions(4), None, T0 + 1000).unwrap();
        assert_eq!(
            older,
            Stored::KeptNewer {
                vault_id: "vault-a".into(),
                stored: 5,
                answer: 4
            }
        );
        assert_eq!(
            load(&s, key().public(), URL, T0).unwrap().body,
            b"{\"v\":5}"
        );
        let mut more = versions(5);
        more.insert("vault-b".into(), 1);
        let same = store(&s, key(), URL, b"{\"v\":5}", more.clone(), None, T0 + 2000).unwrap();
        let just_stamped = Stored::Current { stored_at_ms: T0 };
        assert_eq!(same, just_stamped, "the same answer, just stamped");
        let later = T0 + 360_000;
        let same = store(&s, key(), URL, b"{\"v\":5}", more, None, later).unwrap();
        assert_eq!(
            same,
            Stored::Written,
            "a tenth of max_age later, re-stamped"
        );
        assert_eq!(
            load(&s, key().public(), URL, later).unwrap().age,
            Duration::ZERO
        );
        let newer = store(&s, key(), URL, b"{\"v\":6}", versions(6), None, T0 + 3000).unwrap();
        assert_eq!(newer, Stored::Written);
    }

    /// A copy whose answer was damaged under an intact stamp is rewritten,
    /// not taken for current.
    #[test]
    fn a_damaged_copy_of_the_same_answer_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0).unwrap();
        let text = std::fs::read_to_string(&s.path).unwrap();
        std::fs::write(&s.path, text.replace("\"a\":1", "\"a\":2")).unwrap();
        let again = store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0 + 1000).unwrap();
        assert_eq!(again, Stored::Written);
        assert_eq!(
            load(&s, key().public(), URL, T0 + 1000).unwrap().body,
            b"{\"a\":1}"
        );
    }

    /// The other way round: the stored body already is the new answer, but
    /// under a stamp that vouches for another body; the copy is rewritten
    /// under a stamp of its own.
    #[test]
    fn an_answer_under_another_answers_stamp_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0).unwrap();
        let text = std::fs::read_to_string(&s.path).unwrap();
        std::fs::write(&s.path, text.replace("\"a\":1", "\"a\":2")).unwrap();
        assert!(
            load(&s, key().public(), URL, T0).is_err(),
            "the stamp is not the body's"
        );
        let again = store(&s, key(), URL, b"{\"a\":2}", versions(3), None, T0 + 1000).unwrap();
        assert_eq!(again, Stored::Written);
        assert_eq!(
            load(&s, key().public(), URL, T0 + 1000).unwrap().body,
            b"{\"a\":2}"
        );
    }

    /// The same answer at the very time of the stamp is current; at a time
    /// before it (a clock that went back, or a stamp from the future) it is
    /// not, and the copy is stamped again with the answer's time.
    #[test]
    fn a_copy_stamped_after_the_answer_is_not_current() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0).unwrap();
        let same_time = store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0).unwrap();
        assert_eq!(same_time, Stored::Current { stored_at_ms: T0 });
        let earlier = store(&s, key(), URL, b"{\"a\":1}", versions(3), None, T0 - 1000).unwrap();
        assert_eq!(earlier, Stored::Written);
        assert_eq!(
            load(&s, key().public(), URL, T0 - 1000).unwrap().age,
            Duration::ZERO,
            "stamped with the answer's time"
        );
    }

    #[test]
    fn an_answer_restamps_a_copy_once_a_tenth_of_max_age_has_passed() {
        let max_age = Duration::from_secs(10);
        assert!(!restamp_due(5_000, max_age, 5_000));
        assert!(!restamp_due(5_000, max_age, 5_999));
        assert!(restamp_due(5_000, max_age, 6_000));
        assert!(restamp_due(5_000, max_age, 60_000));
        assert!(
            !restamp_due(5_000, max_age, 4_000),
            "a clock that went back"
        );
        assert!(!restamp_due(u64::MAX - 1, max_age, u64::MAX - 1));
    }

    #[test]
    fn a_write_failure_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("copy.json");
        std::fs::create_dir(&target).unwrap(); // rename over a directory fails
        let s = CopyOptions {
            path: target,
            max_age: Duration::from_secs(60),
            prefer: false,
        };
        let e = store(&s, key(), URL, b"{}", versions(1), None, T0).unwrap_err();
        assert!(matches!(e, FallbackError::Write { .. }), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_stamp_says_how_large_the_world_was_for_its_server_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        assert_eq!(size_hint(&s, URL), None, "no copy");
        store(&s, key(), URL, b"{\"a\":1}", versions(3), Some(5), T0).unwrap();
        assert_eq!(size_hint(&s, URL), Some(5));
        assert_eq!(size_hint(&s, "https://other.example/api"), None);
        // The copy still loads: the number is part of the signed stamp.
        assert!(load(&s, key().public(), URL, T0 + 1).is_ok());
        let other = dir.path().join("other.json");
        store(
            &CopyOptions {
                path: other.clone(),
                ..settings(dir.path())
            },
            key(),
            URL,
            b"{}",
            versions(1),
            None,
            T0,
        )
        .unwrap();
        let without = CopyOptions {
            path: other,
            ..settings(dir.path())
        };
        assert_eq!(size_hint(&without, URL), None, "an older copy says nothing");
    }
}
