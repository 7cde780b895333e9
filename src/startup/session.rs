//! A session: a configuration, a client, the private key and the version
//! floor, shared by every resolution of a run, and the lifecycle of the
//! fallback copy: kept after every verified live answer, re-stamped by
//! `--watch` when R4 says nothing changed, and verified and used instead
//! when (and only when) R4 cannot be reached (`docs/fallback.md`).

use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::client::{Client, ClientError};
use crate::config::Config;
use crate::contract::checkpoint::VersionFloor;
use crate::contract::crypto::PrivateKey;
use crate::error::AppError;
use crate::fallback::{self, FallbackError, Stored};
use crate::resolve::{self, Failure, Fetched, Problem, ResolveOptions, Resolved};
use crate::ui::Ui;

use super::settings;

/// The agent's private key, loading or loaded.
enum KeySlot {
    Loading(JoinHandle<Result<PrivateKey, AppError>>),
    Ready(PrivateKey),
}

/// A configuration, a client, the private key and the version floor: what
/// every resolution of a run shares.
pub struct Session {
    client: Client,
    config: Config,
    opts: ResolveOptions,
    key: KeySlot,
    floor: VersionFloor,
    ui: Ui,
    /// Where the fallback copy is kept, when configured.
    fallback: Option<fallback::CopyOptions>,
    /// How long a start may wait for R4 before it turns to the copy.
    live_budget: Duration,
    /// What this session last wrote to the copy.
    kept: Option<Kept>,
    /// Items of the world at the last verified answer (or as the copy's
    /// stamp says, at start-up): the default plan's first request.
    known: Option<u64>,
    /// The delta cursor of the last verified live answer that was a full
    /// sync, until the watcher takes it ([`Session::take_cursor`]).
    cursor: Option<String>,
}

/// An answer as stored in the fallback copy: ciphertext only.
struct Kept {
    body: Vec<u8>,
    versions: std::collections::BTreeMap<String, u64>,
    visible: Option<u64>,
    at_ms: u64,
}

/// What is on disk after `store` said `outcome` of `kept`, if it is this
/// answer: written now, or already there under an older stamp, whose time
/// is then what its age (and the next re-stamp) counts from. `None` when
/// the copy kept a newer answer.
fn on_disk(kept: Kept, outcome: &Stored) -> Option<Kept> {
    match *outcome {
        Stored::Written => Some(kept),
        Stored::Current { stored_at_ms } => Some(Kept {
            at_ms: stored_at_ms,
            ..kept
        }),
        Stored::KeptNewer { .. } => None,
    }
}

impl Session {
    /// A session for `config`; the private key at `key_path` starts loading
    /// on a blocking thread at once (so this must run inside a runtime).
    pub(super) fn new(
        client: Client,
        config: Config,
        opts: ResolveOptions,
        key_path: PathBuf,
        ui: Ui,
        fallback: Option<fallback::CopyOptions>,
        live_budget: Duration,
    ) -> Session {
        let key = KeySlot::Loading(tokio::task::spawn_blocking(move || {
            settings::load_private_key(key_path)
        }));
        let known = fallback
            .as_ref()
            .and_then(|f| fallback::size_hint(f, client.base_url()));
        Session {
            client,
            config,
            opts,
            key,
            floor: VersionFloor::default(),
            ui,
            fallback,
            live_budget,
            kept: None,
            known,
            cursor: None,
        }
    }

    /// The client (the watcher's delta polls).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The delta cursor of the last resolution, if it was verified from a
    /// live full sync (and not taken since): the state `--watch`'s next
    /// poll asks the changes since.
    pub fn take_cursor(&mut self) -> Option<String> {
        self.cursor.take()
    }

