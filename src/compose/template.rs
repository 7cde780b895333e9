//! Templates: text with `{{ r4://vault/item/field }}` placeholders (the
//! syntax of `op inject`), for values assembled from several secrets — a
//! `DATABASE_URL` from a user, a password and a host; a kubeconfig or an
//! `application.yml` with secrets inside. Rendered in memory into a sealed
//! memfd or an environment value, never onto disk.
//!
//! The grammar is strict, so that a typo fails when the configuration is
//! read instead of shipping a literal `{{ r4:/…` to COMMAND:
//!
//! - every `{{` opens a placeholder, closed by the next `}}` on the same line;
//! - inside, after optional spaces or tabs: an `r4://` reference (its own
//!   escapes, `%2F` and `%25`, apply); `path:NAME`, the path of the file
//!   secret `NAME` (a `[files]` entry or an `r4+file://` variable), so that a
//!   configuration file can name the other files it needs (`nginx.conf` and
//!   its `ssl_certificate_key`); or `"{{"`, which stands for a literal `{{`;
//! - a `}}` outside a placeholder is literal text.
//!
//! Values are inserted verbatim in one pass over the parsed template: a
//! value that contains `{{ r4://… }}` stays that text, it is never expanded.
//! Paths are known only when the files are handed over, so a rendering
//! leaves a [`PathSlot`] where each goes, and [`fill`] inserts them then.

use thiserror::Error;
use zeroize::Zeroize;

use crate::contract::Secret;
use crate::reference::Reference;

/// The escape that stands for a literal `{{` inside a placeholder.
pub const LITERAL_OPEN: &str = "\"{{\"";

/// A template that parsed: text and placeholders, in order.
#[derive(Debug, Clone)]
pub struct Template {
    origin: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    Value(Placeholder),
    /// `{{ path:NAME }}`.
    Path(String),
}

/// Where, in a rendered value, the path of file secret `name` goes: at byte
/// `at` of the value without any path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSlot {
    /// Offset in the rendered value.
    pub at: usize,
    /// The file secret whose path goes there.
    pub name: String,
}

/// The prefix of a path placeholder.
pub const PATH_PREFIX: &str = "path:";

/// One `{{ r4://… }}` of a template.
#[derive(Debug, Clone)]
pub struct Placeholder {
    /// The reference as written.
    pub raw: String,
    /// Parsed.
    pub reference: Reference,
    /// Line of the template it is on (from 1).
    pub line: usize,
}

/// A template that does not parse: where (line and column of the `{{`),
/// and why. Never quotes the template: a template may hold text its author
/// did not mean to publish, and a broken placeholder may be a pasted value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct TemplateError {
    /// The template: its file, or the entry it is written in.
    pub origin: String,
    /// The line (from 1).
    pub line: usize,
    /// The column of the `{{` on that line, in characters (from 1).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Template {
    /// Parses `text`; `origin` names the template in messages (its file, or
    /// `[env] NAME` for one written inline).
    pub fn parse(text: &str, origin: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut line = 1;
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            push_text(&mut segments, &rest[..open]);
            line += rest[..open].matches('\n').count();
            let at = text.len() - rest.len() + open;
            let column = text[..at].rsplit('\n').next().unwrap_or("").chars().count() + 1;
            let err = |message: String| TemplateError {
                origin: origin.to_owned(),
                line,
                column,
                message,
            };
            let after = &rest[open + 2..];
            let inner = match after.find("}}") {
                Some(close) if !after[..close].contains('\n') => &after[..close],
                _ => {
                    return Err(err(
                        "a {{ without a closing }} on the same line (a literal {{ is written {{ \"{{\" }})".into(),
                    ))
                }
            };
            segments.push(placeholder(inner, line).map_err(err)?);
            rest = &after[inner.len() + 2..];
        }
        push_text(&mut segments, rest);
        Ok(Template {
            origin: origin.to_owned(),
            segments,
        })
    }

    /// Where the template comes from, as given to [`Template::parse`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `r4://` placeholders, in order (one per occurrence).
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Value(p) => Some(p),
            Segment::Text(_) | Segment::Path(_) => None,
        })
    }

    /// The names of the `{{ path:NAME }}` placeholders, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Path(name) => Some(name.as_str()),
            Segment::Text(_) | Segment::Value(_) => None,
        })
    }

    /// The template with the `n`-th placeholder replaced by `values[n]`,
    /// verbatim, and where each path goes. `None` unless there is exactly
    /// one value per placeholder. Written into one buffer of the final size,
    /// so that no partial copy is left behind by a reallocation.
    pub fn render(&self, values: &[&[u8]]) -> Option<(Secret, Vec<PathSlot>)> {
        if values.len() != self.placeholders().count() {
            return None;
        }
        let size = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.len(),
                Segment::Value(_) | Segment::Path(_) => 0,
            })
            .sum::<usize>()
            + values.iter().map(|v| v.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        let mut slots = Vec::new();
        let mut values = values.iter();
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.extend_from_slice(t.as_bytes()),
                Segment::Value(_) => out.extend_from_slice(values.next()?),
                Segment::Path(name) => slots.push(PathSlot {
                    at: out.len(),
                    name: name.clone(),
                }),
            }
        }
        debug_assert_eq!(out.len(), size);
        Some((Secret::new(out), slots))
    }
}

