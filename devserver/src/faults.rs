//! Fault injection: named ways for the devserver to lie or misbehave, so the
//! client's every check and every retry path can be shown to work against a
//! real server. Set with `--fault NAME[:N]` (repeatable), `Admin::set_faults`
//! or `POST /_admin/faults`; setting replaces the whole list.
//!
//! Object faults change a signed object wherever it is served — its own
//! endpoint and inside `/vault/sync`:
//!
//! | name | effect |
//! | --- | --- |
//! | `swap-envelope` | the first field of every item (encrypted vaults) carries another field's valid envelope; the detail checkpoint is re-signed over it, so only the envelope's `fid` check catches it |
//! | `tamper-ciphertext` | one ciphertext byte of the first field of every item is flipped; checkpoint re-signed (also in `/vault/env`) |
//! | `bad-signature-wrapped-key` | wrapped keys carry a corrupted signature |
//! | `bad-signature-summary` | vault summary checkpoints carry a corrupted signature |
//! | `bad-signature-detail` | item detail checkpoints carry a corrupted signature |
//! | `bad-signature-tree-head` | tree heads carry a corrupted signature |
//! | `unknown-signer` | checkpoints are signed by a key that is in no directory |
//! | `revoked-signer` | checkpoints are signed by a retired operator key that the directory lists as `revoked` |
//! | `agent-signed-wrapped-key` | wrapped keys are signed by another agent's AGENT key, listed active in the directory |
//! | `wrong-recipient` | wrapped keys name another key in `recipientFingerprint` (validly signed) |
//! | `wrong-dek` | wrapped keys wrap a different random DEK (validly signed) |
//! | `stale-detail` | item details carry an older `version` than the summary lists (validly signed) |
//! | `replayed-checkpoint` | item details carry another item's valid checkpoint |
//! | `bad-inclusion-proof` | every directory entry's inclusion proof is corrupted |
//! | `key-id-mismatch` | the operator's directory entry carries another key's PEM under its `keyId` |
//! | `items-digest-mismatch` | summaries sign a wrong `itemsDigest` (validly signed) |
//! | `rollback` | after the first summary of a vault served to an agent, summaries carry a lower `version` (validly signed) |
//!
//! Request faults act on API requests (never `/_admin`), in the order given;
//! the first one with budget left applies to a request and uses one unit.
//! `:N` limits it to the next N requests; without it, it applies forever.
//!
//! | name | effect |
//! | --- | --- |
//! | `rate-limit[:N]` | `429 rate_limit_exceeded` with `Retry-After: 1` |
//! | `unavailable[:N]` | `503 unavailable` |
//! | `invalid-json[:N]` | the handler runs; its body is replaced by invalid JSON |
//! | `huge-body[:N]` | the handler runs; a 64 MiB JSON body is streamed instead |
//! | `hang[:N]` | the request is never answered |
//! | `trickle[:N]` | the real body is sent 4 bytes every 500 ms |

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

macro_rules! fault_kinds {
    ($($variant:ident => $name:literal, $request:literal;)*) => {
        /// A named fault (see the module docs for what each does).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum FaultKind {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl FaultKind {
            /// Every fault.
            pub const ALL: &'static [FaultKind] = &[$(FaultKind::$variant),*];

            /// Its command-line name.
            pub fn name(self) -> &'static str {
                match self {
                    $(FaultKind::$variant => $name,)*
                }
            }

            /// Whether it acts on whole requests (and takes `:N`).
            pub fn is_request_fault(self) -> bool {
                match self {
                    $(FaultKind::$variant => $request,)*
                }
            }
        }
    };
}

fault_kinds! {
    SwapEnvelope => "swap-envelope", false;
    TamperCiphertext => "tamper-ciphertext", false;
    BadSignatureWrappedKey => "bad-signature-wrapped-key", false;
    BadSignatureSummary => "bad-signature-summary", false;
    BadSignatureDetail => "bad-signature-detail", false;
    BadSignatureTreeHead => "bad-signature-tree-head", false;
    UnknownSigner => "unknown-signer", false;
    RevokedSigner => "revoked-signer", false;
    AgentSignedWrappedKey => "agent-signed-wrapped-key", false;
    WrongRecipient => "wrong-recipient", false;
    WrongDek => "wrong-dek", false;
    StaleDetail => "stale-detail", false;
    ReplayedCheckpoint => "replayed-checkpoint", false;
    BadInclusionProof => "bad-inclusion-proof", false;
    KeyIdMismatch => "key-id-mismatch", false;
    ItemsDigestMismatch => "items-digest-mismatch", false;
    Rollback => "rollback", false;
    RateLimit => "rate-limit", true;
    Unavailable => "unavailable", true;
    InvalidJson => "invalid-json", true;
    HugeBody => "huge-body", true;
    Hang => "hang", true;
    Trickle => "trickle", true;
}