    /// Fetches and verifies everything the configuration asks for, and
    /// keeps the answer in the fallback copy when one is configured. When
    /// R4 cannot be reached — and only then ([`resolve::is_outage`]), never
    /// after a verification failure or a 401, 403 or 404 — the copy is
    /// verified exactly like a live answer and used instead, with a warning.
    ///
    /// With `[fallback] prefer`, a copy that is valid (stamp, age and every
    /// check of a live answer) is used without asking R4 at all; otherwise
    /// (no copy, too old, refused) R4 is asked as without it.
    pub async fn resolve(&mut self) -> Result<Resolved, AppError> {
        if self.prefers_copy() {
            if let Some(resolved) = self.preferred_copy().await? {
                return Ok(resolved);
            }
        }
        self.resolve_with(self.fallback.is_some()).await
    }

    /// `[fallback] prefer` is set.
    pub fn prefers_copy(&self) -> bool {
        self.fallback.as_ref().is_some_and(|f| f.prefer)
    }

    /// `prefer`: the copy, verified, or `None` (with a note why) to ask R4.
    async fn preferred_copy(&mut self) -> Result<Option<Resolved>, AppError> {
        self.key_ready().await?;
        match self.verified_copy().await {
            Ok((mut resolved, age)) => {
                let settings = self.fallback.as_ref().expect("prefer has a fallback");
                resolved.warnings.push(format!(
                    "started from the fallback copy {}, stored {} ago (max_age {}); R4 was not asked ([fallback] prefer)",
                    settings.path.display(),
                    fallback::human(age),
                    fallback::human(settings.max_age),
                ));
                resolved.fallback_age = Some(age);
                Ok(Some(resolved))
            }
            Err((problems, why)) => {
                let detail = problems
                    .first()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default();
                self.ui.note(&format!(
                    "[fallback] prefer: the copy is not used: {why}{detail}; asking R4"
                ));
                Ok(None)
            }
        }
    }

    /// Waits for the private key to be loaded (the first fetch does it
    /// otherwise, overlapped with the request).
    async fn key_ready(&mut self) -> Result<(), AppError> {
        if let KeySlot::Loading(task) = &mut self.key {
            let key = joined(task.await)?;
            self.key = KeySlot::Ready(key);
        }
        Ok(())
    }

    /// [`Session::resolve`] from R4 only: the supervisor's polls (a failed
    /// poll leaves COMMAND as it is; a successful one replaces whatever the
    /// copy gave) and `check`, which checks the server.
    pub async fn resolve_live(&mut self) -> Result<Resolved, AppError> {
        self.resolve_with(false).await
    }

    async fn resolve_with(&mut self, may_fall_back: bool) -> Result<Resolved, AppError> {
        self.ui
            .note(&format!("resolving from {}", self.client.base_url()));
        let fetched = self.fetch(may_fall_back).await?;
        let received_ms = fallback::now_ms();
        match fetched {
            Ok(fetched) => self.verify_live(&fetched, received_ms).await,
            Err(live) if may_fall_back && resolve::is_outage(&live) => {
                self.resolve_copy(live).await
            }
            Err(live) => Err(AppError::Resolve(live)),
        }
    }

    /// The answer, and the private key. The first call overlaps the request
    /// with parsing the key (~1 ms): a key that fails to load is reported as
    /// soon as it fails, and wins over a network error, as if it had been
    /// read first. `bounded`: give up on R4 after the live budget.
    async fn fetch(&mut self, bounded: bool) -> Result<Result<Fetched, Vec<Problem>>, AppError> {
        let budget = bounded.then_some(self.live_budget);
        let fetch = fetch_within(&self.client, &self.config, budget, self.known);
        let fetched = match &mut self.key {
            KeySlot::Ready(_) => fetch.await,
            KeySlot::Loading(task) => {
                tokio::pin!(fetch);
                let (key, fetched) = tokio::select! {
                    key = &mut *task => {
                        let key = joined(key)?;
                        self.ui.timing("private key loaded");
                        (key, fetch.await)
                    }
                    fetched = &mut fetch => {
                        self.ui.timing("answer received and parsed");
                        (joined(task.await)?, fetched)
                    }
                };
                self.key = KeySlot::Ready(key);
                fetched
            }
        };
        self.ui.timing("answer and private key ready");
        Ok(fetched)
    }

    /// The loaded private key.
    fn key(&self) -> &PrivateKey {
        let KeySlot::Ready(key) = &self.key else {
            unreachable!("the key is loaded by the first fetch")
        };
        key
    }

