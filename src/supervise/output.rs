//! `--mask`: COMMAND's stdout and stderr are pipes into r4-exec; one thread
//! per stream reads whatever arrives, masks it ([`crate::mask::Masker`]) and
//! writes it at once to r4-exec's own stdout or stderr.
//!
//! The pipes live as long as r4-exec: a restarted COMMAND writes into the
//! same ones. The patterns are those of every value delivered so far (old
//! ones included) and are replaced before a new value reaches COMMAND. If
//! r4-exec's own output is closed, the thread stops reading and COMMAND
//! gets `EPIPE` (or SIGPIPE) on its next write, as it would have without
//! r4-exec.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use zeroize::Zeroize;

use crate::mask::{Masker, Patterns};

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
    /// Write ends handed to each COMMAND as its stdout and stderr.
    write_ends: Option<(OwnedFd, OwnedFd)>,
    done: Vec<mpsc::Receiver<()>>,
}

impl MaskedOutput {
    /// Creates both pipes and starts both threads.
    pub(crate) fn start(patterns: Patterns) -> std::io::Result<MaskedOutput> {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            patterns: Mutex::new(Arc::new(patterns)),
        });
        let targets = [
            (
                "r4-mask-stdout",
                std::io::stdout().as_fd().try_clone_to_owned()?,
            ),
            (
                "r4-mask-stderr",
                std::io::stderr().as_fd().try_clone_to_owned()?,
            ),
        ];
        let mut ends = Vec::new();
        let mut done = Vec::new();
        for (name, target) in targets {
            let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
            let (tx, rx) = mpsc::channel();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || pump(read, File::from(target), &shared, tx))?;
            ends.push(write);
            done.push(rx);
        }
        let stderr = ends.pop().expect("two pipes");
        let stdout = ends.pop().expect("two pipes");
        Ok(MaskedOutput {
            shared,
            write_ends: Some((stdout, stderr)),
            done,
        })
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
    }
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
