//! `--mask`: COMMAND's stdout and stderr are pipes into r4-exec; one thread
//! per stream reads whatever arrives, masks it ([`crate::mask::Masker`]) and
//! writes it at once to r4-exec's own stdout or stderr. A stream that is a
//! terminal goes through a pseudo-terminal instead ([`super::terminal`]):
//! COMMAND still sees a terminal, and one thread masks what the terminal
//! gets; another copies keys from r4-exec's stdin to it.
//!
//! The pipes live as long as r4-exec: a restarted COMMAND writes into the
//! same ones. The patterns are those of every value delivered so far (old
//! ones included) and are replaced before a new value reaches COMMAND. If
//! r4-exec's own output is closed, the thread stops reading and COMMAND
//! gets `EPIPE` (or SIGPIPE) on its next write, as it would have without
//! r4-exec.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use zeroize::Zeroize;

use crate::mask::{Masker, Patterns};

use super::terminal::{self, RawMode};

/// The current patterns, shared with the threads.
struct Shared {
    generation: AtomicU64,
    patterns: Mutex<Arc<Patterns>>,
}

impl Shared {
    fn current(&self) -> Arc<Patterns> {
        match self.patterns.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The masking pipes and their threads.
pub(crate) struct MaskedOutput {
    shared: Arc<Shared>,
    /// What each COMMAND gets as stdout and stderr: a pipe's write end, or
    /// the pseudo-terminal's slave.
    write_ends: Option<(OwnedFd, OwnedFd)>,
    /// On a terminal: the pseudo-terminal's master (for its window size),
    /// whether COMMAND's stdin is the slave too, and the real terminal's
    /// raw mode.
    terminal: Option<Terminal>,
    done: Vec<mpsc::Receiver<()>>,
}

struct Terminal {
    master: OwnedFd,
    /// The real terminal (r4-exec's stdout, else its stderr).
    real: RawFd,
    stdin: bool,
    raw: RawMode,
}

impl MaskedOutput {
    /// Creates both pipes and starts both threads.
    pub(crate) fn start(patterns: Patterns) -> std::io::Result<MaskedOutput> {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            patterns: Mutex::new(Arc::new(patterns)),
        });
        let streams = [
            (
                "r4-mask-stdout",
                std::io::stdout().as_fd().try_clone_to_owned()?,
            ),
            (
                "r4-mask-stderr",
                std::io::stderr().as_fd().try_clone_to_owned()?,
            ),
        ];
        let ttys = [
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        ];
        let real = match ttys {
            [true, _] => Some(1),
            [false, true] => Some(2),
            [false, false] => None,
        };
        let pty = real.map(terminal::open).transpose()?;
        let mut ends = Vec::new();
        let mut done = Vec::new();
        for ((name, target), tty) in streams.into_iter().zip(ttys) {
            if let (true, Some(pty)) = (tty, &pty) {
                ends.push(pty.slave.try_clone()?);
                continue;
            }
            let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
            done.push(spawn_pump(name, read, target, &shared)?);
            ends.push(write);
        }
        let terminal = match (pty, real) {
            (Some(pty), Some(real)) => {
                let target = std::io::stdout().as_fd().try_clone_to_owned();
                let target = if real == 1 {
                    target?
                } else {
                    std::io::stderr().as_fd().try_clone_to_owned()?
                };
                done.push(spawn_pump(
                    "r4-mask-tty",
                    pty.master.try_clone()?,
                    target,
                    &shared,
                )?);
                let stdin = std::io::stdin().is_terminal();
                if stdin {
                    let keys = File::from(pty.master.try_clone()?);
                    std::thread::Builder::new()
                        .name("r4-mask-keys".into())
                        .spawn(move || keys_to(keys))?;
                }
                Some(Terminal {
                    master: pty.master,
                    real,
                    stdin,
                    raw: RawMode::enter(),
                })
            }
            _ => None,
        };
        let stderr = ends.pop().expect("two streams");
        let stdout = ends.pop().expect("two streams");
        Ok(MaskedOutput {
            shared,
            write_ends: Some((stdout, stderr)),
            terminal,
            done,
        })
    }

    /// On a terminal: the pseudo-terminal slave COMMAND gets as its
    /// controlling terminal, and whether it is its stdin too.
    pub(crate) fn session_tty(&self) -> Option<(RawFd, bool)> {
        let t = self.terminal.as_ref()?;
        let (stdout, stderr) = self.write_ends.as_ref()?;
        // The slave is whichever stream went to the terminal.
        let slave = if t.real == 1 { stdout } else { stderr };
        Some((slave.as_raw_fd(), t.stdin))
    }

    /// SIGWINCH: the real terminal's new size to COMMAND's pseudo-terminal
    /// (the kernel signals its foreground group). False without one.
    pub(crate) fn resize(&self) -> bool {
        let Some(t) = &self.terminal else {
            return false;
        };
        terminal::copy_size(t.real, t.master.as_raw_fd());
        true
    }

    /// The descriptors COMMAND gets as stdout and stderr.
    pub(crate) fn child_fds(&self) -> Option<(RawFd, RawFd)> {
        self.write_ends
            .as_ref()
            .map(|(o, e)| (o.as_raw_fd(), e.as_raw_fd()))
    }

    /// Masks `patterns` from now on (in bytes not written out yet, too).
    pub(crate) fn update(&self, patterns: Patterns) {
        let patterns = Arc::new(patterns);
        match self.shared.patterns.lock() {
            Ok(mut p) => *p = patterns,
            Err(poisoned) => *poisoned.into_inner() = patterns,
        }
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Closes r4-exec's write ends and waits, up to `wait`, until both
    /// streams have been read to their end (every writer is gone) and
    /// written out. Output of descendants that outlive COMMAND and keep the
    /// pipes open is cut at `wait`.
    pub(crate) fn close_and_drain(&mut self, wait: Duration) {
        self.write_ends = None;
        let deadline = Instant::now() + wait;
        for rx in &self.done {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = rx.recv_timeout(left);
        }
        if let Some(t) = &mut self.terminal {
            t.raw.restore();
        }
    }
}

/// Starts [`pump`] on a thread; its end of stream is signalled on the
/// receiver.
fn spawn_pump(
    name: &str,
    read: OwnedFd,
    target: OwnedFd,
    shared: &Arc<Shared>,
) -> std::io::Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || pump(read, File::from(target), &shared, tx))?;
    Ok(rx)
}

/// Copies r4-exec's stdin (the real terminal, raw) to the pseudo-terminal:
/// keys reach COMMAND's line discipline. Ends with stdin or the terminal.
fn keys_to(mut master: File) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if master.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    buf.zeroize();
}

/// One stream: read, mask, write, until end of file.
fn pump(read: OwnedFd, mut out: File, shared: &Shared, done: mpsc::Sender<()>) {
    let mut input = File::from(read);
    let mut generation = shared.generation.load(Ordering::SeqCst);
    let mut masker = Masker::new(shared.current());
    let mut buf = vec![0u8; 64 * 1024];
    let mut masked = Vec::with_capacity(buf.len());
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let now = shared.generation.load(Ordering::SeqCst);
        if now != generation {
            generation = now;
            masker.set_patterns(shared.current());
        }
        masked.clear();
        masker.feed(&buf[..n], &mut masked);
        if out.write_all(&masked).is_err() {
            // Our own output is gone: stop reading, so COMMAND sees EPIPE.
            buf.zeroize();
            masked.zeroize();
            return;
        }
    }
    masked.clear();
    masker.finish(&mut masked);
    let _ = out.write_all(&masked);
    buf.zeroize();
    masked.zeroize();
    let _ = done.send(());
}