impl FromStr for FaultKind {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| FaultParseError(format!("unknown fault \"{s}\"")))
    }
}

/// A fault and, for request faults, how many requests it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which fault.
    pub kind: FaultKind,
    /// Request faults only: the next N requests (`None`: all of them).
    pub count: Option<u64>,
}

impl Fault {
    /// A fault that applies always.
    pub fn new(kind: FaultKind) -> Fault {
        Fault { kind, count: None }
    }

    /// A request fault for the next `n` requests.
    pub fn first(kind: FaultKind, n: u64) -> Fault {
        Fault {
            kind,
            count: Some(n),
        }
    }
}

/// A `--fault` value that is not `NAME[:N]` with a known name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(String);

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, count) = match s.split_once(':') {
            Some((name, n)) => {
                let n = n
                    .parse::<u64>()
                    .map_err(|_| FaultParseError(format!("fault \"{s}\": N must be a number")))?;
                (name, Some(n))
            }
            None => (s, None),
        };
        let kind: FaultKind = name.parse()?;
        if count.is_some() && !kind.is_request_fault() {
            return Err(FaultParseError(format!(
                "fault \"{name}\" takes no :N (only request faults do)"
            )));
        }
        Ok(Fault { kind, count })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.count {
            Some(n) => write!(f, "{}:{n}", self.kind.name()),
            None => f.write_str(self.kind.name()),
        }
    }
}

/// The active faults, as the views see them (object faults).
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    active: Vec<Fault>,
    /// Summaries served per (agent, vault) while `rollback` is on.
    pub rollback_served: HashMap<(String, String), u64>,
}

impl FaultState {
    pub(crate) fn set(&mut self, faults: Vec<Fault>) {
        self.active = faults;
        self.rollback_served.clear();
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.active.clone()
    }

    /// Whether object fault `kind` is on.
    pub(crate) fn has(&self, kind: FaultKind) -> bool {
        self.active.iter().any(|f| f.kind == kind)
    }

    /// Whether any object fault is on (honest objects come from the cache).
    pub(crate) fn any_object_fault(&self) -> bool {
        self.active.iter().any(|f| !f.kind.is_request_fault())
    }
}

/// The request faults with their remaining budgets, kept apart from the
/// world's lock so the request middleware never waits behind a signing job.
#[derive(Debug, Default)]
pub(crate) struct RequestFaults(Vec<(FaultKind, Option<u64>)>);

impl RequestFaults {
    pub(crate) fn set(&mut self, faults: &[Fault]) {
        self.0 = faults
            .iter()
            .filter(|f| f.kind.is_request_fault())
            .map(|f| (f.kind, f.count))
            .collect();
    }

    /// The request fault that applies to the next request, using one unit.
    pub(crate) fn take(&mut self) -> Option<FaultKind> {
        for (kind, remaining) in &mut self.0 {
            match remaining {
                None => return Some(*kind),
                Some(0) => continue,
                Some(n) => {
                    *n -= 1;
                    return Some(*kind);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for kind in FaultKind::ALL {
            let f: Fault = kind.name().parse().unwrap();
            assert_eq!(f.to_string(), kind.name());
        }
        assert_eq!("rate-limit:3".parse::<Fault>().unwrap().count, Some(3));
        assert!("swap-envelope:3".parse::<Fault>().is_err());
        assert!("nonsense".parse::<Fault>().is_err());
        assert!("hang:x".parse::<Fault>().is_err());
    }

    #[test]
    fn request_faults_apply_in_order_with_budgets() {
        let faults = vec![
            Fault::first(FaultKind::RateLimit, 2),
            Fault::new(FaultKind::SwapEnvelope),
            Fault::first(FaultKind::Unavailable, 1),
        ];
        let mut r = RequestFaults::default();
        r.set(&faults);
        let mut s = FaultState::default();
        s.set(faults);
        let seen: Vec<_> = (0..4).map(|_| r.take()).collect();
        assert_eq!(
            seen,
            vec![
                Some(FaultKind::RateLimit),
                Some(FaultKind::RateLimit),
                Some(FaultKind::Unavailable),
                None
            ]
        );
        assert!(s.has(FaultKind::SwapEnvelope));
    }
}
