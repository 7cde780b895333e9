//! Bundles: a whole set of secrets in one value — usually one file — in a
//! stated format, for programs that read their configuration from a dotenv
//! or JSON file rather than from separate variables.
//!
//! - **dotenv**: one `KEY=value` line per secret, in key order, written so
//!   that python-dotenv and Node's `dotenv` read back exactly the written
//!   keys and values (`tests/e2e` parses random bundles with both). The two
//!   disagree on escapes — python-dotenv decodes `\\` and `\'` in single
//!   quotes and `\\ \" \n …` in double quotes, Node's `dotenv` decodes
//!   nothing in single quotes and only `\n`/`\r` in double quotes — so
//!   each value takes the first form in which neither reader decodes
//!   anything it should not:
//!   1. `'value'` when it has no `'`, no carriage return, and no `\` that
//!      is doubled or last (a final `\` would escape the closing quote in
//!      python-dotenv and run the value on into the next line's);
//!   2. `"value"` when it has no `"` and no `\` (a carriage return is
//!      written `\r`, which both decode);
//!   3. `value` unquoted when it is one line with no `#`, does not start
//!      with a quote and has no white space at either end (a Windows path
//!      `C:\dir\` takes this form); one line for both readers, so no
//!      U+2028 or U+2029 either: they end a line in JavaScript, and Node's
//!      `dotenv` strips a pair of quotes around any line of a value;
//!
//!   any other value is refused, naming its key (never the value), and so
//!   is one with a NUL byte, one that is not UTF-8, and one holding `${`,
//!   which python-dotenv expands in any form: `format = "json"` carries
//!   every value.
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
    if dotenv_form(value).is_none() {
        return Err("holds quotes and backslashes that dotenv readers decode differently; use format = \"json\"");
    }
    Ok(())
}

/// How a dotenv value is written (module docs: the first form that fits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Single,
    Double,
    Bare,
}

/// Whether every `\` of `value` is followed by a character other than `\`
/// (single quotes: python-dotenv decodes `\\` and `\'`, and a final `\`
/// escapes the closing quote).
fn backslashes_stay_literal(value: &str) -> bool {
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), None | Some('\\')) {
            return false;
        }
    }
    true
}

/// White space either reader trims from an unquoted value: Unicode's
/// (Rust's `is_whitespace`), U+FEFF (JavaScript's `trim`, in Node's
/// `dotenv`) and U+001C..=U+001F (Python's `\s` and `rstrip`, in
/// python-dotenv).
fn trimmed_by_a_reader(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}' || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn dotenv_form(value: &str) -> Option<Form> {
    if !value.contains(['\'', '\r']) && backslashes_stay_literal(value) {
        return Some(Form::Single);
    }
    if !value.contains(['"', '\\']) {
        return Some(Form::Double);
    }
    let bare = !value.contains(['#', '\n', '\r', '\u{2028}', '\u{2029}'])
        && !value.starts_with(['\'', '"', '`'])
        && !value.starts_with(trimmed_by_a_reader)
        && !value.ends_with(trimmed_by_a_reader);
    bare.then_some(Form::Bare)
}

/// The text of `c` in `form`: only a carriage return in double quotes is
/// escaped; everything else is written as itself.
fn dotenv_escape(form: Form, c: char) -> Option<&'static str> {
    (form == Form::Double && c == '\r').then_some("\\r")
}

fn dotenv_quote(form: Form) -> &'static str {
    match form {
        Form::Single => "'",
        Form::Double => "\"",
        Form::Bare => "",
    }
}

fn dotenv_len(key: &str, form: Form, value: &str) -> usize {
    let body: usize = value
        .chars()
        .map(|c| dotenv_escape(form, c).map_or(c.len_utf8(), str::len))
        .sum();
    key.len() + 1 + 2 * dotenv_quote(form).len() + body + 1
}