/// `value` with the path of each slot's file inserted at its offset, in one
/// buffer of the final size; `Err(name)` for the first slot whose file
/// `path_of` does not know.
pub fn fill(
    value: &[u8],
    slots: &[PathSlot],
    path_of: impl Fn(&str) -> Option<String>,
) -> Result<Secret, String> {
    let mut paths = Vec::with_capacity(slots.len());
    for slot in slots {
        paths.push(path_of(&slot.name).ok_or_else(|| slot.name.clone())?);
    }
    let size = value.len() + paths.iter().map(String::len).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let mut from = 0;
    for (slot, path) in slots.iter().zip(&paths) {
        out.extend_from_slice(&value[from..slot.at]);
        out.extend_from_slice(path.as_bytes());
        from = slot.at;
    }
    out.extend_from_slice(&value[from..]);
    debug_assert_eq!(out.len(), size);
    Ok(Secret::new(out))
}

impl Drop for Template {
    /// Template text is not secret, but a template file may still hold
    /// something its author did not mean to publish: wipe it like values.
    fn drop(&mut self) {
        for s in &mut self.segments {
            if let Segment::Text(t) = s {
                t.zeroize();
            }
        }
    }
}

fn push_text(segments: &mut Vec<Segment>, text: &str) {
    if text.is_empty() {
        return;
    }
    match segments.last_mut() {
        Some(Segment::Text(t)) => t.push_str(text),
        _ => segments.push(Segment::Text(text.to_owned())),
    }
}

