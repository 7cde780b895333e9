//! Masking secret values in a byte stream (`--mask`): a pure, streaming
//! replacer with no I/O of its own.
//!
//! [`Patterns`] turns each secret value into the byte strings to look for:
//! the value itself, the value with each `\n` as `\r\n` (what a terminal's
//! line discipline makes of it, `--mask` through a pseudo-terminal), its
//! standard and URL-safe base64 encodings (RFC 4648 §4 and §5, with and
//! without `=` padding) and its percent-encoding (RFC 3986: every byte but
//! `A-Z a-z 0-9 - . _ ~` as `%XX`, upper- and lower-case hex). Values shorter
//! than [`MIN_MASKED_LEN`] bytes are **not** masked, nor are their encodings:
//! a two-letter value would blank out ordinary words everywhere. Only the
//! encoding of the whole value is recognised; a value embedded inside a
//! longer base64 or percent-encoded string (`base64("user:" + value)`) is
//! not.
//!
//! [`Masker`] is fed the stream chunk by chunk, in whatever pieces `read(2)`
//! returns, and writes out every byte it can already decide on:
//!
//! - every occurrence of a pattern is replaced by [`MARKER`] (leftmost-longest,
//!   non-overlapping; Aho-Corasick), followed by as many `\n` as the masked
//!   text contained, so the line count of the output is that of the input;
//! - a pattern split across two chunks is still caught: the masker holds back
//!   the shortest tail that could still grow into a match — the longest
//!   suffix of what it has that is a proper prefix of some pattern, so never
//!   more than *longest pattern − 1* bytes — and releases it as soon as the
//!   next chunk decides it (or at [`Masker::finish`]);
//! - nothing else is held back: output that cannot be the start of a secret
//!   goes out at once, so a complete line is never delayed unless a secret
//!   itself starts with what ends the line (a multi-line value such as a PEM
//!   key can hold back the line before it until the next byte arrives).

use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use zeroize::{Zeroize, Zeroizing};

/// What replaces a masked value.
pub const MARKER: &[u8] = b"[r4:masked]";

/// Values shorter than this many bytes are not masked.
pub const MIN_MASKED_LEN: usize = 4;

/// The masking patterns could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the output mask: {0}")]
pub struct MaskError(String);

/// The byte strings to mask, compiled. `Debug` prints counts, never values.
pub struct Patterns {
    ac: Option<AhoCorasick>,
    /// The distinct patterns in byte order, for the proper-prefix test.
    sorted: Vec<Zeroizing<Vec<u8>>>,
    max_len: usize,
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patterns")
            .field("count", &self.sorted.len())
            .field("max_len", &self.max_len)
            .finish()
    }
}

/// The forms of `value` that are masked: the value, the value with CRLF
/// line ends, its standard and URL-safe base64 (padded and unpadded) and
/// its percent-encoding (upper- and lower-case hex), without duplicates. Empty when `value` is shorter than
/// [`MIN_MASKED_LEN`].
pub fn forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    if value.len() < MIN_MASKED_LEN {
        return Vec::new();
    }
    let mut crlf = Zeroizing::new(Vec::with_capacity(value.len() + 8));
    for &b in value {
        if b == b'\n' {
            crlf.push(b'\r');
        }
        crlf.push(b);
    }
    let mut out: Vec<Zeroizing<Vec<u8>>> = vec![
        Zeroizing::new(value.to_vec()),
        crlf,
        Zeroizing::new(STANDARD.encode(value).into_bytes()),
        Zeroizing::new(STANDARD_NO_PAD.encode(value).into_bytes()),
        Zeroizing::new(URL_SAFE.encode(value).into_bytes()),
        Zeroizing::new(URL_SAFE_NO_PAD.encode(value).into_bytes()),
        percent_encode(value, b"0123456789ABCDEF"),
        percent_encode(value, b"0123456789abcdef"),
    ];
    out.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
    out.dedup();
    out
}

fn percent_encode(value: &[u8], hex: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
        }
    }
    out
}

impl Patterns {
    /// No pattern: a masker with these passes everything through.
    pub fn empty() -> Patterns {
        Patterns {
            ac: None,
            sorted: Vec::new(),
            max_len: 0,
        }
    }

