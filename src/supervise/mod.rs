//! Supervisor mode: r4-exec stays the parent of COMMAND instead of becoming
//! it. Selected by `--watch`, `--mask`, `--reap` or `--signal-group`; exec
//! mode (the default) is unchanged.
//!
//! - **Start**: the same resolution and verification as exec mode; nothing
//!   starts unless every secret resolved. COMMAND is forked and exec'd with
//!   the same [`crate::exec::ExecPlan`] machinery (see [`child`]), in a
//!   process group of its own; when stdin is r4-exec's controlling terminal
//!   and r4-exec is in the foreground, that group gets the terminal.
//! - **Signals**: every catchable signal r4-exec receives is forwarded to
//!   COMMAND (to its process group with `--signal-group`), except SIGCHLD and
//!   signals r4-exec raised itself (a SIGPIPE from its own write). A signal
//!   for a COMMAND that has already exited is harmless. A signal that would
//!   have ended r4-exec and arrives before COMMAND starts ends it (128+N)
//!   without starting COMMAND.
//! - **Exit**: r4-exec exits when COMMAND does, with its code, or 128+N if
//!   signal N killed it. It does not restart a COMMAND that exits by itself.
//! - **Reaping** (`--reap`, or automatically when r4-exec is PID 1): r4-exec
//!   is a child subreaper (`PR_SET_CHILD_SUBREAPER`, unless PID 1) and reaps
//!   every orphan that ends up its child. When COMMAND exits, what is left of
//!   its process group gets the stop signal, then SIGKILL after the grace
//!   period; processes that left the group (`setsid`) are not signalled (as
//!   PID 1, the kernel kills them when r4-exec exits).
//! - **`--watch`**: see [`watch`]. When a value COMMAND uses changes: by
//!   default COMMAND gets the stop signal (`--stop-signal`, TERM), SIGKILL
//!   after `--grace` (10 s), and is started again with the new environment
//!   and files. With `--reload-signal SIG`, if only `[files]` values changed,
//!   they are rewritten in place (see [`reload`]) and SIG is sent instead;
//!   a changed env value always restarts. A refresh that fails (network,
//!   verification, rollback) leaves COMMAND untouched and prints one line on
//!   stderr; a restart only ever uses a complete, verified set. A SIGTERM,
//!   SIGINT or SIGQUIT received during a restart is forwarded to the old
//!   COMMAND and cancels the restart: r4-exec exits with its status.
//! - **`--mask`**: see [`output`] and [`crate::mask`].
//!
//! **What stays in memory** once COMMAND runs: only what a flag needs.
//!
//! | | values | API key, agent private key |
//! | --- | --- | --- |
//! | `--watch` | kept, to compare a refresh with | kept, for the polls |
//! | `--mask` (without `--watch`) | kept, to match them | dropped |
//! | otherwise (`--reap`, `--signal-group`) | dropped | dropped |
//!
//! Dropped means gone from memory, not only out of reach: the secret types
//! zeroize on drop, the `r4-exec` binary's allocator zeroes every block it
//! frees, which covers the copies other crates made (HTTP client, JSON), and
//! `R4_API_KEY` is wiped from the environment block as soon as the client
//! holds the key (not with `--keep-r4-env`); see [`crate::wipe`].
//! `tests/memory.rs` checks this by scanning the supervisor's memory. The
//! process stays non-dumpable and without core dumps.

mod child;
mod output;
mod reload;
mod signals;
mod watch;

use std::collections::HashSet;
use std::future::Future;
use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use nix::libc;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::cli::{Cli, ExecArgs};
use crate::config::Delivery;
use crate::contract::Secret;
use crate::error::AppError;
use crate::exec::ExecPlan;
use crate::harden::Hardening;
use crate::mask::Patterns;
use crate::resolve::{ResolveOptions, ResolvedSecret};
use crate::run::Ui;
use crate::{inject, run, settings, wipe};

use child::SpawnOptions;
use output::MaskedOutput;
pub use signals::parse_signal;
use signals::{Received, Signals};
use watch::{Change, Poll, Watcher};

