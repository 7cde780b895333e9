//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! Every digest and signature of the contract is taken over these bytes, so
//! this module is the single place that decides them. Object members are
//! sorted by their UTF-16 code units, strings are escaped as ECMAScript's
//! `JSON.stringify` does (only `"`, `\\` and control characters; everything
//! else verbatim UTF-8), and numbers use the ECMAScript shortest form
//! (`ryu-js`), which for the contract's integers is plain decimal.
//!
//! Cost (BENCHMARKS.md, "Where a start's CPU goes"): a start canonicalises
//! every signed object and every digested item and field once, so the
//! writers below copy runs of plain bytes at once, sort members only when
//! they are not in order already (a `serde_json::Map` is a `BTreeMap`, in
//! byte order, which is JCS order for ASCII keys), and the digests of
//! §4.2–§4.3 write their fixed shapes through [`ObjectWriter`] instead of
//! building a `serde_json::Value` first. The bytes are the same; the tests
//! compare both ways.

use std::cmp::Ordering;
use std::io::Write as _;

use serde_json::{Map, Value};

/// First capacity of a signed object's bytes: an item checkpoint with a
/// few fields, a wrapped key or a tree head fits, so the buffer is
/// allocated once instead of growing (and being copied) twice.
const SIGNED_CAPACITY: usize = 1024;

/// The JCS bytes of `value`.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

/// The JCS bytes of any serializable value.
pub fn canonical_of<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data types to a Value cannot fail.
    canonical(&serde_json::to_value(value).expect("serializable wire type"))
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, None, out),
    }
}

/// The JCS bytes of the object `map` without its member `skip`: what a
/// signature over "the object minus `signature`" covers, without copying
/// the object first.
pub fn canonical_without(map: &Map<String, Value>, skip: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNED_CAPACITY);
    write_object(map, Some(skip), &mut out);
    out
}

/// JCS member order: by UTF-16 code units. UTF-8 byte order is code point
/// order, which is the same for ASCII keys (all of the contract's), so only
/// other keys pay for the UTF-16 comparison.
fn key_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

fn write_object(map: &Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) {
    let mut first = true;
    let mut member = |key: &str, value: &Value, out: &mut Vec<u8>| {
        if Some(key) == skip {
            return;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_string(key, out);
        out.push(b':');
        write_value(value, out);
    };
    out.push(b'{');
    // Keys are unique, so "in order" is strictly ascending.
    let in_order = map
        .keys()
        .zip(map.keys().skip(1))
        .all(|(a, b)| key_order(a, b) == Ordering::Less);
    if in_order {
        for (key, value) in map {
            member(key, value, out);
        }
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|a, b| key_order(a.0, b.0));
        for (key, value) in members {
            member(key, value, out);
        }
    }
    out.push(b'}');
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format(f).as_bytes());
    }
}

/// A JCS string. Only ASCII bytes are ever escaped, and no byte of a
/// multi-byte UTF-8 sequence is ASCII, so the scan is over bytes and every
/// run between two escapes is copied at once; runs are found eight bytes at
/// a time ([`escape_at`]), since nearly every string of a digest (ids,
/// names, types) has no escape at all.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    while let Some(i) = escape_at(bytes, run) {
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        let b = bytes[i];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => b"",
        };
        if short.is_empty() {
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&hex);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Whether JCS escapes byte `b`: `"`, `\` and the controls below 0x20.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The position of the first byte at or after `from` that JCS escapes:
/// words of eight bytes are skipped while [`word_has_escape`] says they
/// hold none, and the rest is scanned byte by byte.
fn escape_at(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if word_has_escape(w) {
            break;
        }
        i += 8;
    }
    bytes[i..].iter().position(|&b| escaped(b)).map(|p| i + p)
}

/// Whether one of the eight bytes is one JCS escapes, without a branch per
/// byte: a word holds such a byte exactly when one of its bytes is below
/// 0x20 or equal to `"` or `\`, and the classic bit tricks "has a byte
/// less than n" (exact as a yes/no for n ≤ 128) and "has a zero byte" (of
/// the word XOR the byte repeated) say each. A test checks it is exactly
/// [`escaped`] of some byte.
fn word_has_escape(word: [u8; 8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let less_than = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH != 0;
    let w = u64::from_ne_bytes(word);
    less_than(w, 0x20)
        || less_than(w ^ (ONES * u64::from(b'"')), 1)
        || less_than(w ^ (ONES * u64::from(b'\\')), 1)
}

/// `value` in decimal, as `write_number` writes an integer, without the
/// formatting machinery (one per item of a 10 000-item list).
fn write_u64(value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut v = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// JCS of one `itemsDigest` entry (§4.2),
/// `{"id":…,"name":…,"type":…,"version":…,"websites":[…]}`: its member
/// names are constants already in JCS order, written with their
/// punctuation in one copy each. A list has an entry per item (10 000 of
/// them on a start at that size), so this shape is not left to
/// [`ObjectWriter`]'s member-by-member bookkeeping, which cost twice as
/// much; the result is the same bytes (`checkpoint`'s tests compare it
/// with the generic JCS).
pub(crate) fn write_summary_entry(
    out: &mut Vec<u8>,
    id: &str,
    name: &str,
    item_type: &str,
    version: u64,
    websites: &[String],
) {
    out.reserve(id.len() + name.len() + item_type.len() + 64);
    out.extend_from_slice(b"{\"id\":");
    write_string(id, out);
    out.extend_from_slice(b",\"name\":");
    write_string(name, out);
    out.extend_from_slice(b",\"type\":");
    write_string(item_type, out);
    out.extend_from_slice(b",\"version\":");
    write_u64(version, out);
    out.extend_from_slice(b",\"websites\":");
    write_strings(websites, out);
    out.push(b'}');
}

/// A JCS array of strings.
fn write_strings(values: &[String], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(v, out);
    }
    out.push(b']');
}

/// Writes one JCS object member by member, for the fixed shapes the
/// contract digests (§4.2, §4.3, §5): the caller gives the members in JCS
/// order (checked in debug builds), and each value is written as
/// [`canonical_of`] would write it.
pub(crate) struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    last: Option<&'static str>,
}