    /// The patterns for these secret values (see [`forms`]).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Patterns, MaskError> {
        let mut sorted: Vec<Zeroizing<Vec<u8>>> = values.into_iter().flat_map(forms).collect();
        sorted.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
        sorted.dedup();
        if sorted.is_empty() {
            return Ok(Patterns::empty());
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(sorted.iter().map(|p| p.as_slice()))
            .map_err(|e| MaskError(e.to_string()))?;
        let max_len = sorted.iter().map(|p| p.len()).max().unwrap_or(0);
        Ok(Patterns {
            ac: Some(ac),
            sorted,
            max_len,
        })
    }

    /// Number of distinct patterns.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Length of the longest pattern; a masker never holds back more than
    /// this minus one bytes.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Whether `rest` is a proper prefix of some pattern (a match could
    /// still start here once more bytes arrive).
    fn is_proper_prefix(&self, rest: &[u8]) -> bool {
        let start = self.sorted.partition_point(|p| p.as_slice() < rest);
        self.sorted[start..]
            .iter()
            .take_while(|p| p.starts_with(rest))
            .any(|p| p.len() > rest.len())
    }
}

/// A streaming masker over one output stream.
pub struct Masker {
    patterns: Arc<Patterns>,
    /// Bytes received but not decided yet (a possible start of a secret).
    pending: Vec<u8>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("patterns", &self.patterns)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Masker {
    /// A masker for `patterns`.
    pub fn new(patterns: Arc<Patterns>) -> Masker {
        Masker {
            patterns,
            pending: Vec::new(),
        }
    }

    /// Switches to other patterns. Bytes still pending are decided under the
    /// new ones; bytes already written are not revisited, so switch before a
    /// new value can reach the stream.
    pub fn set_patterns(&mut self, patterns: Arc<Patterns>) {
        self.patterns = patterns;
    }

    /// Bytes held back, waiting for the next chunk.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Masks `input`, appending to `out` everything that can be decided now.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(input);
        let done = self.process(out, false);
        self.pending.drain(..done);
    }

    /// End of the stream: appends whatever was held back, masked. A partial
    /// secret at the very end is not a secret and is written as is.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.process(out, true);
        self.pending.zeroize();
        self.pending.clear();
    }

    /// Writes the decided part of `pending` to `out`; returns its length.
    fn process(&self, out: &mut Vec<u8>, eof: bool) -> usize {
        let buf = &self.pending;
        let p = &self.patterns;
        let Some(ac) = &p.ac else {
            out.extend_from_slice(buf);
            return buf.len();
        };
        // Only a suffix shorter than the longest pattern can still grow into
        // a match.
        let horizon = buf.len().saturating_sub(p.max_len - 1);
        let undecided = |from: usize, to: usize| -> Option<usize> {
            (from.max(horizon)..to).find(|&q| p.is_proper_prefix(&buf[q..]))
        };
        let mut pos = 0;
        for m in ac.find_iter(buf.as_slice()) {
            // A match is final unless a longer one could still start at or
            // before it.
            if !eof {
                if let Some(h) = undecided(pos, m.start() + 1) {
                    out.extend_from_slice(&buf[pos..h]);
                    return h;
                }
            }
            out.extend_from_slice(&buf[pos..m.start()]);
            out.extend_from_slice(MARKER);
            let newlines = buf[m.range()].iter().filter(|&&b| b == b'\n').count();
            out.resize(out.len() + newlines, b'\n');
            pos = m.end();
        }
        if !eof {
            if let Some(h) = undecided(pos, buf.len()) {
                out.extend_from_slice(&buf[pos..h]);
                return h;
            }
        }
        out.extend_from_slice(&buf[pos..]);
        buf.len()
    }
}