    /// Verifies and decrypts `fetched`, live or from the copy alike.
    async fn verify(&mut self, fetched: &Fetched) -> Result<Resolved, Vec<Problem>> {
        let KeySlot::Ready(key) = &self.key else {
            unreachable!("the key is loaded by the first fetch")
        };
        let floor = Some(&mut self.floor);
        resolve::verify(&self.client, fetched, key, &self.config, &self.opts, floor).await
    }

    /// A live answer: verified, then kept.
    async fn verify_live(
        &mut self,
        fetched: &Fetched,
        received_ms: u64,
    ) -> Result<Resolved, AppError> {
        let mut resolved = self.verify(fetched).await.map_err(AppError::Resolve)?;
        self.ui.timing("verified and decrypted");
        self.known = fetched.world_size();
        self.cursor = fetched.cursor().map(str::to_owned);
        if let Some(warning) = self.keep(fetched, &resolved, received_ms) {
            resolved.warnings.push(warning);
        }
        Ok(resolved)
    }

    /// Stores a verified live answer in the fallback copy, if configured;
    /// a warning when it was not stored. Never fails the run: the copy is
    /// for the next start.
    fn keep(&mut self, fetched: &Fetched, resolved: &Resolved, received_ms: u64) -> Option<String> {
        self.fallback.as_ref()?;
        let body = match resolve::keep(fetched, resolved) {
            Ok(body) => body,
            Err(why) => return Some(format!("fallback copy not stored: {why}")),
        };
        let versions = resolved
            .vaults
            .iter()
            .map(|v| (v.id.clone(), v.version))
            .collect();
        self.write_copy(Kept {
            body,
            versions,
            visible: fetched.world_size(),
            at_ms: received_ms,
        })
    }

    /// `--watch`, after a poll R4 answered with "nothing changed since the
    /// last answer": the copy is re-stamped with the time of that answer,
    /// so that its age stays the time since R4 last vouched for it (once a
    /// tenth of `max_age` has passed; not on every poll). The delta is the
    /// server's unsigned word, but a server could as well serve the same
    /// signed answer again in full, which would be stored the same way.
    pub fn refresh_copy(&mut self, answered_ms: u64) {
        let (Some(settings), Some(kept)) = (&self.fallback, &self.kept) else {
            return;
        };
        if !fallback::restamp_due(kept.at_ms, settings.max_age, answered_ms) {
            return;
        }
        let Some(kept) = self.kept.take() else { return };
        let refreshed = Kept {
            at_ms: answered_ms,
            ..kept
        };
        if let Some(problem) = self.write_copy(refreshed) {
            self.ui.note(&format!("refresh: {problem}"));
        }
    }

    /// Writes `kept`; remembers it (for [`Session::refresh_copy`]) when it
    /// is now the copy on disk.
    fn write_copy(&mut self, kept: Kept) -> Option<String> {
        let settings = self.fallback.as_ref()?;
        let base_url = self.client.base_url();
        let versions = kept.versions.clone();
        let stored = fallback::store(
            settings,
            self.key(),
            base_url,
            &kept.body,
            versions,
            kept.visible,
            kept.at_ms,
        );
        self.ui.timing("fallback copy stored");
        if let Ok(outcome) = &stored {
            if let Some(on_disk) = on_disk(kept, outcome) {
                self.kept = Some(on_disk);
            }
        }
        match stored {
            Ok(Stored::Written) => {
                let path = settings.path.display();
                self.ui.note(&format!("fallback copy stored in {path}"));
                None
            }
            Ok(Stored::Current { .. }) => {
                self.ui.note("fallback copy already holds this answer");
                None
            }
            Ok(Stored::KeptNewer {
                vault_id,
                stored,
                answer,
            }) => Some(format!(
                "fallback copy not replaced: vault {vault_id} is at version {answer} in this answer but at {stored} in the stored copy (the copy only moves forward)"
            )),
            Err(e) => Some(format!("fallback copy not stored: {e}")),
        }
    }

