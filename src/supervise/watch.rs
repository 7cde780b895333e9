//! `--watch`: polling R4 and deciding what a new set of values means for
//! the running COMMAND.
//!
//! A poll is one `GET /vault/sync?cursor=…` (a delta): when the server says
//! nothing changed since the last verified resolution, nothing more is
//! fetched. Otherwise — and always when `[project]` is configured, whose
//! membership the delta does not cover — it is a full resolution exactly as
//! at start (one sync, every signature and checkpoint verified, all or
//! nothing), with a [`VersionFloor`] kept for the life of the process: a
//! vault summary older than one already seen is a rollback, and the refresh
//! fails. The delta itself is not trusted with values; a server that lies
//! about it can only withhold an update, which it can do anyway.
//!
//! The first poll asks for a delta too when the start was resolved from a
//! full sync (the default plan in a small world, `plan = "sync"`): its
//! cursor is that of the state COMMAND started with, so a supervisor costs
//! R4 one full sync, not two. A start by the referenced plan, or from the
//! fallback copy, has no cursor: its first poll is a full sync, once
//! (docs/plan.md, "Limits", says what that costs and why).
//!
//! Only the first resolution may come from the fallback copy
//! (`docs/fallback.md`); polls are live only. A poll that fails leaves
//! COMMAND as it is, whatever it started from; the first one that succeeds
//! replaces what the copy gave (a restart if a value changed).

use std::time::Duration;

use crate::config::Delivery;
use crate::error::AppError;
use crate::resolve::{Resolved, ResolvedSecret};
use crate::startup::Session;

/// What a poll found.
pub(crate) enum Poll {
    /// The server reports no change since the last resolution.
    Unchanged,
    /// A complete, verified set (possibly equal to the current one).
    Resolved(Resolved),
    /// The refresh failed: one line, no value.
    Failed(String),
}

/// The start-up session (client with the API key, agent's private key,
/// configuration, version floor) and the delta cursor. Kept for the life of the process
/// with `--watch` only (r4-exec is non-dumpable); dropped once COMMAND
/// starts otherwise.
pub(crate) struct Watcher {
    session: Session,
    cursor: Option<String>,
    timeout: Duration,
}

impl Watcher {
    /// A watcher; `timeout` bounds each resolution (`--timeout`).
    pub(crate) fn new(session: Session, timeout: Duration) -> Watcher {
        Watcher {
            session,
            cursor: None,
            timeout,
        }
    }

    /// A full resolution under `--timeout`, recorded in the version floor;
    /// from the fallback copy if R4 cannot be reached and one is configured.
    pub(crate) async fn resolve(&mut self) -> Result<Resolved, AppError> {
        let resolved = match tokio::time::timeout(self.timeout, self.session.resolve()).await {
            Err(_) => Err(AppError::Deadline(self.timeout)),
            Ok(resolved) => resolved,
        };
        self.cursor = self.session.take_cursor();
        resolved
    }

    /// `[fallback] prefer` is set: a start from the copy is followed by a
    /// poll at once, which refreshes the copy.
    pub(crate) fn prefers_copy(&self) -> bool {
        self.session.prefers_copy()
    }

    /// The one refresh of `[fallback] prefer` without `--watch`: a full
    /// resolution only (it stores the copy). No delta request first: its
    /// cursor would never be used, and without one the server builds a full
    /// sync for nothing.
    pub(crate) async fn refresh_once(&mut self) -> Poll {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.session.resolve_live()).await {
            Ok(Ok(resolved)) => Poll::Resolved(resolved),
            Ok(Err(e)) => Poll::Failed(e.lines().join("; ")),
            Err(_) => Poll::Failed(AppError::Deadline(timeout).to_string()),
        }
    }

    /// One poll under `--timeout`.
    pub(crate) async fn poll(&mut self) -> Poll {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.poll_inner()).await {
            Ok(poll) => poll,
            Err(_) => {
                self.cursor = None;
                Poll::Failed(AppError::Deadline(timeout).to_string())
            }
        }
    }

    async fn poll_inner(&mut self) -> Poll {
        let mut next_cursor = None;
        if self.session.config().project.is_none() {
            let sync = match self.session.client().sync(self.cursor.as_deref()).await {
                Ok(s) => s,
                Err(e) => return Poll::Failed(e.to_string()),
            };
            let unchanged = self.cursor.is_some()
                && sync.mode == "delta"
                && sync.vaults.is_empty()
                && sync.removed.vault_ids.is_empty()
                && sync.removed.item_ids.is_empty();
            if unchanged {
                self.cursor = Some(sync.cursor);
                self.session.refresh_copy(crate::fallback::now_ms());
                return Poll::Unchanged;
            }
            // Taken before the resolution: a change made during it shows in
            // the next delta.
            next_cursor = Some(sync.cursor);
        }
        match self.session.resolve_live().await {
            Ok(resolved) => {
                // A resolution that was itself a full sync gives the
                // cursor of exactly the state it verified.
                self.cursor = self.session.take_cursor().or(next_cursor);
                Poll::Resolved(resolved)
            }
            Err(e) => {
                self.cursor = None;
                Poll::Failed(e.lines().join("; "))
            }
        }
    }
}

