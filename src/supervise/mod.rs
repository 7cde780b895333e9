//! Supervisor mode: r4-exec stays the parent of COMMAND instead of becoming
//! it. Selected by `--watch`, `--mask`, `--reap` or `--signal-group`; exec
//! mode (the default) is unchanged.
//!
//! - **Start**: the same resolution and verification as exec mode; nothing
//!   starts unless every secret resolved. COMMAND is forked and exec'd with
//!   the same [`crate::deliver::exec::ExecPlan`] machinery (see [`child`]), in a
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
//!   and files. With `--on-change signal:SIG` (`--reload-signal SIG`), if only `[files]` values changed,
//!   each is swapped in whole (see [`crate::deliver::holder`]) and SIG is sent
//!   instead; a changed env value always restarts. With `--on-change
//!   exit[:CODE]` COMMAND is stopped the same way and r4-exec exits CODE
//!   (75), for the orchestrator to start anew. `--watch-splay` delays the
//!   first poll, and the first after a change, by a random time in its window.
//! - **Files**: `[files]` memfds are kept by a holder process
//!   ([`crate::deliver::holder`]), started with the first file secret; COMMAND gets
//!   `/proc/<holder>/fd/<n>`, which stays the same across restarts and
//!   reloads. If the holder dies, the paths are gone: COMMAND gets the stop
//!   signal and r4-exec exits 70. A refresh that fails (network,
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
//! `tests/e2e/memory.rs` checks this by scanning the supervisor's memory. The
//! process stays non-dumpable and without core dumps.

mod child;
mod daemons;
mod output;
mod signals;
mod terminal;
mod watch;

use std::collections::HashSet;
use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;
use std::time::Duration;

use nix::libc;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::config::Delivery;
use crate::contract::Secret;
use crate::deliver::exec::ExecPlan;
use crate::deliver::holder::Holder;
use crate::deliver::FileHome;
use crate::error::AppError;
use crate::invocation::{OnChange, Supervision};
use crate::launch::Launch;
use crate::mask::Patterns;
use crate::resolve::ResolvedSecret;
use crate::startup::Startup;
use crate::ui::Ui;

use child::SpawnOptions;
use output::MaskedOutput;
use signals::{Received, Signals};
use watch::{Change, Poll, Watcher};

/// How this supervisor behaves: the flags, with what being PID 1 implies.
#[derive(Debug, Clone)]
struct Policy {
    interval: Option<Duration>,
    splay: Duration,
    on_change: OnChange,
    stop: Signal,
    grace: Duration,
    group: bool,
    reap: bool,
    forking: bool,
    pid1: bool,
    mask: bool,
}

impl Policy {
    fn new(s: Supervision) -> Policy {
        let pid1 = std::process::id() == 1;
        Policy {
            interval: s.interval,
            splay: s.splay,
            on_change: s.on_change,
            stop: s.stop,
            grace: s.grace,
            group: s.group,
            reap: s.reap || pid1,
            forking: s.forking,
            pid1,
            mask: s.mask,
        }
    }
}

/// Runs COMMAND under supervision; returns its exit status. Called after
/// hardening, while r4-exec still has a single thread.
pub fn run(
    startup: &Startup,
    mut launch: Launch,
    supervision: Supervision,
) -> Result<u8, AppError> {
    let policy = Policy::new(supervision);
    // First, while there is one thread: every later thread inherits the mask.
    let blocked =
        signals::block_all().map_err(|e| AppError::system("cannot block signals")(e.into()))?;
    let sources = startup.sources()?;
    launch.adopt(sources.inherited, &sources.literals);
    launch.adopt_users(&sources.config)?;
    let config = sources.config;
    if policy.reap && !policy.pid1 {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| AppError::system("cannot become a child subreaper")(e.into()))?;
    }
    let pid1 = policy.pid1;
    let rt = startup.runtime()?;
    let ended = rt.block_on(async move {
        let watcher = Watcher::new(startup.session(config)?, startup.global.timeout);
        let signals = Signals::new(&blocked).map_err(AppError::system("cannot read signals"))?;
        let mut sup = Supervisor {
            ui: &startup.ui,
            policy,
            launch,
            own_pid: std::process::id() as i32,
            state: State::Starting,
            stop_asked: false,
            current: Vec::new(),
            holder: None,
            output: None,
            delivered: Vec::new(),
            take_terminal: false,
            warned: HashSet::new(),
            next_poll: None,
            killed_by: None,
            on_fallback: false,
        };
        let code = sup.main(signals, watcher).await?;
        Ok::<_, AppError>((code, sup.killed_by))
    });
    drop(rt);
    let (code, killed_by) = ended?;
    if let (Some(signo), false) = (killed_by, pid1) {
        signals::reraise(signo);
    }
    Ok(code)
}