/// Renders checked entries ([`dotenv_check`] passed for each).
fn dotenv(entries: &[(&str, &str)]) -> Secret {
    let forms: Vec<Form> = entries
        .iter()
        .map(|(_, v)| dotenv_form(v).unwrap_or(Form::Single))
        .collect();
    let size = entries
        .iter()
        .zip(&forms)
        .map(|((k, v), f)| dotenv_len(k, *f, v))
        .sum();
    let mut out = String::with_capacity(size);
    for ((key, value), form) in entries.iter().zip(forms) {
        let quote = dotenv_quote(form);
        out.push_str(key);
        out.push('=');
        out.push_str(quote);
        for c in value.chars() {
            match dotenv_escape(form, c) {
                Some(e) => out.push_str(e),
                None => out.push(c),
            }
        }
        out.push_str(quote);
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
        let entries = [NASTY[0], NASTY[2], NASTY[5], NASTY[6]];
        assert_eq!(
            rendered(Format::Dotenv, &entries),
            "A='plain'\nC='line one\nline two\n'\nF=''\nG='tab\tbell\u{7}é✓'\n"
        );
    }

    /// One form per kind of value; the reason for each is in the module docs.
    #[test]
    fn each_value_takes_the_first_form_that_fits() {
        for (value, line) in [
            ("plain", "K='plain'\n"),
            ("say \"hi\" # x\ny", "K='say \"hi\" # x\ny'\n"),
            ("C:\\dir\\file", "K='C:\\dir\\file'\n"),
            ("it's", "K=\"it's\"\n"),
            ("crlf\r\nline", "K=\"crlf\\r\nline\"\n"),
            ("C:\\path\\", "K=C:\\path\\\n"),
            ("a\\\\b", "K=a\\\\b\n"),
            ("it's C:\\x", "K=it's C:\\x\n"),
            ("", "K=''\n"),
        ] {
            assert_eq!(rendered(Format::Dotenv, &[("K", value)]), line, "{value:?}");
        }
    }

    #[test]
    fn dotenv_refuses_what_cannot_round_trip_naming_the_key() {
        for (value, why) in [
            (&b"a\0b"[..], "NUL"),
            (&b"${HOME}"[..], "${"),
            (&b"\xff"[..], "UTF-8"),
            (&b"'x\\"[..], "decode differently"),
            (&b" it's \\ "[..], "decode differently"),
            (&b"'\"\\"[..], "decode differently"),
            (&b"a'\\\n#"[..], "decode differently"),
        ] {
            let e = render(Format::Dotenv, &[("K", value)]).unwrap_err();
            assert_eq!(e.key, "K");
            assert!(e.to_string().contains(why), "{e}");
        }
        assert!(render(Format::Json, &[("K", b"${HOME}")]).is_ok());
        assert!(render(Format::Json, &[("K", b"\xff")]).is_err());
    }

    /// An unquoted value keeps its ends only if neither reader trims them:
    /// Node's `dotenv` also trims U+FEFF, python-dotenv also U+001C..=U+001F.
    /// Such a value is refused rather than delivered shortened; U+001B,
    /// which neither trims, stays at either end.
    #[test]
    fn an_unquoted_value_has_nothing_a_reader_trims_at_either_end() {
        let unquoted = "it's C:\\x"; // a `'` and a `\`: only the unquoted form fits
        for c in [
            ' ', '\t', '\u{a0}', '\u{2028}', '\u{feff}', '\u{1c}', '\u{1f}',
        ] {
            for value in [format!("{c}{unquoted}"), format!("{unquoted}{c}")] {
                let e = render(Format::Dotenv, &[("K", value.as_bytes())]).unwrap_err();
                assert!(e.reason.contains("decode differently"), "{value:?}");
            }
        }
        for value in [format!("\u{1b}{unquoted}"), format!("{unquoted}\u{1b}")] {
            assert_eq!(
                rendered(Format::Dotenv, &[("K", &value)]),
                format!("K={value}\n")
            );
        }
    }

    /// U+2028 and U+2029 end a line for Node's `dotenv`, which strips the
    /// quotes around `'"'` after one (`$\u{2028}'"'` read back as
    /// `$\u{2028}"`): unquoted is for one line, and such a value is refused.
    #[test]
    fn an_unquoted_value_has_no_javascript_line_break() {
        for value in ["$\u{2028}'\"'", "a\u{2029}'b\\c'"] {
            let e = render(Format::Dotenv, &[("K", value.as_bytes())]).unwrap_err();
            assert!(e.reason.contains("decode differently"), "{value:?}");
        }
        // Quoted, the whole value is one pair of quotes: Node strips only those.
        assert_eq!(
            rendered(Format::Dotenv, &[("K", "a\u{2028}b")]),
            "K='a\u{2028}b'\n"
        );
    }

    /// JSON stays readable: a line break, carriage return and tab take the
    /// short escapes (a PEM key reads as lines joined by `\n`), any other
    /// control character `\u00XX`, and everything from the space up (U+007F
    /// included) is written as itself.
    #[test]
    fn json_escapes_only_what_it_must_and_short_where_it_can() {
        assert_eq!(
            rendered(Format::Json, &[("K", "a b\n\r\t\"\\\u{7}\u{1f}\u{7f}é")]),
            "{\n  \"K\": \"a b\\n\\r\\t\\\"\\\\\\u0007\\u001f\u{7f}é\"\n}\n"
        );
    }

    /// An error names the format as `r4.toml` spells it: that name reads
    /// back as the same format.
    #[test]
    fn a_format_is_named_as_r4_toml_spells_it() {
        #[derive(Deserialize)]
        struct Bundle {
            format: Format,
        }
        for format in [Format::Dotenv, Format::Json] {
            let toml = format!("format = \"{}\"", format.name());
            let read: Bundle = toml::from_str(&toml).unwrap();
            assert_eq!(read.format, format, "{toml}");
        }
    }
}