/// What a new set of values means for the running COMMAND.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Every value is the same.
    None,
    /// Only `[files]` values changed (these names), and reloading is on.
    Reload(Vec<String>),
    /// Anything else: a changed env value (a running process cannot get a
    /// new environment), a secret added, removed, renamed or moved between
    /// env and file, or a changed file without `--reload-signal`.
    Restart(Vec<String>),
}

/// Compares the running set with a new one, entry by entry in order.
pub(crate) fn diff(old: &[ResolvedSecret], new: &[ResolvedSecret], reload: bool) -> Change {
    let same_shape = old.len() == new.len()
        && old
            .iter()
            .zip(new)
            .all(|(a, b)| a.name == b.name && a.delivery == b.delivery);
    if !same_shape {
        let mut names: Vec<String> = old
            .iter()
            .chain(new)
            .filter(|s| {
                let in_old = old
                    .iter()
                    .any(|o| o.name == s.name && o.delivery == s.delivery);
                let in_new = new
                    .iter()
                    .any(|n| n.name == s.name && n.delivery == s.delivery);
                !(in_old && in_new)
            })
            .map(|s| s.name.clone())
            .collect();
        names.dedup();
        if names.is_empty() {
            names.push("(order of secrets)".into());
        }
        return Change::Restart(names);
    }
    let changed: Vec<&ResolvedSecret> = old
        .iter()
        .zip(new)
        .filter(|(a, b)| a.value != b.value)
        .map(|(_, b)| b)
        .collect();
    let names = changed.iter().map(|s| s.name.clone()).collect();
    if changed.is_empty() {
        Change::None
    } else if reload && changed.iter().all(|s| s.delivery == Delivery::File) {
        Change::Reload(names)
    } else {
        Change::Restart(names)
    }
}

/// `interval` ±10%, uniformly: replicas started together do not poll
/// together.
pub(crate) fn jittered(interval: Duration) -> Duration {
    crate::client::jitter(interval, 0.9, 1.1)
}

/// A uniform random delay in `0..=window` (`--watch-splay`): replicas
/// started or changed together spread their next poll over the window.
pub(crate) fn splay(window: Duration) -> Duration {
    crate::client::jitter(window, 0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Secret;

    fn s(name: &str, delivery: Delivery, value: &str) -> ResolvedSecret {
        ResolvedSecret {
            name: name.into(),
            delivery,
            reference: format!("r4://v/i/{name}"),
            vault_id: "v".into(),
            item_id: "i".into(),
            field_id: name.into(),
            signer: "sha256:x".into(),
            value: Secret::new(value.as_bytes().to_vec()),
            paths: Vec::new(),
        }
    }

    use Delivery::{Env, File};

    #[test]
    fn same_values_is_no_change() {
        let a = [s("A", Env, "1"), s("F", File, "x")];
        let b = [s("A", Env, "1"), s("F", File, "x")];
        assert_eq!(diff(&a, &b, false), Change::None);
        assert_eq!(diff(&a, &b, true), Change::None);
    }

    #[test]
    fn a_changed_env_value_always_restarts() {
        let a = [s("A", Env, "1"), s("F", File, "x")];
        let b = [s("A", Env, "2"), s("F", File, "y")];
        assert_eq!(
            diff(&a, &b, true),
            Change::Restart(vec!["A".into(), "F".into()])
        );
    }

    #[test]
    fn a_changed_file_reloads_only_with_a_reload_signal() {
        let a = [s("A", Env, "1"), s("F", File, "x")];
        let b = [s("A", Env, "1"), s("F", File, "y")];
        assert_eq!(diff(&a, &b, true), Change::Reload(vec!["F".into()]));
        assert_eq!(diff(&a, &b, false), Change::Restart(vec!["F".into()]));
    }

    #[test]
    fn a_different_set_restarts() {
        let a = [s("A", Env, "1")];
        let b = [s("A", Env, "1"), s("B", Env, "2")];
        assert_eq!(diff(&a, &b, true), Change::Restart(vec!["B".into()]));
        let c = [s("A", File, "1")];
        assert_eq!(diff(&a, &c, true), Change::Restart(vec!["A".into()]));
    }

    /// A secret that went and one that came, of the same delivery: both
    /// are named (the one that went is not "in the new set" because some
    /// other secret is delivered the same way).
    #[test]
    fn a_renamed_secret_names_the_old_and_the_new_name() {
        let a = [s("OLD", Env, "1")];
        let b = [s("NEW", Env, "1")];
        assert_eq!(
            diff(&a, &b, true),
            Change::Restart(vec!["OLD".into(), "NEW".into()])
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(30);
        for _ in 0..200 {
            let j = jittered(base);
            assert!(
                j >= Duration::from_secs(27) && j <= Duration::from_secs(33),
                "{j:?}"
            );
        }
    }

    #[test]
    fn a_splay_stays_in_its_window_and_spreads_over_it() {
        let window = Duration::from_secs(10);
        let delays: Vec<Duration> = (0..200).map(|_| splay(window)).collect();
        assert!(delays.iter().all(|d| *d <= window));
        // 200 uniform draws: each half of the window gets some.
        assert!(delays.iter().any(|d| *d < window / 2));
        assert!(delays.iter().any(|d| *d > window / 2));
        assert_eq!(splay(Duration::ZERO), Duration::ZERO);
    }
}