/// A COMMAND ready to start: its plan and, with `--watch`, the set it was
/// built from (empty otherwise, see [`Supervisor::keeps_values`]).
struct Prepared {
    plan: ExecPlan,
    secrets: Vec<ResolvedSecret>,
}

/// Where COMMAND is in its life (watchexec's `CommandState`): one value
/// says it, so no combination of fields can contradict another.
enum State {
    /// Before the first start.
    Starting,
    /// COMMAND runs; nothing asked it to stop.
    Running(Pid),
    /// A restart: COMMAND got the stop signal, and `next` starts once it
    /// has exited.
    Replacing {
        pid: Pid,
        stop: Deadline,
        next: Box<Prepared>,
    },
    /// COMMAND got the stop signal, and r4-exec exits once it has: a stop
    /// signal arrived during a restart, or the holder of its files died
    /// (`code`: exit with it rather than with COMMAND's status).
    Stopping {
        pid: Pid,
        stop: Deadline,
        code: Option<u8>,
    },
    /// `--forking`: COMMAND exited 0 and left processes running (its
    /// daemons, now r4-exec's children); r4-exec exits once the last one
    /// has, with its status (or `code`). `stop`: they got the stop signal.
    Daemons {
        stop: Option<Deadline>,
        code: Option<u8>,
        last: Option<child::Ended>,
    },
}

/// When a COMMAND that got the stop signal gets SIGKILL.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    killed: bool,
}

impl State {
    /// COMMAND's pid (also its process group id), once started.
    fn pid(&self) -> Option<Pid> {
        match self {
            State::Starting | State::Daemons { .. } => None,
            State::Running(pid) | State::Replacing { pid, .. } | State::Stopping { pid, .. } => {
                Some(*pid)
            }
        }
    }

    /// The pending SIGKILL, while COMMAND is being stopped.
    fn stop(&mut self) -> Option<&mut Deadline> {
        match self {
            State::Replacing { stop, .. } | State::Stopping { stop, .. } => Some(stop),
            State::Daemons { stop, .. } => stop.as_mut(),
            State::Starting | State::Running(_) => None,
        }
    }
}

type Refresh = Pin<Box<dyn Future<Output = (Watcher, Poll)>>>;

struct Supervisor<'a> {
    ui: &'a Ui,
    policy: Policy,
    launch: Launch,
    own_pid: i32,
    /// COMMAND's state.
    state: State,
    /// The running COMMAND was asked to stop (a stop signal forwarded, or
    /// one r4-exec sent): once it has exited, the rest of its process group
    /// is ended too. A COMMAND that exits by itself leaves its group alone,
    /// as in exec mode.
    stop_asked: bool,
    /// The set the running COMMAND was given; empty without `--watch`.
    current: Vec<ResolvedSecret>,
    /// Keeps the `[files]` memfds (started with the first one).
    holder: Option<Holder>,
    output: Option<MaskedOutput>,
    /// Every value delivered so far (what `--mask` masks).
    delivered: Vec<Secret>,
    take_terminal: bool,
    warned: HashSet<String>,
    next_poll: Option<Instant>,
    /// The signal that killed COMMAND: r4-exec dies of it too (outside PID
    /// 1), so its parent sees what it would have seen in exec mode.
    killed_by: Option<i32>,
    /// COMMAND's secrets came from the fallback copy, and no poll has
    /// succeeded since.
    on_fallback: bool,
}

