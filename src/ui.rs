//! The one place that writes r4-exec's own output: lines on stderr, each
//! prefixed `r4-exec: ` so they stand apart from COMMAND's output, and the
//! subcommands' reports on stdout. Names, ids, sizes and paths only: no
//! value, key or API key is ever passed here.
//!
//! Much of what is shown came from a server or a vault (error messages,
//! vault, item and field names), so every byte goes through [`escape`]: a
//! control character (C0, DEL, C1) or a bidirectional override is written
//! as `\x1b`, `\u{9b}`, … and never reaches the terminal as itself, where
//! it could move the cursor and rewrite a line to read "all secrets
//! verified".

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use crate::client::Progress;

/// The prefix of every line r4-exec writes on stderr.
pub const PREFIX: &str = "r4-exec: ";

/// Whether `c` must not reach a terminal as itself.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// How an escaped character is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `\n` kept (multi-line reports), every other one escaped.
    Lines,
    /// Every one escaped: a single line.
    Line,
    /// `\u00XX` / `\uXXXX`, valid inside a JSON string; `\n` kept.
    Json,
}

fn escape_as(s: &str, style: Style) -> Cow<'_, str> {
    // Pretty JSON's own newlines are outside strings (serde_json escapes
    // the ones inside).
    let keep = |c: char| style != Style::Line && c == '\n';
    if !s.chars().any(|c| unsafe_char(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) || keep(c) {
            out.push(c);
        } else if style == Style::Json {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// `s` on one line with every control character and bidirectional
/// override escaped (module docs): the one function all output goes
/// through.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_as(s, Style::Line)
}

/// Writes one line, prefixed, escaped.
pub fn line(msg: &str) {
    eprintln!("{PREFIX}{}", escape(msg));
}

/// Writes a report on stdout as it is, but escaped line by line (newlines
/// kept).
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(escape_as(text, Style::Lines).as_bytes());
}

/// [`out`] for a line.
pub fn outln(text: &str) {
    out(&format!("{text}\n"));
}

/// Writes JSON on stdout, with the characters JSON may carry raw but a
/// terminal must not see (DEL, C1, bidirectional overrides) as `\uXXXX`
/// (serde_json escapes the C0 ones already).
pub fn out_json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).expect("JSON of plain data");
    outln(&escape_as(&text, Style::Json));
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

    /// The sink handed to the client for `-v`, or `None` (escaped by
    /// [`line`] like everything else).
    pub fn progress(&self) -> Option<Progress> {
        (self.verbose > 0).then(|| {
            let p: Progress = Arc::new(|m: &str| line(m));
            p
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 7 of the review: a server's error message with escape
    /// sequences rewrote the line ("\r\x1b[2K all secrets verified").
    #[test]
    fn control_characters_never_reach_the_terminal() {
        let hostile = "denied\r\x1b[2Kall secrets verified\u{9b}31m\u{7f}\u{202e}txt.exe\ttab";
        let shown = escape(hostile);
        assert_eq!(
            shown,
            "denied\\x0d\\x1b[2Kall secrets verified\\u{9b}31m\\x7f\\u{202e}txt.exe\\x09tab"
        );
        assert!(!shown.chars().any(unsafe_char));
        assert_eq!(escape("plain ünï ✓"), "plain ünï ✓");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb"), "a\\x0ab");
    }

    #[test]
    fn reports_keep_their_lines_and_json_stays_json() {
        assert_eq!(escape_as("a\x1b\nb\n", Style::Lines), "a\\x1b\nb\n");
        let v = serde_json::json!({"name": "x\u{1b}y\u{9b}z\u{202e}"});
        let text = serde_json::to_string(&v).unwrap();
        let escaped = escape_as(&text, Style::Json);
        assert!(!escaped.chars().any(unsafe_char), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, v);
    }
}