/// Default `--watch-interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default `--grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Parses a number of seconds, fractions allowed (`0.2`, `30`).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number of seconds"))?;
    if !(0.0..=31_536_000.0).contains(&secs) {
        return Err(format!("{s}: seconds must be between 0 and one year"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The supervisor flags, checked.
#[derive(Debug, Clone)]
struct Mode {
    interval: Option<Duration>,
    reload: Option<Signal>,
    stop: Signal,
    grace: Duration,
    group: bool,
    reap: bool,
    pid1: bool,
    mask: bool,
}

impl Mode {
    fn from_args(args: &ExecArgs) -> Result<Mode, AppError> {
        if args.mask {
            for (name, is_tty) in [
                ("stdout", std::io::stdout().is_terminal()),
                ("stderr", std::io::stderr().is_terminal()),
            ] {
                if is_tty {
                    return Err(AppError::Usage(format!(
                        "--mask needs stdout and stderr to be pipes or files, and {name} is a terminal: masking would take the terminal away from COMMAND (prompts, colours, full-screen programs); redirect both (e.g. `2>&1 | cat`) or run without --mask"
                    )));
                }
            }
        }
        let interval = args
            .watch
            .then(|| args.watch_interval.unwrap_or(DEFAULT_INTERVAL));
        if interval.is_some_and(|i| i.is_zero()) {
            return Err(AppError::Usage(
                "--watch-interval must be more than 0 seconds".into(),
            ));
        }
        if let Some(sig @ (Signal::SIGKILL | Signal::SIGSTOP)) = args.reload_signal {
            return Err(AppError::Usage(format!(
                "--reload-signal {sig} cannot be handled by COMMAND; use a signal it can catch (HUP, USR1, ...)"
            )));
        }
        let pid1 = std::process::id() == 1;
        Ok(Mode {
            interval,
            reload: args.reload_signal,
            stop: args.stop_signal.unwrap_or(Signal::SIGTERM),
            grace: args.grace.unwrap_or(DEFAULT_GRACE),
            group: args.signal_group,
            reap: args.reap || pid1,
            pid1,
            mask: args.mask,
        })
    }
}

/// Runs COMMAND under supervision; returns its exit status. Called by exec
/// mode after resolving `program` and hardening, while r4-exec still has a
/// single thread.
pub(crate) fn run(
    cli: &Cli,
    ui: &Ui,
    program: PathBuf,
    hardening: Hardening,
) -> Result<u8, AppError> {
    let mode = Mode::from_args(&cli.exec)?;
    // First, while there is one thread: every later thread inherits the mask.
    let blocked =
        signals::block_all().map_err(|e| AppError::Other(format!("cannot block signals: {e}")))?;
    let config = run::load_config(cli, true)?.expect("required config is loaded");
    let key = settings::private_key(Some(&config))?;
    let opts = ResolveOptions {
        allow_legacy: config.r4.allow_legacy,
        allow_unencrypted: config.r4.allow_unencrypted,
        trust: settings::trust(&config)?,
    };
    if mode.reap && !mode.pid1 {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| AppError::Other(format!("cannot become a child subreaper: {e}")))?;
    }
    let timeout = Duration::from_secs(cli.global.timeout);
    let rt = run::runtime()?;
    rt.block_on(async move {
        let client = run::client(Some(&config), cli, ui)?;
        forget_credentials(cli, ui);
        let watcher = Watcher::new(client, key, config, opts, timeout);
        let signals = Signals::new(&blocked)
            .map_err(|e| AppError::Other(format!("cannot read signals: {e}")))?;
        let mut sup = Supervisor {
            cli,
            ui,
            mode,
            program,
            hardening,
            own_pid: std::process::id() as i32,
            child: Pid::from_raw(0),
            current: Vec::new(),
            files: Vec::new(),
            output: None,
            delivered: Vec::new(),
            take_terminal: false,
            stopping: None,
            shutdown: false,
            warned: HashSet::new(),
            next_poll: None,
        };
        sup.main(signals, watcher).await
    })
}

/// Wipes the API key from r4-exec's environment block (and removes it from
/// its environment) once the client holds its own copy: nothing reads it
/// there again. Runs while r4-exec has one thread. Not with
/// `--keep-r4-env`, which passes the variable on to every COMMAND started,
/// restarts included.
fn forget_credentials(cli: &Cli, ui: &Ui) {
    if cli.exec.keep_r4_env {
        return;
    }
    // SAFETY: r4-exec has one thread here: the runtime runs on the calling
    // thread, and the masking threads, the verification threads and COMMAND
    // come later; nothing else reads the environment meanwhile.
    let forgotten = unsafe { wipe::forget_env(wipe::CREDENTIAL_VARS) };
    let names = wipe::CREDENTIAL_VARS.join(", ");
    if !forgotten.block_found {
        ui.note(&format!("cannot locate the environment block (/proc/self/stat): {names} removed from the environment, but /proc/PID/environ (root only) still shows it"));
    } else if forgotten.wiped > 0 {
        ui.note(&format!("wiped {names} from the environment block"));
    }
}

/// A COMMAND ready to start: its plan and, with `--watch`, the set it was
/// built from (empty otherwise, see [`Supervisor::keeps_values`]).
struct Prepared {
    plan: ExecPlan,
    secrets: Vec<ResolvedSecret>,
}

/// A restart in progress: the old COMMAND got the stop signal.
struct Stopping {
    deadline: Instant,
    killed: bool,
    next: Prepared,
}

type Refresh = Pin<Box<dyn Future<Output = (Watcher, Poll)>>>;

struct Supervisor<'a> {
    cli: &'a Cli,
    ui: &'a Ui,
    mode: Mode,
    program: PathBuf,
    hardening: Hardening,
    own_pid: i32,
    /// The running COMMAND (also its process group id).
    child: Pid,
    /// The set the running COMMAND was given; empty without `--watch`.
    current: Vec<ResolvedSecret>,
    /// `--reload-signal`: the running COMMAND's writable memfds, by name.
    files: Vec<(String, OwnedFd)>,
    output: Option<MaskedOutput>,
    /// Every value delivered so far (what `--mask` masks).
    delivered: Vec<Secret>,
    take_terminal: bool,
    stopping: Option<Stopping>,
    /// A stop signal arrived during a restart: do not start the new COMMAND.
    shutdown: bool,
    warned: HashSet<String>,
    next_poll: Option<Instant>,
}

fn io_error(what: &str) -> impl Fn(std::io::Error) -> AppError + '_ {
    move |e| AppError::Other(format!("{what}: {e}"))
}

