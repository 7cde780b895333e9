//! COMMAND as data (watchexec's supervisor `Command`): what to start and how
//! its secrets are delivered, known before any secret is. [`Launch::prepare`]
//! turns it and a verified set into an [`ExecPlan`] — program, argv,
//! environment, memfds and whether the core limit comes back — which exec
//! mode hands to `execve(2)` and supervisor mode to fork+exec, both through
//! [`crate::deliver::exec::exec`], the one place a command is started. Where
//! the memfds live, and so which path COMMAND gets, is the caller's
//! [`FileHome`].

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::compose::template::fill;
use crate::config::Config;
use crate::config::Delivery;
use crate::contract::Secret;
use crate::deliver::env::{self, EnvOptions};
use crate::deliver::exec::ExecPlan;
use crate::deliver::user::{self, RunAs};
use crate::deliver::{DeliverError, FileHome};
use crate::error::AppError;
use crate::harden::Hardening;
use crate::resolve::ResolvedSecret;
use crate::ui::Ui;

/// What to start, and how.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The program, found in `PATH` before any secret was fetched.
    pub program: PathBuf,
    /// COMMAND as given: `argv[0]` and its arguments.
    pub argv: Vec<OsString>,
    /// How the inherited environment is treated.
    pub env: EnvOptions,
    /// The core-file limit to give back to COMMAND (`None`:
    /// `--no-core-for-child`).
    pub restore: Option<Hardening>,
    /// Whom COMMAND (and the holder of its files) runs as: `--user` or
    /// `[r4] user`, resolved before any secret is fetched
    /// ([`crate::deliver::user`]). Its files are given to it.
    pub user: Option<RunAs>,
    /// `--user` as written, resolved by [`Launch::adopt_users`].
    pub user_flag: Option<String>,
    /// `[files]` entries with an `owner` of their own (the `gosu` pattern:
    /// COMMAND starts as root and drops to that user itself).
    pub owners: Vec<(String, RunAs)>,
    /// COMMAND's starting environment, before secrets (see
    /// [`Launch::adopt`]).
    base: Vec<(OsString, OsString)>,
    /// The env files' plain values: the user's own configuration, so not
    /// filtered by `--pristine`, and applied like secrets of the lowest
    /// rank (a secret of the same name wins; `--no-override` lets an
    /// inherited value win over them).
    literals: Vec<(String, Secret)>,
}

impl Launch {
    /// A launch with an empty environment until [`Launch::adopt`].
    pub fn new(
        program: PathBuf,
        argv: Vec<OsString>,
        env: EnvOptions,
        restore: Option<Hardening>,
    ) -> Launch {
        Launch {
            program,
            argv,
            env,
            restore,
            user: None,
            user_flag: None,
            owners: Vec::new(),
            base: Vec::new(),
            literals: Vec::new(),
        }
    }

    /// Takes COMMAND's starting environment from the sources: `inherited`,
    /// the process environment without the variables that held a reference
    /// (and r4-exec's own), and the env files' plain values as the
    /// lowest-ranked overrides ([`build_env`](env::build_env) applies
    /// `--no-override` and `-v` names what it kept).
    pub fn adopt(&mut self, inherited: Vec<(OsString, OsString)>, literals: &[(String, String)]) {
        self.base = inherited;
        self.literals = literals
            .iter()
            .map(|(n, v)| (n.clone(), Secret::new(v.as_bytes().to_vec())))
            .collect();
    }

    /// Resolves whom COMMAND runs as (`--user`, else `[r4] user`) and each
    /// file's `owner`, before any secret is fetched: a name that does not
    /// resolve stops the start.
    pub fn adopt_users(&mut self, config: &Config) -> Result<(), AppError> {
        let db = user::system();
        let spec = self.user_flag.as_deref().or(config.r4.user.as_deref());
        self.user = spec
            .map(|s| user::lookup(s, db))
            .transpose()
            .map_err(|e| AppError::Usage(e.to_string()))?;
        // SAFETY: geteuid(2) takes no argument and cannot fail.
        let euid = unsafe { nix::libc::geteuid() };
        if let Some(u) = &self.user {
            only_root_may_give(u, euid).map_err(|why| {
                AppError::Usage(format!(
                    "--user {}: {why} (r4-exec runs as uid {euid})",
                    u.spec
                ))
            })?;
        }
        self.owners = config
            .owners
            .iter()
            .map(|(name, spec)| {
                let owner = |e: String| AppError::Usage(format!("[files] {name}: owner: {e}"));
                let o = user::lookup(spec, db).map_err(|e| owner(e.to_string()))?;
                only_root_may_give(&o, euid)
                    .map_err(|why| owner(format!("{why} (r4-exec runs as uid {euid})")))?;
                Ok((name.clone(), o))
            })
            .collect::<Result<_, AppError>>()?;
        Ok(())
    }

