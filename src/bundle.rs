//! Bundles: a whole set of secrets in one value — usually one file — in a
//! stated format, for programs that read their configuration from a dotenv
//! or JSON file rather than from separate variables.
//!
//! - **dotenv**: one `KEY='value'` line per secret, in key order. Single
//!   quotes keep `$`, `#`, `"` and newlines literal; inside them `\` is
//!   written `\\` and `'` is written `\'`, the escapes python-dotenv decodes
//!   in single quotes. A value holding a carriage return (which a file read
//!   in text mode turns into a newline) is double-quoted instead, with
//!   `\\`, `\"` and `\r` escaped. A value that cannot round-trip is refused,
//!   naming its key: one with a NUL byte, one that is not UTF-8, and one
//!   holding `${`, which python-dotenv expands inside any quotes.
//!   Values without `'`, `\`, `\r` and `${` are plain single-quoted text,
//!   read literally by every common dotenv reader (python-dotenv, Node's
//!   dotenv, Docker Compose `env_file`, godotenv, Ruby dotenv) and by
//!   `set -a; . ./file` in a POSIX shell.
//! - **json**: one object `{"KEY": "value", …}` in key order; every UTF-8
//!   value round-trips through any JSON parser; a value that is not UTF-8
//!   is refused.
//!
//! Output is written into one buffer of its final size, so that no partial
//! copy of a value is left behind by a reallocation.

use serde::Deserialize;
use thiserror::Error;

use crate::contract::Secret;

/// The format of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `KEY='value'` lines.
    Dotenv,
    /// One JSON object.
    Json,
}

impl Format {
    /// The name used in `r4.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Dotenv => "dotenv",
            Format::Json => "json",
        }
    }
}

/// A value that cannot be written in the format. Names the key, never the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{key}: {reason}")]
pub struct BundleError {
    /// The key.
    pub key: String,
    /// Why.
    pub reason: &'static str,
}

/// `entries` (key, value) in `format`, in the order given.
pub fn render(format: Format, entries: &[(&str, &[u8])]) -> Result<Secret, BundleError> {
    let mut texts = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let refuse = |reason| BundleError {
            key: (*key).to_owned(),
            reason,
        };
        let text = std::str::from_utf8(value)
            .map_err(|_| refuse("not UTF-8 text, which a dotenv or JSON file cannot hold"))?;
        if format == Format::Dotenv {
            dotenv_check(text).map_err(refuse)?;
        }
        texts.push((*key, text));
    }
    Ok(match format {
        Format::Dotenv => dotenv(&texts),
        Format::Json => json(&texts),
    })
}

/// Why a value cannot round-trip through a dotenv file, if it cannot.
fn dotenv_check(value: &str) -> Result<(), &'static str> {
    if value.contains('\0') {
        return Err("holds a NUL byte, which a dotenv file cannot carry; use format = \"json\"");
    }
    if value.contains("${") {
        return Err(
            "holds \"${\", which python-dotenv expands in any quotes; use format = \"json\"",
        );
    }
    Ok(())
}

/// A dotenv value: its quote and the escaped form of each character.
fn dotenv_quote(value: &str) -> char {
    if value.contains('\r') {
        '"'
    } else {
        '\''
    }
}

fn dotenv_escape(quote: char, c: char) -> Option<&'static str> {
    match (quote, c) {
        (_, '\\') => Some("\\\\"),
        ('\'', '\'') => Some("\\'"),
        ('"', '"') => Some("\\\""),
        ('"', '\r') => Some("\\r"),
        _ => None,
    }
}

fn dotenv_len(key: &str, value: &str) -> usize {
    let quote = dotenv_quote(value);
    let body: usize = value
        .chars()
        .map(|c| dotenv_escape(quote, c).map_or(c.len_utf8(), str::len))
        .sum();
    key.len() + 1 + 2 + body + 1
}

fn dotenv(entries: &[(&str, &str)]) -> Secret {
    let size = entries.iter().map(|(k, v)| dotenv_len(k, v)).sum();
    let mut out = String::with_capacity(size);
    for (key, value) in entries {
        let quote = dotenv_quote(value);
        out.push_str(key);
        out.push('=');
        out.push(quote);
        for c in value.chars() {
            match dotenv_escape(quote, c) {
                Some(e) => out.push_str(e),
                None => out.push(c),
            }
        }
        out.push(quote);
        out.push('\n');
    }
    debug_assert_eq!(out.len(), size);
    Secret::new(out.into_bytes())
}

