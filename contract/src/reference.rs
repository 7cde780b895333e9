//! Field references: `r4://<vault>/<item>/<field>`.
//!
//! Each segment is an id or a name; `%2F` escapes `/` and `%25` escapes `%`
//! inside a name, and no other escape exists, so a reference has exactly one
//! reading. Matching a segment against what the server lists happens in
//! r4-exec's `resolve` (exact, else a unique case-insensitive match). The
//! grammar lives here, beside the wire contract, because everything that reads
//! a reference (the client, the fuzz targets) must read it the same way.

use std::fmt;

use thiserror::Error;

/// The scheme prefix.
pub const SCHEME: &str = "r4://";

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Vault id or name.
    pub vault: String,
    /// Item id or name.
    pub item: String,
    /// Field id or name.
    pub field: String,
}

/// Why a reference does not parse.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// Not `r4://`.
    #[error("a reference starts with r4:// (r4://<vault>/<item>/<field>)")]
    Scheme,
    /// Not three segments.
    #[error("a reference has exactly three segments r4://<vault>/<item>/<field>, found {0}")]
    Segments(usize),
    /// An empty segment.
    #[error("segment {0} of the reference is empty")]
    Empty(usize),
    /// `%` not followed by `2F` or `25`.
    #[error("bad escape in segment {0}: only %2F (for /) and %25 (for %) are allowed")]
    Escape(usize),
}

impl Reference {
    /// Parses `r4://vault/item/field`.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let rest = text.strip_prefix(SCHEME).ok_or(ReferenceError::Scheme)?;
        let raw: Vec<&str> = rest.split('/').collect();
        if raw.len() != 3 {
            return Err(ReferenceError::Segments(raw.len()));
        }
        let mut segs = Vec::with_capacity(3);
        for (i, seg) in raw.iter().enumerate() {
            if seg.is_empty() {
                return Err(ReferenceError::Empty(i + 1));
            }
            segs.push(unescape(seg).ok_or(ReferenceError::Escape(i + 1))?);
        }
        let field = segs.pop().expect("three segments");
        let item = segs.pop().expect("three segments");
        let vault = segs.pop().expect("three segments");
        Ok(Reference { vault, item, field })
    }
}

/// One segment of a reference, unescaped (`%2F` → `/`, `%25` → `%`), or
/// `None` for any other `%`. Public so that a partial reference
/// (`r4://vault[/item]`, what `r4-exec ls` browses) reads its segments
/// exactly as a full one does.
pub fn unescape_segment(seg: &str) -> Option<String> {
    unescape(seg)
}

/// A name as a reference segment: the inverse of [`unescape_segment`].
pub fn escape_segment(name: &str) -> String {
    escape(name)
}

fn unescape(seg: &str) -> Option<String> {
    let mut out = String::with_capacity(seg.len());
    let mut rest = seg;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let esc = rest.get(pos..pos + 3)?;
        match esc.to_ascii_uppercase().as_str() {
            "%2F" => out.push('/'),
            "%25" => out.push('%'),
            _ => return None,
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn escape(seg: &str) -> String {
    seg.replace('%', "%25").replace('/', "%2F")
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/{}/{}",
            escape(&self.vault),
            escape(&self.item),
            escape(&self.field)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_escapes() {
        let r = Reference::parse("r4://Production Secrets/CI%2FCD/100%25 key").unwrap();
        assert_eq!(r.vault, "Production Secrets");
        assert_eq!(r.item, "CI/CD");
        assert_eq!(r.field, "100% key");
        assert_eq!(r.to_string(), "r4://Production Secrets/CI%2FCD/100%25 key");
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn single_segments_round_trip() {
        assert_eq!(escape_segment("CI/CD 100%"), "CI%2FCD 100%25");
        assert_eq!(
            unescape_segment("CI%2fCD 100%25").as_deref(),
            Some("CI/CD 100%")
        );
        assert_eq!(unescape_segment("a%20b"), None);
    }

    #[test]
    fn rejects_bad_references() {
        assert_eq!(
            Reference::parse("vault://a/b/c"),
            Err(ReferenceError::Scheme)
        );
        assert_eq!(
            Reference::parse("r4://a/b"),
            Err(ReferenceError::Segments(2))
        );
        assert_eq!(
            Reference::parse("r4://a/b/c/d"),
            Err(ReferenceError::Segments(4))
        );
        assert_eq!(Reference::parse("r4://a//c"), Err(ReferenceError::Empty(2)));
        assert_eq!(
            Reference::parse("r4://a/b%20c/d"),
            Err(ReferenceError::Escape(2))
        );
        assert_eq!(
            Reference::parse("r4://a/b/c%2"),
            Err(ReferenceError::Escape(3))
        );
    }
}