    /// Who owns the memfd of file `name`: its own `owner`, else the
    /// `--user`, else r4-exec's user (`None`: left as created).
    pub fn owner_of(&self, name: &str) -> Option<&RunAs> {
        self.owners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o)
            .or(self.user.as_ref())
    }

    /// The exec plan for `secrets`: `[env]` values in the environment, each
    /// `[files]` value in a sealed, owner-read-only memfd kept by `home`,
    /// its path in the environment. A template with `{{ path:NAME }}` is
    /// completed with the path of file `NAME` once that file is placed (see
    /// [`delivery_order`]).
    pub fn prepare(
        &self,
        secrets: &[ResolvedSecret],
        mut home: FileHome<'_>,
        ui: &Ui,
    ) -> Result<ExecPlan, AppError> {
        let order = delivery_order(secrets)?;
        // Refused before any file is handed over: a holder must not swap in
        // files for a set that cannot start.
        for s in secrets.iter().filter(|s| s.delivery == Delivery::Env) {
            env::check_variable(&s.name, s.value.expose())?;
        }
        // Env-file values first: a later override of the same name wins.
        let mut env_secrets: Vec<(String, Secret)> = self.literals.clone();
        let mut files: Vec<(String, String)> = Vec::new();
        let mut keep_fds: Vec<OwnedFd> = Vec::new();
        for s in order.into_iter().map(|i| &secrets[i]) {
            ui.note(&format!(
                "{} <- {} ({} bytes)",
                s.name,
                s.reference,
                s.value.len()
            ));
            let value = with_paths(s, |name| {
                files
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| p.clone())
            })?;
            match s.delivery {
                Delivery::Env => {
                    env::check_variable(&s.name, value.expose())?;
                    env_secrets.push((s.name.clone(), value.into_owned()));
                }
                Delivery::File => {
                    let placed = home
                        .put(&s.name, &value, self.owner_of(&s.name))
                        .map_err(|e| AppError::file(&s.name, e))?;
                    files.push((s.name.clone(), placed.path));
                    keep_fds.extend(placed.inherit);
                }
            }
        }
        let envp = env::build_env(self.base.iter().cloned(), &env_secrets, &files, &self.env)?;
        for name in envp.not_overridden() {
            ui.note(&format!("{name}: kept the inherited value (--no-override)"));
        }
        Ok(ExecPlan::new(
            self.program.clone(),
            &self.argv,
            envp,
            keep_fds,
            self.restore,
        )?
        .run_as(self.user.clone()))
    }
}

/// Becoming, or giving a file to, another user than `euid` needs root: said
/// before anything is fetched rather than as `EPERM` at the last step.
fn only_root_may_give(who: &RunAs, euid: u32) -> Result<(), &'static str> {
    if who.uid == euid || euid == 0 {
        Ok(())
    } else {
        Err("only root can run COMMAND as, or give files to, another user")
    }
}

/// `s`'s value with the paths its template names (`path_of` a file's
/// path), or the value itself when it names none.
/// Borrowed when it names none: no further copy of a secret is made.
pub fn with_paths(
    s: &ResolvedSecret,
    path_of: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'_, Secret>, AppError> {
    if s.paths.is_empty() {
        return Ok(Cow::Borrowed(&s.value));
    }
    fill(s.value.expose(), &s.paths, path_of)
        .map(Cow::Owned)
        .map_err(|file| {
            AppError::Inject(DeliverError::NoSuchFile {
                name: s.name.clone(),
                file,
            })
        })
}