fn io_error(what: &'static str) -> impl Fn(std::io::Error) -> AppError {
    AppError::system(what)
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
        let resolved = tokio::select! {
            r = watcher.resolve() => r?,
            sig = signals.until_fatal(self.own_pid) => {
                let sig = sig.map_err(io_error("reading signals"))?;
                self.ui.tell(&format!(
                    "received {} before COMMAND started; not starting it",
                    signals::name(sig)
                ));
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
        self.on_fallback = resolved.fallback_age.is_some();
        if self.policy.mask {
            self.remember(&resolved.secrets);
            self.remember(&resolved.parts);
            let patterns = self.patterns()?;
            self.output =
                Some(MaskedOutput::start(patterns).map_err(io_error("cannot set up --mask"))?);
        }
        let prepared = self.prepare(resolved.secrets)?;
        // With --mask on a terminal COMMAND has a terminal of its own.
        let own_tty = self.output.as_ref().and_then(MaskedOutput::session_tty);
        self.take_terminal = own_tty.is_none() && terminal_is_ours();
        self.launch(prepared)?;
        // `[fallback] prefer` started COMMAND from the copy without asking
        // R4: ask now, in the background, so that the copy is refreshed
        // (and, with --watch, COMMAND gets what changed).
        let refresh_now = self.on_fallback && watcher.prefers_copy();
        if refresh_now {
            self.next_poll = Some(Instant::now() + watch::splay(self.policy.splay));
            self.ui
                .note("[fallback] prefer: asking R4 in the background to refresh the copy");
        }
        // Without --watch no request follows (but that one): the client
        // (and the API key in it), the agent key and the configuration go
        // now (or after it).
        let watcher = (self.policy.interval.is_some() || refresh_now).then_some(watcher);
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
            let poll_at = self.next_poll.filter(|_| {
                refresh.is_none() && matches!(self.state, State::Running(_)) && idle.is_some()
            });
            let kill_at = self.state.stop().filter(|d| !d.killed).map(|d| d.at);
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
                    self.schedule_poll(false);
                    if self.policy.interval.is_none() {
                        // The one refresh of `[fallback] prefer`: the
                        // credentials go with the watcher.
                        drop(w);
                        self.after_refresh(poll);
                        continue;
                    }
                    idle = Some(w);
                    self.on_poll(poll)?;
                }
                () = at(kill_at) => self.kill_now(),
                () = at(poll_at) => {
                    if let Some(mut w) = idle.take() {
                        let once = self.policy.interval.is_none();
                        refresh = Some(Box::pin(async move {
                            let poll = if once { w.refresh_once().await } else { w.poll().await };
                            (w, poll)
                        }));
                    }
                }
            }
        }
    }

    /// The next poll: the interval ±10%, and with `splayed` (the first
    /// poll, the first after a change) a further `--watch-splay` delay.
    fn schedule_poll(&mut self, splayed: bool) {
        let splay = if splayed {
            watch::splay(self.policy.splay)
        } else {
            Duration::ZERO
        };
        self.next_poll = self
            .policy
            .interval
            .map(|i| Instant::now() + watch::jittered(i) + splay);
    }

    /// Where forwarded signals go: COMMAND, or its process group.
    fn target(&self) -> i32 {
        let pid = self.state.pid().map_or(0, Pid::as_raw);
        if self.policy.group {
            -pid
        } else {
            pid
        }
    }

    /// Handles one signal; returns COMMAND's exit code once r4-exec should
    /// exit.
    fn on_signal(&mut self, s: Received) -> Result<Option<u8>, AppError> {
        if s.signo == libc::SIGCHLD {
            if self.holder.as_ref().is_some_and(Holder::exited) {
                self.holder_died();
            }
            if matches!(self.state, State::Daemons { .. }) {
                return Ok(self.daemon_exited());
            }
            let Some(pid) = self.state.pid() else {
                return Ok(None);
            };
            let Some(ended) = child::reap(pid, self.policy.reap) else {
                return Ok(None);
            };
            match std::mem::replace(&mut self.state, State::Running(pid)) {
                State::Replacing { next, .. } => {
                    self.launch(*next)?;
                    self.ui.tell(&format!(
                        "restarted COMMAND (pid {}) with the new secrets",
                        self.state.pid().map_or(0, Pid::as_raw)
                    ));
                    return Ok(None);
                }
                State::Stopping {
                    code: Some(code), ..
                } => return Ok(Some(code)),
                State::Running(_) if self.stays_for_daemons(ended) => return Ok(None),
                _ => {}
            }
            self.killed_by = ended.signal;
            return Ok(Some(ended.code));
        }
        if s.pid == self.own_pid {
            return Ok(None);
        }
        if s.signo == libc::SIGWINCH && self.output.as_ref().is_some_and(MaskedOutput::resize) {
            return Ok(None);
        }
        if let State::Daemons { stop, .. } = &mut self.state {
            if signals::asks_to_stop(s.signo) && stop.is_none() {
                self.stop_asked = true;
                *stop = Some(Deadline {
                    at: Instant::now() + self.policy.grace,
                    killed: false,
                });
            }
            daemons::send_all(self.holder_pid(), s.signo);
            return Ok(None);
        }
        if signals::asks_to_stop(s.signo) {
            self.stop_asked = true;
            self.cancel_restart();
        }
        let _ = child::send(self.target(), s.signo);
        Ok(None)
    }

    /// The one refresh of a start from the copy without `--watch`: a
    /// successful one has refreshed the copy; COMMAND keeps its values.
    fn after_refresh(&mut self, poll: Poll) {
        match poll {
            Poll::Resolved(_) | Poll::Unchanged => self.ui.tell(
                "[fallback] prefer: R4 answered and the copy is refreshed; COMMAND keeps the values it started with (--watch applies changes)",
            ),
            Poll::Failed(msg) => self.ui.tell(&format!(
                "[fallback] prefer: the background refresh failed, COMMAND keeps running unchanged: {msg}"
            )),
        }
    }

    fn on_poll(&mut self, poll: Poll) -> Result<(), AppError> {
        match poll {
            Poll::Unchanged => self.ui.note("refresh: no change since the last one"),
            Poll::Failed(msg) => self.ui.tell(&format!(
                "refresh failed, COMMAND keeps running unchanged: {msg}"
            )),
            Poll::Resolved(resolved) => {
                for w in &resolved.warnings {
                    if self.warned.insert(w.clone()) {
                        self.ui.warn(w);
                    }
                }
                if std::mem::take(&mut self.on_fallback) {
                    self.ui
                        .tell("refresh: R4 answered again; live answers replace the fallback copy");
                }
                let reload = matches!(self.policy.on_change, OnChange::Signal(_));
                let change = watch::diff(&self.current, &resolved.secrets, reload);
                if change != Change::None {
                    // What templates and bundles hold is masked on its own too.
                    self.mask_new(&resolved.parts)?;
                }
                match change {
                    Change::None => self.ui.note("refresh: every value is unchanged"),
                    Change::Reload(names) | Change::Restart(names)
                        if matches!(self.policy.on_change, OnChange::Exit(_)) =>
                    {
                        self.stop_for_change(&names)
                    }
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
        Ok(Patterns::new(self.delivered.iter().map(|v| v.expose()))?)
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
        self.policy.interval.is_some()
    }

    fn prepare(&mut self, secrets: Vec<ResolvedSecret>) -> Result<Prepared, AppError> {
        let files = secrets.iter().any(|s| s.delivery == Delivery::File);
        if files && self.holder.is_none() {
            let holder = Holder::spawn(self.launch.user.as_ref())?;
            self.ui.note(&format!(
                "file secrets are kept by pid {} (r4-exec-holder)",
                holder.pid()
            ));
            self.holder = Some(holder);
        }
        let home = match &mut self.holder {
            Some(holder) => FileHome::Holder(holder),
            None => FileHome::Command,
        };
        let plan = self.launch.prepare(&secrets, home, self.ui)?;
        let secrets = if self.keeps_values() {
            secrets
        } else {
            Vec::new()
        };
        Ok(Prepared { plan, secrets })
    }

    /// The holder of COMMAND's files exited: their paths no longer open.
    /// COMMAND gets the stop signal (SIGKILL after the grace period) and
    /// r4-exec then exits 70 rather than leave it running without them.
    fn holder_died(&mut self) {
        let holder = self.holder.take().map(|h| h.pid());
        self.ui.tell(&format!(
            "the holder of COMMAND's file secrets (pid {}) exited, so their paths no longer open; stopping COMMAND",
            holder.map_or(0, Pid::as_raw)
        ));
        if let State::Daemons { stop, code, .. } = &mut self.state {
            *code = Some(crate::exit::SOFTWARE);
            if stop.is_none() {
                *stop = Some(Deadline {
                    at: Instant::now() + self.policy.grace,
                    killed: false,
                });
                daemons::send_all(None, self.policy.stop as i32);
            }
            return;
        }
        let Some(pid) = self.state.pid() else {
            return;
        };
        let fresh = self.send_stop();
        let stop = self.state.stop().map_or(fresh, |pending| *pending);
        self.state = State::Stopping {
            pid,
            stop,
            code: Some(crate::exit::SOFTWARE),
        };
    }

    /// `--on-change exit`: a value changed. COMMAND gets the stop signal
    /// (SIGKILL after the grace period) and r4-exec exits with the code once
    /// it has ended, for the orchestrator to start a new one.
    fn stop_for_change(&mut self, names: &[String]) {
        let (OnChange::Exit(code), Some(pid)) = (self.policy.on_change, self.state.pid()) else {
            return;
        };
        self.ui.tell(&format!(
            "{} changed; stopping COMMAND ({}, SIGKILL after {:?}) and exiting {code} (--on-change exit)",
            names.join(", "),
            self.policy.stop,
            self.policy.grace
        ));
        let stop = self.send_stop();
        self.state = State::Stopping {
            pid,
            stop,
            code: Some(code),
        };
    }

    /// Sends the stop signal to COMMAND's whole process group (what
    /// r4-exec stops, it stops with every descendant that stayed in the
    /// group); SIGKILL follows at the deadline returned.
    fn send_stop(&mut self) -> Deadline {
        self.stop_asked = true;
        let _ = child::send(self.group(), self.policy.stop as i32);
        Deadline {
            at: Instant::now() + self.policy.grace,
            killed: false,
        }
    }

    /// A stop signal during a restart: COMMAND is on its way out already,
    /// so r4-exec exits with it instead of starting the next one.
    fn cancel_restart(&mut self) {
        if let State::Replacing { pid, stop, .. } = self.state {
            self.state = State::Stopping {
                pid,
                stop,
                code: None,
            };
        }
    }

    fn launch(&mut self, p: Prepared) -> Result<(), AppError> {
        let opts = SpawnOptions {
            stdio: self.output.as_ref().and_then(|o| o.child_fds()),
            take_terminal: self.take_terminal,
            session_tty: self.output.as_ref().and_then(MaskedOutput::session_tty),
        };
        self.ui
            .note(&format!("starting {}", self.launch.program.display()));
        let pid = child::spawn(p.plan, &opts)?;
        self.state = State::Running(pid);
        // A new COMMAND has not been asked to stop: the restart's stop was
        // its predecessor's.
        self.stop_asked = false;
        self.current = p.secrets;
        self.schedule_poll(true);
        Ok(())
    }

    fn reload(&mut self, new: Vec<ResolvedSecret>, names: &[String]) -> Result<(), AppError> {
        self.mask_new(&new)?;
        for name in names {
            if let Err(e) = self.swap(&new, name) {
                self.ui.tell(&format!(
                    "cannot swap in the new {name} ({e}); restarting COMMAND"
                ));
                return self.restart(new, names);
            }
        }
        self.current = new;
        let OnChange::Signal(sig) = self.policy.on_change else {
            unreachable!("a reload follows only --on-change signal:SIG")
        };
        self.schedule_poll(true);
        let _ = child::send(self.target(), sig as i32);
        self.ui.tell(&format!(
            "{} changed; swapped in the new file(s) and sent {sig} to COMMAND",
            names.join(", ")
        ));
        Ok(())
    }

    /// Replaces the file of `name` with a new sealed memfd holding its value
    /// in `new`: the holder `dup2`s it over the same descriptor, so the path
    /// stays the same and opens the old file or the new one, never a mix.
    fn swap(&mut self, new: &[ResolvedSecret], name: &str) -> Result<(), AppError> {
        let gone =
            |why: &str| AppError::system("swapping in a file secret")(std::io::Error::other(why));
        let secret = new.iter().find(|s| s.name == name);
        let secret = secret.ok_or_else(|| gone("no new value"))?;
        let holder = self
            .holder
            .as_mut()
            .ok_or_else(|| gone("its holder is gone"))?;
        // A template naming other files' paths: they keep theirs on a swap.
        let value = crate::launch::with_paths(secret, |n| holder.path(n))?;
        FileHome::Holder(holder)
            .put(name, &value, self.launch.owner_of(name))
            .map(drop)
            .map_err(|e| AppError::file(name, e))
    }

    fn restart(&mut self, new: Vec<ResolvedSecret>, names: &[String]) -> Result<(), AppError> {
        self.mask_new(&new)?;
        let prepared = match self.prepare(new) {
            Ok(p) => p,
            Err(e) => {
                self.ui.tell(&format!(
                    "refresh failed, COMMAND keeps running unchanged: {}",
                    e.lines().join("; ")
                ));
                return Ok(());
            }
        };
        self.ui.tell(&format!(
            "{} changed; restarting COMMAND ({}, SIGKILL after {:?})",
            names.join(", "),
            self.policy.stop,
            self.policy.grace
        ));
        let Some(pid) = self.state.pid() else {
            return Ok(());
        };
        let stop = self.send_stop();
        self.state = State::Replacing {
            pid,
            stop,
            next: Box::new(prepared),
        };
        Ok(())
    }

    fn kill_now(&mut self) {
        if let Some(stop) = self.state.stop() {
            stop.killed = true;
        }
        if matches!(self.state, State::Daemons { .. }) {
            self.ui.tell(&format!(
                "COMMAND's daemons did not stop within {:?}; sending SIGKILL",
                self.policy.grace
            ));
            daemons::send_all(self.holder_pid(), libc::SIGKILL);
            return;
        }
        self.ui.tell(&format!(
            "COMMAND did not stop within {:?}; sending SIGKILL",
            self.policy.grace
        ));
        let _ = child::send(self.group(), libc::SIGKILL);
    }

    /// The holder's pid, which no signal for COMMAND's daemons may reach.
    fn holder_pid(&self) -> Option<i32> {
        self.holder.as_ref().map(|h| h.pid().as_raw())
    }

    /// `--forking`: COMMAND (the launcher) ended. If it succeeded and left
    /// processes running, r4-exec stays their reaper (and keeps the holder
    /// of their files) instead of exiting.
    fn stays_for_daemons(&mut self, ended: child::Ended) -> bool {
        if !self.policy.forking || ended.code != 0 || self.stop_asked {
            return false;
        }
        let running = daemons::children(self.holder_pid()).len();
        if running == 0 {
            return false;
        }
        self.ui.note(&format!(
            "COMMAND exited 0 and left {running} process(es) running (--forking): staying until the last one exits"
        ));
        self.state = State::Daemons {
            stop: None,
            code: None,
            last: None,
        };
        true
    }

    /// `--forking`, a child exited: collects every zombie; once no child but
    /// the holder is left, the code to exit with (the last one's status).
    fn daemon_exited(&mut self) -> Option<u8> {
        let holder = self.holder_pid();
        let State::Daemons { stop, code, last } = &mut self.state else {
            return None;
        };
        if let Some(ended) = daemons::reap(holder) {
            *last = Some(ended);
        }
        let left = daemons::children(holder);
        if !left.is_empty() {
            // After SIGKILL, what a killed daemon leaves behind goes too.
            if stop.is_some_and(|s| s.killed) {
                daemons::send_all(holder, libc::SIGKILL);
            }
            return None;
        }
        self.killed_by = last.and_then(|e| e.signal);
        Some(code.unwrap_or(last.map_or(0, |e| e.code)))
    }

    /// COMMAND's process group, as a `kill(2)` target.
    fn group(&self) -> i32 {
        -self.state.pid().map_or(0, Pid::as_raw)
    }

    /// COMMAND exited with `code`: wind down, return the code to exit with.
    async fn finish(&mut self, code: u8, signals: &Signals) -> u8 {
        if self.policy.reap || self.stop_asked {
            self.wind_down_group(signals).await;
        }
        if let Some(out) = &mut self.output {
            out.close_and_drain(self.policy.grace);
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

    /// With `--reap`, or after a stop: the stop signal to what is left of
    /// COMMAND's process group, SIGKILL after the grace period, reaping all
    /// along. So an outer supervisor that stops r4-exec (honcho's `killpg`,
    /// supervisord's `stopasgroup`, systemd) stops COMMAND's children too,
    /// as it would in exec mode, although COMMAND leads a group of its own.
    async fn wind_down_group(&mut self, signals: &Signals) {
        let Some(pg) = self.state.pid() else {
            return;
        };
        child::reap(pg, true);
        if child::group_alive(pg) {
            self.ui.note(&format!(
                "COMMAND exited; sending {} to the rest of its process group",
                self.policy.stop
            ));
            let _ = child::send(-pg.as_raw(), self.policy.stop as i32);
            let deadline = Instant::now() + self.policy.grace;
            while child::group_alive(pg) {
                if Instant::now() >= deadline {
                    self.ui.tell(&format!(
                        "processes of COMMAND's group still running after {:?}; sending SIGKILL",
                        self.policy.grace
                    ));
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
