//! `--env-file`: the dotenv syntax that `op run --env-file`, dotenvx and
//! docker compose accept, parsed without any expansion:
//!
//! - blank lines and lines starting with `#` are ignored;
//! - `export NAME=value` is the same as `NAME=value`;
//! - unquoted values are trimmed, and end at ` #` (an inline comment);
//! - `'single quoted'` values are taken literally, and may span lines;
//! - `"double quoted"` values understand `\n`, `\r`, `\t`, `\"`, `\\` (any
//!   other `\x` stays as written), and may span lines;
//! - `$VAR` and `${VAR}` are **not** expanded: a value is what the file says
//!   (expansion would let one variable's text reach another's value unseen).
//!
//! Errors name the file and the line.

use std::path::{Path, PathBuf};

/// One `NAME=value` of an env file. `Debug` shows the name and line only:
/// an env-file value may be a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Pair {
    /// The variable name.
    pub name: String,
    /// The value, unquoted and unescaped.
    pub value: String,
    /// 1-based line where the pair starts.
    pub line: usize,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("line", &self.line)
            .finish()
    }
}

/// An env file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DotenvError {
    /// The file cannot be read.
    #[error("cannot read env file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not `NAME=value`.
    #[error("{}:{line}: {message}", .path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads and parses `path`.
pub fn read(path: &Path) -> Result<Vec<Pair>, DotenvError> {
    use crate::localfile::{cap, read_text, Follow};
    let text = read_text(path, cap::CONFIG, Follow::Yes).map_err(|source| DotenvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|(line, message)| DotenvError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parses env-file text; an error is `(line, message)`.
pub fn parse(text: &str) -> Result<Vec<Pair>, (usize, String)> {
    let mut pairs = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let line = text[..pos].matches('\n').count() + 1;
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let this = &text[pos..end];
        let trimmed = this.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            pos = end + 1;
            continue;
        }
        let Some(eq) = this.find('=') else {
            // The line is not quoted back: it may be part of a secret.
            return Err((line, "expected NAME=value (the line has no =)".into()));
        };
        let key = this[..eq].trim();
        let name = key.strip_prefix("export ").map_or(key, str::trim_start);
        if !crate::contract::envname::is_valid_env_name(name) {
            // Not quoted back: an unquoted multi-line PEM puts key text here.
            return Err((
                line,
                "the text before = is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)".into(),
            ));
        }
        // A quoted value may continue on the next lines: parse from its start
        // in the rest of the text.
        let start = pos + eq + 1;
        let (value, used) = value(&text[start..]).map_err(|m| (line, m))?;
        pairs.push(Pair {
            name: name.to_owned(),
            value,
            line,
        });
        let after = start + used;
        pos = text[after..]
            .find('\n')
            .map_or(text.len(), |i| after + i + 1);
    }
    Ok(pairs)
}

/// The value at the start of `s` (after `=`), and how many bytes of `s` it
/// used, up to but not including the end of its line.
fn value(s: &str) -> Result<(String, usize), String> {
    let lead = s.len() - s.trim_start_matches([' ', '\t']).len();
    let body = &s[lead..];
    match body.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let inner = &body[1..];
            let (value, used) = if q == '\'' {
                let end = inner.find('\'').ok_or("unterminated single quote")?;
                (inner[..end].to_owned(), end)
            } else {
                double_quoted(inner)?
            };
            let after = &inner[used + 1..];
            let tail = after.split('\n').next().unwrap_or("");
            if !(tail.trim().is_empty() || tail.trim_start().starts_with('#')) {
                return Err("unexpected text after the closing quote".into());
            }
            Ok((value, lead + 1 + used + 1 + tail.len()))
        }
        _ => {
            let line = body.split('\n').next().unwrap_or("");
            let value = match line.find(" #").or_else(|| line.find("\t#")) {
                Some(i) => &line[..i],
                None => line,
            };
            Ok((value.trim().to_owned(), lead + line.len()))
        }
    }
}

/// A double-quoted value: its text and the index of the closing quote.
fn double_quoted(inner: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated double quote".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect()
    }

    fn one(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    #[test]
    fn comments_blank_lines_and_export() {
        let text = "# comment\n\n  # indented comment\nexport A=1\nB = 2 \n";
        assert_eq!(
            pairs(text),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn unquoted_values_end_at_an_inline_comment() {
        assert_eq!(pairs("A=x # note"), one("A", "x"));
        assert_eq!(pairs("A=x#not-a-comment"), one("A", "x#not-a-comment"));
        assert_eq!(pairs("A="), one("A", ""));
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(pairs(r"A='a\nb $HOME # x'"), one("A", r"a\nb $HOME # x"));
        assert_eq!(pairs("A='line1\nline2'\nB=2").len(), 2);
        assert_eq!(pairs("A='line1\nline2'")[0].1, "line1\nline2");
    }

    #[test]
    fn double_quotes_understand_escapes() {
        assert_eq!(
            pairs(r#"A="a\nb\t\"c\" \\ \$x""#),
            one("A", "a\nb\t\"c\" \\ \\$x")
        );
        assert_eq!(pairs("A=\"x\" # comment"), one("A", "x"));
        assert_eq!(pairs("A=\"multi\nline\"\nB=2")[0].1, "multi\nline");
    }

    #[test]
    fn no_expansion() {
        assert_eq!(pairs("A=${HOME}/x"), one("A", "${HOME}/x"));
    }

    #[test]
    fn references_are_values_like_any_other() {
        assert_eq!(
            pairs("DB=r4://Vault/Item/Password"),
            one("DB", "r4://Vault/Item/Password")
        );
    }

    #[test]
    fn lines_are_counted_across_multiline_values() {
        let p = parse("A='1\n2\n3'\n\nB=x\n").unwrap();
        assert_eq!((p[0].line, p[1].line), (1, 5));
    }

    #[test]
    fn errors_never_quote_the_line() {
        for text in [
            "hunter2-secret\n",
            "A='x'hunter2-secret\n",
            "password: hunter2-SECRET = 1\n",
            "KEY=-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq+hunter2/ = x\n",
        ] {
            let (_, message) = parse(text).unwrap_err();
            assert!(!message.contains("hunter2"), "{message}");
        }
        let pairs = parse("A=hunter2\n").unwrap();
        assert!(!format!("{pairs:?}").contains("hunter2"));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert_eq!(parse("1A=x").unwrap_err().0, 1);
        assert!(parse("A='open").unwrap_err().1.contains("unterminated"));
        assert!(parse("A=\"open").unwrap_err().1.contains("unterminated"));
        assert!(parse("A='x' y")
            .unwrap_err()
            .1
            .contains("after the closing quote"));
    }
}
