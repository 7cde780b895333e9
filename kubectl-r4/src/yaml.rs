//! The YAML side: a stream split into documents by their own text, a small
//! node tree for the documents that change, and a block-style emitter.
//!
//! A document kubectl-r4 does not change is never parsed into output: its
//! original bytes are written back ([`split`] keeps them). A document it
//! changes is parsed into [`Node`]s whose scalars keep the text they were
//! written with and whether they were plain: a plain scalar is written back
//! plain and verbatim, so Kubernetes' YAML 1.1 reader resolves it as before
//! (`0400` an octal integer, `yes` a boolean, `1e3` a number); any other
//! scalar is written as a string. Comments of a changed document are lost;
//! aliases are expanded (the same value, written out).

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// One document of a stream: its text, separator line included.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The exact bytes, from its `---` line (if any) to the next one.
    pub text: &'a str,
    /// Whether it starts with a `---` line.
    pub explicit_start: bool,
}

/// Whether `line` (without its newline) is a document start marker: `---`
/// at column 0, alone or followed by a space or tab.
pub fn is_start(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
}

/// Splits a stream before each `---` line. Concatenating the chunks gives
/// back `text` exactly. A `---` at column 0 can only be a marker: YAML
/// forbids it inside a scalar at that column.
pub fn split(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    // Where a run of directive lines (`%YAML`, `%TAG`) began: they belong
    // to the document whose `---` follows them.
    let mut directives: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        if is_start(bare) {
            let at = directives.unwrap_or(offset);
            if at > start {
                chunks.push(&text[start..at]);
                start = at;
            }
        }
        if bare.starts_with('%') {
            directives.get_or_insert(offset);
        } else {
            directives = None;
        }
        offset += line.len();
    }
    if offset > start {
        chunks.push(&text[start..offset]);
    }
    chunks
        .into_iter()
        .map(|text| Chunk {
            text,
            explicit_start: text
                .lines()
                .find(|l| !l.starts_with('%'))
                .is_some_and(is_start),
        })
        .collect()
}

/// The lines a changed document keeps as they were: its directives, its
/// `---` line (if nothing but a comment follows the marker) and the
/// comment and blank lines before its content (Helm's `# Source: …`).
pub fn header(text: &str) -> &str {
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let keep = bare.starts_with('%')
            || bare.trim().is_empty()
            || bare.trim_start().starts_with('#')
            || (is_start(bare) && {
                let rest = bare[3..].trim();
                rest.is_empty() || rest.starts_with('#')
            });
        if !keep {
            break;
        }
        end += line.len();
    }
    &text[..end]
}

/// A YAML node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in its order.
    Map(Vec<(Node, Node)>),
}

/// A scalar: its value, whether it was plain (unquoted, so its type is
/// resolved by the reader), and its tag if it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    pub plain: bool,
    pub tag: Option<String>,
}

impl Node {
    /// A string.
    pub fn str(text: &str) -> Node {
        Node::Scalar(Scalar {
            text: text.to_owned(),
            plain: false,
            tag: None,
        })
    }

    /// A plain scalar written as is (a number, a boolean, a plain word).
    pub fn plain(text: &str) -> Node {
        Node::Scalar(Scalar {
            text: text.to_owned(),
            plain: true,
            tag: None,
        })
    }

    /// The scalar's text, for a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// The value under `key`, for a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value under `key`, mutably, for a mapping.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` to `value` in a mapping: in place if present, else at
    /// the end. Does nothing to a node that is not a mapping.
    pub fn set(&mut self, key: &str, value: Node) {
        if let Some(slot) = self.get_mut(key) {
            *slot = value;
        } else if let Node::Map(entries) = self {
            entries.push((Node::plain(key), value));
        }
    }