/// The order in which `secrets` are handed over: as given, except that a
/// template naming the path of a file (`{{ path:NAME }}`) comes after that
/// file. Refuses a name that is no other file secret of the set, and a
/// circle of templates naming each other.
pub fn delivery_order(secrets: &[ResolvedSecret]) -> Result<Vec<usize>, AppError> {
    let is_file = |name: &str| {
        secrets
            .iter()
            .any(|s| s.delivery == Delivery::File && s.name == name)
    };
    for s in secrets {
        if let Some(slot) = s
            .paths
            .iter()
            .find(|p| p.name == s.name || !is_file(&p.name))
        {
            return Err(AppError::Inject(DeliverError::NoSuchFile {
                name: s.name.clone(),
                file: slot.name.clone(),
            }));
        }
    }
    if secrets.iter().all(|s| s.paths.is_empty()) {
        return Ok((0..secrets.len()).collect());
    }
    let mut order = Vec::with_capacity(secrets.len());
    let mut placed = vec![false; secrets.len()];
    while order.len() < secrets.len() {
        let ready = (0..secrets.len()).filter(|&i| !placed[i]).find(|&i| {
            secrets[i].paths.iter().all(|p| {
                secrets
                    .iter()
                    .zip(&placed)
                    .any(|(f, &done)| done && f.delivery == Delivery::File && f.name == p.name)
            })
        });
        let Some(i) = ready else {
            let circle: Vec<&str> = (0..secrets.len())
                .filter(|&i| !placed[i])
                .map(|i| secrets[i].name.as_str())
                .collect();
            return Err(AppError::Inject(DeliverError::PathCycle(circle.join(", "))));
        };
        placed[i] = true;
        order.push(i);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::template::PathSlot;

    fn secret(name: &str, delivery: Delivery, paths: &[&str]) -> ResolvedSecret {
        ResolvedSecret {
            name: name.into(),
            delivery,
            reference: String::new(),
            vault_id: String::new(),
            item_id: String::new(),
            field_id: String::new(),
            signer: String::new(),
            value: Secret::new(b"v".to_vec()),
            paths: paths
                .iter()
                .map(|n| PathSlot {
                    at: 1,
                    name: (*n).into(),
                })
                .collect(),
        }
    }

    fn order(secrets: &[ResolvedSecret]) -> Result<Vec<usize>, String> {
        delivery_order(secrets).map_err(|e| e.to_string())
    }

    #[test]
    fn a_template_comes_after_the_files_it_names_and_the_rest_keeps_its_order() {
        use Delivery::{Env, File};
        let s = [
            secret("CONF", File, &["CERT", "KEY"]),
            secret("A", Env, &[]),
            secret("URL", Env, &["CONF"]),
            secret("CERT", File, &[]),
            secret("KEY", File, &[]),
        ];
        assert_eq!(order(&s).unwrap(), [1, 3, 4, 0, 2]);
        let plain = [secret("A", Env, &[]), secret("B", File, &[])];
        assert_eq!(order(&plain).unwrap(), [0, 1]);
    }

    #[test]
    fn a_path_of_no_file_of_its_own_or_in_a_circle_is_refused() {
        use Delivery::{Env, File};
        let e = order(&[secret("CONF", File, &["A"]), secret("A", Env, &[])]).unwrap_err();
        assert!(
            e.contains("{{ path:A }}, but A is not another file secret"),
            "{e}"
        );
        let e = order(&[secret("CONF", File, &["CONF"])]).unwrap_err();
        assert!(e.contains("template of CONF has {{ path:CONF }}"), "{e}");
        let e = order(&[
            secret("X", File, &[]),
            secret("A", File, &["B"]),
            secret("B", File, &["A"]),
        ])
        .unwrap_err();
        assert!(e.contains("templates of A, B name each other"), "{e}");
    }

    fn run_as(uid: u32) -> RunAs {
        RunAs {
            uid,
            gid: uid,
            groups: vec![uid],
            spec: uid.to_string(),
        }
    }

    #[test]
    fn a_files_own_owner_wins_over_the_user_and_none_means_as_created() {
        let mut launch = Launch::new("p".into(), vec!["p".into()], EnvOptions::default(), None);
        assert_eq!(launch.owner_of("KEY"), None);
        launch.user = Some(run_as(999));
        launch.owners = vec![("KEY".into(), run_as(70))];
        assert_eq!(launch.owner_of("KEY").map(|o| o.uid), Some(70));
        assert_eq!(launch.owner_of("CERT").map(|o| o.uid), Some(999));
    }

    #[test]
    fn only_root_may_give_files_or_a_start_to_another_user() {
        assert!(only_root_may_give(&run_as(999), 0).is_ok());
        assert!(only_root_may_give(&run_as(999), 999).is_ok());
        let e = only_root_may_give(&run_as(999), 1000).unwrap_err();
        assert!(e.contains("only root"), "{e}");
    }

    #[test]
    fn with_paths_fills_only_a_template_that_names_paths() {
        let mut s = secret("CONF", Delivery::File, &["CERT"]);
        let filled = with_paths(&s, |n| Some(format!("/p/{n}"))).unwrap();
        assert_eq!(filled.expose(), b"v/p/CERT");
        let e = with_paths(&s, |_| None).unwrap_err().to_string();
        assert!(e.contains("path:CERT"), "{e}");
        s.paths.clear();
        assert_eq!(with_paths(&s, |_| None).unwrap().expose(), b"v");
    }
}