/// How JSON writes `c` inside a string, if not as itself: a short escape,
/// or `\u00XX` for another control character (no allocation either way).
enum JsonEscape {
    Short(&'static str),
    Control(u32),
}

fn json_escape(c: char) -> Option<JsonEscape> {
    match c {
        '"' => Some(JsonEscape::Short("\\\"")),
        '\\' => Some(JsonEscape::Short("\\\\")),
        '\n' => Some(JsonEscape::Short("\\n")),
        '\r' => Some(JsonEscape::Short("\\r")),
        '\t' => Some(JsonEscape::Short("\\t")),
        c if (c as u32) < 0x20 => Some(JsonEscape::Control(c as u32)),
        _ => None,
    }
}

fn json_string_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match json_escape(c) {
            Some(JsonEscape::Short(e)) => e.len(),
            Some(JsonEscape::Control(_)) => 6,
            None => c.len_utf8(),
        })
        .sum::<usize>()
}

fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match json_escape(c) {
            Some(JsonEscape::Short(e)) => out.push_str(e),
            Some(JsonEscape::Control(n)) => {
                out.push_str("\\u00");
                out.push(char::from(HEX[(n >> 4) as usize]));
                out.push(char::from(HEX[(n & 0xf) as usize]));
            }
            None => out.push(c),
        }
    }
    out.push('"');
}

fn json(entries: &[(&str, &str)]) -> Secret {
    // "{\n" + per entry "  " key ": " value (",")? "\n" + "}\n"
    let size = 2
        + entries
            .iter()
            .map(|(k, v)| 2 + json_string_len(k) + 2 + json_string_len(v) + 1)
            .sum::<usize>()
        + entries.len().saturating_sub(1)
        + 2;
    let mut out = String::with_capacity(size);
    out.push_str("{\n");
    for (i, (key, value)) in entries.iter().enumerate() {
        out.push_str("  ");
        push_json_string(&mut out, key);
        out.push_str(": ");
        push_json_string(&mut out, value);
        if i + 1 < entries.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("}\n");
    debug_assert_eq!(out.len(), size);
    Secret::new(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &[(&str, &str)] = &[
        ("A", "plain"),
        ("B", "it's \"quoted\" # not a comment"),
        ("C", "line one\nline two\n"),
        ("D", "pa$$word $HOME back\\slash \\' \\n"),
        ("E", "crlf\r\nand \"quotes\" and \\"),
        ("F", ""),
        ("G", "tab\tbell\u{7}é✓"),
    ];

    fn rendered(format: Format, entries: &[(&str, &str)]) -> String {
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        String::from_utf8(render(format, &entries).unwrap().expose().to_vec()).unwrap()
    }

    #[test]
    fn json_round_trips_every_value() {
        let text = rendered(Format::Json, NASTY);
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.len(), NASTY.len());
        for (k, v) in NASTY {
            assert_eq!(parsed[*k], *v, "{k}");
        }
        assert_eq!(rendered(Format::Json, &[]), "{\n}\n");
    }

    #[test]
    fn dotenv_quotes_and_escapes() {
        let text = rendered(Format::Dotenv, &NASTY[..4]);
        assert_eq!(
            text,
            "A='plain'\nB='it\\'s \"quoted\" # not a comment'\nC='line one\nline two\n'\nD='pa$$word $HOME back\\\\slash \\\\\\' \\\\n'\n"
        );
        assert_eq!(
            rendered(Format::Dotenv, &[("E", "a\r\n\"b\"\\")]),
            "E=\"a\\r\n\\\"b\\\"\\\\\"\n"
        );
    }

    #[test]
    fn dotenv_refuses_what_cannot_round_trip_naming_the_key() {
        for (value, why) in [
            (&b"a\0b"[..], "NUL"),
            (&b"${HOME}"[..], "${"),
            (&b"\xff"[..], "UTF-8"),
        ] {
            let e = render(Format::Dotenv, &[("K", value)]).unwrap_err();
            assert_eq!(e.key, "K");
            assert!(e.to_string().contains(why), "{e}");
        }
        assert!(render(Format::Json, &[("K", b"${HOME}")]).is_ok());
        assert!(render(Format::Json, &[("K", b"\xff")]).is_err());
    }
}