/// The segment a placeholder's inside (between `{{` and `}}`) stands for.
fn placeholder(inner: &str, line: usize) -> Result<Segment, String> {
    let body = inner.trim_matches(|c| c == ' ' || c == '\t');
    if body == LITERAL_OPEN {
        return Ok(Segment::Text("{{".into()));
    }
    if let Some(name) = body.strip_prefix(PATH_PREFIX) {
        let name = name.trim_matches(|c| c == ' ' || c == '\t');
        if !crate::contract::envname::is_valid_env_name(name) {
            return Err(
                "a path placeholder names a file secret: {{ path:NAME }}, NAME a variable name of [files] or of an r4+file:// reference".into(),
            );
        }
        return Ok(Segment::Path(name.to_owned()));
    }
    if !body.starts_with("r4://") {
        return Err(
            "this {{ … }} is not a placeholder: write {{ r4://vault/item/field }}, {{ path:NAME }} for the path of file secret NAME, or {{ \"{{\" }} for a literal {{".into(),
        );
    }
    let reference =
        Reference::parse(body).map_err(|e| format!("this placeholder is not a reference: {e}"))?;
    Ok(Segment::Value(Placeholder {
        raw: body.to_owned(),
        reference,
        line,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &Template, values: &[&str]) -> String {
        let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        String::from_utf8(t.render(&values).unwrap().0.expose().to_vec()).unwrap()
    }

    #[test]
    fn placeholders_are_found_with_their_lines_and_rendered_verbatim() {
        let t = Template::parse(
            "postgres://{{ r4://DB/Prod/user }}:{{r4://DB/Prod/password}}@db\nhost: {{\tr4://DB/Prod/host\t}}\n",
            "[env] DATABASE_URL",
        )
        .unwrap();
        let found: Vec<(&str, usize)> =
            t.placeholders().map(|p| (p.raw.as_str(), p.line)).collect();
        assert_eq!(
            found,
            [
                ("r4://DB/Prod/user", 1),
                ("r4://DB/Prod/password", 1),
                ("r4://DB/Prod/host", 2)
            ]
        );
        assert_eq!(t.placeholders().next().unwrap().reference.field, "user");
        // A value holding a placeholder is not expanded again.
        assert_eq!(
            render(&t, &["u", "{{ r4://DB/Prod/user }}", "h"]),
            "postgres://u:{{ r4://DB/Prod/user }}@db\nhost: h\n"
        );
        assert!(t.render(&[b"only one"]).is_none());
    }

    #[test]
    fn path_placeholders_leave_slots_that_fill_completes() {
        let t = Template::parse(
            "cert {{ path:TLS_CERT }};\nkey {{path:TLS_KEY}}; pw {{ r4://V/I/F }} {{ path:TLS_CERT }}",
            "nginx.conf",
        )
        .unwrap();
        assert_eq!(t.placeholders().count(), 1);
        assert_eq!(
            t.paths().collect::<Vec<_>>(),
            ["TLS_CERT", "TLS_KEY", "TLS_CERT"]
        );
        let (value, slots) = t.render(&[b"{{ path:TLS_KEY }}"]).unwrap();
        assert_eq!(value.expose(), b"cert ;\nkey ; pw {{ path:TLS_KEY }} ");
        let at: Vec<(usize, &str)> = slots.iter().map(|s| (s.at, s.name.as_str())).collect();
        assert_eq!(at, [(5, "TLS_CERT"), (11, "TLS_KEY"), (35, "TLS_CERT")]);
        let paths = |name: &str| match name {
            "TLS_CERT" => Some("/proc/7/fd/3".to_owned()),
            "TLS_KEY" => Some("/proc/7/fd/4".to_owned()),
            _ => None,
        };
        // A value is never expanded: the placeholder inside it stays text.
        assert_eq!(
            fill(value.expose(), &slots, paths).unwrap().expose(),
            b"cert /proc/7/fd/3;\nkey /proc/7/fd/4; pw {{ path:TLS_KEY }} /proc/7/fd/3"
        );
        assert_eq!(
            fill(value.expose(), &slots, |_| None).unwrap_err(),
            "TLS_CERT"
        );
        assert_eq!(fill(b"as is", &[], |_| None).unwrap().expose(), b"as is");
    }

    #[test]
    fn a_path_placeholder_names_a_variable_and_is_never_quoted() {
        for text in [
            "{{ path: }}",
            "{{ path:1X }}",
            "{{ path:A-B }}",
            "{{ path:hunter2 secret }}",
        ] {
            let e = Template::parse(text, "t").unwrap_err();
            assert!(
                e.message
                    .starts_with("a path placeholder names a file secret"),
                "{e}"
            );
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let t = Template::parse("{{ path: \tKEY_1\t }}", "t").unwrap();
        assert_eq!(t.paths().collect::<Vec<_>>(), ["KEY_1"]);
    }

    #[test]
    fn literal_braces() {
        let t = Template::parse("a {{ \"{{\" }} b }} c {{\"{{\"}}x", "t").unwrap();
        assert_eq!(t.placeholders().count(), 0);
        // The text after a literal `{{` joins it: "a ", "{{ b }} c ", "{{x".
        assert_eq!(t.segments.len(), 3);
        assert_eq!(render(&t, &[]), "a {{ b }} c {{x");
        let t = Template::parse("no placeholders at all\n", "t").unwrap();
        assert_eq!(render(&t, &[]), "no placeholders at all\n");
    }

    #[test]
    fn errors_name_the_template_and_the_line() {
        let e = Template::parse("a: 1\nb: {{ r4://V/I/F\n}}", "kube.tmpl").unwrap_err();
        assert_eq!((e.origin.as_str(), e.line, e.column), ("kube.tmpl", 2, 4));
        assert!(
            e.to_string().starts_with("kube.tmpl:2:4: a {{ without"),
            "{e}"
        );
        let e = Template::parse("x\n\nyé {{ .Values.x }}", "t").unwrap_err();
        assert_eq!((e.line, e.column), (3, 4));
        assert!(e.message.contains("is not a placeholder"), "{e}");
        let e = Template::parse("{{ r4://V/I }}", "t").unwrap_err();
        assert!(
            e.message
                .starts_with("this placeholder is not a reference: "),
            "{e}"
        );
        let e = Template::parse("{{ r4:/V/I/F }}", "t").unwrap_err();
        assert!(e.message.contains("not a placeholder"), "{e}");
        assert!(Template::parse("{{", "t").is_err());
        // Configuration text is never quoted: it may be a pasted value.
        for text in [
            "{{ hunter2-SECRET }}",
            "{{ r4://hunter2-SECRET }}",
            "{{ hunter2-SECRET",
        ] {
            let e = Template::parse(text, "t").unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
        assert!(Template::parse("{{{ r4://V/I/F }}}", "t").is_err());
    }
}