    /// Removes `key` from a mapping.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match self {
            Node::Map(entries) => {
                let at = entries.iter().position(|(k, _)| k.as_str() == Some(key))?;
                Some(entries.remove(at).1)
            }
            _ => None,
        }
    }

    /// Whether the node is null: a plain `null`, `~`, `Null`, `NULL` or
    /// empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(self, Node::Scalar(s) if s.plain && s.tag.is_none()
            && matches!(s.text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// Parses the one document of `text` (a [`Chunk`]'s text); `None` when it
/// holds no document (only comments or blank lines).
pub fn parse(text: &str) -> Result<Option<Node>, String> {
    let mut b = Builder::default();
    let mut docs = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| format!("YAML: {e}"))?;
        match event {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(format!(
                        "YAML: a second document at line {} without a `---` line before it",
                        span.start.line()
                    ));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let node = Node::Scalar(Scalar {
                    text: value.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    tag,
                });
                b.value(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => b.open(Node::Seq(Vec::new()), anchor),
            Event::MappingStart(anchor, _) => b.open(Node::Map(Vec::new()), anchor),
            Event::SequenceEnd | Event::MappingEnd => b.close()?,
            Event::Alias(id) => {
                let node = b
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| "YAML: an alias to an unknown anchor".to_owned())?;
                b.value(node, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(b.root)
}

/// Builds a tree from events.
#[derive(Default)]
struct Builder {
    /// Open collections, with their anchor id and, for a mapping, the key
    /// waiting for its value.
    stack: Vec<(Node, usize, Option<Node>)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder {
    fn open(&mut self, node: Node, anchor: usize) {
        self.stack.push((node, anchor, None));
    }

    fn close(&mut self) -> Result<(), String> {
        let (node, anchor, _) = self
            .stack
            .pop()
            .ok_or_else(|| "YAML: unbalanced collection".to_owned())?;
        self.value(node, anchor)
    }

    fn value(&mut self, node: Node, anchor: usize) -> Result<(), String> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Node::Seq(items), _, _)) => items.push(node),
            Some((Node::Map(entries), _, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
            Some((Node::Scalar(_), _, _)) => return Err("YAML: a scalar with children".into()),
        }
        Ok(())
    }
}

/// Writes `node` as a block-style YAML document (no `---` line), ending
/// with a newline.
pub fn emit(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Map(entries) if !entries.is_empty() => emit_map(&mut out, entries, 0),
        Node::Seq(items) if !items.is_empty() => emit_seq(&mut out, items, 0),
        _ => {
            out.push_str(&inline(node, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Whether `node` is written on the line of its key or dash.
fn is_inline(node: &Node) -> bool {
    match node {
        Node::Scalar(_) => true,
        Node::Seq(items) => items.is_empty(),
        Node::Map(entries) => entries.is_empty(),
    }
}

fn emit_map(out: &mut String, entries: &[(Node, Node)], level: usize) {
    for (key, value) in entries {
        indent(out, level);
        out.push_str(&key_text(key));
        out.push(':');
        emit_child(out, value, level, true);
    }
}

fn emit_seq(out: &mut String, items: &[Node], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            // "- key: value" with the rest of the mapping under it.
            Node::Map(entries) if !entries.is_empty() => {
                out.push(' ');
                let mut first = String::new();
                emit_map(&mut first, entries, level + 2);
                out.push_str(&first[level + 2..]);
            }
            _ => emit_child(out, item, level, false),
        }
    }
}

/// A value after `key:` or `-`: on the same line if inline, else on the
/// following lines, indented (a sequence in a mapping at the key's level,
/// as kubectl writes it).
fn emit_child(out: &mut String, value: &Node, level: usize, in_map: bool) {
    if is_inline(value) {
        out.push(' ');
        out.push_str(&inline(value, level + 2));
        out.push('\n');
        return;
    }
    out.push('\n');
    match value {
        Node::Map(entries) => emit_map(out, entries, level + 2),
        Node::Seq(items) => emit_seq(out, items, if in_map { level } else { level + 2 }),
        Node::Scalar(_) => {}
    }
}

/// A key: a plain scalar as written if it is a simple word, else quoted.
fn key_text(key: &Node) -> String {
    match key {
        Node::Scalar(s) if s.plain && s.tag.is_none() && is_simple_key(&s.text) => s.text.clone(),
        Node::Scalar(s) if s.plain && plain_is_safe(&s.text) => match &s.tag {
            Some(tag) => format!("{} {}", tag_text(tag), s.text),
            None => s.text.clone(),
        },
        Node::Scalar(s) => quote(&s.text),
        // A complex key: written as a quoted flow of its emitted text is
        // not worth it for Kubernetes manifests, which never have one.
        other => quote(&emit(other)),
    }
}

fn is_simple_key(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !text.starts_with(['-', '.', '/'])
}

/// A node written on one line (or a block scalar starting on it).
fn inline(node: &Node, level: usize) -> String {
    match node {
        Node::Scalar(s) => scalar_text(s, level),
        Node::Seq(_) => "[]".to_owned(),
        Node::Map(_) => "{}".to_owned(),
    }
}

fn scalar_text(s: &Scalar, level: usize) -> String {
    let body = if s.plain && s.text.is_empty() {
        // An empty plain scalar (`key:`) is a null, or an empty string if
        // tagged so.
        if s.tag.is_none() {
            "null".to_owned()
        } else {
            "\"\"".to_owned()
        }
    } else if s.plain && plain_is_safe(&s.text) {
        s.text.clone()
    } else if s.plain && s.tag.is_none() && !s.text.contains('\n') {
        // A plain scalar whose text cannot be written back plain here (it
        // has no such form that still parses): a string, as it was.
        quote(&s.text)
    } else if !s.plain && s.tag.is_none() && reads_as_string(&s.text) {
        s.text.clone()
    } else if s.text.contains('\n') && literal_is_safe(&s.text) {
        literal(&s.text, level)
    } else {
        quote(&s.text)
    };
    match &s.tag {
        Some(tag) => format!("{} {body}", tag_text(tag)),
        None => body,
    }
}

/// `!!str` for the core schema's tags, the tag as written otherwise.
fn tag_text(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(suffix) => format!("!!{suffix}"),
        None => tag.to_owned(),
    }
}

/// Whether a plain scalar read from a document can be written back plain in
/// block context: one line, no leading or trailing space, nothing that
/// would start or end it early. (Plain scalars read from flow context are
/// a subset of what block context accepts.)
fn plain_is_safe(text: &str) -> bool {
    !text.is_empty()
        && !text.contains(['\n', '\r', '\t'])
        && !text.starts_with([' ', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`'])
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && !(text.starts_with(['-', '?', ':']) && text[1..].starts_with(' '))
        && !matches!(text, "-" | "?" | ":")
        && !text.starts_with(['[', ']', '{', '}', ','])
}

/// Whether `text`, written plain, is read back as this string by YAML 1.1
/// and 1.2 readers alike: a letter or `/` first, then only letters, digits
/// and `/._-:@=+`, and not one of YAML 1.1's booleans or nulls. (Numbers,
/// timestamps and `.inf` start otherwise.)
fn reads_as_string(text: &str) -> bool {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || "/._-:@=+".contains(c))
        && !text.contains(": ")
        && !text.ends_with(':')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
        )
}

/// Whether `text` can be a literal block scalar: printable, no carriage
/// returns or tabs that a reader could take otherwise, and a first line
/// that does not start with a space (which would need an indentation
/// indicator).
fn literal_is_safe(text: &str) -> bool {
    !text.starts_with([' ', '\n'])
        && text
            .chars()
            .all(|c| c == '\n' || (!c.is_control() && c != '\u{feff}'))
        && !text
            .lines()
            .any(|l| l.chars().all(|c| c == ' ') && !l.is_empty())
}

/// A literal block scalar: `|` with the chomping that keeps `text` exact.
fn literal(text: &str, level: usize) -> String {
    let trailing = text.len() - text.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    let body = text.strip_suffix('\n').unwrap_or(text);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', level.max(2)));
            out.push_str(line);
        }
    }
    out
}

/// A double-quoted scalar with every character that needs it escaped.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for messages: control characters escaped, at most `max` chars.
pub fn printable(text: &str, max: usize) -> Cow<'_, str> {
    if text.chars().count() <= max && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out: String = text
        .chars()
        .take(max)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    Cow::Owned(out)
}

/// Whether two trees mean the same: scalars compare by text and tag, and
/// by plainness only where that changes what they are read as.
#[cfg(test)]
pub fn equivalent(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Scalar(x), Node::Scalar(y)) => {
            x.text == y.text && x.tag == y.tag && (x.plain == y.plain || reads_as_string(&x.text))
        }
        (Node::Seq(x), Node::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equivalent(a, b))
        }
        (Node::Map(x), Node::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| equivalent(k1, k2) && equivalent(v1, v2))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_byte() {
        let text = "# lead\na: 1\n---\nb: 2\n--- # c\n\n...\n---\n---x: 1\n";
        let chunks = split(text);
        let joined: String = chunks.iter().map(|c| c.text).collect();
        assert_eq!(joined, text);
        assert_eq!(chunks.len(), 4);
        assert!(!chunks[0].explicit_start);
        assert_eq!(chunks[1].text, "---\nb: 2\n");
        assert_eq!(chunks[3].text, "---\n---x: 1\n");
    }

    #[test]
    fn directives_go_with_the_document_they_precede() {
        let text = "a: 1\n...\n%YAML 1.2\n---\nb: 2\n";
        let chunks = split(text);
        assert_eq!(chunks[0].text, "a: 1\n...\n");
        assert_eq!(chunks[1].text, "%YAML 1.2\n---\nb: 2\n");
        assert!(chunks[1].explicit_start);
        assert!(parse(chunks[0].text).is_ok() && parse(chunks[1].text).is_ok());
    }

    #[test]
    fn the_header_of_a_document() {
        assert_eq!(
            header("---\n# Source: a.yaml\n\nkind: Pod\n"),
            "---\n# Source: a.yaml\n\n"
        );
        assert_eq!(header("--- # c\nkind: Pod\n"), "--- # c\n");
        assert_eq!(header("--- {kind: Pod}\n"), "");
        assert_eq!(header("kind: Pod\n# not a header\n"), "");
        assert_eq!(header("%YAML 1.2\n---\nkind: Pod\n"), "%YAML 1.2\n---\n");
    }

    #[test]
    fn split_of_no_trailing_newline_and_empty() {
        assert_eq!(split("").len(), 0);
        let chunks = split("a: 1\n---\nb: 2");
        assert_eq!(chunks[1].text, "---\nb: 2");
    }

    #[test]
    fn parse_keeps_plain_text_and_styles() {
        let node = parse("a: 0400\nb: '0400'\nc: yes\nd: [x, 'y']\ne: &A {k: v}\nf: *A\n")
            .unwrap()
            .unwrap();
        let a = node.get("a").unwrap();
        assert!(matches!(a, Node::Scalar(s) if s.plain && s.text == "0400"));
        assert!(matches!(node.get("b").unwrap(), Node::Scalar(s) if !s.plain));
        assert_eq!(node.get("f"), node.get("e"));
        let out = emit(&node);
        assert_eq!(
            out,
            "a: 0400\nb: \"0400\"\nc: yes\nd:\n- x\n- \"y\"\ne:\n  k: v\nf:\n  k: v\n"
        );
        // The emitted text reads back to the same tree.
        assert_eq!(parse(&out).unwrap().unwrap(), parse(&out).unwrap().unwrap());
    }

    #[test]
    fn emitted_text_reads_back_the_same() {
        let src = r##"
apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {r4.dev/inject: "true", "a b": c}}
spec:
  containers:
  - name: app
    args: ["sh", "-c", "echo 'hi'\nexit 3\n", "tab\there", "  lead", "x: y", "#no", "- d", "", "trail\n\n"]
    env:
    - {name: A, value: "1"}
    - name: B
      value: |
        line one
          indented
  - {}
  volumes: []
  n: ~
  t: !!str 12
"##;
        let node = parse(src).unwrap().unwrap();
        let out = emit(&node);
        assert!(equivalent(&parse(&out).unwrap().unwrap(), &node), "{out}");
        assert!(
            out.contains("|\n        line one\n          indented\n"),
            "{out}"
        );
    }

    #[test]
    fn an_empty_value_stays_null() {
        let node = parse("a:\nb: ~\nc: !!str\nd: ''\n").unwrap().unwrap();
        let out = emit(&node);
        assert_eq!(out, "a: null\nb: ~\nc: !!str \"\"\nd: \"\"\n");
        let back = parse(&out).unwrap().unwrap();
        assert!(back.get("a").unwrap().is_null() && back.get("b").unwrap().is_null());
        assert!(!back.get("d").unwrap().is_null());
    }

    #[test]
    fn empty_document_is_none() {
        assert_eq!(parse("# only a comment\n").unwrap(), None);
        assert_eq!(parse("---\n").unwrap().map(|n| n.is_null()), Some(true));
    }

    #[test]
    fn two_documents_in_one_chunk_is_an_error() {
        // `...` then a new document without `---` cannot happen after split
        // except after an explicit end marker.
        let err = parse("a: 1\n...\nb: 2\n").unwrap_err();
        assert!(err.contains("second document"), "{err}");
    }

    #[test]
    fn quote_escapes_controls() {
        assert_eq!(
            quote("a\"\\\n\u{1b}\u{2028}"),
            "\"a\\\"\\\\\\n\\x1b\\u2028\""
        );
        assert_eq!(printable("a\u{1b}[31m", 80), "a\\u{1b}[31m");
    }
}