impl<'o> ObjectWriter<'o> {
    /// Opens an object at the end of `out`.
    pub(crate) fn new(out: &'o mut Vec<u8>) -> ObjectWriter<'o> {
        out.push(b'{');
        ObjectWriter { out, last: None }
    }

    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(
            self.last
                .is_none_or(|l| key_order(l, key) == Ordering::Less),
            "members out of JCS order: {key}"
        );
        if self.last.is_some() {
            self.out.push(b',');
        }
        self.last = Some(key);
        // The contract's member names need no escape.
        debug_assert!(escape_at(key.as_bytes(), 0).is_none());
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A string member.
    pub(crate) fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        write_string(value, self.key(key));
        self
    }

    /// A boolean member.
    pub(crate) fn bool(&mut self, key: &'static str, value: bool) -> &mut Self {
        let v: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(v);
        self
    }

    /// An array-of-strings member.
    pub(crate) fn strs(&mut self, key: &'static str, values: &[String]) -> &mut Self {
        write_strings(values, self.key(key));
        self
    }

    /// Closes the object.
    pub(crate) fn finish(&mut self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_by_utf16_not_utf8() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16, so it sorts
        // before U+E000; in UTF-8 (F0 9F… vs EE 80…) it would sort after.
        let v = json!({"\u{E000}": 2, "\u{1F600}": 1});
        let s = String::from_utf8(canonical(&v)).unwrap();
        assert_eq!(s, "{\"\u{1F600}\":1,\"\u{E000}\":2}");
    }

    #[test]
    fn escapes_controls_lowercase() {
        let v = json!("\u{1}\u{1f}/");
        assert_eq!(canonical(&v), b"\"\\u0001\\u001f/\"");
    }

    #[test]
    fn numbers_in_ecmascript_form() {
        let v: Value = serde_json::from_str("[1.0, 1e21, -0.5, 123]").unwrap();
        assert_eq!(canonical(&v), b"[1,1e+21,-0.5,123]");
    }