/// Resolves at `deadline`, or never.
async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The refresh in flight, or never.
async fn in_flight(refresh: &mut Option<Refresh>) -> (Watcher, Poll) {
    match refresh {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Whether stdin is our controlling terminal and we are its foreground.
fn terminal_is_ours() -> bool {
    // SAFETY: two system calls without memory arguments.
    std::io::stdin().is_terminal() && unsafe { libc::tcgetpgrp(0) == libc::getpgrp() }
}

impl Supervisor<'_> {
    async fn main(&mut self, signals: Signals, mut watcher: Watcher) -> Result<u8, AppError> {
        self.ui
            .note(&format!("resolving from {}", watcher.base_url()));
        let resolved = tokio::select! {
            r = watcher.resolve() => r?,
            sig = signals.until_fatal(self.own_pid) => {
                let sig = sig.map_err(io_error("reading signals"))?;
                eprintln!(
                    "r4-exec: received {} before COMMAND started; not starting it",
                    signals::name(sig)
                );
                return Ok((128 + sig) as u8);
            }
        };
        for w in &resolved.warnings {
            self.warned.insert(w.clone());
            self.ui.warn(w);
        }
        for n in &resolved.notes {
            self.ui.note(n);
        }
        if self.mode.mask {
            self.remember(&resolved.secrets);
            let patterns = self.patterns()?;
            self.output =
                Some(MaskedOutput::start(patterns).map_err(io_error("cannot set up --mask"))?);
        }
        let prepared = self.prepare(resolved.secrets)?;
        self.take_terminal = terminal_is_ours();
        self.launch(prepared)?;
        // Without --watch no request follows: the client (and the API key
        // in it), the agent key and the configuration go now.
        let watcher = self.mode.interval.is_some().then_some(watcher);
        self.event_loop(&signals, watcher).await
    }

    async fn event_loop(
        &mut self,
        signals: &Signals,
        watcher: Option<Watcher>,
    ) -> Result<u8, AppError> {
        let mut idle = watcher;
        let mut refresh: Option<Refresh> = None;
        loop {
            let poll_at = self
                .next_poll
                .filter(|_| refresh.is_none() && self.stopping.is_none() && idle.is_some());
            let kill_at = self
                .stopping
                .as_ref()
                .filter(|s| !s.killed)
                .map(|s| s.deadline);
            tokio::select! {
                got = signals.recv() => {
                    for s in got.map_err(io_error("reading signals"))? {
                        if let Some(code) = self.on_signal(s)? {
                            return Ok(self.finish(code, signals).await);
                        }
                    }
                }
                (w, poll) = in_flight(&mut refresh) => {
                    refresh = None;
                    idle = Some(w);
                    self.schedule_poll();
                    self.on_poll(poll)?;
                }
                () = at(kill_at) => self.kill_now(),
                () = at(poll_at) => {
                    if let Some(mut w) = idle.take() {
                        refresh = Some(Box::pin(async move {
                            let poll = w.poll().await;
                            (w, poll)
                        }));
                    }
                }
            }
        }
    }

    fn schedule_poll(&mut self) {
        self.next_poll = self
            .mode
            .interval
            .map(|i| Instant::now() + watch::jittered(i));
    }

    /// Where forwarded signals go: COMMAND, or its process group.
    fn target(&self) -> i32 {
        if self.mode.group {
            -self.child.as_raw()
        } else {
            self.child.as_raw()
        }
    }

    /// Handles one signal; returns COMMAND's exit code once r4-exec should
    /// exit.
    fn on_signal(&mut self, s: Received) -> Result<Option<u8>, AppError> {
        if s.signo == libc::SIGCHLD {
            let Some(code) = child::reap(self.child, self.mode.reap) else {
                return Ok(None);
            };
            if let Some(stopping) = self.stopping.take() {
                if !self.shutdown {
                    self.launch(stopping.next)?;
                    eprintln!(
                        "r4-exec: restarted COMMAND (pid {}) with the new secrets",
                        self.child
                    );
                    return Ok(None);
                }
            }
            return Ok(Some(code));
        }
        if s.pid == self.own_pid {
            return Ok(None);
        }
        if self.stopping.is_some() && signals::asks_to_stop(s.signo) {
            self.shutdown = true;
        }
        let _ = child::send(self.target(), s.signo);
        Ok(None)
    }

    fn on_poll(&mut self, poll: Poll) -> Result<(), AppError> {
        match poll {
            Poll::Unchanged => self.ui.note("refresh: no change since the last one"),
            Poll::Failed(msg) => {
                eprintln!("r4-exec: refresh failed, COMMAND keeps running unchanged: {msg}")
            }
            Poll::Resolved(resolved) => {
                for w in &resolved.warnings {
                    if self.warned.insert(w.clone()) {
                        self.ui.warn(w);
                    }
                }
                let reload = self.mode.reload.is_some();
                match watch::diff(&self.current, &resolved.secrets, reload) {
                    Change::None => self.ui.note("refresh: every value is unchanged"),
                    Change::Reload(names) => self.reload(resolved.secrets, &names)?,
                    Change::Restart(names) => self.restart(resolved.secrets, &names)?,
                }
            }
        }
        Ok(())
    }

    /// Adds values to the set `--mask` masks.
    fn remember(&mut self, secrets: &[ResolvedSecret]) {
        for s in secrets {
            if !self.delivered.contains(&s.value) {
                self.delivered.push(s.value.clone());
            }
        }
    }

    fn patterns(&self) -> Result<Patterns, AppError> {
        Patterns::new(self.delivered.iter().map(|v| v.expose()))
            .map_err(|e| AppError::Other(e.to_string()))
    }

    /// Masks the new values before COMMAND can see them.
    fn mask_new(&mut self, secrets: &[ResolvedSecret]) -> Result<(), AppError> {
        if self.output.is_some() {
            self.remember(secrets);
            let patterns = self.patterns()?;
            if let Some(out) = &self.output {
                out.update(patterns);
            }
        }
        Ok(())
    }

    /// Whether the values COMMAND was given are kept once it runs: only
    /// `--watch` needs them, to compare a refresh with. Otherwise the only
    /// copies are the plan's, wiped as soon as COMMAND is forked.
    fn keeps_values(&self) -> bool {
        self.mode.interval.is_some()
    }

    fn prepare(&self, secrets: Vec<ResolvedSecret>) -> Result<Prepared, AppError> {
        let (copies, secrets) = if self.keeps_values() {
            (secrets.iter().map(watch::copy).collect(), secrets)
        } else {
            (secrets, Vec::new())
        };
        let memfd = if self.mode.reload.is_some() {
            reload::writable_memfd
        } else {
            inject::sealed_memfd
        };
        let plan = run::plan_with(self.cli, self.ui, self.program.clone(), copies, memfd)?;
        Ok(Prepared { plan, secrets })
    }

    fn launch(&mut self, p: Prepared) -> Result<(), AppError> {
        let opts = SpawnOptions {
            stdio: self.output.as_ref().and_then(|o| o.child_fds()),
            take_terminal: self.take_terminal,
            hardening: (!self.cli.exec.no_core_for_child).then_some(self.hardening),
        };
        self.ui
            .note(&format!("starting {}", self.program.display()));
        let (pid, fds) = child::spawn(p.plan, &opts)?;
        self.child = pid;
        self.files = if self.mode.reload.is_some() {
            p.secrets
                .iter()
                .filter(|s| s.delivery == Delivery::File)
                .map(|s| s.name.clone())
                .zip(fds)
                .collect()
        } else {
            Vec::new()
        };
        self.current = p.secrets;
        self.schedule_poll();
        Ok(())
    }

    fn reload(&mut self, new: Vec<ResolvedSecret>, names: &[String]) -> Result<(), AppError> {
        self.mask_new(&new)?;
        for name in names {
            let value = new.iter().find(|s| &s.name == name).map(|s| &s.value);
            let fd = self.files.iter().find(|(n, _)| n == name).map(|(_, fd)| fd);
            let outcome = match (fd, value) {
                (Some(fd), Some(value)) => reload::rewrite(fd, value).map_err(|e| e.to_string()),
                _ => Err("no such file".into()),
            };
            if let Err(e) = outcome {
                eprintln!("r4-exec: cannot rewrite {name} in place ({e}); restarting COMMAND");
                return self.restart(new, names);
            }
        }
        self.current = new;
        let sig = self.mode.reload.unwrap_or(Signal::SIGHUP);
        let _ = child::send(self.target(), sig as i32);
        eprintln!(
            "r4-exec: {} changed; rewrote the file(s) in place and sent {sig} to COMMAND",
            names.join(", ")
        );
        Ok(())
    }

    fn restart(&mut self, new: Vec<ResolvedSecret>, names: &[String]) -> Result<(), AppError> {
        self.mask_new(&new)?;
        let prepared = match self.prepare(new) {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "r4-exec: refresh failed, COMMAND keeps running unchanged: {}",
                    e.lines().join("; ")
                );
                return Ok(());
            }
        };
        eprintln!(
            "r4-exec: {} changed; restarting COMMAND ({}, SIGKILL after {:?})",
            names.join(", "),
            self.mode.stop,
            self.mode.grace
        );
        let _ = child::send(self.target(), self.mode.stop as i32);
        self.stopping = Some(Stopping {
            deadline: Instant::now() + self.mode.grace,
            killed: false,
            next: prepared,
        });
        Ok(())
    }

    fn kill_now(&mut self) {
        if let Some(s) = &mut self.stopping {
            s.killed = true;
        }
        eprintln!(
            "r4-exec: COMMAND did not stop within {:?}; sending SIGKILL",
            self.mode.grace
        );
        let _ = child::send(self.target(), libc::SIGKILL);
    }

    /// COMMAND exited with `code`: wind down, return the code to exit with.
    async fn finish(&mut self, code: u8, signals: &Signals) -> u8 {
        if self.mode.reap {
            self.wind_down_group(signals).await;
        }
        if let Some(out) = &mut self.output {
            out.close_and_drain(self.mode.grace);
        }
        if self.take_terminal {
            // SAFETY: two system calls without memory arguments; SIGTTOU is
            // blocked, so taking the terminal back cannot stop r4-exec.
            unsafe {
                libc::tcsetpgrp(0, libc::getpgrp());
            }
        }
        code
    }

    /// `--reap`: the stop signal to what is left of COMMAND's process group,
    /// SIGKILL after the grace period, reaping all along.
    async fn wind_down_group(&mut self, signals: &Signals) {
        let pg = self.child;
        child::reap(pg, true);
        if child::group_alive(pg) {
            self.ui.note(&format!(
                "COMMAND exited; sending {} to the rest of its process group",
                self.mode.stop
            ));
            let _ = child::send(-pg.as_raw(), self.mode.stop as i32);
            let deadline = Instant::now() + self.mode.grace;
            while child::group_alive(pg) {
                if Instant::now() >= deadline {
                    eprintln!(
                        "r4-exec: processes of COMMAND's group still running after {:?}; sending SIGKILL",
                        self.mode.grace
                    );
                    let _ = child::send(-pg.as_raw(), libc::SIGKILL);
                    break;
                }
                tokio::select! {
                    got = signals.recv() => {
                        for s in got.unwrap_or_default() {
                            if s.signo != libc::SIGCHLD && s.pid != self.own_pid {
                                let _ = child::send(-pg.as_raw(), s.signo);
                            }
                        }
                    }
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                child::reap(pg, true);
            }
            let until = Instant::now() + Duration::from_secs(1);
            while child::group_alive(pg) && Instant::now() < until {
                child::reap(pg, true);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        child::reap(pg, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_with_fractions() {
        assert_eq!(parse_secs("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_secs("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_secs("0"), Ok(Duration::ZERO));
        for bad in ["", "-1", "x", "NaN", "inf", "1e12"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }
}
