//! The one place that writes r4-exec's own lines on stderr, each prefixed
//! `r4-exec: ` so they stand apart from COMMAND's output. Names, ids,
//! sizes and paths only: no value, key or API key is ever passed here.

use std::sync::Arc;
use std::time::Instant;

use crate::client::Progress;

/// The prefix of every line r4-exec writes on stderr.
pub const PREFIX: &str = "r4-exec: ";

/// Writes one line, prefixed.
pub fn line(msg: &str) {
    eprintln!("{PREFIX}{msg}");
}

/// Progress, warnings and timings at a verbosity level.
#[derive(Clone, Debug)]
pub struct Ui {
    verbose: u8,
    start: Instant,
}

impl Ui {
    /// A UI at verbosity `verbose` (`-v` count).
    pub fn new(verbose: u8) -> Ui {
        Ui {
            verbose,
            start: Instant::now(),
        }
    }

    /// With `-vv`, how long after start-up `what` was done: where the
    /// start-up time goes (BENCHMARKS.md), on the user's own machine.
    pub fn timing(&self, what: &str) {
        if self.verbose > 1 {
            let ms = self.start.elapsed().as_secs_f64() * 1000.0;
            line(&format!("[{ms:7.2} ms] {what}"));
        }
    }

    /// Progress shown with `-v`.
    pub fn note(&self, msg: &str) {
        if self.verbose > 0 {
            line(msg);
        }
    }

    /// A warning, always shown.
    pub fn warn(&self, msg: &str) {
        line(&format!("warning: {msg}"));
    }

    /// An event worth telling whatever the verbosity (a restart, a failed
    /// refresh).
    pub fn tell(&self, msg: &str) {
        line(msg);
    }

    /// The sink handed to the client for `-v`, or `None`.
    pub fn progress(&self) -> Option<Progress> {
        (self.verbose > 0).then(|| {
            let p: Progress = Arc::new(|m: &str| line(m));
            p
        })
    }
}