    /// The writers before they copied runs and skipped the sort: the
    /// reference the faster ones are compared with.
    fn reference(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut members: Vec<_> = map.iter().collect();
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                out.push('{');
                for (i, (k, v)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    reference(&Value::String(k.clone()), out);
                    out.push(':');
                    reference(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    reference(v, out);
                }
                out.push(']');
            }
            Value::String(s) => {
                out.push('"');
                for ch in s.chars() {
                    match ch {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            other => out.push_str(&String::from_utf8(canonical(other)).unwrap()),
        }
    }

    fn key() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop::collection::vec(
            prop_oneof![
                Just('\u{e000}'),
                Just('\u{1f600}'),
                Just('"'),
                Just('\u{1}'),
                prop::char::range('a', 'e'),
                any::<char>(),
            ],
            0..4,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest::proptest! {
        #[test]
        fn the_fast_writers_match_the_reference(
            members in proptest::collection::btree_map(key(), key(), 0..6),
            skip in key(),
        ) {
            let map: Map<String, Value> = members.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let mut nested = map.clone();
            nested.insert("n".into(), Value::Object(map.clone()));
            for m in [&map, &nested] {
                let mut expected = String::new();
                reference(&Value::Object(m.clone()), &mut expected);
                proptest::prop_assert_eq!(String::from_utf8(canonical(&Value::Object(m.clone()))).unwrap(), expected);
                let mut without = m.clone();
                without.remove(&skip);
                let mut expected = String::new();
                reference(&Value::Object(without), &mut expected);
                proptest::prop_assert_eq!(String::from_utf8(canonical_without(m, &skip)).unwrap(), expected);
            }
        }
    }

    /// Strings long enough to fill words of eight bytes, of plain text
    /// mostly, with the bytes next to each escaped one (0x1f/0x20, `!`/`#`
    /// around `"`, `[`/`]` around `\`) and multi-byte characters.
    fn long_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop::collection::vec(
            prop_oneof![
                8 => prop::char::range('a', 'z'),
                1 => prop::sample::select(vec!['"', '\\', '\u{0}', '\u{1f}', ' ', '!', '#', '[', ']', '\u{7f}', '\u{e9}', '\u{1f600}']),
                1 => any::<char>(),
            ],
            0..40,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest::proptest! {
        #[test]
        fn a_string_is_written_as_the_reference_writes_it(s in long_text()) {
            let mut expected = String::new();
            reference(&Value::String(s.clone()), &mut expected);
            let mut out = Vec::new();
            write_string(&s, &mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
            for from in 0..=s.len() {
                let naive = s.as_bytes()[from..].iter().position(|&b| escaped(b)).map(|p| from + p);
                proptest::prop_assert_eq!(escape_at(s.as_bytes(), from), naive);
            }
        }

        #[test]
        fn integers_are_written_in_decimal(v in proptest::prelude::any::<u64>()) {
            let mut out = Vec::new();
            write_u64(v, &mut out);
            proptest::prop_assert_eq!(out, v.to_string().into_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn the_word_test_is_exactly_some_byte_escaped(
            word in proptest::prelude::any::<[u8; 8]>(),
            at in 0usize..8,
            b in proptest::prelude::any::<u8>(),
        ) {
            proptest::prop_assert_eq!(word_has_escape(word), word.iter().any(|&b| escaped(b)));
            // Each byte value at each position among plain bytes, and next
            // to another byte of any value.
            let mut one = [b'x'; 8];
            one[at] = b;
            proptest::prop_assert_eq!(word_has_escape(one), escaped(b));
            let mut two = word;
            two[at] = b;
            proptest::prop_assert_eq!(word_has_escape(two), two.iter().any(|&b| escaped(b)));
        }
    }

    #[test]
    fn every_byte_value_at_every_position_of_a_word() {
        for b in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'x', 0x20, b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff] {
                    let mut word = [fill; 8];
                    word[at] = b;
                    assert_eq!(
                        word_has_escape(word),
                        escaped(b),
                        "{b:#x} at {at} in {fill:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_escaped_byte_is_found_at_each_position_of_a_word() {
        for b in (0u8..0x20).chain([b'"', b'\\']) {
            for at in 0..20 {
                let mut text = vec![b'x'; 20];
                text[at] = b;
                assert_eq!(escape_at(&text, 0), Some(at), "byte {b:#x} at {at}");
                assert_eq!(escape_at(&text, at + 1), None);
            }
        }
        for b in (0x20u8..0x80).filter(|&b| b != b'"' && b != b'\\') {
            assert_eq!(escape_at(&[b; 20], 0), None, "byte {b:#x}");
        }
        assert_eq!(escape_at(&[0xc3, 0xa9].repeat(10), 0), None);
    }

    #[test]
    fn members_out_of_byte_order_are_sorted() {
        // Byte order puts U+E000 (EE 80 80) before U+1F600 (F0 9F 98 80);
        // a BTreeMap iterates so, and JCS wants the other order.
        let mut map = Map::new();
        map.insert("\u{E000}".into(), json!(2));
        map.insert("\u{1F600}".into(), json!(1));
        map.insert("signature".into(), json!("x"));
        let s = String::from_utf8(canonical_without(&map, "signature")).unwrap();
        assert_eq!(s, "{\"\u{1F600}\":1,\"\u{E000}\":2}");
    }

    #[test]
    fn every_escape_in_a_run_of_plain_text() {
        let v = json!("a\"b\\c\u{8}d\u{c}e\nf\rg\th\u{0}i\u{7f}j\u{e9}k");
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            "\"a\\\"b\\\\c\\bd\\fe\\nf\\rg\\th\\u0000i\u{7f}j\u{e9}k\""
        );
    }
}