    /// R4 cannot be reached (`live` says how): the fallback copy, checked
    /// (stamp, age) and verified like a live answer, with the session's
    /// version floor. If it cannot be used, the run fails with the live
    /// problems and the reason.
    async fn resolve_copy(&mut self, mut live: Vec<Problem>) -> Result<Resolved, AppError> {
        let (mut resolved, age) = match self.verified_copy().await {
            Ok(found) => found,
            Err((problems, e)) => {
                live.extend(problems);
                live.push(copy_problem(e));
                return Err(AppError::Resolve(live));
            }
        };
        let settings = self.fallback.as_ref().expect("called with a fallback");
        resolved.warnings.push(format!(
            "R4 cannot be reached ({}); started from the fallback copy {}, stored {} ago (max_age {})",
            live[0],
            settings.path.display(),
            fallback::human(age),
            fallback::human(settings.max_age),
        ));
        resolved.fallback_age = Some(age);
        Ok(resolved)
    }

    /// The fallback copy, checked (stamp, age) and verified like a live
    /// answer, with the session's version floor, and its age; else what
    /// its verification found and why it is refused.
    async fn verified_copy(
        &mut self,
    ) -> Result<(Resolved, Duration), (Vec<Problem>, FallbackError)> {
        let settings = self.fallback.clone().expect("called with a fallback");
        let base_url = self.client.base_url().to_string();
        let public = self.key().public();
        let copy = fallback::load(&settings, public, &base_url, fallback::now_ms())
            .map_err(|e| (Vec::new(), e))?;
        let path = settings.path.clone();
        let fetched = resolve::restore(&copy.body)
            .map_err(|what| (Vec::new(), FallbackError::Malformed { path, what }))?;
        let resolved = self
            .verify(&fetched)
            .await
            .map_err(|problems| (problems, FallbackError::Unusable(settings.path.clone())))?;
        self.ui.timing("fallback copy verified and decrypted");
        self.known = fetched.world_size();
        Ok((resolved, copy.age))
    }
}

/// [`resolve::fetch`], given up after `budget` (as a timeout, an outage).
async fn fetch_within(
    client: &Client,
    config: &Config,
    budget: Option<Duration>,
    known: Option<u64>,
) -> Result<Fetched, Vec<Problem>> {
    let fetch = resolve::fetch(client, config, known);
    let Some(after) = budget else {
        return fetch.await;
    };
    match tokio::time::timeout(after, fetch).await {
        Ok(fetched) => fetched,
        Err(_) => Err(vec![Problem {
            name: None,
            reference: None,
            failure: Failure::Client(ClientError::Timeout {
                method: "GET",
                path: resolve::first_path(config, known).into(),
                after,
            }),
        }]),
    }
}

/// The line that says why the copy was not used.
fn copy_problem(e: FallbackError) -> Problem {
    Problem {
        name: None,
        reference: None,
        failure: Failure::Fallback(e),
    }
}

fn joined(
    r: Result<Result<PrivateKey, AppError>, tokio::task::JoinError>,
) -> Result<PrivateKey, AppError> {
    r.map_err(|e| AppError::System {
        what: "loading the private key",
        source: std::io::Error::other(e),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(at_ms: u64) -> Kept {
        Kept {
            body: b"{}".to_vec(),
            versions: [("v".to_string(), 3)].into_iter().collect(),
            visible: Some(5),
            at_ms,
        }
    }

    #[test]
    fn a_copy_already_current_counts_its_age_from_its_own_stamp() {
        let written = on_disk(kept(9_000), &Stored::Written).unwrap();
        assert_eq!((written.at_ms, written.visible), (9_000, Some(5)));
        let current = on_disk(
            kept(9_000),
            &Stored::Current {
                stored_at_ms: 4_000,
            },
        )
        .unwrap();
        assert_eq!(current.at_ms, 4_000);
        assert_eq!(current.versions, kept(0).versions);
        let newer = Stored::KeptNewer {
            vault_id: "v".into(),
            stored: 4,
            answer: 3,
        };
        assert!(on_disk(kept(9_000), &newer).is_none());
    }
}