impl Drop for Masker {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

/// Masks a whole buffer at once (what streaming must be equivalent to).
pub fn mask_all(patterns: &Arc<Patterns>, input: &[u8]) -> Vec<u8> {
    let mut m = Masker::new(patterns.clone());
    let mut out = Vec::with_capacity(input.len());
    m.feed(input, &mut out);
    m.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pats(values: &[&str]) -> Arc<Patterns> {
        Arc::new(Patterns::new(values.iter().map(|v| v.as_bytes())).expect("patterns"))
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    fn feed_in(p: &Arc<Patterns>, chunks: &[&[u8]]) -> Vec<u8> {
        let mut m = Masker::new(p.clone());
        let mut out = Vec::new();
        for c in chunks {
            m.feed(c, &mut out);
        }
        m.finish(&mut out);
        out
    }

    #[test]
    fn replaces_every_occurrence() {
        let p = pats(&["hunter2"]);
        assert_eq!(
            text(&mask_all(&p, b"pw=hunter2 again hunter2\n")),
            "pw=[r4:masked] again [r4:masked]\n"
        );
    }

    #[test]
    fn encoded_forms_are_masked() {
        let secret = "p@ss word/+=?";
        let p = pats(&[secret]);
        let b64 = STANDARD.encode(secret);
        let b64_nopad = STANDARD_NO_PAD.encode(secret);
        assert_ne!(b64, b64_nopad, "test needs a value whose base64 is padded");
        let upper = "p%40ss%20word%2F%2B%3D%3F";
        let lower = "p%40ss%20word%2f%2b%3d%3f";
        for form in [secret, &b64, &b64_nopad, upper, lower] {
            let line = format!("Authorization: {form};\n");
            assert_eq!(
                text(&mask_all(&p, line.as_bytes())),
                "Authorization: [r4:masked];\n",
                "{form}"
            );
        }
    }

    #[test]
    fn forms_are_deduplicated_and_short_values_skipped() {
        // Unreserved only: percent-encoding is the value itself; 6 bytes:
        // base64 has no padding.
        let f = forms(b"abc123");
        assert_eq!(f.len(), 2, "value and base64");
        assert!(forms(b"abc").is_empty());
        let p = pats(&["abc", "", "xyz"]);
        assert!(p.is_empty());
        assert_eq!(text(&mask_all(&p, b"abc xyz")), "abc xyz");
        assert_eq!(pats(&["abcd"]).len(), 3, "abcd, YWJjZA==, YWJjZA");
    }

    #[test]
    fn url_safe_base64_and_terminal_line_ends_are_forms_too() {
        // base64 of "\xfb\xff\xbf?" is "+/+/Pw==": URL-safe "-_-_Pw==".
        let value = b"\xfb\xff\xbf?";
        let f: Vec<Vec<u8>> = forms(value).iter().map(|v| v.to_vec()).collect();
        for want in [&b"+/+/Pw=="[..], b"+/+/Pw", b"-_-_Pw==", b"-_-_Pw"] {
            assert!(
                f.iter().any(|v| v == want),
                "{:?}",
                String::from_utf8_lossy(want)
            );
        }
        let p = pats(&["line one\nline two"]);
        assert_eq!(
            text(&mask_all(&p, b"<line one\r\nline two>")),
            "<[r4:masked]\n>",
            "what a terminal shows of a multi-line value"
        );
    }

    #[test]
    fn a_secret_split_at_every_point_is_caught() {
        let secret = "correct horse battery staple";
        let p = pats(&[secret, "sk_live_0123"]);
        let input = format!("a {secret} b sk_live_0123\nc {secret}");
        let want = "a [r4:masked] b [r4:masked]\nc [r4:masked]";
        let bytes = input.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let out = feed_in(&p, &[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(text(&out), want, "split at {i},{j}");
            }
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(text(&feed_in(&p, &one_by_one)), want);
    }

    #[test]
    fn output_that_cannot_start_a_secret_is_not_held_back() {
        let p = pats(&["hunter2-long-secret"]);
        let mut m = Masker::new(p);
        let mut out = Vec::new();
        m.feed(b"ready\n", &mut out);
        assert_eq!(out, b"ready\n", "a whole line goes out at once");
        assert_eq!(m.pending(), 0);
        out.clear();
        m.feed(b"user=hunt", &mut out);
        assert_eq!(text(&out), "user=", "only the possible start is held");
        assert_eq!(m.pending(), 4);
        out.clear();
        m.feed(b"ing\n", &mut out);
        assert_eq!(text(&out), "hunting\n", "released once it diverges");
        assert_eq!(m.pending(), 0);
    }

    #[test]
    fn a_complete_match_waits_only_if_a_longer_one_could_follow() {
        let p = pats(&["abcd", "abcdefgh"]);
        let mut m = Masker::new(p.clone());
        let mut out = Vec::new();
        m.feed(b"x abcd", &mut out);
        assert_eq!(text(&out), "x ", "abcd could become abcdefgh");
        m.feed(b"efgh y", &mut out);
        assert_eq!(text(&out), "x [r4:masked] y");
        // Leftmost wins over an earlier-completing match inside it.
        let p = pats(&["bcde", "abcdefg"]);
        assert_eq!(
            text(&feed_in(&p, &[b"abcde", b"fg!"])),
            "[r4:masked]!",
            "abcdefg, not a + bcde"
        );
        assert_eq!(text(&feed_in(&p, &[b"abcde", b"fX"])), "a[r4:masked]fX");
    }

    #[test]
    fn a_partial_secret_at_the_end_is_written_as_is() {
        let p = pats(&["hunter2"]);
        assert_eq!(text(&feed_in(&p, &[b"x hunte"])), "x hunte");
    }

    #[test]
    fn line_count_is_kept_for_multi_line_values() {
        let pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n";
        let p = pats(&[pem]);
        let out = mask_all(&p, format!("key:\n{pem}done\n").as_bytes());
        assert_eq!(text(&out), "key:\n[r4:masked]\n\n\ndone\n");
    }

    #[test]
    fn new_patterns_apply_to_what_is_pending_and_after() {
        let mut m = Masker::new(pats(&["old-secret"]));
        let mut out = Vec::new();
        m.feed(b"x old-sec", &mut out);
        assert_eq!(text(&out), "x ");
        m.set_patterns(pats(&["old-secret", "old-secret-2"]));
        m.feed(b"ret-2 new\n", &mut out);
        m.finish(&mut out);
        assert_eq!(
            text(&out),
            "x [r4:masked] new\n",
            "decided under the new patterns"
        );
    }

    #[test]
    fn no_patterns_pass_everything_through() {
        let p = Arc::new(Patterns::empty());
        let mut m = Masker::new(p);
        let mut out = Vec::new();
        m.feed(b"anything", &mut out);
        assert_eq!(out, b"anything");
        assert_eq!(m.pending(), 0);
    }

    #[test]
    fn debug_shows_no_value() {
        let p = pats(&["hunter2"]);
        let dbg = format!("{p:?} {:?}", Masker::new(p.clone()));
        assert!(!dbg.contains("hunter2") && dbg.contains("count"), "{dbg}");
    }

    proptest! {
        /// Streaming in arbitrary chunks gives exactly the one-shot result,
        /// and never holds back as much as a whole pattern.
        #[test]
        fn chunking_does_not_change_the_result(
            secrets in proptest::collection::vec("[ab\n]{4,9}", 1..4),
            input in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'\n'), Just(b'x')], 0..80),
            cuts in proptest::collection::vec(0usize..80, 0..8),
        ) {
            let p = Arc::new(Patterns::new(secrets.iter().map(|s| s.as_bytes())).unwrap());
            let whole = mask_all(&p, &input);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort();
            let mut m = Masker::new(p.clone());
            let mut out = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([input.len()]) {
                m.feed(&input[last..c], &mut out);
                prop_assert!(m.pending() < p.max_len().max(1));
                last = c;
            }
            m.finish(&mut out);
            prop_assert_eq!(out, whole);
        }

        /// No secret survives masking, whatever surrounds it (the alphabet
        /// avoids the letters of the marker).
        #[test]
        fn no_secret_survives(
            secret in "[fghijlnopqtuvwxyz]{4,12}",
            before in "[ -~]{0,20}",
            after in "[ -~]{0,20}",
        ) {
            let p = Arc::new(Patterns::new([secret.as_bytes()]).unwrap());
            let input = format!("{before}{secret}{after}");
            let out = mask_all(&p, input.as_bytes());
            prop_assert!(!text(&out).contains(&secret), "{:?}", text(&out));
        }
    }
}
